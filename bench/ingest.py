"""MLLP ingest benchmark: durable append + ACK, on the embedded log and on Kafka.

    .venv/bin/python bench/ingest.py [--bus sqlite kafka] [--seconds 10] [--rate 1000]

The engine runs as its own process (`wardstream up`, pipelines off so the
figure is the ingest path alone); the load generator runs in another process.
Prints msg/s with 1 and 16 closed-loop senders, and ACK p50/p99 at a fixed
offered rate, then writes the figures as JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._mllp_load import closed_loop, open_loop
from tests.engine_process import EngineProcess

INGEST_ONLY = {"pipelines": {"normalize": {"enabled": False}, "census": {"enabled": False}}}


def _closed(port: int, senders: int, seconds: float, run: str) -> dict[str, float]:
    return asyncio.run(closed_loop("127.0.0.1", port, senders, seconds, run)).summary()


def _open(port: int, rate: float, seconds: float, run: str) -> dict[str, float]:
    return asyncio.run(open_loop("127.0.0.1", port, rate, seconds, 16, run)).summary()


# Tansu has no InitProducerId: the idempotent producer stays on for real Kafka only.
KAFKA_TEST_BROKER = {"kafka": {"enable_idempotence": False}}


def bench_bus(name: str, bus_url: str | None, workdir: Path, args: argparse.Namespace) -> dict:
    engine = EngineProcess(
        workdir / name,
        bus_url=bus_url,
        bus=KAFKA_TEST_BROKER if name == "kafka" else {"synchronous": args.synchronous},
        extra=dict(INGEST_ONLY),
    )
    engine.start(timeout=60)
    figures: dict[str, dict[str, float]] = {}
    try:
        with ProcessPoolExecutor(max_workers=1) as pool:
            run = f"{name}{int(time.time())}"
            pool.submit(_closed, engine.mllp_port, 4, 1.0, run + "w").result()  # warm-up
            for senders in (1, 16):
                figures[f"closed_{senders}"] = pool.submit(
                    _closed, engine.mllp_port, senders, args.seconds, f"{run}c{senders}"
                ).result()
            figures[f"open_{int(args.rate)}"] = pool.submit(
                _open, engine.mllp_port, args.rate, args.seconds, f"{run}o"
            ).result()
    finally:
        engine.terminate()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--bus", nargs="+", default=["sqlite", "kafka"], choices=["sqlite", "kafka"]
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--synchronous", default="full", choices=["full", "normal"])
    args = parser.parse_args()
    results: dict[str, dict] = {}
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        for bus in args.bus:
            url = None
            if bus == "kafka":
                from tests.tansu import TansuBroker

                url = stack.enter_context(TansuBroker()).url
            results[bus] = bench_bus(bus, url, Path(tmp), args)
            for test, fig in results[bus].items():
                print(
                    f"{bus:<7} {test:<12} {fig['msg_per_s']:>10.1f} msg/s"
                    f"  ACK p50 {fig['ack_p50_ms']:7.2f} ms  p99 {fig['ack_p99_ms']:7.2f} ms"
                    f"  ({fig['acked']} acked, {fig['rejected']} rejected)",
                    flush=True,
                )
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "ingest.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
