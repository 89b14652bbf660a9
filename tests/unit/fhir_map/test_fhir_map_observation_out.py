"""to_fhir for ObservationEvent: values, units, flags, ranges, ids."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from engine.types import Envelope
from pipelines.fhir_map import to_fhir
from schemas.events import (
    AdtEvent,
    Coding,
    Encounter,
    Identifier,
    Observation,
    ObservationEvent,
    Patient,
    ReferenceRange,
)

Validate = Callable[[dict[str, Any]], None]
AT = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
RR = Coding(system="LN", code="9279-1", display="Respiratory rate")


def result(**fields: Any) -> Observation:
    values: dict[str, Any] = {
        "code": RR,
        "category": "vital-signs",
        "value_type": "NM",
        "status": "final",
    }
    return Observation(**{**values, **fields})


def report(patient: Patient, *observations: Observation, **fields: Any) -> ObservationEvent:
    return ObservationEvent(
        trigger="R01",
        message_id="MSG0100",
        occurred_at=AT,
        patient=patient,
        observations=list(observations),
        **fields,
    )


def observations(event: ObservationEvent, source: Envelope) -> list[dict[str, Any]]:
    resources = to_fhir(event, source)
    assert resources[0]["resourceType"] == "Patient"
    assert resources[-1]["resourceType"] == "Provenance"
    return resources[1:-1]


def test_numeric_vital_sign(patient: Patient, source: Envelope, assert_valid: Validate) -> None:
    obs = result(
        value_number=24.0,
        unit="/min",
        unit_system="UCUM",
        reference_range=ReferenceRange(low=12, high=20, text="12-20"),
        abnormal_flags=["H"],
        effective_at=AT,
        set_id="1",
    )
    (resource,) = observations(report(patient, obs), source)
    assert resource["status"] == "final"
    assert resource["category"] == [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "vital-signs",
                    "display": "Vital Signs",
                }
            ]
        }
    ]
    assert resource["code"] == {
        "coding": [{"system": "http://loinc.org", "code": "9279-1", "display": "Respiratory rate"}]
    }
    ucum = {"unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}
    assert resource["valueQuantity"] == {"value": 24.0, **ucum}
    assert resource["referenceRange"] == [
        {"low": {"value": 12.0, **ucum}, "high": {"value": 20.0, **ucum}, "text": "12-20"}
    ]
    assert resource["interpretation"] == [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                    "code": "H",
                    "display": "High",
                }
            ]
        }
    ]
    assert resource["effectiveDateTime"] == "2024-03-01T12:00:00Z"
    assert resource["issued"] == "2024-03-01T12:00:00Z"
    assert resource["subject"]["reference"].startswith("Patient/")
    assert "encounter" not in resource
    assert_valid(resource)


@pytest.mark.parametrize(
    ("fields", "value"),
    [
        (
            {"value_type": "SN", "value_number": 5.0, "comparator": "<", "unit": "mg/L"},
            {
                "valueQuantity": {
                    "value": 5.0,
                    "comparator": "<",
                    "unit": "mg/L",
                    "system": "http://unitsofmeasure.org",
                    "code": "mg/L",
                }
            },
        ),
        (
            {"value_type": "NM", "value_number": 3.0, "unit": "cells", "unit_system": "L"},
            {
                "valueQuantity": {
                    "value": 3.0,
                    "unit": "cells",
                    "system": "urn:wardstream:code:L",
                    "code": "cells",
                }
            },
        ),
        ({"value_type": "NM", "value_number": 7.0}, {"valueQuantity": {"value": 7.0}}),
        (
            {
                "value_type": "CWE",
                "value_code": Coding(system="SCT", code="3092008", display="Staphylococcus aureus"),
            },
            {
                "valueCodeableConcept": {
                    "coding": [
                        {
                            "system": "http://snomed.info/sct",
                            "code": "3092008",
                            "display": "Staphylococcus aureus",
                        }
                    ]
                }
            },
        ),
        ({"value_type": "ST", "value_text": "haemolysed"}, {"valueString": "haemolysed"}),
        (
            {"value_type": "NM", "status": "cancelled"},
            {
                "dataAbsentReason": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                            "code": "not-performed",
                        }
                    ]
                }
            },
        ),
        (
            {"value_type": "NM", "value_number": float("nan")},
            {
                "dataAbsentReason": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                            "code": "not-a-number",
                        }
                    ]
                }
            },
        ),
    ],
)
def test_value_types(
    fields: dict[str, Any],
    value: dict[str, Any],
    patient: Patient,
    source: Envelope,
    assert_valid: Validate,
) -> None:
    (resource,) = observations(report(patient, result(**fields)), source)
    values = {k: v for k, v in resource.items() if k.startswith("value") or k == "dataAbsentReason"}
    assert values == value
    assert_valid(resource)


@pytest.mark.parametrize(
    ("system", "uri"),
    [
        ("LN", "http://loinc.org"),
        ("http://loinc.org", "http://loinc.org"),
        ("HL70078", "http://terminology.hl7.org/CodeSystem/v2-0078"),
        ("99LOCAL", "urn:wardstream:code:99LOCAL"),
        (None, None),
    ],
)
def test_code_systems(
    system: str | None, uri: str | None, patient: Patient, source: Envelope
) -> None:
    obs = result(code=Coding(system=system, code="X1"), value_text="x", value_type="ST")
    (resource,) = observations(report(patient, obs), source)
    assert resource["code"]["coding"][0].get("system") == uri


def test_flags_outside_the_v3_table_keep_their_v2_code(patient: Patient, source: Envelope) -> None:
    (resource,) = observations(
        report(patient, result(value_number=1.0, abnormal_flags=["<", "HM"])), source
    )
    assert [c["coding"][0] for c in resource["interpretation"]] == [
        {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
            "code": "<",
            "display": "Off scale low",
        },
        {"system": "http://terminology.hl7.org/CodeSystem/v2-0078", "code": "HM"},
    ]


def test_other_category_has_none(patient: Patient, source: Envelope) -> None:
    (resource,) = observations(report(patient, result(category="other", value_text="x")), source)
    assert "category" not in resource


def test_ids_and_identifiers_follow_the_report(patient: Patient, source: Envelope) -> None:
    first, second = result(set_id="1", value_number=1.0), result(set_id="2", value_number=2.0)
    by_filler = observations(report(patient, first, second, filler_order_number="LAB-1"), source)
    again = observations(
        report(patient, first, second, filler_order_number="LAB-1").model_copy(
            update={"message_id": "MSG-CORRECTION"}
        ),
        source,
    )
    # A corrected result in a later message replaces the same resources.
    assert [r["id"] for r in by_filler] == [r["id"] for r in again]
    assert len({r["id"] for r in by_filler}) == 2
    assert by_filler[0]["identifier"] == [
        {
            "type": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                        "code": "FILL",
                        "display": "Filler Identifier",
                    }
                ]
            },
            "system": "urn:wardstream:id:observation",
            "value": "LAB-1^1^9279-1",
        }
    ]
    by_message = observations(report(patient, result(value_number=1.0)), source)
    assert by_message[0]["identifier"] == [
        {"system": "urn:wardstream:id:observation", "value": "MSG0100^1^9279-1"}
    ]


def test_encounter_is_referred_to_not_written(patient: Patient, source: Envelope) -> None:
    visit = Encounter(visit_number=Identifier(value="V1", authority="GENHOSP"), patient_class="E")
    resources = to_fhir(report(patient, result(value_number=1.0), encounter=visit), source)
    assert not [r for r in resources if r["resourceType"] == "Encounter"]
    admit = AdtEvent(
        action="admit",
        trigger="A01",
        message_id="M9",
        occurred_at=AT,
        patient=patient,
        encounter=visit.model_copy(update={"patient_class": "I"}),
    )
    (written,) = [r for r in to_fhir(admit, source) if r["resourceType"] == "Encounter"]
    assert resources[1]["encounter"] == {
        "reference": f"Encounter/{written['id']}",
        "identifier": {
            "type": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                        "code": "VN",
                        "display": "Visit number",
                    }
                ]
            },
            "system": "urn:wardstream:id:GENHOSP",
            "value": "V1",
        },
    }
    assert resources[-1]["activity"]["coding"][0]["code"] == "R01"
    without_number = report(
        patient, result(value_number=1.0), encounter=Encounter(patient_class="I")
    )
    assert "encounter" not in to_fhir(without_number, source)[1]
