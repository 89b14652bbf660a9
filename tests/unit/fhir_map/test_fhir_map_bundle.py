"""transaction_bundle: PUT upserts and conditional creates."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import pytest

from engine.types import Envelope
from pipelines.fhir_map import FhirBundleError, to_fhir, transaction_bundle
from schemas.events import AdtEvent, Encounter, Patient, Practitioner

Validate = Callable[[dict[str, Any]], None]


@pytest.fixture
def resources(patient: Patient, visit: Encounter, source: Envelope) -> list[dict[str, Any]]:
    event = AdtEvent(
        action="admit",
        trigger="A01",
        message_id="MSG0001",
        occurred_at=datetime(2024, 3, 1, 10, 5, tzinfo=UTC),
        patient=patient,
        encounter=visit.model_copy(update={"attending": [Practitioner(id="C1", family="House")]}),
    )
    return to_fhir(event, source)


def test_put_upserts_every_resource_under_its_id(
    resources: list[dict[str, Any]], assert_valid: Validate
) -> None:
    bundle = transaction_bundle(resources)
    assert (bundle["resourceType"], bundle["type"]) == ("Bundle", "transaction")
    assert [e["request"] for e in bundle["entry"]] == [
        {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"} for r in resources
    ]
    assert [e["resource"] for e in bundle["entry"]] == resources
    assert transaction_bundle(resources, conditional="put") == bundle
    assert_valid(bundle)


def test_conditional_create_uses_the_first_identifier(
    resources: list[dict[str, Any]], assert_valid: Validate
) -> None:
    bundle = transaction_bundle(resources, conditional="if-none-exist")
    entries = {e["request"]["url"]: e for e in bundle["entry"]}
    patient = entries["Patient"]
    assert patient["request"] == {
        "method": "POST",
        "url": "Patient",
        "ifNoneExist": "identifier=urn:wardstream:id:GENHOSP|MRN1",
    }
    assert patient["fullUrl"] == f"urn:uuid:{resources[0]['id']}"
    assert "id" not in patient["resource"]
    assert "ifNoneExist" not in entries["Provenance"]["request"]
    assert_valid(bundle)


def test_conditional_create_points_references_at_fullurls(
    resources: list[dict[str, Any]],
) -> None:
    bundle = transaction_bundle(resources, conditional="if-none-exist")
    full_urls = {e["fullUrl"] for e in bundle["entry"]}
    encounter = next(e["resource"] for e in bundle["entry"] if e["request"]["url"] == "Encounter")
    assert encounter["subject"]["reference"] in full_urls
    assert encounter["location"][0]["location"]["reference"] in full_urls
    # Contained references stay local to the resource.
    assert encounter["participant"][0]["individual"]["reference"] == "#att1"
    provenance = bundle["entry"][-1]["resource"]
    assert {t["reference"] for t in provenance["target"]} <= full_urls
    # The input is not changed.
    assert resources[-2]["subject"]["reference"].startswith("Patient/")


def test_references_outside_the_bundle_become_conditional() -> None:
    observation = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"text": "x"},
        "encounter": {
            "reference": "Encounter/e1",
            "identifier": {"system": "urn:wardstream:id:GENHOSP", "value": "V1"},
        },
        "subject": {"reference": "Patient/p9"},
    }
    (entry,) = transaction_bundle([observation], conditional="if-none-exist")["entry"]
    assert entry["resource"]["encounter"]["reference"] == (
        "Encounter?identifier=urn:wardstream:id:GENHOSP|V1"
    )
    # Without an identifier there is nothing to search on: the reference stays.
    assert entry["resource"]["subject"] == {"reference": "Patient/p9"}
    put = transaction_bundle([observation])["entry"][0]["resource"]
    assert put["encounter"]["reference"] == "Encounter/e1"


def test_search_values_are_escaped() -> None:
    resource = {
        "resourceType": "Patient",
        "id": "p-1",
        "identifier": [{"system": "urn:x|y", "value": "A,B $C|D\\E"}],
    }
    entry = transaction_bundle([resource], conditional="if-none-exist")["entry"][0]
    condition = entry["request"]["ifNoneExist"]
    system, _, value = condition.removeprefix("identifier=").partition("|")
    assert unquote(system) == "urn:x\\|y"
    assert unquote(value) == "A\\,B \\$C\\|D\\\\E"
    assert " " not in condition
    # Ids that are not UUIDs still get a stable urn:uuid fullUrl.
    assert entry["fullUrl"].startswith("urn:uuid:")
    again = transaction_bundle([resource], conditional="if-none-exist")["entry"][0]
    assert again["fullUrl"] == entry["fullUrl"]


def test_identifier_without_system_matches_only_systemless() -> None:
    resource = {"resourceType": "Patient", "id": "p", "identifier": [{"value": "123"}]}
    entry = transaction_bundle([resource], conditional="if-none-exist")["entry"][0]
    assert entry["request"]["ifNoneExist"] == "identifier=|123"


@pytest.mark.parametrize(
    "resource", [{"resourceType": "Patient"}, {"id": "x"}, {"resourceType": "Patient", "id": 3}]
)
def test_resources_need_type_and_id(resource: dict[str, Any]) -> None:
    with pytest.raises(FhirBundleError):
        transaction_bundle([resource])
    with pytest.raises(FhirBundleError):
        transaction_bundle([resource], conditional="if-none-exist")


def test_unknown_mode_is_refused(resources: list[dict[str, Any]]) -> None:
    with pytest.raises(FhirBundleError, match="conditional"):
        transaction_bundle(resources, conditional="patch")  # type: ignore[arg-type]
