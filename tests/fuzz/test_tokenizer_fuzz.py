"""Fuzzing the HL7v2 tokenizer, intake validation and ACK builder: whatever the
input, the only error is ``Hl7ParseError``, and every verdict yields an ACK."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipelines.hl7v2 import (
    Hl7ParseError,
    Message,
    build_ack,
    parse,
    parse_ack,
    parse_bytes,
    split_batch,
    validate_for_intake,
)
from pipelines.hl7v2._encoding import DEFAULT_DELIMITERS, escape, unescape

AT = datetime(2024, 1, 1, tzinfo=UTC)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text that looks enough like HL7 to get past the MSH check most of the time.
_PIECES = st.sampled_from(
    ["MSH", "|", "^", "~", "\\", "&", "#", "*", "\r", "\n", "\r\n", "PID", "PV1", "OBX", "ZPD",
     "ADT", "A01", "2.5", "P", "UNICODE UTF-8", "8859/1", "\\X41\\", "\\XC3A9\\", "\\F\\",
     "\\.br\\", "\\E", "\x00", "é", "1", "", "MSH|^~\\&|", "\ufeff"]
)  # fmt: skip
HL7ISH = st.lists(st.one_of(_PIECES, st.text(max_size=5)), max_size=40).map("".join)
PATHS = [
    "MSH-1", "MSH-2", "MSH-3", "MSH-9", "MSH-9.2", "MSH-10", "MSH-18", "PID-3", "PID-3(2).1",
    "PID-5.2.1", "PV1-3.1", "OBX(2)-5", "ZPD-1(3).2.2", "NTE-3",
]  # fmt: skip


def exercise(message: Message) -> None:
    """Touch every accessor so lazy work happens now."""
    header = message.header
    assert isinstance(header.message_type, str)
    assert isinstance(message.codec, str)
    for path in PATHS:
        assert isinstance(message.get(path), str)
    for segment in message:
        for n in range(1, len(segment) + 2):
            field = segment.field(n)
            for rep in field.repetitions:
                for comp in range(1, 4):
                    for sub in range(1, 3):
                        assert isinstance(rep.value(comp, sub), str)
            assert isinstance(segment.value(n, 2, repetition=2), str)


def answer(data: bytes | str) -> None:
    result = validate_for_intake(data)
    ack_text = build_ack(
        result.message,
        ack_code=result.ack_code,
        control_id="FUZZ",
        at=AT,
        error=result.error,
    )
    ack = parse_ack(ack_text)
    assert ack.code == result.ack_code
    if result.message is not None:
        assert ack.control_id == result.message.header.control_id
    if not result.accepted:
        assert ack.text
        assert ack.error_codes


@FUZZ
@given(st.one_of(st.text(), HL7ISH))
def test_parse_text_raises_only_its_own_error(text: str) -> None:
    try:
        message = parse(text)
    except Hl7ParseError as exc:
        error = exc
    else:
        exercise(message)
        return
    assert error.code >= 100


@FUZZ
@given(st.one_of(st.binary(), HL7ISH.map(lambda t: t.encode("utf-8", "surrogatepass"))))
@example(b"MSH!:\rMSH")
def test_parse_bytes_raises_only_its_own_error(data: bytes) -> None:
    try:
        message = parse_bytes(data)
    except Hl7ParseError:
        return
    exercise(message)


@FUZZ
@given(st.one_of(st.binary(), HL7ISH.map(lambda t: t.encode("utf-8", "surrogatepass"))))
def test_intake_never_raises_and_always_yields_a_readable_ack(data: bytes) -> None:
    answer(data)


@FUZZ
@given(HL7ISH)
def test_intake_of_text_never_raises(text: str) -> None:
    answer(text)


@FUZZ
@given(st.one_of(st.text(), HL7ISH))
def test_split_batch_raises_only_its_own_error(text: str) -> None:
    try:
        messages = split_batch(text)
    except Hl7ParseError:
        return
    for message in messages:
        assert message.startswith("MSH")


@FUZZ
@given(st.text().map(lambda t: t.replace("\r", "").replace("\n", "")))
def test_escape_round_trips(text: str) -> None:
    escaped = escape(text, DEFAULT_DELIMITERS)
    assert not set("|^~&") & set(escaped.replace("\\", ""))
    assert unescape(escaped, DEFAULT_DELIMITERS, "utf-8") == text
