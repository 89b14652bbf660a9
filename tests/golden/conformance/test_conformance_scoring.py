"""The conformance scorer on small hand-made pairs of FHIR renderings: what agrees,
what disagrees, what only one side has, and how resources pair without ids."""

from __future__ import annotations

from typing import Any

import pytest

from engine.conformance import FieldResult, Score, agrees, compare_fields, score
from engine.conformance._pairing import compare_bundles
from engine.conformance._quirks import LOCAL_TIME, SAME_WALL_CLOCK, classify
from engine.conformance._times import parse_fhir_time, same_time
from engine.conformance.scoring import Coded, Ident, SystemName

THEIRS = "http://example.com/v2-to-fhir-converter/"


def patient(pid: str, identifier: str = "MRN1", **fields: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "identifier": [{"value": identifier}], **fields}


def by_field(results: list[FieldResult]) -> dict[str, FieldResult]:
    return {r.field: r for r in results}


def test_an_agreeing_field_counts_as_compared_and_agreed():
    results = compare_bundles(
        [patient("ours-1", gender="female")], [patient("theirs-9", gender="female")]
    )
    gender = by_field(results)["gender"]
    assert (gender.status, gender.ours, gender.theirs) == ("agree", "female", "female")
    assert score(results) == Score(compared=2, agreed=2)  # the identifier and the gender


def test_a_disagreeing_field_is_listed_with_both_values():
    results = compare_bundles([patient("a", gender="male")], [patient("b", gender="female")])
    gender = by_field(results)["gender"]
    assert (gender.status, gender.ours, gender.theirs) == ("disagree", "male", "female")
    assert score(results) == Score(compared=2, agreed=1)
    assert score(results).score == 0.5


def test_a_field_only_one_side_has_is_counted_apart_from_the_score():
    results = compare_bundles(
        [patient("a", birthDate="1970-01-01")], [patient("b", address=[{"city": "Leeds"}])]
    )
    fields = by_field(results)
    assert fields["birthDate"].status == "ours_only"
    assert fields["address[1].city"].status == "theirs_only"
    assert score(results) == Score(compared=1, agreed=1, ours_only=1, theirs_only=1)


@pytest.mark.parametrize(
    ("ours", "theirs", "same"),
    [
        ("2015-02-08T11:34:19+01:10", "2015-02-08T15:54:19+05:30", True),
        ("2026-03-06T12:00:00Z", "2026-03-06T13:00:00+01:00", True),
        ("2026-03-06T12:00:00Z", "2026-03-06T12:00:00+01:00", False),
        ("2026-03-06T12:00:01Z", "2026-03-06T12:00:00Z", False),
        ("2026-03-06T12:00:00.250Z", "2026-03-06T12:00:00.25Z", True),
        # Coarser precision decides: the day as each side writes it, the minute.
        ("1999-07-02T00:00:00Z", "1999-07-02", True),
        ("1999-07-02T23:30:00-05:00", "1999-07-03", False),
        ("2026-03-06T12:00:59Z", "2026-03-06T12:00Z", True),
        ("1988", "1988-08-18", True),
        # A local time names no instant.
        ("2026-03-06T12:00:00Z", "2026-03-06T12:00:00", False),
        ("2026-03-06T12:00:00", "2026-03-06T12:00:00", True),
    ],
)
def test_instants_are_compared_as_points_in_time(ours: str, theirs: str, same: bool):
    first, second = parse_fhir_time(ours), parse_fhir_time(theirs)
    assert first is not None
    assert second is not None
    assert same_time(first, second) is same
    assert same_time(second, first) is same


def test_text_that_is_not_a_date_does_not_parse():
    assert parse_fhir_time("2021-02-30") is None
    assert parse_fhir_time("yesterday") is None


