"""The FHIR REST destination against a real HTTP server on loopback: retries on
5xx, 429, timeouts and refused connections; 4xx refusals to the dead-letter
topic with the server's OperationOutcome; hosted by a SinkRunner on a real
embedded bus, committing only what was delivered."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.fhir.writer import FhirDestinationUnavailable, FhirRestWriter
from engine.bus.embedded import EmbeddedLog
from engine.sink_runner import SinkRunner, bus_dead_letters
from engine.types import Emit, Envelope
from schemas.topics import DLQ, FHIR_OUT
from tests.integration.fhir.fhir_test_server import (
    Reply,
    ScriptedServer,
    bundle_envelope,
    eventually,
    serve,
)
from tests.ports import free_port

NOW = datetime(2026, 1, 5, 10, 15, tzinfo=UTC)
WAIT = 10.0


def refusal(text: str) -> Reply:
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "invalid",
                "diagnostics": text,
                "expression": ["Bundle.entry[0].resource"],
            }
        ],
    }
    return Reply(422, outcome)


def writer(url: str, dead: list[Emit] | None = None, **options: Any) -> FhirRestWriter:
    async def collect(emit: Emit) -> None:
        assert dead is not None
        dead.append(emit)

    options.setdefault("backoff_s", 0.01)
    options.setdefault("timeout_s", 2.0)
    return FhirRestWriter(url, dead_letters=collect, clock=lambda: NOW, **options)


async def test_retries_5xx_then_delivers_with_token() -> None:
    app = ScriptedServer([Reply(503), Reply(500), Reply(502)])
    async with serve(app):
        out = writer(app.url, token="s3cret", max_retries=5)
        try:
            async with asyncio.timeout(WAIT):
                await out.write([bundle_envelope("p1")])
        finally:
            await out.close()
    assert len(app.received) == 4
    assert (out.stats.sent, out.stats.retries, out.stats.dead_letters) == (1, 3, 0)
    last = app.received[-1]
    assert (last.method, last.path) == ("POST", "/fhir")
    assert last.headers["authorization"] == "Bearer s3cret"
    assert last.headers["content-type"] == "application/fhir+json"
    assert last.json()["entry"][0]["request"] == {"method": "PUT", "url": "Patient/p1"}
    assert {r.body for r in app.received} == {last.body}


async def test_retries_timeouts_and_429() -> None:
    app = ScriptedServer([Reply(delay_s=1.5), Reply(429, headers={"Retry-After": "0"})])
    async with serve(app):
        out = writer(app.url, timeout_s=0.3, max_retries=3)
        try:
            async with asyncio.timeout(WAIT):
                await out.write([bundle_envelope("p1")])
        finally:
            await out.close()
    assert (out.stats.sent, out.stats.retries) == (1, 2)
    assert len(app.received) == 3


async def test_gives_up_after_max_retries() -> None:
    app = ScriptedServer(default=Reply(503))
    async with serve(app):
        out = writer(app.url, max_retries=2)
        try:
            with pytest.raises(
                FhirDestinationUnavailable, match="gave up after 3 attempts: HTTP 503"
            ):
                async with asyncio.timeout(WAIT):
                    await out.write([bundle_envelope("p1")])
        finally:
            await out.close()
    assert len(app.received) == 3
    assert out.stats.sent == 0


async def test_connection_refused_is_transient() -> None:
    out = writer(f"http://127.0.0.1:{free_port()}/fhir", max_retries=1)
    try:
        with pytest.raises(FhirDestinationUnavailable, match="ConnectError"):
            async with asyncio.timeout(WAIT):
                await out.write([bundle_envelope("p1")])
    finally:
        await out.close()
    assert out.stats.retries == 1


async def test_4xx_goes_to_dead_letters_and_the_batch_goes_on() -> None:
    app = ScriptedServer([refusal("Patient.birthDate: invalid date")])
    dead: list[Emit] = []
    async with serve(app):
        out = writer(app.url, dead)
        try:
            async with asyncio.timeout(WAIT):
                await out.write([bundle_envelope("bad"), bundle_envelope("good")])
        finally:
            await out.close()
    assert [r.json()["entry"][0]["resource"]["id"] for r in app.received] == ["bad", "good"]
    assert (out.stats.sent, out.stats.dead_letters, out.stats.retries) == (1, 1, 0)
    (letter,) = dead
    assert letter.topic == DLQ
    envelope = letter.envelope
    assert envelope.correlation_id == "MSG-bad"
    assert json.loads(envelope.payload)["entry"][0]["resource"]["id"] == "bad"
    reason = envelope.headers["dlq.reason"]
    assert reason.startswith("FHIR server answered 422: ")
    assert "Patient.birthDate: invalid date (Bundle.entry[0].resource)" in reason
    assert envelope.headers["dlq.step_id"] == "dest.fhir"
    assert envelope.headers["dlq.status"] == "422"
    assert json.loads(envelope.headers["dlq.outcome"])["issue"][0]["code"] == "invalid"
    assert envelope.trail[-1].status == "error"


async def test_non_bundle_payload_is_a_dead_letter_without_a_request() -> None:
    app = ScriptedServer()
    dead: list[Emit] = []
    async with serve(app):
        out = writer(app.url, dead)
        broken = bundle_envelope("x").model_copy(update={"payload": '{"resourceType": "Patient"}'})
        try:
            await out.write([broken])
        finally:
            await out.close()
    assert app.received == []
    assert "not a FHIR Bundle" in dead[0].envelope.headers["dlq.reason"]


async def test_if_none_exist_mode_posts_conditional_creates() -> None:
    patient = {
        "resourceType": "Patient",
        "id": "p1",
        "identifier": [{"system": "urn:mrn", "value": "M|1"}],
    }
    encounter = {
        "resourceType": "Encounter",
        "id": "e1",
        "status": "in-progress",
        "subject": {"reference": "Patient/p1"},
    }
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
            for r in (patient, encounter)
        ],
    }
    envelope = bundle_envelope("p1").model_copy(update={"payload": json.dumps(bundle)})
    app = ScriptedServer()
    async with serve(app):
        out = writer(app.url, conditional="if-none-exist")
        try:
            await out.write([envelope])
        finally:
            await out.close()
    posted = app.received[0].json()
    first, second = posted["entry"]
    assert first["request"] == {
        "method": "POST",
        "url": "Patient",
        "ifNoneExist": "identifier=urn:mrn|M%5C%7C1",
    }
    assert "id" not in first["resource"]
    assert first["fullUrl"].startswith("urn:uuid:")
    assert second["request"] == {"method": "POST", "url": "Encounter"}
    assert second["resource"]["subject"] == {"reference": first["fullUrl"]}


async def read_all(bus: EmbeddedLog, topic: str) -> list[Envelope]:
    out = []
    for partition in range(await bus.partitions_for(topic)):
        out += [Envelope.from_bytes(r.value) for r in await bus.read(topic, partition, 0, 1000)]
    return out


async def test_sink_runner_survives_an_outage_and_dead_letters_refusals(bus: EmbeddedLog) -> None:
    # Three failures exhaust the writer's retries once: the runner retries the batch later.
    app = ScriptedServer([Reply(503), Reply(503), Reply(503), refusal("no thanks")])
    for patient in ("p1", "p2", "p3"):
        envelope = bundle_envelope(patient)
        await bus.append(FHIR_OUT, envelope.to_bytes(), key=patient.encode(), partition=0)
    async with serve(app):
        out = FhirRestWriter(
            app.url,
            name="ehr",
            max_retries=1,
            backoff_s=0.01,
            dead_letters=bus_dead_letters(bus),
            clock=lambda: NOW,
        )
        runner = SinkRunner(
            bus=bus,
            sink=out,
            group="dest.ehr",
            topics=[FHIR_OUT],
            clock=lambda: NOW,
            retry_backoff_s=0.01,
        )
        await runner.start()
        try:
            await eventually(lambda: out.stats.sent >= 2)
            assert await runner.wait_idle(WAIT)
        finally:
            await runner.stop()
    sent = [r.json()["entry"][0]["resource"]["id"] for r in app.received]
    # p1 failed four times (two writes of two attempts), then was refused; p2 and p3 went through.
    assert sent == ["p1", "p1", "p1", "p1", "p2", "p3"]
    assert runner.failures == 1
    (letter,) = await read_all(bus, DLQ)
    assert letter.correlation_id == "MSG-p1"
    assert "no thanks" in letter.headers["dlq.reason"]
    committed = await bus.committed("dest.ehr")
    assert {tp.partition: offset for tp, offset in committed.items()} == {0: 3}


async def test_sink_runner_stops_while_the_destination_is_down(bus: EmbeddedLog) -> None:
    app = ScriptedServer(default=Reply(503))
    await bus.append(FHIR_OUT, bundle_envelope("p1").to_bytes(), key=b"p1", partition=0)
    async with serve(app):
        out = FhirRestWriter(app.url, max_retries=0, backoff_s=0.01, clock=lambda: NOW)
        runner = SinkRunner(
            bus=bus, sink=out, group="dest.down", topics=[FHIR_OUT], clock=lambda: NOW
        )
        await runner.start()
        await eventually(lambda: runner.failures >= 1)
        await runner.stop(timeout=WAIT)
    assert await bus.committed("dest.down") == {}
    assert await read_all(bus, DLQ) == []
