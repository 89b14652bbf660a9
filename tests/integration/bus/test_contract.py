"""The bus contract: the same tests against every bus driver (see conftest.py)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import pytest

from engine.bus.partitioner import partition_for_key
from engine.types import Bus, Consumer, Record, TopicPartition, TopicSpec

TopicFactory = Callable[..., Awaitable[str]]
GroupFactory = Callable[[], str]


async def poll_until(consumer: Consumer, count: int, *, within: float = 30.0) -> list[Record]:
    """Poll until ``count`` records arrived; fail after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    got: list[Record] = []
    while len(got) < count:
        if loop.time() > deadline:
            pytest.fail(f"got {len(got)} of {count} records within {within}s")
        got += await consumer.poll(timeout=0.5)
    return got


async def read_all(bus: Bus, topic: str) -> list[Record]:
    """Every record of ``topic`` without a consumer group, by partition then offset."""
    out: list[Record] = []
    for partition, end in sorted((await bus.end_offsets(topic)).items()):
        offset = 0
        while offset < end:
            batch = await bus.read(topic, partition, offset, max_records=500)
            assert batch, f"{topic}/{partition} has nothing at {offset} below end {end}"
            out += batch
            offset = batch[-1].offset + 1
    return out


async def test_round_trip_keeps_key_value_and_headers(
    bus: Bus, new_topic: TopicFactory, new_group: GroupFactory
) -> None:
    topic = await new_topic(partitions=4)
    headers = [("content-type", b"x-application/hl7-v2+er7"), ("peer", b"\x00\xff")]
    result = await bus.append(topic, b"MSH|^~\\&|A", key=b"patient-42", headers=headers)
    assert not result.duplicate
    assert result.topic == topic
    assert result.partition == partition_for_key(b"patient-42", 4)

    assert isinstance(bus, Bus)
    consumer = bus.consumer(new_group(), [topic])
    assert isinstance(consumer, Consumer)
    await consumer.start()
    (record,) = await poll_until(consumer, 1)
    assert (record.topic, record.partition, record.offset) == (
        topic,
        result.partition,
        result.offset,
    )
    assert record.key == b"patient-42"
    assert record.value == b"MSH|^~\\&|A"
    assert list(record.headers) == headers
    assert record.timestamp_ms > 0


async def test_same_key_lands_on_the_kafka_partition(bus: Bus, new_topic: TopicFactory) -> None:
    topic = await new_topic(partitions=4)
    keys = [f"MRN{n:05d}".encode() for n in range(24)]
    for key in keys * 2:
        result = await bus.append(topic, b"v:" + key, key=key)
        assert result.partition == partition_for_key(key, 4), key
    stored = await read_all(bus, topic)
    assert len(stored) == 48
    for record in stored:
        assert record.key is not None
        assert record.partition == partition_for_key(record.key, 4)
        assert record.value == b"v:" + record.key
    assert len({r.partition for r in stored}) > 1, "24 keys should not all share a partition"


async def test_explicit_partition_wins_over_the_key(bus: Bus, new_topic: TopicFactory) -> None:
    topic = await new_topic(partitions=3)
    key = b"foobar"
    target = (partition_for_key(key, 3) + 1) % 3
    result = await bus.append(topic, b"pinned", key=key, partition=target)
    assert result.partition == target
    (record,) = await bus.read(topic, target, result.offset, max_records=1)
    assert (record.value, record.key) == (b"pinned", key)


async def test_null_keys_go_round_robin(bus: Bus, new_topic: TopicFactory) -> None:
    topic = await new_topic(partitions=4)
    partitions = [(await bus.append(topic, b"%d" % n)).partition for n in range(8)]
    assert sorted(partitions) == [0, 0, 1, 1, 2, 2, 3, 3]


async def test_order_within_a_partition(
    bus: Bus, new_topic: TopicFactory, new_group: GroupFactory
) -> None:
    topic = await new_topic(partitions=2)
    sequential = [await bus.append(topic, b"s%02d" % n, partition=0) for n in range(20)]
    offsets = [r.offset for r in sequential]
    assert offsets == sorted(offsets)
    assert len(set(offsets)) == 20
    concurrent = await asyncio.gather(
        *(bus.append(topic, b"c%02d" % n, key=b"same-key") for n in range(20))
    )
    assert len({(r.partition, r.offset) for r in concurrent}) == 20

    consumer = bus.consumer(new_group(), [topic])
    await consumer.start()
    records = await poll_until(consumer, 40)
    by_partition: dict[int, list[Record]] = {}
    for record in records:
        by_partition.setdefault(record.partition, []).append(record)
    for partition_records in by_partition.values():
        got = [r.offset for r in partition_records]
        assert got == sorted(got)
    assert [r.value for r in by_partition[0][:20]] == [b"s%02d" % n for n in range(20)]
    # Each append's reported offset holds exactly the value that append wrote.
    stored = {(r.partition, r.offset): r.value for r in records}
    for n, result in enumerate(concurrent):
        assert stored[(result.partition, result.offset)] == b"c%02d" % n


