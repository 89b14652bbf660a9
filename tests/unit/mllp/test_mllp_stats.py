"""The listener's counters and bounded ACK-latency reservoir."""

from __future__ import annotations

import json

from connectors.mllp import LatencyReservoir, ListenerStats


def test_empty_reservoir_has_no_percentiles() -> None:
    reservoir = LatencyReservoir()
    assert reservoir.p50() is None
    assert reservoir.p99() is None


def test_percentiles_of_a_small_sample() -> None:
    reservoir = LatencyReservoir()
    for ms in range(1, 101):
        reservoir.add(ms / 1000)
    assert reservoir.p50() == 0.051
    assert reservoir.p99() == 0.1
    assert reservoir.percentile(0.0) == 0.001
    assert reservoir.count == 100


def test_the_sample_stays_bounded_and_representative() -> None:
    reservoir = LatencyReservoir(capacity=500, seed=7)
    for n in range(20_000):
        reservoir.add(float(n % 100))
    assert reservoir.count == 20_000
    assert len(reservoir.samples()) == 500
    p50 = reservoir.p50()
    assert p50 is not None
    assert 35 <= p50 <= 65


def test_stats_as_dict_is_json_ready() -> None:
    stats = ListenerStats(messages_in=3, bytes_in=900)
    stats.acks["AA"] += 2
    stats.acks["AR"] += 1
    assert stats.as_dict()["ack_p99_ms"] == 0.0
    stats.latency.add(0.002)
    figures = stats.as_dict()
    assert json.loads(json.dumps(figures)) == figures
    assert figures["messages"] == 3
    assert figures["bytes"] == 900
    assert figures["acks"] == {"AA": 2, "AR": 1}
    assert figures["ack_p99_ms"] == 2.0
    assert figures["ack_samples"] == 1
