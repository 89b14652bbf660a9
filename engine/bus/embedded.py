"""The embedded log: Wardstream's default bus, a durable partitioned log in one
SQLite file (WAL mode), built by ``open_bus("sqlite:///var/bus.db", **options)``.

Appends are group-committed: one writer thread turns every append queued while
the previous transaction was committing into one transaction, and each caller
gets its result only after that COMMIT. With ``synchronous="full"`` (default)
a committed append survives power loss; ``"normal"`` survives a crash of the
process but not of the machine, and skips the fsync per transaction.

Several ``EmbeddedLog`` objects, in one process or many, may open the same
file: offsets, topics, dedup ids and committed offsets are shared through it.
Consumer-group assignment is coordinated per ``EmbeddedLog`` object.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import structlog

from engine.bus import _store
from engine.bus._consumer import EmbeddedConsumer, GroupMembers
from engine.bus._errors import (
    BusClosedError,
    BusError,
    BusWriteError,
    InvalidBusUrlError,
    InvalidPartitionError,
    InvalidTopicError,
    UnknownTopicError,
)
from engine.bus._writer import (
    APPEND,
    APPEND_MANY,
    COMMIT,
    CREATE,
    RETENTION,
    LogWriter,
    Outcome,
    WriterConfig,
    WriteStats,
)
from engine.types import (
    AppendCallback,
    AppendResult,
    Headers,
    Record,
    TopicPartition,
    TopicSpec,
)

_T = TypeVar("_T")
_log = structlog.get_logger(__name__)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class AppendRequest:
    """One record of an ``append_many`` batch; fields as for ``EmbeddedLog.append``."""

    topic: str
    value: bytes
    key: bytes | None = None
    headers: Headers = ()
    partition: int | None = None
    dedup_id: str | None = None


class EmbeddedLog:
    """A ``Bus`` on one SQLite file. See the module docstring for guarantees.

    Options: ``default_partitions`` of topics created by a first append or
    subscription; ``synchronous`` ("full" or "normal"); ``retention_ms`` and
    ``retention_bytes`` (per partition) for auto-created topics (topics from
    ``create_topics`` use their ``TopicSpec``); ``dedup_retention_ms`` forgets
    dedup ids sooner than their records; ``retention_interval_s`` between
    background retention runs (``None`` for none); ``poll_interval_s``, how
    often an idle consumer looks for appends by other processes;
    ``busy_timeout_ms`` to wait for another process's write lock; ``max_batch``
    records per transaction; ``read_threads``; ``clock_ms``, the record clock.
    """

    def __init__(
        self,
        url: str,
        *,
        default_partitions: int = 4,
        synchronous: Literal["full", "normal"] = "full",
        retention_ms: int | None = None,
        retention_bytes: int | None = None,
        dedup_retention_ms: int | None = None,
        retention_interval_s: float | None = 60.0,
        poll_interval_s: float = 0.05,
        busy_timeout_ms: int = 30_000,
        max_batch: int = 4096,
        retention_chunk: int = 50_000,
        read_threads: int = 2,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        if synchronous not in ("full", "normal"):
            raise ValueError(f"synchronous must be 'full' or 'normal', not {synchronous!r}")
        if default_partitions < 1 or max_batch < 1 or read_threads < 1 or retention_chunk < 1:
            raise ValueError("default_partitions, max_batch, read_threads must be positive")
        self.url = url
        self.path = _store.path_from_url(url)
        self.poll_interval_s = poll_interval_s
        self.retention_interval_s = retention_interval_s
        self._config = WriterConfig(
            path=self.path,
            synchronous=synchronous.upper(),
            busy_timeout_ms=busy_timeout_ms,
            default_partitions=default_partitions,
            retention_ms=retention_ms,
            retention_bytes=retention_bytes,
            dedup_retention_ms=dedup_retention_ms,
            max_batch=max_batch,
            retention_chunk=retention_chunk,
            clock_ms=clock_ms or _now_ms,
        )
        self._read_threads = read_threads
        self._writer: LogWriter | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._read_pool: ThreadPoolExecutor | None = None
        self._readers = _store.ReadConnections(
            self.path, busy_timeout_ms=busy_timeout_ms, synchronous=synchronous.upper()
        )
        self._retention_task: asyncio.Task[None] | None = None
        self._appended = asyncio.Event()
        self._groups: dict[str, GroupMembers] = {}
        self._consumers: set[EmbeddedConsumer] = set()
        # Topic -> pids by partition; topics never shrink, so entries never go stale.
        self._pids: dict[str, tuple[int, ...]] = {}
        self._topics_version = 0
        self._stats = WriteStats()
        # append_nowait requests of the current event-loop iteration, handed to
        # the writer together at its end (see _hand_over).
        self._handover: list[tuple[AppendCallback, Any]] = []

    async def start(self) -> None:
        """Open (or create) the file and start the writer; idempotent."""
        if self._writer is not None:
            return
        loop = asyncio.get_running_loop()
        writer = LogWriter(self._config, loop, self._on_batch)
        await asyncio.wrap_future(writer.start())
        self._loop, self._writer, self._stats = loop, writer, writer.stats
        self._read_pool = ThreadPoolExecutor(self._read_threads, "wardstream-bus-read")
        if self.retention_interval_s is not None:
            self._retention_task = loop.create_task(self._retention_loop(self.retention_interval_s))

    async def stop(self) -> None:
        """Write what is queued, stop consumers and background work, close the file."""
        writer = self._writer
        if writer is None:
            return
        # From here on appends fail fast; everything queued before is still written.
        self._hand_over()
        self._writer = None
        task, self._retention_task = self._retention_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for consumer in list(self._consumers):
            await consumer.stop()
        await asyncio.wrap_future(writer.stop())
        pool, self._read_pool = self._read_pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True)
        self._readers.close_all()
        self._signal_appended()

    async def create_topics(self, specs: Sequence[TopicSpec]) -> None:
        """Create missing topics; existing ones are left as they are."""
        for spec in specs:
            if spec.partitions < 1:
                raise InvalidTopicError(f"topic {spec.name!r} needs at least one partition")
        if specs:
            await self._submit(CREATE, tuple(specs))

    async def partitions_for(self, topic: str) -> int:
        """Partition count of ``topic``; ``UnknownTopicError`` if it does not exist."""
        return len(await self._require_topic(topic))

    async def append(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None = None,
        headers: Headers = (),
        partition: int | None = None,
        dedup_id: str | None = None,
    ) -> AppendResult:
        """Append one record; return once it is committed to the file.

        Partition: ``partition``, else murmur2 of ``key`` as Kafka does, else
        round-robin. An unknown topic is created with ``default_partitions``.
        ``dedup_id`` (per topic): a second append with the same id writes
        nothing and returns the original's partition and offset with
        ``duplicate=True``. A cancelled caller's record may still be written.
        """
        writer, request = self._request(topic, value, key, headers, partition, dedup_id)
        if self._handover:
            self._hand_over()  # keep the order of appends made from this loop
        future: asyncio.Future[AppendResult] = writer.loop.create_future()
        writer.submit(APPEND, future, request)
        return await future

    def append_nowait(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None = None,
        headers: Headers = (),
        partition: int | None = None,
        dedup_id: str | None = None,
        callback: AppendCallback,
    ) -> None:
        """``append`` without an awaitable, for callers answering thousands of
        appends a second (a future and a task per record cost more than the
        rest of the append): queue the record and return at once;
        ``callback(result, None)`` runs on the event loop once it is committed,
        ``callback(None, error)`` if it cannot be written. Raises only what
        keeps it from being queued (``BusClosedError``, ``TypeError``). Call it
        from the event loop's thread."""
        writer, request = self._request(topic, value, key, headers, partition, dedup_id)
        if not self._handover:
            writer.loop.call_soon(self._hand_over)
        self._handover.append((callback, request))

    def _request(
        self,
        topic: str,
        value: bytes,
        key: bytes | None,
        headers: Headers,
        partition: int | None,
        dedup_id: str | None,
    ) -> tuple[LogWriter, tuple[str, bytes, bytes | None, Headers, int | None, str | None]]:
        writer = self._writer
        if writer is None:
            raise BusClosedError(f"embedded log {self.url} is not started")
        if type(value) is not bytes:
            value = _as_bytes(value, "value")
        if key is not None and type(key) is not bytes:
            key = _as_bytes(key, "key")
        return writer, (topic, value, key, headers, partition, dedup_id)

    def _hand_over(self) -> None:
        """Queue this loop iteration's ``append_nowait`` requests for the writer:
        queued one by one, each could wake the writer thread to fight the loop
        for the GIL while the loop still reads the next frames; queued together
        after the loop's I/O callbacks, they share a transaction."""
        requests, self._handover = self._handover, []
        writer = self._writer
        if writer is None:
            error = BusClosedError(f"embedded log {self.url} is stopped")
            self._on_batch([(callback, None, error) for callback, _ in requests], {}, False)
            return
        for callback, request in requests:
            writer.submit(APPEND, callback, request)

    async def append_many(self, requests: Sequence[AppendRequest]) -> list[AppendResult]:
        """Append a batch atomically, in one transaction, results in request order.
        If any request is invalid, nothing of the batch is written."""
        rows = [
            (
                r.topic,
                r.value if type(r.value) is bytes else _as_bytes(r.value, "value"),
                r.key if r.key is None or type(r.key) is bytes else _as_bytes(r.key, "key"),
                r.headers,
                r.partition,
                r.dedup_id,
            )
            for r in requests
        ]
        if not rows:
            return []
        results: list[AppendResult] = await self._submit(APPEND_MANY, rows)
        return results

    def consumer(
        self, group: str, topics: Sequence[str], *, from_beginning: bool = True
    ) -> EmbeddedConsumer:
        """A member of ``group`` reading ``topics`` (not started)."""
        return EmbeddedConsumer(self, group, topics, from_beginning=from_beginning)

    async def end_offsets(self, topic: str) -> dict[int, int]:
        """Offset the next record will get, per partition of ``topic``."""
        await self._require_topic(topic)
        return await self._read(_store.end_offsets, topic)

    async def read(
        self, topic: str, partition: int, offset: int, max_records: int = 500
    ) -> list[Record]:
        """Up to ``max_records`` records of one partition from ``offset`` on (from
        the first retained record if ``offset`` was deleted); empty at the end."""
        pids = await self._require_topic(topic)
        if not 0 <= partition < len(pids):
            raise InvalidPartitionError(f"topic {topic!r} has {len(pids)} partitions")
        if offset < 0:
            raise ValueError(f"negative offset {offset}")
        return await self._read(
            _store.fetch, [(pids[partition], topic, partition, offset)], max_records
        )

    async def committed(self, group: str) -> dict[TopicPartition, int]:
        """Committed next offsets of ``group``, per partition it has committed."""
        return await self._read(_store.committed, group, None)

    async def enforce_retention(self, now_ms: int | None = None) -> int:
        """Apply every topic's retention now; return the number of records deleted.
        ``now_ms`` overrides the clock (records older than now - retention go)."""
        total = 0
        while True:
            outcome: tuple[int, bool] = await self._submit(RETENTION, now_ms)
            deleted, more = outcome
            total += deleted
            if not more:
                return total

    @property
    def stats(self) -> WriteStats:
        """Writer counters (transactions, records, duplicates) since ``start``."""
        return self._stats

    def _on_batch(
        self, outcomes: list[Outcome], new_topics: dict[str, tuple[int, ...]], appended: bool
    ) -> None:
        for target, value, error in outcomes:
            if not isinstance(target, asyncio.Future):
                try:
                    target(value, error)
                except Exception:  # noqa: BLE001 - one caller's bug must not starve the others
                    _log.exception("bus append callback failed")
                continue
            if target.done():
                continue
            if error is None:
                target.set_result(value)
            else:
                target.set_exception(error)
        if new_topics:
            self._pids.update(new_topics)
            self._topics_version += 1
        if appended:
            self._signal_appended()

    def _signal_appended(self) -> None:
        event, self._appended = self._appended, asyncio.Event()
        event.set()

    def _append_signal(self) -> asyncio.Event:
        """An event set by the next commit that appends records (or by ``stop``)."""
        return self._appended

    async def _submit(self, kind: int, payload: Any) -> Any:
        writer = self._writer
        if writer is None:
            raise BusClosedError(f"embedded log {self.url} is not started")
        if self._handover:
            self._hand_over()
        future: asyncio.Future[Any] = writer.loop.create_future()
        writer.submit(kind, future, payload)
        return await future

    async def _commit(self, group: str, entries: tuple[tuple[str, int, int], ...]) -> None:
        await self._submit(COMMIT, (group, entries))

    async def _read(self, fn: Callable[..., _T], *args: Any) -> _T:
        pool, loop = self._read_pool, self._loop
        if pool is None or loop is None:
            raise BusClosedError(f"embedded log {self.url} is not started")
        return await loop.run_in_executor(pool, self._call_read, fn, args)

    def _call_read(self, fn: Callable[..., _T], args: tuple[Any, ...]) -> _T:
        """Runs on a read thread, with that thread's own connection."""
        try:
            return fn(self._readers.get(), *args)
        except sqlite3.Error as exc:
            raise BusError(f"bus read failed: {exc}") from exc

    async def _topic_pids(self, topic: str) -> tuple[int, ...] | None:
        pids = self._pids.get(topic)
        if pids is None:
            pids = await self._read(_store.topic_pids, topic)
            if pids is not None and topic not in self._pids:
                self._pids[topic] = pids
                self._topics_version += 1
        return pids

    async def _require_topic(self, topic: str) -> tuple[int, ...]:
        pids = await self._topic_pids(topic)
        if pids is None:
            raise UnknownTopicError(f"unknown topic {topic!r}")
        return pids

    def _join(self, consumer: EmbeddedConsumer) -> GroupMembers:
        if self._writer is None:
            raise BusClosedError(f"embedded log {self.url} is not started")
        members = self._groups.setdefault(consumer.group, GroupMembers())
        members.join(consumer)
        self._consumers.add(consumer)
        return members

    def _left(self, consumer: EmbeddedConsumer) -> None:
        self._consumers.discard(consumer)

    async def _retention_loop(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                deleted = await self.enforce_retention()
            except BusError as exc:
                _log.warning("bus retention failed", url=self.url, error=str(exc))
                continue
            if deleted:
                _log.info("bus retention", url=self.url, deleted=deleted)


def _as_bytes(data: object, what: str) -> bytes:
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    raise TypeError(f"{what} must be bytes, not {type(data).__name__}")


__all__ = [
    "AppendCallback",
    "AppendRequest",
    "BusClosedError",
    "BusError",
    "BusWriteError",
    "EmbeddedConsumer",
    "EmbeddedLog",
    "InvalidBusUrlError",
    "InvalidPartitionError",
    "InvalidTopicError",
    "UnknownTopicError",
    "WriteStats",
]
