"""Seeded reproducibility, laziness and the warm-up census snapshot."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from connectors.simulator import default_hospital, simulate, tiny_hospital

START = datetime(2026, 3, 2, 6, 30, tzinfo=UTC)


def texts(seed: int, *, days: float = 21, config=None, start=START) -> list[str]:  # type: ignore[no-untyped-def]
    config = config or tiny_hospital()
    return [m.text for m in simulate(config, seed=seed, start=start, duration=timedelta(days=days))]


def test_same_seed_gives_identical_bytes_whatever_the_global_random_state():
    random.seed(1)
    first = texts(7)
    random.seed(2)
    random.random()
    second = texts(7)
    assert len(first) > 200
    assert first == second


def test_default_hospital_is_reproducible_too():
    assert texts(3, days=2, config=default_hospital()) == texts(
        3, days=2, config=default_hospital()
    )


def test_different_seeds_give_different_hospitals():
    a, b = texts(7), texts(8)
    assert a != b
    # Not merely different control ids: different patients and times.
    assert {t.split("\r")[2] for t in a if "|ADT^A01" in t}.isdisjoint(
        {t.split("\r")[2] for t in b if "|ADT^A01" in t}
    )


def test_control_ids_differ_between_runs_with_other_start_or_seed():
    def ids(seed: int, start: datetime) -> set[str]:
        return {
            m.control_id
            for m in simulate(tiny_hospital(), seed=seed, start=start, duration=timedelta(days=3))
        }

    base = ids(7, START)
    assert base.isdisjoint(ids(8, START))
    assert base.isdisjoint(ids(7, START + timedelta(days=1)))


def test_same_instant_in_another_zone_gives_the_same_stream():
    local = START.astimezone(timezone(timedelta(hours=-5)))
    assert texts(7, days=3, start=local) == texts(7, days=3)


def test_generation_is_lazy():
    # A century-long run must yield its first message straight away.
    stream = simulate(default_hospital(), seed=1, start=START, duration=timedelta(days=36_500))
    first = next(stream)
    assert first.kind == "A01"
    stream.close()


def test_longer_runs_extend_shorter_ones():
    short = texts(5, days=7)
    long = texts(5, days=14)
    assert long[: len(short)] == short


def test_warm_up_opens_with_a_census_snapshot():
    config = default_hospital()
    messages = list(
        simulate(
            config, seed=9, start=START, duration=timedelta(days=2), warm_up=timedelta(days=14)
        )
    )
    assert messages[0].at == START
    snapshot = [m for m in messages if m.at == START]
    assert all(m.kind == "A01" for m in snapshot)
    # After two weeks the hospital is well occupied, and the census is not invented:
    # PV1-44 keeps the real admission time, before the stream starts.
    assert len(snapshot) > 0.6 * config.total_beds
    assert len({m.bed for m in snapshot}) == len(snapshot)
    admitted = [m.text.split("\r")[3].split("|")[44] for m in snapshot]
    start_ts = START.strftime("%Y%m%d%H%M%S+0000")
    assert all(ts <= start_ts for ts in admitted)
    assert sum(ts < start_ts for ts in admitted) == len(snapshot)
    assert all(m.at >= START for m in messages)


def test_rejects_naive_start_and_empty_duration():
    with pytest.raises(ValueError, match="aware"):
        simulate(tiny_hospital(), seed=1, start=datetime(2026, 1, 1), duration=timedelta(1))  # noqa: DTZ001
    with pytest.raises(ValueError, match="positive"):
        simulate(tiny_hospital(), seed=1, start=START, duration=timedelta(0))
