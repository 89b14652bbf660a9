"""The ``normalize.fhir`` and ``fhir.out`` steps as pure processors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from engine.state import StepState
from engine.types import Envelope
from pipelines.fhir_in import STEP_ID as NORMALIZE_FHIR
from pipelines.fhir_in import NormalizeFhir
from pipelines.fhir_out import FhirOut, from_fhir_input
from schemas.events import AdtEvent, BedLocation, Encounter, Identifier, Patient
from schemas.topics import DLQ, EVENTS_ADT, EVENTS_OBS, FHIR_OUT

NOW = datetime(2026, 1, 5, 10, 15, tzinfo=UTC)
LOC_TYPE = "http://terminology.hl7.org/CodeSystem/location-physical-type"


def raw(document: dict[str, Any]) -> Envelope:
    return Envelope(
        correlation_id="Bundle/b1",
        channel="fhir",
        received_at=NOW,
        content_type="application/fhir+json",
        payload=json.dumps(document),
        headers={"fhir.interaction": "transaction"},
    )


PATIENT = {
    "resourceType": "Patient",
    "id": "p1",
    "identifier": [{"system": "urn:mrn", "value": "M1"}],
    "gender": "female",
}
WARD = {
    "resourceType": "Location",
    "id": "w1",
    "identifier": [{"system": "urn:ward", "value": "AMU"}],
    "status": "active",
    "physicalType": {"coding": [{"system": LOC_TYPE, "code": "wa"}]},
}
OBSERVATION = {
    "resourceType": "Observation",
    "id": "o1",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
    "subject": {"reference": "urn:uuid:0b5e3c1e-0000-4000-8000-000000000001"},
    "effectiveDateTime": "2026-01-05T10:00:00Z",
    "valueQuantity": {"value": 80, "unit": "/min"},
}


def test_normalize_routes_each_event_by_kind() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:0b5e3c1e-0000-4000-8000-000000000001",
                "resource": PATIENT,
                "request": {"method": "PUT", "url": "Patient/p1"},
            },
            {"resource": OBSERVATION, "request": {"method": "PUT", "url": "Observation/o1"}},
            {"resource": WARD, "request": {"method": "PUT", "url": "Location/w1"}},
            {
                "resource": {"resourceType": "Practitioner", "id": "dr"},
                "request": {"method": "PUT", "url": "Practitioner/dr"},
            },
        ],
    }
    emits = NormalizeFhir(lambda: NOW).process(raw(bundle), StepState({}))
    routes = [(e.topic, e.key, json.loads(e.envelope.payload)["kind"]) for e in emits]
    assert routes == [
        (EVENTS_ADT, "M1", "adt"),
        (EVENTS_OBS, "M1", "obs"),
        (EVENTS_ADT, "AMU", "location"),
    ]
    for emit in emits:
        assert emit.envelope.trail[-1].step_id == NORMALIZE_FHIR
        assert emit.envelope.correlation_id == "Bundle/b1"
        assert emit.envelope.content_type == "application/vnd.wardstream.event+json"


def test_normalize_passes_over_types_without_events() -> None:
    practitioner = {"resourceType": "Practitioner", "id": "dr"}
    assert NormalizeFhir(lambda: NOW).process(raw(practitioner), StepState({})) == []


def test_normalize_dead_letters_what_it_cannot_map() -> None:
    step = NormalizeFhir(lambda: NOW)
    (letter,) = step.process(
        raw({"resourceType": "Patient", "id": "x"} | {"id": ""}), StepState({})
    )
    assert letter.topic == DLQ
    assert letter.envelope.headers["dlq.step_id"] == NORMALIZE_FHIR
    (garbage,) = step.process(raw({}).model_copy(update={"payload": "{nope"}), StepState({}))
    assert garbage.topic == DLQ
    assert "not JSON" in garbage.envelope.headers["dlq.reason"]


def adt_envelope() -> Envelope:
    event = AdtEvent(
        action="admit",
        trigger="A01",
        message_id="MSG-1",
        occurred_at=NOW,
        patient=Patient(identifiers=[Identifier(value="P100", authority="GENERAL", type="MR")]),
        encounter=Encounter(
            visit_number=Identifier(value="V1"),
            patient_class="I",
            status="in-progress",
            location=BedLocation(ward="AMU", room="R1", bed="B1"),
            admitted_at=NOW,
        ),
    )
    return Envelope(
        id="3f0c5b8a9d2e4f61a7b8c9d0e1f2a3b4",
        correlation_id="MSG-1",
        channel="adt-in",
        received_at=NOW,
        content_type="application/vnd.wardstream.event+json",
        payload=event.model_dump_json(),
        headers={"sending_application": "EHR", "sending_facility": "GENERAL"},
    )


def test_fhir_out_makes_one_transaction_bundle_per_event() -> None:
    (emit,) = FhirOut(lambda: NOW, validate=True).process(adt_envelope(), StepState({}))
    assert (emit.topic, emit.key) == (FHIR_OUT, "P100")
    bundle = json.loads(emit.envelope.payload)
    assert (bundle["resourceType"], bundle["type"]) == ("Bundle", "transaction")
    requests = [e["request"] for e in bundle["entry"]]
    assert all(r["method"] == "PUT" for r in requests)
    types = {r["url"].split("/")[0] for r in requests}
    assert {"Patient", "Encounter", "Location", "Provenance"} <= types
    assert emit.envelope.trail[-1].step_id == "fhir.out"
    assert emit.envelope.content_type == "application/fhir+json"
    # Deterministic: the same envelope maps to the same Bundle.
    (again,) = FhirOut(lambda: NOW).process(adt_envelope(), StepState({}))
    assert again.envelope.payload == emit.envelope.payload


def test_fhir_out_skips_events_from_fhir_input() -> None:
    envelope = adt_envelope()
    from_fhir = envelope.derive(
        step_id=NORMALIZE_FHIR,
        at=NOW,
        content_type=envelope.content_type,
        payload=envelope.payload,
    )
    assert from_fhir_input(from_fhir)
    assert not from_fhir_input(envelope)
    assert FhirOut(lambda: NOW).process(from_fhir, StepState({})) == []


def test_fhir_out_dead_letters_non_events() -> None:
    broken = adt_envelope().model_copy(update={"payload": '{"kind": "adt"}'})
    (letter,) = FhirOut(lambda: NOW).process(broken, StepState({}))
    assert letter.topic == DLQ
    assert letter.envelope.headers["dlq.reason"].startswith("not a canonical event")
