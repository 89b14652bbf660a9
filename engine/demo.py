"""``wardstream demo`` and ``wardstream simulate``: the simulated hospital, alone or
feeding a running engine, with a live one-line status."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import signal
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from engine.config import ConfigError, WardstreamConfig, load_config
from engine.logging import configure_logging
from engine.runtime import Engine

DEMO_START = datetime.fromisoformat("2026-01-05T00:00:00+00:00")


def _status_line(engine: Engine, sim_time: datetime | None, total_beds: int) -> str:
    stats = engine.stats()
    listeners = stats["listeners"].values()
    received = sum(int(s.get("messages", 0)) for s in listeners)
    p99 = max((float(s["ack_p99_ms"] or 0.0) for s in listeners), default=0.0)
    occupied = sum(len(beds) for _, beds in _wards(engine))
    clock = sim_time.strftime("%a %H:%M") if sim_time else "--"
    return (
        f"sim {clock} | messages in {received:>7} | ACK p99 {p99:6.2f} ms"
        f" | occupied beds {occupied:>4}/{total_beds}"
    )


def _wards(engine: Engine) -> list[tuple[str, dict[str, str]]]:
    from pipelines.census import census_snapshot

    return sorted(census_snapshot(engine.census_state()).items())


async def run_demo(
    *,
    config_path: Path | None,
    seed: int,
    speed: float,
    duration_s: float | None,
    senders: int,
) -> int:
    """Engine + simulator + API in one process until Ctrl-C (or ``duration_s``)."""
    from connectors.simulator import default_hospital, run_live

    try:
        config = load_config(config_path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    demo_dir = config.data_dir / "demo"
    # Each demo run starts a fresh hospital: the simulator replays the same
    # control ids from its seed, which the engine would rightly treat as resends.
    shutil.rmtree(demo_dir, ignore_errors=True)
    config = config.model_copy(
        update={
            "data_dir": demo_dir,
            "bus": config.bus.model_copy(update={"url": f"sqlite:///{demo_dir / 'bus.db'}"}),
        }
    )
    demo_dir.mkdir(parents=True, exist_ok=True)
    log_file = (demo_dir / "wardstream.log").open("a", encoding="utf-8")
    configure_logging(config.log.level, "json", redact=config.log.redact_phi, stream=log_file)
    hospital = default_hospital()
    engine = Engine(config)
    await engine.start()
    mllp = engine.listeners[0]
    print(
        f"Wardstream demo: MLLP on {config.channels[0].source.host}:{mllp.port}, "
        f"census at http://{config.http.host}:{engine.http_port}/api/census, "
        f"stats at /api/stats, log in {demo_dir / 'wardstream.log'}\n"
        f"Simulated hospital: {len(hospital.wards)} wards, {hospital.total_beds} beds, "
        f"seed {seed}, {speed:g} simulated seconds per second. Ctrl-C stops.",
        flush=True,
    )
    stop = asyncio.Event()
    sim_clock: dict[str, Any] = {"at": None}

    def on_sent(message: Any, ack: Any) -> None:
        sim_clock["at"] = message.at

    sim = asyncio.create_task(
        run_live(
            hospital,
            seed=seed,
            start=DEMO_START,
            speed=speed,
            host=config.channels[0].source.host,
            port=mllp.port,
            senders=senders,
            stop_event=stop,
            on_sent=on_sent,
            warm_up=timedelta(days=14),
        )
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tty = sys.stdout.isatty()
    started = time.monotonic()
    try:
        while not stop.is_set() and not sim.done():
            if duration_s is not None and time.monotonic() - started >= duration_s:
                break
            line = _status_line(engine, sim_clock["at"], hospital.total_beds)
            print(f"\r{line}" if tty else line, end="" if tty else "\n", flush=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0 if tty else 5.0)
    finally:
        stop.set()
        await sim
        await engine.stop()
        print(("\n" if tty else "") + _status_line(engine, sim_clock["at"], hospital.total_beds))
        for ward, beds in _wards(engine):
            print(f"  {ward:<8} {len(beds):>3} occupied")
        log_file.close()
    return 0


def simulate_command(args: argparse.Namespace) -> int:
    """``wardstream simulate``: write a history file, or send over MLLP."""
    from connectors.simulator import default_hospital, run_live, simulate, write_history

    start = datetime.fromisoformat(args.start)
    hospital = default_hospital()
    if args.out is not None:
        messages = simulate(
            hospital, seed=args.seed, start=start, duration=timedelta(days=args.days)
        )
        count = write_history(args.out, messages)
        print(f"wrote {count} messages to {args.out}")
        return 0

    sent = asyncio.run(
        run_live(
            hospital,
            seed=args.seed,
            start=start,
            speed=args.speed,
            host=args.host,
            port=args.port,
            senders=args.senders,
            duration=timedelta(days=args.days),
        )
    )
    print(f"sent {sent} messages to {args.host}:{args.port}")
    return 0


__all__ = ["WardstreamConfig", "run_demo", "simulate_command"]
