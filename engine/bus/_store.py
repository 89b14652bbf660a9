"""The embedded log's SQLite layout, connections and read queries.

Records of every partition live in one rowid table. A record's rowid is
``pid << 40 | offset`` where ``pid`` numbers a (topic, partition): one B-tree
keyed by (partition, offset) without a second index to maintain, and a range
scan of a partition is a rowid range scan. 2**40 offsets per partition and
2**23 partitions keep rowids inside SQLite's signed 64 bits.
"""

from __future__ import annotations

import sqlite3
import struct
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from engine.bus._errors import BusError, BusWriteError, InvalidBusUrlError
from engine.types import Headers, Record, TopicPartition

SCHEMA_VERSION = 1
OFFSET_BITS = 40
OFFSET_MASK = (1 << OFFSET_BITS) - 1
MAX_PIDS = 1 << 23

SCHEMA = """
CREATE TABLE IF NOT EXISTS topics (
    tid INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    partitions INTEGER NOT NULL,
    retention_ms INTEGER,
    retention_bytes INTEGER,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS partitions (
    pid INTEGER PRIMARY KEY,
    topic TEXT NOT NULL,
    part INTEGER NOT NULL,
    start_offset INTEGER NOT NULL DEFAULT 0,
    next_offset INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    UNIQUE (topic, part)
);
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY,
    ts INTEGER NOT NULL,
    size INTEGER NOT NULL,
    key BLOB,
    value BLOB NOT NULL,
    headers BLOB
);
CREATE TABLE IF NOT EXISTS dedup (
    rid INTEGER PRIMARY KEY,
    tid INTEGER NOT NULL,
    dedup_id TEXT NOT NULL,
    UNIQUE (tid, dedup_id)
);
CREATE TABLE IF NOT EXISTS group_offsets (
    grp TEXT NOT NULL,
    topic TEXT NOT NULL,
    part INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    committed_ms INTEGER NOT NULL,
    PRIMARY KEY (grp, topic, part)
) WITHOUT ROWID;
"""
# ts and size come before the blobs so retention scans never touch overflow pages.

_HEADER = struct.Struct("<HI")

_FETCH = (
    "SELECT id, key, value, headers, ts FROM records WHERE id >= ? AND id < ? ORDER BY id LIMIT ?"
)


def path_from_url(url: str) -> Path:
    """``sqlite:///var/bus.db`` -> ``var/bus.db``; ``sqlite:////abs/bus.db`` -> ``/abs/bus.db``."""
    scheme, sep, rest = url.partition("://")
    if scheme.lower() != "sqlite" or not sep or not rest.startswith("/") or len(rest) < 2:
        raise InvalidBusUrlError(
            f"expected sqlite:///relative/path or sqlite:////abs/path: {url!r}"
        )
    path = rest[1:].split("?", 1)[0]
    if not path or path == ":memory:":
        raise InvalidBusUrlError(f"the embedded log needs a file path: {url!r}")
    return Path(path)


def connect(path: Path, *, busy_timeout_ms: int, synchronous: str) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit) usable from any
    one thread at a time."""
    conn = sqlite3.connect(
        path,
        timeout=busy_timeout_ms / 1000,
        isolation_level=None,
        check_same_thread=False,
        cached_statements=STATEMENT_CACHE,
    )
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    return conn


class ReadConnections:
    """One read-only connection per reading thread, opened on first use and all
    closed together."""

    def __init__(self, path: Path, *, busy_timeout_ms: int, synchronous: str) -> None:
        self._path, self._busy_timeout_ms, self._synchronous = path, busy_timeout_ms, synchronous
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def get(self) -> sqlite3.Connection:
        """This thread's connection."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(
                self._path, busy_timeout_ms=self._busy_timeout_ms, synchronous=self._synchronous
            )
            conn.execute("PRAGMA query_only = ON")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def close_all(self) -> None:
        """Close every connection; threads that read again get new ones."""
        with self._lock:
            conns, self._all = self._all, []
        self._local = threading.local()
        for conn in conns:
            conn.close()


