"""to_fhir: canonical events → FHIR R4 resources (ids, Patient, Encounter, Location, Provenance)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from engine.types import Envelope
from pipelines.fhir_map import to_fhir
from schemas.events import (
    AdtAction,
    AdtEvent,
    BedLocation,
    Encounter,
    EncounterStatus,
    HumanName,
    Identifier,
    LocationEvent,
    Patient,
    Practitioner,
    Telecom,
)

Validate = Callable[[dict[str, Any]], None]
AT = datetime(2024, 3, 1, 10, 5, tzinfo=UTC)
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def of(resources: list[dict[str, Any]], resource_type: str) -> list[dict[str, Any]]:
    return [r for r in resources if r["resourceType"] == resource_type]


def beds(resources: list[dict[str, Any]]) -> dict[str, str | None]:
    """Bed PL → operationalStatus code."""
    found = {}
    for r in of(resources, "Location"):
        if r["physicalType"]["coding"][0]["code"] == "bd":
            found[r["identifier"][0]["value"]] = r.get("operationalStatus", {}).get("code")
    return found


def adt(action: AdtAction, patient: Patient, encounter: Encounter | None, **extra: Any) -> AdtEvent:
    return AdtEvent(
        action=action,
        trigger="A01",
        message_id="MSG0001",
        occurred_at=AT,
        patient=patient,
        encounter=encounter,
        **extra,
    )


def _values(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return [node, *(v for value in node.values() for v in _values(value))]
    if isinstance(node, list):
        return [node, *(v for value in node for v in _values(value))]
    return [node]


def test_ids_are_fhir_ids_and_json_has_no_empty_values(
    patient: Patient, visit: Encounter, source: Envelope, assert_valid: Validate
) -> None:
    resources = to_fhir(adt("admit", patient, visit), source)
    assert [r["resourceType"] for r in resources] == [
        "Patient",
        "Location",
        "Location",
        "Location",
        "Location",
        "Encounter",
        "Provenance",
    ]
    for resource in resources:
        assert FHIR_ID.fullmatch(resource["id"])
        assert_valid(resource)
        for value in _values(resource):
            assert value not in (None, [], {}, "")
    json.dumps(resources)


def test_same_message_twice_gives_identical_json(
    patient: Patient, visit: Encounter, source: Envelope
) -> None:
    first = to_fhir(adt("admit", patient, visit), source)
    again = to_fhir(adt("admit", patient.model_copy(), visit.model_copy()), source.model_copy())
    assert json.dumps(first) == json.dumps(again)


def test_ids_follow_source_identifiers(
    patient: Patient, visit: Encounter, source: Envelope
) -> None:
    admit = to_fhir(adt("admit", patient, visit), source)
    later = source.model_copy(update={"id": "env-2", "correlation_id": "MSG0002"})
    transfer = to_fhir(
        adt("transfer", patient, visit).model_copy(update={"message_id": "MSG2"}), later
    )
    assert of(admit, "Patient")[0]["id"] == of(transfer, "Patient")[0]["id"]
    assert of(admit, "Encounter")[0]["id"] == of(transfer, "Encounter")[0]["id"]
    assert of(admit, "Provenance")[0]["id"] != of(transfer, "Provenance")[0]["id"]
    other_authority = patient.model_copy(
        update={"identifiers": [Identifier(value="MRN1", authority="OTHER")]}
    )
    elsewhere = to_fhir(adt("admit", other_authority, visit), source)
    assert of(elsewhere, "Patient")[0]["id"] != of(admit, "Patient")[0]["id"]


def test_encounter_id_without_visit_number(patient: Patient, source: Envelope) -> None:
    admitted = Encounter(patient_class="I", admitted_at=AT)
    same_instant = Encounter(
        patient_class="I", admitted_at=AT.astimezone(timezone(timedelta(hours=2)))
    )

    def encounter_id(encounter: Encounter, message_id: str) -> str:
        event = adt("update", patient, encounter).model_copy(update={"message_id": message_id})
        return str(of(to_fhir(event, source), "Encounter")[0]["id"])

    assert encounter_id(admitted, "M1") == encounter_id(same_instant, "M2")
    unknown = Encounter(patient_class="I")
    assert encounter_id(unknown, "M1") == encounter_id(unknown, "M1")
    assert encounter_id(unknown, "M1") != encounter_id(unknown, "M2")


@pytest.mark.parametrize(
    ("authority", "system"),
    [
        ("GENHOSP", "https://h.example/id/GENHOSP"),
        ("St Mary's", "https://h.example/id/St%20Mary%27s"),
        ("2.16.840.1.113883.2.1", "urn:oid:2.16.840.1.113883.2.1"),
        ("https://fhir.nhs.uk/Id/nhs-number", "https://fhir.nhs.uk/Id/nhs-number"),
        (None, None),
    ],
)
def test_identifier_system_from_authority(
    authority: str | None, system: str | None, source: Envelope, assert_valid: Validate
) -> None:
    patient = Patient(identifiers=[Identifier(value="123", authority=authority)])
    resource = to_fhir(adt("update", patient, None), source, system_base="https://h.example/id/")[0]
    assert resource["identifier"] == [
        {"system": system, "value": "123"} if system else {"value": "123"}
    ]
    assert_valid(resource)


def test_patient_demographics(source: Envelope, assert_valid: Validate) -> None:
    patient = Patient(
        identifiers=[Identifier(value="MRN1", authority="GENHOSP", type="MR")],
        names=[
            HumanName(family="Doe", given=["Jane", "Q"], prefix="DR", suffix="JR", use="L"),
            HumanName(family="Roe", use="M"),
            HumanName(use="L"),
        ],
        sex="female",
        birth_date=datetime(1958, 7, 14, tzinfo=UTC).date(),
        telecom=[
            Telecom(system="phone", value="0113", use="WPN"),
            Telecom(system="email", value="a@b"),
        ],
        deceased=True,
    )
    resource = to_fhir(adt("update", patient, None), source)[0]
    assert resource["identifier"][0]["type"]["coding"] == [
        {
            "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
            "code": "MR",
            "display": "Medical record number",
        }
    ]
    assert resource["name"] == [
        {
            "use": "official",
            "family": "Doe",
            "given": ["Jane", "Q"],
            "prefix": ["DR"],
            "suffix": ["JR"],
        },
        {"use": "maiden", "family": "Roe"},
    ]
    assert resource["telecom"] == [
        {"system": "phone", "value": "0113", "use": "work"},
        {"system": "email", "value": "a@b"},
    ]
    assert (resource["gender"], resource["birthDate"]) == ("female", "1958-07-14")
    assert resource["deceasedBoolean"] is True
    assert resource["active"] is True
    died = patient.model_copy(update={"deceased_at": AT})
    resource = to_fhir(adt("update", died, None), source)[0]
    assert resource["deceasedDateTime"] == "2024-03-01T10:05:00Z"
    assert "deceasedBoolean" not in resource
    assert_valid(resource)


@pytest.mark.parametrize(
    ("action", "status", "expected", "location_status", "bed_status"),
    [
        ("admit", "in-progress", "in-progress", "active", "O"),
        ("admit", "unknown", "in-progress", "active", "O"),
        ("register", "arrived", "arrived", "active", "O"),
        ("preadmit", "unknown", "planned", "planned", None),
        ("preadmit", "in-progress", "planned", "planned", None),
        ("discharge", "in-progress", "finished", "completed", "U"),
        ("cancel_admit", "unknown", "cancelled", "completed", "U"),
        ("leave_out", "in-progress", "onleave", "reserved", "O"),
        ("leave_return", "in-progress", "in-progress", "active", "O"),
        ("update", "unknown", "in-progress", "active", "O"),
        ("cancel_discharge", "unknown", "in-progress", "active", "O"),
    ],
)
def test_status_and_bed_per_action(
    action: AdtAction,
    status: EncounterStatus,
    expected: str,
    location_status: str,
    bed_status: str | None,
    patient: Patient,
    visit: Encounter,
    source: Envelope,
) -> None:
    encounter = visit.model_copy(update={"status": status})
    resources = to_fhir(adt(action, patient, encounter), source)
    resource = of(resources, "Encounter")[0]
    assert resource["status"] == expected
    assert [entry["status"] for entry in resource["location"]] == [location_status]
    assert beds(resources) == {"4W^12^A^GENHOSP": bed_status}


@pytest.mark.parametrize(
    ("patient_class", "system", "code"),
    [
        ("I", "http://terminology.hl7.org/CodeSystem/v3-ActCode", "IMP"),
        ("O", "http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB"),
        ("E", "http://terminology.hl7.org/CodeSystem/v3-ActCode", "EMER"),
        ("P", "http://terminology.hl7.org/CodeSystem/v3-ActCode", "PRENC"),
        ("B", "http://terminology.hl7.org/CodeSystem/v2-0004", "B"),
        ("Z", "http://terminology.hl7.org/CodeSystem/v2-0004", "Z"),
        (None, "http://terminology.hl7.org/CodeSystem/v3-NullFlavor", "UNK"),
    ],
)
def test_encounter_class_from_patient_class(
    patient_class: str | None, system: str, code: str, patient: Patient, source: Envelope
) -> None:
    encounter = Encounter(patient_class=patient_class)
    resource = of(to_fhir(adt("update", patient, encounter), source), "Encounter")[0]
    assert (resource["class"]["system"], resource["class"]["code"]) == (system, code)


def test_patient_class_sets_status_when_the_message_does_not(
    patient: Patient, source: Envelope
) -> None:
    def status(patient_class: str | None, **fields: Any) -> str:
        encounter = Encounter(patient_class=patient_class, **fields)
        return str(of(to_fhir(adt("update", patient, encounter), source), "Encounter")[0]["status"])

    assert status("P") == "planned"
    assert status("U") == "unknown"
    assert status("O") == "in-progress"
    assert status(None) == "unknown"
    assert status("I", discharged_at=AT) == "finished"


def test_transfer_keeps_location_history(
    patient: Patient, visit: Encounter, source: Envelope
) -> None:
    moved = datetime(2024, 3, 2, 14, 30, tzinfo=timezone(timedelta(hours=1)))
    new_bed = BedLocation(ward="6N", room="2", bed="C", facility="GENHOSP")
    encounter = visit.model_copy(update={"location": new_bed, "prior_location": visit.location})
    event = adt("transfer", patient, encounter).model_copy(update={"occurred_at": moved})
    resources = to_fhir(event, source)
    history = of(resources, "Encounter")[0]["location"]
    assert [(e["status"], e["period"]) for e in history] == [
        ("active", {"start": "2024-03-02T14:30:00+01:00"}),
        ("completed", {"end": "2024-03-02T14:30:00+01:00"}),
    ]
    assert beds(resources) == {"6N^2^C^GENHOSP": "O", "4W^12^A^GENHOSP": "U"}
    by_id = {r["id"]: r for r in of(resources, "Location")}
    current = by_id[history[0]["location"]["reference"].removeprefix("Location/")]
    assert current["identifier"][0]["value"] == "6N^2^C^GENHOSP"
    room = by_id[current["partOf"]["reference"].removeprefix("Location/")]
    ward = by_id[room["partOf"]["reference"].removeprefix("Location/")]
    site = by_id[ward["partOf"]["reference"].removeprefix("Location/")]
    assert [r["physicalType"]["coding"][0]["code"] for r in (room, ward, site)] == [
        "ro",
        "wa",
        "si",
    ]
    assert "partOf" not in site


def test_update_does_not_free_the_prior_bed(
    patient: Patient, visit: Encounter, source: Envelope
) -> None:
    prior = BedLocation(ward="ED", bed="3")
    encounter = visit.model_copy(update={"prior_location": prior})
    resources = to_fhir(adt("update", patient, encounter), source)
    assert beds(resources) == {"4W^12^A^GENHOSP": "O", "ED^^3": None}
    completed = of(resources, "Encounter")[0]["location"][1]
    assert completed == {"location": completed["location"], "status": "completed"}


def test_discharge_ends_the_stay_and_frees_the_bed(
    patient: Patient, visit: Encounter, source: Envelope
) -> None:
    left = datetime(2024, 3, 5, 11, 0, tzinfo=UTC)
    encounter = visit.model_copy(
        update={"status": "finished", "discharged_at": left, "discharge_disposition": "01"}
    )
    resources = to_fhir(adt("discharge", patient, encounter), source)
    resource = of(resources, "Encounter")[0]
    assert resource["location"][0]["period"] == {"end": "2024-03-05T11:00:00Z"}
    assert resource["period"] == {"end": "2024-03-05T11:00:00Z"}
    assert resource["hospitalization"]["dischargeDisposition"]["coding"][0]["code"] == "01"
    assert beds(resources) == {"4W^12^A^GENHOSP": "U"}


def test_encounter_details(patient: Patient, visit: Encounter, source: Envelope) -> None:
    encounter = visit.model_copy(
        update={
            "attending": [Practitioner(id="C1", family="House", given=["G"]), Practitioner()],
            "service": "CAR",
            "admit_source": "7",
            "admitted_at": AT,
        }
    )
    resource = of(to_fhir(adt("admit", patient, encounter), source), "Encounter")[0]
    assert resource["contained"] == [
        {
            "resourceType": "Practitioner",
            "id": "att1",
            "identifier": [{"value": "C1"}],
            "name": [{"family": "House", "given": ["G"]}],
        }
    ]
    assert resource["participant"][0]["individual"] == {"reference": "#att1"}
    assert resource["participant"][0]["type"][0]["coding"][0]["code"] == "ATND"
    assert resource["serviceType"]["coding"][0]["code"] == "CAR"
    assert resource["hospitalization"]["admitSource"]["coding"][0]["code"] == "7"
    assert resource["identifier"][0]["type"]["text"] == "visit number"
    assert resource["subject"]["identifier"] == {
        "system": "urn:wardstream:id:GENHOSP",
        "value": "MRN1",
    }
    assert resource["period"] == {"start": "2024-03-01T10:05:00Z"}
    assert resource["location"][0]["period"] == {"start": "2024-03-01T10:05:00Z"}


def test_ward_only_location_has_no_bed_status(patient: Patient, source: Envelope) -> None:
    encounter = Encounter(patient_class="I", status="in-progress", location=BedLocation(ward="4W"))
    resources = to_fhir(adt("admit", patient, encounter), source)
    (ward,) = of(resources, "Location")
    assert "operationalStatus" not in ward
    assert (
        of(resources, "Encounter")[0]["location"][0]["location"]["reference"]
        == f"Location/{ward['id']}"
    )


def test_swap_beds_gives_two_encounters_and_two_occupied_beds(
    patient: Patient, visit: Encounter, source: Envelope, assert_valid: Validate
) -> None:
    bed_a = visit.location
    bed_b = BedLocation(ward="4W", room="12", bed="B", facility="GENHOSP")
    other = Patient(identifiers=[Identifier(value="MRN2", authority="GENHOSP")])
    event = adt(
        "swap_beds",
        patient,
        visit.model_copy(update={"location": bed_b, "prior_location": bed_a}),
        other_patient=other,
        other_encounter=Encounter(
            visit_number=Identifier(value="V2"), location=bed_a, prior_location=bed_b
        ),
    )
    resources = to_fhir(event, source)
    patients, encounters = of(resources, "Patient"), of(resources, "Encounter")
    assert len(patients) == 2
    assert len(encounters) == 2
    assert [e["subject"]["reference"] for e in encounters] == [
        f"Patient/{p['id']}" for p in patients
    ]
    assert beds(resources) == {"4W^12^B^GENHOSP": "O", "4W^12^A^GENHOSP": "O"}
    assert len({r["id"] for r in resources}) == len(resources)
    for resource in resources:
        assert_valid(resource)


def test_merge_links_both_records(
    patient: Patient, source: Envelope, assert_valid: Validate
) -> None:
    old = Identifier(value="MRN9", authority="GENHOSP")
    resources = to_fhir(adt("merge", patient, None, merged_identifiers=[old]), source)
    survivor, merged = of(resources, "Patient")
    assert survivor["active"] is True
    assert survivor["link"] == [
        {
            "other": {
                "reference": f"Patient/{merged['id']}",
                "identifier": {"system": "urn:wardstream:id:GENHOSP", "value": "MRN9"},
            },
            "type": "replaces",
        }
    ]
    assert merged["active"] is False
    assert merged["identifier"] == [{"system": "urn:wardstream:id:GENHOSP", "value": "MRN9"}]
    assert merged["link"][0]["type"] == "replaced-by"
    assert merged["link"][0]["other"]["reference"] == f"Patient/{survivor['id']}"
    for resource in resources:
        assert_valid(resource)


def test_location_event_writes_the_declared_level(source: Envelope, assert_valid: Validate) -> None:
    event = LocationEvent(
        trigger="Location",
        message_id="bed-1",
        occurred_at=AT,
        location=BedLocation(ward="4W", room="12", bed="C"),
        physical_type="bed",
        name="Bed C",
        status="inactive",
        operational_status="C",
    )
    resources = to_fhir(event, source)
    ward, room, bed_resource, provenance = resources
    assert (ward["name"], ward["status"], room["name"]) == ("4W", "active", "12")
    assert (bed_resource["name"], bed_resource["status"]) == ("Bed C", "inactive")
    assert bed_resource["operationalStatus"]["code"] == "C"
    assert provenance["activity"]["coding"][0]["code"] == "UPDATE"
    ward_event = event.model_copy(
        update={"physical_type": "ward", "location": BedLocation(ward="4W", room="12")}
    )
    (ward_only, _) = to_fhir(ward_event, source)
    assert (ward_only["name"], ward_only["operationalStatus"]["code"]) == ("Bed C", "C")
    for resource in resources:
        assert_valid(resource)


def test_provenance_records_source_and_targets(
    patient: Patient, visit: Encounter, source: Envelope
) -> None:
    resources = to_fhir(adt("admit", patient, visit), source)
    provenance = resources[-1]
    assert provenance["target"] == [
        {"reference": f"{r['resourceType']}/{r['id']}"} for r in resources[:-1]
    ]
    assert provenance["recorded"] == "2024-03-01T10:15:02Z"
    assert provenance["occurredDateTime"] == "2024-03-01T10:05:00Z"
    assert provenance["activity"]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/v2-0003",
        "code": "A01",
        "display": "ADT/ACK - Admit/visit notification",
    }
    author, assembler = provenance["agent"]
    assert author["who"]["display"] == "PAS"
    assert author["onBehalfOf"]["display"] == "GENHOSP"
    assert assembler["who"]["identifier"]["value"] == "adt-in"
    assert provenance["entity"] == [
        {
            "role": "source",
            "what": {"identifier": {"value": "MSG0001"}, "display": "HL7v2 message MSG0001"},
        }
    ]


def test_provenance_agents_without_headers(patient: Patient, source: Envelope) -> None:
    facility_only = source.model_copy(update={"headers": {"sending_facility": "RH^1.2.3^ISO"}})
    (agent, _) = to_fhir(adt("update", patient, None), facility_only)[-1]["agent"]
    assert agent["who"] == {
        "type": "Organization",
        "identifier": {"system": "urn:ietf:rfc:3986", "value": "urn:oid:1.2.3"},
        "display": "RH",
    }
    bare = source.model_copy(update={"headers": {}})
    agents = to_fhir(adt("update", patient, None), bare)[-1]["agent"]
    assert [a["type"]["coding"][0]["code"] for a in agents] == ["assembler"]


def test_fhir_sourced_events_get_a_data_operation(patient: Patient, source: Envelope) -> None:
    fhir_source = source.model_copy(update={"content_type": "application/fhir+json"})
    event = adt("update", patient, None).model_copy(update={"trigger": "Patient"})
    provenance = to_fhir(event, fhir_source)[-1]
    assert provenance["activity"]["coding"][0]["code"] == "UPDATE"
    assert provenance["entity"][0]["what"]["display"] == "FHIR resource MSG0001"
    admit = adt("admit", patient, None).model_copy(update={"trigger": "Encounter"})
    assert to_fhir(admit, fhir_source)[-1]["activity"]["coding"][0]["code"] == "CREATE"


@pytest.mark.parametrize(
    ("action", "has_end"),
    [("discharge", True), ("cancel_discharge", False), ("update", False)],
)
def test_encounter_period_ends_only_when_the_visit_has_ended(
    source: Envelope, patient: Patient, visit: Encounter, action: AdtAction, has_end: bool
) -> None:
    sent = visit.model_copy(update={"admitted_at": AT, "discharged_at": AT + timedelta(hours=2)})
    (encounter,) = of(to_fhir(adt(action, patient, sent), source), "Encounter")
    assert encounter["period"]["start"].startswith("2024-03-01T10:05")
    assert ("end" in encounter["period"]) is has_end
