"""Full-pipeline benchmark: raw.hl7v2 → normalize → census and fhir.out → FHIR store.

    .venv/bin/python bench/pipeline.py [--messages 20000] [--repeat 3] [--seed 7]
        [--synchronous full|normal] [--py-spy 5]

Each run starts a fresh ``engine.runtime.Engine`` in its own process (on
uvloop, ``gc.freeze()`` after start-up, as ``wardstream up`` does) with every
pipeline on, MLLP and HTTP on port 0 and the embedded log in a temporary data
dir. Once it is ready, ``--messages`` simulated HL7v2 messages (the
simulator's default hospital: ADT A01/A02/A03 and ORU^R01 vitals) are put on
``raw.hl7v2`` in one ``append_many``, as the MLLP listener builds them
(envelope, patient key, dedup id); that load is not timed. The clock starts
when the backlog is committed and each stage's time is when it has processed
(and committed) everything the stage before it produced: the steps'
``processed``, the FHIR store sink's ``written``. msg/s is raw messages over
that time, so the last stage's figure is the end-to-end rate. Each
configuration (with the FHIR result store, without it) is run ``--repeat``
times; the median of every figure is printed and written, with the runs, to
bench/results/pipeline.json.

CPU figures (Linux): the engine process's main thread and other threads per
raw message, the cores the process used, and how busy the whole machine was
(other work included) over the timed window, as in bench/ingest.py.
``--py-spy S`` samples the first run of each configuration for up to S
seconds from the start of the clock and prints the busiest functions per
thread; raw samples go to bench/results/pipeline-profile-<config>.txt.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest import _machine_ticks, _print_profile, _thread_ticks
from connectors.simulator import default_hospital, simulate
from engine.bus.embedded import AppendRequest, EmbeddedLog
from engine.cli import run_event_loop
from engine.config import WardstreamConfig
from engine.fhir.sink import STEP_ID as STORE_STEP
from engine.logging import configure_logging
from engine.runtime import Engine
from pipelines.census.step import STEP_ID as CENSUS_STEP
from pipelines.fhir_out import STEP_ID as FHIR_OUT_STEP
from pipelines.hl7v2 import intake_dedup_id, intake_key
from pipelines.hl7v2._intake import intake_envelope_bytes
from pipelines.hl7v2.normalize import STEP_ID as NORMALIZE_STEP
from pipelines.hl7v2.tokenizer import parse
from schemas.topics import EVENTS_ADT, EVENTS_OBS, FHIR_OUT, RAW_HL7V2

RESULTS = Path(__file__).parent / "results"
CHANNEL = "adt-in"
CONFIGS = {"with_store": True, "without_store": False}
SIM_START = datetime(2025, 3, 3, tzinfo=UTC)


def raw_backlog(count: int, seed: int) -> tuple[list[AppendRequest], dict[str, int]]:
    """``count`` simulated messages as ``raw.hl7v2`` appends, and their mix by type."""
    messages = simulate(
        default_hospital(),
        seed=seed,
        start=SIM_START,
        duration=timedelta(days=365),
        warm_up=timedelta(days=2),
    )
    rng = random.Random(seed)
    received_at = datetime.now(UTC)
    requests, mix = [], Counter[str]()
    for sim, _ in zip(messages, range(count), strict=False):
        message = parse(sim.text)
        mix[sim.message_type] += 1
        value = intake_envelope_bytes(
            message,
            channel=CHANNEL,
            received_at=received_at,
            headers={"peer": "127.0.0.1:40000"},
            envelope_id=f"{rng.getrandbits(128):032x}",
        )
        key, dedup_id = intake_key(message), intake_dedup_id(message, CHANNEL)
        requests.append(AppendRequest(RAW_HL7V2, value, key=key, dedup_id=dedup_id))
    if len(requests) < count:
        raise RuntimeError(f"the simulator gave {len(requests)} messages, not {count}")
    return requests, dict(sorted(mix.items()))


def engine_config(data_dir: Path, *, store: bool, synchronous: str) -> WardstreamConfig:
    """The engine's defaults, on free ports, in ``data_dir``, quiet logs."""
    return WardstreamConfig.model_validate(
        {
            "data_dir": str(data_dir),
            "bus": {"url": f"sqlite:///{data_dir / 'bus.db'}", "synchronous": synchronous},
            "http": {"host": "127.0.0.1", "port": 0},
            "log": {"level": "warning"},
            "channels": [{"name": CHANNEL, "source": {"type": "mllp", "port": 0}}],
            "fhir": {"store": store},
        }
    )


