"""Plain data the model produces and the HL7 renderer consumes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from connectors.simulator._people import Person

EventKind = Literal["A01", "A02", "A03", "R01"]


@dataclass(frozen=True, slots=True)
class Location:
    """A bed: PV1-3 as ward^room^bed^facility."""

    ward: str
    room: str
    bed: str
    facility: str


@dataclass(frozen=True, slots=True)
class Visit:
    """One inpatient stay of one person."""

    person: Person
    visit_number: str
    specialty: str
    admitted_at: datetime


@dataclass(frozen=True, slots=True)
class Vitals:
    """One set of the NEWS2 observations."""

    respiratory_rate: int
    spo2: int
    heart_rate: int
    temperature: float
    systolic_bp: int
    consciousness: Literal["A", "C", "V", "P", "U"]
    oxygen_l_min: float

    @property
    def on_oxygen(self) -> bool:
        """Whether the patient breathes supplemental oxygen (NEWS2 counts 2 points for it)."""
        return self.oxygen_l_min > 0


@dataclass(frozen=True, slots=True)
class SimEvent:
    """Something that happened to a patient, before rendering to HL7."""

    at: datetime
    kind: EventKind
    visit: Visit
    service: str
    location: Location
    prior_location: Location | None = None
    discharged_at: datetime | None = None
    vitals: Vitals | None = None
