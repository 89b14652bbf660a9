"""The ``wardstream`` command."""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

SCHEMAS_DIR = Path(__file__).resolve().parent.parent / "schemas"

_T = TypeVar("_T")


def run_event_loop(main: Coroutine[Any, Any, _T]) -> _T:
    """Run on uvloop (libuv transports: far less per-message overhead) when installed."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def _cmd_up(args: argparse.Namespace) -> int:
    from engine.config import ConfigError, load_config
    from engine.logging import configure_logging
    from engine.runtime import Engine

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging(config.log.level, config.log.format, redact=config.log.redact_phi)

    async def main() -> None:
        engine = Engine(config)
        await engine.start()
        # Everything built at start-up (app, models, schemas) lives as long as the
        # process: keep it out of every later garbage collection.
        gc.freeze()
        await engine.run_until_stopped()

    run_event_loop(main())
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from engine.demo import run_demo

    return run_event_loop(
        run_demo(
            config_path=args.config,
            seed=args.seed,
            speed=args.speed,
            duration_s=args.duration,
            senders=args.senders,
        )
    )


def _cmd_simulate(args: argparse.Namespace) -> int:
    from engine.demo import simulate_command

    return simulate_command(args)


def _cmd_lint(args: argparse.Namespace) -> int:
    from engine.config import lint_file

    problems = 0
    for path in args.files:
        issues = lint_file(Path(path))
        for issue in issues:
            print(issue)
        problems += len(issues)
        if not issues:
            print(f"{path}: ok")
    return 1 if problems else 0


def _cmd_schema(args: argparse.Namespace) -> int:
    from engine.schema_export import check_schemas, export_schemas

    out = Path(args.out)
    if args.check:
        stale = check_schemas(out)
        for name in stale:
            print(f"{out / name}: stale, run `wardstream schema`")
        return 1 if stale else 0
    for path in export_schemas(out):
        print(path)
    return 0


def _cmd_conformance(args: argparse.Namespace) -> int:
    import json

    from engine.conformance import CorpusError, render_summary, run_conformance, write_markdown

    try:
        report = run_conformance(Path(args.dir))
    except CorpusError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(render_summary(report), end="")
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")
        print(args.json)
    if args.markdown:
        write_markdown(report, Path(args.markdown))
        print(args.markdown)
    broken = report.parse_failures() or report.invalid()
    return 1 if broken else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wardstream", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run the engine (connectors, pipelines, HTTP API)")
    up.add_argument("-c", "--config", type=Path, help="wardstream.yaml (default: built-in)")
    up.set_defaults(func=_cmd_up)

    demo = sub.add_parser("demo", help="run the engine fed by the simulated hospital")
    demo.add_argument("-c", "--config", type=Path, help="wardstream.yaml (default: built-in)")
    demo.add_argument("--seed", type=int, default=7, help="simulator seed")
    demo.add_argument(
        "--speed", type=float, default=3600.0, help="simulated seconds per wall second"
    )
    demo.add_argument("--senders", type=int, default=4, help="concurrent MLLP senders")
    demo.add_argument(
        "--duration", type=float, default=None, help="stop after this many wall seconds"
    )
    demo.set_defaults(func=_cmd_demo)

    sim = sub.add_parser("simulate", help="send simulated HL7v2 over MLLP, or write a history")
    sim.add_argument("--seed", type=int, default=7, help="random seed (same seed, same messages)")
    sim.add_argument("--start", default="2026-01-05T00:00:00+00:00", help="simulated start time")
    sim.add_argument("--days", type=float, default=7.0, help="simulated days")
    sim.add_argument(
        "--speed", type=float, default=3600.0, help="simulated seconds per wall second"
    )
    sim.add_argument("--host", default="127.0.0.1", help="MLLP host to send to")
    sim.add_argument("--port", type=int, default=2575, help="MLLP port to send to")
    sim.add_argument("--senders", type=int, default=1, help="concurrent MLLP connections")
    sim.add_argument("--out", type=Path, help="write an HL7 batch file instead of sending")
    sim.set_defaults(func=_cmd_simulate)

    lint = sub.add_parser("lint", help="validate config files; errors carry line numbers")
    lint.add_argument("files", nargs="+", help="YAML files")
    lint.set_defaults(func=_cmd_lint)

    schema = sub.add_parser("schema", help="write the JSON Schemas into schemas/")
    schema.add_argument("--out", default=str(SCHEMAS_DIR), help="output folder")
    schema.add_argument("--check", action="store_true", help="fail if the files are stale")
    schema.set_defaults(func=_cmd_schema)

    conformance = sub.add_parser(
        "conformance", help="compare the FHIR mapping with FHIR-Converter's sample corpus"
    )
    conformance.add_argument("dir", help="the corpus folder (input/, expected/, index.json)")
    conformance.add_argument("--json", type=Path, help="write the full report as JSON here")
    conformance.add_argument(
        "--markdown", type=Path, help="write the report as Markdown here (keeps its preamble)"
    )
    conformance.set_defaults(func=_cmd_conformance)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
