"""MLLP ingest benchmark: durable append + ACK, on the embedded log and on Kafka.

    .venv/bin/python bench/ingest.py [--bus sqlite kafka] [--seconds 10] [--rate 1000]
        [--synchronous full|normal] [--repeat 3] [--py-spy 5]

The engine runs as its own process (`wardstream up`, every pipeline and sink
off so the figure is the ingest path alone); the load generator runs in
another process. Prints msg/s with 1 and 16 closed-loop senders, and ACK
p50/p99 at a fixed offered rate, then writes the figures as JSON under
bench/results/. With ``--repeat N`` each bus is measured N times (a fresh
engine each time) and the median of every figure is printed after the runs.

On Linux each test also reports where the CPU went, per message: the engine's
main (event loop) thread, its busiest other thread (the embedded log's writer),
the load generator, and how busy the whole machine was (other work included).
``--py-spy S`` samples the engine for S seconds of the 16-sender test with
py-spy (installed in the dev environment) and prints, per thread, the
functions holding the most samples (self and inclusive); the raw samples go to
bench/results/ingest-profile-<bus>.txt.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._mllp_load import Result, closed_loop, open_loop, run
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


def _measured(result: Result, cpu_s: float) -> dict[str, float]:
    figures = result.summary()
    figures["generator_us_per_msg"] = round(cpu_s / max(result.acked, 1) * 1e6, 1)
    return figures


def _closed(port: int, senders: int, seconds: float, run_id: str) -> dict[str, float]:
    began = time.process_time()
    result = run(closed_loop("127.0.0.1", port, senders, seconds, run_id))
    return _measured(result, time.process_time() - began)


def _open(port: int, rate: float, seconds: float, run_id: str) -> dict[str, float]:
    began = time.process_time()
    result = run(open_loop("127.0.0.1", port, rate, seconds, 16, run_id))
    return _measured(result, time.process_time() - began)


def _thread_ticks(pid: int) -> dict[int, int]:
    """CPU clock ticks (user + system) of each thread of ``pid``; empty off Linux."""
    ticks: dict[int, int] = {}
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            ticks[int(tid)] = int(fields[11]) + int(fields[12])
    except OSError:
        return {}
    return ticks


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine; zeros off Linux."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0, 0
    idle = values[3] + values[4]  # idle and iowait
    return sum(values) - idle, sum(values)


def _with_cpu(pid: int, test: Callable[[], dict[str, float]]) -> dict[str, float]:
    """Run ``test`` and add per-message CPU figures of the engine process."""
    threads, machine, wall = _thread_ticks(pid), _machine_ticks(), time.perf_counter()
    figures = test()
    wall = time.perf_counter() - wall
    after, machine_after = _thread_ticks(pid), _machine_ticks()
    if not threads or not after:
        return figures
    hz, count = os.sysconf("SC_CLK_TCK"), max(figures["acked"] + figures["rejected"], 1)
    used = {tid: (ticks - threads.get(tid, 0)) / hz for tid, ticks in after.items()}
    main = used.pop(pid, 0.0)
    other = max(used.values(), default=0.0)
    busy, total = (machine_after[0] - machine[0], machine_after[1] - machine[1])
    figures["main_us_per_msg"] = round(main / count * 1e6, 1)
    figures["other_thread_us_per_msg"] = round(other / count * 1e6, 1)
    figures["engine_cores"] = round((main + sum(used.values())) / wall, 2)
    figures["machine_busy_cores"] = round(busy / total * (os.cpu_count() or 1), 2) if total else 0
    return figures


RESULTS = Path(__file__).parent / "results"


def _py_spy(pid: int, seconds: float, out: Path) -> threading.Thread | None:
    """Sample ``pid`` with py-spy in the background (started one second into
    the test, so the senders are connected and warm); None without py-spy."""
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(exe).exists():
        print("py-spy not found: no profile", file=sys.stderr)
        return None
    command = [exe, "record", "--pid", str(pid), "--duration", str(int(seconds))]
    command += ["--rate", "400", "--format", "raw", "--threads", "--nonblocking"]
    command += ["--output", str(out)]

    def sample() -> None:
        time.sleep(1.0)
        subprocess.run(command, capture_output=True, check=False)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    return thread


def _function(frame: str) -> str:
    """``"f (path/to/file.py:12)"`` -> ``"f (file.py)"``: lines differ, functions don't."""
    function, _, where = frame.partition(" (")
    return f"{function} ({where.rstrip(')').rsplit('/', 1)[-1].split(':')[0]})"


