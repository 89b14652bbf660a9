"""Retention of the embedded log: drop the oldest records of a partition by age
and by size, and the dedup ids that point at them. Runs inside a writer
transaction. Offsets are never reused: ``next_offset`` is untouched and the
partition's ``start_offset`` moves forward.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping

from engine.bus._store import OFFSET_BITS, OFFSET_MASK

_FIRST_AT_OR_AFTER = (
    "SELECT id FROM records WHERE id >= ? AND id < ? AND ts >= ? ORDER BY id LIMIT 1"
)


def _first_at_or_after(conn: sqlite3.Connection, lo: int, hi: int, cutoff_ms: int) -> int:
    """rowid of the first record in ``[lo, hi)`` not older than ``cutoff_ms``, else ``hi``.
    Append timestamps grow with offsets, so everything before it is older."""
    row = conn.execute(_FIRST_AT_OR_AFTER, (lo, hi, cutoff_ms)).fetchone()
    return hi if row is None else int(row[0])


def _size_cut(conn: sqlite3.Connection, lo: int, hi: int, stored: int, limit: int) -> int:
    """rowid from which the partition fits in ``limit`` bytes."""
    remaining = stored
    for rid, size in conn.execute(
        "SELECT id, size FROM records WHERE id >= ? AND id < ? ORDER BY id", (lo, hi)
    ):
        if remaining <= limit:
            return int(rid)
        remaining -= size
    return hi


def enforce(
    conn: sqlite3.Connection,
    topics: Iterable[tuple[Iterable[int], int | None, int | None]],
    next_offsets: Mapping[int, int],
    *,
    now_ms: int,
    dedup_retention_ms: int | None,
    chunk: int,
) -> tuple[int, bool]:
    """Apply retention to every partition of ``topics`` (pids, retention_ms,
    retention_bytes). Deletes at most ``chunk`` records per partition so a big
    backlog does not hold the write lock for long; returns (records deleted,
    whether more remain to delete)."""
    deleted, more = 0, False
    for pids, retention_ms, retention_bytes in topics:
        if retention_ms is None and retention_bytes is None and dedup_retention_ms is None:
            continue
        for pid in pids:
            start, stored = conn.execute(
                "SELECT start_offset, bytes FROM partitions WHERE pid = ?", (pid,)
            ).fetchone()
            base = pid << OFFSET_BITS
            lo, hi = base | start, base | next_offsets[pid]
            cut = lo
            if retention_ms is not None:
                cut = max(cut, _first_at_or_after(conn, lo, hi, now_ms - retention_ms))
            if retention_bytes is not None and stored > retention_bytes:
                cut = max(cut, _size_cut(conn, lo, hi, stored, retention_bytes))
            if cut > lo + chunk:
                cut, more = lo + chunk, True
            if cut > lo:
                count, freed = conn.execute(
                    "SELECT count(*), coalesce(sum(size), 0) FROM records WHERE id >= ? AND id < ?",
                    (lo, cut),
                ).fetchone()
                conn.execute("DELETE FROM records WHERE id >= ? AND id < ?", (lo, cut))
                conn.execute(
                    "UPDATE partitions SET start_offset = ?, bytes = bytes - ? WHERE pid = ?",
                    (cut & OFFSET_MASK, freed, pid),
                )
                deleted += count
            # Dedup ids go with their records, or earlier under dedup_retention_ms.
            dedup_cut = cut
            if dedup_retention_ms is not None:
                oldest = conn.execute(
                    "SELECT min(rid) FROM dedup WHERE rid >= ? AND rid < ?", (base, hi)
                ).fetchone()[0]
                if oldest is not None:
                    dedup_cut = max(
                        dedup_cut,
                        _first_at_or_after(conn, max(oldest, cut), hi, now_ms - dedup_retention_ms),
                    )
            conn.execute("DELETE FROM dedup WHERE rid >= ? AND rid < ?", (base, dedup_cut))
    return deleted, more
