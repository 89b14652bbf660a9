"""The HL7v2 tokenizer: delimiters, terser access, escapes, character sets, batches."""

from __future__ import annotations

import pytest

from pipelines.hl7v2 import (
    ErrorCode,
    Hl7ParseError,
    Hl7PathError,
    parse,
    parse_bytes,
    split_batch,
)

ADT = (
    "MSH|^~\\&|EPIC|UCLH^1.2.3^ISO|WARDSTREAM|WS|20240501120000+0100||ADT^A01^ADT_A01"
    "|MSG00001|P|2.5.1|||AL|NE|GBR|UNICODE UTF-8\r"
    "EVN|A01|20240501120000+0100\r"
    "PID|1||123456^^^UCLH^MR~9990001112^^^NHS^NH||DOE^JOHN||19800101|M\r"
    "PV1|1|I|WARD7^BAY2^BED3^UCLH||||1234^SMITH^JANE\r"
    "OBX|1|NM|8867-4^Heart rate^LN||72|/min\r"
    "OBX|2|NM|9279-1^Resp rate^LN||18|/min\r"
    "ZPD|custom^value|x&y&z\r"
)


def test_msh_fields_are_numbered_as_hl7_defines() -> None:
    msg = parse(ADT)
    assert msg.get("MSH-1") == "|"
    assert msg.get("MSH-2") == "^~\\&"
    assert msg.get("MSH-3") == "EPIC"
    assert msg.get("MSH-4.2") == "1.2.3"
    assert msg.get("MSH-9") == "ADT"
    assert msg.get("MSH-9.2") == "A01"
    assert msg.get("MSH-9.3") == "ADT_A01"
    assert msg.get("MSH-10") == "MSG00001"
    assert msg.get("MSH-12") == "2.5.1"


def test_repetitions_components_and_subcomponents() -> None:
    msg = parse(ADT)
    assert msg.get("PID-3") == "123456"
    assert msg.get("PID-3(1).4") == "UCLH"
    assert msg.get("PID-3(2).1") == "9990001112"
    assert msg.get("PID-3(2).5") == "NH"
    assert msg.get("PID-3(3).1") == ""
    assert msg.get("PV1-3.1") == "WARD7"
    assert msg.get("PV1-3.3") == "BED3"
    assert msg.get("ZPD-2.1.3") == "z"
    assert msg.get("ZPD-2.1.4") == ""
    assert msg.get("PID-5.2") == "JOHN"
    assert msg.get("PID-99") == ""
    assert msg.get("NK1-1") == ""


def test_segment_repeats_and_field_objects() -> None:
    msg = parse(ADT)
    assert [s.name for s in msg] == ["MSH", "EVN", "PID", "PV1", "OBX", "OBX", "ZPD"]
    obx = msg.segments("OBX")
    assert [s.value(5) for s in obx] == ["72", "18"]
    assert msg.get("OBX(2)-3.2") == "Resp rate"
    assert msg.segment("OBX", 3) is None
    pid = msg.segment("PID")
    assert pid is not None
    identifiers = pid.field(3).repetitions
    assert [(r.value(1), r.value(4)) for r in identifiers] == [
        ("123456", "UCLH"),
        ("9990001112", "NHS"),
    ]
    assert pid.field(3).raw == "123456^^^UCLH^MR~9990001112^^^NHS^NH"
    assert pid.field(3).value(5, repetition=2) == "NH"
    msh = msg.segments()[0]
    assert msh.field(1).raw == "|"
    assert msh.field(2).value() == "^~\\&"
    assert len(msh) == 18
    assert len(pid) == 8


def test_header_quick_access() -> None:
    header = parse(ADT).header
    assert header.sending_application == "EPIC"
    assert header.sending_facility == "UCLH^1.2.3^ISO"
    assert header.receiving_application == "WARDSTREAM"
    assert header.receiving_facility == "WS"
    assert header.timestamp == "20240501120000+0100"
    assert (header.message_code, header.trigger_event, header.message_structure) == (
        "ADT",
        "A01",
        "ADT_A01",
    )
    assert header.message_type == "ADT^A01"
    assert header.control_id == "MSG00001"
    assert header.processing_id == "P"
    assert header.version == "2.5.1"
    assert header.charset == "UNICODE UTF-8"


