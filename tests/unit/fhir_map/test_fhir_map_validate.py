"""validate_resource / resource_issues / operation_outcome."""

from __future__ import annotations

from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from pipelines.fhir_map import (
    FhirInputError,
    FhirIssue,
    operation_outcome,
    resource_issues,
    validate_resource,
)

ENCOUNTER: dict[str, Any] = {
    "resourceType": "Encounter",
    "id": "e1",
    "status": "in-progress",
    "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
    "subject": {"reference": "Patient/p1"},
}


def issues_of(resource: Any) -> list[tuple[str, str | None]]:
    return [(i.code, i.expression) for i in resource_issues(resource)]


def test_valid_resources_pass() -> None:
    validate_resource(ENCOUNTER)
    validate_resource({"resourceType": "Patient", "gender": "male", "birthDate": "1990-02-03"})
    assert resource_issues(ENCOUNTER) == []


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        ({**ENCOUNTER, "status": "bogus"}, [("value", "Encounter.status")]),
        ({k: v for k, v in ENCOUNTER.items() if k != "class"}, [("required", "Encounter.class")]),
        ({k: v for k, v in ENCOUNTER.items() if k != "status"}, [("required", "Encounter.status")]),
        ({**ENCOUNTER, "colour": "red"}, [("structure", "Encounter.colour")]),
        (
            {
                **ENCOUNTER,
                "location": [{"location": {"reference": "Location/1"}, "status": "gone"}],
            },
            [("value", "Encounter.location[0].status")],
        ),
        (
            {**ENCOUNTER, "location": [{"status": "active"}]},
            [("required", "Encounter.location[0].location")],
        ),
        (
            {**ENCOUNTER, "period": {"start": "2024-03-01T10:00:00"}},
            [("value", "Encounter.period.start")],
        ),
        ({"resourceType": "Patient", "gender": "mal"}, [("value", "Patient.gender")]),
        ({"resourceType": "Patient", "birthDate": "1990-02-31"}, [("value", "Patient.birthDate")]),
        (
            {"resourceType": "Patient", "name": [{"given": "Jane"}]},
            [("structure", "Patient.name[0].given")],
        ),
        (
            {"resourceType": "Patient", "deceasedBoolean": True, "deceasedDateTime": "2020-01-01"},
            [("structure", "Patient.deceased[x]")],
        ),
        ({"resourceType": "Patient", "id": "not ok!"}, [("value", "Patient.id")]),
        (
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "x"},
                "valueQuantity": {"value": "high"},
            },
            [("value", "Observation.valueQuantity.value")],
        ),
        (
            {**ENCOUNTER, "contained": [{"resourceType": "Patient", "id": "p", "gender": "x"}]},
            [("value", "Encounter.contained[0].gender")],
        ),
        ({"resourceType": "Bundle", "type": "pile"}, [("value", "Bundle.type")]),
        (
            {
                "resourceType": "Bundle",
                "type": "batch",
                "entry": [
                    {"resource": {"resourceType": "Patient"}},
                    {"resource": {"resourceType": "Patient", "birthDate": "yesterday"}},
                    {
                        "resource": {
                            "resourceType": "Observation",
                            "status": "done",
                            "code": {"text": "x"},
                        }
                    },
                ],
            },
            [
                ("value", "Bundle.entry[1].resource.birthDate"),
                ("value", "Bundle.entry[2].resource.status"),
            ],
        ),
        ({"resourceType": "Wombat"}, [("not-supported", "resourceType")]),
        ({"resourceType": "Reference"}, [("not-supported", "resourceType")]),
        ({"gender": "male"}, [("required", "resourceType")]),
        (["not", "a", "resource"], [("structure", None)]),
    ],
)
def test_issues_name_the_element(resource: Any, expected: list[tuple[str, str | None]]) -> None:
    assert issues_of(resource) == expected
    with pytest.raises(FhirInputError) as raised:
        validate_resource(resource)
    assert [(i.code, i.expression) for i in raised.value.issues] == expected
    assert all(i.severity == "error" and i.diagnostics for i in raised.value.issues)


def test_diagnostics_do_not_echo_the_value() -> None:
    (issue,) = resource_issues({"resourceType": "Patient", "birthDate": "1961-13-45"})
    assert "1961" not in issue.diagnostics
    assert "1961" not in str(FhirInputError([issue]))


def test_operation_outcome_is_valid_fhir() -> None:
    issues = resource_issues({**ENCOUNTER, "status": "bogus", "colour": "red"})
    outcome = operation_outcome(issues)
    assert outcome["resourceType"] == "OperationOutcome"
    assert [i["expression"] for i in outcome["issue"]] == [
        ["Encounter.colour"],
        ["Encounter.status"],
    ]
    assert {i["severity"] for i in outcome["issue"]} == {"error"}
    get_fhir_model_class("OperationOutcome").model_validate(outcome)
    empty = operation_outcome([])
    assert empty["issue"][0]["severity"] == "information"
    get_fhir_model_class("OperationOutcome").model_validate(empty)
    bare = operation_outcome([FhirIssue("error", "not-supported", "no")])
    assert bare["issue"] == [{"severity": "error", "code": "not-supported", "diagnostics": "no"}]


def test_error_message_lists_the_issues() -> None:
    error = FhirInputError(
        [FhirIssue("error", "value", "bad", "Patient.gender"), FhirIssue("error", "invalid", "odd")]
    )
    assert str(error) == "Patient.gender: bad; odd"
    assert isinstance(error, ValueError)
    assert str(FhirInputError([])) == "invalid FHIR input"
