"""The conformance report over FHIR-Converter's corpus: every input parses, every
mapped ADT and ORU message gives valid FHIR, the comparison pairs what it should,
and docs/conformance.md holds the figures the command gives today."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from engine.conformance import MARKER, ConformanceReport, render_markdown, run_conformance
from engine.conformance.report import MessageOutcome

ROOT = Path(__file__).resolve().parents[3]
CORPUS = ROOT / ".." / "shared" / "corpus" / "fhir-converter"
DOC = ROOT / "docs" / "conformance.md"
# /work/shared/corpus/README.md: 139 inputs, one message each.
INPUTS = 139
NOT_MAPPED = {
    "A09",
    "A10",
    "A14",
    "A15",
    "A16",
    "A25",
    "A26",
    "A27",
    "A29",
    "A41",
    "A45",
    "A47",
    "A60",
}


@cache
def report() -> ConformanceReport:
    if not (CORPUS / "index.json").is_file():
        pytest.skip(
            f"FHIR-Converter corpus not found at {CORPUS.resolve()} (see /work/shared/corpus)"
        )
    return run_conformance(CORPUS)


def outcome(name: str) -> MessageOutcome:
    (found,) = [m for m in report().messages if m.file == name]
    return found


def test_every_input_parses():
    result = report()
    assert result.inputs == INPUTS
    assert len(result.messages) == INPUTS
    assert result.parse_failures() == []
    assert {m.intake for m in result.messages} == {"AA"}


def test_every_mapped_adt_and_oru_message_gives_valid_bundles():
    scope = report().in_scope()
    assert {m.message_type.split("^")[0] for m in scope} == {"ADT", "ORU"}
    assert [(m.file, m.invalid) for m in scope if m.invalid] == []
    mapped = [m for m in scope if m.mapped]
    assert mapped
    assert all(m.bundles >= 1 and m.resources > m.bundles for m in mapped)
    assert len(mapped) + len(report().dead_letters()) == len(scope)


def test_only_the_triggers_left_unmapped_dead_letter_and_they_say_why():
    dead = report().dead_letters()
    assert {m.message_type.split("^")[1] for m in dead} == NOT_MAPPED
    for message in dead:
        assert message.dead_letter == f"MSH-9: {message.message_type} has no canonical mapping"


def test_every_compared_message_is_scored_in_its_type_row():
    result = report()
    compared = [m for m in result.messages if m.compared]
    assert sum(row.messages for row in result.rows()) == len(compared) == result.total().messages
    assert all(m.fields for m in compared)
    total = result.total().score
    assert 0 < total.agreed <= total.compared
    assert len(result.results("agree", "disagree")) == total.compared
    assert len(result.results("disagree")) == total.compared - total.agreed


def test_a_real_admission_pairs_patient_encounter_and_bed():
    fields = {(f.resource, f.field): f for f in outcome("ADT-A01-01.hl7").fields}
    assert fields[("Patient", "gender")].status == "agree"
    assert fields[("Patient", "birthDate")].status == "agree"
    assert fields[("Encounter", "class")].status == "agree"
    # PV1-44 sent at +01:10, written by FHIR-Converter at +05:30: the same instant.
    start = fields[("Encounter", "period.start")]
    assert (start.ours, start.theirs) == ("2015-02-08T11:34:19+01:10", "2015-02-08T15:54:19+05:30")
    assert start.status == "agree"
    bed = fields[("Encounter", "location(active)")]
    assert bed.status == "agree"
    assert bed.ours == "HUH AE OMU^OMU B^Bed 03^HOMERTON UNIVER"


def test_results_pair_by_code_and_agree_on_values():
    fields = [f for f in outcome("LAB-ORU-1.hl7").fields if f.resource == "Observation"]
    values = {f.key: f for f in fields if f.field == "value"}
    assert values["Observation 11273-0#1"].ours == "Quantity 4.06"
    assert all(f.status == "agree" for f in values.values())


def test_every_disagreement_of_the_corpus_has_a_named_cause():
    # A new disagreement (a mapping change, a new corpus file) must be looked at and
    # either fixed or explained in engine/conformance/_quirks.py.
    unexplained = [
        (m.file, f.field, f.ours, f.theirs) for m, f in report().results("disagree") if not f.quirk
    ]
    assert unexplained == []


def test_the_document_holds_todays_figures():
    result = report()
    text = DOC.read_text(encoding="utf-8")
    assert MARKER in text, "docs/conformance.md lost its generated part"
    generated = text.split(MARKER, 1)[1].lstrip("\n")
    assert generated == render_markdown(result), (
        "docs/conformance.md is stale: run `.venv/bin/wardstream conformance"
        " ../shared/corpus/fhir-converter --markdown docs/conformance.md`"
    )