@pytest.mark.parametrize("separator", ["\r", "\n", "\r\n"])
def test_segment_separators(separator: str) -> None:
    msg = parse(ADT.replace("\r", separator))
    assert len(msg) == 7
    assert msg.get("PV1-3.1") == "WARD7"
    assert msg.text == ADT.replace("\r", separator)


def test_escapes_are_decoded_on_access_and_raw_is_kept() -> None:
    raw = "a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f\\X41\\g\\.br\\h\\H\\bold\\N\\"
    msg = parse(f"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rNTE|1||{raw}\r")
    assert msg.get("NTE-3") == "a|b^c&d~e\\fAg\nhbold"
    nte = msg.segment("NTE")
    assert nte is not None
    assert nte.field(3).raw == raw
    assert raw in msg.text


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ("\\Z123\\", "\\Z123\\"),
        ("a\\unterminated", "a\\unterminated"),
        ("a\\F\\b\\c", "a|b\\c"),
        ("\\XZZ\\", "\\XZZ\\"),
        ("\\X4\\", "\\X4\\"),
    ],
)
def test_unknown_or_broken_escapes_are_kept_verbatim(raw: str, decoded: str) -> None:
    msg = parse(f"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rNTE|1||{raw}\r")
    assert msg.get("NTE-3") == decoded


def test_hex_escape_uses_the_message_charset() -> None:
    utf8 = "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5||||||UNICODE UTF-8\rNTE|1||\\XC3A9\\\r"
    latin = "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5||||||8859/1\rNTE|1||\\XE9\\\r"
    assert parse(utf8).get("NTE-3") == "é"
    assert parse(latin).get("NTE-3") == "é"


@pytest.mark.parametrize(
    ("msh", "field", "component"),
    [
        ("MSH#^~\\&#A#B#C#D#2024##ADT^A01#1#P#2.5", "#", "^"),
        ("MSH|*~\\&|A|B|C|D|2024||ADT*A01|1|P|2.5", "|", "*"),
    ],
)
def test_non_standard_delimiters(msh: str, field: str, component: str) -> None:
    msg = parse(f"{msh}\rPID{field}1{field}{field}77{component}{component}{component}X\r")
    assert msg.delimiters.field == field
    assert msg.delimiters.component == component
    assert msg.get("MSH-9.2") == "A01"
    assert msg.get("PID-3.1") == "77"
    assert msg.get("PID-3.4") == "X"


def test_truncation_character_of_v27() -> None:
    msg = parse("MSH|^~\\&#|A|B|C|D|2024||ADT^A01|1|P|2.7\rNTE|1||ab\\P\\c#\r")
    assert msg.delimiters.truncation == "#"
    assert msg.get("MSH-2") == "^~\\&#"
    assert msg.get("MSH-3") == "A"
    assert msg.get("NTE-3") == "ab#c#"


def test_missing_subcomponent_separator_defaults() -> None:
    msg = parse("MSH|^~\\|A|B|C|D|2024||ADT^A01|1|P|2.3\r")
    assert msg.delimiters.subcomponent == "&"
    assert msg.get("MSH-3") == "A"


@pytest.mark.parametrize(
    ("text", "code", "location"),
    [
        ("", ErrorCode.SEGMENT_SEQUENCE_ERROR, None),
        ("\r\n  \r", ErrorCode.SEGMENT_SEQUENCE_ERROR, None),
        ("PID|1||2\r", ErrorCode.SEGMENT_SEQUENCE_ERROR, "MSH"),
        ("MSH", ErrorCode.REQUIRED_FIELD_MISSING, "MSH-1"),
        ("MSH||A|B", ErrorCode.REQUIRED_FIELD_MISSING, "MSH-2"),
        ("MSHA^~\\&A", ErrorCode.DATA_TYPE_ERROR, "MSH-1"),
        ("MSH|^^\\&|A", ErrorCode.DATA_TYPE_ERROR, "MSH-2"),
        ("MSH|^~\\&#!|A", ErrorCode.DATA_TYPE_ERROR, "MSH-2"),
        ("MSH|^ \\&|A", ErrorCode.DATA_TYPE_ERROR, "MSH-2"),
    ],
)
def test_parse_errors_are_typed(text: str, code: ErrorCode, location: str | None) -> None:
    with pytest.raises(Hl7ParseError) as caught:
        parse(text)
    assert caught.value.code == code
    assert caught.value.location == location