def test_timezone_equivalent_periods_agree_and_different_ones_do_not():
    def encounter(eid: str, start: str) -> dict[str, Any]:
        return {
            "resourceType": "Encounter",
            "id": eid,
            "status": "finished",
            "period": {"start": start},
        }

    same = compare_bundles(
        [encounter("a", "2015-02-08T11:34:19+01:10")],
        [encounter("b", "2015-02-08T15:54:19+05:30")],
    )
    assert by_field(same)["period.start"].status == "agree"
    later = compare_bundles(
        [encounter("a", "2015-02-08T11:34:19+01:10")],
        [encounter("b", "2015-02-08T15:54:20+05:30")],
    )
    assert by_field(later)["period.start"].status == "disagree"


def test_a_local_time_without_offset_disagrees_and_is_classified():
    result = compare_fields(
        "Encounter",
        "Encounter V1",
        {"period.start": parse_fhir_time("2026-03-06T12:00:00Z")},
        {"period.start": parse_fhir_time("2026-03-06T12:00:00")},
    )[0]
    assert result.status == "disagree"
    assert classify(result, "ADT^A01").quirk == SAME_WALL_CLOCK
    moved = compare_fields(
        "Encounter",
        "Encounter V1",
        {"period.start": parse_fhir_time("2026-03-06T12:00:00Z")},
        {"period.start": parse_fhir_time("2026-03-06T14:00:00")},
    )[0]
    assert classify(moved, "ADT^A01").quirk == LOCAL_TIME
    # A classification never turns a disagreement into an agreement.
    assert classify(moved, "ADT^A01").status == "disagree"


def test_resources_pair_by_meaning_not_by_id_or_order():
    ours = [
        {
            "resourceType": "Observation",
            "id": "x",
            "code": {"coding": [{"code": "8867-4"}]},
            "valueQuantity": {"value": 72, "unit": "/min"},
        },
        {
            "resourceType": "Observation",
            "id": "y",
            "code": {"coding": [{"code": "8310-5"}]},
            "valueQuantity": {"value": 37.1, "code": "Cel"},
        },
    ]
    theirs = [
        {
            "resourceType": "Observation",
            "id": "y",
            "code": {"coding": [{"code": "8310-5"}]},
            "valueQuantity": {"value": 37.1, "unit": "Cel"},
        },
        {
            "resourceType": "Observation",
            "id": "x",
            "code": {"coding": [{"code": "8867-4"}]},
            "valueQuantity": {"value": 72.0, "unit": "/min"},
        },
    ]
    results = compare_bundles(ours, theirs)
    assert {r.status for r in results} == {"agree"}
    assert {r.key for r in results} == {"Observation 8867-4#1", "Observation 8310-5#1"}


def test_a_value_of_another_type_disagrees():
    ours = [
        {
            "resourceType": "Observation",
            "id": "a",
            "code": {"coding": [{"code": "X"}]},
            "valueQuantity": {"value": 4},
        }
    ]
    theirs = [
        {
            "resourceType": "Observation",
            "id": "b",
            "code": {"coding": [{"code": "X"}]},
            "valueString": "4",
        }
    ]
    value = by_field(compare_bundles(ours, theirs))["value"]
    assert (value.status, value.ours, value.theirs) == ("disagree", "Quantity 4", 'string "4"')


def test_patients_without_a_shared_identifier_stay_apart():
    results = compare_bundles(
        [patient("a", "MRN1", gender="male")], [patient("b", "MRN2", gender="male")]
    )
    assert {r.status for r in results} == {"ours_only", "theirs_only"}
    assert score(results).compared == 0


