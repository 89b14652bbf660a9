"""``wardstream conformance`` as a user runs it: a real child process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
CORPUS = ROOT / ".." / "shared" / "corpus" / "fhir-converter"


def wardstream(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )


def test_conformance_writes_json_and_markdown_and_keeps_the_preamble(tmp_path):
    if not (CORPUS / "index.json").is_file():
        pytest.skip(
            f"FHIR-Converter corpus not found at {CORPUS.resolve()} (see /work/shared/corpus)"
        )
    from engine.conformance import MARKER

    doc = tmp_path / "conformance.md"
    doc.write_text(f"# Ours\n\nHand-written words.\n\n{MARKER}\n\nold figures\n", encoding="utf-8")
    out = tmp_path / "report.json"
    result = wardstream(
        "conformance", str(CORPUS), "--json", str(out), "--markdown", str(doc), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "parsed 139" in result.stdout
    report = json.loads(out.read_text(encoding="utf-8"))
    assert (report["inputs"], report["parsed"]) == (139, 139)
    total = report["total"]
    assert total["messages"] == sum(row["messages"] for row in report["agreement"])
    assert total["compared"] == sum(row["compared"] for row in report["agreement"])
    assert f"agreement {total['agreed']}/{total['compared']}" in result.stdout
    text = doc.read_text(encoding="utf-8")
    assert text.startswith(f"# Ours\n\nHand-written words.\n\n{MARKER}\n")
    assert "old figures" not in text
    assert f"| **total** | **{total['messages']}** | **{total['compared']}** |" in text


def test_conformance_refuses_a_folder_that_is_not_the_corpus(tmp_path):
    result = wardstream("conformance", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2
    assert "not a FHIR-Converter corpus" in result.stderr
