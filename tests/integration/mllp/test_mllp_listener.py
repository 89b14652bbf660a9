"""The MLLP listener on real loopback sockets, appending to a real embedded log.

Each MLLP edge case is its own test. Waits are bounded (``asyncio.timeout``) so
a broken listener fails a test instead of hanging it; nothing asserts on time.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from structlog.testing import capture_logs

from connectors.mllp import MllpDecoder, MllpListener, MllpSender, encode_frame
from engine.bus import open_bus
from engine.bus.embedded import EmbeddedLog
from engine.types import AppendResult, Bus, Envelope
from pipelines.hl7v2 import Ack, parse, parse_ack, parse_bytes
from schemas.topics import DLQ, RAW_HL7V2, default_topics
from tests.hl7_factory import adt

CHANNEL = "ward-feed"
WAIT = 10.0
NOW = datetime(2026, 1, 5, 10, 15, tzinfo=UTC)

StartListener = Callable[..., Awaitable[MllpListener]]


@pytest.fixture
async def bus(tmp_path: Any) -> AsyncIterator[EmbeddedLog]:
    log = cast(EmbeddedLog, open_bus(f"sqlite:///{tmp_path}/bus.db", synchronous="normal"))
    await log.start()
    await log.create_topics(default_topics(partitions=2))
    yield log
    await log.stop()


class AwaitOnly:
    """The embedded log seen through the plain ``Bus.append`` only, as a driver
    without completion callbacks (Kafka) is: the listener then answers on its
    awaiting path, one task per connection."""

    def __init__(self, log: EmbeddedLog) -> None:
        self.log = log
        self.url = log.url

    async def append(self, topic: str, value: bytes, **options: Any) -> AppendResult:
        return await self.log.append(topic, value, **options)


@pytest.fixture(params=["callbacks", "awaiting"])
async def start_listener(
    bus: EmbeddedLog, request: pytest.FixtureRequest
) -> AsyncIterator[StartListener]:
    started: list[MllpListener] = []

    async def start(**options: Any) -> MllpListener:
        target = options.pop("bus", bus)
        if request.param == "awaiting":
            target = AwaitOnly(target)
        listener = MllpListener(
            channel=CHANNEL, bus=cast(Bus, target), port=0, clock=lambda: NOW, **options
        )
        assert listener.inline == (request.param == "callbacks")
        await listener.start()
        started.append(listener)
        return listener

    yield start
    for listener in started:
        await listener.stop(grace_s=2.0)


async def stored(bus: EmbeddedLog, topic: str) -> list[Envelope]:
    out = []
    for partition in range(await bus.partitions_for(topic)):
        out += [Envelope.from_bytes(r.value) for r in await bus.read(topic, partition, 0, 10_000)]
    return out


async def eventually(condition: Callable[[], bool]) -> None:
    """Wait, bounded, until ``condition()`` holds."""
    async with asyncio.timeout(WAIT):
        while not condition():  # noqa: ASYNC110 - stats counters have no event to await
            await asyncio.sleep(0.001)


class Client:
    """A bare MLLP client: writes exactly the bytes it is given."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.decoder = MllpDecoder()
        self.frames: list[bytes] = []

    @classmethod
    async def connect(cls, port: int) -> Client:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def write(self, *chunks: bytes) -> None:
        for chunk in chunks:
            self.writer.write(chunk)
            await self.writer.drain()
            if len(chunks) > 1:
                await asyncio.sleep(0.001)  # let each chunk arrive as a read of its own

    async def frame(self) -> bytes:
        async with asyncio.timeout(WAIT):
            while not self.frames:
                data = await self.reader.read(65536)
                assert data, "connection closed before a reply"
                self.frames += [f for f in self.decoder.feed(data) if isinstance(f, bytes)]
        return self.frames.pop(0)

    async def ack(self) -> Ack:
        return parse_ack(await self.frame())

    async def closed_by_peer(self) -> bool:
        async with asyncio.timeout(WAIT):
            return await self.reader.read(65536) == b""

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


def frame(message: str, codec: str = "utf-8") -> bytes:
    return encode_frame(message.encode(codec))