async def test_committed_offset_is_where_the_group_resumes(
    bus: Bus, new_topic: TopicFactory, new_group: GroupFactory
) -> None:
    topic = await new_topic(partitions=1)
    tp = TopicPartition(topic, 0)
    group = new_group()
    for n in range(6):
        await bus.append(topic, b"%d" % n)

    first = bus.consumer(group, [topic])
    await first.start()
    assert [r.offset for r in await poll_until(first, 6)] == list(range(6))
    await first.commit({tp: 4})
    await first.stop()
    assert (await bus.committed(group))[tp] == 4

    second = bus.consumer(group, [topic])
    await second.start()
    records = await poll_until(second, 2)
    assert [(r.offset, r.value) for r in records] == [(4, b"4"), (5, b"5")]
    await second.commit()
    await second.stop()
    assert (await bus.committed(group))[tp] == 6

    await bus.append(topic, b"6")
    third = bus.consumer(group, [topic])
    await third.start()
    assert [r.value for r in await poll_until(third, 1)] == [b"6"]
    await third.stop()


async def test_another_group_starts_from_the_beginning(
    bus: Bus, new_topic: TopicFactory, new_group: GroupFactory
) -> None:
    topic = await new_topic(partitions=1)
    for n in range(3):
        await bus.append(topic, b"%d" % n)
    done = bus.consumer(new_group(), [topic])
    await done.start()
    await poll_until(done, 3)
    await done.commit()

    fresh = bus.consumer(new_group(), [topic], from_beginning=True)
    await fresh.start()
    assert [r.offset for r in await poll_until(fresh, 3)] == [0, 1, 2]


async def test_seek_to_beginning_rereads(
    bus: Bus, new_topic: TopicFactory, new_group: GroupFactory
) -> None:
    topic = await new_topic(partitions=1)
    for n in range(3):
        await bus.append(topic, b"%d" % n)
    consumer = bus.consumer(new_group(), [topic])
    await consumer.start()
    await poll_until(consumer, 3)
    await consumer.commit()
    await consumer.seek_to_beginning()
    assert [r.offset for r in await poll_until(consumer, 3)] == [0, 1, 2]


async def test_two_members_split_the_partitions(
    bus: Bus, new_topic: TopicFactory, new_group: GroupFactory
) -> None:
    topic = await new_topic(partitions=4)
    group = new_group()
    members = [bus.consumer(group, [topic]), bus.consumer(group, [topic])]
    for member in members:
        await member.start()
    everything = {TopicPartition(topic, p) for p in range(4)}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    # Until the group settled: each member owns some partitions, none shared.
    while True:
        for member in members:
            assert await member.poll(timeout=0.2) == []
        first, second = (m.assignment() for m in members)
        if first and second and not first & second and first | second == everything:
            break
        assert loop.time() < deadline, f"group did not settle: {first} / {second}"

    results = [await bus.append(topic, b"%d" % n, key=b"k%d" % n) for n in range(40)]
    seen: list[tuple[int, int]] = []
    deadline = loop.time() + 30
    while len(seen) < 40:
        assert loop.time() < deadline, f"saw {len(seen)} of 40 records"
        for member in members:
            for record in await member.poll(timeout=0.2):
                assert TopicPartition(topic, record.partition) in member.assignment()
                seen.append((record.partition, record.offset))
            await member.commit()
    assert sorted(seen) == sorted((r.partition, r.offset) for r in results)
    for member in members:
        assert await member.poll(timeout=0.2) == []


async def test_from_end_skips_existing_records(
    bus: Bus, new_topic: TopicFactory, new_group: GroupFactory
) -> None:
    topic = await new_topic(partitions=1)
    await bus.append(topic, b"old")
    consumer = bus.consumer(new_group(), [topic], from_beginning=False)
    await consumer.start()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while not consumer.assignment():
        assert loop.time() < deadline, "no assignment"
        assert await consumer.poll(timeout=0.2) == []
    assert await consumer.poll(timeout=0.5) == []
    await bus.append(topic, b"new")
    assert [r.value for r in await poll_until(consumer, 1)] == [b"new"]


async def test_dedup_id_writes_once(bus: Bus, new_topic: TopicFactory) -> None:
    topic = await new_topic(partitions=2)
    first = await bus.append(topic, b"ADT^A01", key=b"p1", dedup_id="MSG-0001")
    again = await bus.append(topic, b"ADT^A01", key=b"p1", dedup_id="MSG-0001")
    other = await bus.append(topic, b"ADT^A02", key=b"p1", dedup_id="MSG-0002")
    assert not first.duplicate
    assert again.duplicate
    assert again.offset in (first.offset, -1)
    assert not other.duplicate
    assert [r.value for r in await read_all(bus, topic)] == [b"ADT^A01", b"ADT^A02"]


async def test_create_topics_is_idempotent_and_keeps_the_partition_count(bus: Bus) -> None:
    name, other = f"contract.{uuid.uuid4().hex[:12]}", f"contract.{uuid.uuid4().hex[:12]}"
    await bus.create_topics([TopicSpec(name=name, partitions=3)])
    await bus.create_topics([TopicSpec(name=name, partitions=3)])
    await bus.create_topics([TopicSpec(name=name, partitions=5), TopicSpec(other, partitions=2)])
    assert await bus.partitions_for(name) == 3
    assert await bus.partitions_for(other) == 2
    assert await bus.end_offsets(name) == {0: 0, 1: 0, 2: 0}


async def test_end_offsets_and_read(bus: Bus, new_topic: TopicFactory) -> None:
    topic = await new_topic(partitions=2)
    for n in range(5):
        await bus.append(topic, b"%d" % n, partition=1)
    assert await bus.end_offsets(topic) == {0: 0, 1: 5}
    assert [r.value for r in await bus.read(topic, 1, 2, max_records=2)] == [b"2", b"3"]
    assert await bus.read(topic, 0, 0) == []
