"""hl7apy as a differential oracle: how it sees each segment of a message, as plain data.

``parse_message(text, find_groups=False, validation_level=TOLERANT)`` is, in
hl7apy 1.3, ``get_message_info`` (delimiters, version) followed by
``parse_segment(s.strip(), version, encoding_chars, TOLERANT)`` for every
non-empty ``\\r``-separated line. This module makes those same calls itself so
that a segment seen before (the corpus has 2,252 segments but only 862 distinct
ones) is parsed once per session: hl7apy needs tens of milliseconds per message.
``test_segment_view_equals_parse_message`` checks the equivalence on the corpus.

Positions come from hl7apy's element names (``PID_3``, ``CX_4``, ``VARIES_2``);
an element hl7apy could not place in its structure has no name, so no position.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from hl7apy import get_default_version
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.exceptions import HL7apyException
from hl7apy.parser import get_message_info, parse_message, parse_segment

TOLERANT = VALIDATION_LEVEL.TOLERANT
_POSITION = re.compile(r"_(\d+)$")


@dataclass(frozen=True, slots=True)
class Leaf:
    """A subcomponent. ``text`` is the ER7 text hl7apy holds; when hl7apy turned
    it into a number or date (``datatype`` set), ``text`` is its re-encoding."""

    position: int | None
    text: str
    datatype: str | None = None


@dataclass(frozen=True, slots=True)
class Component:
    """A component and its subcomponents, as hl7apy kept them."""

    position: int | None
    leaves: tuple[Leaf, ...]


@dataclass(frozen=True, slots=True)
class FieldRepetition:
    """One repetition of a field (hl7apy makes each repetition a child of its own)."""

    position: int | None
    components: tuple[Component, ...]


@dataclass(frozen=True, slots=True)
class SegmentView:
    """A segment as hl7apy parsed it, or why hl7apy refused it."""

    name: str
    fields: tuple[FieldRepetition, ...]
    refused: str | None = None


@dataclass(frozen=True, slots=True)
class MessageView:
    """A message as hl7apy sees it. ``refused`` is parse_message's error when it
    refuses the message as a whole; its other segments are still compared."""

    version: str
    segments: tuple[SegmentView, ...]
    refused: str | None = None


def _position(name: str | None) -> int | None:
    match = _POSITION.search(name or "")
    return int(match.group(1)) if match else None


def _leaf(subcomponent: Any) -> Leaf:
    position = _position(subcomponent.name)
    value = subcomponent.value
    if value is None or isinstance(value, str):
        return Leaf(position, value or "")
    if isinstance(value.value, str):
        return Leaf(position, value.value)
    return Leaf(position, value.to_er7(), subcomponent.datatype)


def segment_view(segment: Any) -> SegmentView:
    """Plain data from a parsed hl7apy ``Segment``."""
    return SegmentView(
        segment.name,
        tuple(
            FieldRepetition(
                _position(field.name),
                tuple(
                    Component(_position(comp.name), tuple(_leaf(s) for s in comp.children))
                    for comp in field.children
                ),
            )
            for field in segment.children
        ),
    )


@cache
def _segment(text: str, version: str, encoding: tuple[tuple[str, str], ...]) -> SegmentView:
    try:
        segment = parse_segment(text, version, dict(encoding), TOLERANT)
    except HL7apyException as exc:
        return SegmentView(text[:3], (), f"{type(exc).__name__}: {exc}")
    return segment_view(segment)


def hl7apy_text(text: str) -> str:
    """The text hl7apy can take: ``\\r`` between segments (it splits on nothing
    else) and no blank lines (``parse_segment("")`` fails; our tokenizer skips
    them too). A leading byte-order mark is dropped, as our tokenizer does."""
    lines = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\r".join(line for line in lines if line.strip())


def message_view(text: str) -> MessageView:
    """hl7apy's view of ``text`` (already in ``hl7apy_text`` form), segment by
    segment. Raises ``HL7apyException`` when hl7apy cannot even read MSH."""
    encoding_chars, _structure, version = get_message_info(text)
    version = version or get_default_version()
    encoding = tuple(sorted(encoding_chars.items()))
    segments = tuple(_segment(s.strip(), version, encoding) for s in text.split("\r") if s)
    refused = None
    if any(s.refused for s in segments):
        try:
            parse_message(text, find_groups=False, validation_level=TOLERANT)
        except HL7apyException as exc:
            refused = f"{type(exc).__name__}: {exc}"
        else:
            raise AssertionError("parse_message took a message parse_segment refused")
    return MessageView(version, segments, refused)


def parse_message_view(text: str) -> MessageView:
    """The same view, straight from ``parse_message`` (slow; to check the above)."""
    message = parse_message(text, find_groups=False, validation_level=TOLERANT)
    return MessageView(message.version, tuple(segment_view(s) for s in message.children))
