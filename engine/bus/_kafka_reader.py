"""Group-less reads of the Kafka driver: end offsets and reading one partition
from an offset, for browsing, replay and tests."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer
from aiokafka import TopicPartition as KafkaTopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from engine.bus._kafka_options import KafkaBusError, KafkaOptions
from engine.types import Record


def to_record(message: ConsumerRecord[bytes, bytes]) -> Record:
    """The bus ``Record`` of one aiokafka message."""
    return Record(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value if message.value is not None else b"",
        headers=tuple((name, value or b"") for name, value in message.headers),
        timestamp_ms=message.timestamp,
    )


class PartitionReader:
    """One consumer outside any group, assigned to whatever partition is read.

    Reads are serialised: the consumer holds one assignment at a time.
    """

    def __init__(self, bootstrap: Sequence[str], options: KafkaOptions) -> None:
        self._bootstrap = list(bootstrap)
        self._options = options
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()

    async def stop(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    async def end_offsets(self, topic: str, partitions: int) -> dict[int, int]:
        tps = [KafkaTopicPartition(topic, p) for p in range(partitions)]
        async with self._lock:
            consumer = await self._started()
            try:
                ends = await consumer.end_offsets(tps)
            except KafkaError as exc:
                raise KafkaBusError(f"end_offsets({topic!r}) failed: {exc!r}") from exc
        return {tp.partition: int(offset) for tp, offset in ends.items()}

    async def read(self, topic: str, partition: int, offset: int, max_records: int) -> list[Record]:
        """Up to ``max_records`` records from ``offset`` on; from the first
        retained record if ``offset`` was deleted; empty at or past the end."""
        tp = KafkaTopicPartition(topic, partition)
        async with self._lock:
            consumer = await self._started()
            try:
                consumer.assign([tp])
                consumer.seek(tp, offset)
                batches = await consumer.getmany(
                    tp, timeout_ms=self._options.read_wait_ms, max_records=max_records
                )
            except KafkaError as exc:
                raise KafkaBusError(f"read({topic!r}, {partition}) failed: {exc!r}") from exc
        messages = batches.get(tp, [])
        if messages and messages[0].offset < offset:
            # An offset past the end is out of range too, and the "earliest"
            # reset then rewinds to the start: that is the end, not a record.
            return []
        return [to_record(message) for message in messages]

    async def _started(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self._bootstrap,
                client_id=self._options.client_id,
                group_id=None,
                enable_auto_commit=False,
                # Out of range means deleted by retention (or past the end,
                # handled in ``read``): continue at the first retained record.
                auto_offset_reset="earliest",
                fetch_max_wait_ms=self._options.read_wait_ms,
                request_timeout_ms=self._options.request_timeout_ms,
            )
            try:
                await consumer.start()
            except KafkaError as exc:
                await consumer.stop()
                raise KafkaBusError(f"cannot start partition reader: {exc!r}") from exc
            self._consumer = consumer
        return self._consumer
