"""Hosts one pipeline step on a bus: poll → process → append outputs → commit.

Order of effects per batch: outputs are appended (durably), then the step's
state and applied offsets are written together, then the consumer offsets are
committed. A crash between any two re-delivers the batch; the applied offsets
make state changes happen once, and outputs carry deterministic ids so a
driver with dedup (the embedded log) stores them once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime

import structlog

from engine._polling import PollingRunner, output_id
from engine.state import StateStore, StepState
from engine.types import Bus, Emit, Processor, Record, TopicPartition
from pipelines.deadletter import dead_letter

__all__ = ["StepRunner", "output_id"]

log = structlog.get_logger("wardstream.runner")


class StepRunner(PollingRunner):
    """Runs one :class:`Processor` over its input topics with durable keyed state."""

    task_kind = "step"

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
        super().__init__(
            bus=bus, group=processor.step_id, topics=topics, clock=clock, max_batch=max_batch
        )
        self.processor = processor
        self.store = store
        self.state = StepState({})
        self.processed = 0
        self._applied: dict[TopicPartition, int] = {}

    async def start(self) -> None:
        """Load the step's state and applied offsets, then start polling."""
        self.state, self._applied = await self.store.load(self.step_id)
        await super().start()

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
        envelope = self._decode(record)
        if isinstance(envelope, Emit):
            return [envelope]
        self.state.begin()
        try:
            emits = list(self.processor.process(envelope, self.state))
        except Exception as exc:
            # Whatever the step changed before it failed is undone with it.
            self.state.rollback()
            self.dead_letters += 1
            log.exception("step raised", correlation_id=envelope.correlation_id)
            reason = f"step raised {type(exc).__name__}"
            letter = dead_letter(envelope, step_id=self.step_id, reason=reason, at=self.clock())
            letter.envelope.id = output_id(envelope.id, self.step_id, 0)
            return [letter]
        self.state.end()
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
