"""One SQLite connection owned by one worker thread, for the engine's SQLite stores.

Every statement runs on the worker's single thread, off the event loop, so a
store's connection is never used from two threads and its transactions never
interleave. The file is opened on first use in WAL mode with
``synchronous=FULL`` (a commit survives power loss) and the store's schema
script applied.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

_T = TypeVar("_T")


class SqliteWorker:
    """The connection to the SQLite file at ``path``, created with ``schema``."""

    def __init__(self, path: Path, schema: str, *, thread_name: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._schema = schema
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(self._schema)
            self._db = db
        return self._db

    async def run(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        """``fn(connection)`` on the worker thread; its result or its exception."""

        def call() -> _T:
            with self._lock:
                return fn(self._connect())

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def close(self) -> None:
        """Close the connection (if one was opened) and end the worker thread."""

        def close(db: sqlite3.Connection) -> None:
            db.close()
            self._db = None

        if self._db is not None:
            await self.run(close)
        self._executor.shutdown(wait=True)
