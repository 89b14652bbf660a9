"""Settings and errors of the Kafka bus driver."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from engine.bus._errors import BusError, InvalidBusUrlError

DEFAULT_KAFKA_PORT = 9092
DEFAULT_DEDUP_PATH = "var/kafka-dedup.db"
_WEEK_MS = 7 * 24 * 3600 * 1000


class KafkaBusError(BusError):
    """The broker could not do what was asked: unreachable, request rejected or
    timed out, or a consumer-group commit lost to a rebalance."""


class InvalidKafkaUrl(InvalidBusUrlError):
    """The ``kafka://`` URL is malformed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class KafkaOptions:
    """Options of ``KafkaBus``, passed as keyword arguments to ``open_bus``.

    Defaults suit Apache Kafka in production. Brokers that lack a feature (Tansu
    has no InitProducerId, for one) can turn it off here.
    """

    client_id: str = "wardstream"
    """Client id sent to the broker, shown in its logs and quotas."""

    acks: Literal["all", 1] = "all"
    """Producer acks: ``"all"`` waits for every in-sync replica (durable)."""

    enable_idempotence: bool = True
    """Idempotent producer: broker-side removal of the producer's own retries."""

    linger_ms: int = 0
    """How long the producer waits to fill a batch. Appends queued while a
    request is in flight already share the next one, so waiting longer only
    adds latency for callers that await each ack (MLLP senders do)."""

    max_batch_size: int = 256 * 1024
    """Largest producer batch per partition, in bytes."""

    compression_type: Literal["gzip", "snappy", "lz4", "zstd"] | None = None
    """Producer batch compression, or none."""

    request_timeout_ms: int = 30_000
    """Upper bound on any one broker request, metadata waits included."""

    replication_factor: int = 1
    """Replication factor of topics this driver creates (3 on a 3-broker cluster)."""

    default_partitions: int = 4
    """Partitions of a topic created by a first append or subscription, as in
    the embedded log (the broker's own auto-creation is never relied on)."""

    read_wait_ms: int = 200
    """How long ``read`` waits for records at the end of a partition."""

    session_timeout_ms: int = 10_000
    """Consumer group session timeout: a silent member is evicted after this."""

    heartbeat_interval_ms: int = 3_000
    """Consumer group heartbeat interval (well below the session timeout)."""

    rebalance_timeout_ms: int | None = None
    """How long the group waits for members to rejoin; ``None`` means the
    session timeout."""

    max_poll_interval_ms: int = 300_000
    """Longest gap between polls before a member is considered stuck."""

    dedup_path: str | Path = DEFAULT_DEDUP_PATH
    """SQLite file of the local dedup index, or ``":memory:"``."""

    dedup_retention_ms: int | None = _WEEK_MS
    """How long dedup ids are remembered; ``None`` keeps them forever."""

    def __post_init__(self) -> None:
        if self.enable_idempotence and self.acks != "all":
            raise ValueError("enable_idempotence requires acks='all'")
        if self.acks not in ("all", 1):
            raise ValueError(f"acks must be 'all' or 1, not {self.acks!r}")
        if self.heartbeat_interval_ms >= self.session_timeout_ms:
            raise ValueError("heartbeat_interval_ms must be below session_timeout_ms")
        if self.replication_factor < 1 or self.default_partitions < 1:
            raise ValueError("replication_factor and default_partitions must be at least 1")

    def producer_config(self) -> dict[str, Any]:
        """Keyword arguments for ``aiokafka.AIOKafkaProducer`` (bootstrap aside)."""
        return {
            "client_id": self.client_id,
            "acks": self.acks,
            "enable_idempotence": self.enable_idempotence,
            "linger_ms": self.linger_ms,
            "max_batch_size": self.max_batch_size,
            "compression_type": self.compression_type,
            "request_timeout_ms": self.request_timeout_ms,
        }

    def consumer_config(self, group: str, *, from_beginning: bool) -> dict[str, Any]:
        """Keyword arguments for a group ``aiokafka.AIOKafkaConsumer`` (bootstrap aside).

        Auto-commit is always off: offsets are committed after processing.
        """
        return {
            "client_id": self.client_id,
            "group_id": group,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest" if from_beginning else "latest",
            "session_timeout_ms": self.session_timeout_ms,
            "heartbeat_interval_ms": self.heartbeat_interval_ms,
            "rebalance_timeout_ms": self.rebalance_timeout_ms,
            "max_poll_interval_ms": self.max_poll_interval_ms,
            "request_timeout_ms": self.request_timeout_ms,
        }


def bootstrap_servers(url: str) -> list[str]:
    """``host:port`` entries of a ``kafka://host[:port][,host[:port]]`` URL."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "kafka":
        raise InvalidKafkaUrl(f"not a kafka:// URL: {url!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise InvalidKafkaUrl(f"kafka URL takes only host:port entries: {url!r}")
    servers = []
    for entry in parts.netloc.split(","):
        entry = entry.strip()
        host, sep, port = entry.rpartition(":")
        if not sep or entry.endswith("]"):
            # No port given (an IPv6 literal in brackets has colons of its own).
            host, port = entry, str(DEFAULT_KAFKA_PORT)
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise InvalidKafkaUrl(f"bad broker address {entry!r} in {url!r}")
        servers.append(f"{host}:{int(port)}")
    return servers
