"""The simulated hospital behind ``wardstream simulate``: a seeded discrete-event
model of wards and patients that emits HL7 v2.5 ADT and ORU messages."""

from connectors.simulator._events import Location, Vitals
from connectors.simulator.config import (
    HospitalConfig,
    SpecialtyConfig,
    WardConfig,
    default_hospital,
    tiny_hospital,
)
from connectors.simulator.model import SimMessage, simulate
from connectors.simulator.run import run_live, write_history

__all__ = [
    "HospitalConfig",
    "Location",
    "SimMessage",
    "SpecialtyConfig",
    "Vitals",
    "WardConfig",
    "default_hospital",
    "run_live",
    "simulate",
    "tiny_hospital",
    "write_history",
]
