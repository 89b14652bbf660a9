"""The model's clock: a heap of pending events and seeded random streams."""

from __future__ import annotations

import heapq
import random


class EventQueue:
    """A time-ordered heap of ``(time, seq, kind, subject, token)``.

    ``seq`` breaks ties in insertion order, which keeps a run deterministic.
    ``subject`` is a patient index (or a ward index for bed events) and
    ``token`` lets a handler ignore events that were superseded after scheduling.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, str, int, int]] = []
        self._seq = 0

    def push(self, at: int, kind: str, subject: int = -1, token: int = 0) -> None:
        """Schedule ``kind`` at ``at`` seconds."""
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, kind, subject, token))

    def pop(self) -> tuple[int, str, int, int]:
        """Remove and return the earliest event as ``(at, kind, subject, token)``."""
        at, _, kind, subject, token = heapq.heappop(self._heap)
        return at, kind, subject, token

    def peek_time(self) -> int | None:
        """Time of the earliest event, if any."""
        return self._heap[0][0] if self._heap else None

    def __len__(self) -> int:
        return len(self._heap)


def derive_rng(seed: int, *parts: object) -> random.Random:
    """An independent random stream for one purpose (arrivals, beds, patient n).

    Seeding with a string hashes it (SHA-512), so the streams are stable across
    Python versions and independent of ``PYTHONHASHSEED``.
    """
    return random.Random("/".join([str(seed), *map(str, parts)]))
