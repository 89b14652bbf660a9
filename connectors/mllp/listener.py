"""The MLLP listener: HL7v2 over TCP into the bus, acknowledged only once durable.

Frames are answered strictly in order per connection; a sender may pipeline,
and reading pauses while too many of its frames are unanswered. A valid
message is appended to ``topic`` and answered AA only after the append is
durable; anything else goes to ``dlq`` and is answered AE/AR with MSA-3 and
ERR. Message content is never logged.

Two paths lead to the same answers. When the bus takes completion callbacks
(``CallbackAppender``, as the embedded log does) a frame is validated and
queued for the append as soon as it is read, and the ACK is written from the
callback once the record is committed: no task and no future per message
(less CPU per message, see docs/performance.md). Otherwise (Kafka), and on a
strict channel, a task per connection answers its frames one by one,
awaiting each append.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from ssl import SSLContext

import structlog

from connectors.mllp._answers import STEP_ID, Answers, sequential_ids
from connectors.mllp._connection import Connection, Reply
from connectors.mllp._stats import LatencyReservoir, ListenerStats
from connectors.mllp.framing import OversizeFrame
from engine.types import AppendCallback, AppendResult, Bus, CallbackAppender, new_id
from pipelines.hl7v2 import (
    HL7_CONTENT_TYPE,
    MESSAGE_TYPES,
    IntakeResult,
    Message,
    intake_dedup_id,
    intake_key,
    validate_for_intake,
)
from pipelines.hl7v2._intake import intake_envelope_bytes
from pipelines.hl7v2.strict import StrictError, strict_errors
from schemas.topics import DLQ, RAW_HL7V2


def _utc_now() -> datetime:
    return datetime.now(UTC)


class MllpListener:
    """Accepts HL7v2 over MLLP for ``channel`` and appends it to ``bus``.

    ``port=0`` binds any free port (read ``.port`` after ``start``). Up to
    ``max_connections`` connections are served at once; as many more wait
    (accepted, not read) for a free slot; beyond that they are closed. A
    connection silent for ``idle_timeout_s`` is closed. ``message_types``
    widens or narrows the accepted MSH-9 table. ``strict`` also validates each
    message against its declared HL7 version (``pipelines.hl7v2.strict``, in
    a worker thread) and refuses it with AE, one ERR per problem, if it fails.
    With ``ssl`` (a server context) connections are TLS; over TLS a sender's
    half-close ends the connection, so ACKs still pending then are not sent
    (the sender resends, and dedup stores the message once).
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
        strict: bool = False,
        ssl: SSLContext | None = None,
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
        self.strict = strict
        self.ssl = ssl
        self._envelope_ids = new_id
        self.stats = ListenerStats()
        self.log = structlog.get_logger(channel=channel)
        self.answers = Answers(
            channel=channel,
            max_frame_bytes=max_frame_bytes,
            clock=clock,
            ack_ids=ack_ids or sequential_ids(),
            stats=self.stats,
            log=self.log,
        )
        self._server: asyncio.Server | None = None
        self._active: set[Connection] = set()
        self._waiting: deque[Connection] = deque()
        self._appender = bus if isinstance(bus, CallbackAppender) else None
        # The strict check needs its own await per frame; the inline path has none.
        self.inline = self._appender is not None and not strict
        self._strict_pool: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        """Bind and start accepting connections."""
        loop = asyncio.get_running_loop()
        if self.strict and self._strict_pool is None:
            # One thread: hl7apy is pure Python, more threads only fight over the GIL.
            self._strict_pool = ThreadPoolExecutor(1, thread_name_prefix="mllp-strict")
        self._server = await loop.create_server(
            lambda: Connection(self),
            self.host,
            self.port,
            backlog=max(128, min(self.max_connections, 4096)),
            ssl=self.ssl,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self.log.info(
            "mllp.listener.started",
            host=self.host,
            port=self.port,
            strict=self.strict,
            tls=self.ssl is not None,
        )

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
        for conn in self._active:
            conn.stop_reading()
        drained = [conn.drained() for conn in self._active if conn.pending]
        if drained:
            await asyncio.wait(drained, timeout=grace_s)
        for conn in list(self._active):
            conn.close()
        await server.wait_closed()
        pool, self._strict_pool = self._strict_pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        self.log.info("mllp.listener.stopped", port=self.port)

    def _admit(self, conn: Connection) -> bool:
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

    def _release(self, conn: Connection) -> None:
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

    def take(self, item: bytes | OversizeFrame, peer: str, reply: Reply) -> None:
        """Inline path: validate one frame and queue its append (or dead letter);
        ``reply`` is filled from the bus callback once the write is durable."""
        answers = self.answers
        try:
            received_at = self.clock()
            if isinstance(item, OversizeFrame):
                result, raw, size = answers.oversize(item), item.head, item.size
            else:
                self.stats.messages_in += 1
                result = validate_for_intake(item, message_types=self.message_types)
                message = result.message
                if message is not None and result.accepted:
                    self._store_nowait(message, peer, received_at, reply)
                    return
                raw, size = item, None
            letter = answers.letter(raw, result, peer, received_at, size)
            answer = answers.reply(result.message, result.ack_code, result.error)
            done = partial(self._dead_lettered, answer, peer, reply)
            try:
                self._queue(self.dlq_topic, letter, None, None, done)
            except Exception as exc:  # noqa: BLE001 - not queued: treated like a failed write
                done(None, exc)
        except Exception as exc:  # noqa: BLE001 - whatever breaks, answer AE and keep serving
            self.log.error("mllp.intake.failed", peer=peer, error=type(exc).__name__)
            reply.fill(answers.internal_error())

    def _store_nowait(
        self, message: Message, peer: str, received_at: datetime, reply: Reply
    ) -> None:
        value = self._record(message, peer, received_at)
        done = partial(self._stored, message, peer, reply)
        try:
            self._queue(
                self.topic, value, intake_key(message), intake_dedup_id(message, self.channel), done
            )
        except Exception as exc:  # noqa: BLE001 - not queued means not durable: AE
            done(None, exc)

    def _queue(
        self,
        topic: str,
        value: bytes,
        key: bytes | None,
        dedup_id: str | None,
        callback: AppendCallback,
    ) -> None:
        appender = self._appender
        assert appender is not None
        appender.append_nowait(topic, value, key=key, dedup_id=dedup_id, callback=callback)

    def _stored(
        self,
        message: Message,
        peer: str,
        reply: Reply,
        _result: AppendResult | None,
        error: BaseException | None,
    ) -> None:
        try:
            if error is None:
                answer = self.answers.reply(message, "AA", None)
            else:
                answer = self.answers.store_failed(message, peer, error)
        except Exception as exc:  # noqa: BLE001 - the sender must get an answer
            self.log.error("mllp.intake.failed", peer=peer, error=type(exc).__name__)
            answer = self.answers.internal_error()
        reply.fill(answer)

    def _dead_lettered(
        self,
        answer: bytes,
        peer: str,
        reply: Reply,
        _result: AppendResult | None,
        error: BaseException | None,
    ) -> None:
        if error is not None:
            # The refusal stands even if the DLQ write fails.
            self.stats.append_failures += 1
            self.log.error("mllp.dlq.failed", peer=peer, error=type(error).__name__)
        reply.fill(answer)

    async def answer(self, item: bytes | OversizeFrame, peer: str) -> bytes:
        """Awaiting path: answer one frame, return the framed ACK."""
        try:
            return await self._answer(item, peer)
        except Exception as exc:  # noqa: BLE001 - whatever breaks, answer AE and keep serving
            self.log.error("mllp.intake.failed", peer=peer, error=type(exc).__name__)
            return self.answers.internal_error()

    async def _answer(self, item: bytes | OversizeFrame, peer: str) -> bytes:
        answers = self.answers
        received_at = self.clock()
        if isinstance(item, OversizeFrame):
            result = answers.oversize(item)
            await self._dead_letter(item.head, result, peer, received_at, item.size)
            return answers.reply(result.message, result.ack_code, result.error)
        self.stats.messages_in += 1
        result = validate_for_intake(item, message_types=self.message_types)
        message = result.message
        if message is None or not result.accepted:
            await self._dead_letter(item, result, peer, received_at)
            return answers.reply(message, result.ack_code, result.error)
        if self.strict:
            problems = await self._strict_check(message)
            if problems:
                result, answer = answers.strict_refusal(message, problems)
                await self._dead_letter(item, result, peer, received_at)
                return answer
        try:
            await self.bus.append(
                self.topic,
                self._record(message, peer, received_at),
                key=intake_key(message),
                dedup_id=intake_dedup_id(message, self.channel),
            )
        except Exception as exc:  # noqa: BLE001 - any driver failure means "not durable": AE
            return answers.store_failed(message, peer, exc)
        return answers.reply(message, "AA", None)

    def _record(self, message: Message, peer: str, received_at: datetime) -> bytes:
        """The ``raw.hl7v2`` envelope of an accepted message."""
        return intake_envelope_bytes(
            message,
            channel=self.channel,
            received_at=received_at,
            headers={"peer": peer},
            envelope_id=self._envelope_ids(),
        )

    async def _strict_check(self, message: Message) -> list[StrictError]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._strict_pool, strict_errors, message.text, message.header.version
        )

    async def _dead_letter(
        self,
        raw: bytes,
        result: IntakeResult,
        peer: str,
        received_at: datetime,
        size: int | None = None,
    ) -> None:
        letter = self.answers.letter(raw, result, peer, received_at, size)
        try:
            await self.bus.append(self.dlq_topic, letter)
        except Exception as exc:  # noqa: BLE001 - the refusal stands even if the DLQ write fails
            self.stats.append_failures += 1
            self.log.error("mllp.dlq.failed", peer=peer, error=type(exc).__name__)


__all__ = [
    "HL7_CONTENT_TYPE",
    "STEP_ID",
    "LatencyReservoir",
    "ListenerStats",
    "MllpListener",
]
