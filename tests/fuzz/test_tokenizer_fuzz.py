"""Fuzzing the HL7v2 tokenizer, intake validation and ACK builder: whatever the
input, the only error is ``Hl7ParseError``, every verdict yields an ACK, any
well-formed terser path reads without error, and a message built from values
reads those values back."""

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
from pipelines.hl7v2._encoding import DEFAULT_DELIMITERS, Delimiters, escape, unescape

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


# Any well-formed terser path: SEG[(n)]-F[(r)][.C[.S]], "." or "-" between parts.
_INDEX = st.one_of(st.integers(1, 12), st.integers(1, 10**30))
_NAME = st.one_of(
    st.sampled_from(["MSH", "PID", "PV1", "OBX", "ZPD", "NTE"]),
    st.from_regex(r"[A-Z][A-Z0-9]{2}", fullmatch=True),
)


@st.composite
def terser_paths(draw: st.DrawFn) -> str:
    def part(template: str) -> str:
        value = draw(st.none() | _INDEX)
        return "" if value is None else template.format(value)

    path = draw(st.sampled_from(["", "/"])) + draw(_NAME) + part("({})")
    path += f"-{draw(_INDEX)}" + part("({})")
    component = draw(st.none() | _INDEX)
    if component is not None:
        sep = draw(st.sampled_from(".-"))
        path += f"{sep}{component}" + part(sep + "{}")
    return path


@FUZZ
@given(st.one_of(st.text(), HL7ISH), st.lists(terser_paths(), min_size=1, max_size=8))
@example("MSH|^~\\&|A\rPID|1||a~b^c&d", ["PID-3(2).2.2", "MSH-2(3).4.5", "PID(99)-1"])
def test_get_reads_any_well_formed_path(text: str, paths: list[str]) -> None:
    try:
        message = parse(text)
    except Hl7ParseError:
        return
    for path in paths:
        assert isinstance(message.get(path), str)


_DELIMITER_SETS = st.sampled_from(
    [
        DEFAULT_DELIMITERS,
        Delimiters(truncation="#"),
        Delimiters("#", "*", "$", "!", "@"),
        Delimiters(":", ";", "*", "?", "/", "%"),
    ]
)
# Leaf values: anything but a carriage return, which escaping turns into \.br\
# and so reads back as a line feed.
_VALUES = st.text(st.characters(blacklist_characters="\r"), max_size=6)
_FIELD = st.lists(st.lists(st.lists(_VALUES, min_size=1, max_size=3), min_size=1, max_size=3),
                  min_size=1, max_size=2)  # fmt: skip
_SEGMENT = st.tuples(
    st.from_regex(r"[A-Z][A-Z0-9]{2}", fullmatch=True).filter(lambda n: n != "MSH"),
    st.lists(_FIELD, max_size=5),
)


@FUZZ
@given(_DELIMITER_SETS, st.lists(_SEGMENT, max_size=4), st.sampled_from(["\r", "\n", "\r\n"]))
def test_values_written_with_escapes_read_back(
    d: Delimiters, segments: list[tuple[str, list[list[list[list[str]]]]]], separator: str
) -> None:
    def write(field: list[list[list[str]]]) -> str:
        return d.repetition.join(
            d.component.join(d.subcomponent.join(escape(v, d) for v in comp) for comp in rep)
            for rep in field
        )

    lines = [f"MSH{d.field}{d.encoding_characters}{d.field}APP{d.field}FAC"]
    lines += [d.field.join([name, *map(write, fields)]) for name, fields in segments]
    message = parse(separator.join(lines) + separator)
    assert message.delimiters == d
    assert message.get("MSH-3") == "APP"
    assert [s.name for s in message] == ["MSH", *[name for name, _ in segments]]
    for segment, (_, fields) in zip(message.segments()[1:], segments, strict=True):
        for n, field in enumerate(fields, 1):
            assert segment.raw_field(n) == write(field)
            for r, rep in enumerate(field, 1):
                for c, comp in enumerate(rep, 1):
                    for s, value in enumerate(comp, 1):
                        assert segment.value(n, c, s, repetition=r) == value.replace("\r", "\n")
