"""The MLLP sender against real loopback peers: the listener, and scripted
servers that drop, stall or answer wrongly."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from connectors.mllp import MllpDecoder, MllpListener, MllpSender, MllpSendError, encode_frame
from engine.bus import open_bus
from engine.bus.embedded import EmbeddedLog
from pipelines.hl7v2 import build_ack, parse_bytes
from tests.hl7_factory import adt

AT = datetime(2026, 1, 5, tzinfo=UTC)
Behaviour = Callable[[int, bytes], Awaitable[bytes | None]]


@pytest.fixture
async def listener(tmp_path: Any) -> AsyncIterator[MllpListener]:
    bus = cast(EmbeddedLog, open_bus(f"sqlite:///{tmp_path}/bus.db", synchronous="normal"))
    await bus.start()
    mllp = MllpListener(channel="feed", bus=bus, port=0, idle_timeout_s=0.2)
    await mllp.start()
    yield mllp
    await mllp.stop()
    await bus.stop()


class ScriptedPeer:
    """A real TCP server that hands each received frame to ``behaviour``
    (connection number, frame) and writes back whatever it returns; ``None``
    closes the connection without a reply."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.connections = 0
        self.frames: list[bytes] = []
        self.server: asyncio.Server | None = None
        self.port = 0
        self.handlers: set[asyncio.Task[Any]] = set()

    async def __aenter__(self) -> ScriptedPeer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for task in self.handlers:
            task.cancel()
        await asyncio.gather(*self.handlers, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        self.connections += 1
        number, decoder = self.connections, MllpDecoder()
        try:
            while data := await reader.read(65536):
                for frame in decoder.feed(data):
                    assert isinstance(frame, bytes)
                    self.frames.append(frame)
                    reply = await self.behaviour(number, frame)
                    if reply is None:
                        return
                    writer.write(encode_frame(reply))
        finally:
            writer.close()


def ack_for(frame: bytes) -> bytes:
    return build_ack(parse_bytes(frame), ack_code="AA", control_id="R", at=AT).encode()


async def test_send_returns_the_ack(listener: MllpListener) -> None:
    async with MllpSender("127.0.0.1", listener.port) as sender:
        ack = await sender.send(adt("A01", "S-1", "P1"))
        assert (ack.code, ack.control_id, ack.text, ack.error_codes) == ("AA", "S-1", "", ())
        assert ack.accepted
        assert ack.raw.startswith("MSH|")
        refused = await sender.send(adt("A01", "S-2", "P1").replace("ADT^A01", "XYZ^A01"))
        assert (refused.code, refused.control_id, refused.error_codes) == ("AR", "S-2", ("200",))
        junk = await sender.send(b"\x00\x01 not hl7")
        assert junk.code == "AR"
        assert (await sender.send(adt("A01", "S-3", "P1").encode())).code == "AA"


async def test_reconnects_after_the_listener_closes_an_idle_connection(
    listener: MllpListener,
) -> None:
    async with MllpSender("127.0.0.1", listener.port, backoff_s=0.01) as sender:
        assert (await sender.send(adt("A01", "R-1", "P1"))).code == "AA"
        async with asyncio.timeout(10):
            while listener.stats.idle_closed == 0:  # noqa: ASYNC110 - stats have no event
                await asyncio.sleep(0.01)
        assert (await sender.send(adt("A01", "R-2", "P1"))).code == "AA"
    assert listener.stats.connections_total == 2


async def test_resends_the_same_message_after_a_dropped_connection() -> None:
    async def drop_first(connection: int, frame: bytes) -> bytes | None:
        return None if connection == 1 else ack_for(frame)

    async with ScriptedPeer(drop_first) as peer:
        async with MllpSender("127.0.0.1", peer.port, backoff_s=0.01) as sender:
            ack = await sender.send(adt("A01", "D-1", "P1"))
        assert (ack.code, ack.control_id) == ("AA", "D-1")
        assert peer.connections == 2
        assert peer.frames[0] == peer.frames[1] == adt("A01", "D-1", "P1").encode()


async def test_gives_up_after_retries_when_no_ack_comes() -> None:
    async def silent(connection: int, frame: bytes) -> bytes | None:
        await asyncio.sleep(30)
        return None

    async with ScriptedPeer(silent) as peer:
        sender = MllpSender("127.0.0.1", peer.port, ack_timeout=0.1, retries=2, backoff_s=0.01)
        with pytest.raises(MllpSendError) as caught:
            await sender.send(adt("A01", "T-1", "P1"))
        await sender.close()
    assert caught.value.attempts == 3
    assert isinstance(caught.value.__cause__, TimeoutError)
    assert peer.connections == 3


async def test_an_ack_for_another_message_is_not_accepted() -> None:
    async def wrong(connection: int, frame: bytes) -> bytes | None:
        return ack_for(frame.replace(b"|W-1|", b"|OTHER|"))

    async with ScriptedPeer(wrong) as peer:
        sender = MllpSender("127.0.0.1", peer.port, retries=1, backoff_s=0.01)
        with pytest.raises(MllpSendError, match="MSA-2"):
            await sender.send(adt("A01", "W-1", "P1"))
        await sender.close()
    assert peer.connections == 2


async def test_a_reply_that_is_not_an_ack_is_retried() -> None:
    async def garbage_then_ack(connection: int, frame: bytes) -> bytes | None:
        return b"hello" if connection == 1 else ack_for(frame)

    async with ScriptedPeer(garbage_then_ack) as peer:
        sender = MllpSender("127.0.0.1", peer.port, backoff_s=0.01)
        assert (await sender.send(adt("A01", "G-1", "P1"))).control_id == "G-1"
        await sender.close()
    assert peer.connections == 2


async def test_connection_refused_raises_the_typed_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sender = MllpSender("127.0.0.1", port, connect_timeout=1.0, retries=1, backoff_s=0.01)
    with pytest.raises(MllpSendError) as caught:
        await sender.send(adt("A01", "X-1", "P1"))
    assert isinstance(caught.value.__cause__, OSError)
    assert caught.value.attempts == 2
