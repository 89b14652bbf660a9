"""Appends per second into the embedded log with 1 and 16 concurrent appenders,
and append latency percentiles at a fixed offered rate.

    .venv/bin/python bench/bus_append.py [--seconds 3] [--size 600] [--synchronous full]

Each appender awaits its append before sending the next, like an MLLP sender
waiting for its ACK; every record carries a key and a dedup id, as ingest does.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.bus.embedded import EmbeddedLog
from engine.types import TopicSpec

TOPIC = "raw.hl7v2"


async def _throughput(log: EmbeddedLog, appenders: int, seconds: float, value: bytes) -> float:
    ids = itertools.count()
    stop_at = time.perf_counter() + seconds
    done = 0

    async def appender(n: int) -> None:
        nonlocal done
        key = f"MRN{n:05d}".encode()
        while time.perf_counter() < stop_at:
            await log.append(TOPIC, value, key=key, dedup_id=f"msg-{next(ids)}")
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(appender(n) for n in range(appenders)))
    return done / (time.perf_counter() - started)


async def _latency(log: EmbeddedLog, rate: float, seconds: float, value: bytes) -> list[float]:
    """Offer ``rate`` appends/s on a fixed schedule; return each append's latency."""
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    tasks: set[asyncio.Task[None]] = set()

    async def one(i: int) -> None:
        t0 = time.perf_counter()
        await log.append(TOPIC, value, key=f"MRN{i % 500:05d}".encode(), dedup_id=f"lat-{i}")
        latencies.append(time.perf_counter() - t0)

    start = loop.time()
    for i in range(int(rate * seconds)):
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        task = loop.create_task(one(i))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)
    return sorted(latencies)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--size", type=int, default=600, help="value size in bytes")
    parser.add_argument("--synchronous", choices=["full", "normal"], default="full")
    parser.add_argument("--rate", type=float, default=1000.0, help="offered rate for latency")
    parser.add_argument("--dir", default=None, help="where to put the bus file (default: tmp)")
    args = parser.parse_args()
    value = b"x" * args.size
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        log = EmbeddedLog(f"sqlite:///{tmp}/bus.db", synchronous=args.synchronous)
        await log.start()
        await log.create_topics([TopicSpec(TOPIC, partitions=4)])
        print(f"embedded log, synchronous={args.synchronous}, value {args.size} B, {tmp}")
        for appenders in (1, 16):
            before = log.stats.transactions, log.stats.records
            rate = await _throughput(log, appenders, args.seconds, value)
            tx = log.stats.transactions - before[0]
            per_tx = (log.stats.records - before[1]) / max(tx, 1)
            print(f"{appenders:>2} appenders: {rate:>9,.0f} appends/s  ({per_tx:.1f} per commit)")
        lat = await _latency(log, args.rate, args.seconds, value)
        p50, p99 = lat[len(lat) // 2], lat[int(len(lat) * 0.99)]
        print(
            f"at {args.rate:,.0f}/s offered: p50 {p50 * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms,"
            f" max {lat[-1] * 1000:.2f} ms"
        )
        await log.stop()


if __name__ == "__main__":
    asyncio.run(main())
