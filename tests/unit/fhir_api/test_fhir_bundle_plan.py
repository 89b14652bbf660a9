"""Bundles as store writes, response documents, and the CapabilityStatement."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome

from connectors.fhir.ingest import notification_type, partition_key
from engine.fhir.capability import capability_statement
from engine.fhir.outcome import FhirHttpError, diagnostics_of, outcome, status_line
from engine.fhir.search import SEARCH_PARAMS, STORED_TYPES, TokenCondition
from engine.fhir.transaction import check_type, plan_bundle, put_write

PATIENT = {"resourceType": "Patient", "identifier": [{"system": "urn:mrn", "value": "1"}]}


def entry(method: str, url: str, resource: dict[str, Any] | None = None, **request: str) -> Any:
    return {"resource": resource or PATIENT, "request": {"method": method, "url": url, **request}}


def bundle(kind: str, *entries: Any) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def test_transaction_plan_is_one_group() -> None:
    plan = plan_bundle(
        bundle(
            "transaction",
            {
                **entry("POST", "Patient", ifNoneExist="identifier=urn:mrn|1"),
                "fullUrl": "urn:uuid:a",
            },
            entry("PUT", "Patient/p2", {**PATIENT, "id": "p2"}),
        )
    )
    assert plan.kind == "transaction"
    (group,) = plan.groups
    assert isinstance(group, list)
    create, update = group
    assert (create.id, create.full_url, create.expression) == (
        None,
        "urn:uuid:a",
        "Bundle.entry[0].resource",
    )
    assert create.if_none_exist is not None
    assert create.if_none_exist.conditions == (TokenCondition("identifier", (("urn:mrn", "1"),)),)
    assert (update.id, update.resource["id"]) == ("p2", "p2")


@pytest.mark.parametrize(
    ("bad", "expression", "text"),
    [
        (entry("DELETE", "Patient/p1"), "Bundle.entry[1].request", "not supported"),
        (entry("PUT", "Patient?identifier=x"), "Bundle.entry[1].request", "not supported"),
        (
            entry("PUT", "Patient/p9", {**PATIENT, "id": "p1"}),
            "Bundle.entry[1].resource.id",
            "does not match",
        ),
        (entry("POST", "Observation"), "Bundle.entry[1].resource.resourceType", "does not match"),
        (
            entry("POST", "Medication", {"resourceType": "Medication"}),
            "Bundle.entry[1].resource.resourceType",
            "not supported",
        ),
        (
            {"request": {"method": "POST", "url": "Patient"}},
            "Bundle.entry[1].resource",
            "no resource",
        ),
        ({"resource": PATIENT}, "Bundle.entry[1].request", "no request"),
    ],
)
def test_refused_entries(bad: Any, expression: str, text: str) -> None:
    good = entry("POST", "Patient")
    with pytest.raises(FhirHttpError, match=text) as info:
        plan_bundle(bundle("transaction", good, bad))
    assert info.value.status == 400
    assert info.value.outcome["issue"][0]["expression"] == [expression]
    # In a batch the same entry is refused alone.
    plan = plan_bundle(bundle("batch", good, bad))
    assert isinstance(plan.groups[0], list)
    assert isinstance(plan.groups[1], FhirHttpError)


def test_only_batch_and_transaction_bundles_are_planned() -> None:
    with pytest.raises(FhirHttpError) as info:
        plan_bundle(bundle("collection"))
    assert info.value.outcome["issue"][0]["expression"] == ["Bundle.type"]


def test_bad_conditional_search_is_refused() -> None:
    with pytest.raises(FhirHttpError, match="If-None-Exist: unknown search parameter 'nickname'"):
        plan_bundle(bundle("transaction", entry("POST", "Patient", ifNoneExist="nickname=x")))


def test_url_form_checks() -> None:
    with pytest.raises(FhirHttpError) as info:
        check_type("Medication", status=404)
    assert (info.value.status, info.value.outcome["issue"][0]["code"]) == (404, "not-supported")
    with pytest.raises(FhirHttpError, match="invalid resource id"):
        put_write("Patient", "a b", PATIENT, "Patient")


def test_outcomes_are_valid_fhir() -> None:
    document = outcome("bad date", expression=["Patient.birthDate"])
    OperationOutcome.model_validate(document)
    assert diagnostics_of(document) == "bad date (Patient.birthDate)"
    assert diagnostics_of({"resourceType": "Patient"}) == ""
    assert status_line(201) == "201 Created"
    assert status_line(422) == "422 Unprocessable Entity"


def test_capability_statement_is_valid_and_complete() -> None:
    document = capability_statement(
        base_url="http://127.0.0.1/fhir",
        software_version="0.1.0",
        date=datetime(2026, 1, 5, tzinfo=UTC),
        token_required=True,
    )
    statement = CapabilityStatement.model_validate(document)
    (rest,) = statement.rest
    assert [r.type for r in rest.resource] == list(STORED_TYPES)
    for resource in rest.resource:
        assert [p.name for p in resource.searchParam] == [
            p.name for p in SEARCH_PARAMS[resource.type]
        ]
    assert "Bearer" in rest.security.description


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        ({"resourceType": "SubscriptionStatus", "type": "heartbeat"}, "heartbeat"),
        (
            {
                "resourceType": "Parameters",
                "parameter": [{"name": "type", "valueCode": "handshake"}],
            },
            "handshake",
        ),
        ({"resourceType": "Parameters", "parameter": []}, None),
    ],
)
def test_notification_type(status: dict[str, Any], kind: str | None) -> None:
    assert notification_type(status) == kind


def test_partition_key_is_the_patient() -> None:
    assert partition_key({**PATIENT, "id": "p1"}) == "Patient/p1"
    assert (
        partition_key(
            {"resourceType": "Encounter", "subject": {"reference": "http://h/fhir/Patient/p2"}}
        )
        == "Patient/p2"
    )
    assert partition_key({"resourceType": "Location"}) is None
