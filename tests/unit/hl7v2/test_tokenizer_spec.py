"""The tokenizer against HL7v2 chapter 2, one rule per test: separators,
delimiters, escapes, Z-segments, byte-order marks, MSH-18 character sets,
batches and terser paths (the basics are in test_hl7_tokenizer.py)."""

from __future__ import annotations

import pytest

from pipelines.hl7v2 import Delimiters, ErrorCode, Hl7ParseError, parse, parse_bytes, split_batch
from pipelines.hl7v2._encoding import codec_for_charset

MSH = "MSH|^~\\&|SND|FAC|RCV|FAC|20240501120000||ADT^A01^ADT_A01|CTRL1|P|2.5"
WITH_TRUNCATION = "^~\\&#"


def msh(charset: str = "", encoding: str = "^~\\&", field: str = "|") -> str:
    head = MSH.replace("|", field).replace("^~\\&", encoding, 1)
    return head + field * 6 + charset if charset else head


def test_mixed_segment_separators_and_blank_lines() -> None:
    text = f"{MSH}\r\nEVN|A01\rPID|1||42\n\n\rPV1|1|I|W1\r\n\r\nOBX|1\n"
    msg = parse(text)
    assert [s.name for s in msg] == ["MSH", "EVN", "PID", "PV1", "OBX"]
    assert msg.get("PID-3") == "42"
    assert msg.get("PV1-3") == "W1"
    assert msg.text == text


def test_line_feed_then_carriage_return_is_one_break() -> None:
    msg = parse(f"{MSH}\n\rPID|1||42\n\r")
    assert [s.raw for s in msg][1:] == ["PID|1||42"]


def test_delimiters_come_from_msh_1_and_msh_2() -> None:
    msg = parse(f"{msh(encoding='*$!@', field='#')}\rPID#1##A*B$C*D@E!F!G")
    assert msg.delimiters == Delimiters("#", "*", "$", "!", "@")
    assert msg.get("MSH-1") == "#"
    assert msg.get("MSH-2") == "*$!@"
    assert msg.get("PID-3") == "A"
    assert msg.get("PID-3(2).2.1") == "D"
    assert msg.get("PID-3(2).2.2") == "E#G"


def test_truncation_character_is_declared_not_a_separator() -> None:
    msg = parse(f"{msh(encoding=WITH_TRUNCATION)}\rNTE|1||long text#^second#\r")
    assert msg.delimiters.truncation == "#"
    assert msg.delimiters.encoding_characters == WITH_TRUNCATION
    assert msg.get("MSH-2") == WITH_TRUNCATION
    assert msg.get("MSH-9.2") == "A01"
    assert msg.get("NTE-3") == "long text#"
    assert msg.get("NTE-3.2") == "second#"


def test_truncation_character_may_not_repeat_a_delimiter() -> None:
    with pytest.raises(Hl7ParseError) as caught:
        parse(msh(encoding="^~\\&^"))
    assert caught.value.location == "MSH-2"


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ("\\F\\", "|"),
        ("\\S\\", "^"),
        ("\\T\\", "&"),
        ("\\R\\", "~"),
        ("\\E\\", "\\"),
        ("line one\\.br\\line two", "line one\nline two"),
        ("\\X48656C6C6F\\", "Hello"),
        ("\\X\\", "\\X\\"),
        ("\\.sp\\", "\\.sp\\"),
        ("\\Cxxyy\\", "\\Cxxyy\\"),
        ("\\Zcustom\\", "\\Zcustom\\"),
        ("\\E\\F\\", "\\F\\"),
    ],
)
def test_escape_sequences(raw: str, decoded: str) -> None:
    assert parse(f"{MSH}\rNTE|1||{raw}").get("NTE-3") == decoded


def test_escapes_are_decoded_after_splitting() -> None:
    msg = parse(f"{MSH}\rZZZ|a\\S\\b^c\\T\\d&e\\R\\f~g\\F\\h")
    assert msg.get("ZZZ-1") == "a^b"
    assert msg.get("ZZZ-1.2") == "c&d"
    assert msg.get("ZZZ-1.2.2") == "e~f"
    assert msg.get("ZZZ-1(2)") == "g|h"
    zzz = msg.segment("ZZZ")
    assert zzz is not None
    assert zzz.raw_field(1) == "a\\S\\b^c\\T\\d&e\\R\\f~g\\F\\h"


def test_escapes_follow_the_declared_escape_character() -> None:
    msg = parse(f"{msh(encoding='^~!&')}\rNTE|1||a!F!b!.br!c\\F\\")
    assert msg.get("NTE-3") == "a|b\nc\\F\\"


def test_hex_escape_in_latin1_bytes_decoded_defensively() -> None:
    msg = parse_bytes(f"{MSH}\rNTE|1||caf\\XE9\\ \xe9t\xe9".encode("latin-1"))
    assert msg.codec == "latin-1"
    assert msg.get("NTE-3") == "café été"


def test_z_segments_are_kept_in_order_and_addressable() -> None:
    msg = parse(f"{MSH}\rZPV|1|a^b\rPID|1||42\rZPV|2|c^d~e\rZ01|x")
    assert [s.name for s in msg] == ["MSH", "ZPV", "PID", "ZPV", "Z01"]
    assert [s.value(1) for s in msg.segments("ZPV")] == ["1", "2"]
    assert msg.get("ZPV(2)-2(2)") == "e"
    assert msg.get("ZPV(2)-2.2") == "d"
    assert msg.get("Z01-1") == "x"


@pytest.mark.parametrize("prefix", ["\ufeff", "\ufeff\r\n", "\ufeff\n\n"])
def test_byte_order_mark_in_text(prefix: str) -> None:
    assert parse(prefix + MSH).get("MSH-10") == "CTRL1"


