"""Building ACKs and reading them back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from pipelines.hl7v2 import (
    AckError,
    ErrorCode,
    Hl7ParseError,
    build_ack,
    parse,
    parse_ack,
)

AT = datetime(2024, 5, 1, 12, 30, 5, tzinfo=timezone(timedelta(hours=1)))
INBOUND = (
    "MSH|^~\\&|EPIC|UCLH|WARDSTREAM|WS|20240501120000+0100||ADT^A02^ADT_A02|CTRL-9|T|2.3.1\r"
    "EVN|A02|20240501120000+0100\r"
    "PID|1||123456^^^UCLH^MR\r"
)


def test_aa_swaps_applications_and_echoes_control_id() -> None:
    ack = parse(build_ack(parse(INBOUND), ack_code="AA", control_id="ACK-1", at=AT))
    assert ack.get("MSH-3") == "WARDSTREAM"
    assert ack.get("MSH-4") == "WS"
    assert ack.get("MSH-5") == "EPIC"
    assert ack.get("MSH-6") == "UCLH"
    assert ack.get("MSH-7") == "20240501123005+0100"
    assert [ack.get("MSH-9"), ack.get("MSH-9.2"), ack.get("MSH-9.3")] == ["ACK", "A02", "ACK"]
    assert ack.get("MSH-10") == "ACK-1"
    assert ack.get("MSH-11") == "T"
    assert ack.get("MSH-12") == "2.3.1"
    assert [s.name for s in ack] == ["MSH", "MSA"]
    assert ack.get("MSA-1") == "AA"
    assert ack.get("MSA-2") == "CTRL-9"
    assert ack.segment("ERR") is None


def test_ack_is_deterministic_for_the_same_inputs() -> None:
    inbound = parse(INBOUND)
    first = build_ack(inbound, ack_code="AA", control_id="X", at=AT)
    assert first == build_ack(inbound, ack_code="AA", control_id="X", at=AT)
    assert first.endswith("\r")
    assert "\n" not in first


@pytest.mark.parametrize(
    "msh",
    [
        "MSH#^~\\&#EPIC#UCLH#WARDSTREAM#WS#2024##ADT^A01#C1#P#2.4",
        "MSH|*~\\&|EPIC|UCLH|WARDSTREAM|WS|2024||ADT*A01|C1|P|2.4",
        "MSH|^~\\&#|EPIC|UCLH|WARDSTREAM|WS|2024||ADT^A01|C1|P|2.7",
    ],
)
def test_ack_uses_the_inbound_delimiters(msh: str) -> None:
    inbound = parse(msh + "\r")
    text = build_ack(inbound, ack_code="AA", control_id="A9", at=AT)
    assert text.startswith(msh[:4] + inbound.encoding_characters + msh[3])
    ack = parse(text)
    assert ack.delimiters == inbound.delimiters
    assert ack.get("MSH-9.2") == "A01"
    assert ack.get("MSH-5") == "EPIC"
    assert ack.get("MSA-2") == "C1"
    assert ack.get("MSH-12") == inbound.get("MSH-12")


def test_error_ack_has_msa3_and_err() -> None:
    error = AckError(ErrorCode.REQUIRED_FIELD_MISSING, "PID-3 is missing", "PID-3")
    text = build_ack(parse(INBOUND), ack_code="AE", control_id="A2", at=AT, error=error)
    ack = parse(text)
    assert ack.get("MSA-1") == "AE"
    assert ack.get("MSA-3") == "PID-3 is missing"
    assert ack.get("ERR-2") == "PID"
    assert ack.get("ERR-2.2") == "1"
    assert ack.get("ERR-2.3") == "3"
    assert ack.get("ERR-3") == "101"
    assert ack.get("ERR-3.2") == "Required field missing"
    assert ack.get("ERR-3.3") == "HL70357"
    assert ack.get("ERR-4") == "E"
    assert ack.get("ERR-7") == "PID-3 is missing"


def test_reject_without_explicit_error_reports_207() -> None:
    ack = parse(build_ack(parse(INBOUND), ack_code="AR", control_id="A3", at=AT))
    assert ack.get("ERR-3") == "207"
    assert ack.get("MSA-3")


def test_error_text_with_delimiters_is_escaped() -> None:
    error = AckError(ErrorCode.DATA_TYPE_ERROR, "bad value a|b^c~d&e\\f\nnext")
    text = build_ack(parse(INBOUND), ack_code="AE", control_id="A4", at=AT, error=error)
    assert len(text.split("\r")) == 4
    assert parse(text).get("MSA-3") == "bad value a|b^c~d&e\\f\nnext"


def test_generic_ack_without_inbound_message() -> None:
    error = AckError(ErrorCode.SEGMENT_SEQUENCE_ERROR, "no MSH", "MSH")
    ack = parse(build_ack(None, ack_code="AR", control_id="A5", at=AT, error=error))
    assert ack.delimiters.encoding_characters == "^~\\&"
    assert ack.get("MSH-9") == "ACK"
    assert ack.get("MSH-12") == "2.5"
    assert ack.get("MSA-2") == ""
    assert ack.get("ERR-2") == "MSH"
    assert ack.get("ERR-3") == "100"


def test_charset_is_echoed() -> None:
    inbound = parse(INBOUND.replace("|2.3.1", "|2.5||||||8859/1", 1))
    ack = parse(build_ack(inbound, ack_code="AA", control_id="A6", at=AT))
    assert ack.get("MSH-18") == "8859/1"


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        build_ack(None, ack_code="AA", control_id="A7", at=datetime(2024, 1, 1))  # noqa: DTZ001


def test_parse_ack_round_trip() -> None:
    error = AckError(ErrorCode.UNSUPPORTED_EVENT_CODE, "unsupported event", "MSH-9.2")
    text = build_ack(
        parse(INBOUND), ack_code="AR", control_id="A8", at=AT.astimezone(UTC), error=error
    )
    for raw in (text, text.encode()):
        ack = parse_ack(raw)
        assert (ack.code, ack.control_id, ack.text) == ("AR", "CTRL-9", "unsupported event")
        assert ack.error_codes == ("201",)
        assert not ack.accepted
        assert ack.raw == text
    assert parse_ack(build_ack(parse(INBOUND), ack_code="AA", control_id="Z", at=AT)).accepted


def test_parse_ack_without_msa_is_an_error() -> None:
    with pytest.raises(Hl7ParseError) as caught:
        parse_ack(INBOUND)
    assert caught.value.location == "MSA-1"


def test_one_err_segment_per_error_and_msa3_from_text() -> None:
    first = AckError(ErrorCode.SEGMENT_SEQUENCE_ERROR, "required segment PV1 is missing", "PV1")
    second = AckError(ErrorCode.DATA_TYPE_ERROR, "PID-7.1 is not a valid DTM value", "PID-7.1")
    third = AckError(ErrorCode.REQUIRED_FIELD_MISSING, "required field PID-3 is missing", "PID-3")
    text = build_ack(
        parse(INBOUND),
        ack_code="AE",
        control_id="A9",
        at=AT,
        error=first,
        errors=[second, third],
        text="3 problems against HL7 2.3.1",
    )
    ack = parse(text)
    assert ack.get("MSA-1") == "AE"
    assert ack.get("MSA-3") == "3 problems against HL7 2.3.1"
    errs = ack.segments("ERR")
    assert [e.value(3) for e in errs] == ["100", "102", "101"]
    assert [(e.value(2), e.value(2, 3), e.value(2, 5)) for e in errs] == [
        ("PV1", "", ""),
        ("PID", "7", "1"),
        ("PID", "3", ""),
    ]
    assert [e.value(4) for e in errs] == ["E", "E", "E"]
    assert errs[1].value(7) == "PID-7.1 is not a valid DTM value"
    assert parse_ack(text).error_codes == ("100", "102", "101")


def test_errors_alone_make_the_msa3_text_from_the_first() -> None:
    only = AckError(ErrorCode.DATA_TYPE_ERROR, "EVN-2.1 is not a valid DTM value", "EVN-2.1")
    ack = parse(build_ack(parse(INBOUND), ack_code="AE", control_id="B1", at=AT, errors=[only]))
    assert ack.get("MSA-3") == "EVN-2.1 is not a valid DTM value"
    assert [e.value(3) for e in ack.segments("ERR")] == ["102"]


def test_equal_instants_in_other_zones_print_their_own_time() -> None:
    inbound = parse(INBOUND)
    utc = datetime(2024, 5, 1, 11, 30, 5, tzinfo=UTC)
    for at in (utc, utc.astimezone(timezone(timedelta(hours=1))), utc, utc + timedelta(seconds=1)):
        ack = parse(build_ack(inbound, ack_code="AA", control_id="T", at=at))
        assert ack.get("MSH-7") == at.strftime("%Y%m%d%H%M%S%z")
