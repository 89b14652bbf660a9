"""Conformance with FHIR-Converter's corpus, timed: the same code as
``wardstream conformance`` (intake → normalize → FHIR out, every resource
validated, then the field-level comparison), run ``--runs`` times.

    .venv/bin/python bench/conformance.py [--corpus ../shared/corpus/fhir-converter] [--runs 3]

Prints the report's summary (the figures do not change between runs: the
report is deterministic) and the median wall time and messages per second.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.conformance import CorpusError, render_summary, run_conformance

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT / ".." / "shared" / "corpus" / "fhir-converter"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="corpus folder")
    parser.add_argument("--runs", type=int, default=3, help="timed runs (median reported)")
    args = parser.parse_args()
    timings = []
    report = None
    for _ in range(max(1, args.runs)):
        started = time.perf_counter()
        try:
            report = run_conformance(args.corpus)
        except CorpusError as exc:
            print(exc, file=sys.stderr)
            return 2
        timings.append(time.perf_counter() - started)
    if report is None:
        return 2
    print(render_summary(report))
    median = statistics.median(timings)
    messages = len(report.messages)
    print(
        f"{messages} messages in {median * 1000:.0f} ms (median of {len(timings)}),"
        f" {messages / median:,.0f} msg/s end to end with validation and comparison"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
