"""``run_live`` over real loopback MLLP into the real listener and embedded log."""

from __future__ import annotations

import asyncio
import math
import socket
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.mllp import MllpListener, MllpSendError
from connectors.simulator import SimMessage, run_live, simulate, tiny_hospital
from connectors.simulator.run import sender_for
from engine.bus import open_bus
from engine.types import Bus, Envelope, Record
from schemas.topics import RAW_HL7V2, default_topics

START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
SEED = 4
pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[Bus]:
    log = open_bus(f"sqlite:///{tmp_path}/bus.db", retention_interval_s=None)
    await log.start()
    await log.create_topics(default_topics())
    yield log
    await log.stop()


@pytest.fixture
async def listener(bus: Bus) -> AsyncIterator[MllpListener]:
    mllp = MllpListener(channel="simulated", bus=bus, host="127.0.0.1", port=0)
    await mllp.start()
    yield mllp
    await mllp.stop(grace_s=2.0)


async def read_all(bus: Bus, expected: int) -> list[Record]:
    consumer = bus.consumer("simulator-check", [RAW_HL7V2])
    await consumer.start()
    records: list[Record] = []
    try:
        for _ in range(50):
            records += await consumer.poll(max_records=1000, timeout=0.2)
            if len(records) >= expected:
                break
    finally:
        await consumer.stop()
    return records


async def test_every_message_is_acked_stored_and_kept_in_patient_order(bus, listener):
    duration = timedelta(days=3)
    expected = list(simulate(tiny_hospital(), seed=SEED, start=START, duration=duration))
    acked: list[tuple[SimMessage, str]] = []

    async def on_sent(message: SimMessage, ack) -> None:  # type: ignore[no-untyped-def]
        acked.append((message, ack.code))

    sent = await run_live(
        tiny_hospital(),
        seed=SEED,
        start=START,
        speed=math.inf,
        host="127.0.0.1",
        port=listener.port,
        senders=3,
        on_sent=on_sent,
        duration=duration,
    )

    assert len(expected) > 100
    assert sent == len(expected)
    assert {code for _, code in acked} == {"AA"}
    assert sorted(m.control_id for m, _ in acked) == [m.control_id for m in expected]
    # Several senders were really used, each patient always through the same one.
    assert len({sender_for(m.patient_id, 3) for m in expected}) == 3

    records = await read_all(bus, len(expected))
    envelopes = [(r, Envelope.from_bytes(r.value)) for r in records]
    by_id = {m.control_id: m for m in expected}
    assert sorted(e.correlation_id for _, e in envelopes) == sorted(by_id)
    log_order: dict[tuple[int, str], list[tuple[int, str]]] = defaultdict(list)
    for record, envelope in envelopes:
        message = by_id[envelope.correlation_id]
        assert envelope.payload.rstrip("\r") == message.text.rstrip("\r")
        log_order[(record.partition, message.patient_id)].append(
            (record.offset, envelope.correlation_id)
        )
    for entries in log_order.values():
        in_log = [cid for _, cid in sorted(entries)]
        # Control ids grow with simulated time: stored order is the patient's own order.
        assert in_log == sorted(in_log)


async def test_stop_event_ends_a_paced_run(listener):
    stop = asyncio.Event()
    seen: list[SimMessage] = []

    def on_sent(message: SimMessage, ack: object) -> None:
        seen.append(message)
        if len(seen) == 10:
            stop.set()

    sent = await run_live(
        tiny_hospital(),
        seed=SEED,
        start=START,
        speed=24 * 3600.0,  # a simulated day per second
        host="127.0.0.1",
        port=listener.port,
        senders=2,
        stop_event=stop,
        on_sent=on_sent,
    )
    assert 10 <= sent <= 10 + 2 * 16
    assert sent == len(seen)


async def test_max_messages_sends_the_start_of_the_stream(listener):
    seen: list[str] = []
    sent = await run_live(
        tiny_hospital(),
        seed=SEED,
        start=START,
        speed=math.inf,
        host="127.0.0.1",
        port=listener.port,
        on_sent=lambda message, ack: seen.append(message.control_id),
        max_messages=25,
    )
    first = [m.control_id for m in simulate(tiny_hospital(), seed=SEED, start=START,
                                            duration=timedelta(days=30))][:25]  # fmt: skip
    assert sent == 25
    assert seen == first


async def test_unreachable_receiver_ends_the_run_with_the_send_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port any more: every connection attempt is refused.
    with pytest.raises(MllpSendError):
        await run_live(
            tiny_hospital(), seed=SEED, start=START, speed=math.inf, host="127.0.0.1", port=port
        )


async def test_rejects_nonsense_arguments():
    with pytest.raises(ValueError, match="speed"):
        await run_live(tiny_hospital(), seed=1, start=START, speed=0, host="127.0.0.1", port=1)
    with pytest.raises(ValueError, match="senders"):
        await run_live(
            tiny_hospital(), seed=1, start=START, speed=1, host="127.0.0.1", port=1, senders=0
        )
