"""Kafka-only behaviour of the ``kafka://`` bus driver, against a real
Kafka-protocol broker (Tansu). What every driver must do lives in the shared
contract suite; this file covers options, topic creation, consumer-group resume
and the local dedup index.

Tansu lacks the idempotent producer, so buses here run with
``enable_idempotence=False``; its reported end offsets are wrong after batched
produce, so nothing here asserts on ``end_offsets``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from engine.bus import open_bus
from engine.bus._kafka_dedup import DedupIndex
from engine.bus.embedded import (
    BusClosedError,
    InvalidPartitionError,
    InvalidTopicError,
    UnknownTopicError,
)
from engine.bus.kafka import InvalidKafkaUrl, KafkaBus, KafkaOptions
from engine.bus.partitioner import partition_for_key
from engine.types import Bus, Record, TopicPartition, TopicSpec

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(60)]

# Short group timeouts: Tansu's first join takes about half the session timeout.
GROUP_TIMEOUTS: dict[str, Any] = {"session_timeout_ms": 3000, "heartbeat_interval_ms": 300}


def unique(prefix: str) -> str:
    """Topic and group names are unique per test: the broker lives all session."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def tansu_bus(url: str, **options: Any) -> KafkaBus:
    settings: dict[str, Any] = {
        "enable_idempotence": False,
        "dedup_path": ":memory:",
        **GROUP_TIMEOUTS,
    }
    settings.update(options)
    bus = open_bus(url, **settings)
    assert isinstance(bus, KafkaBus)
    return bus


@pytest.fixture
async def bus(kafka_url: str) -> AsyncIterator[KafkaBus]:
    kafka = tansu_bus(kafka_url)
    await kafka.start()
    yield kafka
    await kafka.stop()


async def drain(bus: KafkaBus, topic: str, partitions: int) -> list[Record]:
    """Every record of ``topic``, read outside any group."""
    records: list[Record] = []
    for partition in range(partitions):
        offset = 0
        while batch := await bus.read(topic, partition, offset, 500):
            records.extend(batch)
            offset = batch[-1].offset + 1
    return records


def test_open_bus_builds_kafka_driver_with_every_broker() -> None:
    bus = open_bus("kafka://k1:9093,k2,[::1]:9094", enable_idempotence=False)
    assert isinstance(bus, KafkaBus)
    assert isinstance(bus, Bus)
    assert bus.bootstrap == ["k1:9093", "k2:9092", "[::1]:9094"]


@pytest.mark.parametrize(
    "url", ["kafka://", "kafka://host:notaport", "kafka://host:9092/path", "kafka://h:0"]
)
def test_malformed_url_is_rejected(url: str) -> None:
    with pytest.raises(InvalidKafkaUrl):
        KafkaBus(url)


def test_unknown_option_is_rejected() -> None:
    with pytest.raises(TypeError):
        KafkaBus("kafka://localhost:9092", acks_typo="all")


def test_producer_defaults_are_durable_and_idempotent() -> None:
    config = KafkaOptions().producer_config()
    assert config["acks"] == "all"
    assert config["enable_idempotence"] is True


def test_idempotence_can_be_turned_off_and_needs_acks_all() -> None:
    config = KafkaOptions(enable_idempotence=False, acks=1).producer_config()
    assert config["acks"] == 1
    assert config["enable_idempotence"] is False
    with pytest.raises(ValueError, match="acks='all'"):
        KafkaOptions(enable_idempotence=True, acks=1)


def test_consumer_config_commits_manually_and_maps_start_position() -> None:
    options = KafkaOptions(session_timeout_ms=6000, heartbeat_interval_ms=500)
    earliest = options.consumer_config("g", from_beginning=True)
    latest = options.consumer_config("g", from_beginning=False)
    assert earliest["enable_auto_commit"] is False
    assert earliest["auto_offset_reset"] == "earliest"
    assert latest["auto_offset_reset"] == "latest"
    assert earliest["session_timeout_ms"] == 6000
    assert earliest["heartbeat_interval_ms"] == 500


