"""A step that raises half-way through an event: the event is dead-lettered and
the state changes it made before failing are undone, on a real embedded bus and
a real state file."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from engine.bus.embedded import EmbeddedLog
from engine.runner import StepRunner
from engine.state import StateStore, StepState
from engine.types import Emit, Envelope, KeyedState, Record
from schemas.topics import DLQ

NOW = datetime(2026, 1, 5, 10, 15, tzinfo=UTC)


class HalfWay:
    """Counts events per ward; a payload of "boom" writes one key, then raises."""

    step_id = "test.halfway"

    def process(self, envelope: Envelope, state: KeyedState) -> Sequence[Emit]:
        count = int(state.get("count") or b"0") + 1
        state.put("count", str(count).encode())
        state.delete("gone")
        if envelope.payload == "boom":
            raise RuntimeError("failed half-way")
        return []


def envelope(payload: str) -> bytes:
    return Envelope(
        correlation_id=payload,
        channel="test",
        received_at=NOW,
        content_type="text/plain",
        payload=payload,
    ).to_bytes()


async def test_a_failing_event_leaves_no_half_change_behind(tmp_path) -> None:
    bus = EmbeddedLog(f"sqlite:///{tmp_path / 'bus.db'}")
    await bus.start()
    store = StateStore(tmp_path / "state.db")
    try:
        for payload in ("one", "boom", "two"):
            await bus.append("in", envelope(payload), key=b"k")
        runner = StepRunner(
            bus=bus, processor=HalfWay(), topics=["in"], store=store, clock=lambda: NOW
        )
        runner.state = StepState({"gone": b"x"})
        records: list[Record] = []
        for partition in range(await bus.partitions_for("in")):
            records.extend(await bus.read("in", partition, 0, 10))
        await runner.handle(records)

        assert runner.state.get("count") == b"2"
        assert runner.dead_letters == 1
        letters = []
        for partition in range(await bus.partitions_for(DLQ)):
            letters.extend(await bus.read(DLQ, partition, 0, 10))
        (letter,) = [Envelope.from_bytes(r.value) for r in letters]
        assert letter.payload == "boom"
        assert letter.headers["dlq.reason"] == "step raised RuntimeError"

        reloaded, _ = await store.load("test.halfway")
        assert reloaded.get("count") == b"2"
        assert reloaded.get("gone") is None
    finally:
        await store.close()
        await bus.stop()


def test_rollback_restores_values_and_dirty_marks() -> None:
    state = StepState({"a": b"1", "b": b"2"})
    state.put("a", b"10")
    state.take_dirty()
    state.put("c", b"3")
    state.begin()
    state.put("a", b"11")
    state.put("c", b"30")
    state.delete("b")
    state.put("new", b"n")
    state.rollback()
    assert dict(state.items()) == {"a": b"10", "b": b"2", "c": b"3"}
    assert state.take_dirty() == {"c": b"3"}
