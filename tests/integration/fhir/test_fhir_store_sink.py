"""The ``fhir.store`` sink on a real embedded bus and SQLite store: fhir.out
Bundles land in the store once, a replay makes no new versions, and a Bundle
the store refuses becomes one dead letter."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from engine.bus.embedded import EmbeddedLog
from engine.fhir.sink import FhirStoreSink
from engine.fhir.store import FhirStore
from engine.sink_runner import SinkRunner, bus_dead_letters
from engine.types import Envelope
from schemas.topics import DLQ, FHIR_OUT
from tests.integration.fhir.fhir_test_server import eventually

NOW = datetime(2026, 1, 5, 10, 15, tzinfo=UTC)
WAIT = 10.0


def put(resource: dict[str, Any]) -> dict[str, Any]:
    url = f"{resource['resourceType']}/{resource['id']}"
    return {"resource": resource, "request": {"method": "PUT", "url": url}}


def envelope(correlation: str, *entries: dict[str, Any]) -> Envelope:
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}
    return Envelope(
        correlation_id=correlation,
        channel="adt-in",
        received_at=NOW,
        content_type="application/fhir+json",
        payload=json.dumps(bundle),
    )


PATIENT = {"resourceType": "Patient", "id": "p1", "identifier": [{"value": "P1"}]}
ENCOUNTER = {
    "resourceType": "Encounter",
    "id": "e1",
    "status": "in-progress",
    "subject": {"reference": "Patient/p1"},
    "location": [{"location": {"reference": "Location/bed-1"}}],
}


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[FhirStore]:
    fhir = FhirStore(tmp_path / "fhir.db", clock=lambda: NOW)
    yield fhir
    await fhir.close()


async def run_sink(bus: EmbeddedLog, store: FhirStore, group: str) -> SinkRunner:
    sink = FhirStoreSink(store, dead_letters=bus_dead_letters(bus), clock=lambda: NOW)
    runner = SinkRunner(bus=bus, sink=sink, group=group, topics=[FHIR_OUT], clock=lambda: NOW)
    await runner.start()
    try:
        end = sum((await bus.end_offsets(FHIR_OUT)).values())
        await eventually(lambda: runner.written >= end, WAIT)
        assert await runner.wait_idle(WAIT)
    finally:
        await runner.stop()
    return runner


async def test_bundles_are_stored_once_and_refusals_dead_lettered(
    bus: EmbeddedLog, store: FhirStore
) -> None:
    good = envelope("MSG-1", put(PATIENT), put(ENCOUNTER))
    refused = envelope("MSG-2", put({**PATIENT, "id": "p2"}), put({**PATIENT, "id": "bad id"}))
    not_json = envelope("MSG-3").model_copy(update={"payload": "{"})
    for item in (good, refused, not_json):
        await bus.append(FHIR_OUT, item.to_bytes(), key=b"p1")

    await run_sink(bus, store, "fhir.store")
    patient = await store.read("Patient", "p1")
    assert patient is not None
    assert patient.version == 1
    encounter = await store.read("Encounter", "e1")
    assert encounter is not None
    assert encounter.resource["subject"] == {"reference": "Patient/p1"}
    # The refused Bundle left nothing, not even its valid entry.
    assert await store.read("Patient", "p2") is None

    letters = [Envelope.from_bytes(r.value) for r in await bus.read(DLQ, 0, 0)]
    letters += [Envelope.from_bytes(r.value) for r in await bus.read(DLQ, 1, 0)]
    assert sorted(e.correlation_id for e in letters) == ["MSG-2", "MSG-3"]
    reasons = {e.correlation_id: e.headers["dlq.reason"] for e in letters}
    assert "invalid resource id 'bad id'" in reasons["MSG-2"]
    assert reasons["MSG-3"].startswith("not a FHIR Bundle")
    assert {e.headers["dlq.step_id"] for e in letters} == {"fhir.store"}

    # A replay by a fresh group: no new versions, no second dead letter.
    await run_sink(bus, store, "fhir.store.replay")
    again = await store.read("Patient", "p1")
    assert again is not None
    assert (again.version, again.last_updated) == (1, patient.last_updated)
    total = sum((await bus.end_offsets(DLQ)).values())
    assert total == 2
