"""Intake validation: which inbound messages get AA, AE or AR, and why."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipelines.hl7v2 import (
    HL7_CONTENT_TYPE,
    MESSAGE_TYPES,
    ErrorCode,
    intake_dedup_id,
    intake_envelope,
    intake_key,
    refusal_envelope,
    validate_for_intake,
)
from tests.hl7_factory import adt

GOOD = adt("A01", "C-1", "P1")
MSH = "MSH|^~\\&|EHR|GENERAL|WARDSTREAM|GENERAL|20260105101500+0000|"


def test_a_good_message_is_accepted() -> None:
    for data in (GOOD, GOOD.encode()):
        result = validate_for_intake(data)
        assert result.accepted
        assert result.ack_code == "AA"
        assert result.error is None
        assert result.message is not None
        assert result.message.header.control_id == "C-1"


@pytest.mark.parametrize(
    "msh9",
    ["ORU^R01^ORU_R01", "SIU^S12", "MDM^T02", "DFT^P03", "BAR^P01", "VXU^V04", "MFN^M02",
     "QBP^Q11", "QRY^A19", "RDE^O11", "RAS^O17", "OML^O21", "ORM^O01", "ACK^A01", "ACK"],
)  # fmt: skip
def test_known_message_types_are_accepted(msh9: str) -> None:
    result = validate_for_intake(f"{MSH}|{msh9}|C1|P|2.5\r")
    assert result.accepted, result.error


@pytest.mark.parametrize(
    ("data", "ack_code", "code", "location"),
    [
        (b"", "AR", ErrorCode.SEGMENT_SEQUENCE_ERROR, None),
        (b"\r\n", "AR", ErrorCode.SEGMENT_SEQUENCE_ERROR, None),
        (b"PID|1||123\r", "AR", ErrorCode.SEGMENT_SEQUENCE_ERROR, "MSH"),
        (b"\x00\x01\x02\xff\xfe binary", "AR", ErrorCode.DATA_TYPE_ERROR, None),
        (f"{MSH}|XYZ^A01|C1|P|2.5\r".encode(), "AR", ErrorCode.UNSUPPORTED_MESSAGE_TYPE, "MSH-9.1"),
        (f"{MSH}|ADT^R01|C1|P|2.5\r".encode(), "AR", ErrorCode.UNSUPPORTED_EVENT_CODE, "MSH-9.2"),
        (f"{MSH}|ADT|C1|P|2.5\r".encode(), "AR", ErrorCode.REQUIRED_FIELD_MISSING, "MSH-9.2"),
        (f"{MSH}||C1|P|2.5\r".encode(), "AR", ErrorCode.REQUIRED_FIELD_MISSING, "MSH-9"),
        (f"{MSH}|ADT^A01||P|2.5\r".encode(), "AR", ErrorCode.REQUIRED_FIELD_MISSING, "MSH-10"),
        (f"{MSH}|ADT^A01|C1|X|2.5\r".encode(), "AR", ErrorCode.UNSUPPORTED_PROCESSING_ID, "MSH-11"),
        (f"{MSH}|ADT^A01|C1|P|3.0\r".encode(), "AR", ErrorCode.UNSUPPORTED_VERSION_ID, "MSH-12"),
        (f"{MSH}|ADT^A01|C1\r".encode(), "AR", ErrorCode.REQUIRED_FIELD_MISSING, "MSH-11"),
        (f"{MSH}|ADT^A01|C1|P\r".encode(), "AR", ErrorCode.REQUIRED_FIELD_MISSING, "MSH-12"),
        (b"MSH|^~\\&|EHR", "AR", ErrorCode.REQUIRED_FIELD_MISSING, "MSH-9"),
        (GOOD.replace("PID|", "PI|").encode(), "AE", ErrorCode.SEGMENT_SEQUENCE_ERROR, None),
        (GOOD.replace("PID|", "pid|").encode(), "AE", ErrorCode.SEGMENT_SEQUENCE_ERROR, None),
        (GOOD + GOOD, "AE", ErrorCode.SEGMENT_SEQUENCE_ERROR, "MSH(2)"),
        (GOOD.replace("DOE", "D\x00E").encode(), "AR", ErrorCode.DATA_TYPE_ERROR, "PID-5"),
        (GOOD.replace("EVN|", "EVN|\x1b").encode(), "AR", ErrorCode.DATA_TYPE_ERROR, "EVN-1"),
        (b"MSH|^~\\&|\x00\x00", "AR", ErrorCode.DATA_TYPE_ERROR, "MSH-3"),
        (b"\x0b\x1c", "AR", ErrorCode.DATA_TYPE_ERROR, None),
    ],
)
def test_refusals(data: bytes | str, ack_code: str, code: ErrorCode, location: str | None) -> None:
    result = validate_for_intake(data)
    assert not result.accepted
    assert result.ack_code == ack_code
    assert result.error is not None
    assert result.error.code == code
    assert result.error.location == location
    assert result.error.text


def test_truncated_msh_says_where_it_ends() -> None:
    result = validate_for_intake(f"{MSH}|ADT^A01|C1\r")
    assert result.error is not None
    assert "MSH ends at MSH-10" in result.error.text


def test_a_refused_message_keeps_its_parse_for_the_ack() -> None:
    result = validate_for_intake(f"{MSH}|XYZ^A01|C77|P|2.5\r")
    assert result.message is not None
    assert result.message.header.control_id == "C77"


def test_tabs_are_not_binary_junk() -> None:
    assert validate_for_intake(GOOD.replace("DOE", "DOE\tX")).accepted


def test_local_types_can_be_added() -> None:
    local = f"{MSH}|ZAD^Z01|C1|P|2.5\r"
    assert not validate_for_intake(local).accepted
    wider = {**MESSAGE_TYPES, "ZAD": frozenset({"Z01"})}
    assert validate_for_intake(local, message_types=wider).accepted


def test_intake_envelope_key_and_dedup_id() -> None:
    message = validate_for_intake(adt("A01", "C-9", "P42", sending_app="PAS")).message
    assert message is not None
    at = datetime(2026, 1, 5, tzinfo=UTC)
    envelope = intake_envelope(
        message, channel="feed", received_at=at, headers={"peer": "p"}, envelope_id="e1"
    )
    assert (envelope.id, envelope.correlation_id, envelope.channel) == ("e1", "C-9", "feed")
    assert envelope.content_type == HL7_CONTENT_TYPE
    assert envelope.payload == message.text
    assert envelope.headers == {
        "sending_application": "PAS",
        "sending_facility": "GENERAL",
        "message_type": "ADT^A01",
        "peer": "p",
    }
    assert intake_key(message) == b"P42"
    assert intake_dedup_id(message, "feed") == "feed|PAS|GENERAL|C-9"
    no_patient = validate_for_intake(f"{MSH}|ORU^R01|C1|P|2.5\rOBR|1\r").message
    assert no_patient is not None
    assert intake_key(no_patient) == b"EHR^GENERAL"


def test_refusal_envelope_keeps_the_exact_bytes() -> None:
    raw = bytes(range(256))
    result = validate_for_intake(raw)
    assert result.error is not None
    at = datetime(2026, 1, 5, tzinfo=UTC)
    letter = refusal_envelope(
        raw,
        ack_code=result.ack_code,
        error=result.error,
        control_id="",
        channel="feed",
        received_at=at,
        step_id="mllp.intake",
    )
    assert letter.payload.encode("latin-1") == raw
    assert letter.headers["dlq.step_id"] == "mllp.intake"
    assert letter.headers["dlq.error_code"] == str(int(result.error.code))
    assert letter.headers["dlq.reason"] == result.error.text
    assert letter.trail[0].status == "error"
    assert letter.correlation_id
