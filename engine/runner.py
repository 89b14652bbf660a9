"""Hosts one pipeline step on a bus: poll → process → append outputs → commit.

Order of effects per batch: outputs are appended (durably), then the step's
state and applied offsets are written together, then the consumer offsets are
committed. A crash between any two re-delivers the batch; the applied offsets
make state changes happen once, and outputs carry deterministic ids so a
driver with dedup (the embedded log) stores them once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime

import structlog
from pydantic import ValidationError

from engine.state import StateStore, StepState
from engine.types import Bus, Consumer, Emit, Envelope, Processor, Record, TopicPartition
from pipelines.deadletter import dead_letter

log = structlog.get_logger("wardstream.runner")

_OUTPUT_ID_NAMESPACE = uuid.UUID("8f9e7c2a-53d1-4c1e-9a57-5d1f0b6a2e11")


def output_id(source_id: str, step_id: str, index: int) -> str:
    """Deterministic id of the ``index``-th output of ``step_id`` for one input."""
    return uuid.uuid5(_OUTPUT_ID_NAMESPACE, f"{source_id}/{step_id}/{index}").hex


class StepRunner:
    """Runs one :class:`Processor` over its input topics with durable keyed state."""

    def __init__(
        self,
        *,
        bus: Bus,
        processor: Processor,
        topics: Sequence[str],
        store: StateStore,
        clock: Callable[[], datetime],
        max_batch: int = 500,
    ) -> None:
        self.bus = bus
        self.processor = processor
        self.topics = list(topics)
        self.store = store
        self.clock = clock
        self.max_batch = max_batch
        self.state = StepState({})
        self.processed = 0
        self.dead_letters = 0
        self._applied: dict[TopicPartition, int] = {}
        self._consumer: Consumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._idle = asyncio.Event()

    @property
    def step_id(self) -> str:
        return self.processor.step_id

    async def start(self) -> None:
        self.state, self._applied = await self.store.load(self.step_id)
        self._consumer = self.bus.consumer(self.step_id, self.topics, from_beginning=True)
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name=f"step:{self.step_id}")

    async def _run(self) -> None:
        assert self._consumer is not None
        structlog.contextvars.bind_contextvars(step_id=self.step_id)
        while not self._stopping.is_set():
            records = await self._consumer.poll(self.max_batch, timeout=0.2)
            if not records:
                self._idle.set()
                continue
            self._idle.clear()
            await self.handle(records)
            await self._consumer.commit()

    async def handle(self, records: Sequence[Record]) -> None:
        """Process one batch: outputs appended, then state and applied offsets written."""
        outputs: list[Emit] = []
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            if record.offset < self._applied.get(tp, 0):
                continue
            outputs.extend(self._process(record))
            self._applied[tp] = record.offset + 1
        if outputs:
            await asyncio.gather(
                *(
                    self.bus.append(
                        emit.topic,
                        emit.envelope.to_bytes(),
                        key=emit.key.encode() if emit.key is not None else None,
                        dedup_id=emit.envelope.id,
                    )
                    for emit in outputs
                )
            )
        await self.store.commit(self.step_id, self.state.take_dirty(), dict(self._applied))
        self.processed += len(records)

    def _process(self, record: Record) -> list[Emit]:
        try:
            envelope = Envelope.from_bytes(record.value)
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
            return [dead_letter(broken, step_id=self.step_id, reason=reason, at=self.clock())]
        try:
            emits = list(self.processor.process(envelope, self.state))
        except Exception as exc:
            self.dead_letters += 1
            log.exception("step raised", correlation_id=envelope.correlation_id)
            reason = f"step raised {type(exc).__name__}"
            return [dead_letter(envelope, step_id=self.step_id, reason=reason, at=self.clock())]
        for index, emit in enumerate(emits):
            emit.envelope.id = output_id(envelope.id, self.step_id, index)
            stage = emit.envelope.trail[-1] if emit.envelope.trail else None
            if stage is not None and stage.status == "error":
                self.dead_letters += 1
                log.warning(
                    "dead letter",
                    correlation_id=envelope.correlation_id,
                    channel=envelope.channel,
                    reason=stage.detail,
                )
        return emits

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
        self._stopping.set()
        if self._task is not None:
            await self._task
        if self._consumer is not None:
            await self._consumer.stop()
