"""The consumer loop shared by the step and sink runners: poll → handle → commit.

A runner joins consumer group ``group`` on ``topics`` from the beginning and
hands every polled batch to :meth:`PollingRunner.handle`, which says what to
commit. A record that is not an :class:`Envelope` becomes a dead letter whose
id derives from where the record sits, so a redelivered one is stored once.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

import structlog
from pydantic import ValidationError

from engine.types import Bus, Consumer, Emit, Envelope, Record, TopicPartition
from pipelines.deadletter import dead_letter

log = structlog.get_logger("wardstream.runner")

_OUTPUT_ID_NAMESPACE = uuid.UUID("8f9e7c2a-53d1-4c1e-9a57-5d1f0b6a2e11")


def output_id(source_id: str, step_id: str, index: int) -> str:
    """Deterministic id of the ``index``-th output of ``step_id`` for one input."""
    return uuid.uuid5(_OUTPUT_ID_NAMESPACE, f"{source_id}/{step_id}/{index}").hex


class PollingRunner(ABC):
    """Polls ``topics`` as consumer group ``group`` until stopped."""

    # Prefix of the loop task's name: "step", "sink".
    task_kind = "runner"

    def __init__(
        self,
        *,
        bus: Bus,
        group: str,
        topics: Sequence[str],
        clock: Callable[[], datetime],
        max_batch: int,
    ) -> None:
        self.bus = bus
        self.topics = list(topics)
        self.clock = clock
        self.max_batch = max_batch
        self.dead_letters = 0
        self._group = group
        self._consumer: Consumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._idle = asyncio.Event()

    @property
    def step_id(self) -> str:
        """The id in logs, metrics and dead letters; also the consumer group."""
        return self._group

    @abstractmethod
    async def handle(self, records: Sequence[Record]) -> Mapping[TopicPartition, int] | None:
        """Act on one polled batch; returns the offsets to commit (None: all polled)."""

    async def start(self) -> None:
        """Join the group and start polling."""
        self._consumer = self.bus.consumer(self._group, self.topics, from_beginning=True)
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name=f"{self.task_kind}:{self._group}")

    async def _run(self) -> None:
        assert self._consumer is not None
        structlog.contextvars.bind_contextvars(step_id=self._group)
        while not self._stopping.is_set():
            records = await self._consumer.poll(self.max_batch, timeout=0.2)
            if not records:
                self._idle.set()
                continue
            self._idle.clear()
            offsets = await self.handle(records)
            if offsets is None:
                await self._consumer.commit()
            elif offsets:
                await self._consumer.commit(offsets)

    def _decode(self, record: Record) -> Envelope | Emit:
        """The record's envelope, or the dead letter of a record that is not one."""
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
            emit = dead_letter(broken, step_id=self._group, reason=reason, at=self.clock())
            emit.envelope.id = output_id(broken.correlation_id, self._group, 0)
            return emit

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until a fresh poll finds nothing new (caught up); False on timeout."""
        self._idle.clear()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        """Finish the batch in hand, commit, and leave the group."""
        await self._leave(None)

    async def _leave(self, timeout: float | None) -> None:
        """Let the loop finish the batch in hand (cancel it after ``timeout``
        seconds, uncommitted), then leave the group."""
        self._stopping.set()
        if self._task is not None:
            if timeout is None:
                await self._task
            else:
                try:
                    await asyncio.wait_for(asyncio.shield(self._task), timeout)
                except TimeoutError:
                    self._task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await self._task
        if self._consumer is not None:
            await self._consumer.stop()
