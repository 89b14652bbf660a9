"""Every message of the shared corpus parses, reads, and survives being cut short."""

from __future__ import annotations

import pytest

from pipelines.hl7v2 import Hl7ParseError, Message, parse, parse_bytes
from tests.golden.hl7v2._corpus import (
    INPUT,
    INPUT_COUNT,
    INPUT_NAMES,
    index_entries,
    messages_in,
    read_input,
    require_corpus,
)


def _parsed(name: str) -> list[Message]:
    return [
        parse_bytes(m) if isinstance(m, bytes) else parse(m) for m in messages_in(read_input(name))
    ]


def _read_everything(message: Message) -> int:
    """Read every leaf through the public API; returns how many were read."""
    header = message.header
    assert all(isinstance(value, str) for value in header)
    assert isinstance(message.codec, str)
    read = 0
    for segment in message:
        for n in range(1, len(segment) + 1):
            for r, rep in enumerate(segment.field(n).repetitions, 1):
                width = rep.raw.count(message.delimiters.component) + 1
                for c in range(1, width + 1):
                    assert isinstance(segment.value(n, c, repetition=r), str)
                    read += 1
    return read


def test_the_corpus_is_all_there() -> None:
    require_corpus()
    assert len(list(INPUT.glob("*.hl7"))) == INPUT_COUNT


@pytest.mark.parametrize("name", INPUT_NAMES)
def test_every_input_parses_and_reads(name: str) -> None:
    messages = _parsed(name)
    assert len(messages) == 1  # the README: one MSH per input, no batches
    message = messages[0]
    entry = index_entries()[name]
    assert message.get("MSH-1") == "|"
    assert message.get("MSH-2") == "^~\\&"
    assert message.msh.raw_field(9) == entry["msh_9"]
    assert message.header.version == entry["msh_12"]
    assert message.header.message_code
    assert message.header.trigger_event
    assert message.header.control_id
    assert message.get("MSH-10") == message.header.control_id
    text = read_input(name).decode("utf-8-sig")
    lines = [line for line in text.split("\n") if line]
    assert [s.raw for s in message] == lines
    assert _read_everything(message) > len(lines)


@pytest.mark.parametrize("name", INPUT_NAMES)
@pytest.mark.parametrize("separator", ["\r", "\r\n", "mixed"])
def test_every_input_reads_the_same_whatever_the_segment_separator(
    name: str, separator: str
) -> None:
    data = read_input(name)
    lines = data.decode("utf-8-sig").split("\n")
    if separator == "mixed":
        text = "".join(line + ("\r", "\n", "\r\n")[i % 3] for i, line in enumerate(lines))
    else:
        text = separator.join(lines)
    ours, reference = parse(text), parse_bytes(data)
    assert [s.raw for s in ours] == [s.raw for s in reference]
    assert ours.header == reference.header


@pytest.mark.parametrize("name", INPUT_NAMES)
def test_cut_short_inputs_raise_nothing_but_parse_errors(name: str) -> None:
    """A message cut anywhere (as a broken connection would) parses or raises
    Hl7ParseError, and what parses reads without error."""
    data = read_input(name)
    first_line = data.find(b"\n") if b"\n" in data else len(data)
    cuts = {*range(16), first_line // 2, first_line, len(data) // 2, len(data) - 1}
    codes = []
    for cut in sorted(cuts):
        try:
            message = parse_bytes(data[:cut])
        except Hl7ParseError as exc:
            codes.append(exc.code)
            continue
        _read_everything(message)
    assert codes  # an MSH cut short cannot parse
    assert all(code >= 100 for code in codes)
