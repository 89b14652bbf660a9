"""The mapping's code tables against the HL7 v2-to-FHIR IG concept maps (the CSV sources).

Reads ``shared/corpus/v2-to-fhir`` beside the repository; skips when it is absent.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from pipelines.fhir_map import _codes as codes
from pipelines.fhir_map.encounter import encounter_status
from schemas.events import Encounter

CORPUS = Path(__file__).resolve().parents[3] / ".." / "shared" / "corpus"
CONCEPT_MAPS = CORPUS / "v2-to-fhir" / "mappings" / "codesystems"

pytestmark = pytest.mark.skipif(
    not CONCEPT_MAPS.is_dir(), reason=f"v2-to-FHIR IG corpus not found at {CONCEPT_MAPS}"
)


def _tidy(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("\u00a0", " ").replace("\u2019", "'")).strip()


def concept_map(name: str) -> dict[str, tuple[str, str, str]]:
    """v2 code → (FHIR system, FHIR code, FHIR display) for the rows that map to a code."""
    with (CONCEPT_MAPS / f"HL7 Concept Map_ {name} - Sheet1.csv").open(newline="") as f:
        rows = list(csv.reader(f))[2:]
    mapped = {}
    for row in rows:
        cells = [*row, *[""] * 12]
        v2, fhir, system = _tidy(cells[0]), _tidy(cells[6]), _tidy(cells[9])
        if v2 and fhir:
            mapped[v2] = (system, fhir, _tidy(cells[8]) or _tidy(cells[7]))
    return mapped


def test_patient_class_to_encounter_class() -> None:
    assert concept_map("PatientClass[EncounterClass]") == codes.PATIENT_CLASS


def test_patient_class_to_encounter_status() -> None:
    table = concept_map("PatientClass[EncounterStatus]")
    assert set(table) == set(codes.PATIENT_CLASS)
    for patient_class, (_, status, _) in table.items():
        encounter = Encounter(patient_class=patient_class)
        assert encounter_status("admit", encounter) == status, patient_class


def test_abnormal_flags_to_interpretation() -> None:
    table = concept_map("InterpretationCodes")
    assert {code for code, (system, _, _) in table.items() if system} == set(codes.INTERPRETATION)
    for flag, display in codes.INTERPRETATION.items():
        assert table[flag] == (codes.V3_INTERPRETATION, flag, display)


@pytest.mark.parametrize(
    ("name", "ours"),
    [
        ("NameType", codes.NAME_USE),
        ("AddressType[Use]", codes.ADDRESS_USE),
        ("TelecommunicationUseCode", codes.TELECOM_USE),
    ],
)
def test_use_codes(name: str, ours: dict[str, str]) -> None:
    assert {v2: fhir for v2, (_, fhir, _) in concept_map(name).items()} == ours


def test_bed_status() -> None:
    table = concept_map("BedStatus")
    assert table == {code: (codes.V2_0116, code, text) for code, text in codes.BED_STATUS.items()}


def test_hospital_service() -> None:
    assert concept_map("HospitalService") == codes.HOSPITAL_SERVICE


@pytest.mark.parametrize(
    ("name", "ours", "system"),
    [
        ("IdentifierType", codes.IDENTIFIER_TYPE, codes.V2_0203),
        ("EventType", codes.EVENT_TYPE, codes.V2_0003),
    ],
)
def test_displays_are_the_igs(name: str, ours: dict[str, str], system: str) -> None:
    table = concept_map(name)
    for code, display in ours.items():
        assert table[code] == (system, code, display)
