"""Fixtures of the golden tests: expected outputs kept as files beside the inputs."""

from __future__ import annotations

import pytest


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    """True when pytest runs with ``--update-golden``: tests rewrite their expected
    files from the current output instead of comparing with them."""
    return bool(request.config.getoption("--update-golden"))
