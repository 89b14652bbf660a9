"""Hosts one Sink on a bus: poll → write → commit, as consumer group ``group``.

Records are handed to the sink one partition at a time, in offset order, and
partitions are written concurrently; patient streams are keyed by patient, so
one patient's records stay in order. A partition's offsets are committed only
after the sink wrote its records. A sink that fails is retried with capped
exponential backoff, the same records again, until it succeeds or the runner
stops (then nothing of that partition is committed and a restart redelivers
it): at-least-once, and sinks make their effects idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

import structlog

from engine._polling import PollingRunner
from engine.types import Bus, Emit, Envelope, Record, Sink, TopicPartition

log = structlog.get_logger("wardstream.sink")


def bus_dead_letters(bus: Bus) -> Callable[[Emit], Awaitable[object]]:
    """Append a sink's dead letters to their topic, deduplicated by envelope id
    (sinks give a dead letter an id derived from its input, so a redelivered
    input is dead-lettered once)."""

    async def append(emit: Emit) -> object:
        key = emit.key.encode() if emit.key is not None else None
        value = emit.envelope.to_bytes()
        return await bus.append(emit.topic, value, key=key, dedup_id=emit.envelope.id)

    return append


class SinkRunner(PollingRunner):
    """Runs one :class:`Sink` over ``topics`` as consumer group ``group``."""

    task_kind = "sink"

    def __init__(
        self,
        *,
        bus: Bus,
        sink: Sink,
        group: str,
        topics: Sequence[str],
        clock: Callable[[], datetime],
        max_batch: int = 200,
        retry_backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
    ) -> None:
        super().__init__(bus=bus, group=group, topics=topics, clock=clock, max_batch=max_batch)
        self.sink = sink
        self.group = group
        self.retry_backoff_s = retry_backoff_s
        self.max_backoff_s = max_backoff_s
        self.written = 0
        self.failures = 0
        self._dead_letter = bus_dead_letters(bus)

    async def handle(self, records: Sequence[Record]) -> dict[TopicPartition, int]:
        """Write one polled batch; returns the offsets to commit (partitions written)."""
        parts: dict[TopicPartition, list[Record]] = {}
        for record in records:
            parts.setdefault(TopicPartition(record.topic, record.partition), []).append(record)
        delivered = await asyncio.gather(*(self._deliver(rs) for rs in parts.values()))
        done = zip(parts.items(), delivered, strict=True)
        return {tp: rs[-1].offset + 1 for (tp, rs), ok in done if ok}

    async def _deliver(self, records: list[Record]) -> bool:
        envelopes: list[Envelope] = []
        for record in records:
            envelope = self._decode(record)
            if isinstance(envelope, Emit):
                await self._dead_letter(envelope)
            else:
                envelopes.append(envelope)
        attempt = 0
        while envelopes:
            try:
                await self.sink.write(envelopes)
            # A sink talks to the world outside: whatever it raises, the
            # records are kept and retried, never dropped.
            except Exception as exc:  # noqa: BLE001
                self.failures += 1
                delay = min(self.max_backoff_s, self.retry_backoff_s * 2**attempt)
                attempt += 1
                log.warning(
                    "sink write failed",
                    sink=self.group,
                    error=f"{type(exc).__name__}: {exc}",
                    attempt=attempt,
                    retry_in_s=delay,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
                if self._stopping.is_set():
                    return False
                continue
            break
        self.written += len(records)
        return True

    async def stop(self, timeout: float = 10.0) -> None:
        """Finish the batch in hand (abandon it, uncommitted, when the sink is
        failing or still busy after ``timeout`` seconds), leave the group, close the sink."""
        await self._leave(timeout)
        await self.sink.close()
