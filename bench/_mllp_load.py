"""A lean MLLP load generator (asyncio protocols), run in its own process so the
engine under test keeps its core."""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass, field

VT, FS, CR = b"\x0b", b"\x1c", b"\r"

TEMPLATE = (
    "MSH|^~\\&|BENCH|GENERAL|WARDSTREAM|GENERAL|20260105101500+0000||ADT^A01^ADT_A01|{cid}|P|2.5\r"
    "EVN|A01|20260105101500+0000\r"
    "PID|1||{pid}^^^GENERAL^MR||DOE^JANE||19580214|F\r"
    "PV1|1|I|AMU^R1^B{bed}^GENERAL||||||||MED\r"
)


def message(run: str, n: int) -> bytes:
    return VT + TEMPLATE.format(cid=f"{run}-{n}", pid=f"P{n % 5000}", bed=n % 40).encode() + FS + CR


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


class _Conn(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = b""
        self.waiters: asyncio.Queue[bytes] = asyncio.Queue()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:  # type: ignore[no-untyped-def]
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(FS + CR)) >= 0:
            frame, self.buffer = self.buffer[: end + 2], self.buffer[end + 2 :]
            self.waiters.put_nowait(frame)


async def _connect(host: str, port: int) -> _Conn:
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_connection(_Conn, host, port)
    return proto


async def closed_loop(host: str, port: int, senders: int, seconds: float, run: str) -> Result:
    """Each sender sends the next message as soon as the previous ACK arrives."""
    result = Result()
    counter = iter(range(10**9))
    stop_at = time.perf_counter() + seconds

    async def one() -> None:
        conn = await _connect(host, port)
        assert conn.transport is not None
        while time.perf_counter() < stop_at:
            start = time.perf_counter()
            conn.transport.write(message(run, next(counter)))
            result.sent += 1
            ack = await conn.waiters.get()
            result.latencies.append(time.perf_counter() - start)
            if b"MSA|AA" in ack:
                result.acked += 1
            else:
                result.rejected += 1
        conn.transport.close()

    began = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(senders)))
    result.seconds = time.perf_counter() - began
    return result


async def open_loop(
    host: str, port: int, rate: float, seconds: float, connections: int, run: str
) -> Result:
    """Messages offered at a fixed rate whatever the ACKs do; latency counts from the
    scheduled send time, so a stall shows up in the percentiles."""
    result = Result()
    conns = [await _connect(host, port) for _ in range(connections)]
    total = int(rate * seconds)
    began = time.perf_counter()

    async def reader(conn: _Conn, sent_at: asyncio.Queue[float]) -> None:
        while True:
            scheduled = await sent_at.get()
            if scheduled < 0:
                return
            ack = await conn.waiters.get()
            result.latencies.append(time.perf_counter() - scheduled)
            if b"MSA|AA" in ack:
                result.acked += 1
            else:
                result.rejected += 1

    queues: list[asyncio.Queue[float]] = [asyncio.Queue() for _ in conns]
    readers = [asyncio.create_task(reader(c, q)) for c, q in zip(conns, queues, strict=True)]
    for n in range(total):
        scheduled = began + n / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        conn, queue = conns[n % connections], queues[n % connections]
        assert conn.transport is not None
        queue.put_nowait(scheduled)
        conn.transport.write(message(run, n))
        result.sent += 1
    for queue in queues:
        queue.put_nowait(-1.0)
    await asyncio.gather(*readers)
    result.seconds = time.perf_counter() - began
    for conn in conns:
        assert conn.transport is not None
        conn.transport.close()
    return result
