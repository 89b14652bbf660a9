"""Stream real messages (good and bad) through a running engine at debug level,
then search everything it logged for the patients' details."""

from __future__ import annotations

import asyncio

from connectors.mllp import MllpSender
from tests.engine_process import EngineProcess
from tests.hl7_factory import adt

PATIENTS = [
    {
        "patient": "MRN7781234",
        "name": "OKONKWO^ADAEZE^CHIOMA",
        "birth_date": "19610923",
        "address": "47 PARKSIDE CRESCENT^^HARROGATE^^HG1 5QT^GBR",
        "phone": "(01423)557812",
    },
    {
        "patient": "MRN5512090",
        "name": "VANTERPOOL^BARNABY",
        "birth_date": "19830117",
        "address": "3 WHITLEY GARTH^^OTLEY^^LS21 2PB^GBR",
        "phone": "07700912345",
    },
]

SECRETS = [
    "OKONKWO",
    "ADAEZE",
    "CHIOMA",
    "MRN7781234",
    "19610923",
    "PARKSIDE",
    "HG1 5QT",
    "557812",
    "VANTERPOOL",
    "BARNABY",
    "MRN5512090",
    "19830117",
    "WHITLEY",
    "LS21 2PB",
    "07700912345",
]


async def test_no_patient_detail_reaches_a_log_line(tmp_path):
    engine = EngineProcess(tmp_path / "engine", extra={"log": {"level": "debug", "format": "json"}})
    await asyncio.to_thread(engine.start)
    try:
        codes = []
        async with MllpSender("127.0.0.1", engine.mllp_port, ack_timeout=5.0) as sender:
            for n, details in enumerate(PATIENTS):
                good = adt("A01", f"ok-{n}", ward="AMU", bed=f"B{n}", **details)
                codes.append((await sender.send(good)).code)
                # The same patient, in broken messages the engine must refuse.
                bad_type = good.replace("ADT^A01^ADT_A01", "ZZZ^Q99").replace(f"ok-{n}", f"bad-{n}")
                codes.append((await sender.send(bad_type)).code)
                no_location = adt("A02", f"noloc-{n}", ward="", room="", bed="", **details)
                codes.append((await sender.send(no_location)).code)
        assert codes.count("AA") == 4
        assert codes.count("AA") < len(codes)
        for _ in range(100):
            stats = engine.get("/api/stats").json()
            if stats["steps"]["normalize.hl7v2"]["dead_letters"] >= 2:
                break
            await asyncio.sleep(0.1)
        assert stats["steps"]["normalize.hl7v2"]["dead_letters"] >= 2
    finally:
        assert await asyncio.to_thread(engine.terminate) == 0
    logged = engine.log_path.read_text()
    assert "engine ready" in logged
    assert "adt-in" in logged
    leaked = [secret for secret in SECRETS if secret in logged]
    assert leaked == []
