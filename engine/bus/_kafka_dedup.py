"""The local dedup index of the Kafka driver.

Kafka has no server-side dedup by application id (the idempotent producer only
removes the producer's own retries within one session), so the driver keeps a
small SQLite table of ``(topic, dedup_id) -> (partition, offset)``. An id is
recorded only after the broker acknowledged the record, and consulted before
producing. A crash between the broker's ack and the index write lets one resend
through, so dedup in Kafka mode is best-effort and consumers stay idempotent.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from engine.bus._errors import BusClosedError

MEMORY = ":memory:"

# Prune on open and again every this many recorded ids, so the index stays
# bounded without a background task.
_PRUNE_EVERY = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kafka_dedup (
    topic TEXT NOT NULL,
    dedup_id TEXT NOT NULL,
    partition INTEGER NOT NULL,
    "offset" INTEGER NOT NULL,
    recorded_ms INTEGER NOT NULL,
    PRIMARY KEY (topic, dedup_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kafka_dedup_recorded ON kafka_dedup (recorded_ms);
"""


class DedupIndex:
    """Dedup ids of records the broker acknowledged, in a SQLite file.

    ``path`` is a file (its folder is created) or ``":memory:"``. Entries older
    than ``retention_ms`` are pruned; ``None`` keeps them forever.
    """

    def __init__(self, path: str | Path, *, retention_ms: int | None = None) -> None:
        self.path = str(path)
        self.retention_ms = retention_ms
        self._db: sqlite3.Connection | None = None
        self._since_prune = 0

    def open(self) -> None:
        if self._db is not None:
            return
        if self.path != MEMORY:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None)
        # WAL without fsync per commit: an application crash loses nothing
        # committed; a power loss may lose the latest ids, which the
        # best-effort contract already allows.
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        self._db = db
        self.prune()

    def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.close()

    def lookup(self, topic: str, dedup_id: str) -> tuple[int, int] | None:
        """``(partition, offset)`` of the record stored under ``dedup_id``, if any."""
        row = (
            self._conn()
            .execute(
                'SELECT partition, "offset" FROM kafka_dedup WHERE topic = ? AND dedup_id = ?',
                (topic, dedup_id),
            )
            .fetchone()
        )
        if row is None:
            return None
        return int(row[0]), int(row[1])

    def record(self, topic: str, dedup_id: str, partition: int, offset: int) -> None:
        """Remember that ``dedup_id`` was acknowledged at ``partition``/``offset``."""
        self._conn().execute(
            "INSERT OR IGNORE INTO kafka_dedup VALUES (?, ?, ?, ?, ?)",
            (topic, dedup_id, partition, offset, _now_ms()),
        )
        self._since_prune += 1
        if self._since_prune >= _PRUNE_EVERY:
            self.prune()

    def prune(self, now_ms: int | None = None) -> int:
        """Drop entries older than the retention (as of ``now_ms``, default the
        clock); return how many were dropped."""
        self._since_prune = 0
        if self.retention_ms is None:
            return 0
        now = _now_ms() if now_ms is None else now_ms
        cursor = self._conn().execute(
            "DELETE FROM kafka_dedup WHERE recorded_ms < ?", (now - self.retention_ms,)
        )
        return cursor.rowcount

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise BusClosedError("the Kafka dedup index is not open")
        return self._db


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
