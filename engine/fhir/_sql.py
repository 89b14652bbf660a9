"""SQL of the result store: searches over its index tables (``resources r``,
``idx_token``, ``idx_ref``, ``idx_date`` as ``d``), and the writes of one
transaction held back and inserted together. Values are always bound."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from engine.fhir.search import (
    Condition,
    IndexRows,
    ReferenceCondition,
    SearchQuery,
    TokenCondition,
)

Key = tuple[str, str]
#: A resource row as written: (type, id, version, last_updated, hash, content).
Row = tuple[str, str, int, str, str, str]

# Date prefixes over [start, end) ranges: the resource's (d) against the parameter's.
_DATE_SQL = {
    "eq": ('d.start >= ? AND d."end" <= ?', (0, 1)),
    "ne": ('NOT (d.start >= ? AND d."end" <= ?)', (0, 1)),
    "gt": ('d."end" > ?', (1,)),
    "lt": ("d.start < ?", (0,)),
    "ge": ('d."end" > ?', (0,)),
    "le": ("d.start < ?", (1,)),
    "sa": ("d.start >= ?", (1,)),
    "eb": ('d."end" <= ?', (0,)),
}


def _condition(cond: Condition) -> tuple[str, list[str], list[Any]]:
    """The index table of ``cond`` and its ORed alternatives as SQL over ``d``."""
    alts: list[str] = []
    args: list[Any] = []
    if isinstance(cond, TokenCondition):
        for system, value in cond.alternatives:
            parts = []
            if system is not None:
                parts.append("d.system = ?")
                args.append(system)
            if value is not None:
                parts.append("d.value = ?")
                args.append(value)
            alts.append("(" + (" AND ".join(parts) or "1") + ")")
        return "idx_token", alts, args
    if isinstance(cond, ReferenceCondition):
        for target in cond.alternatives:
            # A bare id matches a reference to that id of any type.
            if "/" in target:
                alts.append("d.target = ?")
            else:
                alts.append("substr(d.target, instr(d.target, '/') + 1) = ?")
            args.append(target)
        return "idx_ref", alts, args
    for prefix, start, end in cond.alternatives:
        sql, picks = _DATE_SQL[prefix]
        alts.append(f"({sql})")
        args.extend((start, end)[k] for k in picks)
    return "idx_date", alts, args


def search_sql(query: SearchQuery) -> tuple[str, list[Any]]:
    """SQL over ``resources r`` selecting what ``query`` matches."""
    clauses, args = ["r.type = ?"], [query.type]
    if query.ids is not None:
        clauses.append(f"r.id IN ({','.join('?' * len(query.ids))})" if query.ids else "0")
        args.extend(query.ids)
    for cond in query.conditions:
        table, alts, alt_args = _condition(cond)
        clauses.append(
            f"EXISTS (SELECT 1 FROM {table} d WHERE d.type = r.type AND d.id = r.id"
            f" AND d.param = ? AND ({' OR '.join(alts)}))"
        )
        args.extend([cond.param, *alt_args])
    return " AND ".join(clauses), args


_CURRENT_SQL = "SELECT type, id, version, last_updated, hash, content FROM resources"
_INSERT_RESOURCE = (
    "INSERT OR REPLACE INTO resources (type, id, version, last_updated, hash, content)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
_INDEX_TABLES = ("idx_token", "idx_ref", "idx_date")
_INDEX_INSERTS = (
    "INSERT INTO idx_token (type, id, param, system, value) VALUES (?, ?, ?, ?, ?)",
    "INSERT INTO idx_ref (type, id, param, target) VALUES (?, ?, ?, ?)",
    'INSERT INTO idx_date (type, id, param, start, "end") VALUES (?, ?, ?, ?, ?)',
)
# Ids per SELECT ... IN (...), well under SQLite's limit on bound values.
_LOOKUP_CHUNK = 400


class PendingWrites:
    """Resource versions written in one transaction and not yet in the file.

    Rows and index entries are held here and inserted together by
    :meth:`flush` (a few ``executemany`` instead of statements per resource).
    A group writes into a child (``PendingWrites(parent)``) that is merged
    into its parent when the group succeeds and dropped when it fails, so a
    failed group leaves nothing behind and needs no savepoint. ``current``
    also remembers the rows read from the file, so each is read once.
    """

    def __init__(self, parent: PendingWrites | None = None) -> None:
        self.parent = parent
        # The current row of each key seen so far; None where there is none.
        self.current: dict[Key, Row | None] = {}
        self.rows: dict[Key, Row] = {}
        self.index: dict[Key, IndexRows] = {}
        # Keys whose index entries in the file are outdated.
        self.stale: set[Key] = set()

    def lookup(self, db: sqlite3.Connection, key: Key) -> Row | None:
        """The current row of ``key``: written here, in the parent, or in the file."""
        pending: PendingWrites | None = self
        while pending is not None:
            if key in pending.current:
                return pending.current[key]
            pending = pending.parent
        row = db.execute(f"{_CURRENT_SQL} WHERE type = ? AND id = ?", key).fetchone()
        self._root().current[key] = row
        return row  # type: ignore[no-any-return]

    def prefetch(self, db: sqlite3.Connection, keys: Iterable[Key]) -> None:
        """Read the file's rows of ``keys`` (not yet seen) with few SELECTs."""
        root = self._root()
        by_type: dict[str, list[str]] = {}
        for type_, id_ in keys:
            if (type_, id_) not in root.current:
                root.current[type_, id_] = None
                by_type.setdefault(type_, []).append(id_)
        for type_, ids in by_type.items():
            for start in range(0, len(ids), _LOOKUP_CHUNK):
                chunk = ids[start : start + _LOOKUP_CHUNK]
                marks = ",".join("?" * len(chunk))
                sql = f"{_CURRENT_SQL} WHERE type = ? AND id IN ({marks})"
                for row in db.execute(sql, [type_, *chunk]):
                    root.current[row[0], row[1]] = row

    def put(self, row: Row, index: IndexRows, *, replaces: bool) -> None:
        """Hold ``row`` and its index entries; ``replaces`` an existing version."""
        key = (row[0], row[1])
        self.current[key] = row
        self.rows[key] = row
        self.index[key] = index
        if replaces:
            self.stale.add(key)

    def merge(self, child: PendingWrites) -> None:
        """Take over what a succeeded group ``child`` wrote."""
        self.current.update(child.current)
        self.rows.update(child.rows)
        self.index.update(child.index)
        self.stale |= child.stale

    def flush(self, db: sqlite3.Connection) -> None:
        """Write what is held into the file (inside the caller's transaction)."""
        if self.rows:
            db.executemany(_INSERT_RESOURCE, self.rows.values())
        if self.stale:
            for table in _INDEX_TABLES:
                db.executemany(f"DELETE FROM {table} WHERE type = ? AND id = ?", self.stale)
        tokens: list[tuple[Any, ...]] = []
        refs: list[tuple[Any, ...]] = []
        dates: list[tuple[Any, ...]] = []
        for (type_, id_), rows in self.index.items():
            tokens.extend((type_, id_, p, s or "", v) for p, s, v in rows.tokens)
            refs.extend((type_, id_, p, t) for p, t in rows.references)
            dates.extend((type_, id_, p, s, e) for p, s, e in rows.dates)
        for sql, values in zip(_INDEX_INSERTS, (tokens, refs, dates), strict=True):
            if values:
                db.executemany(sql, values)
        self.rows.clear()
        self.index.clear()
        self.stale.clear()

    def _root(self) -> PendingWrites:
        pending = self
        while pending.parent is not None:
            pending = pending.parent
        return pending


__all__ = ["Key", "PendingWrites", "Row", "search_sql"]
