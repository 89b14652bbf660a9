"""Field-level agreement between two FHIR renderings of one message.

A compared field holds one :data:`Value` per side. Values are plain text,
numbers, :class:`~engine.conformance._times.FhirTime` instants,
:class:`Place` (a point of care by its PL components), :class:`SystemName`
(an identifier or code system, read as the authority it names) or a
:class:`Tagged` value (an Observation value with its FHIR type). Each field
ends as one :class:`FieldResult`: agreed, disagreed, or present on one side
only; :func:`score` counts them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote

from engine.conformance._times import FhirTime, same_time

Status = Literal["agree", "disagree", "ours_only", "theirs_only"]

OURS_BASES = ("urn:wardstream:id:", "urn:wardstream:code:")
"""Our identifier and local code system bases (pipelines.fhir_map)."""
THEIRS_BASES = (
    "http://example.com/v2-to-fhir-converter/Identifier/",
    "http://example.com/v2-to-fhir-converter/CodeSystem/",
)
"""FHIR-Converter's bases for the same: systems named after an HL7 authority or table."""


PART_SEPARATOR = "; "
"""Between the parts of a repeating value (given names, address lines) as printed."""


@dataclass(frozen=True, slots=True)
class Place:
    """A point of care by its PL components (PL.1 ward, PL.2 room, PL.3 bed, PL.4 facility)."""

    ward: str | None
    room: str | None
    bed: str | None
    facility: str | None

    def __str__(self) -> str:
        parts = (self.ward, self.room, self.bed, self.facility)
        return "^".join(p or "" for p in parts).rstrip("^")


@dataclass(frozen=True, slots=True)
class SystemName:
    """An Identifier.system or Coding.system. Both sides build systems from the HL7
    name of an authority or table under a base of their own; what is compared is
    the name (``urn:wardstream:id:MR1`` and ``http://example.com/.../Identifier/MR1``
    agree), or the whole URI when it has no such base (``urn:oid:...``, ``http://loinc.org``)."""

    uri: str

    @property
    def name(self) -> str:
        for base in OURS_BASES:
            if self.uri.startswith(base):
                # Ours percent-encode the HL7 name (pipelines.fhir_map.ids).
                return unquote(self.uri.removeprefix(base))
        for base in THEIRS_BASES:
            if self.uri.startswith(base):
                return self.uri.removeprefix(base)
        return self.uri

    def __str__(self) -> str:
        return self.uri


@dataclass(frozen=True, slots=True)
class Coded:
    """A code with its system (``None`` when the coding carries none)."""

    system: SystemName | None
    code: str

    def __str__(self) -> str:
        return f"{self.system}|{self.code}" if self.system else self.code


@dataclass(frozen=True, slots=True)
class Ident:
    """An identifier value with its system. Two agree when the values are equal and
    the systems name the same authority, or when either side gives no system."""

    system: SystemName | None
    value: str

    def __str__(self) -> str:
        return f"{self.system}|{self.value}" if self.system else self.value


@dataclass(frozen=True, slots=True)
class Tagged:
    """A choice-type value with its type: ``Quantity 4.06``, ``string "text"``."""

    kind: str
    value: Value

    def __str__(self) -> str:
        shown = f'"{self.value}"' if isinstance(self.value, str) else show(self.value)
        return f"{self.kind} {shown}"


Value = str | float | FhirTime | Place | SystemName | Coded | Ident | Tagged | tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FieldResult:
    """One compared field of one paired resource (or of a resource one side lacks)."""

    resource: str
    key: str
    field: str
    status: Status
    ours: str | None = None
    theirs: str | None = None
    quirk: str | None = None


def show(value: Value | None) -> str | None:
    """The value as the report prints it."""
    if value is None:
        return None
    if isinstance(value, tuple):
        return PART_SEPARATOR.join(value)
    if isinstance(value, float):
        # 4.0 prints as 4, as FHIR JSON writes it; anything else in full.
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return str(value)


def agrees(ours: Value, theirs: Value) -> bool:
    """Whether two values of a field say the same thing (see the module docstring)."""
    if isinstance(ours, FhirTime) and isinstance(theirs, FhirTime):
        return same_time(ours, theirs)
    if isinstance(ours, float) and isinstance(theirs, float):
        return math.isclose(ours, theirs, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(ours, SystemName) and isinstance(theirs, SystemName):
        return ours.name == theirs.name
    if isinstance(ours, Coded) and isinstance(theirs, Coded):
        if ours.code != theirs.code:
            return False
        if ours.system is None or theirs.system is None:
            return ours.system is None and theirs.system is None
        return agrees(ours.system, theirs.system)
    if isinstance(ours, Ident) and isinstance(theirs, Ident):
        if ours.value != theirs.value:
            return False
        return ours.system is None or theirs.system is None or agrees(ours.system, theirs.system)
    if isinstance(ours, Tagged) and isinstance(theirs, Tagged):
        return ours.kind == theirs.kind and agrees(ours.value, theirs.value)
    return type(ours) is type(theirs) and ours == theirs


def compare_fields(
    resource: str,
    key: str,
    ours: Mapping[str, Value | None],
    theirs: Mapping[str, Value | None],
) -> list[FieldResult]:
    """Every field either side has, in our order then theirs: agreed or not where both
    have it, one-sided otherwise. A ``None`` value is a field that side lacks."""
    names = list(dict.fromkeys([*ours, *theirs]))
    results: list[FieldResult] = []
    for name in names:
        mine, other = ours.get(name), theirs.get(name)
        if mine is None and other is None:
            continue
        if other is None:
            status: Status = "ours_only"
        elif mine is None:
            status = "theirs_only"
        else:
            status = "agree" if agrees(mine, other) else "disagree"
        results.append(FieldResult(resource, key, name, status, show(mine), show(other)))
    return results


@dataclass(frozen=True, slots=True)
class Score:
    """Counts of field results: ``score`` is agreed / compared (fields both sides have)."""

    compared: int = 0
    agreed: int = 0
    ours_only: int = 0
    theirs_only: int = 0

    @property
    def score(self) -> float | None:
        return self.agreed / self.compared if self.compared else None

    def __add__(self, other: Score) -> Score:
        return Score(
            self.compared + other.compared,
            self.agreed + other.agreed,
            self.ours_only + other.ours_only,
            self.theirs_only + other.theirs_only,
        )


def score(results: Iterable[FieldResult]) -> Score:
    """The counts of ``results``."""
    compared = agreed = ours_only = theirs_only = 0
    for result in results:
        if result.status in ("agree", "disagree"):
            compared += 1
            agreed += result.status == "agree"
        elif result.status == "ours_only":
            ours_only += 1
        else:
            theirs_only += 1
    return Score(compared, agreed, ours_only, theirs_only)
