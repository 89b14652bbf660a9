"""ORU^R01 → canonical ObservationEvent, one per order observation: value types,
codes, units, ranges, flags, statuses, times, categories and dead letters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from engine.state import StepState
from engine.types import Emit, Envelope
from pipelines.hl7v2.normalize import NormalizeHl7v2
from schemas.events import Coding, ObservationEvent, ReferenceRange
from schemas.topics import DLQ, EVENTS_OBS

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PLUS1 = timezone(timedelta(hours=1))
MSH = "MSH|^~\\&|LAB|RVJ|WARDSTREAM|RVJ|20260302083000+0100||ORU^R01^ORU_R01|LAB-1|P|2.5.1"
PID = "PID|1||MRN100^^^RVJ^MR||SMITH^ANNE||19700412|F"
PV1 = "PV1|1|I|W12^R3^B4^RVJ|||||||MED||||||||||V555^^^RVJ^VN"
OBR = "OBR|1|PL1|FL1^LAB|85353-1^Vital signs panel^LN|||20260302081500+0100"


def run(*segments: str) -> list[Emit]:
    envelope = Envelope(
        correlation_id="LAB-1",
        channel="lab-in",
        received_at=NOW,
        content_type="x-application/hl7-v2+er7",
        payload="\r".join(segments) + "\r",
    )
    return list(NormalizeHl7v2(lambda: NOW, UTC).process(envelope, StepState({})))


def events(*segments: str) -> list[ObservationEvent]:
    out = run(*segments)
    assert {e.topic for e in out} == {EVENTS_OBS}, [e.envelope.headers for e in out]
    assert all(e.key == "MRN100" for e in out)
    return [ObservationEvent.model_validate_json(e.envelope.payload) for e in out]


def one(obx: str, obr: str = OBR):
    (event,) = events(MSH, PID, PV1, obr, obx)
    (observation,) = event.observations
    return observation


def reason(*segments: str) -> str:
    out = run(*segments)
    assert [e.topic for e in out] == [DLQ]
    return out[0].envelope.headers["dlq.reason"]


def test_vital_signs_order_becomes_one_event_with_its_observations():
    (event,) = events(
        MSH,
        PID,
        PV1,
        OBR,
        "OBX|1|NM|9279-1^Respiratory rate^LN||18|/min^/min^UCUM|12-20||||F|||20260302081000+0100",
        "OBX|2|NM|8867-4^Heart rate^LN||112|/min^/min^UCUM|60-100|H|||F",
        "OBX|3|CWE|67775-7^Level of responsiveness^LN||A^Alert^L||||||F",
    )
    assert (event.trigger, event.message_id, event.patient_id) == ("R01", "LAB-1", "MRN100")
    assert event.occurred_at == datetime(2026, 3, 2, 8, 30, tzinfo=PLUS1)
    assert event.order_code == Coding(
        system="http://loinc.org", code="85353-1", display="Vital signs panel"
    )
    assert event.filler_order_number == "FL1"
    assert event.encounter is not None
    assert event.encounter.location is not None
    assert event.encounter.location.ward == "W12"
    rr, hr, avpu = event.observations
    assert rr.code == Coding(system="http://loinc.org", code="9279-1", display="Respiratory rate")
    assert (rr.category, rr.value_type, rr.value_number, rr.unit, rr.unit_system) == (
        "vital-signs",
        "NM",
        18.0,
        "/min",
        "UCUM",
    )
    assert rr.reference_range == ReferenceRange(low=12, high=20, text="12-20")
    assert rr.effective_at == datetime(2026, 3, 2, 8, 10, tzinfo=PLUS1)
    # OBX-14 empty: the order's observation time (OBR-7).
    assert hr.effective_at == datetime(2026, 3, 2, 8, 15, tzinfo=PLUS1)
    assert (hr.abnormal_flags, hr.status, hr.set_id) == (["H"], "final", "2")
    assert avpu.value_code == Coding(system="L", code="A", display="Alert")


def test_each_order_observation_is_an_event_of_its_own():
    lab = "OBR|2||FL2|24317-0^CBC^LN|||20260302070000+0100"
    first, second = events(
        MSH,
        PID,
        OBR,
        "OBX|1|NM|8310-5^Temp^LN||37.2|Cel|||||F",
        lab,
        "OBX|1|NM|718-7^Hb^LN||135|g/L|||||F",
    )
    assert [o.code.code for o in first.observations] == ["8310-5"]
    assert [o.code.code for o in second.observations] == ["718-7"]
    assert (first.observations[0].category, second.observations[0].category) == (
        "vital-signs",
        "laboratory",
    )
    assert second.filler_order_number == "FL2"


@pytest.mark.parametrize(
    ("obx", "fields"),
    [
        ("OBX|1|NM|2345-7^Glucose^LN||5.4|mmol/L|||||F", {"value_number": 5.4}),
        ("OBX|1|NM|2345-7^Glucose^LN||<2.0|mmol/L|||||F", {"value_number": 2.0, "comparator": "<"}),
        ("OBX|1|NM|2345-7^Glucose^LN||HAEMOLYSED|mmol/L|||||F", {"value_text": "HAEMOLYSED"}),
        (
            "OBX|1|NM|2345-7^Glucose^LN||5~6|mmol/L|||||F",
            {"value_number": 5.0, "value_text": "5; 6"},
        ),
        ("OBX|1|SN|2345-7^Glucose^LN||^182|mg/dL|||||F", {"value_number": 182.0}),
        (
            "OBX|1|SN|2345-7^Glucose^LN||>=^10|mg/dL|||||F",
            {"value_number": 10.0, "comparator": ">="},
        ),
        ("OBX|1|SN|5130-0^Titre^LN||^1^:^128||||||F", {"value_text": "1:128"}),
        ("OBX|1|SN|5130-0^Range^LN||^10^-^20||||||F", {"value_text": "10-20"}),
        ("OBX|1|ST|8251-1^Comment^LN||No growth||||||F", {"value_text": "No growth"}),
        (
            "OBX|1|TX|8251-1^Report^LN||Line one~Line two||||||F",
            {"value_text": "Line one\nLine two"},
        ),
        ("OBX|1|FT|8251-1^Report^LN||A\\.br\\B \\T\\ C||||||F", {"value_text": "A\nB & C"}),
        ("OBX|1|ST|8251-1^Comment^LN||see note^page 2||||||F", {"value_text": "see note^page 2"}),
        (
            "OBX|1|CE|600-7^Culture^LN||27268008^Salmonella^SCT||||||F",
            {"value_code": Coding(system="SCT", code="27268008", display="Salmonella")},
        ),
        (
            "OBX|1|CWE|600-7^Culture^LN||^^^^^^^^No growth seen||||||F",
            {"value_text": "No growth seen"},
        ),
        (
            "OBX|1|CWE|600-7^Culture^LN||A^One^L~B^Two^L||||||F",
            {"value_code": Coding(system="L", code="A", display="One"), "value_text": "One; Two"},
        ),
        ("OBX|1|ED|11502-2^Report^LN||^AP^PDF^Base64^QUJD||||||F", {}),
        ("OBX|1|NM|2345-7^Glucose^LN||||||||I", {}),
        ('OBX|1|NM|2345-7^Glucose^LN||""||||||F', {}),
    ],
)
def test_values_by_type(obx, fields):
    observation = one(obx)
    empty = {"value_number": None, "value_text": None, "value_code": None, "comparator": None}
    got = {name: getattr(observation, name) for name in empty}
    assert got == {**empty, **fields}


@pytest.mark.parametrize(
    ("status", "fhir"),
    [
        ("F", "final"),
        ("P", "preliminary"),
        ("C", "corrected"),
        ("X", "cancelled"),
        ("D", "entered-in-error"),
        ("W", "entered-in-error"),
        ("A", "amended"),
        ("I", "registered"),
        ("R", "preliminary"),
        ("f", "final"),
    ],
)
def test_result_status_maps_to_fhir(status, fhir):
    assert one(f"OBX|1|NM|8867-4^HR^LN||80|/min|||||{status}").status == fhir


def test_empty_result_status_falls_back_on_the_order_status():
    obr = OBR + "||||||||||||||||||P"
    assert one("OBX|1|NM|8867-4^HR^LN||80|/min", obr=obr).status == "preliminary"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3.5-5.0", ReferenceRange(low=3.5, high=5.0, text="3.5-5.0")),
        ("4.3 to 6.2", ReferenceRange(low=4.3, high=6.2, text="4.3 to 6.2")),
        ("<5", ReferenceRange(high=5, text="<5")),
        (">= 60", ReferenceRange(low=60, text=">= 60")),
        ("negative", ReferenceRange(text="negative")),
    ],
)
def test_reference_ranges(text, expected):
    assert one(f"OBX|1|NM|2345-7^Glucose^LN||5|mmol/L|{text}||||F").reference_range == expected


@pytest.mark.parametrize(
    ("code", "category", "system"),
    [
        ("59408-5^SpO2^LN", "vital-signs", "http://loinc.org"),
        ("8480-6^Systolic^ln", "vital-signs", "http://loinc.org"),
        ("2345-7^Glucose^LN", "laboratory", "http://loinc.org"),
        ("GLU^Glucose^L", "other", "L"),
        ("GLU^Glucose^L^8867-4^HR^LN", "vital-signs", "L"),
        ("GLU^Glucose", "other", None),
    ],
)
def test_category_follows_the_loinc_code(code, category, system):
    observation = one(f"OBX|1|NM|{code}||5||||||F")
    assert (observation.category, observation.code.system) == (category, system)


def test_observations_before_the_first_order_and_orders_without_results_are_skipped():
    (event,) = events(
        MSH,
        PID,
        "OBX|1|ST|X^Patient note^L||not in an order||||||F",
        "OBR|1||FL0|EMPTY^Empty order^L",
        OBR,
        "OBX|1|NM|8867-4^HR^LN||80|/min|||||F",
        "SPM|1|S1||BLD",
        "OBX|2|NM|8310-5^Temp^LN||37|Cel|||||F",
    )
    assert [o.code.code for o in event.observations] == ["8867-4", "8310-5"]


def test_a_feed_without_obr_gets_its_results_as_one_order():
    (event,) = events(MSH, PID, "OBX|1|NM|8867-4^HR^LN||80|/min|||||F|||20260302080000+0000")
    assert (event.order_code, event.filler_order_number) == (None, None)
    assert event.occurred_at == datetime(2026, 3, 2, 8, 30, tzinfo=PLUS1)


@pytest.mark.parametrize(
    ("segments", "expected"),
    [
        ((MSH, PID, OBR), "OBX: no observation in any order of ORU^R01"),
        (
            (MSH, OBR, "OBX|1|NM|8867-4^HR^LN||80||||||F"),
            "PID: patient identification segment missing on ORU^R01",
        ),
        (
            (MSH, "PID|1||", OBR, "OBX|1|NM|8867-4^HR^LN||80||||||F"),
            "PID-3: patient identifier missing on ORU^R01",
        ),
        (
            (MSH, PID, OBR, "OBX|1|NM|||80||||||F"),
            "OBX-3: observation identifier missing (OBX #1 of ORU^R01)",
        ),
        (
            (MSH, PID, OBR, "OBX|1|NM|8867-4^HR^LN||80||||||F", "OBX|2|NM|8867-4^HR^LN||81|||||"),
            "OBX-11: observation result status missing (OBX #2 of ORU^R01)",
        ),
        (
            (MSH, PID, OBR, "OBX|1|NM|8867-4^HR^LN||80||||||Q"),
            "OBX-11: unknown observation result status (OBX #1 of ORU^R01)",
        ),
        (
            (MSH, PID, OBR, "OBX|1||8867-4^HR^LN||80||||||F"),
            "OBX-2: value type missing for a valued OBX-5 (OBX #1 of ORU^R01)",
        ),
        (
            (MSH, PID, OBR, "OBX|1|NM|8867-4^HR^LN||80||||||F|||20261340"),
            "OBX-14: not a valid calendar date/time (OBX #1 of ORU^R01)",
        ),
        (
            (MSH, PID, "OBR|1||||||BADTIME", "OBX|1|NM|8867-4^HR^LN||80||||||F"),
            "OBR-7: not an HL7 date/time (expected YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ])"
            " (OBX #1 of ORU^R01)",
        ),
    ],
)
def test_inconsistent_results_are_dead_lettered(segments, expected):
    assert reason(*segments) == expected


def test_results_of_two_patients_in_one_message_are_keyed_by_each():
    out = run(
        MSH,
        PID,
        OBR,
        "OBX|1|NM|8867-4^HR^LN||80||||||F",
        "PID|2||MRN200",
        OBR,
        "OBX|1|NM|8867-4^HR^LN||90||||||F",
    )
    assert [(e.topic, e.key) for e in out] == [(EVENTS_OBS, "MRN100"), (EVENTS_OBS, "MRN200")]
