"""A record that is not an Envelope becomes one dead letter, from a step runner
and from a sink runner alike, on a real embedded bus: its id derives from where
the record sits, so handling it again (a redelivery) stores nothing new."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from engine._polling import PollingRunner
from engine.bus.embedded import EmbeddedLog
from engine.fhir.sink import FhirStoreSink
from engine.fhir.store import FhirStore
from engine.runner import StepRunner, output_id
from engine.sink_runner import SinkRunner, bus_dead_letters
from engine.state import StateStore
from engine.types import Envelope, Record, TopicPartition
from pipelines.census import CensusStep
from schemas.topics import DLQ, EVENTS_ADT, FHIR_OUT
from tests.integration.fhir.fhir_test_server import eventually

NOW = datetime(2026, 1, 5, 10, 15, tzinfo=UTC)
WAIT = 10.0
GARBAGE = b"\xffnot an envelope"


async def read_all(bus: EmbeddedLog, topic: str) -> list[Record]:
    records: list[Record] = []
    for partition in range(await bus.partitions_for(topic)):
        records.extend(await bus.read(topic, partition, 0, 100))
    return records


async def garbage_on(bus: EmbeddedLog, topic: str) -> Record:
    await bus.append(topic, GARBAGE, key=b"p1")
    (record,) = await read_all(bus, topic)
    return record


def assert_dead_letter_of(letters: list[Record], record: Record, step_id: str) -> None:
    assert len(letters) == 1
    letter = Envelope.from_bytes(letters[0].value)
    where = f"{record.topic}/{record.partition}/{record.offset}"
    assert letter.id == output_id(where, step_id, 0)
    assert letter.correlation_id == where
    assert letter.payload == GARBAGE.decode("utf-8", "replace")
    assert letter.headers["dlq.step_id"] == step_id
    assert letter.headers["dlq.reason"].startswith("undecodable envelope")


def step_runner(bus: EmbeddedLog, store: StateStore) -> StepRunner:
    return StepRunner(
        bus=bus,
        processor=CensusStep(lambda: NOW),
        topics=[EVENTS_ADT],
        store=store,
        clock=lambda: NOW,
    )


async def drain(runner: PollingRunner, caught_up: Callable[[], bool]) -> None:
    """Run ``runner`` until ``caught_up()`` and a poll finds nothing more, then stop it."""
    await runner.start()
    try:
        await eventually(caught_up, WAIT)
        assert await runner.wait_idle(WAIT)
    finally:
        await runner.stop()


async def test_a_step_runner_dead_letters_an_undecodable_record_once(
    bus: EmbeddedLog, tmp_path: Path
) -> None:
    record = await garbage_on(bus, EVENTS_ADT)
    store = StateStore(tmp_path / "state.db")
    runner = step_runner(bus, store)
    try:
        await drain(runner, lambda: runner.processed >= 1)
    finally:
        await store.close()
    assert runner.dead_letters == 1
    assert_dead_letter_of(await read_all(bus, DLQ), record, runner.step_id)

    # Redelivered after a crash that lost the step's state: appended again, stored once.
    fresh = StateStore(tmp_path / "fresh.db")
    try:
        again = step_runner(bus, fresh)
        await again.handle([record])
    finally:
        await fresh.close()
    assert again.dead_letters == 1
    assert_dead_letter_of(await read_all(bus, DLQ), record, runner.step_id)


async def test_a_sink_runner_dead_letters_an_undecodable_record_once(
    bus: EmbeddedLog, tmp_path: Path
) -> None:
    record = await garbage_on(bus, FHIR_OUT)
    store = FhirStore(tmp_path / "fhir.db", clock=lambda: NOW)

    def sink_runner() -> SinkRunner:
        sink = FhirStoreSink(store, dead_letters=bus_dead_letters(bus), clock=lambda: NOW)
        return SinkRunner(
            bus=bus, sink=sink, group="fhir.store", topics=[FHIR_OUT], clock=lambda: NOW
        )

    runner = sink_runner()
    again = sink_runner()
    try:
        await drain(runner, lambda: runner.written >= 1)
        assert runner.dead_letters == 1
        assert_dead_letter_of(await read_all(bus, DLQ), record, "fhir.store")
        committed = await again.handle([record])
    finally:
        await store.close()
    assert committed == {TopicPartition(record.topic, record.partition): record.offset + 1}
    assert again.dead_letters == 1
    assert_dead_letter_of(await read_all(bus, DLQ), record, "fhir.store")
