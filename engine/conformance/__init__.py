"""Conformance of the HL7v2 → FHIR R4 mapping with Microsoft FHIR-Converter's corpus.

:func:`run_conformance` runs every corpus input through the engine's own
intake → normalize → FHIR path and compares the result field by field with
FHIR-Converter's expected bundles; :func:`render_markdown` and
:func:`write_markdown` write it up. ``wardstream conformance DIR`` and
``bench/conformance.py`` both call these.
"""

from engine.conformance.markdown import MARKER, render_markdown, render_summary, write_markdown
from engine.conformance.report import (
    ConformanceReport,
    CorpusError,
    MessageOutcome,
    TypeRow,
    run_conformance,
)
from engine.conformance.scoring import FieldResult, Score, agrees, compare_fields, score

__all__ = [
    "MARKER",
    "ConformanceReport",
    "CorpusError",
    "FieldResult",
    "MessageOutcome",
    "Score",
    "TypeRow",
    "agrees",
    "compare_fields",
    "render_markdown",
    "render_summary",
    "run_conformance",
    "score",
    "write_markdown",
]
