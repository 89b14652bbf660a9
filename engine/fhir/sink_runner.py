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
from pydantic import ValidationError

from engine.runner import output_id
from engine.types import Bus, Consumer, Emit, Envelope, Record, Sink, TopicPartition
from pipelines.deadletter import dead_letter
from schemas.topics import DLQ

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


class SinkRunner:
    """Runs one :class:`Sink` over ``topics`` as consumer group ``group``."""

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
        self.bus = bus
        self.sink = sink
        self.group = group
        self.topics = list(topics)
        self.clock = clock
        self.max_batch = max_batch
        self.retry_backoff_s = retry_backoff_s
        self.max_backoff_s = max_backoff_s
        self.written = 0
        self.failures = 0
        self.dead_letters = 0
        self._consumer: Consumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._idle = asyncio.Event()

    @property
    def step_id(self) -> str:
        return self.group

    async def start(self) -> None:
        self._consumer = self.bus.consumer(self.group, self.topics, from_beginning=True)
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name=f"sink:{self.group}")

    async def _run(self) -> None:
        assert self._consumer is not None
        structlog.contextvars.bind_contextvars(step_id=self.group)
        while not self._stopping.is_set():
            records = await self._consumer.poll(self.max_batch, timeout=0.2)
            if not records:
                self._idle.set()
                continue
            self._idle.clear()
            done = await self.handle(records)
            if done:
                await self._consumer.commit(done)

    async def handle(self, records: Sequence[Record]) -> dict[TopicPartition, int]:
        """Write one polled batch; returns the offsets to commit (partitions written)."""
        parts: dict[TopicPartition, list[Record]] = {}
        for record in records:
            parts.setdefault(TopicPartition(record.topic, record.partition), []).append(record)
        delivered = await asyncio.gather(*(self._deliver(rs) for rs in parts.values()))
        done = zip(parts.items(), delivered, strict=True)
        return {tp: rs[-1].offset + 1 for (tp, rs), ok in done if ok}

    async def _deliver(self, records: list[Record]) -> bool:
        envelopes = []
        for record in records:
            envelope = await self._decode(record)
            if envelope is not None:
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

    async def _decode(self, record: Record) -> Envelope | None:
        try:
            return Envelope.from_bytes(record.value)
        except ValidationError as exc:
            self.dead_letters += 1
            log.warning("undecodable record", topic=record.topic, offset=record.offset)
            broken = Envelope(
                correlation_id=f"{record.topic}/{record.partition}/{record.offset}",
                channel="unknown",
                received_at=self.clock(),
                content_type="application/octet-stream",
                payload=record.value.decode("utf-8", "replace"),
            )
            reason = f"undecodable envelope: {exc.error_count()} validation errors"
            emit = dead_letter(broken, step_id=self.group, reason=reason, at=self.clock())
            emit.envelope.id = output_id(broken.correlation_id, self.group, 0)
            await self.bus.append(DLQ, emit.envelope.to_bytes(), dedup_id=emit.envelope.id)
            return None

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until a fresh poll finds nothing new (caught up); False on timeout."""
        self._idle.clear()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def stop(self, timeout: float = 10.0) -> None:
        """Finish the batch in hand (abandon it, uncommitted, when the sink is
        failing or still busy after ``timeout`` seconds), leave the group, close the sink."""
        self._stopping.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        if self._consumer is not None:
            await self._consumer.stop()
        await self.sink.close()
