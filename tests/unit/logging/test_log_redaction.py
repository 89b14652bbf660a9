"""The PHI redaction processor and text scrubber, on their own."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
import structlog
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from engine.logging import REDACTED, get_logger, is_phi_key, redact_phi, reset_logging, scrub_text

PID = (
    "PID|1||MRN7654321^^^UCLH^MR~9434765919^^^NHS^NH||FITZGERALD^ELEANOR^MARY^^MRS||19530412|F"
    "|||42 Larkspur Road^^Camden^^NW5 2QT^GBR||020 7946 0123^PRN^PH"
)
PV1 = "PV1|1|I|WARD7^12^B^UCLH||||C1234^OKONKWO^CHIDI^^^DR|||MED|||||||||V99887766"
MSH = "MSH|^~\\&|EPIC|UCLH|WARDSTREAM|UCLH|20240501101500+0100||ADT^A01|MSG00042|P|2.5"
PHI = ["MRN7654321", "9434765919", "FITZGERALD", "ELEANOR", "19530412", "Larkspur", "7946 0123"]


@pytest.fixture(autouse=True)
def _structlog_defaults() -> Iterator[None]:
    reset_logging()
    yield
    reset_logging()


@pytest.mark.parametrize("separator", ["\r", "\n", "\r\n"])
def test_patient_segments_are_masked_whatever_the_line_break(separator: str) -> None:
    message = separator.join([MSH, "EVN|A01|20240501101500", PID, PV1])
    out = scrub_text(message)

    assert all(value not in out for value in [*PHI, "OKONKWO", "V99887766"])
    assert "PID|[REDACTED]" in out
    # Routing facts stay readable: sender, message type and control id, ward and bed.
    assert out.startswith(MSH)
    assert "PV1|1|I|WARD7^12^B^UCLH||||[REDACTED]|||MED|" in out


def test_escaped_line_breaks_from_repr_and_tracebacks_are_segment_boundaries() -> None:
    out = scrub_text(f"could not parse {MSH + chr(13) + PID!r}")
    assert "\\rPID|[REDACTED]" in out
    assert all(value not in out for value in PHI)


@pytest.mark.parametrize("sep", ["|", "#", "!", "*"])
def test_any_field_separator(sep: str) -> None:
    segment = PID.replace("|", sep)
    assert scrub_text(f"x {segment}") == f"x PID{sep}{REDACTED}"


@pytest.mark.parametrize("segment", ["PD1", "NK1", "GT1", "IN1", "IN2", "MRG", "NTE"])
def test_other_patient_segments(segment: str) -> None:
    assert scrub_text(f"{segment}|1|FITZGERALD^PATRICK|SON") == f"{segment}|{REDACTED}"


def test_obx_free_text_is_masked_but_numeric_results_kept() -> None:
    text = (
        "OBX|1|TX|note||Lives with daughter Mary at 42 Larkspur Road||||||F"
        "\rOBX|2|NM|8867-4^HR^LN||72|/min"
    )
    assert scrub_text(text) == ("OBX|1|TX|note||[REDACTED]||||||F\rOBX|2|NM|8867-4^HR^LN||72|/min")


@pytest.mark.parametrize(
    "text",
    [
        "born 1953-04-12",
        "dob=19530412",
        "born 12/04/1953.",
        "call +44 20 7946 0123",
        "call (555) 123-4567",
        "call 555-123-4567",
        "mobile 07700 900123",
        "nhs number 943 476 5919",
        "mail eleanor.fitz+ward@example.org",
    ],
)
def test_dates_phones_and_emails_are_masked_in_free_text(text: str) -> None:
    prefix = text.split(" ")[0] if "=" not in text else "dob="
    out = scrub_text(text)
    assert REDACTED in out
    assert out.startswith(prefix)
    assert not any(ch.isdigit() for ch in out.removeprefix(prefix)), out


@pytest.mark.parametrize(
    "text",
    [
        "appended to raw.hl7v2 partition 3 offset 1234567890123",
        "received_at 2024-05-01T10:15:00.123456+01:00",
        "window 2024-05-01 10:15:00 to 2024-05-01 11:15:00",
        "listening on 127.0.0.1:2575 and 192.168.100.200:8080",
        "envelope 12345678-1234-1234-1234-123456789012 took 0.123456789 s",
        "correlation MSG00042 control id 20240501101500",
        "PIDs are process ids; PID 4242 exited",
        "x",
        "",
    ],
)
def test_non_phi_text_is_left_alone(text: str) -> None:
    assert scrub_text(text) == text


@pytest.mark.parametrize(
    "key",
    ["patient_name", "name", "family", "given", "dob", "birth_date", "address", "street",
     "postcode", "phone", "home_phone", "telecom", "email", "mrn", "nhs_number", "ssn",
     "identifier", "patient_id", "pid", "payload", "raw", "body", "text", "message",
     "raw_payload", "Patient-Name"],
)  # fmt: skip
def test_phi_keys(key: str) -> None:
    assert is_phi_key(key)


@pytest.mark.parametrize(
    "key",
    ["event", "channel", "step_id", "correlation_id", "message_id", "topic", "partition",
     "offset", "ward", "bed", "status", "count", "exception", "port", "host"],
)  # fmt: skip
def test_context_keys_are_not_phi(key: str) -> None:
    assert not is_phi_key(key)


class Opaque:
    def __repr__(self) -> str:
        return f"Opaque(payload={MSH + chr(13) + PID!r})"


def test_redact_phi_walks_every_value() -> None:
    event = {
        "event": f"bad segment {PID}",
        "patient_name": "Eleanor Fitzgerald",
        "mrn": "MRN7654321",
        "channel": "adt-in",
        "step_id": "normalize",
        "correlation_id": "MSG00042",
        "ward": "WARD7",
        "beds": 12,
        "nested": {"family": "FITZGERALD", "segments": [PID], "ok": True},
        "frame_bytes": (MSH + "\r" + PID).encode(),
        "born": date(1953, 4, 12),
        "at": datetime(2024, 5, 1, 10, 15, tzinfo=UTC),
        "obj": Opaque(),
        "token": None,
    }
    out = redact_phi(None, "info", event)

    assert out["event"] == "bad segment PID|[REDACTED]"
    assert out["patient_name"] == out["mrn"] == REDACTED
    assert out["nested"] == {"family": REDACTED, "segments": REDACTED, "ok": True}
    assert (out["channel"], out["step_id"], out["correlation_id"]) == (
        "adt-in",
        "normalize",
        "MSG00042",
    )
    assert (out["ward"], out["beds"], out["token"]) == ("WARD7", 12, None)
    assert out["born"] == REDACTED
    assert out["at"] == "2024-05-01T10:15:00+00:00"
    rendered = repr(out)
    assert all(value not in rendered for value in PHI)


def test_exceptions_are_formatted_then_scanned() -> None:
    try:
        raise ValueError(f"cannot parse {MSH}\r{PID}")
    except ValueError as exc:
        out = redact_phi(None, "error", {"event": "failed", "exc_info": exc})
    assert "exc_info" not in out
    assert "ValueError: cannot parse MSH|" in out["exception"]
    assert all(value not in out["exception"] for value in PHI)


def test_works_with_capture_logs() -> None:
    with structlog.testing.capture_logs(processors=[redact_phi]) as logs:
        get_logger().info("admitted", patient_name="Eleanor Fitzgerald", step_id="census")
    assert logs == [
        {"event": "admitted", "patient_name": REDACTED, "step_id": "census", "log_level": "info"}
    ]


names = st.text(alphabet=st.characters(min_codepoint=65, max_codepoint=90), min_size=5, max_size=12)


@settings(max_examples=100, deadline=None)
@given(
    family=names,
    given_name=names,
    mrn=st.integers(min_value=10**6, max_value=10**10),
    sep=st.sampled_from("|#!*%"),
    line_break=st.sampled_from(["\r", "\n", "\\r"]),
)
def test_no_name_or_identifier_survives(
    family: str, given_name: str, mrn: int, sep: str, line_break: str
) -> None:
    # Names that happen to spell part of the surrounding text prove nothing.
    assume(not any(name in MSH + REDACTED + "PV1" for name in (family, given_name)))
    segment = sep.join(
        ["PID", "1", "", f"{mrn}^^^H^MR", "", f"{family}^{given_name}", "", "19800101"]
    )
    text = f"rejected {MSH.replace('|', sep)}{line_break}{segment}{line_break}PV1{sep}1{sep}I"
    out = scrub_text(text)
    assert family not in out
    assert given_name not in out
    assert str(mrn) not in out
