"""Durable keyed state for pipeline steps, on SQLite.

Each step's state lives in memory (census-sized state is small) and is written
through in one transaction together with the input offsets the step has
applied. After a crash the step reloads both and skips records it already
applied, so state never counts an event twice, whatever the bus redelivers.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from pathlib import Path

from engine._sqlite import SqliteWorker
from engine.types import TopicPartition

_SCHEMA = """
CREATE TABLE IF NOT EXISTS state (
    step TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
    PRIMARY KEY (step, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS applied (
    step TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (step, topic, partition)
) WITHOUT ROWID;
"""


class StepState:
    """The in-memory view of one step's keyed state, tracking what changed.

    ``begin()`` opens an undo journal for one event and ``rollback()`` restores
    every key it touched, so a step that fails half-way through an event leaves
    the state as it was before that event.
    """

    def __init__(self, values: dict[str, bytes]) -> None:
        self._values = values
        self._dirty: dict[str, bytes | None] = {}
        self._undo: dict[str, tuple[bytes | None, bool, bytes | None]] | None = None

    def get(self, key: str) -> bytes | None:
        return self._values.get(key)

    def _remember(self, key: str) -> None:
        undo = self._undo
        if undo is not None and key not in undo:
            undo[key] = (self._values.get(key), key in self._dirty, self._dirty.get(key))

    def put(self, key: str, value: bytes) -> None:
        self._remember(key)
        self._values[key] = value
        self._dirty[key] = value

    def delete(self, key: str) -> None:
        self._remember(key)
        if self._values.pop(key, None) is not None:
            self._dirty[key] = None

    def items(self) -> Iterator[tuple[str, bytes]]:
        return iter(list(self._values.items()))

    def take_dirty(self) -> dict[str, bytes | None]:
        dirty, self._dirty = self._dirty, {}
        return dirty

    def begin(self) -> None:
        """Start journaling changes (one event's worth)."""
        self._undo = {}

    def end(self) -> None:
        """Keep the journaled changes."""
        self._undo = None

    def rollback(self) -> None:
        """Undo every change since :meth:`begin`."""
        undo, self._undo = self._undo or {}, None
        for key, (value, was_dirty, dirty_value) in undo.items():
            if value is None:
                self._values.pop(key, None)
            else:
                self._values[key] = value
            if was_dirty:
                self._dirty[key] = dirty_value
            else:
                self._dirty.pop(key, None)


class StateStore:
    """SQLite file holding every step's state and applied offsets."""

    def __init__(self, path: Path) -> None:
        self._sqlite = SqliteWorker(path, _SCHEMA, thread_name="state")

    async def load(self, step: str) -> tuple[StepState, dict[TopicPartition, int]]:
        """The step's state and the next offset to apply per input partition."""

        def read(db: sqlite3.Connection) -> tuple[StepState, dict[TopicPartition, int]]:
            values = {
                k: bytes(v)
                for k, v in db.execute("SELECT key, value FROM state WHERE step = ?", (step,))
            }
            applied = {
                TopicPartition(t, p): o
                for t, p, o in db.execute(
                    "SELECT topic, partition, next_offset FROM applied WHERE step = ?", (step,)
                )
            }
            return StepState(values), applied

        return await self._sqlite.run(read)

    async def commit(
        self,
        step: str,
        dirty: Mapping[str, bytes | None],
        applied: Mapping[TopicPartition, int],
    ) -> None:
        """Write changed keys and applied offsets in one transaction."""

        def write(db: sqlite3.Connection) -> None:
            db.execute("BEGIN")
            try:
                db.executemany(
                    "INSERT OR REPLACE INTO state (step, key, value) VALUES (?, ?, ?)",
                    [(step, k, v) for k, v in dirty.items() if v is not None],
                )
                db.executemany(
                    "DELETE FROM state WHERE step = ? AND key = ?",
                    [(step, k) for k, v in dirty.items() if v is None],
                )
                db.executemany(
                    "INSERT OR REPLACE INTO applied (step, topic, partition, next_offset)"
                    " VALUES (?, ?, ?, ?)",
                    [(step, tp.topic, tp.partition, o) for tp, o in applied.items()],
                )
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

        await self._sqlite.run(write)

    async def close(self) -> None:
        """Close the file; the store is not used again."""
        await self._sqlite.close()