def test_a_byte_order_mark_after_blank_lines_is_not_one() -> None:
    with pytest.raises(Hl7ParseError) as caught:
        parse("\r\n\ufeff" + MSH)
    assert caught.value.location == "MSH"


def test_byte_order_mark_in_bytes_with_a_declared_charset() -> None:
    data = b"\xef\xbb\xbf" + f"{msh('8859/1')}\rPID|1||1||M\xfcller".encode("latin-1")
    msg = parse_bytes(data)
    assert msg.get("PID-5") == "Müller"
    assert msg.codec == "latin-1"


@pytest.mark.parametrize(
    ("charset", "codec"),
    [
        ("", None),
        ("ASCII", None),
        ("US-ASCII", None),
        ("UNICODE UTF-8", "utf-8"),
        ("UNICODE", "utf-8"),
        ("UTF-8", "utf-8"),
        ("utf8", "utf-8"),
        ("8859/1", "latin-1"),
        ("ISO-8859-1", "latin-1"),
        ("ISO_8859-1", "latin-1"),
        ("ISO IR100", "latin-1"),
        ("ISO_IR 100", "latin-1"),
        ("latin1", "latin-1"),
        ("8859/2", "iso8859-2"),
        ("ISO-8859-2", "iso8859-2"),
        ("8859/15", "iso8859-15"),
        ("ISO-8859-15", "iso8859-15"),
        ("windows-1252", "cp1252"),
        ("GB 18030-2000", "gb18030"),
        ("KS X 1001", "euc_kr"),
        ("BIG-5", "big5"),
        ("EBCDIC", None),
    ],
)
def test_msh_18_character_sets_and_aliases(charset: str, codec: str | None) -> None:
    assert codec_for_charset(charset) == codec
    assert codec_for_charset(f"  {charset.lower()} ") == codec


@pytest.mark.parametrize(
    ("charset", "encoding", "name"),
    [
        ("UNICODE UTF-8", "utf-8", "Łukasz Żółć"),
        ("UTF-8", "utf-8", "Αθηνά"),
        ("8859/1", "latin-1", "Éloïse"),
        ("ISO-8859-1", "latin-1", "Éloïse"),
        ("8859/2", "iso8859-2", "Łukasz Żółć"),
        ("ISO-8859-2", "iso8859-2", "Łukasz Żółć"),
        ("8859/7", "iso8859-7", "Αθηνά"),
    ],
)
def test_parse_bytes_decodes_per_msh_18(charset: str, encoding: str, name: str) -> None:
    msg = parse_bytes(f"{msh(charset)}\rPID|1||1||{name}\r".encode(encoding))
    assert msg.get("PID-5") == name
    assert msg.header.charset == charset
    assert msg.codec == encoding


def test_parse_bytes_reads_msh_18_after_leading_blank_lines() -> None:
    data = f"\r\n\r\n{msh('8859/2')}\rPID|1||1||Łódź\r".encode("iso8859-2")
    assert parse_bytes(data).get("PID-5") == "Łódź"


def test_parse_bytes_uses_the_first_msh_18_repetition() -> None:
    data = f"{msh('8859/1~ISO IR87')}\rPID|1||1||Jos\xe9".encode("latin-1")
    assert parse_bytes(data).get("PID-5") == "José"


def test_hex_escape_in_a_declared_charset() -> None:
    msg = parse(f"{msh('8859/2')}\rNTE|1||\\XA3\\\r")
    assert msg.codec == "iso8859-2"
    assert msg.get("NTE-3") == "Ł"


def test_undecodable_bytes_for_the_declared_charset_are_a_parse_error() -> None:
    with pytest.raises(Hl7ParseError) as caught:
        parse_bytes(f"{msh('UTF-8')}\rPID|1||1||".encode() + b"\xff\xfe")
    assert caught.value.code == ErrorCode.DATA_TYPE_ERROR


def test_batch_split_with_crlf_bom_and_no_trailers() -> None:
    one = f"{MSH}\rPID|1||1\r"
    two = f"{MSH.replace('CTRL1', 'CTRL2')}\rPID|1||2\rZPD|x\r"
    batch = "\ufeffFHS|^~\\&|A\r\nBHS|^~\\&|A\r\n" + (one + two).replace("\r", "\r\n")
    messages = split_batch(batch)
    assert messages == [one, two]
    assert [parse(m).get("MSH-10") for m in messages] == ["CTRL1", "CTRL2"]
    assert [s.name for s in parse(messages[1])] == ["MSH", "PID", "ZPD"]
    assert split_batch("FHS|^~\\&|A\rBHS|^~\\&|A\rBTS|0\rFTS|1\r") == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("PID-3(2).1", "9990001112"),
        ("PID-3(2).4", "NHS"),
        ("PV1-3.1", "WARD7"),
        ("PV1-3.3", "BED3"),
        ("OBX(2)-5", "18"),
        ("OBX(2)-3.2", "Resp rate"),
        ("PID-5.1.1", "DOE"),
        ("PID-5.1.2", "VAN"),
        ("PID-5.2", "JOHN"),
        ("/PID-3(2)-1", "9990001112"),
        ("OBX(3)-5", ""),
        ("PID-5.1.3", ""),
        ("PID-3(3).1", ""),
    ],
)
def test_terser_paths(path: str, value: str) -> None:
    msg = parse(
        f"{MSH}\rPID|1||123456^^^UCLH^MR~9990001112^^^NHS^NH||DOE&VAN^JOHN\r"
        "PV1|1|I|WARD7^BAY2^BED3\rOBX|1|NM|8867-4^Heart rate^LN||72\r"
        "OBX|2|NM|9279-1^Resp rate^LN||18\r"
    )
    assert msg.get(path) == value
