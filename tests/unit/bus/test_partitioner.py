"""Kafka's default partitioner: murmur2 and toPositive(h) % n, bit for bit."""

from __future__ import annotations

import random

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from engine.bus.partitioner import murmur2, partition_for_key, to_positive

# Kafka's own UtilsTest.testMurmur2 vectors (signed ints, as Java returns them).
KAFKA_VECTORS = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
]


@pytest.mark.parametrize(("data", "expected"), KAFKA_VECTORS)
def test_murmur2_matches_kafka_java_vectors(data: bytes, expected: int) -> None:
    assert murmur2(data) == expected


def test_murmur2_of_empty_input() -> None:
    assert murmur2(b"") == 275646681


def _keys() -> list[bytes]:
    rng = random.Random(20240611)
    keys = [rng.randbytes(n) for n in range(70) for _ in range(20)]
    keys += [f"MRN{n:07d}".encode() for n in range(500)]
    keys += [f"WARD-ÄÖ-{n}".encode() for n in range(50)]
    keys += [bytes([255] * n) for n in range(1, 9)]
    return keys


def test_murmur2_matches_aiokafka_on_many_keys() -> None:
    for key in _keys():
        assert murmur2(key) & 0xFFFFFFFF == aiokafka_murmur2(key), key


@pytest.mark.parametrize("partitions", [1, 2, 3, 4, 7, 12, 16, 100])
def test_partition_for_key_matches_aiokafka_default_partitioner(partitions: int) -> None:
    everything = list(range(partitions))
    for key in _keys():
        expected = DefaultPartitioner()(key, everything, everything)
        assert partition_for_key(key, partitions) == expected, key


def test_known_partitions() -> None:
    # toPositive(-790332482) = 1357151166; 1357151166 % 10 = 6, % 50 = 16.
    assert partition_for_key(b"foobar", 10) == 6
    assert partition_for_key(b"foobar", 50) == 16


def test_to_positive_clears_the_sign_bit_rather_than_negating() -> None:
    assert to_positive(-790332482) == 1357151166
    assert to_positive(-(2**31)) == 0
    assert to_positive(5) == 5


def test_partition_count_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        partition_for_key(b"k", 0)
