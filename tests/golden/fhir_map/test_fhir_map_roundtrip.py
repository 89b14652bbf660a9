"""Canonical → FHIR → canonical keeps every field both sides carry.

Each golden fixture is mapped to FHIR, written as a transaction Bundle (both
the PUT and the conditional-create forms, so references resolve by
``Type/id`` and by ``urn:uuid`` fullUrl), read back with ``from_fhir``, and
compared field by field with what went in.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter

from engine.types import Envelope
from pipelines.fhir_map import from_fhir, to_fhir, transaction_bundle
from pipelines.fhir_map.encounter import encounter_status
from schemas.events import (
    AdtEvent,
    CanonicalEvent,
    Encounter,
    LocationEvent,
    Observation,
    ObservationEvent,
    Patient,
)

HERE = Path(__file__).parent
FIXTURES = sorted((HERE / "fixtures").glob("*.json"))
EVENTS: TypeAdapter[Any] = TypeAdapter(CanonicalEvent)
RECEIVED = datetime(2024, 3, 9, 8, 0, tzinfo=UTC)
# Actions that FHIR says in so many words (status, location history).
ONE_TO_ONE = {"admit", "transfer", "discharge", "preadmit", "cancel_admit", "leave_out", "register"}
UNMAPPED_USES = {"telecom": {"PRN", "WPN", "PRS"}}


def _load(path: Path) -> tuple[Any, Envelope]:
    data = json.loads(path.read_text())
    return EVENTS.validate_python(data["event"]), Envelope.model_validate(data["source"])


def _carried_patient(patient: Patient) -> Patient:
    """The patient as FHIR carries it: telecom uses without a FHIR code are dropped."""
    telecom = [
        t if t.use in UNMAPPED_USES["telecom"] else t.model_copy(update={"use": None})
        for t in patient.telecom
    ]
    deceased = True if patient.deceased_at is not None else patient.deceased
    return patient.model_copy(update={"telecom": telecom, "deceased": deceased})


def _carried_encounter(action: Any, encounter: Encounter) -> Encounter:
    number = encounter.visit_number
    if number is not None and number.type is None:
        number = number.model_copy(update={"type": "VN"})
    prior = encounter.prior_location
    return encounter.model_copy(
        update={
            "visit_number": number,
            "status": encounter_status(action, encounter),
            "prior_location": prior if prior != encounter.location else None,
        }
    )


def _carried_result(result: Observation) -> Observation:
    has_value = result.value_number, result.value_text, result.value_code
    if all(value is None for value in has_value):
        return result.model_copy(update={"value_type": "ST"})
    return result


@pytest.mark.parametrize("mode", ["put", "if-none-exist"])
@pytest.mark.parametrize("fixture", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_round_trip(fixture: Path, mode: Any) -> None:
    event, source = _load(fixture)
    bundle = transaction_bundle(to_fhir(event, source), conditional=mode)
    back = from_fhir(bundle, received_at=RECEIVED)
    if isinstance(event, AdtEvent):
        _check_adt(event, back)
    elif isinstance(event, ObservationEvent):
        _check_obs(event, back)
    else:
        _check_location(event, back)


def _check_adt(event: AdtEvent, back: list[Any]) -> None:
    patients = [e for e in back if e.trigger == "Patient"]
    assert patients[0].patient == _carried_patient(event.patient)
    if event.other_patient is not None:
        assert patients[1].patient == _carried_patient(event.other_patient)
    if event.merged_identifiers:
        merged = [p.patient.identifiers for p in patients]
        assert event.merged_identifiers in merged
    visits = [e for e in back if e.trigger == "Encounter"]
    sent = [(event.patient, event.encounter), (event.other_patient, event.other_encounter)]
    sent = [(p, v) for p, v in sent if v is not None]
    assert len(visits) == len(sent)
    for got, (patient, visit) in zip(visits, sent, strict=True):
        assert got.patient == _carried_patient(patient or event.patient)
        assert got.encounter == _carried_encounter(event.action, visit)
        if event.action in ONE_TO_ONE:
            assert got.action == event.action
        if event.action in ("admit", "transfer", "discharge"):
            assert got.occurred_at == event.occurred_at


def _check_obs(event: ObservationEvent, back: list[Any]) -> None:
    results = [e for e in back if isinstance(e, ObservationEvent)]
    assert len(results) == len(event.observations)
    for got, sent in zip(results, event.observations, strict=True):
        assert got.patient == _carried_patient(event.patient)
        assert got.filler_order_number == event.filler_order_number
        assert got.occurred_at == event.occurred_at
        assert got.encounter is not None
        assert event.encounter is not None
        assert got.encounter.visit_number == event.encounter.visit_number
        assert got.observations == [_carried_result(sent)]


def _check_location(event: LocationEvent, back: list[Any]) -> None:
    (got,) = [e for e in back if e.physical_type == event.physical_type]
    fields = ("location", "physical_type", "name", "status", "operational_status")
    assert {f: getattr(got, f) for f in fields} == {f: getattr(event, f) for f in fields}
