"""The Kafka bus driver: Apache Kafka, or any Kafka-protocol broker, behind the
``Bus`` protocol.

Built by ``open_bus("kafka://host:port[,host:port]", **options)`` with the
options of ``KafkaOptions``. Appends wait for the broker's ack (``acks="all"``
and the idempotent producer by default) and land on the partition Kafka's own
default partitioner would pick, so a key maps to the same partition number as
in the embedded log. As there, a first append to (or subscription of) an
unknown topic creates it with ``default_partitions``; ``partitions_for`` of an
unknown topic raises ``UnknownTopicError``. Consumers are consumer-group
members with auto-commit off.

Dedup in Kafka mode is best-effort: the broker has no dedup by application id,
so the driver keeps a local SQLite index of acknowledged dedup ids, per topic
(see ``engine.bus._kafka_dedup``). A crash between the broker's ack and the
index write lets one resend through, and two processes with separate index
files do not see each other's ids: delivery is at-least-once, and every
consumer stays idempotent.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import weakref
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from aiokafka import AIOKafkaProducer
from aiokafka import TopicPartition as KafkaTopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError, for_code
from aiokafka.protocol.metadata import MetadataRequest

from engine.bus._errors import (
    BusClosedError,
    InvalidPartitionError,
    InvalidTopicError,
    UnknownTopicError,
)
from engine.bus._kafka_consumer import KafkaGroupConsumer
from engine.bus._kafka_dedup import DedupIndex
from engine.bus._kafka_options import (
    InvalidKafkaUrl,
    KafkaBusError,
    KafkaOptions,
    bootstrap_servers,
)
from engine.bus._kafka_reader import PartitionReader
from engine.bus.partitioner import partition_for_key
from engine.types import AppendResult, Headers, Record, TopicPartition, TopicSpec

_Client = TypeVar("_Client")

# Kafka's own rule for topic names, checked here so every broker agrees.
_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")
_UNKNOWN_TOPIC = 3
# INVALID_TOPIC_EXCEPTION, INVALID_PARTITIONS, INVALID_REPLICATION_FACTOR, INVALID_CONFIG
_INVALID_SPEC = {17, 37, 38, 40}


class KafkaBus:
    """A ``Bus`` on a Kafka cluster. See the module docstring for guarantees."""

    def __init__(self, url: str, **options: Any) -> None:
        self.url = url
        self.bootstrap = bootstrap_servers(url)
        self.options = KafkaOptions(**options)
        self._producer: AIOKafkaProducer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._metadata: AIOKafkaClient | None = None
        self._reader = PartitionReader(self.bootstrap, self.options)
        self._dedup = DedupIndex(
            self.options.dedup_path, retention_ms=self.options.dedup_retention_ms
        )
        # Appends carrying a dedup id still waiting for the broker: a second
        # append with the same id waits for the first instead of racing it.
        self._in_flight: dict[tuple[str, str], asyncio.Event] = {}
        self._known_topics: set[str] = set()
        self._topic_lock = asyncio.Lock()
        self._round_robin: dict[str, Iterator[int]] = {}
        # Weak: a member the caller has dropped need not be kept for stop().
        self._consumers: weakref.WeakSet[KafkaGroupConsumer] = weakref.WeakSet()

    async def start(self) -> None:
        """Connect the producer and admin clients and open the dedup index."""
        if self._producer is not None:
            return
        opts = self.options
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, **opts.producer_config())
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.bootstrap,
            client_id=opts.client_id,
            request_timeout_ms=opts.request_timeout_ms,
        )
        metadata = AIOKafkaClient(
            bootstrap_servers=self.bootstrap,
            client_id=opts.client_id,
            request_timeout_ms=opts.request_timeout_ms,
        )
        try:
            await producer.start()
            await admin.start()
            await metadata.bootstrap()
        except KafkaError as exc:
            await producer.stop()
            await admin.close()
            await metadata.close()
            hint = ""
            if opts.enable_idempotence and not isinstance(exc, KafkaConnectionError):
                hint = " (brokers without InitProducerId need enable_idempotence=False)"
            raise KafkaBusError(
                f"cannot start Kafka clients for {self.url}: {exc!r}{hint}"
            ) from exc
        self._dedup.open()
        self._producer, self._admin, self._metadata = producer, admin, metadata

    async def stop(self) -> None:
        """Stop the consumers made by this bus, flush pending appends, close all."""
        for consumer in list(self._consumers):
            await consumer.stop()
        self._consumers.clear()
        producer, self._producer = self._producer, None
        admin, self._admin = self._admin, None
        metadata, self._metadata = self._metadata, None
        await self._reader.stop()
        if producer is not None:
            await producer.stop()
        if admin is not None:
            await admin.close()
        if metadata is not None:
            await metadata.close()
        self._dedup.close()
        self._known_topics.clear()

    async def create_topics(self, specs: Sequence[TopicSpec]) -> None:
        """Create missing topics; existing ones are left as they are."""
        admin = self._require(self._admin)
        for spec in specs:
            _check_spec(spec)
        if not specs:
            return
        new = [
            NewTopic(
                spec.name,
                spec.partitions,
                self.options.replication_factor,
                topic_configs=_topic_configs(spec),
            )
            for spec in specs
        ]
        try:
            response = await admin.create_topics(new)
        except KafkaError as exc:
            raise KafkaBusError(f"create_topics failed: {exc!r}") from exc
        for name, code, message in response.topic_errors:
            if not code or for_code(code) is TopicAlreadyExistsError:
                continue
            error = InvalidTopicError if code in _INVALID_SPEC else KafkaBusError
            raise error(f"cannot create topic {name!r}: {for_code(code).__name__}: {message}")
        # Known from here on: the producer's metadata wait covers the short
        # delay before a new topic shows up on every broker.
        self._known_topics.update(spec.name for spec in specs)
        # The producer's cached metadata may predate the new topics.
        await self._require(self._producer).client.force_metadata_update()

    async def partitions_for(self, topic: str) -> int:
        """Partition count of ``topic``; ``UnknownTopicError`` if it does not exist."""
        return await self._partitions(topic, create=False)

    async def append(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None = None,
        headers: Headers = (),
        partition: int | None = None,
        dedup_id: str | None = None,
    ) -> AppendResult:
        """Append one record and return once the broker acknowledged it.

        ``dedup_id`` (per topic) is checked against the local dedup index
        first; see the module docstring for why that is best-effort here.
        """
        self._require(self._producer)
        value = _as_bytes(value, "value")
        key = None if key is None else _as_bytes(key, "key")
        if dedup_id is None:
            return await self._produce(topic, value, key, headers, partition)
        slot = (topic, dedup_id)
        while (pending := self._in_flight.get(slot)) is not None:
            await pending.wait()
        stored = self._dedup.lookup(topic, dedup_id)
        if stored is not None:
            return AppendResult(topic, stored[0], stored[1], duplicate=True)
        done = self._in_flight[slot] = asyncio.Event()
        try:
            result = await self._produce(topic, value, key, headers, partition)
            self._dedup.record(topic, dedup_id, result.partition, result.offset)
        finally:
            del self._in_flight[slot]
            done.set()
        return result

    def consumer(
        self,
        group: str,
        topics: Sequence[str],
        *,
        from_beginning: bool = True,
    ) -> KafkaGroupConsumer:
        """A consumer-group member (not started). ``stop()`` on the bus stops it too."""
        member = KafkaGroupConsumer(
            self.bootstrap,
            group,
            topics,
            from_beginning=from_beginning,
            options=self.options,
            prepare=self._ensure_topics,
        )
        self._consumers.add(member)
        return member

    async def end_offsets(self, topic: str) -> dict[int, int]:
        """Offset the next record will get, per partition of ``topic``."""
        count = await self._partitions(topic, create=False)
        return await self._reader.end_offsets(topic, count)

    async def read(
        self, topic: str, partition: int, offset: int, max_records: int = 500
    ) -> list[Record]:
        """Up to ``max_records`` records of one partition from ``offset`` on,
        outside any group (from the first retained record if ``offset`` was
        deleted); empty at the end, after waiting ``read_wait_ms`` for more."""
        count = await self._partitions(topic, create=False)
        if not 0 <= partition < count:
            raise InvalidPartitionError(f"topic {topic!r} has {count} partitions")
        if offset < 0:
            raise ValueError(f"negative offset {offset}")
        return await self._reader.read(topic, partition, offset, max_records)

    async def committed(self, group: str) -> dict[TopicPartition, int]:
        """Committed next offsets of ``group``, per partition it has committed."""
        admin = self._require(self._admin)
        try:
            described = await admin.describe_topics()
            # Explicit partitions: some Kafka-protocol brokers cannot answer
            # the "all partitions" form of OffsetFetch.
            tps = [
                KafkaTopicPartition(topic["topic"], part["partition"])
                for topic in described
                if not topic["is_internal"] and not topic["topic"].startswith("__")
                for part in topic["partitions"]
            ]
            if not tps:
                return {}
            offsets = await admin.list_consumer_group_offsets(group, partitions=tps)
        except KafkaError as exc:
            raise KafkaBusError(f"committed({group!r}) failed: {exc!r}") from exc
        return {
            TopicPartition(tp.topic, tp.partition): int(meta.offset)
            for tp, meta in offsets.items()
            if meta.offset >= 0
        }

    async def _produce(
        self,
        topic: str,
        value: bytes,
        key: bytes | None,
        headers: Headers,
        partition: int | None,
    ) -> AppendResult:
        producer = self._require(self._producer)
        count = await self._partitions(topic, create=True)
        if partition is None:
            if key is not None:
                partition = partition_for_key(key, count)
            else:
                partition = next(self._rotation(topic)) % count
        elif not 0 <= partition < count:
            raise InvalidPartitionError(f"topic {topic!r} has {count} partitions")
        try:
            delivery = await producer.send(
                topic, value, key=key, partition=partition, headers=list(headers)
            )
            meta = await delivery
        except KafkaError as exc:
            raise KafkaBusError(f"append to {topic!r} failed: {exc!r}") from exc
        return AppendResult(topic, int(meta.partition), int(meta.offset))

    async def _partitions(self, topic: str, *, create: bool) -> int:
        """Partition count from the producer's metadata, which aiokafka
        refreshes; a topic is first checked without letting the broker
        auto-create it, and created here with ``default_partitions``."""
        producer = self._require(self._producer)
        if topic not in self._known_topics:
            async with self._topic_lock:
                if topic not in self._known_topics:
                    if not await self._topic_exists(topic):
                        if not create:
                            raise UnknownTopicError(f"unknown topic {topic!r}")
                        spec = TopicSpec(topic, partitions=self.options.default_partitions)
                        await self.create_topics([spec])
                    self._known_topics.add(topic)
        try:
            return len(await producer.partitions_for(topic))
        except KafkaError as exc:
            raise KafkaBusError(f"no metadata for topic {topic!r}: {exc!r}") from exc

    async def _topic_exists(self, topic: str) -> bool:
        client = self._require(self._metadata)
        request = MetadataRequest([topic], allow_auto_topic_creation=False)
        try:
            node = client.get_random_node()
            if node is None:
                raise KafkaBusError(f"no reachable broker for {self.url}")
            response = await client.send(node, request)
        except KafkaError as exc:
            raise KafkaBusError(f"metadata request for {topic!r} failed: {exc!r}") from exc
        codes = [t["error_code"] for t in response.to_object()["topics"] if t["topic"] == topic]
        return bool(codes) and codes[0] != _UNKNOWN_TOPIC

    async def _ensure_topics(self, topics: Sequence[str]) -> None:
        for topic in topics:
            await self._partitions(topic, create=True)

    def _rotation(self, topic: str) -> Iterator[int]:
        rotation = self._round_robin.get(topic)
        if rotation is None:
            rotation = self._round_robin[topic] = itertools.count()
        return rotation

    def _require(self, client: _Client | None) -> _Client:
        if client is None:
            raise BusClosedError(f"Kafka bus {self.url} is not started")
        return client


def _check_spec(spec: TopicSpec) -> None:
    if not _TOPIC_NAME.fullmatch(spec.name) or spec.name in (".", ".."):
        raise InvalidTopicError(f"invalid topic name {spec.name!r}: use 1-249 of [A-Za-z0-9._-]")
    if spec.partitions < 1:
        raise InvalidTopicError(f"topic {spec.name!r} needs at least one partition")


def _topic_configs(spec: TopicSpec) -> dict[str, str]:
    # The broker's default retention is 7 days; the contract says None keeps
    # records forever, so that is stated explicitly as -1.
    configs = {
        "retention.ms": str(spec.retention_ms if spec.retention_ms is not None else -1),
        "retention.bytes": str(spec.retention_bytes if spec.retention_bytes is not None else -1),
    }
    configs.update(spec.extra)
    return configs


def _as_bytes(data: object, what: str) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    raise TypeError(f"{what} must be bytes, not {type(data).__name__}")


__all__ = ["InvalidKafkaUrl", "KafkaBus", "KafkaBusError", "KafkaOptions"]
