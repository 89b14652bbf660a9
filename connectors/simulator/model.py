"""The simulated hospital: a seeded discrete-event model of arrivals, beds, transfers,
deterioration and discharges, emitting HL7v2 messages lazily in time order.

Time inside the model is whole seconds since ``start``; every random draw comes
from ``random.Random`` instances derived from the seed, so the same seed,
config and start produce the same bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from connectors.simulator import hl7
from connectors.simulator._events import EventKind, Location, Vitals
from connectors.simulator._hospital import Hospital
from connectors.simulator.config import HospitalConfig


@dataclass(frozen=True, slots=True)
class SimMessage:
    """One rendered message with the facts a test or a dashboard needs without parsing it."""

    at: datetime
    kind: EventKind
    text: str
    control_id: str
    patient_id: str
    visit_number: str
    ward: str
    bed: str
    service: str
    prior_ward: str | None = None
    vitals: Vitals | None = None

    @property
    def message_type(self) -> str:
        """``ADT^A01`` style type of the message."""
        return f"{'ORU' if self.kind == 'R01' else 'ADT'}^{self.kind}"


def run_tag(config: HospitalConfig, *, seed: int, start: datetime) -> str:
    """8 hex characters naming a run, so control ids of different runs never collide."""
    key = f"{seed}|{start.astimezone(UTC).isoformat()}|{config.model_dump_json()}"
    return hashlib.sha256(key.encode()).hexdigest()[:8].upper()


def simulate(
    config: HospitalConfig,
    *,
    seed: int,
    start: datetime,
    duration: timedelta,
    warm_up: timedelta = timedelta(0),
) -> Iterator[SimMessage]:
    """Messages of a simulated ``duration`` from ``start``, lazily, in time order.

    The hospital opens empty ``warm_up`` before ``start``; nothing is emitted
    for that period, and at ``start`` an A01 is emitted for every patient then
    in a bed (PV1-44 keeps the true admission time), so the stream's census is
    realistic from its first message.
    """
    if start.tzinfo is None or start.utcoffset() is None:
        raise ValueError("start must be an aware datetime")
    if duration <= timedelta(0):
        raise ValueError("duration must be positive")
    if warm_up < timedelta(0):
        raise ValueError("warm_up must not be negative")
    zone = ZoneInfo(config.timezone)
    hospital = Hospital(
        config,
        seed=seed,
        start=start.astimezone(UTC),
        zone=zone,
        begin=-int(warm_up.total_seconds()),
        end=int(duration.total_seconds()),
    )
    # Arguments are checked above, at call time; messages come lazily from here.
    return _messages(hospital, config, zone, run_tag(config, seed=seed, start=start))


def _messages(
    hospital: Hospital, config: HospitalConfig, zone: ZoneInfo, tag: str
) -> Iterator[SimMessage]:
    for n, event in enumerate(hospital.events()):
        control_id = f"{tag}{n:010d}"
        yield SimMessage(
            at=event.at,
            kind=event.kind,
            text=hl7.render(event, config=config, zone=zone, control_id=control_id),
            control_id=control_id,
            patient_id=event.visit.person.mrn,
            visit_number=event.visit.visit_number,
            ward=event.location.ward,
            bed=event.location.bed,
            service=event.service,
            prior_ward=event.prior_location.ward if event.prior_location else None,
            vitals=event.vitals,
        )


__all__ = ["Location", "SimMessage", "run_tag", "simulate"]
