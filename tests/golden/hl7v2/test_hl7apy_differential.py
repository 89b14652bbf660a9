"""Differential test: our tokenizer against hl7apy on every message of the corpus.

Every segment, field repetition, component and subcomponent hl7apy holds is
paired with ours and compared: the text as received, then the value our
tokenizer decodes against the same text decoded by python-hl7's ``unescape``
(hl7apy decodes no escape sequences). Where the two legitimately differ, these
rules apply, each marked where it is applied:

* hl7apy leaves out whitespace-only fields (trailing empty fields among them),
  and whitespace-only components and subcomponents where its datatype names
  them; ours keeps every position. A blank element of ours may so have no
  counterpart; a non-blank one must, at the position hl7apy names.
* hl7apy strips whitespace around each segment, so the trailing whitespace of
  a segment's last field is not compared.
* hl7apy turns NM, SI, DT, TM and DTM values into numbers and dates and writes
  them back canonically; those are compared after our text goes through the
  same hl7apy conversion.
* MSH-1 and MSH-2 hold the delimiters and are compared as received, never
  split or decoded.
* Escape decoding is compared where python-hl7 decodes as HL7 defines and as
  we do: \\F\\ \\S\\ \\T\\ \\R\\ \\E\\ and \\Xhh\\ of ASCII bytes. It turns
  \\.br\\ into "\\r" and \\H\\ into "_", and drops sequences it does not
  know; leaves holding those are compared as received only.
* A segment hl7apy refuses (PRT before v2.7, for one) makes ``parse_message``
  refuse the whole message: the message is recorded as refused, and its
  other segments are still compared one by one.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Protocol, TypeVar

import hl7
import pytest
from hl7apy.exceptions import HL7apyException
from hl7apy.factories import datatype_factory

from pipelines.hl7v2 import Message, Segment, parse, parse_bytes
from tests.golden.hl7v2._corpus import INPUT_COUNT, INPUT_NAMES, messages_in, read_input
from tests.golden.hl7v2._hl7apy_view import (
    TOLERANT,
    Component,
    FieldRepetition,
    Leaf,
    MessageView,
    SegmentView,
    hl7apy_text,
    message_view,
    parse_message_view,
)

_DECODABLE = re.compile(r"[FSTRE]|X(?:[0-7][0-9A-Fa-f])+")

Ours = TypeVar("Ours")
Theirs = TypeVar("Theirs")


class Unescaper(Protocol):
    def unescape(self, field: str) -> str: ...


@dataclass
class Comparison:
    """What one message's comparison found: counts of what was compared, the
    disagreements, and why hl7apy refused it (if it did)."""

    counts: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    refused: str | None = None


class Misaligned(Exception):
    """hl7apy's elements cannot be paired with ours."""


def _blank(element: FieldRepetition | Component | Leaf) -> bool:
    if isinstance(element, Leaf):
        return not element.text.strip()
    if isinstance(element, Component):
        return all(_blank(leaf) for leaf in element.leaves)
    return all(_blank(comp) for comp in element.components)


def align(
    ours: Sequence[tuple[int, bool, Ours]],
    theirs: Sequence[tuple[int | None, bool, Theirs]],
    where: str,
) -> list[tuple[Ours, Theirs]]:
    """Pair hl7apy's elements with ours, in order.

    ``ours`` is (position, may hl7apy leave it out, item); ``theirs`` is
    (position when hl7apy named it, blank, item). A named element must pair with
    ours at its position; an unnamed one with our next element, past blank
    ones of ours when it is not blank itself. Ours left unpaired must be ones
    hl7apy may leave out.
    """
    pairs: list[tuple[Ours, Theirs]] = []
    i = 0
    for position, blank, item in theirs:
        while i < len(ours):
            our_position, optional, _ = ours[i]
            fits = our_position == position if position is not None else blank or not optional
            if fits:
                break
            if not optional:
                raise Misaligned(f"{where}: hl7apy has nothing for our element {our_position}")
            i += 1
        else:
            raise Misaligned(f"{where}: hl7apy has an element ({position}) we do not")
        pairs.append((ours[i][2], item))
        i += 1
    for our_position, optional, _ in ours[i:]:
        if not optional:
            raise Misaligned(f"{where}: hl7apy has nothing for our element {our_position}")
    return pairs