def test_leading_blank_lines_and_bom_are_ignored() -> None:
    msg = parse("\ufeff\r\nMSH|^~\\&|A|B|C|D|2024||ADT^A01|1|P|2.5\r\n")
    assert msg.get("MSH-10") == "1"


@pytest.mark.parametrize("path", ["PID", "PID-0", "PID-3(0)", "pid-3", "PID-3.1.2.3", "P-1"])
def test_malformed_paths_raise_path_error(path: str) -> None:
    with pytest.raises(Hl7PathError):
        parse(ADT).get(path)


def test_parse_bytes_utf8_declared() -> None:
    text = ADT.replace("DOE^JOHN", "MÜLLER^JOSÉ")
    msg = parse_bytes(text.encode("utf-8"))
    assert msg.get("PID-5") == "MÜLLER"
    assert msg.get("PID-5.2") == "JOSÉ"
    assert msg.codec == "utf-8"


def test_parse_bytes_latin1_declared() -> None:
    text = ADT.replace("UNICODE UTF-8", "8859/1").replace("DOE^JOHN", "MÜLLER^JOSÉ")
    msg = parse_bytes(text.encode("latin-1"))
    assert msg.get("PID-5.2") == "JOSÉ"
    assert msg.codec == "latin-1"


def test_parse_bytes_ascii_declared_decodes_defensively() -> None:
    text = "MSH|^~\\&|A|B|C|D|2024||ADT^A01|1|P|2.5\rPID|1||1||MÜLLER\r"
    assert parse_bytes(text.encode("utf-8")).get("PID-5") == "MÜLLER"
    latin = parse_bytes(text.encode("latin-1"))
    assert latin.get("PID-5") == "MÜLLER"
    assert latin.codec == "latin-1"


def test_parse_bytes_ignores_bom() -> None:
    msg = parse_bytes(b"\xef\xbb\xbf" + ADT.encode())
    assert msg.get("MSH-3") == "EPIC"


def test_parse_bytes_rejects_bytes_not_in_the_declared_charset() -> None:
    with pytest.raises(Hl7ParseError) as caught:
        parse_bytes(ADT.replace("DOE", "D\xc9E").encode("latin-1"))
    assert caught.value.code == ErrorCode.DATA_TYPE_ERROR
    assert caught.value.location == "MSH-18"


def test_split_batch() -> None:
    one = "MSH|^~\\&|A|B|C|D|2024||ADT^A01|1|P|2.5\rPID|1||1\r"
    two = "MSH|^~\\&|A|B|C|D|2024||ADT^A02|2|P|2.5\rPID|1||2\rPV1|1|I\r"
    batch = f"FHS|^~\\&|A\rBHS|^~\\&|A\r{one}{two}BTS|2\rFTS|1\r"
    assert split_batch(batch) == [one, two]
    assert split_batch(batch.replace("\r", "\n")) == [one, two]
    assert split_batch(one) == [one]
    assert split_batch("") == []
    assert [parse(m).get("MSH-10") for m in split_batch(batch)] == ["1", "2"]


def test_split_batch_refuses_segments_outside_a_message() -> None:
    with pytest.raises(Hl7ParseError) as caught:
        split_batch("BHS|^~\\&\rPID|1\rMSH|^~\\&|A\r")
    assert caught.value.location == "PID"


def test_raw_field_keeps_repetitions_and_escapes() -> None:
    msg = parse(ADT.replace("DOE^JOHN", "DOE\\S\\X^JOHN"))
    pid = msg.segment("PID")
    assert pid is not None
    assert pid.raw_field(3) == "123456^^^UCLH^MR~9990001112^^^NHS^NH"
    assert pid.raw_field(5) == "DOE\\S\\X^JOHN"
    assert pid.raw_field(40) == ""
    assert msg.msh.raw_field(1) == "|"
    assert msg.msh.raw_field(2) == "^~\\&"
    assert msg.msh.raw_field(4) == "UCLH^1.2.3^ISO"
    assert msg.get("PID-5") == "DOE^X"