def test_dedup_index_forgets_ids_after_its_retention(tmp_path: Path) -> None:
    index = DedupIndex(tmp_path / "sub" / "dedup.db", retention_ms=60_000)
    index.open()
    try:
        index.record("raw.hl7v2", "MSG-1", 2, 17)
        assert index.lookup("raw.hl7v2", "MSG-1") == (2, 17)
        assert index.lookup("events.adt", "MSG-1") is None
        assert index.prune() == 0
        assert index.prune(now_ms=time.time_ns() // 1_000_000 + 3_600_000) == 1
        assert index.lookup("raw.hl7v2", "MSG-1") is None
    finally:
        index.close()


async def test_append_before_start_is_a_typed_error(kafka_url: str) -> None:
    bus = tansu_bus(kafka_url)
    with pytest.raises(BusClosedError, match="not started"):
        await bus.append("never", b"x")


@pytest.mark.parametrize("acks", ["all", 1])
async def test_appends_are_acknowledged_with_each_acks_setting(kafka_url: str, acks: Any) -> None:
    topic = unique("acks")
    bus = tansu_bus(kafka_url, acks=acks)
    await bus.start()
    try:
        await bus.create_topics([TopicSpec(topic, partitions=1)])
        first = await bus.append(topic, b"one")
        second = await bus.append(topic, b"two")
        assert (first.partition, first.offset) == (0, 0)
        assert (second.partition, second.offset) == (0, 1)
        assert [r.value for r in await drain(bus, topic, 1)] == [b"one", b"two"]
    finally:
        await bus.stop()


async def test_create_topics_sets_partitions_and_retention(bus: KafkaBus) -> None:
    kept, bounded = unique("kept"), unique("bounded")
    await bus.create_topics(
        [
            TopicSpec(kept, partitions=3),
            TopicSpec(bounded, partitions=2, retention_ms=3_600_000, retention_bytes=1 << 20),
        ]
    )
    assert await bus.partitions_for(kept) == 3
    assert await bus.partitions_for(bounded) == 2
    configs = await topic_configs(bus, kept, bounded)
    assert configs[kept]["retention.ms"] == "-1"
    assert configs[bounded]["retention.ms"] == "3600000"
    assert configs[bounded]["retention.bytes"] == str(1 << 20)


async def test_create_topics_leaves_existing_topics_alone(bus: KafkaBus) -> None:
    topic = unique("again")
    await bus.create_topics([TopicSpec(topic, partitions=2)])
    await bus.create_topics([TopicSpec(topic, partitions=5)])
    assert await bus.partitions_for(topic) == 2


async def test_unknown_topic_is_reported_not_auto_created(bus: KafkaBus) -> None:
    topic = unique("missing")
    with pytest.raises(UnknownTopicError):
        await bus.partitions_for(topic)
    # The lookup itself must not have let the broker create the topic.
    with pytest.raises(UnknownTopicError):
        await bus.partitions_for(topic)


async def test_first_append_creates_topic_with_default_partitions(kafka_url: str) -> None:
    topic = unique("auto")
    bus = tansu_bus(kafka_url, default_partitions=3)
    await bus.start()
    try:
        result = await bus.append(topic, b"first", key=b"ward-7")
        assert await bus.partitions_for(topic) == 3
        assert result.partition == partition_for_key(b"ward-7", 3)
    finally:
        await bus.stop()


async def test_invalid_topic_and_partition_are_typed_errors(bus: KafkaBus) -> None:
    topic = unique("bounds")
    await bus.create_topics([TopicSpec(topic, partitions=2)])
    with pytest.raises(InvalidPartitionError):
        await bus.append(topic, b"x", partition=2)
    with pytest.raises(InvalidPartitionError):
        await bus.read(topic, 5, 0)
    with pytest.raises(InvalidTopicError):
        await bus.create_topics([TopicSpec("no spaces allowed", partitions=1)])
    with pytest.raises(InvalidTopicError):
        await bus.create_topics([TopicSpec(unique("zero"), partitions=0)])


async def test_read_past_the_end_is_empty(bus: KafkaBus) -> None:
    topic = unique("tail")
    await bus.create_topics([TopicSpec(topic, partitions=1)])
    for n in range(3):
        await bus.append(topic, f"t{n}".encode())
    assert [r.offset for r in await bus.read(topic, 0, 1)] == [1, 2]
    assert await bus.read(topic, 0, 3) == []
    assert await bus.read(topic, 0, 50) == []


async def test_keyed_appends_follow_kafka_default_partitioner(bus: KafkaBus) -> None:
    topic = unique("keyed")
    await bus.create_topics([TopicSpec(topic, partitions=4)])
    keys = [f"patient-{n}".encode() for n in range(40)]
    results = await asyncio.gather(*(bus.append(topic, b"v", key=key) for key in keys))
    assert [r.partition for r in results] == [partition_for_key(key, 4) for key in keys]
    assert len({r.partition for r in results}) > 1


async def test_many_concurrent_appends_get_distinct_offsets(bus: KafkaBus) -> None:
    topic = unique("burst")
    await bus.create_topics([TopicSpec(topic, partitions=2)])
    values = [f"m{n}".encode() for n in range(300)]
    results = await asyncio.gather(*(bus.append(topic, value) for value in values))
    places = {(r.partition, r.offset) for r in results}
    assert len(places) == len(values)
    stored = {(r.partition, r.offset): r.value for r in await drain(bus, topic, 2)}
    assert {stored[(r.partition, r.offset)] for r in results} == set(values)


# Slow on Tansu: rejoining a group after a member left takes about twice the
# session timeout there.
@pytest.mark.slow
async def test_group_resumes_from_commit_after_consumer_restart(bus: KafkaBus) -> None:
    topic, group = unique("resume"), unique("group")
    await bus.create_topics([TopicSpec(topic, partitions=2)])
    for n in range(10):
        await bus.append(topic, f"r{n}".encode(), partition=n % 2)

    first = bus.consumer(group, [topic])
    await first.start()
    seen = await poll_until(first, 10)
    # Commit only up to the third record of partition 0: the rest must come back.
    await first.commit({TopicPartition(topic, 0): 3})
    await first.stop()
    assert await bus.committed(group) == {TopicPartition(topic, 0): 3}

    second = bus.consumer(group, [topic])
    await second.start()
    again = await poll_until(second, 7)
    await second.commit()
    await second.stop()

    assert len(seen) == 10
    assert sorted((r.partition, r.offset) for r in again) == [(0, 3), (0, 4)] + [
        (1, n) for n in range(5)
    ]
    assert await bus.committed(group) == {TopicPartition(topic, 0): 5, TopicPartition(topic, 1): 5}


async def test_dedup_index_survives_bus_restart(kafka_url: str, tmp_path: Path) -> None:
    topic = unique("dedup")
    index = tmp_path / "dedup.db"
    bus = tansu_bus(kafka_url, dedup_path=index)
    await bus.start()
    try:
        await bus.create_topics([TopicSpec(topic, partitions=3)])
        original = await bus.append(topic, b"adt", key=b"p1", dedup_id="MSG-1")
    finally:
        await bus.stop()

    restarted = tansu_bus(kafka_url, dedup_path=index)
    await restarted.start()
    try:
        again = await restarted.append(topic, b"adt", key=b"p1", dedup_id="MSG-1")
        other = await restarted.append(topic, b"adt2", key=b"p1", dedup_id="MSG-2")
        stored = await drain(restarted, topic, 3)
    finally:
        await restarted.stop()

    assert not original.duplicate
    assert again.duplicate
    assert (again.partition, again.offset) == (original.partition, original.offset)
    assert not other.duplicate
    assert sorted(r.value for r in stored) == [b"adt", b"adt2"]


async def test_concurrent_appends_with_one_dedup_id_write_once(bus: KafkaBus) -> None:
    topic = unique("race")
    await bus.create_topics([TopicSpec(topic, partitions=1)])
    results = await asyncio.gather(*(bus.append(topic, b"x", dedup_id="same") for _ in range(8)))
    assert sum(not r.duplicate for r in results) == 1
    assert {(r.partition, r.offset) for r in results} == {(0, 0)}
    assert len(await drain(bus, topic, 1)) == 1


async def topic_configs(bus: KafkaBus, *topics: str) -> dict[str, dict[str, str]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bus.bootstrap)
    await admin.start()
    try:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic) for topic in topics]
        )
    finally:
        await admin.close()
    return {
        resource[3]: {entry[0]: entry[1] for entry in resource[4]}
        for response in responses
        for resource in response.resources
    }


async def poll_until(consumer: Any, count: int, attempts: int = 20) -> list[Record]:
    """Poll until ``count`` records arrived or ``attempts`` polls came back empty."""
    records: list[Record] = []
    empty = 0
    while len(records) < count and empty < attempts:
        batch = await consumer.poll(max_records=100, timeout=0.5)
        empty += not batch
        records.extend(batch)
    return records
