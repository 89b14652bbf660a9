"""from_fhir for Observation: values, components, categories, problems."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from pipelines.fhir_map import FhirInputError, from_fhir
from schemas.events import Coding, Identifier, ObservationEvent, ReferenceRange

RECEIVED = datetime(2024, 3, 9, 8, 0, tzinfo=UTC)
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


def observation(**fields: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": LOINC, "code": "8310-5", "display": "Body temperature"}]},
        "subject": {"reference": "Patient/p1"},
        **fields,
    }


def event_of(resource: dict[str, Any]) -> ObservationEvent:
    (event,) = from_fhir(resource, received_at=RECEIVED)
    assert isinstance(event, ObservationEvent)
    return event


def test_quantity_with_range_flags_and_times() -> None:
    event = event_of(
        observation(
            effectiveDateTime="2024-03-01T12:00:00Z",
            issued="2024-03-01T12:05:00Z",
            valueQuantity={"value": 38.4, "unit": "C", "system": UCUM, "code": "Cel"},
            interpretation=[
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                            "code": "H",
                        }
                    ]
                }
            ],
            referenceRange=[{"low": {"value": 36.1}, "high": {"value": 38}, "text": "36.1-38"}],
            encounter={"reference": "Encounter/e9"},
        )
    )
    (result,) = event.observations
    assert result.code == Coding(system="LN", code="8310-5", display="Body temperature")
    assert (result.category, result.status, result.value_type) == ("vital-signs", "final", "NM")
    assert (result.value_number, result.unit, result.unit_system) == (38.4, "Cel", "UCUM")
    assert result.reference_range == ReferenceRange(low=36.1, high=38.0, text="36.1-38")
    assert result.abnormal_flags == ["H"]
    assert result.effective_at == datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    assert event.occurred_at == datetime(2024, 3, 1, 12, 5, tzinfo=UTC)
    assert event.encounter is not None
    assert event.encounter.visit_number == Identifier(value="e9", authority="fhir")
    assert event.patient.identifiers == [Identifier(value="p1", authority="fhir")]
    assert (event.trigger, event.message_id) == ("Observation", "o1")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"valueQuantity": {"value": 5, "comparator": "<", "unit": "mg/L"}},
            {"value_type": "SN", "value_number": 5.0, "comparator": "<", "unit": "mg/L"},
        ),
        (
            {
                "valueCodeableConcept": {
                    "coding": [{"system": "http://snomed.info/sct", "code": "3092008"}]
                }
            },
            {"value_type": "CWE", "value_code": Coding(system="SCT", code="3092008")},
        ),
        (
            {"valueCodeableConcept": {"text": "positive"}},
            {"value_type": "CWE", "value_code": Coding(code="positive")},
        ),
        ({"valueString": "haemolysed"}, {"value_type": "ST", "value_text": "haemolysed"}),
        ({"valueInteger": 3}, {"value_type": "NM", "value_number": 3.0}),
        ({"valueBoolean": False}, {"value_type": "ST", "value_text": "false"}),
        ({"valueDateTime": "2024-03-01"}, {"value_type": "DTM", "value_text": "2024-03-01"}),
        ({"dataAbsentReason": {"text": "not done"}}, {"value_type": "ST", "value_number": None}),
    ],
)
def test_value_types(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    (result,) = event_of(observation(**fields)).observations
    assert {key: getattr(result, key) for key in expected} == expected


def test_panel_components_become_results() -> None:
    panel = observation(
        code={"coding": [{"system": LOINC, "code": "85354-9"}]},
        effectiveDateTime="2024-03-01T12:00:00+01:00",
        component=[
            {
                "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                "valueQuantity": {"value": 98, "system": UCUM, "code": "mm[Hg]"},
                "interpretation": [{"coding": [{"code": "L"}]}],
            },
            {
                "code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
                "valueQuantity": {"value": 61, "system": UCUM, "code": "mm[Hg]"},
            },
        ],
    )
    results = event_of(panel).observations
    assert [(r.code.code, r.value_number, r.abnormal_flags) for r in results] == [
        ("8480-6", 98.0, ["L"]),
        ("8462-4", 61.0, []),
    ]
    assert {r.category for r in results} == {"vital-signs"}
    assert {str(r.effective_at) for r in results} == {"2024-03-01 12:00:00+01:00"}
    with_value = event_of({**panel, "valueString": "see components"}).observations
    assert [r.code.code for r in with_value] == ["85354-9", "8480-6", "8462-4"]


def test_category_other_and_local_code_systems() -> None:
    resource = observation(
        category=[{"coding": [{"code": "exam"}]}],
        code={"coding": [{"system": "urn:wardstream:code:L", "code": "COMMENT"}]},
        valueString="x",
    )
    (result,) = event_of(resource).observations
    assert (result.category, result.code.system) == ("other", "L")


def test_wardstream_identifier_gives_filler_and_set_id() -> None:
    identifier = {
        "type": {"coding": [{"code": "FILL"}]},
        "system": "urn:wardstream:id:observation",
        "value": "LAB-1^3^2345-7",
    }
    event = event_of(observation(identifier=[identifier], valueString="x"))
    assert event.filler_order_number == "LAB-1"
    assert event.observations[0].set_id == "3"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"status": "unknown"}, ("not-supported", "Observation.status")),
        (
            {"valueRatio": {"numerator": {"value": 1}, "denominator": {"value": 128}}},
            ("not-supported", "Observation.valueRatio"),
        ),
        ({"code": {"coding": [{"system": LOINC}]}}, ("required", "Observation.code")),
        ({"subject": {"reference": "Device/1"}}, ("not-supported", "Observation.subject")),
        (
            {"component": [{"code": {"text": "x"}, "valueRange": {"low": {"value": 1}}}]},
            ("not-supported", "Observation.component[0].valueRange"),
        ),
    ],
)
def test_observation_problems(fields: dict[str, Any], expected: tuple[str, str]) -> None:
    with pytest.raises(FhirInputError) as raised:
        from_fhir(observation(**fields), received_at=RECEIVED)
    assert [(i.code, i.expression) for i in raised.value.issues] == [expected]
