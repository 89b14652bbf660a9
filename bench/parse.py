"""HL7v2 parse benchmark: Wardstream's tokenizer against hl7apy, python-hl7 and a
bare ``str.split``, on one core, one 4-segment ADT^A01 (MSH, EVN, PID, PV1).

    .venv/bin/python bench/parse.py [--seconds 2] [--runs 3]

Every contender parses the message and reads MSH-9, MSH-10, PID-3 and PV1-3, so
the figures compare the same work. Two bare ``str.split`` baselines: "eager"
splits the whole tree up front (a plain str.split tokenizer), "minimal" splits
only segments and fields (the floor). Prints the median msg/s of ``--runs`` runs
(each contender runs once per round, so a noisy moment hits all of them), the
spread, and the ratios.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.hl7v2 import parse

ADT_A01 = (
    "MSH|^~\\&|EPIC|UCLH|WARDSTREAM|UCLH|20260105101500+0000||ADT^A01^ADT_A01|MSG00001|P|2.5\r"
    "EVN|A01|20260105101500+0000\r"
    "PID|1||123456^^^UCLH^MR~9990001112^^^NHS^NH||DOE^JANE^Q||19580214|F|||"
    "12 HIGH STREET^^LEEDS^^LS1 4AP^GBR||(0113)4960123\r"
    "PV1|1|I|AMU^R1^B1^UCLH||||1234^SMITH^JOHN|||MED|||||||||V123456|||||||||||||||||||||||||"
    "20260105101500+0000\r"
)
EXPECTED = ("ADT", "A01", "MSG00001", "123456", "AMU")

Reader = Callable[[str], tuple[str, ...]]


def wardstream(text: str) -> tuple[str, ...]:
    msg = parse(text)
    return (
        msg.get("MSH-9"),
        msg.get("MSH-9.2"),
        msg.get("MSH-10"),
        msg.get("PID-3"),
        msg.get("PV1-3"),
    )


def eager_split(text: str) -> tuple[str, ...]:
    """A plain str.split tokenizer: the whole tree (segments, fields, repetitions,
    components, subcomponents) split up front, then read."""
    tree = {}
    for seg in text.split("\r"):
        if seg:
            tree.setdefault(seg[:3], []).append(
                [
                    [[comp.split("&") for comp in rep.split("^")] for rep in field.split("~")]
                    for field in seg.split("|")
                ]
            )
    msh, pid, pv1 = tree["MSH"][0], tree["PID"][0], tree["PV1"][0]
    return (
        msh[8][0][0][0],
        msh[8][0][1][0],
        msh[9][0][0][0],
        pid[3][0][0][0],
        pv1[3][0][0][0],
    )


def minimal_split(text: str) -> tuple[str, ...]:
    """The floor: split segments and fields only, then just the values read."""
    fields = {seg[:3]: seg.split("|") for seg in text.split("\r") if seg}
    msh, pid, pv1 = fields["MSH"], fields["PID"], fields["PV1"]
    code, event = msh[8].split("^")[:2]
    return (
        code,
        event,
        msh[9],
        pid[3].split("~")[0].split("^")[0],
        pv1[3].split("^")[0],
    )


def hl7apy_reader() -> Reader | str:
    try:
        from hl7apy.parser import parse_message
    except ImportError:
        return "hl7apy not installed"

    def read(text: str) -> tuple[str, ...]:
        msg = parse_message(text)
        return (
            msg.msh.msh_9.msh_9_1.to_er7(),
            msg.msh.msh_9.msh_9_2.to_er7(),
            msg.msh.msh_10.to_er7(),
            msg.pid.pid_3[0].cx_1.to_er7(),
            msg.pv1.pv1_3.pl_1.to_er7(),
        )

    return read


def python_hl7_reader() -> Reader | str:
    try:
        import hl7  # type: ignore[import-not-found]
    except ImportError:
        return "python-hl7 not installed (pip install hl7 to include it)"

    def read(text: str) -> tuple[str, ...]:
        msg = hl7.parse(text)
        return (
            str(msg["MSH.F9.R1.C1"]),
            str(msg["MSH.F9.R1.C2"]),
            str(msg["MSH.F10"]),
            str(msg["PID.F3.R1.C1"]),
            str(msg["PV1.F3.R1.C1"]),
        )

    return read


def rate(reader: Reader, seconds: float) -> float:
    """Messages per second, over at least ``seconds`` of repeated runs."""
    assert reader(ADT_A01) == EXPECTED, reader(ADT_A01)
    count, batch = 0, 1
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(batch):
            reader(ADT_A01)
        count += batch
        batch = min(batch * 2, 4096)
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per contender and run")
    parser.add_argument("--runs", type=int, default=3, help="runs per contender (median reported)")
    args = parser.parse_args()
    contenders: list[tuple[str, Reader | str]] = [
        ("wardstream tokenizer", wardstream),
        ("hl7apy parse_message", hl7apy_reader()),
        ("python-hl7", python_hl7_reader()),
        ("eager str.split", eager_split),
        ("minimal str.split", minimal_split),
    ]
    runs: dict[str, list[float]] = {}
    for _ in range(args.runs):
        for name, reader in contenders:
            if not isinstance(reader, str):
                runs.setdefault(name, []).append(rate(reader, args.seconds))
    results = {name: statistics.median(rates) for name, rates in runs.items()}
    print(f"4-segment ADT^A01, read MSH-9, MSH-10, PID-3, PV1-3; median of {args.runs} runs")
    print(f"{'parser':<24}{'msg/s':>12}{'min':>12}{'max':>12}")
    for name, reader in contenders:
        if isinstance(reader, str):
            print(f"{name:<24}{'skipped':>12}  {reader}")
            continue
        low, high = min(runs[name]), max(runs[name])
        print(f"{name:<24}{results[name]:>12,.0f}{low:>12,.0f}{high:>12,.0f}")
    ours = results["wardstream tokenizer"]
    for other in ("hl7apy parse_message", "python-hl7", "eager str.split", "minimal str.split"):
        if other in results:
            print(f"wardstream / {other}: {ours / results[other]:.2f}x")


if __name__ == "__main__":
    main()
