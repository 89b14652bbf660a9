"""Kill -9 the engine mid-stream: nothing ACKed is lost, nothing is stored twice,
and the census equals a clean replay of the log."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime

import pytest

from connectors.mllp import MllpSender, MllpSendError
from engine.bus import open_bus
from engine.state import StepState
from engine.types import Envelope
from pipelines.census import CensusStep, census_snapshot
from pipelines.hl7v2.normalize import NormalizeHl7v2
from schemas.topics import RAW_HL7V2
from tests.engine_process import EngineProcess
from tests.hl7_factory import adt

pytestmark = pytest.mark.slow

SENDERS = 16
PATIENTS_PER_SENDER = 20
WARDS = ["AMU", "CARD", "SURG", "ICU"]


def sender_script(sender: int) -> list[tuple[str, str]]:
    """(control id, message) for one sender's patients: admit, transfer, some discharged."""
    script = []
    for n in range(PATIENTS_PER_SENDER):
        patient = f"S{sender:02d}P{n:02d}"
        first, second = WARDS[n % 4], WARDS[(n + 1) % 4]
        bed = f"B{sender:02d}{n:02d}"
        steps = [("A01", first, ""), ("A02", second, f"{first}^R1^{bed}^GENERAL")]
        if n % 3 == 0:
            steps.append(("A03", second, ""))
        for i, (trigger, ward, prior) in enumerate(steps):
            control = f"{patient}-{i}"
            script.append(
                (control, adt(trigger, control, patient, ward=ward, bed=bed, prior=prior))
            )
    return script


async def send_all(
    port: int, script, acked: list[str], failures: list[str], deadline: float
) -> None:
    loop = asyncio.get_running_loop()
    async with MllpSender(
        "127.0.0.1", port, connect_timeout=1.0, ack_timeout=5.0, retries=2, backoff_s=0.1
    ) as sender:
        for control, message in script:
            while True:
                try:
                    ack = await sender.send(message)
                except (MllpSendError, OSError):
                    failures.append(control)
                    if loop.time() > deadline:
                        raise
                    await asyncio.sleep(0.2)
                    continue
                assert ack.code == "AA", ack
                acked.append(control)
                break


async def read_raw(bus_path) -> list[list[Envelope]]:
    bus = open_bus(f"sqlite:///{bus_path}")
    await bus.start()
    try:
        per_partition = []
        for partition in range(await bus.partitions_for(RAW_HL7V2)):
            records, offset = [], 0
            while batch := await bus.read(RAW_HL7V2, partition, offset, 1000):
                records.extend(batch)
                offset = batch[-1].offset + 1
            per_partition.append([Envelope.from_bytes(r.value) for r in records])
        return per_partition
    finally:
        await bus.stop()


def replay_census(partitions: list[list[Envelope]]) -> dict[str, list[str]]:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    normalize, census = NormalizeHl7v2(lambda: now), CensusStep(lambda: now)
    scratch, state = StepState({}), StepState({})
    for envelopes in partitions:
        for envelope in envelopes:
            for emit in normalize.process(envelope, scratch):
                census.process(emit.envelope, state)
    return {ward: sorted(beds) for ward, beds in census_snapshot(state).items()}


def live_census(engine: EngineProcess) -> dict[str, list[str]]:
    body = engine.get("/api/census").json()
    return {entry["ward"]: sorted(entry["beds"]) for entry in body["wards"]}


async def test_sigkill_mid_stream_loses_nothing_acked_and_stores_nothing_twice(tmp_path):
    engine = EngineProcess(tmp_path / "engine")
    await asyncio.to_thread(engine.start)
    scripts = [sender_script(s) for s in range(SENDERS)]
    total = sum(len(s) for s in scripts)
    acked: list[str] = []
    failures: list[str] = []
    deadline = asyncio.get_running_loop().time() + 90
    senders = [
        asyncio.create_task(send_all(engine.mllp_port, script, acked, failures, deadline))
        for script in scripts
    ]
    try:
        for _ in range(6000):
            if len(acked) >= total // 3:
                break
            await asyncio.sleep(0.01)
        await asyncio.to_thread(engine.kill)
        acked_before_kill = len(acked)
        await asyncio.to_thread(engine.start)
        await asyncio.gather(*senders)

        # The kill landed mid-stream: senders saw it and resent what had no ACK.
        assert acked_before_kill < total
        assert failures
        assert len(acked) == total
        stored = Counter(
            env.correlation_id
            for part in await read_raw(tmp_path / "engine" / "bus.db")
            for env in part
        )
        assert set(stored) == set(acked)
        assert [c for c, n in stored.items() if n != 1] == []

        expected = replay_census(await read_raw(tmp_path / "engine" / "bus.db"))
        assert sum(len(b) for b in expected.values()) == SENDERS * (
            PATIENTS_PER_SENDER - len(range(0, PATIENTS_PER_SENDER, 3))
        )
        for _ in range(300):
            if live_census(engine) == expected:
                break
            await asyncio.sleep(0.1)
        assert live_census(engine) == expected
        assert await asyncio.to_thread(engine.terminate) == 0
    finally:
        for task in senders:
            task.cancel()
        if engine.proc is not None and engine.proc.poll() is None:
            engine.proc.kill()
