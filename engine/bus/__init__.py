"""Bus drivers, chosen by URL scheme: ``sqlite:///path`` (embedded log, the
default) and ``kafka://host:port[,host:port]`` (Apache Kafka or any
Kafka-protocol broker)."""

from __future__ import annotations

from typing import Any

from engine.types import Bus

DEFAULT_BUS_URL = "sqlite:///var/bus.db"


class UnknownBusScheme(ValueError):
    """The bus URL names no registered driver."""


def open_bus(url: str, **options: Any) -> Bus:
    """Build (but do not start) the bus driver for ``url``."""
    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite":
        from engine.bus.embedded import EmbeddedLog

        return EmbeddedLog(url, **options)
    if scheme == "kafka":
        from engine.bus.kafka import KafkaBus

        return KafkaBus(url, **options)
    raise UnknownBusScheme(
        f"unknown bus URL scheme {scheme!r} in {url!r}: use sqlite:// or kafka://"
    )


__all__ = ["DEFAULT_BUS_URL", "UnknownBusScheme", "open_bus"]
