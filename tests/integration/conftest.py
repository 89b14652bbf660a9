"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest

from engine.bus import open_bus
from engine.bus.embedded import EmbeddedLog
from schemas.topics import default_topics


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[EmbeddedLog]:
    """A started embedded log in ``tmp_path`` with the engine's topics, 2 partitions each.

    Test modules (and tests/integration/bus) that need another bus define their own.
    """
    log = cast(EmbeddedLog, open_bus(f"sqlite:///{tmp_path}/bus.db", synchronous="normal"))
    await log.start()
    await log.create_topics(default_topics(partitions=2))
    yield log
    await log.stop()
