"""``EmbeddedLog.append_nowait``, the completion-callback append the MLLP
listener's inline path stands on: durable before the callback, dedup and
ordering as ``append``, correct when another log object writes the same file."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from engine.bus.embedded import BusClosedError, EmbeddedLog
from engine.types import AppendResult, CallbackAppender, TopicSpec

WAIT = 10.0
Outcome = tuple[AppendResult | None, BaseException | None]


@pytest.fixture
async def log(tmp_path: Path) -> AsyncIterator[EmbeddedLog]:
    bus = EmbeddedLog(f"sqlite:///{tmp_path}/bus.db", synchronous="normal")
    await bus.start()
    await bus.create_topics([TopicSpec("t", partitions=4)])
    yield bus
    await bus.stop()


def submit(log: EmbeddedLog, value: bytes, **options: object) -> asyncio.Future[Outcome]:
    """``append_nowait`` with a future that the callback completes."""
    done: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
    log.append_nowait("t", value, callback=lambda r, e: done.set_result((r, e)), **options)  # type: ignore[arg-type]
    return done


async def outcomes(*futures: asyncio.Future[Outcome]) -> list[Outcome]:
    async with asyncio.timeout(WAIT):
        return list(await asyncio.gather(*futures))


def ok(outcome: Outcome) -> AppendResult:
    """The result of an append that succeeded."""
    result, error = outcome
    assert error is None
    assert result is not None
    return result


async def test_the_embedded_log_offers_callbacks(log: EmbeddedLog) -> None:
    assert isinstance(log, CallbackAppender)


async def test_the_record_is_readable_when_the_callback_runs(log: EmbeddedLog) -> None:
    seen: list[bytes] = []
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def callback(result: AppendResult | None, error: BaseException | None) -> None:
        written = ok((result, error))
        read = asyncio.ensure_future(log.read("t", written.partition, written.offset, 1))
        read.add_done_callback(
            lambda f: (seen.extend(r.value for r in f.result()), done.set_result(None))
        )

    log.append_nowait("t", b"v1", partition=2, callback=callback)
    async with asyncio.timeout(WAIT):
        await done
    assert seen == [b"v1"]


async def test_order_with_append_is_kept_within_a_partition(log: EmbeddedLog) -> None:
    first = [submit(log, b"%d" % n, partition=1) for n in range(3)]
    last = await log.append("t", b"3", partition=1)
    results = [r for r, _ in await outcomes(*first)]
    assert [r.offset for r in results if r is not None] + [last.offset] == [0, 1, 2, 3]
    assert [r.value for r in await log.read("t", 1, 0)] == [b"0", b"1", b"2", b"3"]


async def test_dedup_ids_known_and_repeated_within_one_batch(log: EmbeddedLog) -> None:
    stored = await log.append("t", b"a", partition=0, dedup_id="d-a")
    again, new, twice = map(
        ok,
        await outcomes(
            submit(log, b"a", partition=0, dedup_id="d-a"),
            submit(log, b"b", partition=0, dedup_id="d-b"),
            submit(log, b"b", partition=0, dedup_id="d-b"),
        ),
    )
    assert (again.duplicate, again.offset) == (True, stored.offset)
    assert (new.duplicate, twice.duplicate, twice.offset) == (False, True, new.offset)
    assert [r.value for r in await log.read("t", 0, 0)] == [b"a", b"b"]
    assert log.stats.duplicates == 2


async def test_a_fallback_does_not_skip_round_robin_partitions(log: EmbeddedLog) -> None:
    # The repeated dedup id sends this batch down the general path after the fast
    # path picked partitions: each partition must still get exactly one record.
    results = await outcomes(
        *(submit(log, b"%d" % n) for n in range(3)),
        submit(log, b"x", partition=0, dedup_id="same"),
        submit(log, b"x", partition=0, dedup_id="same"),
    )
    assert [r.partition for r, _ in results[:3] if r is not None] == [0, 1, 2]


async def test_bad_requests_fail_alone(log: EmbeddedLog) -> None:
    bad, good = await outcomes(submit(log, b"x", partition=9), submit(log, b"y", partition=3))
    assert bad[0] is None
    assert "partitions" in str(bad[1])
    assert ok(good).partition == 3


async def test_a_stopped_log_refuses_at_once_and_stop_writes_what_was_queued(
    tmp_path: Path,
) -> None:
    bus = EmbeddedLog(f"sqlite:///{tmp_path}/b.db", synchronous="normal")
    with pytest.raises(BusClosedError):
        bus.append_nowait("t", b"x", callback=lambda r, e: None)
    await bus.start()
    queued = submit(bus, b"last words", partition=0)
    await bus.stop()
    ok((await outcomes(queued))[0])
    reopened = EmbeddedLog(f"sqlite:///{tmp_path}/b.db")
    await reopened.start()
    assert [r.value for r in await reopened.read("t", 0, 0)] == [b"last words"]
    await reopened.stop()


async def test_two_log_objects_appending_to_one_partition_never_share_an_offset(
    log: EmbeddedLog,
) -> None:
    other = EmbeddedLog(log.url, synchronous="normal")
    await other.start()
    try:
        futures = []
        for n in range(60):
            futures.append(submit(log, b"a%d" % n, partition=0, dedup_id=f"a{n}"))
            futures.append(submit(other, b"b%d" % n, partition=0, dedup_id=f"b{n}"))
            if n % 7 == 0:
                await asyncio.sleep(0)
        results = await outcomes(*futures)
    finally:
        await other.stop()
    offsets = sorted(ok(outcome).offset for outcome in results)
    assert offsets == list(range(120))
    assert len(await log.read("t", 0, 0, 1000)) == 120


async def test_a_failing_callback_does_not_starve_the_others(log: EmbeddedLog) -> None:
    def broken(result: AppendResult | None, error: BaseException | None) -> None:
        raise RuntimeError("caller bug")

    with capture_logs() as logs:
        log.append_nowait("t", b"x", callback=broken)
        ok((await outcomes(submit(log, b"y")))[0])
    assert any(e["event"] == "bus append callback failed" for e in logs)


async def test_offsets_never_go_back_after_another_writer_and_retention(
    tmp_path: Path,
) -> None:
    # B appends and then deletes its records by retention: A's cached next
    # offset is stale and nothing in the file collides with it any more.
    a = EmbeddedLog(f"sqlite:///{tmp_path}/r.db", synchronous="normal", retention_interval_s=None)
    b = EmbeddedLog(a.url, synchronous="normal", retention_interval_s=None)
    await a.start()
    await b.start()
    try:
        await a.create_topics([TopicSpec("r", partitions=1, retention_ms=1)])
        await a.append("r", b"a0", partition=0)
        for n in range(2):
            await b.append("r", b"b%d" % n, partition=0)
        assert await b.enforce_retention(now_ms=2**50) == 3
        done: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        a.append_nowait("r", b"a1", partition=0, callback=lambda r, e: done.set_result((r, e)))
        assert ok((await outcomes(done))[0]).offset == 3
        assert await a.end_offsets("r") == {0: 4}
    finally:
        await b.stop()
        await a.stop()
