"""A lean MLLP load generator (asyncio protocols, uvloop when installed), run in
its own process so the engine under test keeps its core.

Lean matters here: on a two-core machine every microsecond the generator spends
per message is taken from the engine it measures. A closed-loop sender is a
protocol that sends its next message from the callback that received the
previous ACK: no task, no queue per message.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

VT, FS, CR = b"\x0b", b"\x1c", b"\r"
END = FS + CR

TEMPLATE = (
    "MSH|^~\\&|BENCH|GENERAL|WARDSTREAM|GENERAL|20260105101500+0000||ADT^A01^ADT_A01|{cid}|P|2.5\r"
    "EVN|A01|20260105101500+0000\r"
    "PID|1||{pid}^^^GENERAL^MR||DOE^JANE||19580214|F\r"
    "PV1|1|I|AMU^R1^B{bed}^GENERAL||||||||MED\r"
)

_T = TypeVar("_T")


def message(run: str, n: int) -> bytes:
    return VT + TEMPLATE.format(cid=f"{run}-{n}", pid=f"P{n % 5000}", bed=n % 40).encode() + END


def run(main: Coroutine[Any, Any, _T]) -> _T:
    """Run ``main`` on uvloop when it is installed (the engine runs on it too)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


@dataclass
class Result:
    sent: int = 0
    acked: int = 0
    rejected: int = 0
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.acked / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    def summary(self) -> dict[str, float]:
        return {
            "acked": self.acked,
            "rejected": self.rejected,
            "seconds": round(self.seconds, 3),
            "msg_per_s": round(self.rate, 1),
            "ack_p50_ms": round(self.pct(0.50), 3),
            "ack_p99_ms": round(self.pct(0.99), 3),
            "ack_mean_ms": round(statistics.fmean(self.latencies) * 1000, 3)
            if self.latencies
            else float("nan"),
        }

    def count(self, ack: bytes, latency: float) -> None:
        self.latencies.append(latency)
        if b"MSA|AA" in ack:
            self.acked += 1
        else:
            self.rejected += 1


class _Conn(asyncio.Protocol):
    """Splits the reply stream into ACK frames and hands each to ``on_ack``."""

    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport) -> None:  # type: ignore[no-untyped-def]
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        start = 0
        while (end := buffer.find(END, start)) >= 0:
            self.on_ack(buffer[start : end + 2])
            start = end + 2
        self.buffer = buffer[start:]

    def on_ack(self, ack: bytes) -> None:
        raise NotImplementedError

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)


class _ClosedLoopSender(_Conn):
    """Sends one message, waits for its ACK, sends the next, until ``stop_at``."""

    def __init__(self, result: Result, counter: Any, run: str, stop_at: float) -> None:
        super().__init__()
        self.result, self.counter, self.run, self.stop_at = result, counter, run, stop_at
        self.sent_at = 0.0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def send_next(self) -> None:
        assert self.transport is not None
        now = time.perf_counter()
        if now >= self.stop_at:
            self.done.set_result(None)
            return
        self.sent_at = now
        self.transport.write(message(self.run, next(self.counter)))
        self.result.sent += 1

    def on_ack(self, ack: bytes) -> None:
        self.result.count(ack, time.perf_counter() - self.sent_at)
        if not self.done.done():
            self.send_next()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if not self.done.done():
            self.done.set_exception(ConnectionError("engine closed the connection"))


async def closed_loop(host: str, port: int, senders: int, seconds: float, run: str) -> Result:
    """Each sender sends the next message as soon as the previous ACK arrives."""
    loop = asyncio.get_running_loop()
    result = Result()
    counter = iter(range(10**9))
    stop_at = time.perf_counter() + seconds
    conns: list[_ClosedLoopSender] = []
    for _ in range(senders):
        _, conn = await loop.create_connection(
            lambda: _ClosedLoopSender(result, counter, run, stop_at), host, port
        )
        conns.append(conn)
    began = time.perf_counter()
    for conn in conns:
        conn.send_next()
    await asyncio.gather(*(conn.done for conn in conns))
    result.seconds = time.perf_counter() - began
    for conn in conns:
        assert conn.transport is not None
        conn.transport.close()
    return result


class _OpenLoopConn(_Conn):
    """Matches ACKs, in order, to the scheduled send times of its messages."""

    def __init__(self, result: Result) -> None:
        super().__init__()
        self.result = result
        self.scheduled: list[float] = []
        self.next_ack = 0
        self.all_acked: asyncio.Future[None] | None = None

    def on_ack(self, ack: bytes) -> None:
        self.result.count(ack, time.perf_counter() - self.scheduled[self.next_ack])
        self.next_ack += 1
        if self.all_acked is not None and self.next_ack == len(self.scheduled):
            self.all_acked.set_result(None)

    def wait_all(self) -> asyncio.Future[None]:
        self.all_acked = asyncio.get_running_loop().create_future()
        if self.next_ack == len(self.scheduled):
            self.all_acked.set_result(None)
        return self.all_acked


async def open_loop(
    host: str, port: int, rate: float, seconds: float, connections: int, run: str
) -> Result:
    """Messages offered at a fixed rate whatever the ACKs do; latency counts from the
    scheduled send time, so a stall shows up in the percentiles."""
    loop = asyncio.get_running_loop()
    result = Result()
    conns: list[_OpenLoopConn] = []
    for _ in range(connections):
        _, conn = await loop.create_connection(lambda: _OpenLoopConn(result), host, port)
        conns.append(conn)
    total = int(rate * seconds)
    began = time.perf_counter()
    for n in range(total):
        scheduled = began + n / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        conn = conns[n % connections]
        assert conn.transport is not None
        conn.scheduled.append(scheduled)
        conn.transport.write(message(run, n))
        result.sent += 1
    await asyncio.gather(*(conn.wait_all() for conn in conns))
    result.seconds = time.perf_counter() - began
    for conn in conns:
        assert conn.transport is not None
        conn.transport.close()
    return result
