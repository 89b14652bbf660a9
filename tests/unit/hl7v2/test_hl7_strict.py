"""Strict validation against the declared HL7 version (hl7apy's definitions):
every problem with its table 0357 code and place, and no message content."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.hl7v2 import ErrorCode, parse_bytes
from pipelines.hl7v2.strict import MAX_ERRORS, strict_errors, strict_summary
from tests.hl7_factory import adt

GOOD = adt("A01", "S-1", "P100", name="OKONKWO^ADAEZE", birth_date="19610923")
SEGMENTS = GOOD.split("\r")[:-1]
CORPUS = Path(__file__).resolve().parents[3] / ".." / "shared" / "corpus" / "fhir-converter"


def without(name: str) -> str:
    return "\r".join(s for s in SEGMENTS if not s.startswith(name)) + "\r"


def problems(text: str, version: str = "2.5") -> list[tuple[int, str | None]]:
    return [(int(e.code), e.location) for e in strict_errors(text, version)]


def test_a_valid_adt_a01_passes() -> None:
    assert strict_errors(GOOD, "2.5") == []


def test_a_missing_required_segment_is_a_sequence_error_at_that_segment() -> None:
    [error] = strict_errors(without("PV1"), "2.5")
    assert (error.code, error.location) == (ErrorCode.SEGMENT_SEQUENCE_ERROR, "PV1")
    assert "PV1" in error.text
    assert problems(without("EVN")) == [(100, "EVN")]


def test_a_bad_data_type_names_the_component() -> None:
    [error] = strict_errors(GOOD.replace("19610923", "1961-09-23"), "2.5")
    assert (error.code, error.location) == (ErrorCode.DATA_TYPE_ERROR, "PID-7.1")
    assert "DTM" in error.text
    assert problems(GOOD.replace("PID|1|", "PID|one|")) == [(102, "PID-1")]


def test_every_problem_is_reported_not_only_the_first() -> None:
    broken = without("PV1").replace("19610923", "yesterday").replace("EVN|A01|", "EVN|A01|x")
    assert problems(broken) == [(102, "EVN-2.1"), (102, "PID-7.1"), (100, "PV1")]


def test_required_field_missing() -> None:
    assert problems(GOOD.replace("P100^^^GENERAL^MR", "")) == [(101, "PID-3")]


def test_unknown_misplaced_and_repeated_segments() -> None:
    assert problems(GOOD + "ABC|1\r") == [(100, "ABC")]
    assert problems(GOOD + SEGMENTS[2] + "\r") == [(100, "PID(2)")]
    swapped = "\r".join([SEGMENTS[0], SEGMENTS[1], SEGMENTS[3], SEGMENTS[2]]) + "\r"
    assert (100, "PID") in problems(swapped)


def test_z_segments_are_allowed_anywhere() -> None:
    assert problems(GOOD + "ZPI|1|local\r") == []


def test_fields_the_version_does_not_define() -> None:
    extra = GOOD.replace(
        "EVN|A01|20260105101500+0000", "EVN|A01|20260105101500+0000" + "|" * 9 + "x"
    )
    assert problems(extra) == [(102, "EVN-11")]


def test_structure_from_the_trigger_event_when_msh_9_3_is_empty() -> None:
    a04 = GOOD.replace("ADT^A01^ADT_A01", "ADT^A04")
    assert problems(a04) == []
    assert problems(GOOD.replace("ADT^A01^ADT_A01", "ADT^A99")) == [(200, "MSH-9")]


def test_the_version_is_the_one_asked_for() -> None:
    v23 = GOOD.replace("|P|2.5", "|P|2.3").replace("ADT^A01^ADT_A01", "ADT^A01")
    assert problems(v23, "2.3") == []
    assert problems(GOOD, "2.9") == [(203, "MSH-12")]


def test_texts_never_carry_message_content() -> None:
    broken = without("PV1").replace("19610923", "OKONKWO61")
    errors = strict_errors(broken, "2.5")
    assert errors
    for error in errors:
        for secret in ("OKONKWO", "ADAEZE", "P100"):
            assert secret not in error.text


def test_summary_counts_and_lists_the_first_problems() -> None:
    errors = strict_errors(
        without("PV1").replace("19610923", "x").replace("PID|1|", "PID|y|"), "2.5"
    )
    summary = strict_summary(errors, "2.5")
    assert summary.startswith("3 problems against HL7 2.5: ")
    assert errors[0].text in summary
    one = strict_summary(errors[:1], "2.5")
    assert one.startswith("1 problem against HL7 2.5: ")


def test_the_report_is_bounded() -> None:
    flood = GOOD + "".join(f"ABC|{n}\r" for n in range(3 * MAX_ERRORS))
    assert len(strict_errors(flood, "2.5")) == MAX_ERRORS


def test_an_unparseable_message_is_one_problem() -> None:
    [error] = strict_errors("PID|1||P1\r", "2.5")
    assert error.code == ErrorCode.SEGMENT_SEQUENCE_ERROR


def test_ack_error_carries_code_text_and_place() -> None:
    [error] = strict_errors(without("PV1"), "2.5")
    ack_error = error.ack_error()
    assert (ack_error.code, ack_error.text, ack_error.location) == (
        error.code,
        error.text,
        error.location,
    )


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"HL7v2 corpus not found at {CORPUS}")
def test_corpus_messages_are_checked_without_crashing() -> None:
    """Real messages (FHIR-Converter's samples): strict mode must judge each one,
    whatever it finds, and place every problem in the message."""
    files = sorted((CORPUS / "input").glob("ADT-A0*.hl7"))[:8]
    assert files
    for file in files:
        message = parse_bytes(file.read_bytes())
        for error in strict_errors(message.text, message.header.version):
            assert int(error.code) in (100, 101, 102, 103, 104, 200, 203)
            assert error.text