def decodable(text: str, escape: str) -> bool:
    """Whether python-hl7 decodes every escape sequence of ``text`` as HL7 says."""
    parts = text.split(escape)
    return len(parts) % 2 == 1 and all(_DECODABLE.fullmatch(p) for p in parts[1::2])


class _SegmentComparer:
    """Compares one of our segments with hl7apy's view of it."""

    def __init__(self, message: Message, result: Comparison, version: str, oracle: Unescaper):
        self.message = message
        self.result = result
        self.version = version
        self.oracle = oracle

    def compare(self, segment: Segment, occurrence: int, view: SegmentView) -> None:
        where = f"{segment.name}({occurrence})"
        if segment.name != view.name:
            self.result.problems.append(f"{where}: hl7apy reads segment {view.name!r}")
            return
        last = len(segment)
        # hl7apy strips whitespace around each segment (see the module docstring).
        trim = segment.raw != segment.raw.rstrip()
        end = (last, len(segment.field(last).repetitions))
        ours: list[tuple[int, bool, tuple[int, int, str]]] = []
        for n in range(1, last + 1):
            reps = [rep.raw for rep in segment.field(n).repetitions]
            if trim and n == last:
                reps[-1] = reps[-1].rstrip()
            # hl7apy leaves out whitespace-only fields, but always has MSH-1.
            optional = not segment.raw_field(n).strip() and not (segment.name == "MSH" and n == 1)
            ours.extend((n, optional, (n, r, raw)) for r, raw in enumerate(reps, 1))
        try:
            theirs = [(f.position, _blank(f), f) for f in view.fields]
            for (n, r, raw), rep in align(ours, theirs, where):
                self.result.counts["field repetitions"] += 1
                at = (occurrence, n, r)
                self._repetition(segment, f"{where}-{n}({r})", at, raw, rep, trim and (n, r) == end)
        except Misaligned as exc:
            self.result.problems.append(str(exc))
        self.result.counts["segments"] += 1

    def _repetition(
        self,
        segment: Segment,
        where: str,
        at: tuple[int, int, int],
        raw: str,
        view: FieldRepetition,
        trimmed: bool,
    ) -> None:
        """``trimmed``: this repetition ends a segment hl7apy stripped."""
        d = self.message.delimiters
        # MSH-1 and MSH-2 are the delimiters themselves: one value, never split.
        atomic = segment.name == "MSH" and at[1] <= 2
        comps = [raw] if atomic else raw.split(d.component)
        ours = [(c, not text.strip(), (c, text)) for c, text in enumerate(comps, 1)]
        theirs = [(comp.position, _blank(comp), comp) for comp in view.components]
        for (c, text), comp in align(ours, theirs, where):
            self.result.counts["components"] += 1
            subs = [text] if atomic else text.split(d.subcomponent)
            ours_subs = [(s, not sub.strip(), (s, sub)) for s, sub in enumerate(subs, 1)]
            theirs_subs = [(leaf.position, _blank(leaf), leaf) for leaf in comp.leaves]
            for (s, sub), leaf in align(ours_subs, theirs_subs, f"{where}.{c}"):
                ends = trimmed and (c, s) == (len(comps), len(subs))
                self._leaf(segment, f"{where}.{c}.{s}", (*at, c, s), sub, leaf, atomic, ends)

    def _leaf(
        self,
        segment: Segment,
        where: str,
        at: tuple[int, int, int, int, int],
        raw: str,
        leaf: Leaf,
        atomic: bool,
        trimmed: bool,
    ) -> None:
        counts, problems = self.result.counts, self.result.problems
        counts["subcomponents"] += 1
        if leaf.datatype is not None:
            # hl7apy holds a number or date (see the module docstring).
            ours = datatype_factory(leaf.datatype, raw, self.version, TOLERANT).to_er7()
        else:
            ours = raw
        if ours != leaf.text:
            problems.append(f"{where}: ours {raw!r}, hl7apy {leaf.text!r}")
        if atomic:
            return
        occurrence, n, r, c, s = at
        value = segment.value(n, c, s, repetition=r)
        path = f"{segment.name}({occurrence})-{n}({r}).{c}.{s}"
        if self.message.get(path) != value:
            problems.append(f"{path}: get() reads {self.message.get(path)!r}, value() {value!r}")
        escape = self.message.delimiters.escape
        if leaf.datatype is not None or not decodable(leaf.text, escape):
            counts["subcomponents compared as received only"] += 1
            return
        expected = self.oracle.unescape(leaf.text)
        if trimmed:
            value = value.rstrip()  # see the module docstring
        if value != expected:
            problems.append(f"{where}: ours decodes {value!r}, python-hl7 {expected!r}")
        counts["subcomponents decoded"] += 1
        if escape in leaf.text:
            counts["subcomponents with escapes decoded"] += 1


