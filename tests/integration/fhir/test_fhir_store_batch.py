"""The FHIR result store writing many groups in one call on a real SQLite file:
later groups see earlier ones' versions and index entries, a failed group
leaves nothing, and rows read up front in chunks get the right versions."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from engine.fhir.search import parse_conditional, parse_search
from engine.fhir.store import FhirStore, FhirStoreError, Write, WriteResult

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[FhirStore]:
    counter = itertools.count(1)
    fhir = FhirStore(tmp_path / "fhir.db", clock=lambda: T0, new_id=lambda: f"srv-{next(counter)}")
    yield fhir
    await fhir.close()


def patient(id_: str | None, mrn: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:mrn", "value": mrn}],
    }
    if id_ is not None:
        body["id"] = id_
    return body


def put(id_: str, mrn: str) -> Write:
    return Write(patient(id_, mrn), id_)


def ok(result: list[WriteResult] | FhirStoreError) -> list[tuple[str, str, int]]:
    assert not isinstance(result, FhirStoreError), result
    return [(r.status, r.stored.id, r.stored.version) for r in result]


async def by_mrn(store: FhirStore, mrn: str) -> list[str]:
    total, found = await store.search(parse_search("Patient", [("identifier", f"urn:mrn|{mrn}")]))
    assert total == len(found)
    return [r.id for r in found]


async def test_groups_of_one_call_build_on_each_other(store: FhirStore) -> None:
    bad = Write(patient("bad id!", "0"), "bad id!")
    results = await store.write_groups(
        [[put("p1", "1")], [put("p1", "2"), bad], [put("p1", "3")], [put("p1", "3")]]
    )
    assert ok(results[0]) == [("created", "p1", 1)]
    assert isinstance(results[1], FhirStoreError)
    assert ok(results[2]) == [("updated", "p1", 2)]
    assert ok(results[3]) == [("unchanged", "p1", 2)]
    stored = await store.read("Patient", "p1")
    assert stored is not None
    assert (stored.version, stored.resource["identifier"][0]["value"]) == (2, "3")
    assert [await by_mrn(store, m) for m in ("1", "2", "3")] == [[], [], ["p1"]]


async def test_same_resource_twice_in_a_group_and_again_later(store: FhirStore) -> None:
    (first,) = await store.write_groups([[put("p1", "1"), put("p1", "2")]])
    assert ok(first) == [("created", "p1", 1), ("updated", "p1", 2)]
    assert [await by_mrn(store, m) for m in ("1", "2")] == [[], ["p1"]]
    assert [(r.status, r.stored.version) for r in await store.write([put("p1", "1")])] == [
        ("updated", 3)
    ]
    assert [await by_mrn(store, m) for m in ("1", "2")] == [["p1"], []]


async def test_unchanged_in_the_same_call_returns_its_own_copy(store: FhirStore) -> None:
    first, second = await store.write_groups([[put("p1", "1")], [put("p1", "1")]])
    assert not isinstance(first, FhirStoreError)
    assert not isinstance(second, FhirStoreError)
    assert second[0].status == "unchanged"
    assert second[0].stored.resource == first[0].stored.resource
    assert second[0].stored.resource is not first[0].stored.resource
    assert second[0].stored.resource["meta"] == {
        "versionId": "1",
        "lastUpdated": "2026-01-05T10:00:00.000Z",
    }


async def test_conditional_create_sees_earlier_groups_and_a_later_failure_keeps_them(
    store: FhirStore,
) -> None:
    query = parse_conditional("Patient", "identifier=urn:mrn|7")
    results = await store.write_groups(
        [
            [Write(patient(None, "7"))],
            [Write(patient(None, "7"), if_none_exist=query)],
            [Write(patient(None, "7"), if_none_exist=query), put("bad id!", "8")],
        ]
    )
    assert ok(results[0]) == [("created", "srv-1", 1)]
    assert ok(results[1]) == [("matched", "srv-1", 1)]
    assert isinstance(results[2], FhirStoreError)
    assert await by_mrn(store, "7") == ["srv-1"]


async def test_many_existing_rows_are_read_back_for_one_call(store: FhirStore) -> None:
    # More ids than one SELECT ... IN (...) takes.
    count = 450
    await store.write_groups([[put(f"p{i}", str(i))] for i in range(count)])
    results = await store.write_groups(
        [[put(f"p{i}", str(i) if i % 2 else f"{i}b")] for i in range(count)]
    )
    statuses = [ok(result)[0] for result in results]
    assert statuses == [
        ("unchanged", f"p{i}", 1) if i % 2 else ("updated", f"p{i}", 2) for i in range(count)
    ]
    assert await by_mrn(store, "4") == []
    assert await by_mrn(store, "4b") == ["p4"]
    assert await by_mrn(store, "5") == ["p5"]
