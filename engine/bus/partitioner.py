"""Kafka's default partitioner, so a key lands on the same partition number in
the embedded log as it would in Kafka.

``murmur2`` is ``org.apache.kafka.common.utils.Utils.murmur2`` (a signed 32-bit
result, as Java returns it) and ``partition_for_key`` is the keyed branch of the
Java client's ``BuiltInPartitioner``: ``toPositive(murmur2(key)) % numPartitions``.
"""

from __future__ import annotations

from struct import unpack_from

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """MurmurHash2 of ``data`` exactly as Kafka's Java client computes it (signed int32)."""
    length = len(data)
    h = _SEED ^ length
    words = length >> 2
    if words:
        # Little-endian 4-byte words, like Java's byte-by-byte assembly.
        for k in unpack_from(f"<{words}I", data):
            k = (k * _M) & _MASK
            k ^= k >> 24
            h = ((h * _M) & _MASK) ^ ((k * _M) & _MASK)
    tail = length & 3
    if tail:
        base = length - tail
        if tail == 3:
            h ^= data[base + 2] << 16
        if tail >= 2:
            h ^= data[base + 1] << 8
        h = ((h ^ data[base]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - 0x100000000 if h & 0x80000000 else h


def to_positive(number: int) -> int:
    """Kafka's ``Utils.toPositive``: clear the sign bit (not ``abs``, which differs)."""
    return number & 0x7FFFFFFF


def partition_for_key(key: bytes, num_partitions: int) -> int:
    """The partition Kafka's default partitioner picks for a non-null ``key``."""
    if num_partitions <= 0:
        raise ValueError(f"num_partitions must be positive, got {num_partitions}")
    return (murmur2(key) & 0x7FFFFFFF) % num_partitions


__all__ = ["murmur2", "partition_for_key", "to_positive"]
