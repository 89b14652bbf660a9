"""Where the shared HL7v2 corpus lives, and how its files split into messages."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from pipelines.hl7v2 import split_batch

FHIR_CONVERTER = Path(__file__).resolve().parents[3] / ".." / "shared" / "corpus" / "fhir-converter"
INPUT = FHIR_CONVERTER / "input"
# /work/shared/corpus/README.md: 139 inputs, copied byte for byte.
INPUT_COUNT = 139
# Parametrize by file name even when the corpus is absent, so that the tests
# skip with a message instead of collecting nothing.
INPUT_NAMES = sorted(p.name for p in INPUT.glob("*.hl7")) or ["<corpus absent>"]
_BATCH_HEADERS = (b"FHS", b"BHS")


def require_corpus() -> None:
    """Skip the calling test when the corpus is not checked out beside the repo."""
    if not INPUT.is_dir():
        pytest.skip(f"HL7v2 corpus not found at {INPUT.resolve()} (see /work/shared/corpus)")


def read_input(name: str) -> bytes:
    """The bytes of one corpus input, skipping when the corpus is absent."""
    require_corpus()
    return (INPUT / name).read_bytes()


@cache
def index_entries() -> dict[str, dict[str, Any]]:
    """``index.json`` keyed by input file name (it records MSH-9 and MSH-12)."""
    require_corpus()
    entries = json.loads((FHIR_CONVERTER / "index.json").read_text(encoding="utf-8"))
    return {Path(e["input"]).name: e for e in entries}


def is_batch(data: bytes) -> bool:
    """Whether ``data`` is an HL7 batch file (an FHS or BHS segment opens a line)."""
    lines = data.removeprefix(b"\xef\xbb\xbf").replace(b"\r", b"\n").split(b"\n")
    return any(line[:3] in _BATCH_HEADERS for line in lines)


def messages_in(data: bytes) -> list[bytes] | list[str]:
    """The messages of one input: the bytes as they are, or, for a batch file,
    the message texts ``split_batch`` finds in it."""
    if is_batch(data):
        # The corpus is ASCII after the byte-order mark (its README says so).
        return split_batch(data.decode("utf-8-sig"))
    return [data]