async def test_aa_only_once_the_record_is_readable(
    start_listener: StartListener, bus: EmbeddedLog
) -> None:
    listener = await start_listener()
    client = await Client.connect(listener.port)
    await client.write(frame(adt("A01", "C-1", "P100", sending_app="PAS", sending_facility="RH")))
    ack = await client.ack()
    assert (ack.code, ack.control_id) == ("AA", "C-1")
    [envelope] = await stored(bus, RAW_HL7V2)
    assert envelope.correlation_id == "C-1"
    assert envelope.channel == CHANNEL
    assert envelope.received_at == NOW
    assert envelope.content_type == "x-application/hl7-v2+er7"
    assert envelope.payload == adt("A01", "C-1", "P100", sending_app="PAS", sending_facility="RH")
    assert envelope.headers["sending_application"] == "PAS"
    assert envelope.headers["sending_facility"] == "RH"
    assert envelope.headers["message_type"] == "ADT^A01"
    assert envelope.headers["peer"].startswith("127.0.0.1:")
    [record] = [r for p in range(2) for r in await bus.read(RAW_HL7V2, p, 0)]
    assert record.key == b"P100"
    await client.close()


async def test_no_ack_while_the_append_is_not_yet_durable(
    start_listener: StartListener, bus: EmbeddedLog
) -> None:
    listener = await start_listener()
    client = await Client.connect(listener.port)
    # Another SQLite connection holding the write lock keeps the append from committing.
    lock = sqlite3.connect(bus.path, timeout=WAIT, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    try:
        await client.write(frame(adt("A01", "L-1", "P1")))
        await eventually(lambda: listener.stats.messages_in > 0)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await client.reader.read(1)
        assert await stored(bus, RAW_HL7V2) == []
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert (await client.ack()).code == "AA"
    assert [e.correlation_id for e in await stored(bus, RAW_HL7V2)] == ["L-1"]


async def test_key_falls_back_to_sending_application_and_facility(
    start_listener: StartListener, bus: EmbeddedLog
) -> None:
    listener = await start_listener()
    client = await Client.connect(listener.port)
    message = "MSH|^~\\&|LAB|NORTH|WS|WS|20260105||ORU^R01^ORU_R01|L-1|P|2.5\rOBR|1\r"
    await client.write(frame(message))
    assert (await client.ack()).code == "AA"
    [record] = [r for p in range(2) for r in await bus.read(RAW_HL7V2, p, 0)]
    assert record.key == b"LAB^NORTH"


async def test_resend_of_the_same_control_id_is_acked_and_stored_once(
    start_listener: StartListener, bus: EmbeddedLog
) -> None:
    listener = await start_listener()
    client = await Client.connect(listener.port)
    for _ in range(3):
        await client.write(frame(adt("A01", "DUP-1", "P1")))
        assert (await client.ack()).code == "AA"
    assert len(await stored(bus, RAW_HL7V2)) == 1
    assert listener.stats.acks["AA"] == 3


async def test_a_frame_split_at_every_byte_boundary(
    start_listener: StartListener, bus: EmbeddedLog
) -> None:
    listener = await start_listener()
    client = await Client.connect(listener.port)
    template = "MSH|^~\\&|A|B|C|D|20260105||ADT^A01|{}|P|2.5\rPID|1||42\r"
    cuts = range(1, len(frame(template.format("S000"))))
    for cut in cuts:
        data = frame(template.format(f"S{cut:03d}"))
        await client.write(data[:cut], data[cut:])
        ack = await client.ack()
        assert (ack.code, ack.control_id) == ("AA", f"S{cut:03d}")
    assert len(await stored(bus, RAW_HL7V2)) == len(cuts)


async def test_several_frames_in_one_write_are_answered_in_order(
    start_listener: StartListener,
) -> None:
    listener = await start_listener(max_pending_frames=2)
    client = await Client.connect(listener.port)
    ids = [f"M{n}" for n in range(12)]
    await client.write(b"".join(frame(adt("A01", cid, f"P{cid}")) for cid in ids))
    assert [(await client.ack()).control_id for _ in ids] == ids


async def test_end_bytes_split_across_reads(start_listener: StartListener) -> None:
    listener = await start_listener()
    client = await Client.connect(listener.port)
    data = frame(adt("A01", "E-1", "P1"))
    await client.write(data[:-2], data[-2:-1], data[-1:])
    assert (await client.ack()).control_id == "E-1"
    data = frame(adt("A01", "E-2", "P1"))
    await client.write(data[:-1], data[-1:])
    assert (await client.ack()).control_id == "E-2"


async def test_oversize_frame_is_refused_then_the_next_frame_is_fine(
    start_listener: StartListener, bus: EmbeddedLog
) -> None:
    listener = await start_listener(max_frame_bytes=2048)
    client = await Client.connect(listener.port)
    big = adt("A01", "BIG-1", "P1") + "NTE|1||" + "x" * 10_000 + "\r"
    await client.write(frame(big)[:3000], frame(big)[3000:] + frame(adt("A01", "OK-1", "P1")))
    refused = await client.ack()
    assert (refused.code, refused.control_id, refused.error_codes) == ("AR", "BIG-1", ("104",))
    assert "2048" in refused.text
    assert (await client.ack()).control_id == "OK-1"
    assert [e.correlation_id for e in await stored(bus, RAW_HL7V2)] == ["OK-1"]
    [letter] = await stored(bus, DLQ)
    assert letter.headers["frame_bytes"] == str(len(big.encode()))
    assert listener.stats.oversize_frames == 1


async def test_idle_connection_is_closed(start_listener: StartListener) -> None:
    listener = await start_listener(idle_timeout_s=0.2)
    client = await Client.connect(listener.port)
    await client.write(frame(adt("A01", "I-1", "P1")))
    assert (await client.ack()).code == "AA"
    assert await client.closed_by_peer()
    assert listener.stats.idle_closed == 1


async def test_fifty_concurrent_connections(
    start_listener: StartListener, bus: EmbeddedLog
) -> None:
    listener = await start_listener()

    async def one(n: int) -> list[str]:
        async with MllpSender("127.0.0.1", listener.port, ack_timeout=WAIT) as sender:
            return [(await sender.send(adt("A01", f"K{n}-{i}", f"P{n}"))).code for i in range(3)]

    codes = await asyncio.gather(*(one(n) for n in range(50)))
    assert [c for per in codes for c in per] == ["AA"] * 150
    assert len(await stored(bus, RAW_HL7V2)) == 150
    assert listener.stats.connections_total == 50


MSH = "MSH|^~\\&|EHR|GENERAL|WARDSTREAM|GENERAL|20260105101500+0000|"


@pytest.mark.parametrize(
    ("payload", "ack_code", "error_code"),
    [
        pytest.param(b"", "AR", "100", id="empty"),
        pytest.param(b"PID|1||123\rPV1|1|I\r", "AR", "100", id="no-msh"),
        pytest.param(f"{MSH}|XYZ^A01|J-1|P|2.5\r".encode(), "AR", "200", id="unknown-msh9"),
        pytest.param(f"{MSH}||J-1|P|2.5\r".encode(), "AR", "101", id="missing-msh9"),
        pytest.param(f"{MSH}|ADT^A01|J-1\r".encode(), "AR", "101", id="truncated-msh"),
        pytest.param(f"{MSH}|ADT^A01|J-1|P|2.5\rP@D|1\r".encode(), "AE", "100", id="bad-seg"),
        pytest.param(b"\x00\x01\x02\x03\xff\xfe\x80junk", "AR", "102", id="binary-junk"),
    ],
)
async def test_bad_input_is_refused_dead_lettered_and_the_listener_keeps_serving(
    start_listener: StartListener,
    bus: EmbeddedLog,
    payload: bytes,
    ack_code: str,
    error_code: str,
) -> None:
    listener = await start_listener()
    client = await Client.connect(listener.port)
    await client.write(encode_frame(payload))
    ack = await client.ack()
    assert ack.code == ack_code
    assert ack.text
    assert ack.error_codes == (error_code,)
    assert parse(ack.raw).segment("ERR") is not None
    await client.write(frame(adt("A01", "AFTER-1", "P1")))
    assert (await client.ack()).code == "AA"
    [letter] = await stored(bus, DLQ)
    assert letter.payload.encode("latin-1") == payload
    assert letter.headers["dlq.step_id"] == "mllp.intake"
    assert letter.headers["dlq.error_code"] == error_code
    assert letter.headers["dlq.reason"] == ack.text
    assert [e.correlation_id for e in await stored(bus, RAW_HL7V2)] == ["AFTER-1"]
    assert listener.stats.acks[ack_code] == 1


async def test_a_refusal_echoes_the_control_id_when_there_is_one(
    start_listener: StartListener,
) -> None:
    listener = await start_listener()
    client = await Client.connect(listener.port)
    await client.write(frame(f"{MSH}|XYZ^A01|J-77|P|2.5\r"))
    assert (await client.ack()).control_id == "J-77"


@pytest.mark.parametrize(
    "msh",
    [
        "MSH#^~\\&#EHR#NORTH#WS#WSF#20260105##ADT^A01^ADT_A01#D-1#P#2.3.1",
        "MSH|*~\\&|EHR|NORTH|WS|WSF|20260105||ADT*A01*ADT_A01|D-1|P|2.4",
        "MSH|^~\\&#|EHR|NORTH|WS|WSF|20260105||ADT^A01^ADT_A01|D-1|P|2.7",
    ],
)
async def test_ack_echoes_control_id_swaps_parties_and_keeps_delimiters_and_version(
    start_listener: StartListener, msh: str
) -> None:
    listener = await start_listener()
    client = await Client.connect(listener.port)
    await client.write(frame(msh + "\r"))
    raw = (await client.frame()).decode()
    inbound = parse(msh)
    assert raw.startswith(msh[:4] + inbound.encoding_characters + msh[3])
    ack = parse(raw)
    assert ack.get("MSA-1") == "AA"
    assert ack.get("MSA-2") == "D-1"
    assert (ack.get("MSH-3"), ack.get("MSH-4")) == ("WS", "WSF")
    assert (ack.get("MSH-5"), ack.get("MSH-6")) == ("EHR", "NORTH")
    assert ack.get("MSH-9.2") == "A01"
    assert ack.get("MSH-12") == inbound.get("MSH-12")
    assert ack.get("MSH-7") == "20260105101500+0000"


@pytest.mark.parametrize(("charset", "codec"), [("UNICODE UTF-8", "utf-8"), ("8859/1", "latin-1")])
async def test_msh18_payloads_round_trip(
    start_listener: StartListener, bus: EmbeddedLog, charset: str, codec: str
) -> None:
    listener = await start_listener()
    client = await Client.connect(listener.port)
    message = (
        f"MSH|^~\\&|EHR|GÉNÉRAL|WS|WS|20260105||ADT^A01^ADT_A01|U-1|P|2.5||||||{charset}\r"
        "PID|1||P1^^^H^MR||MÜLLER^JOSÉ^Ñ\r"
    )
    await client.write(frame(message, codec))
    reply = await client.frame()
    assert parse_ack(reply).code == "AA"
    assert "GÉNÉRAL".encode(codec) in reply
    assert parse_bytes(reply).get("MSH-6") == "GÉNÉRAL"
    [envelope] = await stored(bus, RAW_HL7V2)
    assert envelope.payload == message
    assert envelope.headers["sending_facility"] == "GÉNÉRAL"


async def test_a_failed_append_is_answered_ae_207_never_aa(
    start_listener: StartListener, tmp_path: Any
) -> None:
    stopped = open_bus(f"sqlite:///{tmp_path}/closed.db")
    listener = await start_listener(bus=stopped)
    client = await Client.connect(listener.port)
    await client.write(frame(adt("A01", "F-1", "P1")))
    ack = await client.ack()
    assert (ack.code, ack.control_id, ack.error_codes) == ("AE", "F-1", ("207",))
    assert listener.stats.append_failures >= 1
    assert listener.stats.acks["AA"] == 0


async def test_ack_after_the_sender_half_closes(start_listener: StartListener) -> None:
    listener = await start_listener()
    client = await Client.connect(listener.port)
    await client.write(frame(adt("A01", "H-1", "P1")))
    client.writer.write_eof()
    assert (await client.ack()).control_id == "H-1"
    assert await client.closed_by_peer()


async def test_stop_answers_what_was_received_then_closes(
    start_listener: StartListener, bus: EmbeddedLog
) -> None:
    listener = await start_listener()
    client = await Client.connect(listener.port)
    await client.write(b"".join(frame(adt("A01", f"Q{n}", "P1")) for n in range(20)))
    await eventually(lambda: listener.stats.messages_in > 0)
    await listener.stop()
    acks = []
    async with asyncio.timeout(WAIT):
        while chunk := await client.reader.read(65536):
            acks += [parse_ack(f) for f in client.decoder.feed(chunk) if isinstance(f, bytes)]
    assert acks
    assert {a.code for a in acks} == {"AA"}
    assert [a.control_id for a in acks] == [f"Q{n}" for n in range(len(acks))]
    assert len(await stored(bus, RAW_HL7V2)) == len(acks)


async def test_connections_over_the_limit_wait_for_a_free_slot(
    start_listener: StartListener,
) -> None:
    listener = await start_listener(max_connections=1)
    first = await Client.connect(listener.port)
    await first.write(frame(adt("A01", "W-1", "P1")))
    assert (await first.ack()).code == "AA"
    second = await Client.connect(listener.port)
    await second.write(frame(adt("A01", "W-2", "P2")))
    await eventually(lambda: listener.stats.connections_waiting > 0)
    assert listener.stats.messages_in == 1
    await first.close()
    assert (await second.ack()).control_id == "W-2"
    assert listener.stats.connections_waiting == 0


async def test_logs_carry_no_message_content(start_listener: StartListener) -> None:
    with capture_logs() as logs:
        listener = await start_listener()
        client = await Client.connect(listener.port)
        good = adt("A01", "G-1", "MRN7781234", name="OKONKWO^ADAEZE", birth_date="19610923")
        for message in (good, good.replace("ADT^A01", "XYZ^A01"), good.replace("EVN", "E\0N")):
            await client.write(frame(message))
            await client.ack()
        await client.close()
        await eventually(lambda: listener.stats.connections_open == 0)
    assert {e["event"] for e in logs} >= {"mllp.message.refused", "mllp.connection.closed"}
    assert [e["error_code"] for e in logs if e["event"] == "mllp.message.refused"] == [200, 102]
    assert all(e["channel"] == CHANNEL for e in logs)
    for secret in ("OKONKWO", "ADAEZE", "MRN7781234", "19610923"):
        assert secret not in repr(logs)


async def test_pipelined_mix_is_answered_in_order_and_stored_once(
    start_listener: StartListener, bus: EmbeddedLog
) -> None:
    listener = await start_listener()
    client = await Client.connect(listener.port)
    frames = [
        frame(adt("A01", "X-1", "P1")),
        frame(f"{MSH}|XYZ^A01|X-2|P|2.5\r"),
        frame(adt("A01", "X-1", "P1")),  # the same message again, in the same write
        frame(adt("A02", "X-3", "P2")),
    ]
    await client.write(b"".join(frames))
    acks = [await client.ack() for _ in frames]
    assert [(a.code, a.control_id) for a in acks] == [
        ("AA", "X-1"),
        ("AR", "X-2"),
        ("AA", "X-1"),
        ("AA", "X-3"),
    ]
    assert sorted(e.correlation_id for e in await stored(bus, RAW_HL7V2)) == ["X-1", "X-3"]
    assert [e.correlation_id for e in await stored(bus, DLQ)] == ["X-2"]


async def test_a_refusal_stands_when_the_dead_letter_cannot_be_written(
    start_listener: StartListener, tmp_path: Any
) -> None:
    listener = await start_listener(bus=open_bus(f"sqlite:///{tmp_path}/closed.db"))
    client = await Client.connect(listener.port)
    await client.write(frame(f"{MSH}|XYZ^A01|R-1|P|2.5\r"))
    ack = await client.ack()
    assert (ack.code, ack.control_id, ack.error_codes) == ("AR", "R-1", ("200",))
    assert listener.stats.append_failures == 1