def test_locations_compare_by_pl_components():
    ours = [
        {
            "resourceType": "Encounter",
            "id": "e",
            "identifier": [{"value": "V1"}],
            "location": [{"location": {"reference": "Location/bed"}, "status": "active"}],
        },
        {
            "resourceType": "Location",
            "id": "bed",
            "identifier": [{"system": "urn:wardstream:id:location", "value": "AMU^R1^B2^UCLH"}],
        },
    ]

    def theirs(bed: str) -> list[dict[str, Any]]:
        description = f"AMU--R1--{bed}--UCLH"
        return [
            {
                "resourceType": "Encounter",
                "id": "f",
                "identifier": [{"value": "V1"}],
                "location": [{"location": {"reference": "Location/poc"}, "status": "active"}],
            },
            {
                "resourceType": "Location",
                "id": "poc",
                "name": "AMU",
                "description": description,
                "physicalType": {"coding": [{"code": "lvl"}]},
            },
            {
                "resourceType": "Location",
                "id": "r",
                "name": "R1",
                "description": description,
                "physicalType": {"coding": [{"code": "ro"}]},
            },
            {
                "resourceType": "Location",
                "id": "b",
                "name": bed,
                "description": description,
                "physicalType": {"coding": [{"code": "bd"}]},
            },
            {
                "resourceType": "Location",
                "id": "s",
                "name": "UCLH",
                "description": description,
                "physicalType": {"coding": [{"code": "si"}]},
            },
        ]

    same = by_field(compare_bundles(ours, theirs("B2")))["location(active)"]
    assert (same.status, same.ours, same.theirs) == ("agree", "AMU^R1^B2^UCLH", "AMU^R1^B2^UCLH")
    other = by_field(compare_bundles(ours, theirs("B3")))["location(active)"]
    assert (other.status, other.theirs) == ("disagree", "AMU^R1^B3^UCLH")


def test_systems_compare_by_the_name_each_side_puts_under_its_base():
    assert agrees(SystemName("urn:wardstream:id:MR1"), SystemName(THEIRS + "Identifier/MR1"))
    assert agrees(
        SystemName("urn:wardstream:id:NIST%20MPI"), SystemName(THEIRS + "Identifier/NIST MPI")
    )
    assert not agrees(SystemName("urn:wardstream:id:MR1"), SystemName(THEIRS + "Identifier/MR2"))
    assert agrees(Ident(SystemName("urn:oid:1.2.3"), "42"), Ident(None, "42"))
    assert not agrees(
        Ident(SystemName("urn:oid:1.2.3"), "42"), Ident(SystemName("urn:oid:1.2"), "42")
    )
    loinc = SystemName("http://loinc.org")
    assert agrees(Coded(loinc, "8867-4"), Coded(loinc, "8867-4"))
    assert not agrees(Coded(loinc, "8867-4"), Coded(None, "8867-4"))


@pytest.mark.parametrize(
    ("field", "ours", "theirs", "kind", "quirk"),
    [
        ("class", "UNK", "AMB", "ADT^A08", "unknown-class"),
        ("address[1].city", "Ann Arbor", "Ann Arbor ", "ADT^A01", "spaces-kept"),
        ("name[1].given", "ADAM; A", "ADAM; A; Addsm", "ADT^A01", "called-by-name"),
        (
            "address[1].line",
            "1000; Ste. 123",
            "1000; Hospital Lane; Ste. 123",
            "ADT^A01",
            "street-lines",
        ),
        ("status", "arrived", "in-progress", "ADT^A04", "a04-status"),
        ("status", "arrived", "in-progress", "ADT^A01", None),
        (
            "identifier[7]",
            "urn:wardstream:id:A|7",
            THEIRS + "Identifier/B|7",
            "ADT^A01",
            "authority-component",
        ),
        (
            "identifier[7]",
            "urn:wardstream:id:A%20B|7",
            THEIRS + "Identifier/A-B|7",
            "ADT^A01",
            "name-in-uri",
        ),
        ("code", "urn:wardstream:code:X|1", "http://loinc.org|1", "ORU^R01", None),
        ("name[1].given", "ADAM", "EVE", "ADT^A01", None),
    ],
)
def test_plain_causes_are_named_and_others_left_unclassified(
    field: str, ours: str, theirs: str, kind: str, quirk: str | None
):
    result = FieldResult(
        "Encounter" if field in ("class", "status") else "Patient",
        "k",
        field,
        "disagree",
        ours,
        theirs,
    )
    assert classify(result, kind).quirk == quirk
    assert classify(FieldResult("Patient", "k", field, "agree", ours, ours), kind).quirk is None