def _print_profile(raw: Path, top: int = 12) -> None:
    """Per thread, the functions with the most samples: self, then inclusive."""
    totals: Counter[str] = Counter()
    own: Counter[tuple[str, str]] = Counter()
    within: Counter[tuple[str, str]] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        thread = frames[0].split(": ", 1)[-1]
        names = [_function(frame) for frame in frames[1:]]
        totals[thread] += int(count)
        if names:
            own[(thread, names[-1])] += int(count)
        for name in set(names):
            within[(thread, name)] += int(count)
    for thread, total in totals.most_common():
        print(f"  thread {thread}: {total} samples")
        for label, counter in (("self", own), ("inclusive", within)):
            # Frames in (nearly) every sample are the thread's trunk, not news.
            rows = [
                (n, c) for (t, n), c in counter.most_common() if t == thread and c < 0.98 * total
            ][:top]
            print(f"    {label}: " + "; ".join(f"{n} {100 * c / total:.1f}%" for n, c in rows))


# Tansu has no InitProducerId: the idempotent producer stays on for real Kafka only.
KAFKA_TEST_BROKER = {"kafka": {"enable_idempotence": False}}


def bench_bus(
    name: str, bus_url: str | None, workdir: Path, args: argparse.Namespace
) -> dict[str, dict[str, float]]:
    engine = EngineProcess(
        workdir / name,
        bus_url=bus_url,
        bus=KAFKA_TEST_BROKER if name == "kafka" else {"synchronous": args.synchronous},
        extra=dict(INGEST_ONLY),
    )
    engine.start(timeout=60)
    assert engine.proc is not None
    pid, port = engine.proc.pid, engine.mllp_port
    figures: dict[str, dict[str, float]] = {}
    try:
        with ProcessPoolExecutor(max_workers=1) as pool:
            run_id = f"{name}{time.time_ns()}"
            pool.submit(_closed, port, 4, 1.0, run_id + "w").result()  # warm-up
            for senders in (1, 16):
                test = (_closed, port, senders, args.seconds, f"{run_id}c{senders}")
                profile = RESULTS / f"ingest-profile-{name}.txt"
                spy = _py_spy(pid, args.py_spy, profile) if senders == 16 and args.py_spy else None
                figures[f"closed_{senders}"] = _with_cpu(
                    pid, lambda test=test: pool.submit(*test).result()
                )
                if spy is not None:
                    spy.join()
                    if profile.exists():
                        _print_profile(profile)
            test = (_open, port, args.rate, args.seconds, f"{run_id}o")
            figures[f"open_{int(args.rate)}"] = _with_cpu(
                pid, lambda test=test: pool.submit(*test).result()
            )
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
    parser.add_argument(
        "--py-spy", type=float, default=0, help="seconds to profile the 16-sender test"
    )
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    results: dict[str, Any] = {}
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
            if args.repeat > 1:
                results[bus] = {**_medians(runs), "runs": runs}
                _print(f"{bus} median", _medians(runs))
            else:
                results[bus] = runs[0]
    (RESULTS / "ingest.json").write_text(json.dumps(results, indent=2) + "\n")


def _print(label: str, figures: dict[str, dict[str, float]]) -> None:
    for test, fig in figures.items():
        print(
            f"{label:<14} {test:<12} {fig['msg_per_s']:>10.1f} msg/s"
            f"  ACK p50 {fig['ack_p50_ms']:7.2f} ms  p99 {fig['ack_p99_ms']:7.2f} ms"
            f"  ({fig['acked']:.0f} acked, {fig['rejected']:.0f} rejected)",
            flush=True,
        )
        if "main_us_per_msg" in fig:
            print(
                f"{'':<14} {'':<12} CPU per message: engine main thread"
                f" {fig['main_us_per_msg']:.1f} us, busiest other thread"
                f" {fig['other_thread_us_per_msg']:.1f} us, load generator"
                f" {fig['generator_us_per_msg']:.1f} us; engine {fig['engine_cores']:.2f} cores,"
                f" machine busy {fig['machine_busy_cores']:.2f} of {os.cpu_count()}",
                flush=True,
            )


def _medians(runs: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Per test and figure, the median over runs."""
    return {
        test: {key: statistics.median(run[test][key] for run in runs) for key in runs[0][test]}
        for test in runs[0]
    }


if __name__ == "__main__":
    main()
