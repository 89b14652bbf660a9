"""Behaviour of the embedded log beyond the shared bus contract: group commit,
retention, restart, several log objects and processes on one file."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from engine.bus import open_bus
from engine.bus.embedded import (
    AppendRequest,
    BusClosedError,
    EmbeddedLog,
    InvalidPartitionError,
    InvalidTopicError,
    UnknownTopicError,
)
from engine.types import Bus, Record, TopicPartition, TopicSpec

REPO = Path(__file__).resolve().parents[3]


class Clock:
    """The log's record clock, moved by hand."""

    def __init__(self, now_ms: int = 1_000_000) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/bus.db"


@pytest.fixture
async def make_log(url: str) -> AsyncIterator[Callable[..., EmbeddedLog]]:
    """Build (not start) logs on the test's file; all are stopped after the test."""
    made: list[EmbeddedLog] = []

    def make(**options: Any) -> EmbeddedLog:
        options.setdefault("retention_interval_s", None)
        options.setdefault("poll_interval_s", 0.02)
        log = EmbeddedLog(url, **options)
        made.append(log)
        return log

    yield make
    for log in made:
        await log.stop()


@pytest.fixture
async def log(make_log: Callable[..., EmbeddedLog]) -> AsyncIterator[EmbeddedLog]:
    started = make_log()
    await started.start()
    yield started
    await started.stop()


async def poll_until(consumer: Any, count: int, within: float = 10.0) -> list[Record]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    got: list[Record] = []
    while len(got) < count:
        assert loop.time() < deadline, f"got {len(got)} of {count}"
        got += await consumer.poll(timeout=0.2)
    return got


def test_open_bus_builds_an_embedded_log_satisfying_the_protocol(url: str) -> None:
    log = open_bus(url)
    assert isinstance(log, EmbeddedLog)
    assert isinstance(log, Bus)


def test_url_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert EmbeddedLog("sqlite:///var/bus.db").path == Path("var/bus.db")
    assert EmbeddedLog("sqlite:////abs/bus.db").path == Path("/abs/bus.db")
    for bad in ("sqlite://", "sqlite:///", "sqlite:///:memory:", "postgres:///x"):
        with pytest.raises(ValueError, match="sqlite"):
            EmbeddedLog(bad)
    with pytest.raises(ValueError, match="synchronous"):
        EmbeddedLog("sqlite:///x.db", synchronous="off")  # type: ignore[arg-type]


async def test_relative_url_creates_parent_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    log = EmbeddedLog("sqlite:///var/deep/bus.db", retention_interval_s=None)
    await log.start()
    await log.append("t", b"x")
    await log.stop()
    assert (tmp_path / "var" / "deep" / "bus.db").is_file()


