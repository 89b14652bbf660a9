"""Golden files: each hand-written message in ``fixtures/`` maps to exactly the
canonical JSON in ``expected/`` (``pytest --update-golden`` rewrites them)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from engine.state import StepState
from engine.types import Envelope
from pipelines.hl7v2.normalize import NormalizeHl7v2
from schemas.topics import DLQ

HERE = Path(__file__).parent
FIXTURES = sorted((HERE / "fixtures").glob("*.hl7"))
NOW = datetime(2026, 3, 6, 12, 0, tzinfo=UTC)
TRIGGERS = ["A01", "A02", "A03", "A04", "A05", "A06", "A07", "A08", "A11", "A12", "A13", "A17",
            "A21", "A22", "A28", "A31", "A40"]  # fmt: skip


def rendered(fixture: Path) -> str:
    """The step's outputs for one fixture, as stable JSON text."""
    envelope = Envelope(
        correlation_id=fixture.stem,
        channel="golden",
        received_at=NOW,
        content_type="x-application/hl7-v2+er7",
        payload=fixture.read_bytes().decode("utf-8"),
    )
    step = NormalizeHl7v2(lambda: NOW, ZoneInfo("Europe/London"))
    outputs = []
    for emit in step.process(envelope, StepState({})):
        if emit.topic == DLQ:
            outputs.append({"topic": emit.topic, "reason": emit.envelope.headers["dlq.reason"]})
        else:
            event = json.loads(emit.envelope.payload)
            outputs.append({"topic": emit.topic, "key": emit.key, "event": event})
    return json.dumps(outputs, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_every_mapped_trigger_has_a_golden_fixture():
    names = {path.stem for path in FIXTURES}
    for trigger in TRIGGERS:
        assert any(name.startswith(f"adt_{trigger.lower()}_") for name in names), trigger
    assert any(name.startswith("oru_r01_") for name in names)


@pytest.mark.parametrize("fixture", FIXTURES, ids=[path.stem for path in FIXTURES])
def test_fixture_maps_to_its_golden_json(fixture: Path, update_golden: bool):
    expected_path = HERE / "expected" / f"{fixture.stem}.json"
    actual = rendered(fixture)
    if update_golden:
        expected_path.write_text(actual, encoding="utf-8")
    assert expected_path.exists(), f"no golden file for {fixture.name}: run pytest --update-golden"
    assert actual == expected_path.read_text(encoding="utf-8")
