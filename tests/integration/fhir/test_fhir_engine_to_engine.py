"""HL7v2 in, FHIR out, end to end across two real engine processes.

Engine A receives ADT^A01 and ORU^R01 over MLLP and has a FHIR destination
pointing at engine B's /fhir. The test reads what A wrote back from B with the
third-party SMART ``fhirclient`` (read and search), and checks the values
against the HL7 messages; A's own result store holds the same resources.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fhirclient import client
from fhirclient.models.encounter import Encounter
from fhirclient.models.location import Location
from fhirclient.models.observation import Observation
from fhirclient.models.patient import Patient

from connectors.mllp import MllpSender
from tests.engine_process import EngineProcess
from tests.hl7_factory import adt

WAIT = 20.0
SYSTEM = "urn:wardstream:id:GENERAL"

ORU = (
    "\r".join(
        [
            "MSH|^~\\&|MONITOR|GENERAL|WARDSTREAM|GENERAL|20260105103000+0000||ORU^R01^ORU_R01"
            "|OBS-0001|P|2.5",
            "PID|1||P100^^^GENERAL^MR||DOE^JANE^Q||19580214|F",
            "PV1|1|I|AMU^R1^B1^GENERAL||||||MED|||||||||VP100",
            "OBR|1||F-1|vitals^Vital signs^L|||20260105102500+0000",
            "OBX|1|NM|8867-4^Heart rate^LN||88|/min^beats/min^UCUM|||||F|||20260105102500+0000",
            "OBX|2|NM|8310-5^Body temperature^LN||37.9|Cel^degC^UCUM|||||F|||20260105102500+0000",
        ]
    )
    + "\r"
)


@pytest.fixture(scope="module")
def engines(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[EngineProcess, EngineProcess]]:
    root = tmp_path_factory.mktemp("engine-to-engine")
    server = EngineProcess(root / "b")
    server.start()
    destination = {
        "name": "engine-b",
        "type": "fhir",
        "base_url": f"{server.http}/fhir",
        "timeout_s": 5,
        "max_retries": 3,
        "backoff_s": 0.05,
    }
    sender = EngineProcess(Path(root / "a"), extra={"destinations": [destination]})
    try:
        sender.start()
        try:
            yield sender, server
        finally:
            assert sender.terminate() == 0, sender.log_tail()
    finally:
        assert server.terminate() == 0, server.log_tail()


async def send(port: int, *messages: str) -> list[str]:
    async with MllpSender("127.0.0.1", port, connect_timeout=2.0, ack_timeout=5.0) as sender:
        return [(await sender.send(message)).code for message in messages]


def smart(engine: EngineProcess) -> client.FHIRClient:
    return client.FHIRClient(
        settings={"app_id": "wardstream-test", "api_base": f"{engine.http}/fhir/"}
    )


def wait_for(url: str, params: dict[str, str], count: int) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        body = httpx.get(url, params=params, timeout=5).json()
        if body.get("total", 0) >= count:
            return
        time.sleep(0.1)
    raise AssertionError(f"{url} {params}: fewer than {count} resources after {WAIT}s")


def test_hl7_admission_and_results_land_on_the_fhir_server(
    engines: tuple[EngineProcess, EngineProcess],
) -> None:
    sender, server = engines
    admit = adt("A01", "ADM-0001", "P100", ward="AMU", room="R1", bed="B1")
    assert asyncio.run(send(sender.mllp_port, admit, ORU)) == ["AA", "AA"]
    wait_for(f"{server.http}/fhir/Observation", {"code": "http://loinc.org|8310-5"}, 1)
    wait_for(f"{server.http}/fhir/Encounter", {"identifier": "VP100"}, 1)

    fhir = smart(server)
    (patient,) = list(
        Patient.where(struct={"identifier": f"{SYSTEM}|P100"}).perform_resources_iter(fhir.server)
    )
    read = Patient.read(patient.id, fhir.server)
    assert read.identifier[0].value == "P100"
    assert read.identifier[0].system == SYSTEM
    assert read.name[0].family == "DOE"
    assert read.name[0].given == ["JANE", "Q"]
    assert read.gender == "female"
    assert read.birthDate.isostring == "1958-02-14"

    (encounter,) = list(
        Encounter.where(struct={"patient": patient.id}).perform_resources_iter(fhir.server)
    )
    assert encounter.status == "in-progress"
    assert encounter.class_fhir.code == "IMP"
    assert encounter.subject.reference == f"Patient/{patient.id}"
    assert encounter.period.start.isostring.startswith("2026-01-05T10:15:00")
    bed_ref = encounter.location[0].location.reference
    bed = Location.read(bed_ref.split("/")[1], fhir.server)
    assert bed.physicalType.coding[0].code == "bd"
    located = list(
        Encounter.where(struct={"location": bed_ref}).perform_resources_iter(fhir.server)
    )
    assert [e.id for e in located] == [encounter.id]

    observations = list(
        Observation.where(
            struct={"patient": patient.id, "date": "ge2026-01-05"}
        ).perform_resources_iter(fhir.server)
    )
    by_code = {o.code.coding[0].code: o for o in observations}
    assert set(by_code) == {"8867-4", "8310-5"}
    heart = by_code["8867-4"]
    assert heart.status == "final"
    assert heart.code.coding[0].system == "http://loinc.org"
    assert (heart.valueQuantity.value, heart.valueQuantity.code) == (88, "/min")
    assert heart.effectiveDateTime.isostring.startswith("2026-01-05T10:25:00")
    assert by_code["8310-5"].valueQuantity.value == pytest.approx(37.9)
    assert by_code["8310-5"].valueQuantity.code == "Cel"
    assert heart.subject.reference == f"Patient/{patient.id}"

    # Engine A keeps what it produced in its own result store, under the same ids.
    own = httpx.get(f"{sender.http}/fhir/Patient/{patient.id}", timeout=5)
    assert own.status_code == 200
    assert own.json()["name"] == [{"family": "DOE", "given": ["JANE", "Q"]}]

    # B took A's Bundles as FHIR input: it normalised them and wrote nothing back out.
    stats = httpx.get(f"{server.http}/api/stats", timeout=5).json()
    assert stats["steps"]["normalize.fhir"]["processed"] >= 2
    assert stats["steps"]["normalize.fhir"]["dead_letters"] == 0
    assert stats["sinks"]["fhir.store"]["written"] == 0
    sent = httpx.get(f"{sender.http}/api/stats", timeout=5).json()["sinks"]["dest.engine-b"]
    assert (sent["failures"], sent["dead_letters"]) == (0, 0)
