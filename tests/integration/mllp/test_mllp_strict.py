"""A strict channel: MLLP listener with hl7apy structure validation, on real
loopback sockets and a real embedded log."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from connectors.mllp import MllpListener, MllpSender
from engine.bus import open_bus
from engine.bus.embedded import EmbeddedLog
from engine.types import Envelope
from pipelines.hl7v2 import Ack, parse_ack
from schemas.topics import DLQ, RAW_HL7V2, default_topics
from tests.hl7_factory import adt

WAIT = 10.0
NOW = datetime(2026, 1, 5, 10, 15, tzinfo=UTC)
VALID = adt("A01", "V-1", "P100")
NO_PV1 = "\r".join(s for s in VALID.split("\r") if not s.startswith("PV1")).replace("V-1", "V-2")
BAD_DOB = VALID.replace("19580214", "14/02/1958").replace("V-1", "V-3")

StartListener = Callable[..., Awaitable[MllpListener]]


@pytest.fixture
async def bus(tmp_path: Any) -> AsyncIterator[EmbeddedLog]:
    log = cast(EmbeddedLog, open_bus(f"sqlite:///{tmp_path}/bus.db", synchronous="normal"))
    await log.start()
    await log.create_topics(default_topics(partitions=1))
    yield log
    await log.stop()


@pytest.fixture
async def start_listener(bus: EmbeddedLog) -> AsyncIterator[StartListener]:
    started: list[MllpListener] = []

    async def start(**options: Any) -> MllpListener:
        listener = MllpListener(
            channel="strict-feed", bus=bus, port=0, clock=lambda: NOW, **options
        )
        await listener.start()
        started.append(listener)
        return listener

    yield start
    for listener in started:
        await listener.stop(grace_s=2.0)


async def send(listener: MllpListener, *messages: str) -> list[Ack]:
    async with MllpSender("127.0.0.1", listener.port, ack_timeout=WAIT) as sender:
        return [await sender.send(message) for message in messages]


async def stored(bus: EmbeddedLog, topic: str) -> list[Envelope]:
    return [Envelope.from_bytes(r.value) for r in await bus.read(topic, 0, 0, 1000)]


async def test_a_valid_message_passes_and_is_stored(
    start_listener: StartListener, bus: EmbeddedLog
) -> None:
    listener = await start_listener(strict=True)
    [ack] = await send(listener, VALID)
    assert (ack.code, ack.control_id) == ("AA", "V-1")
    assert [e.correlation_id for e in await stored(bus, RAW_HL7V2)] == ["V-1"]


async def test_a_missing_segment_is_answered_ae_with_err_and_dead_lettered(
    start_listener: StartListener, bus: EmbeddedLog
) -> None:
    listener = await start_listener(strict=True)
    [ack] = await send(listener, NO_PV1)
    assert (ack.code, ack.control_id, ack.error_codes) == ("AE", "V-2", ("100",))
    assert "PV1" in ack.text
    err = ack.raw.split("\r")[2]
    assert err.startswith("ERR||PV1^1|100^Segment sequence error^HL70357|E")
    assert await stored(bus, RAW_HL7V2) == []
    [letter] = await stored(bus, DLQ)
    assert letter.correlation_id == "V-2"
    assert letter.payload == NO_PV1
    assert letter.headers["dlq.step_id"] == "mllp.intake"
    assert letter.headers["dlq.error_code"] == "100"
    assert letter.headers["dlq.reason"] == ack.text
    assert listener.stats.strict_refused == 1


async def test_a_bad_data_type_names_the_field(
    start_listener: StartListener, bus: EmbeddedLog
) -> None:
    listener = await start_listener(strict=True)
    [ack] = await send(listener, BAD_DOB)
    assert (ack.code, ack.error_codes) == ("AE", ("102",))
    assert "PID-7.1" in ack.text
    assert "PID^1^7^1^1" in ack.raw
    assert "14/02/1958" not in ack.text
    assert [e.correlation_id for e in await stored(bus, DLQ)] == ["V-3"]


async def test_each_problem_gets_its_own_err_segment(start_listener: StartListener) -> None:
    listener = await start_listener(strict=True)
    both = NO_PV1.replace("19580214", "not-a-date")
    [ack] = await send(listener, both)
    assert ack.code == "AE"
    assert ack.error_codes == ("102", "100")
    assert ack.text.startswith("2 problems against HL7 2.5")


async def test_a_non_strict_channel_accepts_the_same_messages(
    start_listener: StartListener, bus: EmbeddedLog
) -> None:
    listener = await start_listener()
    acks = await send(listener, VALID, NO_PV1, BAD_DOB)
    assert [a.code for a in acks] == ["AA", "AA", "AA"]
    assert len(await stored(bus, RAW_HL7V2)) == 3


async def test_strict_answers_stay_in_order_and_intake_refusals_still_apply(
    start_listener: StartListener, bus: EmbeddedLog
) -> None:
    listener = await start_listener(strict=True)
    unknown_type = VALID.replace("ADT^A01^ADT_A01", "XYZ^A01").replace("V-1", "V-4")
    acks = await send(listener, NO_PV1, VALID, unknown_type, BAD_DOB)
    assert [(a.code, a.control_id) for a in acks] == [
        ("AE", "V-2"),
        ("AA", "V-1"),
        ("AR", "V-4"),
        ("AE", "V-3"),
    ]
    assert [a.error_codes for a in acks[2:]] == [("200",), ("102",)]
    assert [e.correlation_id for e in await stored(bus, RAW_HL7V2)] == ["V-1"]
    assert parse_ack(acks[0].raw).text == acks[0].text