def compare(ours: Message, view: MessageView, oracle: Unescaper) -> Comparison:
    """Compare our parse of a message with hl7apy's view of the same text."""
    result = Comparison(refused=view.refused)
    segments = list(ours)
    if [s.name for s in segments] != [v.name for v in view.segments]:
        result.problems.append("segment lists differ")
        return result
    comparer = _SegmentComparer(ours, result, view.version, oracle)
    seen: Counter[str] = Counter()
    for segment, segment_view in zip(segments, view.segments, strict=True):
        seen[segment.name] += 1
        if segment_view.refused is not None:
            result.counts["segments hl7apy refused"] += 1
            continue
        comparer.compare(segment, seen[segment.name], segment_view)
    return result


@cache
def compared(name: str) -> tuple[Comparison, ...]:
    """Each message of one corpus input, compared (once per session)."""
    results = []
    for message in messages_in(read_input(name)):
        if isinstance(message, bytes):
            ours, text = parse_bytes(message), message.decode("utf-8-sig")
        else:
            ours, text = parse(message), message
        text = hl7apy_text(text)
        try:
            view = message_view(text)
        except HL7apyException as exc:
            results.append(Comparison(refused=f"oracle unavailable: {exc}"))
            continue
        results.append(compare(ours, view, hl7.parse(text)))
    return tuple(results)


@pytest.mark.parametrize("name", INPUT_NAMES)
def test_tokenizer_agrees_with_hl7apy(name: str) -> None:
    for result in compared(name):
        assert result.problems == []
        if result.refused is None:
            assert result.counts["segments"] > 0
            assert result.counts["segments hl7apy refused"] == 0


def test_the_oracle_covers_the_corpus() -> None:
    """hl7apy must not quietly drop out: floors on what was compared."""
    total: Counter[str] = Counter()
    refused = []
    for name in INPUT_NAMES:
        for result in compared(name):
            total.update(result.counts)
            total["messages"] += 1
            if result.refused:
                refused.append(name)
    assert total["messages"] == INPUT_COUNT
    assert len(refused) <= 3, refused
    assert total["segments"] >= 2200
    assert total["field repetitions"] >= 23000
    assert total["subcomponents"] >= 60000
    assert total["subcomponents with escapes decoded"] >= 75


def test_segment_view_equals_parse_message() -> None:
    """The per-segment oracle is what parse_message gives (one input per version)."""
    by_version: dict[str, str] = {}
    for name in INPUT_NAMES:
        text = hl7apy_text(read_input(name).decode("utf-8-sig"))
        version = text.split("\r", 1)[0].split("|")[11]
        by_version.setdefault(version, text)
    assert len(by_version) >= 7
    for text in by_version.values():
        assert message_view(text) == parse_message_view(text)


@pytest.mark.parametrize(
    ("text", "problems"),
    [
        ("PID|1||123^^^A||DOE^JANE", []),
        ("PID|1||123^^^A||DOE^JANE ", []),
        (
            "PID|1||124^^^A||DOE^JANE",
            [
                "PID(1)-3(1).1.1: ours '124', hl7apy '123'",
                "PID(1)-3(1).1.1: ours decodes '124', python-hl7 '123'",
            ],
        ),
        ("PID|1||123^^^A||DOE^JANE~X", ["PID(1): hl7apy has nothing for our element 5"]),
        ("PID|1||123^^^A^^B||DOE^JANE", ["PID(1)-3(1): hl7apy has nothing for our element 6"]),
        ("PID|1||123^^^A", ["PID(1): hl7apy has an element (5) we do not"]),
    ],
)
def test_the_comparison_can_fail(text: str, problems: list[str]) -> None:
    """The comparison itself: a changed value, a lost repetition, component or
    field are caught; a segment's trailing whitespace is not a difference."""
    msh = "MSH|^~\\&|A|B|C|D|20240101||ADT^A01^ADT_A01|1|P|2.5"
    theirs = message_view(f"{msh}\rPID|1||123^^^A||DOE^JANE")
    result = compare(parse(f"{msh}\r{text}"), theirs, hl7.parse(f"{msh}\r{text}"))
    assert result.problems == problems
