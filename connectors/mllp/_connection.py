"""One client connection of the MLLP listener: frames in, ACKs out, in order.

Every frame read gets a ``Reply`` slot in ``pending``, in arrival order; the
slot is filled whenever its answer is ready (at once for a frame refused
without a write, from the bus's completion callback for an append, from the
worker task on the awaiting path) and replies leave strictly from the front.
``pending`` is also the backpressure: reading pauses while it holds
``max_pending_frames`` and resumes at half.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import TYPE_CHECKING, Any, cast

from connectors.mllp.framing import MllpDecoder, OversizeFrame

if TYPE_CHECKING:
    from connectors.mllp.listener import MllpListener


class Reply:
    """The answer to one frame, once known; ``started`` is when the frame was read."""

    __slots__ = ("connection", "data", "started")

    def __init__(self, connection: Connection, started: float) -> None:
        self.connection = connection
        self.started = started
        self.data: bytes | None = None

    def fill(self, data: bytes) -> None:
        """Set the framed ACK; the first answer wins. Sends it, and any answers
        queued behind it, when it is at the front."""
        if self.data is not None:
            return
        self.data = data
        pending = self.connection.pending
        if pending and pending[0] is self:
            self.connection.flush()


class Connection(asyncio.Protocol):
    """One client connection: decode frames, answer them in order."""

    def __init__(self, listener: MllpListener) -> None:
        self.listener = listener
        self.decoder = MllpDecoder(listener.max_frame_bytes)
        self.pending: deque[Reply] = deque()
        # Frames waiting for the worker task (the awaiting path only).
        self.backlog: deque[tuple[bytes | OversizeFrame, Reply]] = deque()
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
        self._drained: asyncio.Future[None] | None = None

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
        pending = self.pending
        if listener.inline:
            # No task per frame: the answer comes from a callback (see Reply).
            take, peer = listener.take, self.peer
            for frame in frames:
                reply = Reply(self, now)
                pending.append(reply)
                take(frame, peer, reply)
        else:
            for frame in frames:
                reply = Reply(self, now)
                pending.append(reply)
                self.backlog.append((frame, reply))
            if self.worker is None:
                self.worker = self.loop.create_task(self._drain())
        if len(pending) >= listener.max_pending_frames and not self.paused and not self.closed:
            self.paused = True
            if self.transport is not None:
                self.transport.pause_reading()

    def eof_received(self) -> bool:
        # Keep the socket open to write the ACKs of frames still pending.
        self.eof = True
        return bool(self.pending)

    async def _drain(self) -> None:
        answer, peer = self.listener.answer, self.peer
        try:
            while self.backlog and not self.closed:
                frame, reply = self.backlog.popleft()
                reply.fill(await answer(frame, peer))
        finally:
            self.worker = None

    def flush(self) -> None:
        """Send the answers ready at the front of ``pending``, in order."""
        pending, transport = self.pending, self.transport
        ready: list[bytes] = []
        started: list[float] = []
        while pending and pending[0].data is not None:
            reply = pending.popleft()
            ready.append(cast(bytes, reply.data))
            started.append(reply.started)
        if ready and transport is not None and not self.closed:
            transport.write(ready[0] if len(ready) == 1 else b"".join(ready))
            now = time.perf_counter()
            latency = self.listener.stats.latency
            for began in started:
                latency.add(now - began)
            self.last_activity = self.loop.time()
        if self.paused and len(pending) <= self.listener.max_pending_frames // 2:
            self._resume()
        if not pending:
            self._signal_drained()
            if self.eof:
                self.close()

    def drained(self) -> asyncio.Future[None]:
        """A future done once every frame read so far is answered (or the
        connection is gone)."""
        if self._drained is None or self._drained.done():
            self._drained = self.loop.create_future()
        if self.closed or not self.pending:
            self._drained.set_result(None)
        return self._drained

    def _signal_drained(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def _resume(self) -> None:
        self.paused = False
        if self.transport is not None and not self.stopping and not self.closed:
            self.transport.resume_reading()

    def stop_reading(self) -> None:
        """Take no more input (listener shutdown); pending frames are still answered."""
        self.stopping = True
        if self.transport is not None and not self.closed:
            self.transport.pause_reading()

    def _check_idle(self) -> None:
        if self.closed:
            return
        timeout = self.listener.idle_timeout_s
        idle_for = self.loop.time() - self.last_activity
        if not self.pending and idle_for >= timeout:
            self.listener.stats.idle_closed += 1
            self.log.info("mllp.connection.idle_closed", idle_s=round(idle_for, 3))
            self.close()
            return
        delay = timeout - idle_for if not self.pending else timeout
        self.idle_timer = self.loop.call_later(max(delay, 0.001), self._check_idle)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        # Unanswered frames are dropped: their sender got no ACK and will resend.
        self.pending.clear()
        self.backlog.clear()
        self._signal_drained()
        if self.idle_timer is not None:
            self.idle_timer.cancel()
        self.listener._release(self)
        if self.active:
            self.log.debug("mllp.connection.closed", error=type(exc).__name__ if exc else None)


__all__ = ["Connection", "Reply"]
