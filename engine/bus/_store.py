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
from collections.abc import Sequence
from pathlib import Path

from engine.bus._errors import BusError, InvalidBusUrlError
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
        cached_statements=64,
    )
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    return conn


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
