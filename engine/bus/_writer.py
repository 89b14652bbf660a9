"""The embedded log's single writer: one thread owns the write connection and
turns everything queued while the previous transaction was committing into one
transaction (group commit), so N concurrent appends cost one fsync, not N.

Callers on the event loop queue ``(kind, future, payload)`` items (a callback
in place of the future for ``append_nowait``); the writer resolves them after
COMMIT with one ``call_soon_threadsafe`` per batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import re
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future as ThreadFuture
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.bus import _retention
from engine.bus._errors import (
    BusError,
    BusWriteError,
    InvalidPartitionError,
    InvalidTopicError,
)
from engine.bus._store import (
    DEDUP_INSERT,
    FAST_APPEND_ROWS,
    OFFSET_BITS,
    OFFSET_MASK,
    RECORD_INSERT,
    advance_partitions,
    append_fast,
    connect,
    encode_headers,
    find_dedup,
    init_schema,
    insert_many,
    insert_topic,
    install_fast_append,
    read_layout,
    upsert_group_offsets,
)
from engine.bus.partitioner import murmur2
from engine.types import AppendCallback, AppendResult, TopicSpec

APPEND = 0  # payload: Request -> AppendResult
APPEND_MANY = 1  # payload: Sequence[Request] -> list[AppendResult], all in one transaction
COMMIT = 2  # payload: (group, ((topic, partition, next_offset), ...)) -> None
CREATE = 3  # payload: Sequence[TopicSpec] -> None
RETENTION = 4  # payload: now_ms or None -> (records deleted, more to delete)
_STOP = 5

Request = tuple[str, bytes, bytes | None, Any, int | None, str | None]
"""(topic, value, key, headers, partition, dedup_id) of one append."""

_Prepared = tuple[str, int, int, int, bytes | None, bytes, bytes | None, str | None, int]
"""(topic, partition, pid, tid, key, value, encoded headers, dedup_id, size)."""

"""Completion callback of ``EmbeddedLog.append_nowait``: (result, None) or (None, error)."""

Outcome = tuple["asyncio.Future[Any] | AppendCallback", Any, BaseException | None]
"""Who is waiting (a future, or a callback for ``append_nowait``), value, error."""
BatchCallback = Callable[[list[Outcome], dict[str, tuple[int, ...]], bool], None]

# Kafka's rule for topic names, so a name that works here works on Kafka too.
_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")


@dataclass(frozen=True, slots=True, kw_only=True)
class WriterConfig:
    """What the writer needs from ``EmbeddedLog``'s options."""

    path: Path
    synchronous: str
    busy_timeout_ms: int
    default_partitions: int
    retention_ms: int | None
    retention_bytes: int | None
    dedup_retention_ms: int | None
    max_batch: int
    retention_chunk: int
    clock_ms: Callable[[], int]


@dataclass(slots=True)
class WriteStats:
    """Counters of the writer since start: committed transactions, records
    written, and appends answered as duplicates."""

    transactions: int = 0
    records: int = 0
    duplicates: int = 0


@dataclass(slots=True)
class _Topic:
    tid: int
    pids: list[int]
    retention_ms: int | None
    retention_bytes: int | None
    round_robin: int = 0