async def test_concurrent_appends_share_transactions(log: EmbeddedLog, url: str) -> None:
    await log.create_topics([TopicSpec("t", partitions=1)])
    # Hold the write lock from outside so every append queues behind the first batch.
    blocker = sqlite3.connect(url.removeprefix("sqlite://"), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    before = log.stats.transactions
    tasks = [asyncio.create_task(log.append("t", b"%d" % n)) for n in range(100)]
    await asyncio.sleep(0)  # every task has queued its append
    assert not any(task.done() for task in tasks)
    blocker.execute("ROLLBACK")
    blocker.close()
    results = await asyncio.gather(*tasks)
    assert sorted(r.offset for r in results) == list(range(100))
    assert log.stats.transactions - before <= 2
    assert log.stats.records == 100


async def test_append_many_is_one_atomic_batch(log: EmbeddedLog) -> None:
    await log.create_topics([TopicSpec("t", partitions=2)])
    before = log.stats.transactions
    results = await log.append_many(
        [AppendRequest("t", b"%d" % n, partition=n % 2, dedup_id=f"d{n}") for n in range(6)]
        + [AppendRequest("t", b"again", dedup_id="d0")]
    )
    assert [(r.partition, r.offset) for r in results[:6]] == [
        (0, 0), (1, 0), (0, 1), (1, 1), (0, 2), (1, 2)
    ]  # fmt: skip
    assert results[6].duplicate
    assert (results[6].partition, results[6].offset) == (0, 0)
    assert log.stats.transactions - before == 1
    with pytest.raises(InvalidPartitionError):
        await log.append_many([AppendRequest("t", b"ok"), AppendRequest("t", b"no", partition=9)])
    assert await log.end_offsets("t") == {0: 3, 1: 3}


async def test_bad_appends_fail_alone(log: EmbeddedLog) -> None:
    await log.create_topics([TopicSpec("t", partitions=2)])
    good = log.append("t", b"ok")
    bad_partition = log.append("t", b"x", partition=2)
    bad_topic = log.append("no spaces allowed", b"x")
    outcomes = await asyncio.gather(good, bad_partition, bad_topic, return_exceptions=True)
    assert not isinstance(outcomes[0], BaseException)
    assert isinstance(outcomes[1], InvalidPartitionError)
    assert isinstance(outcomes[2], InvalidTopicError)
    with pytest.raises(TypeError, match="bytes"):
        await log.append("t", "text is not bytes")  # type: ignore[arg-type]
    with pytest.raises(UnknownTopicError):
        await log.partitions_for("never-created")


async def test_unknown_topic_is_created_with_default_partitions(
    make_log: Callable[..., EmbeddedLog],
) -> None:
    log = make_log(default_partitions=3)
    await log.start()
    await log.append("auto.created", b"x", key=b"k")
    assert await log.partitions_for("auto.created") == 3
    await log.stop()


async def test_restart_resumes_offsets_groups_and_dedup(
    make_log: Callable[..., EmbeddedLog],
) -> None:
    first = make_log()
    await first.start()
    await first.create_topics([TopicSpec("t", partitions=3)])
    for n in range(5):
        await first.append("t", b"%d" % n, partition=1, dedup_id=f"m{n}")
    consumer = first.consumer("g", ["t"])
    await consumer.start()
    await poll_until(consumer, 5)
    await consumer.commit({TopicPartition("t", 1): 3})
    await first.stop()

    second = make_log()
    await second.start()
    assert await second.partitions_for("t") == 3
    assert await second.end_offsets("t") == {0: 0, 1: 5, 2: 0}
    assert (await second.append("t", b"5", partition=1)).offset == 5
    assert (await second.append("t", b"dup", partition=2, dedup_id="m4")).duplicate
    assert await second.committed("g") == {TopicPartition("t", 1): 3}
    resumed = second.consumer("g", ["t"])
    await resumed.start()
    assert [r.offset for r in await poll_until(resumed, 3)] == [3, 4, 5]
    await second.stop()


async def test_stop_writes_every_queued_append(make_log: Callable[..., EmbeddedLog]) -> None:
    log = make_log()
    await log.start()
    tasks = [asyncio.create_task(log.append("t", b"%d" % n, partition=0)) for n in range(50)]
    await asyncio.sleep(0)
    await log.stop()
    assert sorted(t.result().offset for t in tasks) == list(range(50))
    with pytest.raises(BusClosedError):
        await log.append("t", b"late")
    reopened = make_log()
    await reopened.start()
    assert (await reopened.end_offsets("t"))[0] == 50
    await reopened.stop()


async def test_retention_by_age_keeps_offsets_growing(make_log: Callable[..., EmbeddedLog]) -> None:
    clock = Clock()
    log = make_log(clock_ms=clock)
    await log.start()
    await log.create_topics([TopicSpec("t", partitions=1, retention_ms=1000)])
    for n in range(4):
        await log.append("t", b"old%d" % n, dedup_id=f"old{n}")
    clock.now_ms += 5000
    for n in range(2):
        await log.append("t", b"new%d" % n)
    consumer = log.consumer("g", ["t"])
    await consumer.start()
    await consumer.commit({TopicPartition("t", 0): 1})
    assert await log.enforce_retention(now_ms=clock.now_ms + 500) == 4
    assert await log.enforce_retention(now_ms=clock.now_ms + 500) == 0
    assert [r.value for r in await log.read("t", 0, 0)] == [b"new0", b"new1"]
    # The group's committed offset was deleted: it resumes at the first retained record.
    assert [r.offset for r in await poll_until(consumer, 2)] == [4, 5]
    # Dedup ids went with their records; offsets are never reused.
    again = await log.append("t", b"old0 again", dedup_id="old0")
    assert (again.duplicate, again.offset) == (False, 6)
    await log.stop()


async def test_retention_by_size_per_partition(make_log: Callable[..., EmbeddedLog]) -> None:
    log = make_log(retention_chunk=2)
    await log.start()
    await log.create_topics([TopicSpec("t", partitions=2, retention_bytes=350)])
    for _ in range(10):
        await log.append("t", b"x" * 100, partition=0)
    await log.append("t", b"y" * 100, partition=1)
    # Deleted two records per partition at a time, until the partition fits.
    assert await log.enforce_retention() == 7
    assert [r.offset for r in await log.read("t", 0, 0)] == [7, 8, 9]
    assert [r.offset for r in await log.read("t", 1, 0)] == [0]
    assert await log.end_offsets("t") == {0: 10, 1: 1}
    await log.stop()


async def test_dedup_retention_can_be_shorter_than_records(
    make_log: Callable[..., EmbeddedLog],
) -> None:
    clock = Clock()
    log = make_log(clock_ms=clock, dedup_retention_ms=1000)
    await log.start()
    first = await log.append("t", b"a", partition=0, dedup_id="m1")
    clock.now_ms += 2000
    assert (await log.append("t", b"b", partition=0, dedup_id="m2")).offset == 1
    assert await log.enforce_retention() == 0
    assert not (await log.append("t", b"a2", partition=0, dedup_id="m1")).duplicate
    assert (await log.append("t", b"b2", partition=0, dedup_id="m2")).duplicate
    assert [r.offset for r in await log.read("t", 0, first.offset)] == [0, 1, 2]
    await log.stop()


async def test_background_retention_runs_by_itself(make_log: Callable[..., EmbeddedLog]) -> None:
    clock = Clock()
    log = make_log(retention_ms=1000, retention_interval_s=0.01, clock_ms=clock)
    await log.start()
    await log.append("auto", b"x", partition=0)
    clock.now_ms += 1001
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while await log.read("auto", 0, 0):
        assert loop.time() < deadline, "background retention never ran"
        await asyncio.sleep(0.02)
    await log.stop()


async def test_members_of_a_group_rebalance_on_leave(log: EmbeddedLog) -> None:
    await log.create_topics([TopicSpec("t", partitions=4)])
    for p in range(4):
        await log.append("t", b"%d" % p, partition=p)
    a, b = log.consumer("g", ["t"]), log.consumer("g", ["t"])
    await a.start()
    await b.start()
    got_a, got_b = await poll_until(a, 2), await poll_until(b, 2)
    assert not a.assignment() & b.assignment()
    assert {r.partition for r in got_a} | {r.partition for r in got_b} == {0, 1, 2, 3}
    await a.commit()
    await a.stop()  # b takes over a's partitions from a's committed offsets
    await log.append("t", b"more", partition=min(r.partition for r in got_a))
    (record,) = await poll_until(b, 1)
    assert record.value == b"more"
    assert len(b.assignment()) == 4


async def test_two_log_objects_on_one_file(make_log: Callable[..., EmbeddedLog]) -> None:
    writer_a, writer_b = make_log(), make_log()
    await writer_a.start()
    await writer_b.start()
    await writer_a.create_topics([TopicSpec("t", partitions=1)])
    consumer = writer_b.consumer("g", ["t"])
    await consumer.start()
    waiting = asyncio.create_task(consumer.poll(timeout=10))
    await writer_a.append("t", b"from a")
    assert [r.value for r in await waiting] == [b"from a"]
    # Each writer must see the other's commits, never hand out an offset twice.
    turns = [await w.append("t", b"turn") for w in (writer_b, writer_a, writer_b, writer_a)]
    assert [r.offset for r in turns] == [1, 2, 3, 4]
    results = await asyncio.gather(
        *(
            w.append("t", b"%d" % n, dedup_id=f"x{n}")
            for n in range(40)
            for w in (writer_a, writer_b)
        )
    )
    assert sorted(r.offset for r in results if not r.duplicate) == list(range(5, 45))
    assert sum(r.duplicate for r in results) == 40
    await writer_a.stop()
    await writer_b.stop()


CHILD = """
import asyncio, sys
from engine.bus.embedded import EmbeddedLog

async def main():
    log = EmbeddedLog(sys.argv[1], retention_interval_s=None)
    await log.start()
    await asyncio.gather(*(log.append("t", b"child", partition=0) for _ in range(100)))
    await log.stop()

asyncio.run(main())
"""


async def test_another_process_appends_to_the_same_file(log: EmbeddedLog, url: str) -> None:
    await log.create_topics([TopicSpec("t", partitions=1)])
    consumer = log.consumer("g", ["t"])
    await consumer.start()
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", textwrap.dedent(CHILD), url, cwd=REPO
    )
    ours = [await log.append("t", b"parent", partition=0)]
    while child.returncode is None and len(ours) < 5000:
        ours.append(await log.append("t", b"parent", partition=0))
    assert await asyncio.wait_for(child.wait(), 60) == 0
    # Written after the child's records: must continue after them, not reuse offsets.
    ours.append(await log.append("t", b"parent", partition=0))
    total = len(ours) + 100
    records = await poll_until(consumer, total)
    assert [r.offset for r in records] == list(range(total))
    assert sum(r.value == b"child" for r in records) == 100
    assert {r.offset for r in records if r.value == b"parent"} == {r.offset for r in ours}
