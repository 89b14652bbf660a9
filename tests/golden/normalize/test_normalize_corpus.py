"""Every ADT and ORU message of the FHIR-Converter corpus maps to canonical events
or dead-letters with a reason, never raising; where the converter's expected
bundle says who the patient is and what was observed, the events agree."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from engine.state import StepState
from engine.types import Emit, Envelope
from pipelines.hl7v2 import parse_bytes
from pipelines.hl7v2.normalize import ADT_ACTIONS, NormalizeHl7v2
from schemas.events import AdtEvent, ObservationEvent
from schemas.topics import DLQ, EVENTS_ADT, EVENTS_OBS

CORPUS = Path(__file__).resolve().parents[3] / ".." / "shared" / "corpus" / "fhir-converter"


def _adt_and_oru_inputs() -> list[str]:
    # Read once at collection so that only ADT and ORU messages become test cases;
    # without the corpus one case remains, and it skips with a message.
    index = CORPUS / "index.json"
    if not index.is_file():
        return ["<corpus absent>"]
    entries = json.loads(index.read_text(encoding="utf-8"))
    return sorted(
        Path(e["input"]).name for e in entries if (e["msh_9"] or "").split("^")[0] in ("ADT", "ORU")
    )


INPUTS = _adt_and_oru_inputs()
NOW = datetime(2026, 3, 6, 12, 0, tzinfo=UTC)


def require_corpus() -> None:
    if not (CORPUS / "input").is_dir():
        pytest.skip(
            f"FHIR-Converter corpus not found at {CORPUS.resolve()} (see /work/shared/corpus)"
        )


@cache
def expected_bundles() -> dict[str, str | None]:
    entries = json.loads((CORPUS / "index.json").read_text(encoding="utf-8"))
    return {Path(e["input"]).name: e["expected"] for e in entries}


@cache
def normalized(name: str) -> tuple[str, str, list[Emit], str]:
    """(message code, trigger, outputs, control id) of one corpus input."""
    message = parse_bytes((CORPUS / "input" / name).read_bytes())
    envelope = Envelope(
        correlation_id=name,
        channel="corpus",
        received_at=NOW,
        content_type="x-application/hl7-v2+er7",
        payload=message.text,
    )
    outputs = list(NormalizeHl7v2(lambda: NOW, UTC).process(envelope, StepState({})))
    header = message.header
    return header.message_code, header.trigger_event, outputs, header.control_id


def canonical(outputs: list[Emit]) -> list[AdtEvent | ObservationEvent]:
    return [
        AdtEvent.model_validate_json(e.envelope.payload)
        if e.topic == EVENTS_ADT
        else ObservationEvent.model_validate_json(e.envelope.payload)
        for e in outputs
    ]


@pytest.mark.parametrize("name", INPUTS)
def test_each_message_maps_or_dead_letters_with_a_reason(name: str):
    require_corpus()
    code, trigger, outputs, control_id = normalized(name)
    assert code in ("ADT", "ORU")
    mapped = (code == "ADT" and trigger in ADT_ACTIONS) or (code, trigger) == ("ORU", "R01")
    if mapped:
        topic = EVENTS_ADT if code == "ADT" else EVENTS_OBS
        assert outputs
        assert all(e.topic == topic for e in outputs), [e.envelope.headers for e in outputs]
        events = canonical(outputs)
        assert [e.key for e in outputs] == [event.patient_id for event in events]
        assert {event.message_id for event in events} == {control_id}
    else:
        (letter,) = outputs
        assert letter.topic == DLQ
        assert (
            letter.envelope.headers["dlq.reason"]
            == f"MSH-9: {code}^{trigger} has no canonical mapping"
        )


def _resources(bundle_path: str, kind: str) -> list[dict[str, Any]]:
    bundle = json.loads((CORPUS / bundle_path).read_text(encoding="utf-8"))
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def test_patient_and_observations_agree_with_the_converters_bundles():
    """Every mapped message that has an expected bundle agrees on sex, birth date,
    and observation codes, values and times."""
    require_corpus()
    compared = []
    for name in INPUTS:
        bundle = expected_bundles().get(name)
        if bundle is None or normalized(name)[2][0].topic == DLQ:
            continue
        compared.append(name)
        events = canonical(normalized(name)[2])
        (fhir_patient,) = _resources(bundle, "Patient") or [None]
        if fhir_patient is not None:
            patient = events[0].patient
            assert patient.sex == fhir_patient.get("gender"), name
            birth = patient.birth_date.isoformat() if patient.birth_date else None
            assert birth == fhir_patient.get("birthDate"), name
        ours = [
            (o.code.code, o.value_number, o.effective_at)
            for event in events
            if isinstance(event, ObservationEvent)
            for o in event.observations
        ]
        for fhir_obs in _resources(bundle, "Observation") if ours else []:
            value = fhir_obs.get("valueQuantity", {}).get("value")
            when = fhir_obs.get("effectiveDateTime")
            code = fhir_obs["code"]["coding"][0]["code"]
            matches = [o for o in ours if o[0] == code and (value is None or o[1] == value)]
            assert matches, (name, code, value)
            if when is not None and "T" in when:
                assert datetime.fromisoformat(when) in {o[2] for o in matches}, name
    # Every mapped message but MDM_01 (no expected bundle) is compared.
    assert len(compared) == 36


def test_corpus_counts():
    """How the ADT and ORU messages of the corpus fare, pinned so a change shows."""
    require_corpus()
    mapped, dead = [], []
    for name in INPUTS:
        outputs = normalized(name)[2]
        (dead if outputs[0].topic == DLQ else mapped).append(name)
    assert (len(mapped), len(dead)) == (37, 27)
    assert sum(len(normalized(name)[2]) for name in mapped) == 40
