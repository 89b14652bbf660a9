"""Counters of an MLLP listener and its bounded sample of ACK latencies."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


class LatencyReservoir:
    """A bounded uniform sample of latencies in seconds (reservoir sampling)."""

    __slots__ = ("_capacity", "_rng", "_samples", "count")

    def __init__(self, capacity: int = 8192, *, seed: int = 0) -> None:
        self._capacity = capacity
        self._samples: list[float] = []
        self._rng = random.Random(seed)
        self.count = 0

    def add(self, seconds: float) -> None:
        self.count += 1
        if len(self._samples) < self._capacity:
            self._samples.append(seconds)
            return
        slot = self._rng.randrange(self.count)
        if slot < self._capacity:
            self._samples[slot] = seconds

    def samples(self) -> list[float]:
        """A copy of the current sample (at most ``capacity`` values)."""
        return list(self._samples)

    def percentile(self, q: float) -> float | None:
        """The ``q``-quantile (0..1, nearest rank) of the sample; None when empty."""
        if not self._samples:
            return None
        ordered = sorted(self._samples)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def p50(self) -> float | None:
        return self.percentile(0.50)

    def p99(self) -> float | None:
        return self.percentile(0.99)


@dataclass(slots=True)
class ListenerStats:
    """Counters of one listener; ``acks`` counts replies by MSA-1 code."""

    messages_in: int = 0
    bytes_in: int = 0
    acks: Counter[str] = field(default_factory=Counter)
    oversize_frames: int = 0
    append_failures: int = 0
    strict_refused: int = 0
    connections_open: int = 0
    connections_waiting: int = 0
    connections_total: int = 0
    connections_refused: int = 0
    idle_closed: int = 0
    latency: LatencyReservoir = field(default_factory=LatencyReservoir)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures; ACK latency percentiles in ms (0.0 before any ACK)."""
        p50, p99 = self.latency.p50(), self.latency.p99()
        return {
            "messages": self.messages_in,
            "bytes": self.bytes_in,
            "acks": dict(self.acks),
            "oversize_frames": self.oversize_frames,
            "append_failures": self.append_failures,
            "strict_refused": self.strict_refused,
            "connections_open": self.connections_open,
            "connections_waiting": self.connections_waiting,
            "connections_total": self.connections_total,
            "connections_refused": self.connections_refused,
            "idle_closed": self.idle_closed,
            "ack_samples": self.latency.count,
            "ack_p50_ms": round(p50 * 1000, 3) if p50 is not None else 0.0,
            "ack_p99_ms": round(p99 * 1000, 3) if p99 is not None else 0.0,
        }


__all__ = ["LatencyReservoir", "ListenerStats"]
