"""Property: after any run of admissions, registrations, transfers and discharges,
their cancels (A11, A12, A13) applied last-first bring the census back through
every state it passed, to where it started; events delivered twice change nothing."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.state import StepState
from pipelines.census import apply_event, census_snapshot, ward_census
from schemas.events import AdtEvent, BedLocation, Encounter, Identifier, Patient

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
WARDS = ("AMU", "CCU", "ICU")
BEDS = tuple(f"B{n}" for n in range(1, 4))
PATIENTS = tuple(f"p{n}" for n in range(5))
TRIGGERS = {
    "admit": "A01",
    "transfer": "A02",
    "discharge": "A03",
    "register": "A04",
    "leave_out": "A21",
    "cancel_admit": "A11",
    "cancel_transfer": "A12",
    "cancel_discharge": "A13",
}
CANCELS = {
    "admit": "cancel_admit",
    "register": "cancel_admit",
    "transfer": "cancel_transfer",
    "discharge": "cancel_discharge",
}
_ids = itertools.count()


def adt(action: str, patient: str, location: BedLocation | None = None) -> AdtEvent:
    n = next(_ids)
    return AdtEvent(
        action=action,
        trigger=TRIGGERS[action],
        message_id=f"m{n}",
        occurred_at=T0 + timedelta(minutes=n),
        patient=Patient(identifiers=[Identifier(value=patient)]),
        encounter=Encounter(location=location),
    )


def view(state: StepState) -> dict[str, tuple[dict[str, str], int]]:
    """What the census shows: each ward's beds and how many are on leave."""
    return {
        ward: (held, ward_census(state, ward, T0).on_leave)
        for ward, held in census_snapshot(state).items()
    }


def free_beds(where: dict[str, BedLocation]) -> list[BedLocation]:
    taken = {(loc.ward, loc.bed) for loc in where.values()}
    return [
        BedLocation(ward=ward, room="R1", bed=bed)
        for ward in WARDS
        for bed in BEDS
        if (ward, bed) not in taken
    ]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_cancels_applied_last_first_retrace_the_census(data):
    state = StepState({})
    # Where each patient lies, as HL7 sees it: the model that keeps the run valid.
    where: dict[str, BedLocation] = {}
    for patient in data.draw(st.lists(st.sampled_from(PATIENTS), unique=True, max_size=3)):
        bed = free_beds(where)[0]
        apply_event(state, adt("admit", patient, bed))
        where[patient] = bed
    if where and data.draw(st.booleans()):
        on_leave = data.draw(st.sampled_from(sorted(where)))
        apply_event(state, adt("leave_out", on_leave))

    done: list[tuple[AdtEvent, dict, BedLocation | None]] = []
    for _ in range(data.draw(st.integers(1, 7))):
        inside = sorted(where)
        outside = [p for p in PATIENTS if p not in where]
        free = free_beds(where)
        choices = [
            a
            for a, ok in (
                ("admit", outside and free),
                ("register", outside),
                ("transfer", inside and free),
                ("discharge", inside),
            )
            if ok
        ]
        action = data.draw(st.sampled_from(choices))
        patient = data.draw(st.sampled_from(outside if action in ("admit", "register") else inside))
        before = view(state)
        origin = where.get(patient)
        if action == "register":
            target: BedLocation | None = BedLocation(ward="ED")
        elif action == "discharge":
            target = None
        else:
            target = data.draw(st.sampled_from(free))
        forward = adt(action, patient, target)
        apply_event(state, forward)
        if data.draw(st.booleans()):
            apply_event(state, forward)  # redelivered
        if target is None:
            del where[patient]
        else:
            where[patient] = target
        done.append((forward, before, origin))

    for forward, before, origin in reversed(done):
        action = CANCELS[forward.action]
        # HL7 sends A12 with the location returned to in PV1-3; sometimes it is left out.
        sent = origin if action == "cancel_transfer" and data.draw(st.booleans()) else None
        cancel = adt(action, forward.patient_id, sent)
        apply_event(state, cancel)
        if data.draw(st.booleans()):
            apply_event(state, cancel)  # redelivered
        assert view(state) == before, (forward.action, cancel.action)
