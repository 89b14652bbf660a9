"""MLLP ingest benchmark: durable append + ACK, on the embedded log and on Kafka.

    .venv/bin/python bench/ingest.py [--bus sqlite kafka] [--seconds 10] [--rate 1000]
        [--synchronous full|normal] [--repeat 3]

The engine runs as its own process (`wardstream up`, every pipeline and sink
off so the figure is the ingest path alone); the load generator runs in
another process.
Prints msg/s with 1 and 16 closed-loop senders, and ACK p50/p99 at a fixed
offered rate, then writes the figures as JSON under bench/results/. With
``--repeat N`` each bus is measured N times (a fresh engine each time) and the
median of every figure is printed after the individual runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._mllp_load import closed_loop, open_loop, run
from engine.config import PipelinesConfig, WardstreamConfig
from tests.engine_process import EngineProcess


def _ingest_only() -> dict[str, dict[str, object]]:
    """Config turning off every pipeline (and the FHIR result store, a consumer
    of its own) whatever the config model holds today."""
    config: dict[str, dict[str, object]] = {
        "pipelines": {name: {"enabled": False} for name in PipelinesConfig.model_fields}
    }
    fhir = WardstreamConfig.model_fields.get("fhir")
    if fhir is not None and "store" in getattr(fhir.annotation, "model_fields", {}):
        config["fhir"] = {"store": False}
    return config


INGEST_ONLY = _ingest_only()


def _closed(port: int, senders: int, seconds: float, run_id: str) -> dict[str, float]:
    return run(closed_loop("127.0.0.1", port, senders, seconds, run_id)).summary()


def _open(port: int, rate: float, seconds: float, run_id: str) -> dict[str, float]:
    return run(open_loop("127.0.0.1", port, rate, seconds, 16, run_id)).summary()


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
            run_id = f"{name}{time.time_ns()}"
            pool.submit(_closed, engine.mllp_port, 4, 1.0, run_id + "w").result()  # warm-up
            for senders in (1, 16):
                figures[f"closed_{senders}"] = pool.submit(
                    _closed, engine.mllp_port, senders, args.seconds, f"{run_id}c{senders}"
                ).result()
            figures[f"open_{int(args.rate)}"] = pool.submit(
                _open, engine.mllp_port, args.rate, args.seconds, f"{run_id}o"
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
    parser.add_argument("--repeat", type=int, default=1, help="runs per bus; medians printed")
    args = parser.parse_args()
    results: dict[str, dict] = {}
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        for bus in args.bus:
            url = None
            if bus == "kafka":
                from tests.tansu import TansuBroker

                url = stack.enter_context(TansuBroker()).url
            runs = []
            for n in range(args.repeat):
                runs.append(bench_bus(bus, url, Path(tmp) / f"run{n}", args))
                _print(bus, runs[-1])
            results[bus] = _medians(runs) if args.repeat > 1 else runs[0]
            if args.repeat > 1:
                _print(f"{bus} median", results[bus])
                results[bus]["runs"] = runs
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "ingest.json").write_text(json.dumps(results, indent=2) + "\n")


def _print(label: str, figures: dict) -> None:
    for test, fig in figures.items():
        if test == "runs":
            continue
        print(
            f"{label:<14} {test:<12} {fig['msg_per_s']:>10.1f} msg/s"
            f"  ACK p50 {fig['ack_p50_ms']:7.2f} ms  p99 {fig['ack_p99_ms']:7.2f} ms"
            f"  ({fig['acked']} acked, {fig['rejected']} rejected)",
            flush=True,
        )


def _medians(runs: list[dict]) -> dict:
    """Per test and figure, the median over runs."""
    return {
        test: {key: statistics.median(run[test][key] for run in runs) for key in runs[0][test]}
        for test in runs[0]
    }


if __name__ == "__main__":
    main()