class LogWriter:
    """The writer thread. ``submit`` is thread-safe and never blocks."""

    def __init__(
        self, config: WriterConfig, loop: asyncio.AbstractEventLoop, on_batch: BatchCallback
    ) -> None:
        self.config = config
        self.stats = WriteStats()
        self.loop = loop
        self._on_batch = on_batch
        self._queue: queue.SimpleQueue[tuple[int, Any, Any]] = queue.SimpleQueue()
        self._ready: ThreadFuture[None] = ThreadFuture()
        self._finished: ThreadFuture[None] = ThreadFuture()
        # Daemon: a log never stopped must not keep the interpreter alive.
        self._thread = threading.Thread(target=self._run, name="wardstream-bus-writer", daemon=True)
        self._conn: sqlite3.Connection | None = None
        self._topics: dict[str, _Topic] = {}
        self._next: dict[int, int] = {}
        self._pid_topic: dict[int, tuple[str, int]] = {}
        self._data_version: int | None = None
        self._new_topics: dict[str, tuple[int, ...]] = {}

    def start(self) -> ThreadFuture[None]:
        """Start the thread; the returned future completes once the schema is ready."""
        self._thread.start()
        return self._ready

    def submit(
        self, kind: int, future: asyncio.Future[Any] | AppendCallback | None, payload: Any
    ) -> None:
        self._queue.put((kind, future, payload))

    def stop(self) -> ThreadFuture[None]:
        """Ask the thread to finish what is queued and exit; the future completes then."""
        self._queue.put((_STOP, None, None))
        return self._finished

    def _run(self) -> None:
        try:
            cfg = self.config
            cfg.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = connect(
                cfg.path, busy_timeout_ms=cfg.busy_timeout_ms, synchronous=cfg.synchronous
            )
            init_schema(self._conn)
            install_fast_append(self._conn)
        except (OSError, sqlite3.Error, BusError) as exc:
            if self._conn is not None:
                self._conn.close()
            self._ready.set_exception(BusError(f"cannot open bus file {cfg.path}: {exc}"))
            self._finished.set_result(None)
            return
        self._ready.set_result(None)
        try:
            self._loop_batches()
        finally:
            self._conn.close()
            self._finished.set_result(None)

    def _loop_batches(self) -> None:
        get, get_nowait, limit = self._queue.get, self._queue.get_nowait, self.config.max_batch
        while True:
            batch = [get()]
            size = 1
            while size < limit:
                try:
                    item = get_nowait()
                except queue.Empty:
                    break
                batch.append(item)
                size += len(item[2]) if item[0] == APPEND_MANY else 1
            stopping = any(item[0] == _STOP for item in batch)
            if stopping:
                batch = [item for item in batch if item[0] != _STOP]
            if batch:
                self._write(batch)
            if stopping:
                return

    def _write(self, batch: list[tuple[int, Any, Any]]) -> None:
        conn = self._conn
        assert conn is not None
        try:
            fast = self._write_fast(conn, batch)
        # Never let the thread die with callers waiting: the general path below
        # retries the batch and reports what fails.
        except Exception:  # noqa: BLE001
            fast = None
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
        if fast is not None:
            outcomes, rows = fast
            self.stats.transactions += 1 if rows else 0
            self.stats.records += rows
            self._post(outcomes, {}, appended=rows > 0)
            return
        outcomes = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                rows = self._apply(conn, batch, outcomes)
                conn.execute("COMMIT")
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
        # A failure here must fail the callers, never kill the thread and leave
        # them waiting forever.
        except Exception as exc:  # noqa: BLE001
            # Nothing of this transaction is on disk; in-memory offsets may have
            # moved, so reload them from the file next time.
            self._data_version = None
            self._new_topics = {}
            failed: list[Outcome] = [
                (fut, None, BusWriteError(f"bus write failed: {exc!r}"))
                for _, fut, _ in batch
                if fut is not None
            ]
            self._post(failed, {}, appended=False)
            return
        self.stats.transactions += 1
        self.stats.records += rows
        new_topics, self._new_topics = self._new_topics, {}
        self._post(outcomes, new_topics, appended=rows > 0)

    def _write_fast(
        self, conn: sqlite3.Connection, batch: list[tuple[int, Any, Any]]
    ) -> tuple[list[Outcome], int] | None:
        """The common batch (plain appends to known topics, no dedup id twice) as
        one statement that is its own transaction; ``None`` when the batch needs
        the general path, or the statement failed and wrote nothing.

        Under load the writer otherwise waits for the GIL after each statement
        while the event loop thread runs, and those waits, not SQLite, were
        most of a transaction's time."""
        topics = self._topics
        if len(batch) > FAST_APPEND_ROWS or any(
            kind != APPEND or payload[0] not in topics for kind, _, payload in batch
        ):
            return None
        # _prepare moves round-robin counters; a fallback must not move them twice.
        robin = {payload[0]: topics[payload[0]].round_robin for _, _, payload in batch}
        now, nxt = self.config.clock_ms(), self._next
        moved: dict[int, int] = {}
        seen: set[tuple[int, str]] = set()
        outcomes: list[Outcome] = []
        rows: list[tuple[Any, ...]] = []
        for _, fut, payload in batch:
            try:
                name, part, pid, tid, key, value, hblob, dedup, size = self._prepare(conn, payload)
            except (ValueError, TypeError, OverflowError) as exc:
                outcomes.append((fut, None, exc))
                continue
            if dedup is not None:
                if (tid, dedup) in seen:
                    break  # a duplicate within the batch: the general path answers it
                seen.add((tid, dedup))
            offset = moved.get(pid, nxt[pid])
            moved[pid] = offset + 1
            rid = (pid << OFFSET_BITS) | offset
            rows.append((rid, now, size, key, value, hblob, tid, dedup))
            outcomes.append((fut, AppendResult(name, part, offset), None))
        else:
            try:
                if rows:
                    append_fast(conn, rows)
            except sqlite3.Error:
                pass  # a known dedup id, offsets moved by another process, a busy file...
            else:
                nxt.update(moved)
                return outcomes, len(rows)
        for name, count in robin.items():
            topics[name].round_robin = count
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        return None

    def _post(
        self, outcomes: list[Outcome], new_topics: dict[str, tuple[int, ...]], *, appended: bool
    ) -> None:
        # RuntimeError: the event loop is closed, nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self._on_batch, outcomes, new_topics, appended)

    def _apply(
        self, conn: sqlite3.Connection, batch: list[tuple[int, Any, Any]], outcomes: list[Outcome]
    ) -> int:
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        if version != self._data_version:
            # Another connection (another process) wrote since our last
            # transaction: the cached offsets and topics may be stale.
            self._reload(conn)
            self._data_version = version
        now = self.config.clock_ms()
        results: list[Any] = [None] * len(batch)
        # Appends are validated in batch order and placed together at the end,
        # so the dedup ids of the whole batch are looked up in one go.
        appends: list[tuple[int, int, _Prepared]] = []
        commits: list[tuple[str, str, int, int, int]] = []
        for index, (kind, _, payload) in enumerate(batch):
            try:
                if kind == APPEND:
                    appends.append((index, -1, self._prepare(conn, payload)))
                elif kind == APPEND_MANY:
                    prepared = [self._prepare(conn, request) for request in payload]
                    results[index] = [None] * len(prepared)
                    appends += [(index, n, p) for n, p in enumerate(prepared)]
                elif kind == COMMIT:
                    group, entries = payload
                    commits += [(group, t, p, o, now) for t, p, o in entries]
                elif kind == CREATE:
                    for spec in payload:
                        self._create(conn, spec.name, spec.partitions, spec, now)
                else:
                    results[index] = _retention.enforce(
                        conn,
                        (
                            (t.pids, t.retention_ms, t.retention_bytes)
                            for t in self._topics.values()
                        ),
                        self._next,
                        now_ms=payload if payload is not None else now,
                        dedup_retention_ms=self.config.dedup_retention_ms,
                        chunk=self.config.retention_chunk,
                    )
            except (ValueError, TypeError, OverflowError) as exc:
                # Bad input fails its own caller only; the rest of the batch goes on.
                results[index] = exc
        placed = self._place_all(conn, [p for _, _, p in appends], now) if appends else []
        for (index, position, _), result in zip(appends, placed, strict=True):
            if position < 0:
                results[index] = result
            else:
                results[index][position] = result
        for (_, fut, _), value in zip(batch, results, strict=True):
            if fut is not None:
                if isinstance(value, Exception):
                    outcomes.append((fut, None, value))
                else:
                    outcomes.append((fut, value, None))
        if commits:
            upsert_group_offsets(conn, commits)
        return len(placed) - sum(1 for r in placed if r.duplicate)

    def _prepare(self, conn: sqlite3.Connection, request: Request) -> _Prepared:
        """Validate one append and pick its partition; nothing is written yet."""
        name, value, key, headers, partition, dedup_id = request
        topic = self._topics.get(name) or self._create(
            conn, name, self.config.default_partitions, None, self.config.clock_ms()
        )
        count = len(topic.pids)
        if partition is None:
            if key is not None:
                partition = (murmur2(key) & 0x7FFFFFFF) % count
            else:
                partition = topic.round_robin % count
                topic.round_robin += 1
        elif not 0 <= partition < count:
            raise InvalidPartitionError(f"topic {name!r} has {count} partitions, not {partition}")
        hblob = encode_headers(headers)
        size = len(value) + (len(key) if key is not None else 0) + (len(hblob) if hblob else 0)
        return name, partition, topic.pids[partition], topic.tid, key, value, hblob, dedup_id, size

    def _place_all(
        self, conn: sqlite3.Connection, prepared: list[_Prepared], now: int
    ) -> list[AppendResult]:
        """Give each append its offset, or find it a duplicate (of a stored
        record, or of an earlier append of this batch); write them all."""
        wanted: dict[int, list[str]] = {}
        for _, _, _, tid, _, _, _, dedup_id, _ in prepared:
            if dedup_id is not None:
                wanted.setdefault(tid, []).append(dedup_id)
        known: dict[tuple[int, str], int] = {}
        for tid, ids in wanted.items():
            known.update(((tid, d), rid) for d, rid in find_dedup(conn, tid, ids).items())
        results: list[AppendResult] = []
        rows: list[tuple[int, int, int, bytes | None, bytes, bytes | None]] = []
        dedup_rows: list[tuple[int, int, str]] = []
        added: dict[int, int] = {}
        nxt = self._next
        for name, partition, pid, tid, key, value, hblob, dedup_id, size in prepared:
            if dedup_id is not None:
                orig = known.get((tid, dedup_id))
                if orig is not None:
                    self.stats.duplicates += 1
                    part = self._pid_topic[orig >> OFFSET_BITS][1]
                    results.append(AppendResult(name, part, orig & OFFSET_MASK, duplicate=True))
                    continue
            offset = nxt[pid]
            nxt[pid] = offset + 1
            rid = (pid << OFFSET_BITS) | offset
            if dedup_id is not None:
                known[(tid, dedup_id)] = rid
                dedup_rows.append((rid, tid, dedup_id))
            rows.append((rid, now, size, key, value, hblob))
            added[pid] = added.get(pid, 0) + size
            results.append(AppendResult(name, partition, offset))
        if dedup_rows:
            insert_many(conn, DEDUP_INSERT, 3, dedup_rows)
        if rows:
            insert_many(conn, RECORD_INSERT, 6, rows)
            advance_partitions(conn, [(p, nxt[p], n) for p, n in added.items()])
        return results

    def _create(
        self, conn: sqlite3.Connection, name: str, partitions: int, spec: TopicSpec | None, now: int
    ) -> _Topic:
        existing = self._topics.get(name)
        if existing is not None:
            return existing
        if not isinstance(name, str) or not _TOPIC_NAME.fullmatch(name) or name in (".", ".."):
            raise InvalidTopicError(f"invalid topic name {name!r}: use 1-249 of [A-Za-z0-9._-]")
        if partitions < 1:
            raise InvalidTopicError(f"topic {name!r} needs at least one partition")
        retention_ms = spec.retention_ms if spec else self.config.retention_ms
        retention_bytes = spec.retention_bytes if spec else self.config.retention_bytes
        tid, pids = insert_topic(conn, name, partitions, retention_ms, retention_bytes, now)
        for part, pid in enumerate(pids):
            self._next[pid] = 0
            self._pid_topic[pid] = (name, part)
        topic = self._topics[name] = _Topic(tid, pids, retention_ms, retention_bytes)
        self._new_topics[name] = tuple(pids)
        return topic

    def _reload(self, conn: sqlite3.Connection) -> None:
        old = self._topics
        self._topics = {}
        topics, partitions = read_layout(conn)
        for tid, name, count, rms, rbytes in topics:
            rr = old[name].round_robin if name in old else 0
            self._topics[name] = _Topic(tid, [0] * count, rms, rbytes, rr)
        self._next.clear()
        self._pid_topic.clear()
        for pid, name, part, nxt in partitions:
            self._topics[name].pids[part] = pid
            self._next[pid] = nxt
            self._pid_topic[pid] = (name, part)
        for name, topic in self._topics.items():
            if name not in old:
                self._new_topics[name] = tuple(topic.pids)
