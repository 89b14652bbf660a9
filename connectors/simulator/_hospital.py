"""The discrete-event core: patients, beds, queues and the handlers that move them.

Patient flow: an arrival is admitted to a bed of its specialty (assessment
unit first) or waits in the ED boarding queue; assessment patients move on to
a general ward; some deteriorate, and the sickest step up to critical care and
later step down; everyone is discharged at a planned time. A bed freed by a
departure is cleaned, then offered to step-downs first and boarders second.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from connectors.simulator._events import EventKind, Location, SimEvent, Visit, Vitals
from connectors.simulator._people import Person, make_person, mrn_for
from connectors.simulator._queue import EventQueue, derive_rng
from connectors.simulator._rhythm import (
    HOUR,
    ArrivalProcess,
    Clock,
    plan_discharge,
    sample_los_hours,
)
from connectors.simulator._vitals import Baseline, SeverityCurve, draw_baseline, measure
from connectors.simulator.config import HospitalConfig, SpecialtyConfig, WardConfig

MINUTE = 60
_MIN_STAY = 2 * HOUR


@dataclass(slots=True)
class Ward:
    """Beds of one ward; ``free`` holds beds ready for a patient."""

    index: int
    config: WardConfig
    beds: list[Location]
    free: list[Location]

    @classmethod
    def build(cls, index: int, config: WardConfig, facility: str) -> Ward:
        beds = []
        for i in range(config.beds):
            room = f"{config.code}-R{i // config.room_size + 1:02d}"
            beds.append(Location(config.code, room, f"{room}-B{i % config.room_size + 1:02d}",
                                 config.facility or facility))  # fmt: skip
        return cls(index=index, config=config, beds=beds, free=list(beds))


@dataclass(slots=True)
class Patient:
    """One arrival and everything the model tracks about its stay."""

    index: int
    rng: random.Random
    person: Person
    specialty: SpecialtyConfig
    home: str
    baseline: Baseline
    severity: SeverityCurve = field(default_factory=SeverityCurve)
    visit: Visit | None = None
    ward: Ward | None = None
    bed: Location | None = None
    waiting: str | None = None
    discharge_at: int | None = None
    discharge_token: int = 0
    move_token: int = 0
    vitals_token: int = 0
    in_icu: bool = False
    done: bool = False


class Hospital:
    """Runs the model between ``begin`` and ``end`` (model seconds) and yields events."""

    def __init__(
        self,
        config: HospitalConfig,
        *,
        seed: int,
        start: datetime,
        zone: ZoneInfo,
        begin: int,
        end: int,
    ) -> None:
        self.config = config
        self.seed = seed
        self.clock = Clock(start, zone)
        self.begin = begin
        self.end = end
        self.now = begin
        self.queue = EventQueue()
        self.wards = [Ward.build(i, w, config.facility) for i, w in enumerate(config.wards)]
        self.arrivals = ArrivalProcess(config, self.clock, derive_rng(seed, "arrivals"))
        self.arrival_rng = derive_rng(seed, "specialty")
        self.bed_rng = derive_rng(seed, "beds")
        ids = derive_rng(seed, "ids")
        self.mrn_offset = ids.randrange(10_000_000)
        self.visit_offset = ids.randrange(10_000_000)
        self.patients: dict[int, Patient] = {}
        self.next_index = 0
        self.boarding: dict[str, deque[Patient]] = {s.code: deque() for s in config.specialties}
        self.step_down: dict[str, deque[Patient]] = {s.code: deque() for s in config.specialties}
        self.icu_wait: deque[Patient] = deque()
        self.out: deque[SimEvent] = deque()
        self.handlers: dict[str, Callable[[int, int], None]] = {
            "arrival": self._on_arrival,
            "board_timeout": self._on_board_timeout,
            "bed_ready": self._on_bed_ready,
            "vitals": self._on_vitals,
            "move_on": self._on_move_on,
            "deteriorated": self._on_deteriorated,
            "step_down": self._on_step_down,
            "discharge": self._on_discharge,
            "snapshot": self._on_snapshot,
        }

    def events(self) -> Iterator[SimEvent]:
        """Process events in time order, yielding what they emit."""
        if self.begin < 0:
            self.queue.push(0, "snapshot")
        self.queue.push(self.arrivals.next_after(self.begin - 1), "arrival")
        while True:
            at = self.queue.peek_time()
            if at is None or at >= self.end:
                return
            at, kind, subject, token = self.queue.pop()
            self.now = at
            self.handlers[kind](subject, token)
            while self.out:
                yield self.out.popleft()

    def _emit(
        self,
        kind: EventKind,
        p: Patient,
        *,
        prior: Location | None = None,
        discharged: bool = False,
        vitals: Vitals | None = None,
    ) -> None:
        if self.now < 0:
            return  # warm-up: the model runs, nothing is sent
        assert p.visit is not None
        assert p.bed is not None
        assert p.ward is not None
        at = self.clock.at(self.now)
        self.out.append(
            SimEvent(at=at, kind=kind, visit=p.visit, service=p.ward.config.specialty,
                     location=p.bed, prior_location=prior,
                     discharged_at=at if discharged else None, vitals=vitals)
        )  # fmt: skip

    def _on_snapshot(self, _: int, __: int) -> None:
        inpatients = [(p.visit.admitted_at, p.index, p) for p in self.patients.values() if p.visit]
        for entry in sorted(inpatients, key=lambda item: item[:2]):
            self._emit("A01", entry[2])

    def _on_arrival(self, _: int, __: int) -> None:
        self.queue.push(self.arrivals.next_after(self.now), "arrival")
        specs = self.config.specialties
        spec = self.arrival_rng.choices(specs, weights=[s.arrival_share for s in specs])[0]
        index = self.next_index
        self.next_index += 1
        rng = derive_rng(self.seed, "patient", index)
        person = make_person(
            rng, index=index, mrn_offset=self.mrn_offset, on=self.clock.local(self.now).date(),
            min_age=spec.min_age, max_age=spec.max_age, female_fraction=spec.female_fraction,
        )  # fmt: skip
        age = (self.clock.local(self.now).date() - person.birth_date).days / 365.25
        p = Patient(index=index, rng=rng, person=person, specialty=spec, home=spec.code,
                    baseline=draw_baseline(rng, age_years=age))  # fmt: skip
        self.patients[index] = p
        ward = self._admission_ward(spec.code)
        if ward is not None:
            self._admit(p, ward)
            return
        p.waiting = "ed"
        self.boarding[spec.code].append(p)
        self.queue.push(
            self.now + round(self.config.max_boarding_hours * HOUR), "board_timeout", index
        )

    def _on_board_timeout(self, index: int, _: int) -> None:
        p = self.patients.get(index)
        if p is not None and p.waiting == "ed":
            # Diverted to another hospital: never admitted here, no messages.
            self.boarding[p.specialty.code].remove(p)
            p.waiting = None
            p.done = True
            del self.patients[index]

    def _best(self, wards: list[Ward]) -> Ward | None:
        open_wards = [w for w in wards if w.free]
        return max(open_wards, key=lambda w: len(w.free)) if open_wards else None

    def _wards(self, specialty: str, *kinds: str) -> list[Ward]:
        return [w for w in self.wards if w.config.specialty == specialty and w.config.kind in kinds]

    def _admission_ward(self, specialty: str) -> Ward | None:
        return (
            self._best(self._wards(specialty, "critical_care"))
            or self._best(self._wards(specialty, "assessment"))
            or self._best(self._wards(specialty, "general"))
        )

    def _take_bed(self, p: Patient, ward: Ward) -> Location | None:
        prior = p.bed
        if prior is not None and p.ward is not None:
            # The vacated bed needs cleaning before the next patient.
            clean = round(self.bed_rng.uniform(20, 75) * MINUTE)
            self.queue.push(self.now + clean, "bed_ready", p.ward.index, p.ward.beds.index(prior))
        bed = ward.free.pop(self.bed_rng.randrange(len(ward.free)))
        p.ward, p.bed, p.waiting = ward, bed, None
        return prior

    def _admit(self, p: Patient, ward: Ward) -> None:
        self._take_bed(p, ward)
        visit_number = "V" + mrn_for(p.index, self.visit_offset)[1:]
        p.visit = Visit(p.person, visit_number, p.specialty.code, self.clock.at(self.now))
        self._emit("A01", p)
        self.queue.push(self.now + round(p.rng.uniform(5, 30) * MINUTE), "vitals", p.index)
        if ward.config.kind == "critical_care":
            p.home = self.config.step_down_specialty
            p.severity.add(self.now, p.rng.uniform(0.55, 0.95))
            self._start_icu_course(p)
            return
        self._plan_stay(p)
        if ward.config.kind == "assessment":
            stay = round(p.rng.uniform(4, self.config.assessment_max_hours) * HOUR)
            if p.discharge_at is None or p.discharge_at > self.now + stay + _MIN_STAY:
                self.queue.push(self.now + stay, "move_on", p.index, p.move_token)

    def _plan_stay(self, p: Patient) -> None:
        rng = p.rng
        los = round(sample_los_hours(rng, p.specialty) * HOUR)
        if rng.random() < p.specialty.deterioration_probability:
            onset = self.now + max(_MIN_STAY, round(los * rng.uniform(0.1, 0.6)))
            peak_at = onset + round(rng.uniform(4, 18) * HOUR)
            peak = rng.uniform(0.45, 1.0)
            p.severity.add(onset, 0.0)
            p.severity.add(peak_at, peak)
            has_icu = any(w.config.kind == "critical_care" for w in self.wards)
            if has_icu and peak >= 0.7 and rng.random() < self.config.step_up_probability:
                self.queue.push(peak_at, "deteriorated", p.index)
                return
            recovered = peak_at + round(rng.uniform(2, 8) * HOUR)
            p.severity.add(recovered, peak)
            recovered += round(rng.uniform(12, 48) * HOUR)
            p.severity.add(recovered, 0.0)
            los = max(los, recovered - self.now + round(rng.uniform(12, 36) * HOUR))
        self._schedule_discharge(p, self.now + los)

    def _schedule_discharge(self, p: Patient, natural: int) -> None:
        p.discharge_token += 1
        p.discharge_at = plan_discharge(
            p.rng, self.config, self.clock, natural=natural, earliest=self.now + _MIN_STAY
        )
        self.queue.push(p.discharge_at, "discharge", p.index, p.discharge_token)

    def _transfer(self, p: Patient, ward: Ward) -> None:
        prior = self._take_bed(p, ward)
        self._emit("A02", p, prior=prior)

    def _start_icu_course(self, p: Patient) -> None:
        p.in_icu = True
        p.discharge_token += 1  # a planned ward discharge no longer applies
        p.discharge_at = None
        p.move_token += 1
        stay = round(p.rng.lognormvariate(math.log(self.config.icu_los_median_hours), 0.7) * HOUR)
        stay = max(stay, 6 * HOUR)
        p.severity.truncate(self.now)
        p.severity.add(self.now + stay, 0.15)
        self.queue.push(self.now + stay, "step_down", p.index)

    def _on_deteriorated(self, index: int, _: int) -> None:
        p = self.patients.get(index)
        if p is None or p.in_icu:
            return
        ward = self._best(self._wards_of_kind("critical_care"))
        if ward is None:
            p.waiting = "icu"
            self.icu_wait.append(p)
            return
        self._transfer(p, ward)
        self._start_icu_course(p)

    def _wards_of_kind(self, kind: str) -> list[Ward]:
        return [w for w in self.wards if w.config.kind == kind]

    def _on_step_down(self, index: int, _: int) -> None:
        p = self.patients[index]
        ward = self._best(self._wards(p.home, "general"))
        if ward is None:
            p.waiting = "step_down"
            self.step_down[p.home].append(p)
            return
        self._leave_icu(p, ward)

    def _leave_icu(self, p: Patient, ward: Ward) -> None:
        self._transfer(p, ward)
        p.in_icu = False
        p.severity.add(self.now + 24 * HOUR, 0.0)
        stay = p.rng.lognormvariate(math.log(self.config.post_icu_los_median_hours), 0.6)
        self._schedule_discharge(p, self.now + round(stay * HOUR))

    def _on_move_on(self, index: int, token: int) -> None:
        p = self.patients.get(index)
        if p is None or p.in_icu or p.waiting or token != p.move_token:
            return
        ward = self._best(self._wards(p.specialty.code, "general"))
        if ward is not None:
            self._transfer(p, ward)
        elif p.discharge_at is None or p.discharge_at > self.now + 6 * HOUR:
            self.queue.push(self.now + 4 * HOUR, "move_on", index, token)

    def _on_discharge(self, index: int, token: int) -> None:
        p = self.patients.get(index)
        if p is None or token != p.discharge_token:
            return
        self._emit("A03", p, discharged=True)
        assert p.ward is not None
        assert p.bed is not None
        clean = round(self.bed_rng.uniform(20, 75) * MINUTE)
        self.queue.push(self.now + clean, "bed_ready", p.ward.index, p.ward.beds.index(p.bed))
        p.done = True
        del self.patients[index]

    def _on_vitals(self, index: int, _: int) -> None:
        p = self.patients.get(index)
        if p is None or p.done:
            return
        severity = p.severity.at(self.now)
        self._emit("R01", p, vitals=measure(p.rng, p.baseline, severity))
        acute = p.in_icu or p.waiting == "icu" or severity > 0.2
        hours = (
            self.config.acute_vitals_interval_hours if acute else self.config.vitals_interval_hours
        )
        jitter = p.rng.uniform(-0.1, 0.1) * hours
        self.queue.push(
            self.now + max(10 * MINUTE, round((hours + jitter) * HOUR)), "vitals", index
        )

    def _on_bed_ready(self, ward_index: int, bed_index: int) -> None:
        ward = self.wards[ward_index]
        ward.free.append(ward.beds[bed_index])
        kind, code = ward.config.kind, ward.config.specialty
        while ward.free:
            if kind == "critical_care" and self.icu_wait:
                p = self.icu_wait.popleft()
                self._transfer(p, ward)
                self._start_icu_course(p)
            elif kind == "general" and self.step_down[code]:
                self._leave_icu(self.step_down[code].popleft(), ward)
            elif self.boarding[code]:
                self._admit(self.boarding[code].popleft(), ward)
            else:
                return
