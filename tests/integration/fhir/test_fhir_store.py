"""The FHIR result store on a real SQLite file: versions, conditional create,
transactions with urn:uuid references, and search by every indexed parameter."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from engine.fhir.search import parse_conditional, parse_search
from engine.fhir.store import FhirStore, FhirStoreError, Write

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(tmp_path: Path, clock: Clock) -> AsyncIterator[FhirStore]:
    counter = itertools.count(1)
    fhir = FhirStore(tmp_path / "fhir.db", clock=clock, new_id=lambda: f"srv-{next(counter)}")
    yield fhir
    await fhir.close()


def patient(id_: str | None, mrn: str, family: str = "Smith") -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:mrn", "value": mrn}],
        "name": [{"family": family}],
    }
    if id_ is not None:
        body["id"] = id_
    return body


def encounter(id_: str, patient_ref: str, start: str, end: str | None, ward: str) -> dict[str, Any]:
    period = {"start": start, **({"end": end} if end else {})}
    return {
        "resourceType": "Encounter",
        "id": id_,
        "status": "finished" if end else "in-progress",
        "class": {"code": "IMP"},
        "subject": {"reference": patient_ref},
        "period": period,
        "location": [{"location": {"reference": f"Location/{ward}"}}],
    }


async def test_put_versions_only_on_change(store: FhirStore, clock: Clock) -> None:
    (first,) = await store.write([Write(patient("p1", "1"), "p1")])
    assert (first.status, first.http_status, first.stored.version) == ("created", 201, 1)
    assert first.stored.resource["meta"] == {
        "versionId": "1",
        "lastUpdated": "2026-01-05T10:00:00.000Z",
    }

    clock.now = T0 + timedelta(minutes=1)
    (again,) = await store.write([Write(first.stored.resource, "p1")])
    assert (again.status, again.stored.version, again.http_status) == ("unchanged", 1, 200)

    (changed,) = await store.write([Write(patient("p1", "1", family="Jones"), "p1")])
    assert (changed.status, changed.stored.version) == ("updated", 2)
    assert changed.stored.etag == 'W/"2"'
    assert changed.stored.location == "Patient/p1/_history/2"

    read = await store.read("Patient", "p1")
    assert read is not None
    assert read.resource["name"] == [{"family": "Jones"}]
    assert read.resource["meta"]["lastUpdated"] == "2026-01-05T10:01:00.000Z"
    assert await store.read("Patient", "nope") is None


async def test_create_assigns_ids_and_if_none_exist_matches(store: FhirStore) -> None:
    (created,) = await store.write([Write(patient(None, "7"))])
    assert (created.status, created.stored.id) == ("created", "srv-1")

    query = parse_conditional("Patient", "identifier=urn:mrn|7")
    (matched,) = await store.write([Write(patient(None, "7", "Other"), if_none_exist=query)])
    assert (matched.status, matched.stored.id, matched.http_status) == ("matched", "srv-1", 200)
    assert matched.stored.resource["name"] == [{"family": "Smith"}]

    (second,) = await store.write([Write(patient(None, "7"))])
    assert second.stored.id == "srv-2"
    with pytest.raises(FhirStoreError, match="more than one Patient") as info:
        await store.write([Write(patient(None, "7"), if_none_exist=query)])
    assert info.value.status == 412


async def test_group_resolves_urn_references_and_fails_alone(store: FhirStore) -> None:
    good = [
        Write(patient(None, "9"), full_url="urn:uuid:aaa"),
        Write(encounter("e9", "urn:uuid:aaa", "2026-01-02T08:00:00Z", None, "w1"), "e9"),
    ]
    bad = [Write(patient("p-bad", "10"), "p-bad"), Write(patient("bad id!", "11"), "bad id!")]
    results = await store.write_groups([good, bad])
    assert isinstance(results[1], FhirStoreError)
    assert results[1].expression == ["Patient.id"]
    ok = results[0]
    assert not isinstance(ok, FhirStoreError)
    pid = ok[0].stored.id
    stored = await store.read("Encounter", "e9")
    assert stored is not None
    assert stored.resource["subject"] == {"reference": f"Patient/{pid}"}
    # The refused group left nothing behind, not even its valid first write.
    assert await store.read("Patient", "p-bad") is None
    total, found = await store.search(parse_search("Encounter", [("patient", pid)]))
    assert (total, [r.id for r in found]) == (1, ["e9"])


async def seed(store: FhirStore) -> None:
    await store.write(
        [
            Write(patient("p1", "1"), "p1"),
            Write(patient("p2", "2"), "p2"),
            Write(
                encounter("e1", "Patient/p1", "2025-12-30T08:00:00Z", "2026-01-01T12:00:00Z", "w1"),
                "e1",
            ),
            Write(encounter("e2", "Patient/p1", "2026-01-03T09:00:00+01:00", None, "w2"), "e2"),
            Write(
                encounter("e3", "Patient/p2", "2026-01-02T00:00:00Z", "2026-01-02T06:00:00Z", "w1"),
                "e3",
            ),
            Write(
                {
                    "resourceType": "Observation",
                    "id": "o1",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                    "subject": {"reference": "Patient/p2"},
                    "encounter": {"reference": "Encounter/e3"},
                    "effectiveDateTime": "2026-01-02T03:00:00Z",
                    "identifier": [{"system": "urn:obs", "value": "O-1"}],
                },
                "o1",
            ),
        ]
    )


async def ids(store: FhirStore, type_: str, *params: tuple[str, str]) -> list[str]:
    total, found = await store.search(parse_search(type_, list(params)))
    assert total == len(found)
    return [r.id for r in found]


@pytest.mark.parametrize(
    ("type_", "params", "expected"),
    [
        ("Patient", [("identifier", "urn:mrn|2")], ["p2"]),
        ("Patient", [("identifier", "2")], ["p2"]),
        ("Patient", [("identifier", "|2")], []),
        ("Patient", [("identifier", "urn:mrn|")], ["p1", "p2"]),
        ("Patient", [("identifier", "urn:other|2")], []),
        ("Patient", [("_id", "p1,p9")], ["p1"]),
        ("Encounter", [("patient", "p1")], ["e1", "e2"]),
        ("Encounter", [("patient", "Patient/p2")], ["e3"]),
        ("Encounter", [("subject", "p2")], ["e3"]),
        ("Encounter", [("location", "w1")], ["e1", "e3"]),
        ("Encounter", [("location", "Location/w2,Location/w9")], ["e2"]),
        ("Encounter", [("date", "ge2026-01-02")], ["e2", "e3"]),
        ("Encounter", [("date", "lt2026-01-02")], ["e1"]),
        ("Encounter", [("date", "2026-01-02")], ["e3"]),
        ("Encounter", [("date", "ge2026-01-01"), ("date", "le2026-01-01")], ["e1"]),
        ("Encounter", [("date", "gt2026-01-03")], ["e2"]),
        ("Encounter", [("date", "sa2026-01-02")], ["e2"]),
        ("Encounter", [("date", "eb2026-01-02")], ["e1"]),
        ("Encounter", [("date", "ne2026-01-02")], ["e1", "e2"]),
        ("Encounter", [("patient", "p1"), ("location", "w1")], ["e1"]),
        ("Observation", [("patient", "p2"), ("date", "2026-01-02")], ["o1"]),
        ("Observation", [("code", "http://loinc.org|8867-4")], ["o1"]),
        ("Observation", [("encounter", "e3"), ("identifier", "urn:obs|O-1")], ["o1"]),
        ("Observation", [("date", "2026-01-03")], []),
    ],
)
async def test_search(
    store: FhirStore, type_: str, params: list[tuple[str, str]], expected: list[str]
) -> None:
    await seed(store)
    assert await ids(store, type_, *params) == expected


async def test_search_pages_with_total(store: FhirStore) -> None:
    await seed(store)
    total, page = await store.search(parse_search("Encounter", [("_count", "2")]))
    assert (total, [r.id for r in page]) == (3, ["e1", "e2"])
    total, page = await store.search(parse_search("Encounter", [("_count", "2"), ("_offset", "2")]))
    assert (total, [r.id for r in page]) == (3, ["e3"])
    total, page = await store.search(parse_search("Encounter", [("_count", "0")]))
    assert (total, page) == (3, [])


async def test_update_reindexes(store: FhirStore) -> None:
    await seed(store)
    moved = encounter("e3", "Patient/p2", "2026-01-02T00:00:00Z", "2026-01-02T06:00:00Z", "w5")
    await store.write([Write(moved, "e3")])
    assert await ids(store, "Encounter", ("location", "w1")) == ["e1"]
    assert await ids(store, "Encounter", ("location", "w5")) == ["e3"]


async def test_store_survives_reopen(tmp_path: Path, clock: Clock) -> None:
    first = FhirStore(tmp_path / "fhir.db", clock=clock)
    await first.write([Write(patient("p1", "1"), "p1")])
    await first.close()
    second = FhirStore(tmp_path / "fhir.db", clock=clock)
    try:
        stored = await second.read("Patient", "p1")
        assert stored is not None
        assert stored.version == 1
        assert await ids(second, "Patient", ("identifier", "urn:mrn|1")) == ["p1"]
    finally:
        await second.close()


async def test_if_none_exist_matches_identifiers_with_separators(store: FhirStore) -> None:
    odd = {**patient(None, "x"), "identifier": [{"system": "urn:a,b", "value": "M|1$2"}]}
    (created,) = await store.write([Write(odd)])
    # The form the FHIR mapping writes: escaped, then URL-encoded.
    query = parse_conditional("Patient", "identifier=urn:a%5C%2Cb|M%5C%7C1%5C%242")
    (matched,) = await store.write([Write(odd, if_none_exist=query)])
    assert (matched.status, matched.stored.id) == ("matched", created.stored.id)
