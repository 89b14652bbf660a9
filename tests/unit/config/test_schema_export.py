"""The JSON Schemas in schemas/ are generated, stable, and kept up to date."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.config import WardstreamConfig
from engine.schema_export import (
    DEFAULT_SCHEMA_DIR,
    check_schemas,
    export_schemas,
    main,
    render_all,
)
from schemas.topics import CATALOGUE

EXPECTED_FILES = {"config.schema.json", "envelope.schema.json", "topics.json"}


def test_committed_schemas_are_up_to_date() -> None:
    stale = check_schemas(DEFAULT_SCHEMA_DIR)
    assert stale == [], (
        f"stale or missing in {DEFAULT_SCHEMA_DIR}: {stale}; "
        "regenerate with `python -m engine.schema_export` (or `wardstream schema`)"
    )


def test_export_writes_every_file_with_stable_formatting(tmp_path: Path) -> None:
    written = export_schemas(tmp_path / "out")

    assert {p.name for p in written} == EXPECTED_FILES
    for path in written:
        text = path.read_text(encoding="utf-8")
        assert text.endswith("}\n")
        assert text == json.dumps(json.loads(text), indent=2, ensure_ascii=False) + "\n"
    assert render_all() == {p.name: p.read_text(encoding="utf-8") for p in written}


def test_config_schema_keeps_field_order_and_descriptions(tmp_path: Path) -> None:
    export_schemas(tmp_path)
    schema = json.loads((tmp_path / "config.schema.json").read_text(encoding="utf-8"))

    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert list(schema["properties"]) == list(WardstreamConfig.model_fields)
    assert schema["additionalProperties"] is False
    mllp = schema["$defs"]["MllpSourceConfig"]
    assert list(mllp["properties"])[:3] == ["type", "host", "port"]
    assert all("description" in p for p in mllp["properties"].values())


def test_topic_catalogue_lists_every_topic(tmp_path: Path) -> None:
    export_schemas(tmp_path)
    document = json.loads((tmp_path / "topics.json").read_text(encoding="utf-8"))
    assert [t["name"] for t in document["topics"]] == list(CATALOGUE)


def test_check_reports_stale_and_missing_files(tmp_path: Path) -> None:
    assert sorted(check_schemas(tmp_path)) == sorted(EXPECTED_FILES)
    export_schemas(tmp_path)
    assert check_schemas(tmp_path) == []

    config = tmp_path / "config.schema.json"
    config.write_text(config.read_text(encoding="utf-8").replace("8080", "8081"), encoding="utf-8")
    (tmp_path / "topics.json").unlink()

    assert sorted(check_schemas(tmp_path)) == ["config.schema.json", "topics.json"]


def test_command_line_check_and_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check", str(tmp_path)]) == 1
    assert "config.schema.json: stale" in capsys.readouterr().out
    assert main([str(tmp_path)]) == 0
    assert main(["--check", str(tmp_path)]) == 0
