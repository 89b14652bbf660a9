"""A Kafka consumer-group member behind the ``Consumer`` protocol."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence

from aiokafka import AIOKafkaConsumer
from aiokafka import TopicPartition as KafkaTopicPartition
from aiokafka.errors import KafkaError

from engine.bus._errors import BusClosedError
from engine.bus._kafka_options import KafkaBusError, KafkaOptions
from engine.bus._kafka_reader import to_record
from engine.types import Record, TopicPartition


class KafkaGroupConsumer:
    """One member of consumer group ``group`` reading ``topics``.

    Auto-commit is off: ``commit()`` commits the position after the last
    records ``poll`` returned, ``commit(offsets)`` exactly the given next
    offsets. ``from_beginning`` picks where a group without committed offsets
    starts: the earliest record, or only records appended after joining.
    ``start()`` creates missing topics (as a first append would), then returns
    once the group has assigned this member its partitions.
    """

    def __init__(
        self,
        bootstrap: Sequence[str],
        group: str,
        topics: Sequence[str],
        *,
        from_beginning: bool,
        options: KafkaOptions,
        prepare: Callable[[Sequence[str]], Awaitable[None]],
    ) -> None:
        if not topics:
            raise ValueError("a consumer needs at least one topic")
        self.group = group
        self.topics = tuple(topics)
        self._bootstrap = list(bootstrap)
        self._from_beginning = from_beginning
        self._options = options
        self._prepare = prepare
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        if self._consumer is not None:
            return
        await self._prepare(self.topics)
        consumer = AIOKafkaConsumer(
            *self.topics,
            bootstrap_servers=self._bootstrap,
            **self._options.consumer_config(self.group, from_beginning=self._from_beginning),
        )
        try:
            await consumer.start()
        except KafkaError as exc:
            await consumer.stop()
            raise KafkaBusError(f"consumer group {self.group!r} could not start: {exc}") from exc
        self._consumer = consumer

    async def stop(self) -> None:
        """Leave the group. Uncommitted positions are dropped, not committed."""
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    # The Consumer protocol fixes the ``timeout`` parameter.
    async def poll(self, max_records: int = 500, timeout: float = 1.0) -> list[Record]:
        """Up to ``max_records`` records, waiting at most ``timeout`` seconds for any."""
        consumer = self._require()
        try:
            batches = await consumer.getmany(
                timeout_ms=max(0, int(timeout * 1000)), max_records=max_records
            )
        except KafkaError as exc:
            raise KafkaBusError(f"poll failed for group {self.group!r}: {exc}") from exc
        return [to_record(message) for messages in batches.values() for message in messages]

    async def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None:
        """Commit after processing: the polled positions, or ``offsets`` (next
        offset to read per partition). Raises ``KafkaBusError`` when the group
        rebalanced in between; the records are then redelivered to the new owner."""
        consumer = self._require()
        to_commit = (
            None
            if offsets is None
            else {
                KafkaTopicPartition(tp.topic, tp.partition): offset
                for tp, offset in offsets.items()
            }
        )
        if to_commit is None and not consumer.assignment():
            return
        try:
            await consumer.commit(to_commit)
        except KafkaError as exc:
            raise KafkaBusError(f"commit failed for group {self.group!r}: {exc}") from exc

    def assignment(self) -> frozenset[TopicPartition]:
        consumer = self._consumer
        if consumer is None:
            return frozenset()
        return frozenset(TopicPartition(tp.topic, tp.partition) for tp in consumer.assignment())

    async def seek_to_beginning(self) -> None:
        """Rewind every partition assigned now to its earliest retained record."""
        consumer = self._require()
        if not consumer.assignment():
            return
        try:
            await consumer.seek_to_beginning()
        except KafkaError as exc:
            raise KafkaBusError(f"seek failed for group {self.group!r}: {exc}") from exc

    def _require(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise BusClosedError(f"consumer of group {self.group!r} is not started")
        return self._consumer