def init_schema(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL and create missing tables (safe to race between processes)."""
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise BusError(f"SQLite refused WAL mode (got {mode!r}); the log needs WAL")
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise BusError(f"bus file has schema version {version}, newer than {SCHEMA_VERSION}")
        for statement in SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


# Rows per multi-row statement. Each distinct row count is its own prepared
# statement; up to this many, a batch takes exactly one.
_MAX_ROWS = 64
# Row counts the dedup lookup is padded up to, so a few statements serve all.
_LOOKUP_SIZES = (1, 2, 4, 8, 16, 32, 64)

STATEMENT_CACHE = 256
"""Prepared statements kept per connection: every multi-row shape, with room."""

RECORD_INSERT = "INSERT INTO records (id, ts, size, key, value, headers) VALUES "
DEDUP_INSERT = "INSERT INTO dedup (rid, tid, dedup_id) VALUES "
_PARTITION_UPDATE = (
    "UPDATE partitions SET next_offset = x.column2, bytes = bytes + x.column3"
    " FROM (VALUES {}) AS x WHERE partitions.pid = x.column1"
)
_PARTITION_UPDATE_ONE = "UPDATE partitions SET next_offset = ?, bytes = bytes + ? WHERE pid = ?"
# UPDATE ... FROM arrived in SQLite 3.33.
_UPDATE_FROM = sqlite3.sqlite_version_info >= (3, 33)


@lru_cache(maxsize=STATEMENT_CACHE)
def _values_sql(head: str, width: int, rows: int) -> str:
    group = "(" + ",".join("?" * width) + ")"
    return head + ",".join([group] * rows)


def insert_many(
    conn: sqlite3.Connection, head: str, width: int, rows: Sequence[Sequence[Any]]
) -> None:
    """Insert ``rows`` with multi-row ``head ... VALUES (...), (...)`` statements.

    ``executemany`` steps a statement once per row, and every step releases and
    retakes the GIL: under load the writer thread then waits for the event
    loop thread once per row. One statement per batch waits once."""
    for start in range(0, len(rows), _MAX_ROWS):
        chunk = rows[start : start + _MAX_ROWS]
        params = [value for row in chunk for value in row]
        conn.execute(_values_sql(head, width, len(chunk)), params)


def advance_partitions(conn: sqlite3.Connection, moves: Sequence[tuple[int, int, int]]) -> None:
    """Set ``next_offset`` and add to ``bytes`` for each ``(pid, next_offset,
    added_bytes)``, in one statement where SQLite allows it."""
    if not _UPDATE_FROM:
        conn.executemany(_PARTITION_UPDATE_ONE, [(n, b, pid) for pid, n, b in moves])
        return
    for start in range(0, len(moves), _MAX_ROWS):
        chunk = moves[start : start + _MAX_ROWS]
        sql = _PARTITION_UPDATE.format(",".join(["(?,?,?)"] * len(chunk)))
        conn.execute(sql, [value for move in chunk for value in move])


@lru_cache(maxsize=len(_LOOKUP_SIZES))
def _find_dedup_sql(count: int) -> str:
    return (
        "SELECT dedup_id, rid FROM dedup WHERE tid = ? AND dedup_id IN ("
        + ",".join("?" * count)
        + ")"
    )


def find_dedup(conn: sqlite3.Connection, tid: int, dedup_ids: Sequence[str]) -> dict[str, int]:
    """The stored record id of each of ``dedup_ids`` already known in topic ``tid``."""
    found: dict[str, int] = {}
    for start in range(0, len(dedup_ids), _MAX_ROWS):
        chunk = list(dedup_ids[start : start + _MAX_ROWS])
        size = next(size for size in _LOOKUP_SIZES if size >= len(chunk))
        # Padded with repeats of the last id: IN ignores them, the statement is reused.
        chunk += [chunk[-1]] * (size - len(chunk))
        found.update(conn.execute(_find_dedup_sql(size), (tid, *chunk)))
    return found


FAST_APPEND_ROWS = _MAX_ROWS
"""Most appends one fast-path statement takes (see ``install_fast_append``)."""

# INSERT INTO temp.appends writes one record in full: the offset check, the
# dedup id, the record and the partition's next offset and size. The offset
# check makes the statement fail if another connection appended meanwhile, and
# the dedup table's UNIQUE makes it fail on a known dedup id: the writer then
# takes its general path, which looks both up. Temp objects live in this
# connection only; the file's schema is untouched.
_FAST_APPEND_SCHEMA = (
    "CREATE TEMP VIEW IF NOT EXISTS appends"
    " (id, ts, size, key, value, headers, tid, dedup_id)"
    " AS SELECT 0, 0, 0, NULL, NULL, NULL, 0, NULL WHERE 0",
    f"""CREATE TEMP TRIGGER IF NOT EXISTS appends_insert INSTEAD OF INSERT ON appends
BEGIN
    SELECT RAISE(ABORT, 'stale offset')
        WHERE (SELECT next_offset FROM partitions WHERE pid = NEW.id >> {OFFSET_BITS})
            IS NOT NEW.id & {OFFSET_MASK};
    INSERT INTO dedup (rid, tid, dedup_id)
        SELECT NEW.id, NEW.tid, NEW.dedup_id WHERE NEW.dedup_id IS NOT NULL;
    INSERT INTO records (id, ts, size, key, value, headers)
        VALUES (NEW.id, NEW.ts, NEW.size, NEW.key, NEW.value, NEW.headers);
    UPDATE partitions SET next_offset = (NEW.id & {OFFSET_MASK}) + 1, bytes = bytes + NEW.size
        WHERE pid = NEW.id >> {OFFSET_BITS};
END""",
)
_FAST_APPEND = "INSERT INTO temp.appends (id, ts, size, key, value, headers, tid, dedup_id) VALUES "


def install_fast_append(conn: sqlite3.Connection) -> None:
    """Create the connection's ``temp.appends`` view (outside any transaction)."""
    for statement in _FAST_APPEND_SCHEMA:
        conn.execute(statement)


def append_fast(conn: sqlite3.Connection, rows: Sequence[Sequence[Any]]) -> None:
    """Write up to ``FAST_APPEND_ROWS`` records, each ``(id, ts, size, key,
    value, headers, tid, dedup_id)``, as one statement in its own transaction.

    One statement is one call into SQLite with the GIL released, fsync
    included; BEGIN, the inserts and COMMIT as separate statements each hand
    the GIL back and forth with the event loop thread. Raises
    ``sqlite3.IntegrityError`` (nothing written) on a known dedup id or an
    offset that is not the partition's next."""
    params = [value for row in rows for value in row]
    conn.execute(_values_sql(_FAST_APPEND, 8, len(rows)), params)


def insert_topic(
    conn: sqlite3.Connection,
    name: str,
    partitions: int,
    retention_ms: int | None,
    retention_bytes: int | None,
    now_ms: int,
) -> tuple[int, list[int]]:
    """Add a topic and its partitions; returns its tid and its pids by partition."""
    tid = conn.execute(
        "INSERT INTO topics (name, partitions, retention_ms, retention_bytes, created_ms)"
        " VALUES (?, ?, ?, ?, ?)",
        (name, partitions, retention_ms, retention_bytes, now_ms),
    ).lastrowid
    assert tid is not None
    pids: list[int] = []
    for part in range(partitions):
        pid = conn.execute(
            "INSERT INTO partitions (topic, part) VALUES (?, ?)", (name, part)
        ).lastrowid
        assert pid is not None
        if pid >= MAX_PIDS:
            raise BusWriteError(f"the log holds too many partitions ({pid})")
        pids.append(pid)
    return tid, pids


def read_layout(
    conn: sqlite3.Connection,
) -> tuple[list[tuple[int, str, int, int | None, int | None]], list[tuple[int, str, int, int]]]:
    """Every topic ``(tid, name, partitions, retention_ms, retention_bytes)`` and
    every partition ``(pid, topic, part, next_offset)``."""
    topics = conn.execute(
        "SELECT tid, name, partitions, retention_ms, retention_bytes FROM topics"
    ).fetchall()
    partitions = conn.execute("SELECT pid, topic, part, next_offset FROM partitions").fetchall()
    return topics, partitions


def upsert_group_offsets(
    conn: sqlite3.Connection, rows: Sequence[tuple[str, str, int, int, int]]
) -> None:
    """Store committed offsets, each ``(group, topic, partition, next_offset, at_ms)``."""
    conn.executemany(
        "INSERT INTO group_offsets (grp, topic, part, next_offset, committed_ms)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (grp, topic, part) DO UPDATE SET"
        " next_offset = excluded.next_offset, committed_ms = excluded.committed_ms",
        rows,
    )


def encode_headers(headers: Headers) -> bytes | None:
    """Compact header encoding: per header, ``<u16 name length><u32 value length>``
    then the UTF-8 name and the value. ``None`` for no headers."""
    if not headers:
        return None
    parts: list[bytes] = []
    for name, value in headers:
        raw_name = name.encode()
        raw_value = bytes(value)
        parts += (_HEADER.pack(len(raw_name), len(raw_value)), raw_name, raw_value)
    return b"".join(parts)


def decode_headers(blob: bytes | None) -> tuple[tuple[str, bytes], ...]:
    """Inverse of ``encode_headers``."""
    if not blob:
        return ()
    out: list[tuple[str, bytes]] = []
    pos, end = 0, len(blob)
    while pos < end:
        name_len, value_len = _HEADER.unpack_from(blob, pos)
        pos += 6
        name = blob[pos : pos + name_len].decode()
        pos += name_len
        out.append((name, blob[pos : pos + value_len]))
        pos += value_len
    return tuple(out)


FetchPlan = Sequence[tuple[int, str, int, int]]
"""(pid, topic, partition, next offset to read) per partition, in read order."""


def fetch(conn: sqlite3.Connection, plan: FetchPlan, max_records: int) -> list[Record]:
    """Up to ``max_records`` records, taking partitions in ``plan`` order."""
    out: list[Record] = []
    for pid, topic, partition, offset in plan:
        remaining = max_records - len(out)
        if remaining <= 0:
            break
        base = pid << OFFSET_BITS
        rows = conn.execute(_FETCH, (base | offset, base + (1 << OFFSET_BITS), remaining))
        out += [
            Record(topic, partition, rid & OFFSET_MASK, key, value, decode_headers(hdrs), ts)
            for rid, key, value, hdrs, ts in rows
        ]
    return out


def topic_pids(conn: sqlite3.Connection, topic: str) -> tuple[int, ...] | None:
    """pids of ``topic`` by partition number, or ``None`` if the topic does not exist."""
    rows = conn.execute(
        "SELECT pid FROM partitions WHERE topic = ? ORDER BY part", (topic,)
    ).fetchall()
    return tuple(pid for (pid,) in rows) if rows else None


def end_offsets(conn: sqlite3.Connection, topic: str) -> dict[int, int]:
    """Next offset to be written per partition of ``topic`` (empty if unknown)."""
    rows = conn.execute("SELECT part, next_offset FROM partitions WHERE topic = ?", (topic,))
    return {int(part): int(offset) for part, offset in rows}


def committed(
    conn: sqlite3.Connection, group: str, topics: Sequence[str] | None = None
) -> dict[TopicPartition, int]:
    """Committed next offsets of ``group``, optionally only for ``topics``."""
    rows = conn.execute(
        "SELECT topic, part, next_offset FROM group_offsets WHERE grp = ?", (group,)
    ).fetchall()
    return {
        TopicPartition(topic, int(part)): int(offset)
        for topic, part, offset in rows
        if topics is None or topic in topics
    }
