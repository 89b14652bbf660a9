"""ADT triggers → canonical AdtEvent: one test per trigger, the quirks of real
feeds, and the dead letters for what cannot be mapped faithfully."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from engine.state import StepState
from engine.types import Emit, Envelope
from pipelines.hl7v2.normalize import CANONICAL_CONTENT_TYPE, NormalizeHl7v2
from schemas.events import AdtEvent, BedLocation, Identifier
from schemas.topics import DLQ, EVENTS_ADT

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LONDON = ZoneInfo("Europe/London")
PID = "PID|1||MRN100^^^RVJ^MR~9434765919^^^NHS^NH||SMITH^ANNE^MARIE^^MRS^^L||19700412|F"
PV1 = "PV1|1|I|W12^R3^B4^RVJ||||C123^JONES^PETER^^^DR|||MED||||19|||||V555^^^RVJ^VN"


def segment(name: str, fields: dict[int, str]) -> str:
    """A segment with the given fields (1-based), the rest empty."""
    values = [""] * (max(fields) + 1)
    values[0] = name
    for number, value in fields.items():
        values[number] = value
    return "|".join(values)


def message(trigger: str, *segments: str, msh9: str | None = None) -> str:
    msh = (
        f"MSH|^~\\&|EPR|RVJ|WARDSTREAM|RVJ|20260302083000||{msh9 or f'ADT^{trigger}^ADT_A01'}"
        f"|CTRL-{trigger}|P|2.5"
    )
    return "\r".join([msh, f"EVN|{trigger}|20260302083000", *segments]) + "\r"


def run(text: str, tz: timezone | ZoneInfo = LONDON) -> list[Emit]:
    envelope = Envelope(
        correlation_id="CTRL",
        channel="adt-in",
        received_at=NOW,
        content_type="x-application/hl7-v2+er7",
        payload=text,
    )
    return list(NormalizeHl7v2(lambda: NOW, tz).process(envelope, StepState({})))


def event_of(text: str) -> AdtEvent:
    out = run(text)
    assert [e.topic for e in out] == [EVENTS_ADT], [e.envelope.headers for e in out]
    return AdtEvent.model_validate_json(out[0].envelope.payload)


def reason_of(text: str) -> str:
    out = run(text)
    assert [e.topic for e in out] == [DLQ]
    assert out[0].envelope.headers["dlq.step_id"] == "normalize.hl7v2"
    assert out[0].envelope.payload == text
    return out[0].envelope.headers["dlq.reason"]


@pytest.mark.parametrize(
    ("trigger", "action", "status"),
    [
        ("A01", "admit", "in-progress"),
        ("A02", "transfer", "in-progress"),
        ("A03", "discharge", "finished"),
        ("A04", "register", "arrived"),
        ("A05", "preadmit", "planned"),
        ("A06", "change_to_inpatient", "in-progress"),
        ("A07", "change_to_outpatient", "in-progress"),
        ("A08", "update", "unknown"),
        ("A28", "update", "unknown"),
        ("A31", "update", "unknown"),
        ("A11", "cancel_admit", "cancelled"),
        ("A12", "cancel_transfer", "in-progress"),
        ("A13", "cancel_discharge", "in-progress"),
        ("A21", "leave_out", "onleave"),
        ("A22", "leave_return", "in-progress"),
    ],
)
def test_each_trigger_maps_to_its_action_and_encounter_status(trigger, action, status):
    event = event_of(message(trigger, PID, PV1))
    assert (event.action, event.trigger, event.message_id) == (action, trigger, f"CTRL-{trigger}")
    assert event.encounter is not None
    assert event.encounter.status == status
    assert event.encounter.location == BedLocation(ward="W12", room="R3", bed="B4", facility="RVJ")
    assert event.patient_id == "MRN100"


def test_emit_is_keyed_by_patient_with_the_canonical_content_type():
    (emit,) = run(message("A01", PID, PV1))
    assert (emit.topic, emit.key) == (EVENTS_ADT, "MRN100")
    assert emit.envelope.content_type == CANONICAL_CONTENT_TYPE
    assert emit.envelope.correlation_id == "CTRL"
    assert emit.envelope.trail[-1].step_id == "normalize.hl7v2"


def test_patient_demographics_are_mapped_from_pid():
    pid = segment(
        "PID",
        {
            1: "1",
            3: "MRN100^^^RVJ^MR~9434765919^^^NHS^NH",
            5: "SMITH^ANNE^MARIE^^MRS^^L~SMYTH^ANNE^^^^^A",
            7: "19700412",
            8: "F",
            11: "1 HIGH ST^FLAT 2^LEEDS^W YORKS^LS1 4AP^GBR^H",
            13: "^PRN^PH^^44^113^4960000~^NET^Internet^anne@example.org",
            14: "01132222222^WPN^PH",
            29: "20260301101500+0000",
            30: "Y",
        },
    )
    patient = event_of(message("A08", pid, PV1)).patient
    assert patient.identifiers == [
        Identifier(value="MRN100", authority="RVJ", type="MR"),
        Identifier(value="9434765919", authority="NHS", type="NH"),
    ]
    assert [(n.family, n.given, n.prefix, n.use) for n in patient.names] == [
        ("SMITH", ["ANNE", "MARIE"], "MRS", "L"),
        ("SMYTH", ["ANNE"], None, "A"),
    ]
    assert patient.birth_date == date(1970, 4, 12)
    assert patient.sex == "female"
    (home,) = patient.addresses
    assert (home.lines, home.city, home.state, home.postal_code, home.country, home.use) == (
        ["1 HIGH ST", "FLAT 2"],
        "LEEDS",
        "W YORKS",
        "LS1 4AP",
        "GBR",
        "H",
    )
    assert [(t.system, t.value, t.use) for t in patient.telecom] == [
        ("phone", "+44 113 4960000", "PRN"),
        ("email", "anne@example.org", "NET"),
        ("phone", "01132222222", "WPN"),
    ]
    assert patient.deceased is True
    assert patient.deceased_at == datetime(2026, 3, 1, 10, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("code", "gender"),
    [("M", "male"), ("F", "female"), ("O", "other"), ("U", "unknown"), ("A", "other"),
     ("N", "other"), ("m", "male"), ("", None), ('""', None), ("Z", None)],
)  # fmt: skip
def test_administrative_sex_becomes_fhir_gender(code, gender):
    pid = f"PID|1||MRN100||DOE^J||19700412|{code}"
    assert event_of(message("A08", pid, PV1)).patient.sex == gender


def test_encounter_fields_are_mapped_from_pv1_with_offsets():
    pv1 = segment(
        "PV1",
        {
            1: "1",
            2: "I",
            3: "W12^R3^B4^RVJ",
            6: "W9^R1^B1^RVJ",
            7: "C123^JONES^PETER^Q^^DR~C124^LEE^MAY",
            10: "CAR",
            14: "7",
            19: "V555^^^RVJ^VN",
            36: "01",
            44: "20260301221000+0100",
            45: "20260302101500",
        },
    )
    encounter = event_of(message("A03", PID, pv1)).encounter
    assert encounter is not None
    assert encounter.visit_number == Identifier(value="V555", authority="RVJ", type="VN")
    assert encounter.patient_class == "I"
    assert encounter.prior_location == BedLocation(ward="W9", room="R1", bed="B1", facility="RVJ")
    assert [(p.id, p.family, p.given) for p in encounter.attending] == [
        ("C123", "JONES", ["PETER", "Q"]),
        ("C124", "LEE", ["MAY"]),
    ]
    assert (encounter.service, encounter.admit_source, encounter.discharge_disposition) == (
        "CAR",
        "7",
        "01",
    )
    assert encounter.admitted_at == datetime(
        2026, 3, 1, 22, 10, tzinfo=timezone(timedelta(hours=1))
    )
    # No offset sent: read in the channel's zone (London, GMT in March).
    assert encounter.discharged_at == datetime(2026, 3, 2, 10, 15, tzinfo=LONDON)
    assert encounter.discharged_at.utcoffset() == timedelta(0)


def test_event_time_prefers_evn6_then_evn2_then_msh7():
    text = message("A01", PID, PV1).replace(
        "EVN|A01|20260302083000", "EVN|A01|20260302083000||||20260302080000+0000"
    )
    assert event_of(text).occurred_at == datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    assert event_of(message("A01", PID, PV1)).occurred_at == datetime(
        2026, 3, 2, 8, 30, tzinfo=LONDON
    )
    no_evn = message("A01", PID, PV1).replace("EVN|A01|20260302083000\r", "")
    assert event_of(no_evn).occurred_at == datetime(2026, 3, 2, 8, 30, tzinfo=LONDON)


def test_register_of_an_emergency_patient_is_in_progress_and_needs_no_location():
    event = event_of(message("A04", PID, "PV1|1|E"))
    assert event.encounter is not None
    assert (event.encounter.status, event.encounter.location) == ("in-progress", None)


def test_swap_beds_maps_both_patients():
    second_pid = "PID|2||MRN200^^^RVJ^MR||BROWN^TOM||19500101|M"
    second_pv1 = "PV1|2|I|W12^R3^B5^RVJ"
    event = event_of(message("A17", PID, PV1, second_pid, second_pv1))
    assert event.action == "swap_beds"
    assert event.patient_id == "MRN100"
    assert event.other_patient is not None
    assert event.other_patient.primary_id == "MRN200"
    assert event.other_encounter is not None
    assert event.other_encounter.location == BedLocation(
        ward="W12", room="R3", bed="B5", facility="RVJ"
    )


def test_merge_maps_every_pid_mrg_group():
    text = message(
        "A40",
        "PID|1||MRN100^^^RVJ^MR||SMITH^ANNE",
        "MRG|MRN099^^^RVJ^MR~OLD7^^^PAS",
        "PID|2||MRN300^^^RVJ^MR||GREEN^AL",
        "MRG|MRN299^^^RVJ^MR",
    )
    out = run(text)
    assert [e.topic for e in out] == [EVENTS_ADT, EVENTS_ADT]
    first, second = (AdtEvent.model_validate_json(e.envelope.payload) for e in out)
    assert (first.action, first.patient_id, first.encounter) == ("merge", "MRN100", None)
    assert first.merged_identifiers == [
        Identifier(value="MRN099", authority="RVJ", type="MR"),
        Identifier(value="OLD7", authority="PAS"),
    ]
    assert (second.patient_id, second.merged_identifiers) == (
        "MRN300",
        [Identifier(value="MRN299", authority="RVJ", type="MR")],
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (message("A01", "PID|1||", PV1), "PID-3: patient identifier missing on ADT^A01"),
        (message("A01", 'PID|1||""', PV1), "PID-3: patient identifier missing on ADT^A01"),
        (message("A01", PV1), "PID: patient identification segment missing on ADT^A01"),
        (message("A01", PID, "PV1|1|I"), "PV1-3: assigned location missing on ADT^A01"),
        (message("A02", PID), "PV1-3: assigned location missing on ADT^A02"),
        (message("A06", PID, "PV1|1|I|^R1^B1"), "PV1-3: assigned location missing on ADT^A06"),
        (message("A17", PID, PV1), "PID: second patient (PID/PV1 pair) missing on ADT^A17"),
        (
            message("A17", PID, PV1, "PID|2||MRN200"),
            "PV1: a patient visit of the bed swap is missing on ADT^A17",
        ),
        (
            message("A17", PID, PV1, "PID|2||", PV1),
            "PID-3: patient identifier missing (second patient) on ADT^A17",
        ),
        (message("A40", PID), "MRG-1: prior patient identifier missing on ADT^A40"),
        (message("A40", PID, "MRG|"), "MRG-1: prior patient identifier missing on ADT^A40"),
        (message("A09", PID, PV1), "MSH-9: ADT^A09 has no canonical mapping"),
        (message("S12", PID, msh9="SIU^S12"), "MSH-9: SIU^S12 has no canonical mapping"),
        (
            message("A01", PID, PV1).replace("|CTRL-A01|", "||"),
            "MSH-10: message control id missing",
        ),
        (
            message("A01", PID.replace("19700412", "19701312"), PV1),
            "PID-7: not a valid calendar date",
        ),
        (
            message("A01", PID, segment("PV1", {2: "I", 3: "W1", 44: "2026023099"})),
            "PV1-44: not a valid calendar date/time",
        ),
        (
            message("A01", PID, PV1).replace("EVN|A01|20260302083000", "EVN|A01|2026-03-02"),
            "EVN-2: bad UTC offset (expected YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ])",
        ),
        ("PID|1||X\r", "MSH: message does not start with an MSH segment"),
    ],
)
def test_what_cannot_be_mapped_is_dead_lettered_with_a_precise_reason(text, reason):
    assert reason_of(text) == reason


def test_reasons_never_quote_patient_data():
    bad_birth = message("A01", PID.replace("19700412", "19709999"), PV1)
    bad_death = message("A01", segment("PID", {3: "MRN100", 29: "BADTIME"}), PV1)
    for text in (bad_birth, bad_death):
        reason = reason_of(text)
        assert "1970" not in reason
        assert "BADTIME" not in reason
        assert "MRN100" not in reason


def test_quirks_of_real_feeds_are_survived():
    text = "\n".join(
        [
            "MSH|^~\\&|EPR|RVJ|WARDSTREAM|RVJ|20260302083000||adt^a01|Q1|P|2.3|||",
            "EVN|A01|20260302083000|||",
            "PID|||MRN7||DOE^JOHN^^^^^||19700412|m||||||||||||||||||||||",
            "",
            "PV1||i|w12^^^||||||||||||||||||||||||||||||||||||||||||||||||",
            "ZPV|custom|stuff",
        ]
    )
    event = event_of(text)
    assert (event.action, event.patient_id, event.patient.sex) == ("admit", "MRN7", "male")
    assert event.patient.identifiers == [Identifier(value="MRN7")]
    assert event.encounter is not None
    assert event.encounter.patient_class == "I"
    assert event.encounter.location == BedLocation(ward="w12")


def test_trigger_falls_back_on_evn1_and_escapes_are_decoded():
    text = message("A01", "PID|1||MRN7||O\\S\\BRIEN^SEAN", PV1, msh9="ADT")
    event = event_of(text)
    assert event.trigger == "A01"
    assert event.patient.names[0].family == "O^BRIEN"


def test_hl7_null_and_empty_repetitions_are_absent():
    pid = 'PID|1||~MRN8^^^RVJ^MR~""||""^""||""|""|||""'
    patient = event_of(message("A08", pid, PV1)).patient
    assert patient.identifiers == [Identifier(value="MRN8", authority="RVJ", type="MR")]
    assert (patient.names, patient.birth_date, patient.sex, patient.addresses) == (
        [],
        None,
        None,
        [],
    )


def test_v27_point_of_care_sent_as_hd_keeps_the_namespace_only():
    pv1 = "PV1|1|I|AMU&1.2.3&ISO^BAY1&9.9&ISO^B2^RVJ&4.5&ISO"
    event = event_of(message("A02", PID, pv1))
    assert event.encounter is not None
    assert event.encounter.location == BedLocation(
        ward="AMU", room="BAY1", bed="B2", facility="RVJ"
    )


def test_channel_timezone_reads_offsetless_times_in_that_zone():
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from engine.types import Envelope
    from pipelines.hl7v2.normalize import NormalizeHl7v2
    from schemas.events import AdtEvent

    text = (
        "MSH|^~\\&|EHR|GEN|WS|GEN|20260705101500||ADT^A01^ADT_A01|tz1|P|2.5\r"
        "EVN|A01|20260705101500\r"
        "PID|1||P1^^^GEN^MR\r"
        "PV1|1|I|AMU^R1^B1^GEN\r"
    )
    step = NormalizeHl7v2(
        lambda: datetime(2026, 7, 5, tzinfo=UTC),
        ZoneInfo("UTC"),
        {"london": ZoneInfo("Europe/London")},
    )

    def occurred(channel: str) -> datetime:
        envelope = Envelope(
            correlation_id="tz1",
            channel=channel,
            received_at=datetime(2026, 7, 5, tzinfo=UTC),
            content_type="x-application/hl7-v2+er7",
            payload=text,
        )
        (emit,) = step.process(envelope, None)  # type: ignore[arg-type]
        return AdtEvent.model_validate_json(emit.envelope.payload).occurred_at

    assert occurred("other") == datetime(2026, 7, 5, 10, 15, tzinfo=UTC)
    assert occurred("london") == datetime(2026, 7, 5, 9, 15, tzinfo=UTC)


def test_a40_with_several_pid_mrg_groups_yields_one_merge_per_group():
    from pipelines.hl7v2 import parse
    from pipelines.hl7v2.normalize import canonical_events

    text = (
        "MSH|^~\\&|EHR|GEN|WS|GEN|20260105101500+0000||ADT^A40^ADT_A39|m1|P|2.5\r"
        "EVN|A40|20260105101500+0000\r"
        "PID|1||KEEP1^^^GEN^MR\r"
        "MRG|OLD1^^^GEN^MR\r"
        "PID|2||KEEP2^^^GEN^MR\r"
        "MRG|OLD2^^^GEN^MR\r"
    )
    events = canonical_events(parse(text))
    assert [(e.action, e.patient_id, [i.value for i in e.merged_identifiers]) for e in events] == [
        ("merge", "KEEP1", ["OLD1"]),
        ("merge", "KEEP2", ["OLD2"]),
    ]