async def _total(bus: EmbeddedLog, *topics: str) -> int:
    return sum([sum((await bus.end_offsets(topic)).values()) for topic in topics])


async def _measure(
    config: WardstreamConfig, backlog: list[AppendRequest], on_loaded: Callable[[], None]
) -> dict[str, Any]:
    engine = Engine(config)
    await engine.start()
    gc.freeze()
    bus = engine.bus
    assert isinstance(bus, EmbeddedLog)
    steps = {step.step_id: step for step in engine.steps}
    sinks = {sink.group: sink for sink in engine.sinks}
    # (stage, its counter, what it waits for: the stage before it, topics it reads)
    stages: list[tuple[str, Callable[[], int], str | None, tuple[str, ...]]] = [
        (NORMALIZE_STEP, lambda: steps[NORMALIZE_STEP].processed, None, (RAW_HL7V2,)),
        (CENSUS_STEP, lambda: steps[CENSUS_STEP].processed, NORMALIZE_STEP, (EVENTS_ADT,)),
        (
            FHIR_OUT_STEP,
            lambda: steps[FHIR_OUT_STEP].processed,
            NORMALIZE_STEP,
            (EVENTS_ADT, EVENTS_OBS),
        ),
    ]
    if STORE_STEP in sinks:
        stages.append((STORE_STEP, lambda: sinks[STORE_STEP].written, FHIR_OUT_STEP, (FHIR_OUT,)))
    try:
        await bus.append_many(backlog)
        on_loaded()
        began, threads, machine = time.perf_counter(), _thread_ticks(os.getpid()), _machine_ticks()
        done: dict[str, float] = {}
        records: dict[str, int] = {}
        while len(done) < len(stages):
            for name, counter, after, topics in stages:
                if name in done or (after is not None and after not in done):
                    continue
                records[name] = records.get(name) or await _total(bus, *topics)
                if counter() >= records[name]:
                    done[name] = time.perf_counter() - began
            if time.perf_counter() - began > 600:
                raise TimeoutError(f"stages not caught up after 600 s: {sorted(done)}")
            await asyncio.sleep(0.005)
        wall = max(done.values())
        after_threads, machine_after = _thread_ticks(os.getpid()), _machine_ticks()
        dead = {step.step_id: step.dead_letters for step in engine.steps if step.dead_letters}
        store_sink = sinks[STORE_STEP].sink if STORE_STEP in sinks else None
        resources = int(getattr(store_sink, "written", 0))
    finally:
        await engine.stop()
    count = len(backlog)
    figures: dict[str, Any] = {
        "stages": {
            name: {
                "records": records[name],
                "caught_up_s": round(done[name], 3),
                "msg_per_s": round(count / done[name], 1),
            }
            for name, *_ in stages
        },
        "end_to_end_msg_per_s": round(count / wall, 1),
        "dead_letters": dead,
    }
    if resources:
        # Each Bundle holds several resources, each one upsert in the store.
        figures["fhir_resources_written"] = resources
        figures["fhir_resources_per_s"] = round(resources / done[STORE_STEP], 1)
    figures.update(_cpu(threads, after_threads, machine, machine_after, wall, count))
    return figures


def _cpu(
    threads: dict[int, int],
    after: dict[int, int],
    machine: tuple[int, int],
    machine_after: tuple[int, int],
    wall: float,
    count: int,
) -> dict[str, float]:
    """Per-message CPU of this process's threads and the machine's load over ``wall``."""
    if not threads or not after:
        return {}
    hz = os.sysconf("SC_CLK_TCK")
    used = {tid: (ticks - threads.get(tid, 0)) / hz for tid, ticks in after.items()}
    main = used.pop(os.getpid(), 0.0)
    busy, total = machine_after[0] - machine[0], machine_after[1] - machine[1]
    return {
        "main_us_per_msg": round(main / count * 1e6, 1),
        "other_threads_us_per_msg": round(sum(used.values()) / count * 1e6, 1),
        "busiest_other_thread_us_per_msg": round(max(used.values(), default=0) / count * 1e6, 1),
        "engine_cores": round((main + sum(used.values())) / wall, 2),
        "machine_busy_cores": round(busy / total * (os.cpu_count() or 1), 2) if total else 0.0,
    }


