"""Fixtures of the bus contract suite: every test runs once per bus driver."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from engine.bus import open_bus
from engine.types import Bus, TopicSpec

DRIVERS = ["sqlite", pytest.param("kafka", marks=pytest.mark.kafka)]


@pytest.fixture(params=DRIVERS)
def bus_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a fresh bus: a new SQLite file, or the session's Kafka broker."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/bus/bus.db"
    try:
        return str(request.getfixturevalue("kafka_url"))
    except pytest.FixtureLookupError:
        pytest.skip("no kafka_url fixture (tests/conftest.py): the Kafka broker is not wired up")


@pytest.fixture
def bus_options(bus_url: str, tmp_path: Path) -> dict[str, Any]:
    """Driver options that keep the suite fast."""
    if bus_url.startswith("kafka"):
        return {
            # Short group timeouts: a first join takes about half the session timeout.
            "session_timeout_ms": 6000,
            "heartbeat_interval_ms": 500,
            # Tansu has no InitProducerId, so the idempotent producer cannot start.
            "enable_idempotence": False,
            "dedup_path": str(tmp_path / "kafka-dedup.db"),
        }
    return {"retention_interval_s": None, "poll_interval_s": 0.02}


@pytest.fixture
async def bus(bus_url: str, bus_options: dict[str, Any]) -> AsyncIterator[Bus]:
    """A started bus; stopped (with its consumers) after the test."""
    driver = open_bus(bus_url, **bus_options)
    await driver.start()
    try:
        yield driver
    finally:
        await driver.stop()


TopicFactory = Callable[..., Awaitable[str]]


@pytest.fixture
def new_topic(bus: Bus) -> TopicFactory:
    """``await new_topic(partitions=4)`` creates a topic with a name unique to
    this test (Kafka topics outlive a test within the broker session)."""

    async def make(partitions: int = 4) -> str:
        name = f"contract.{uuid.uuid4().hex[:12]}"
        await bus.create_topics([TopicSpec(name=name, partitions=partitions)])
        return name

    return make


@pytest.fixture
def new_group() -> Callable[[], str]:
    """A consumer-group name unique to this call."""
    return lambda: f"group.{uuid.uuid4().hex[:12]}"
