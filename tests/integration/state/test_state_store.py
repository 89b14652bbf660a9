from engine.state import StateStore
from engine.types import TopicPartition


async def test_state_and_applied_offsets_survive_reopen(tmp_path):
    store = StateStore(tmp_path / "state.db")
    state, applied = await store.load("census")
    assert applied == {}
    state.put("ward:AMU", b'{"B1":"p1"}')
    state.put("ward:ICU", b'{"B2":"p2"}')
    await store.commit("census", state.take_dirty(), {TopicPartition("events.adt", 1): 42})
    state.delete("ward:ICU")
    await store.commit("census", state.take_dirty(), {TopicPartition("events.adt", 1): 43})
    await store.close()

    reopened = StateStore(tmp_path / "state.db")
    state, applied = await reopened.load("census")
    assert dict(state.items()) == {"ward:AMU": b'{"B1":"p1"}'}
    assert applied == {TopicPartition("events.adt", 1): 43}
    other, other_applied = await reopened.load("normalize.hl7v2")
    assert dict(other.items()) == {}
    assert other_applied == {}
    await reopened.close()


async def test_dirty_tracking_only_reports_changes_once(tmp_path):
    store = StateStore(tmp_path / "state.db")
    state, _ = await store.load("s")
    state.put("a", b"1")
    state.delete("missing")
    assert state.take_dirty() == {"a": b"1"}
    assert state.take_dirty() == {}
    await store.close()
