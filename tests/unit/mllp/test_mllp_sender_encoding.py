"""How the sender turns message text into wire bytes."""

from __future__ import annotations

from connectors.mllp import encode_message

MSH = "MSH|^~\\&|A|B|C|D|2026||ADT^A01|1|P|2.5"


def test_line_ends_become_cr() -> None:
    assert encode_message(f"{MSH}\nPID|1\r\nPV1|1\n") == f"{MSH}\rPID|1\rPV1|1\r".encode()


def test_text_is_encoded_per_msh18() -> None:
    latin = f"{MSH}||||||8859/1\rPID|1||1||MÜLLER\r"
    utf8 = f"{MSH}||||||UNICODE UTF-8\rPID|1||1||MÜLLER\r"
    assert encode_message(latin) == latin.encode("latin-1")
    assert encode_message(utf8) == utf8.encode("utf-8")


def test_ascii_or_unparseable_text_is_sent_as_utf8() -> None:
    assert encode_message(f"{MSH}\rPID|1||1||MÜLLER\r") == f"{MSH}\rPID|1||1||MÜLLER\r".encode()
    assert encode_message("not hl7 é") == "not hl7 é".encode()