def one_run(
    name: str, count: int, seed: int, synchronous: str, py_spy_s: float
) -> tuple[dict[str, Any], dict[str, int]]:
    """One measurement in a fresh process: a new engine in a new temporary dir."""
    configure_logging("warning", "json", redact=True, stream=sys.stderr)
    backlog, mix = raw_backlog(count, seed)
    with tempfile.TemporaryDirectory(prefix="wardstream-pipeline-") as tmp:
        config = engine_config(Path(tmp), store=CONFIGS[name], synchronous=synchronous)
        spy = _PySpy(RESULTS / f"pipeline-profile-{name}.txt", py_spy_s)
        try:
            # Sampling starts once the backlog is committed, with the clock.
            figures = run_event_loop(_measure(config, backlog, spy.start))
        finally:
            spy.finish()
    return figures, mix


class _PySpy:
    """py-spy sampling this process (raw format, per thread) until :meth:`finish`."""

    def __init__(self, out: Path, seconds: float) -> None:
        self.out, self.seconds = out, seconds
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if not self.seconds:
            return
        exe = Path(sys.executable).with_name("py-spy")
        command = [str(exe), "record", "--pid", str(os.getpid()), "--rate", "400"]
        command += ["--duration", str(int(self.seconds)), "--format", "raw", "--threads"]
        command += ["--nonblocking", "--output", str(self.out)]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)  # attached before the stages get going

    def finish(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            # SIGINT makes py-spy stop and write what it sampled so far.
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout=30)


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of every number in ``runs`` (same shape as one run)."""
    first = runs[0]
    out: dict[str, Any] = {}
    for key, value in first.items():
        if isinstance(value, dict) and key != "dead_letters":
            out[key] = medians([run[key] for run in runs])
        elif isinstance(value, int | float):
            out[key] = statistics.median(run[key] for run in runs)
        else:
            out[key] = value
    return out


def print_figures(label: str, fig: dict[str, Any]) -> None:
    for stage, s in fig["stages"].items():
        print(
            f"{label:<24} {stage:<16} {s['records']:>8.0f} records"
            f"  caught up {s['caught_up_s']:7.3f} s  {s['msg_per_s']:>9.1f} msg/s",
            flush=True,
        )
    print(f"{label:<24} {'end to end':<16} {fig['end_to_end_msg_per_s']:>9.1f} msg/s", flush=True)
    if "fhir_resources_written" in fig:
        print(
            f"{'':<24} FHIR store: {fig['fhir_resources_written']:.0f} resources written,"
            f" {fig['fhir_resources_per_s']:.1f} resources/s",
            flush=True,
        )
    if "main_us_per_msg" in fig:
        print(
            f"{'':<24} CPU per message: main thread {fig['main_us_per_msg']:.1f} us, other"
            f" threads {fig['other_threads_us_per_msg']:.1f} us (busiest"
            f" {fig['busiest_other_thread_us_per_msg']:.1f} us); engine"
            f" {fig['engine_cores']:.2f} cores, machine busy {fig['machine_busy_cores']:.2f}"
            f" of {os.cpu_count()}",
            flush=True,
        )
    if fig.get("dead_letters"):
        print(f"{'':<24} dead letters: {fig['dead_letters']}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--synchronous", default="full", choices=["full", "normal"])
    parser.add_argument("--config", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--py-spy", type=float, default=0, help="seconds to profile run 1")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    results: dict[str, Any] = {"messages": args.messages, "seed": args.seed}
    results["synchronous"] = args.synchronous
    for name in args.config:
        runs = []
        for n in range(args.repeat):
            # A fresh interpreter per run, as a fresh `wardstream up` would be.
            with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
                spy = args.py_spy if n == 0 else 0
                job = pool.submit(one_run, name, args.messages, args.seed, args.synchronous, spy)
                figures, results["mix"] = job.result()
            runs.append(figures)
            print_figures(f"{name} run {n + 1}", figures)
            profile = RESULTS / f"pipeline-profile-{name}.txt"
            if spy and profile.exists():
                _print_profile(profile)
        results[name] = {**medians(runs), "runs": runs}
        if args.repeat > 1:
            print_figures(f"{name} median", results[name])
    print(f"message mix: {results['mix']}")
    (RESULTS / "pipeline.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
