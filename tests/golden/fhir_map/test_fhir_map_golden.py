"""Golden files: canonical event fixtures → the exact FHIR R4 JSON Wardstream writes.

Each ``fixtures/<name>.json`` holds a canonical event and the envelope it came
in; ``expected/<name>.json`` the resource list ``to_fhir`` must produce. Run
pytest with ``--update-golden`` (or WARDSTREAM_UPDATE_GOLDEN=1) to rewrite the
expected files after a deliberate mapping change, then review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, get_args

import pytest
from fhir.resources.R4B import get_fhir_model_class
from pydantic import TypeAdapter

from engine.types import Envelope
from pipelines.fhir_map import to_fhir, transaction_bundle
from schemas.events import AdtAction, CanonicalEvent

HERE = Path(__file__).parent
FIXTURES = sorted((HERE / "fixtures").glob("*.json"))
EVENTS: TypeAdapter[Any] = TypeAdapter(CanonicalEvent)


def _update_golden(request: pytest.FixtureRequest) -> bool:
    try:
        flag = bool(request.config.getoption("--update-golden"))
    except ValueError:
        # The option is registered by tests/conftest.py; the env var works without it.
        flag = False
    return flag or os.environ.get("WARDSTREAM_UPDATE_GOLDEN") == "1"


def _load(path: Path) -> tuple[Any, Envelope]:
    data = json.loads(path.read_text())
    return EVENTS.validate_python(data["event"]), Envelope.model_validate(data["source"])


def _dump(resources: list[dict[str, Any]]) -> str:
    return json.dumps(resources, indent=2, ensure_ascii=False) + "\n"


def test_every_action_and_kind_has_a_fixture() -> None:
    events = [_load(p)[0] for p in FIXTURES]
    assert {e.action for e in events if e.kind == "adt"} == set(get_args(AdtAction))
    assert {e.kind for e in events} == {"adt", "obs", "location"}


@pytest.mark.parametrize("fixture", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_golden(fixture: Path, request: pytest.FixtureRequest) -> None:
    event, source = _load(fixture)
    produced = _dump(to_fhir(event, source))
    expected_path = HERE / "expected" / fixture.name
    if _update_golden(request):
        expected_path.write_text(produced)
    assert expected_path.exists(), f"no golden file: run pytest --update-golden for {fixture.name}"
    assert produced == expected_path.read_text()


@pytest.mark.parametrize("fixture", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_golden_resources_are_valid_r4(fixture: Path) -> None:
    event, source = _load(fixture)
    resources = to_fhir(event, source)
    for resource in resources:
        model = get_fhir_model_class(resource["resourceType"])
        parsed = model.model_validate(resource)
        # Nothing is lost or added by the model: the JSON is already canonical FHIR.
        assert json.loads(parsed.model_dump_json()) == resource
    bundle = transaction_bundle(resources)
    get_fhir_model_class("Bundle").model_validate(bundle)


@pytest.mark.parametrize("fixture", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_golden_is_deterministic(fixture: Path) -> None:
    first = to_fhir(*_load(fixture))
    second = to_fhir(*_load(fixture))
    assert _dump(first) == _dump(second)
