"""The /fhir API of a real engine process over loopback HTTP: ingest of each
resource type and of Bundles, refusals as OperationOutcomes, conditional
create, read, search, the CapabilityStatement, Subscription notifications,
and the trip of ingested input through raw.fhir into canonical events."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from engine.bus import open_bus
from engine.fhir.api import MAX_BODY_BYTES
from engine.types import Envelope
from schemas.topics import EVENTS_ADT, EVENTS_OBS, RAW_FHIR
from tests.engine_process import EngineProcess

FHIR = {"content-type": "application/fhir+json"}
LOC_TYPE = "http://terminology.hl7.org/CodeSystem/location-physical-type"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProcess]:
    process = EngineProcess(tmp_path_factory.mktemp("fhir-api"))
    process.start()
    try:
        yield process
    finally:
        assert process.terminate() == 0, process.log_tail()


@pytest.fixture
def fhir(engine: EngineProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{engine.http}/fhir", timeout=10.0) as client:
        yield client


def mrn() -> str:
    return uuid.uuid4().hex[:12]


def patient(value: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:mrn", "value": value}],
        "name": [{"family": "Doe", "given": ["Jane"]}],
        "gender": "female",
        "birthDate": "1958-02-14",
        **extra,
    }


def encounter(patient_ref: str, ward_ref: str, start: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "status": "in-progress",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "subject": {"reference": patient_ref},
        "period": {"start": start},
        "location": [{"location": {"reference": ward_ref}, "status": "active"}],
        **extra,
    }


def ward(code: str) -> dict[str, Any]:
    return {
        "resourceType": "Location",
        "identifier": [{"system": "urn:ward", "value": code}],
        "name": f"Ward {code}",
        "status": "active",
        "physicalType": {"coding": [{"system": LOC_TYPE, "code": "wa"}]},
    }


def observation(patient_ref: str, when: str, value: float) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
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
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": patient_ref},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": "/min", "system": "http://unitsofmeasure.org"},
    }


def issue(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"].startswith("application/fhir+json")
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    return dict(body["issue"][0])


def test_capability_statement_lists_what_works(fhir: httpx.Client) -> None:
    response = fhir.get("/metadata")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    statement = CapabilityStatement.model_validate(response.json())
    assert (statement.fhirVersion, statement.kind) == ("4.0.1", "instance")
    (rest,) = statement.rest
    resources = {r.type: r for r in rest.resource}
    assert {"Patient", "Encounter", "Location", "Observation"} <= set(resources)
    encounter_params = {p.name: p.type for p in resources["Encounter"].searchParam}
    assert encounter_params == {
        "_id": "token",
        "identifier": "token",
        "patient": "reference",
        "subject": "reference",
        "date": "date",
        "location": "reference",
    }
    assert {i.code for i in resources["Observation"].interaction} == {
        "read",
        "search-type",
        "create",
        "update",
    }
    assert {i.code for i in rest.interaction} == {"transaction", "batch"}


@pytest.mark.parametrize(
    "resource",
    [
        patient("put-1"),
        ward("PUTW"),
        encounter("Patient/p-put", "Location/w-put", "2026-01-02T10:00:00Z"),
        observation("Patient/p-put", "2026-01-02T10:05:00Z", 72),
    ],
    ids=lambda r: r["resourceType"],
)
def test_put_each_resource_type_versions_it(fhir: httpx.Client, resource: dict[str, Any]) -> None:
    type_, id_ = resource["resourceType"], f"put-{uuid.uuid4().hex[:8]}"
    created = fhir.put(f"/{type_}/{id_}", json=resource, headers=FHIR)
    assert created.status_code == 201, created.text
    assert created.headers["location"].endswith(f"/fhir/{type_}/{id_}/_history/1")
    assert created.headers["etag"] == 'W/"1"'
    assert created.json()["meta"]["versionId"] == "1"

    again = fhir.put(f"/{type_}/{id_}", json=resource, headers=FHIR)
    assert (again.status_code, again.headers["etag"]) == (200, 'W/"1"')

    changed = fhir.put(f"/{type_}/{id_}", json={**resource, "language": "en-GB"}, headers=FHIR)
    assert (changed.status_code, changed.headers["etag"]) == (200, 'W/"2"')

    read = fhir.get(f"/{type_}/{id_}")
    assert read.status_code == 200
    assert read.headers["etag"] == 'W/"2"'
    assert read.headers["last-modified"].endswith(" GMT")
    body = read.json()
    assert (body["id"], body["language"], body["meta"]["versionId"]) == (id_, "en-GB", "2")


def test_post_creates_with_a_server_id(fhir: httpx.Client) -> None:
    value = mrn()
    created = fhir.post("/Patient", json=patient(value, id="ignored"), headers=FHIR)
    assert created.status_code == 201, created.text
    location = created.headers["location"]
    id_ = created.json()["id"]
    assert id_ != "ignored"
    assert location.endswith(f"/fhir/Patient/{id_}/_history/1")
    read = httpx.get(location.removesuffix("/_history/1"), timeout=5)
    assert read.json()["identifier"][0]["value"] == value


def test_if_none_exist_returns_the_match(fhir: httpx.Client) -> None:
    value = mrn()
    condition = {"If-None-Exist": f"identifier=urn:mrn|{value}", **FHIR}
    first = fhir.post("/Patient", json=patient(value), headers=condition)
    second = fhir.post("/Patient", json=patient(value, gender="male"), headers=condition)
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["gender"] == "female"
    search = fhir.get("/Patient", params={"identifier": f"urn:mrn|{value}"}).json()
    assert search["total"] == 1


@pytest.mark.parametrize(
    ("resource", "status", "code", "expression"),
    [
        (patient("bad", birthDate="1958-02-30"), 400, "value", "Patient.birthDate"),
        (
            encounter("Patient/p", "Location/w", "2026-01-02T10:00:00Z", status="admitted"),
            400,
            "value",
            "Encounter.status",
        ),
        (
            {k: v for k, v in observation("Patient/p", "2026-01-02", 1).items() if k != "code"},
            400,
            "required",
            "Observation.code",
        ),
        (patient("bad", gender="f"), 400, "value", "Patient.gender"),
        ({"resourceType": "Patient", "name": [{"family": "X"}]}, 422, None, "Patient.identifier"),
        (
            {k: v for k, v in ward("X").items() if k != "physicalType"},
            422,
            None,
            "Location.physicalType",
        ),
    ],
    ids=["birthDate", "encounter-status", "observation-code", "gender", "no-id", "no-level"],
)
def test_invalid_resources_are_refused_with_the_path(
    fhir: httpx.Client, resource: dict[str, Any], status: int, code: str | None, expression: str
) -> None:
    response = fhir.post(f"/{resource['resourceType']}", json=resource, headers=FHIR)
    assert response.status_code == status, response.text
    found = issue(response)
    assert found["severity"] == "error"
    assert expression in found["expression"]
    if code is not None:
        assert found["code"] == code


def test_protocol_errors_are_operation_outcomes(fhir: httpx.Client) -> None:
    unsupported = fhir.post("/Patient", content=b"<Patient/>", headers={"content-type": "text/xml"})
    assert (unsupported.status_code, issue(unsupported)["code"]) == (415, "not-supported")
    garbage = fhir.post("/Patient", content=b"{nope", headers=FHIR)
    assert (garbage.status_code, issue(garbage)["code"]) == (400, "structure")
    json_ok = fhir.post(
        "/Patient", json=patient(mrn()), headers={"content-type": "application/json"}
    )
    assert json_ok.status_code == 201
    unknown = fhir.get("/Medication")
    assert (unknown.status_code, issue(unknown)["code"]) == (404, "not-supported")
    missing = fhir.get(f"/Patient/{uuid.uuid4()}")
    assert (missing.status_code, issue(missing)["code"]) == (404, "not-found")
    mismatch = fhir.put("/Patient/a1", json=patient("x", id="b2"), headers=FHIR)
    assert mismatch.status_code == 400
    assert issue(mismatch)["expression"] == ["Patient.id"]
    wrong_type = fhir.put("/Patient/a1", json=ward("x"), headers=FHIR)
    assert wrong_type.status_code == 400
    bad_search = fhir.get("/Encounter", params={"name": "x"})
    assert bad_search.status_code == 400
    assert "unknown search parameter 'name'" in issue(bad_search)["diagnostics"]
    not_bundle = fhir.post("", json=patient("x"), headers=FHIR)
    assert not_bundle.status_code == 400
    huge = fhir.post("/Patient", content=b" " * (MAX_BODY_BYTES + 1), headers=FHIR)
    assert (huge.status_code, issue(huge)["code"]) == (413, "too-costly")


def transaction(value: str, ward_code: str) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:0b5e3c1e-0000-4000-8000-000000000001",
                "resource": patient(value),
                "request": {
                    "method": "POST",
                    "url": "Patient",
                    "ifNoneExist": f"identifier=urn:mrn|{value}",
                },
            },
            {
                "fullUrl": "urn:uuid:0b5e3c1e-0000-4000-8000-000000000002",
                "resource": encounter(
                    "urn:uuid:0b5e3c1e-0000-4000-8000-000000000001",
                    f"Location/{ward_code}",
                    "2026-01-03T08:00:00Z",
                    identifier=[{"system": "urn:visit", "value": f"V{value}"}],
                ),
                "request": {"method": "POST", "url": "Encounter"},
            },
            {
                "resource": {**ward(ward_code), "id": ward_code},
                "request": {"method": "PUT", "url": f"Location/{ward_code}"},
            },
        ],
    }


def test_transaction_resolves_references(fhir: httpx.Client) -> None:
    value, ward_code = mrn(), f"w{mrn()}"
    response = fhir.post("", json=transaction(value, ward_code), headers=FHIR)
    assert response.status_code == 200, response.text
    body = response.json()
    Bundle.model_validate(body)
    assert body["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in body["entry"]]
    assert statuses == ["201 Created", "201 Created", "201 Created"]
    patient_location = body["entry"][0]["response"]["location"]
    assert patient_location.startswith("Patient/")
    patient_id = patient_location.split("/")[1]
    encounters = fhir.get("/Encounter", params={"identifier": f"urn:visit|V{value}"}).json()
    assert encounters["total"] == 1
    stored = encounters["entry"][0]["resource"]
    assert stored["subject"]["reference"] == f"Patient/{patient_id}"

    # The same transaction again: the conditional create matches, the PUT is unchanged.
    again = fhir.post("", json=transaction(value, ward_code), headers=FHIR).json()
    assert [e["response"]["status"] for e in again["entry"]][0::2] == ["200 OK", "200 OK"]
    assert again["entry"][0]["response"]["location"] == patient_location
    assert fhir.get("/Patient", params={"identifier": f"urn:mrn|{value}"}).json()["total"] == 1


def test_transaction_with_a_bad_entry_is_refused_whole(fhir: httpx.Client) -> None:
    value = mrn()
    bundle = transaction(value, "w-never")
    bundle["entry"][1]["resource"]["status"] = "admitted"
    response = fhir.post("", json=bundle, headers=FHIR)
    assert response.status_code == 400
    assert issue(response)["expression"] == ["Bundle.entry[1].resource.status"]
    assert fhir.get("/Patient", params={"identifier": f"urn:mrn|{value}"}).json()["total"] == 0
    assert fhir.get("/Location/w-never").status_code == 404


def test_batch_answers_entry_by_entry(fhir: httpx.Client) -> None:
    good, bad = mrn(), mrn()
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": patient(good), "request": {"method": "POST", "url": "Patient"}},
            {
                "resource": patient(bad, birthDate="yesterday"),
                "request": {"method": "POST", "url": "Patient"},
            },
            {"resource": patient(bad), "request": {"method": "DELETE", "url": "Patient/x"}},
        ],
    }
    response = fhir.post("", json=bundle, headers=FHIR)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["type"] == "batch-response"
    first, second, third = (e["response"] for e in body["entry"])
    assert first["status"] == "201 Created"
    assert second["status"] == "400 Bad Request"
    assert second["outcome"]["issue"][0]["expression"] == ["Bundle.entry[1].resource.birthDate"]
    assert third["status"] == "400 Bad Request"
    assert third["outcome"]["issue"][0]["code"] == "not-supported"
    assert fhir.get("/Patient", params={"identifier": f"urn:mrn|{good}"}).json()["total"] == 1
    assert fhir.get("/Patient", params={"identifier": f"urn:mrn|{bad}"}).json()["total"] == 0


def test_search_by_identifier_patient_date_location(fhir: httpx.Client) -> None:
    value, ward_a, ward_b = mrn(), f"a{mrn()}", f"b{mrn()}"
    pid = f"s-{value}"
    assert fhir.put(f"/Patient/{pid}", json=patient(value), headers=FHIR).status_code == 201
    ref = f"Patient/{pid}"
    for id_, ward_code, start, end in [
        ("e1", ward_a, "2025-12-30T08:00:00Z", "2025-12-31T12:00:00Z"),
        ("e2", ward_b, "2026-01-03T08:00:00Z", None),
        ("e3", ward_a, "2026-01-04T08:00:00Z", None),
    ]:
        resource = encounter(ref, f"Location/{ward_code}", start)
        if end is not None:
            resource.update(status="finished", period={"start": start, "end": end})
            resource["location"][0]["status"] = "completed"
        put = fhir.put(f"/Encounter/{id_}-{value}", json=resource, headers=FHIR)
        assert put.status_code == 201, put.text
    fhir.put(
        f"/Observation/o-{value}", json=observation(ref, "2026-01-03T09:00:00Z", 90), headers=FHIR
    )

    def ids(type_: str, **params: str) -> list[str]:
        body = fhir.get(f"/{type_}", params=params).json()
        assert body["type"] == "searchset"
        return [e["resource"]["id"].split("-")[0] for e in body["entry"]]

    assert ids("Patient", identifier=f"urn:mrn|{value}") == ["s"]
    assert ids("Encounter", patient=pid) == ["e1", "e2", "e3"]
    assert ids("Encounter", patient=pid, date="ge2026-01-01") == ["e2", "e3"]
    assert ids("Encounter", patient=pid, location=ward_a) == ["e1", "e3"]
    assert ids("Encounter", location=f"Location/{ward_b}") == ["e2"]
    assert ids("Observation", patient=ref, date="2026-01-03") == ["o"]
    assert ids("Observation", patient=ref, date="lt2026-01-03") == []

    page = fhir.get("/Encounter", params={"patient": pid, "_count": "2"}).json()
    assert (page["total"], len(page["entry"])) == (3, 2)
    links = {link["relation"]: link["url"] for link in page["link"]}
    assert links["self"].endswith(f"/fhir/Encounter?patient={pid}&_count=2")
    rest = httpx.get(links["next"], timeout=5).json()
    assert [e["resource"]["id"].split("-")[0] for e in rest["entry"]] == ["e3"]
    assert "next" not in {link["relation"] for link in rest["link"]}


def notification(kind: str, *resources: dict[str, Any]) -> dict[str, Any]:
    status = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "subscription", "valueReference": {"reference": "Subscription/s1"}},
            {"name": "status", "valueCode": "active"},
            {"name": "type", "valueCode": kind},
        ],
    }
    entries = [{"fullUrl": "urn:uuid:5ab9f0e4-0000-4000-8000-00000000000a", "resource": status}]
    for resource in resources:
        url = f"http://ehr/fhir/{resource['resourceType']}/{resource['id']}"
        entries.append(
            {
                "fullUrl": url,
                "resource": resource,
                "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"},
                "response": {"status": "200"},
            }
        )
    return {"resourceType": "Bundle", "type": "history", "entry": entries}


def test_subscription_hook(fhir: httpx.Client) -> None:
    heartbeat = fhir.post("/$subscription-hook", json=notification("heartbeat"), headers=FHIR)
    assert heartbeat.status_code == 200
    assert issue(heartbeat)["severity"] == "information"

    value = mrn()
    pid = f"sub-{value}"
    carried = [
        patient(value, id=pid),
        {
            **encounter(f"Patient/{pid}", "Location/w-sub", "2026-01-05T09:00:00Z"),
            "id": f"e-{value}",
        },
    ]
    event = fhir.post(
        "/$subscription-hook", json=notification("event-notification", *carried), headers=FHIR
    )
    assert event.status_code == 200, event.text
    assert "2 resources stored" in issue(event)["diagnostics"]
    assert fhir.get(f"/Patient/{pid}").status_code == 200
    assert fhir.get("/Encounter", params={"patient": pid}).json()["total"] == 1

    plain = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": patient(mrn(), id=f"plain-{value}")}, {"fullUrl": "Patient/x"}],
    }
    answer = fhir.post("/$subscription-hook", json=plain, headers=FHIR)
    assert answer.status_code == 200
    body = answer.json()
    assert "1 resources stored" in body["issue"][0]["diagnostics"]
    assert body["issue"][1]["severity"] == "warning"
    assert fhir.get(f"/Patient/plain-{value}").status_code == 200

    invalid = notification("event-notification", patient(mrn(), id="x1", gender="f"))
    refused = fhir.post("/$subscription-hook", json=invalid, headers=FHIR)
    assert refused.status_code == 400
    assert issue(refused)["expression"] == ["Bundle.entry[1].resource.gender"]


async def _records(bus_path: Path, topic: str) -> list[Envelope]:
    bus = open_bus(f"sqlite:///{bus_path}")
    await bus.start()
    try:
        out: list[Envelope] = []
        for partition in range(await bus.partitions_for(topic)):
            records = await bus.read(topic, partition, 0, 10_000)
            out += [Envelope.from_bytes(r.value) for r in records]
        return out
    finally:
        await bus.stop()


def test_ingest_goes_through_raw_fhir_to_canonical_events(
    engine: EngineProcess, fhir: httpx.Client
) -> None:
    value = mrn()
    pid = f"ev-{value}"
    fhir.put(f"/Patient/{pid}", json=patient(value), headers=FHIR)
    fhir.put(
        f"/Observation/obs-{value}",
        json=observation(f"Patient/{pid}", "2026-01-05T09:30:00Z", 101),
        headers=FHIR,
    )
    bus_path = engine.data_dir / "bus.db"

    def mine(envelopes: list[Envelope]) -> list[Envelope]:
        return [e for e in envelopes if value in e.payload]

    raw = mine(asyncio.run(_records(bus_path, RAW_FHIR)))
    assert [e.headers["fhir.interaction"] for e in raw] == ["update", "update"]
    assert raw[0].content_type == "application/fhir+json"
    assert raw[0].correlation_id == f"Patient/{pid}"
    deadline = time.monotonic() + 10
    while True:
        adt = mine(asyncio.run(_records(bus_path, EVENTS_ADT)))
        obs = mine(asyncio.run(_records(bus_path, EVENTS_OBS)))
        if (adt and obs) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert [e.trail[-1].step_id for e in adt + obs] == ["normalize.fhir", "normalize.fhir"]
    assert '"kind":"obs"' in obs[0].payload
    assert '"value_number":101.0' in obs[0].payload


def test_resent_updates_are_appended_once(engine: EngineProcess, fhir: httpx.Client) -> None:
    value = mrn()
    first, changed = patient(value), patient(value, gender="male")
    for body in (first, first, changed, first, first):
        assert fhir.put(f"/Patient/re-{value}", json=body, headers=FHIR).status_code in (200, 201)
    raw = [
        e for e in asyncio.run(_records(engine.data_dir / "bus.db", RAW_FHIR)) if value in e.payload
    ]
    # first, changed, first again: each a new version; the two resends add nothing.
    assert ['"male"' in e.payload for e in raw] == [False, True, False]
    assert fhir.get(f"/Patient/re-{value}").headers["etag"] == 'W/"3"'


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProcess]:
    """An engine with a token, and with FHIR validation on ingest off."""
    process = EngineProcess(tmp_path_factory.mktemp("fhir-token"))
    process.extra = {
        "http": {"host": "127.0.0.1", "port": process.http_port, "token": "t0ken"},
        "fhir": {"validate_on_ingest": False},
    }
    process.start()
    try:
        yield process
    finally:
        assert process.terminate() == 0, process.log_tail()


def test_token_guards_everything_but_metadata(secured: EngineProcess) -> None:
    base = f"{secured.http}/fhir"
    assert httpx.get(f"{base}/metadata", timeout=5).status_code == 200
    denied = httpx.get(f"{base}/Patient", timeout=5)
    assert denied.status_code == 401
    assert denied.headers["www-authenticate"] == "Bearer"
    assert issue(denied)["code"] == "login"
    wrong = httpx.put(
        f"{base}/Patient/p1",
        json=patient("1"),
        headers={**FHIR, "authorization": "Bearer nope"},
        timeout=5,
    )
    assert wrong.status_code == 401
    allowed = httpx.get(f"{base}/Patient", headers={"authorization": "Bearer t0ken"}, timeout=5)
    assert allowed.status_code == 200


def test_validation_on_ingest_can_be_off(secured: EngineProcess) -> None:
    auth = {**FHIR, "authorization": "Bearer t0ken"}
    # Not valid R4 (an unknown element), but it still maps to canonical events.
    loose = patient(mrn(), favouriteColour="blue")
    accepted = httpx.post(f"{secured.http}/fhir/Patient", json=loose, headers=auth, timeout=5)
    assert accepted.status_code == 201, accepted.text
    # The mapping still refuses what cannot become an event.
    nameless = {"resourceType": "Patient", "name": [{"family": "X"}]}
    refused = httpx.post(f"{secured.http}/fhir/Patient", json=nameless, headers=auth, timeout=5)
    assert refused.status_code == 422


def test_unknown_elements_are_refused_when_validating(fhir: httpx.Client) -> None:
    response = fhir.post("/Patient", json=patient(mrn(), favouriteColour="blue"), headers=FHIR)
    assert response.status_code == 400
    assert issue(response)["expression"] == ["Patient.favouriteColour"]
