"""from_fhir: Patient, Encounter, Location, Observation and Bundles → canonical events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from pipelines.fhir_map import FhirInputError, from_fhir
from pipelines.fhir_map.bundle import if_none_exist
from schemas.events import AdtEvent, BedLocation, Identifier, LocationEvent, ObservationEvent

RECEIVED = datetime(2024, 3, 9, 8, 0, tzinfo=UTC)
PHYSICAL = "http://terminology.hl7.org/CodeSystem/location-physical-type"
ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"

PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "p1",
    "meta": {"lastUpdated": "2024-03-01T09:00:00+00:00"},
    "identifier": [
        {
            "type": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}
                ]
            },
            "system": "urn:wardstream:id:GENHOSP",
            "value": "MRN1",
        },
        {"system": "urn:oid:2.16.840.1.113883.2.1.4.1", "value": "9434765919"},
        {"system": "https://fhir.nhs.uk/Id/other", "value": "X"},
        {"system": "urn:wardstream:id:NOVALUE"},
    ],
    "name": [
        {"use": "official", "family": "Doe", "given": ["Jane"], "prefix": ["Mrs"]},
        {"use": "temp"},
    ],
    "telecom": [{"system": "sms", "value": "07700", "use": "mobile"}, {"system": "phone"}],
    "gender": "female",
    "birthDate": "1958-07-14",
    "address": [{"use": "home", "line": ["1 High St"], "city": "Leeds", "postalCode": "LS1"}],
    "deceasedDateTime": "2024-03-05T10:40:00+00:00",
}


def one(resource: dict[str, Any], **kwargs: Any) -> Any:
    (event,) = from_fhir(resource, received_at=RECEIVED, **kwargs)
    return event


def encounter(**fields: Any) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "id": "e1",
        "status": "in-progress",
        "class": {"system": ACT, "code": "IMP"},
        "subject": {"reference": "Patient/p1"},
        **fields,
    }


def location(code: str, level: str, **fields: Any) -> dict[str, Any]:
    return {
        "resourceType": "Location",
        "id": f"loc-{code}",
        "name": code,
        "physicalType": {"coding": [{"system": PHYSICAL, "code": level}]},
        **fields,
    }


def test_patient_becomes_a_demographics_update() -> None:
    event = one(PATIENT)
    assert isinstance(event, AdtEvent)
    assert (event.action, event.trigger, event.message_id) == ("update", "Patient", "p1")
    assert event.occurred_at == datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
    patient = event.patient
    assert patient.identifiers == [
        Identifier(value="MRN1", authority="GENHOSP", type="MR"),
        Identifier(value="9434765919", authority="2.16.840.1.113883.2.1.4.1"),
        Identifier(value="X", authority="https://fhir.nhs.uk/Id/other"),
    ]
    assert [(n.family, n.given, n.prefix, n.use) for n in patient.names] == [
        ("Doe", ["Jane"], "Mrs", "L")
    ]
    assert [(t.system, t.value, t.use) for t in patient.telecom] == [("other", "07700", "PRS")]
    assert (patient.sex, str(patient.birth_date)) == ("female", "1958-07-14")
    assert [(a.lines, a.city, a.postal_code, a.use) for a in patient.addresses] == [
        (["1 High St"], "Leeds", "LS1", "H")
    ]
    assert patient.deceased is True
    assert patient.deceased_at == datetime(2024, 3, 5, 10, 40, tzinfo=UTC)


def test_patient_without_identifiers_is_known_by_id() -> None:
    event = one({"resourceType": "Patient", "id": "abc"})
    assert event.patient.identifiers == [Identifier(value="abc", authority="fhir")]
    assert event.occurred_at == RECEIVED
    with pytest.raises(FhirInputError) as raised:
        from_fhir({"resourceType": "Patient", "gender": "male"}, received_at=RECEIVED)
    assert [(i.code, i.expression) for i in raised.value.issues] == [
        ("required", "Patient.identifier")
    ]


def test_resource_without_id_gets_a_content_digest() -> None:
    first = one({"resourceType": "Patient", "identifier": [{"value": "1"}]})
    second = one({"resourceType": "Patient", "identifier": [{"value": "1"}]})
    other = one({"resourceType": "Patient", "identifier": [{"value": "2"}]})
    assert first.message_id == second.message_id != other.message_id
    assert first.message_id.startswith("sha1-")


@pytest.mark.parametrize(
    ("status", "locations", "action", "canonical"),
    [
        ("in-progress", [("active", "A")], "admit", "in-progress"),
        ("in-progress", [("completed", "A"), ("active", "B")], "transfer", "in-progress"),
        ("in-progress", [], "update", "in-progress"),
        ("finished", [("completed", "A")], "discharge", "finished"),
        ("planned", [("planned", "A")], "preadmit", "planned"),
        ("cancelled", [], "cancel_admit", "cancelled"),
        ("entered-in-error", [], "cancel_admit", "cancelled"),
        ("onleave", [("reserved", "A")], "leave_out", "onleave"),
        ("arrived", [("active", "A")], "register", "arrived"),
        ("triaged", [], "register", "arrived"),
        ("unknown", [], "update", "unknown"),
    ],
)
def test_encounter_action_from_status_and_history(
    status: str, locations: list[tuple[str, str]], action: str, canonical: str
) -> None:
    entries = [
        {"location": {"reference": f"Location/{code}", "display": code}, "status": state}
        for state, code in locations
    ]
    event = one(encounter(status=status, location=entries))
    assert (event.action, event.encounter.status) == (action, canonical)
    assert event.trigger == "Encounter"


def test_encounter_fields() -> None:
    resource = encounter(
        contained=[
            {
                "resourceType": "Practitioner",
                "id": "d1",
                "identifier": [{"value": "C1"}],
                "name": [{"family": "House", "given": ["Greg"]}],
            },
        ],
        identifier=[
            {"value": "ACC1"},
            {
                "type": {"coding": [{"code": "VN"}]},
                "system": "urn:wardstream:id:GENHOSP",
                "value": "V1",
            },
        ],
        serviceType={
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/service-type", "code": "382"}
            ]
        },
        participant=[
            {"type": [{"coding": [{"code": "ATND"}]}], "individual": {"reference": "#d1"}},
            {
                "type": [{"coding": [{"code": "ATND"}]}],
                "individual": {"identifier": {"value": "C2"}},
            },
            {"type": [{"coding": [{"code": "REF"}]}], "individual": {"reference": "#d1"}},
        ],
        period={"start": "2024-03-01T10:05:00Z"},
        hospitalization={
            "admitSource": {"coding": [{"code": "7"}]},
            "dischargeDisposition": {"coding": [{"code": "home"}]},
        },
        location=[
            {
                "location": {"reference": "Location/x", "display": "4W"},
                "status": "active",
                "period": {"start": "2024-03-01T10:06:00Z"},
            }
        ],
    )
    event = one(resource)
    visit = event.encounter
    assert visit.visit_number == Identifier(value="V1", authority="GENHOSP", type="VN")
    assert visit.patient_class == "I"
    assert visit.service == "MED"
    assert [(d.id, d.family, d.given) for d in visit.attending] == [
        ("C1", "House", ["Greg"]),
        ("C2", None, []),
    ]
    assert (visit.admit_source, visit.discharge_disposition) == ("7", "home")
    assert visit.admitted_at == datetime(2024, 3, 1, 10, 5, tzinfo=UTC)
    assert visit.location == BedLocation(ward="4W")
    assert event.occurred_at == visit.admitted_at


@pytest.mark.parametrize(
    ("klass", "expected"),
    [
        ({"system": ACT, "code": "EMER"}, "E"),
        ({"system": ACT, "code": "ACUTE"}, "I"),
        ({"system": ACT, "code": "WHAT"}, None),
        ({"system": "http://terminology.hl7.org/CodeSystem/v2-0004", "code": "B"}, "B"),
        ({"system": "http://terminology.hl7.org/CodeSystem/v3-NullFlavor", "code": "UNK"}, None),
        ({"code": "AMB"}, "O"),
        ({"code": "R"}, "R"),
    ],
)
def test_encounter_class(klass: dict[str, str], expected: str | None) -> None:
    assert one(encounter(**{"class": klass})).encounter.patient_class == expected


def test_transfer_history_in_any_order_gives_event_time() -> None:
    resource = encounter(
        location=[
            {
                "location": {"reference": "Location/a", "display": "4W"},
                "status": "completed",
                "period": {"start": "2024-03-01T10:00:00Z", "end": "2024-03-02T14:30:00+01:00"},
            },
            {
                "location": {"reference": "Location/b", "display": "6N"},
                "status": "active",
                "period": {"start": "2024-03-02T14:30:00+01:00"},
            },
        ]
    )
    event = one(resource)
    assert event.action == "transfer"
    assert (event.encounter.location.ward, event.encounter.prior_location.ward) == ("6N", "4W")
    assert event.occurred_at == datetime(2024, 3, 2, 13, 30, tzinfo=UTC)


def test_finished_encounter_was_last_where_it_ended_latest() -> None:
    resource = encounter(
        status="finished",
        period={"start": "2024-03-01T10:00:00Z", "end": "2024-03-05T11:00:00Z"},
        location=[
            {
                "location": {"display": "4W"},
                "status": "completed",
                # Later as text, earlier as an instant (07:00Z).
                "period": {"end": "2024-03-05T12:00:00+05:00"},
            },
            {
                "location": {"display": "6N"},
                "status": "completed",
                "period": {"end": "2024-03-05T11:00:00Z"},
            },
        ],
    )
    event = one(resource)
    assert event.action == "discharge"
    assert (event.encounter.location.ward, event.encounter.prior_location.ward) == ("6N", "4W")
    assert event.occurred_at == datetime(2024, 3, 5, 11, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("subject", "contained", "identifier"),
    [
        (
            {"reference": "#pt"},
            [{**PATIENT, "id": "pt"}],
            Identifier(value="MRN1", authority="GENHOSP", type="MR"),
        ),
        (
            {"identifier": {"system": "urn:wardstream:id:RH", "value": "7"}},
            None,
            Identifier(value="7", authority="RH"),
        ),
        ({"reference": "Patient/42"}, None, Identifier(value="42", authority="fhir")),
        (
            {"reference": "https://ehr.example/fhir/Patient/42/_history/3"},
            None,
            Identifier(value="42", authority="fhir"),
        ),
    ],
)
def test_subject_patient(
    subject: dict[str, Any], contained: list[dict[str, Any]] | None, identifier: Identifier
) -> None:
    fields: dict[str, Any] = {"subject": subject}
    if contained:
        fields["contained"] = contained
    event = one(encounter(**fields))
    assert event.patient.identifiers[0] == identifier
    if contained:
        assert event.patient.names[0].family == "Doe"


@pytest.mark.parametrize(
    ("subject", "code"),
    [
        (None, "required"),
        ({"reference": "Group/1"}, "not-supported"),
        ({"reference": "#missing"}, "invalid"),
        ({"display": "somebody"}, "invalid"),
    ],
)
def test_subject_problems(subject: dict[str, Any] | None, code: str) -> None:
    resource = encounter(subject=subject) if subject else encounter()
    if subject is None:
        del resource["subject"]
    with pytest.raises(FhirInputError) as raised:
        from_fhir(resource, received_at=RECEIVED)
    assert [(i.code, i.expression) for i in raised.value.issues] == [(code, "Encounter.subject")]


def test_location_chain_resolved_within_a_bundle() -> None:
    site = location("GENHOSP", "si")
    ward = location("4W", "wa", partOf={"reference": "Location/loc-GENHOSP"})
    room = location("12", "ro", partOf={"reference": "Location/loc-4W"})
    bed = location(
        "A",
        "bd",
        partOf={"reference": "Location/loc-12"},
        operationalStatus={"system": "http://terminology.hl7.org/CodeSystem/v2-0116", "code": "H"},
        status="suspended",
        meta={"lastUpdated": "2024-03-01T07:00:00Z"},
    )
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in (bed, room, ward, site)],
    }
    events = from_fhir(bundle, received_at=RECEIVED)
    assert all(isinstance(e, LocationEvent) for e in events)
    bed_event, room_event, ward_event = events
    assert bed_event.location == BedLocation(ward="4W", room="12", bed="A", facility="GENHOSP")
    assert (bed_event.physical_type, bed_event.status, bed_event.operational_status) == (
        "bed",
        "suspended",
        "H",
    )
    assert bed_event.occurred_at == datetime(2024, 3, 1, 7, 0, tzinfo=UTC)
    assert room_event.location == BedLocation(ward="4W", room="12", facility="GENHOSP")
    assert (ward_event.physical_type, ward_event.name) == ("ward", "4W")


def test_standalone_location_uses_identifiers_and_names() -> None:
    own = {"system": "urn:wardstream:id:location", "value": "4W^12^A^GENHOSP"}
    assert one(location("A", "bd", identifier=[own])).location.room == "12"
    no_type = {
        k: v for k, v in location("A", "bd", identifier=[own]).items() if k != "physicalType"
    }
    assert one(no_type).physical_type == "bed"
    room = location("12", "ro", partOf={"display": "4W"}, identifier=[{"value": "R12"}])
    assert one(room).location == BedLocation(ward="4W", room="R12")
    parent_pl = {"identifier": {"system": "urn:wardstream:id:location", "value": "4W^12^^RH"}}
    assert one(location("B", "bd", partOf=parent_pl)).location == BedLocation(
        ward="4W", room="12", bed="B", facility="RH"
    )
    assert from_fhir(location("GENHOSP", "si"), received_at=RECEIVED) == []
    assert from_fhir(location("L1", "lvl"), received_at=RECEIVED) == []


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        (location("A", "bd"), ("required", "Location.partOf")),
        ({"resourceType": "Location", "name": "A"}, ("required", "Location.physicalType")),
    ],
)
def test_location_problems(resource: dict[str, Any], expected: tuple[str, str]) -> None:
    with pytest.raises(FhirInputError) as raised:
        from_fhir(resource, received_at=RECEIVED)
    assert [(i.code, i.expression) for i in raised.value.issues] == [expected]


def test_unsupported_resource_type() -> None:
    with pytest.raises(FhirInputError) as raised:
        from_fhir({"resourceType": "Practitioner", "id": "d1"}, received_at=RECEIVED)
    assert [(i.code, i.expression) for i in raised.value.issues] == [
        ("not-supported", "Practitioner")
    ]


def test_input_is_validated_unless_told_otherwise() -> None:
    bad = encounter(status="bogus")
    with pytest.raises(FhirInputError) as raised:
        from_fhir(bad, received_at=RECEIVED)
    assert [(i.code, i.expression) for i in raised.value.issues] == [("value", "Encounter.status")]
    assert one(bad, validate=False).action == "update"


def test_received_at_must_be_aware() -> None:
    with pytest.raises(ValueError, match="aware"):
        from_fhir(PATIENT, received_at=datetime(2024, 3, 9))  # noqa: DTZ001


def test_observation_in_a_bundle_resolves_its_patient_and_visit() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:0d1c9b9e-8b0c-4f4c-9f0f-1a2b3c4d5e6f",
                "resource": PATIENT,
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "fullUrl": "urn:uuid:1d1c9b9e-8b0c-4f4c-9f0f-1a2b3c4d5e6f",
                "resource": encounter(
                    identifier=[{"value": "V9"}],
                    subject={"reference": "urn:uuid:0d1c9b9e-8b0c-4f4c-9f0f-1a2b3c4d5e6f"},
                ),
                "request": {"method": "POST", "url": "Encounter"},
            },
            {
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                    "subject": {"reference": "urn:uuid:0d1c9b9e-8b0c-4f4c-9f0f-1a2b3c4d5e6f"},
                    "encounter": {"reference": "urn:uuid:1d1c9b9e-8b0c-4f4c-9f0f-1a2b3c4d5e6f"},
                    "valueQuantity": {
                        "value": 88,
                        "unit": "/min",
                        "system": "http://unitsofmeasure.org",
                        "code": "/min",
                    },
                },
                "request": {"method": "POST", "url": "Observation"},
            },
            {"request": {"method": "DELETE", "url": "Observation/old"}},
        ],
    }
    patient_event, encounter_event, obs_event = from_fhir(bundle, received_at=RECEIVED)
    assert encounter_event.patient == patient_event.patient
    assert isinstance(obs_event, ObservationEvent)
    assert obs_event.patient == patient_event.patient
    assert obs_event.encounter.visit_number == Identifier(value="V9")
    (result,) = obs_event.observations
    assert (result.code.system, result.code.code) == ("LN", "8867-4")
    assert (result.value_type, result.value_number, result.unit, result.unit_system) == (
        "NM",
        88.0,
        "/min",
        "UCUM",
    )


@pytest.mark.parametrize(
    "bundle_type",
    ["batch", "transaction", "collection", "searchset", "history", "subscription-notification"],
)
def test_bundle_types(bundle_type: str) -> None:
    entries = [{"resource": PATIENT}, {"resource": {"resourceType": "Practitioner", "id": "d"}}]
    if bundle_type == "subscription-notification":
        status = {
            "resourceType": "SubscriptionStatus",
            "status": "active",
            "type": "event-notification",
            "subscription": {"reference": "Subscription/1"},
        }
        entries = [{"resource": status}, *entries]
    events = from_fhir(
        {"resourceType": "Bundle", "type": bundle_type, "entry": entries}, received_at=RECEIVED
    )
    assert [(e.kind, e.trigger) for e in events] == [("adt", "Patient")]


def test_nested_bundle_and_refused_bundle_type() -> None:
    inner = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": PATIENT}]}
    outer = {"resourceType": "Bundle", "type": "batch", "entry": [{"resource": inner}]}
    assert len(from_fhir(outer, received_at=RECEIVED)) == 1
    with pytest.raises(FhirInputError) as raised:
        from_fhir({"resourceType": "Bundle", "type": "document"}, received_at=RECEIVED)
    assert [(i.code, i.expression) for i in raised.value.issues] == [
        ("not-supported", "Bundle.type")
    ]


def test_bundle_errors_are_collected_per_entry() -> None:
    no_subject = {k: v for k, v in encounter().items() if k != "subject"}
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": PATIENT},
            {"resource": no_subject},
            {"resource": location("A", "bd")},
        ],
    }
    with pytest.raises(FhirInputError) as raised:
        from_fhir(bundle, received_at=RECEIVED)
    assert [(i.code, i.expression) for i in raised.value.issues] == [
        ("required", "Bundle.entry[1].resource.subject"),
        ("required", "Bundle.entry[2].resource.partOf"),
    ]


def test_conditional_references_name_the_patient_and_visit() -> None:
    query = if_none_exist(
        {"identifier": [{"system": "urn:wardstream:id:GEN|HOSP", "value": "A,1 $x"}]}
    )
    event = one(encounter(subject={"reference": f"Patient?{query}"}))
    assert event.patient.identifiers == [Identifier(value="A,1 $x", authority="GEN|HOSP")]
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "pulse"},
        "subject": {"reference": "Patient?identifier=|42"},
        "encounter": {"reference": "Encounter?identifier=urn:wardstream:id:GENHOSP|V1"},
    }
    event = one(obs)
    assert event.patient.identifiers == [Identifier(value="42")]
    assert event.encounter.visit_number == Identifier(value="V1", authority="GENHOSP")
    with pytest.raises(FhirInputError) as raised:
        from_fhir(encounter(subject={"reference": "Group?identifier=g|1"}), received_at=RECEIVED)
    assert [(i.code, i.expression) for i in raised.value.issues] == [
        ("not-supported", "Encounter.subject")
    ]
