"""The MLLP listener: HL7v2 over TCP into the bus, acknowledged only once durable.

Each connection is an ``asyncio.Protocol``. Frames are answered strictly in
order; a sender may pipeline, and frames read while an append is in flight
wait in a bounded queue (reading pauses when it is full). A valid message is
appended to ``topic`` and answered AA only after the append returns; anything
else goes to ``dlq`` and is answered AE/AR with MSA-3 and ERR. Message content
is never logged.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import structlog

from connectors.mllp.framing import MllpDecoder, OversizeFrame, encode_frame
from engine.types import Bus
from pipelines.hl7v2 import (
    HL7_CONTENT_TYPE,
    MESSAGE_TYPES,
    AckCode,
    AckError,
    ErrorCode,
    Hl7ParseError,
    IntakeResult,
    Message,
    build_ack,
    intake_dedup_id,
    intake_envelope,
    intake_key,
    parse_bytes,
    refusal_envelope,
    validate_for_intake,
)
from schemas.topics import DLQ, RAW_HL7V2

STEP_ID = "mllp.intake"


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _sequential_ids() -> Callable[[], str]:
    """ACK control ids: a random prefix per listener and a counter (fits MSH-10's 20)."""
    prefix, counter = uuid.uuid4().hex[:8], itertools.count(1)
    return lambda: f"{prefix}{next(counter)}"


def _random_ids() -> Callable[[], str]:
    """Envelope ids like ``uuid4().hex``, from a generator seeded once by the OS:
    ``uuid4`` per message reads the OS entropy source, and that system call
    hands the GIL to the bus writer thread in the middle of every message."""
    rng = random.Random(uuid.uuid4().int)
    return lambda: f"{rng.getrandbits(128):032x}"


class LatencyReservoir:
    """A bounded uniform sample of latencies in seconds (reservoir sampling)."""

    __slots__ = ("_capacity", "_rng", "_samples", "count")

    def __init__(self, capacity: int = 8192, *, seed: int = 0) -> None:
        self._capacity = capacity
        self._samples: list[float] = []
        self._rng = random.Random(seed)
        self.count = 0

    def add(self, seconds: float) -> None:
        self.count += 1
        if len(self._samples) < self._capacity:
            self._samples.append(seconds)
            return
        slot = self._rng.randrange(self.count)
        if slot < self._capacity:
            self._samples[slot] = seconds

    def samples(self) -> list[float]:
        """A copy of the current sample (at most ``capacity`` values)."""
        return list(self._samples)

    def percentile(self, q: float) -> float | None:
        """The ``q``-quantile (0..1, nearest rank) of the sample; None when empty."""
        if not self._samples:
            return None
        ordered = sorted(self._samples)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def p50(self) -> float | None:
        return self.percentile(0.50)

    def p99(self) -> float | None:
        return self.percentile(0.99)


@dataclass(slots=True)
class ListenerStats:
    """Counters of one listener; ``acks`` counts replies by MSA-1 code."""

    messages_in: int = 0
    bytes_in: int = 0
    acks: Counter[str] = field(default_factory=Counter)
    oversize_frames: int = 0
    append_failures: int = 0
    connections_open: int = 0
    connections_waiting: int = 0
    connections_total: int = 0
    connections_refused: int = 0
    idle_closed: int = 0
    latency: LatencyReservoir = field(default_factory=LatencyReservoir)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures; ACK latency percentiles in ms (0.0 before any ACK)."""
        p50, p99 = self.latency.p50(), self.latency.p99()
        return {
            "messages": self.messages_in,
            "bytes": self.bytes_in,
            "acks": dict(self.acks),
            "oversize_frames": self.oversize_frames,
            "append_failures": self.append_failures,
            "connections_open": self.connections_open,
            "connections_waiting": self.connections_waiting,
            "connections_total": self.connections_total,
            "connections_refused": self.connections_refused,
            "idle_closed": self.idle_closed,
            "ack_samples": self.latency.count,
            "ack_p50_ms": round(p50 * 1000, 3) if p50 is not None else 0.0,
            "ack_p99_ms": round(p99 * 1000, 3) if p99 is not None else 0.0,
        }


class MllpListener:
    """Accepts HL7v2 over MLLP for ``channel`` and appends it to ``bus``.

    ``port=0`` binds any free port (read ``.port`` after ``start``). Up to
    ``max_connections`` connections are served at once; as many more wait
    (accepted, not read) for a free slot; beyond that they are closed. A
    connection silent for ``idle_timeout_s`` is closed. ``message_types``
    widens or narrows the accepted MSH-9 table.
    """

    def __init__(
        self,
        *,
        channel: str,
        bus: Bus,
        host: str = "127.0.0.1",
        port: int = 2575,
        topic: str = RAW_HL7V2,
        dlq_topic: str = DLQ,
        max_frame_bytes: int = 1_048_576,
        idle_timeout_s: float = 300.0,
        max_connections: int = 1024,
        max_pending_frames: int = 64,
        message_types: Mapping[str, frozenset[str]] = MESSAGE_TYPES,
        clock: Callable[[], datetime] = _utc_now,
        ack_ids: Callable[[], str] | None = None,
    ) -> None:
        if idle_timeout_s <= 0 or max_connections < 1 or max_pending_frames < 1:
            raise ValueError("idle_timeout_s, max_connections, max_pending_frames must be > 0")
        self.channel = channel
        self.bus = bus
        self.host = host
        self.port = port
        self.topic = topic
        self.dlq_topic = dlq_topic
        self.max_frame_bytes = max_frame_bytes
        self.idle_timeout_s = idle_timeout_s
        self.max_connections = max_connections
        self.max_pending_frames = max_pending_frames
        self.message_types = message_types
        self.clock = clock
        self._ack_ids = ack_ids or _sequential_ids()
        self._envelope_ids = _random_ids()
        self.stats = ListenerStats()
        self.log = structlog.get_logger(channel=channel)
        self._server: asyncio.Server | None = None
        self._active: set[_Connection] = set()
        self._waiting: deque[_Connection] = deque()

    async def start(self) -> None:
        """Bind and start accepting connections."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self),
            self.host,
            self.port,
            backlog=max(128, min(self.max_connections, 4096)),
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self.log.info("mllp.listener.started", host=self.host, port=self.port)

    async def stop(self, *, grace_s: float = 10.0) -> None:
        """Stop accepting, answer every frame already received (within
        ``grace_s``), then close all connections."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for conn in self._waiting:
            conn.close()
        self._waiting.clear()
        self.stats.connections_waiting = 0
        workers = []
        for conn in list(self._active):
            conn.stop_reading()
            if conn.worker is not None:
                workers.append(conn.worker)
        if workers:
            await asyncio.wait(workers, timeout=grace_s)
        for conn in list(self._active):
            conn.close()
        await server.wait_closed()
        self.log.info("mllp.listener.stopped", port=self.port)

    def _admit(self, conn: _Connection) -> bool:
        """Register a new connection: True to serve it now, False if it waits."""
        stats = self.stats
        stats.connections_total += 1
        if self._server is None or len(self._waiting) >= self.max_connections:
            stats.connections_refused += 1
            conn.close()
            return False
        if len(self._active) < self.max_connections:
            self._active.add(conn)
            stats.connections_open += 1
            return True
        self._waiting.append(conn)
        stats.connections_waiting += 1
        return False

    def _release(self, conn: _Connection) -> None:
        if conn in self._active:
            self._active.discard(conn)
            self.stats.connections_open -= 1
            while self._waiting and self._server is not None:
                nxt = self._waiting.popleft()
                self.stats.connections_waiting -= 1
                if nxt.activate():
                    self._active.add(nxt)
                    self.stats.connections_open += 1
                    break
        elif conn in self._waiting:
            self._waiting.remove(conn)
            self.stats.connections_waiting -= 1

    async def _handle(self, item: bytes | OversizeFrame, peer: str) -> bytes:
        """Answer one frame: append (or dead-letter) it, return the framed ACK."""
        try:
            return await self._answer(item, peer)
        except Exception as exc:  # noqa: BLE001 - whatever breaks, answer AE and keep serving
            self.log.error("mllp.intake.failed", peer=peer, error=type(exc).__name__)
            error = AckError(ErrorCode.APPLICATION_INTERNAL_ERROR, "application internal error")
            return self._reply(None, "AE", error)

    async def _answer(self, item: bytes | OversizeFrame, peer: str) -> bytes:
        received_at = self.clock()
        if isinstance(item, OversizeFrame):
            self.stats.oversize_frames += 1
            reason = f"frame of {item.size} bytes exceeds the {self.max_frame_bytes}-byte limit"
            error = AckError(ErrorCode.VALUE_TOO_LONG, reason)
            result = IntakeResult("AR", _salvage(item.head), error)
            await self._dead_letter(item.head, result, peer, received_at, size=item.size)
            return self._reply(result.message, "AR", error)
        self.stats.messages_in += 1
        result = validate_for_intake(item, message_types=self.message_types)
        message = result.message
        if message is None or not result.accepted:
            await self._dead_letter(item, result, peer, received_at)
            return self._reply(message, result.ack_code, result.error)
        envelope = intake_envelope(
            message,
            channel=self.channel,
            received_at=received_at,
            headers={"peer": peer},
            envelope_id=self._envelope_ids(),
        )
        try:
            await self.bus.append(
                self.topic,
                envelope.to_bytes(),
                key=intake_key(message),
                dedup_id=intake_dedup_id(message, self.channel),
            )
        except Exception as exc:  # noqa: BLE001 - any driver failure means "not durable": AE
            self.stats.append_failures += 1
            self.log.error(
                "mllp.append.failed",
                peer=peer,
                control_id=envelope.correlation_id,
                error=type(exc).__name__,
            )
            error = AckError(ErrorCode.APPLICATION_INTERNAL_ERROR, "message could not be stored")
            return self._reply(message, "AE", error)
        return self._reply(message, "AA", None)

    async def _dead_letter(
        self,
        raw: bytes,
        result: IntakeResult,
        peer: str,
        received_at: datetime,
        size: int | None = None,
    ) -> None:
        error = result.error or AckError(ErrorCode.APPLICATION_INTERNAL_ERROR, "refused")
        control_id = result.message.header.control_id if result.message is not None else ""
        self.log.warning(
            "mllp.message.refused",
            peer=peer,
            ack_code=result.ack_code,
            error_code=int(error.code),
            location=error.location,
            control_id=control_id,
        )
        headers = {"peer": peer} if size is None else {"peer": peer, "frame_bytes": str(size)}
        letter = refusal_envelope(
            raw,
            ack_code=result.ack_code,
            error=error,
            control_id=control_id,
            channel=self.channel,
            received_at=received_at,
            step_id=STEP_ID,
            headers=headers,
        )
        try:
            await self.bus.append(self.dlq_topic, letter.to_bytes())
        except Exception as exc:  # noqa: BLE001 - the refusal stands even if the DLQ write fails
            self.stats.append_failures += 1
            self.log.error("mllp.dlq.failed", peer=peer, error=type(exc).__name__)

    def _reply(self, message: Message | None, code: AckCode, error: AckError | None) -> bytes:
        text = build_ack(
            message, ack_code=code, control_id=self._ack_ids(), at=self.clock(), error=error
        )
        self.stats.acks[code] += 1
        codec = message.codec if message is not None else "ascii"
        return encode_frame(text.encode(codec, errors="replace"))


def _salvage(head: bytes) -> Message | None:
    """The parse of an oversize frame's first bytes, to echo its MSH-10."""
    try:
        return parse_bytes(head)
    except Hl7ParseError:
        return None


class _Connection(asyncio.Protocol):
    """One client connection: decode frames, answer them in order."""

    def __init__(self, listener: MllpListener) -> None:
        self.listener = listener
        self.decoder = MllpDecoder(listener.max_frame_bytes)
        self.queue: deque[tuple[bytes | OversizeFrame, float]] = deque()
        self.worker: asyncio.Task[None] | None = None
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        self.log: Any = listener.log
        self.loop = asyncio.get_running_loop()
        self.closed = False
        self.active = False
        self.paused = False
        self.stopping = False
        self.eof = False
        self.last_activity = 0.0
        self.idle_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        address = transport.get_extra_info("peername")
        self.peer = f"{address[0]}:{address[1]}" if isinstance(address, tuple) else str(address)
        self.log = self.listener.log.bind(peer=self.peer)
        self.transport.pause_reading()
        if self.listener._admit(self):
            self.activate()

    def activate(self) -> bool:
        """Start serving (at once, or when a waiting connection gets a slot)."""
        if self.closed or self.transport is None:
            return False
        self.active = True
        self.last_activity = self.loop.time()
        self.idle_timer = self.loop.call_later(self.listener.idle_timeout_s, self._check_idle)
        self.transport.resume_reading()
        self.log.debug("mllp.connection.opened")
        return True

    def data_received(self, data: bytes) -> None:
        listener = self.listener
        listener.stats.bytes_in += len(data)
        self.last_activity = self.loop.time()
        frames = self.decoder.feed(data)
        if not frames or self.closed:
            return
        now = time.perf_counter()
        self.queue.extend((frame, now) for frame in frames)
        if self.worker is None:
            self.worker = self.loop.create_task(self._drain())
        if len(self.queue) >= listener.max_pending_frames and not self.paused:
            self.paused = True
            if self.transport is not None:
                self.transport.pause_reading()

    def eof_received(self) -> bool:
        # Keep the socket open to write the ACKs of frames still queued.
        self.eof = True
        return self.worker is not None

    async def _drain(self) -> None:
        listener = self.listener
        try:
            while self.queue and not self.closed:
                frame, started = self.queue.popleft()
                if self.paused and len(self.queue) <= listener.max_pending_frames // 2:
                    self._resume()
                reply = await listener._handle(frame, self.peer)
                if self.closed or self.transport is None:
                    break
                self.transport.write(reply)
                listener.stats.latency.add(time.perf_counter() - started)
                self.last_activity = self.loop.time()
        finally:
            self.worker = None
            if self.eof and not self.queue:
                self.close()

    def _resume(self) -> None:
        self.paused = False
        if self.transport is not None and not self.stopping:
            self.transport.resume_reading()

    def stop_reading(self) -> None:
        """Take no more input (listener shutdown); queued frames are still answered."""
        self.stopping = True
        if self.transport is not None and not self.closed:
            self.transport.pause_reading()

    def _check_idle(self) -> None:
        if self.closed:
            return
        timeout = self.listener.idle_timeout_s
        idle_for = self.loop.time() - self.last_activity
        if self.worker is None and idle_for >= timeout:
            self.listener.stats.idle_closed += 1
            self.log.info("mllp.connection.idle_closed", idle_s=round(idle_for, 3))
            self.close()
            return
        delay = timeout - idle_for if self.worker is None else timeout
        self.idle_timer = self.loop.call_later(max(delay, 0.001), self._check_idle)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        # Unanswered frames are dropped: their sender got no ACK and will resend.
        self.queue.clear()
        if self.idle_timer is not None:
            self.idle_timer.cancel()
        self.listener._release(self)
        if self.active:
            self.log.debug("mllp.connection.closed", error=type(exc).__name__ if exc else None)


__all__ = ["HL7_CONTENT_TYPE", "LatencyReservoir", "ListenerStats", "MllpListener"]
