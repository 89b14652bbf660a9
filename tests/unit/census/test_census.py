"""The census follows every ADT action: occupy, move, release, cancel, swap,
leave and merge; it is idempotent and emits each changed ward's census."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from engine.state import StepState
from engine.types import Envelope
from pipelines.census import CensusStep, apply_event, census_snapshot, ward_census
from pipelines.census._beds import BUCKET, KEEP_BUCKETS
from schemas.census import WardCensus
from schemas.events import (
    AdtEvent,
    BedLocation,
    Encounter,
    Identifier,
    LocationEvent,
    Patient,
)
from schemas.topics import CENSUS_WARDS, DLQ

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
TRIGGERS = {
    "admit": "A01",
    "transfer": "A02",
    "discharge": "A03",
    "register": "A04",
    "preadmit": "A05",
    "change_to_inpatient": "A06",
    "change_to_outpatient": "A07",
    "update": "A08",
    "cancel_admit": "A11",
    "cancel_transfer": "A12",
    "cancel_discharge": "A13",
    "swap_beds": "A17",
    "leave_out": "A21",
    "leave_return": "A22",
    "merge": "A40",
}
_ids = itertools.count()


def event(
    action,
    patient,
    ward=None,
    bed=None,
    *,
    room="R1",
    other=None,
    other_ward=None,
    other_bed=None,
    merged=(),
):
    """An ADT event with a fresh message id (a distinct event each call)."""

    def visit(w, b):
        return Encounter(
            location=BedLocation(ward=w, room=room if b else None, bed=b) if w else None
        )

    n = next(_ids)
    return AdtEvent(
        action=action,
        trigger=TRIGGERS[action],
        message_id=f"m{n}",
        occurred_at=T0 + timedelta(minutes=n),
        patient=Patient(identifiers=[Identifier(value=patient)]),
        encounter=visit(ward, bed),
        other_patient=Patient(identifiers=[Identifier(value=other)]) if other else None,
        other_encounter=visit(other_ward, other_bed) if other else None,
        merged_identifiers=[Identifier(value=m) for m in merged],
    )


def beds(state):
    return census_snapshot(state)


def occupied(state):
    return {ward: len(held) for ward, held in census_snapshot(state).items()}


def admitted(*patients):
    """A census with patient i admitted to AMU bed B<i+1>."""
    state = StepState({})
    for i, patient in enumerate(patients, start=1):
        apply_event(state, event("admit", patient, "AMU", f"B{i}"))
    return state


def test_admit_transfer_discharge_move_one_bed():
    state = admitted("p1", "p2")
    assert occupied(state) == {"AMU": 2}
    assert apply_event(state, event("transfer", "p1", "ICU", "B1")) == {"AMU", "ICU"}
    assert occupied(state) == {"AMU": 1, "ICU": 1}
    assert apply_event(state, event("discharge", "p1")) == {"ICU"}
    assert beds(state) == {"AMU": {"R1/B2": "p2"}}


def test_register_occupies_only_with_a_location_and_preadmit_never():
    state = StepState({})
    assert apply_event(state, event("register", "p1")) == set()
    assert apply_event(state, event("preadmit", "p2", "AMU", "B1")) == set()
    assert apply_event(state, event("register", "p3", "ED")) == {"ED"}
    assert beds(state) == {"ED": {"unassigned:p3": "p3"}}


def test_change_to_inpatient_occupies_and_change_to_outpatient_releases():
    state = StepState({})
    apply_event(state, event("change_to_inpatient", "p1", "AMU", "B1"))
    assert beds(state) == {"AMU": {"R1/B1": "p1"}}
    apply_event(state, event("change_to_outpatient", "p1", "OPD"))
    assert beds(state) == {}


def test_update_moves_only_a_patient_in_the_census_whose_location_differs():
    state = admitted("p1")
    assert apply_event(state, event("update", "p1", "AMU", "B1")) == set()
    # A ward without a bed is no news about a patient already in that ward.
    assert apply_event(state, event("update", "p1", "AMU")) == set()
    assert apply_event(state, event("update", "p1", "AMU", "B7")) == {"AMU"}
    assert beds(state) == {"AMU": {"R1/B7": "p1"}}
    assert apply_event(state, event("update", "p2", "AMU", "B2")) == set()
    assert beds(state) == {"AMU": {"R1/B7": "p1"}}


def test_cancel_admit_undoes_the_admission():
    state = admitted("p1", "p2")
    apply_event(state, event("cancel_admit", "p1"))
    assert beds(state) == {"AMU": {"R1/B2": "p2"}}


def test_cancel_admit_after_an_emergency_registration_returns_to_the_department():
    state = StepState({})
    apply_event(state, event("register", "p1", "ED"))
    apply_event(state, event("admit", "p1", "AMU", "B1"))
    apply_event(state, event("cancel_admit", "p1"))
    assert beds(state) == {"ED": {"unassigned:p1": "p1"}}


def test_cancel_transfer_goes_back_to_the_bed_before_the_transfer_it_cancels():
    state = admitted("p1")
    apply_event(state, event("transfer", "p1", "CCU", "B3"))
    apply_event(state, event("transfer", "p1", "ICU", "B9"))
    apply_event(state, event("cancel_transfer", "p1"))
    assert beds(state) == {"CCU": {"R1/B3": "p1"}}
    apply_event(state, event("cancel_transfer", "p1"))
    assert beds(state) == {"AMU": {"R1/B1": "p1"}}


def test_cancel_transfer_when_the_old_bed_was_taken_uses_the_message_location():
    state = admitted("p1")
    apply_event(state, event("transfer", "p1", "ICU", "B9"))
    apply_event(state, event("admit", "p2", "AMU", "B1"))
    apply_event(state, event("cancel_transfer", "p1", "AMU", "B5"))
    assert beds(state) == {"AMU": {"R1/B1": "p2", "R1/B5": "p1"}}


def test_cancel_transfer_without_history_follows_the_message():
    state = StepState({})
    apply_event(state, event("cancel_transfer", "p1", "AMU", "B2"))
    assert beds(state) == {"AMU": {"R1/B2": "p1"}}


def test_cancel_discharge_puts_the_patient_back_in_the_bed_discharged_from():
    state = admitted("p1")
    apply_event(state, event("discharge", "p1"))
    assert apply_event(state, event("cancel_discharge", "p1", "AMU", "B8")) == {"AMU"}
    assert beds(state) == {"AMU": {"R1/B1": "p1"}}


def test_cancel_discharge_when_the_bed_was_taken():
    state = admitted("p1")
    apply_event(state, event("discharge", "p1"))
    apply_event(state, event("admit", "p2", "AMU", "B1"))
    apply_event(state, event("cancel_discharge", "p1", "AMU", "B8"))
    assert beds(state) == {"AMU": {"R1/B1": "p2", "R1/B8": "p1"}}
    # Without a location in the message: an unassigned place in the old ward.
    state = admitted("p1")
    apply_event(state, event("discharge", "p1"))
    apply_event(state, event("admit", "p2", "AMU", "B1"))
    apply_event(state, event("cancel_discharge", "p1"))
    assert beds(state) == {"AMU": {"R1/B1": "p2", "unassigned:p1": "p1"}}


def test_swap_beds_exchanges_the_two_patients_beds():
    state = admitted("p1", "p2")
    apply_event(state, event("transfer", "p2", "ICU", "B9"))
    changed = apply_event(state, event("swap_beds", "p1", other="p2"))
    assert changed == {"AMU", "ICU"}
    assert beds(state) == {"AMU": {"R1/B1": "p2"}, "ICU": {"R1/B9": "p1"}}


def test_swap_beds_follows_the_message_when_the_census_does_not_hold_both():
    state = admitted("p1")
    apply_event(
        state, event("swap_beds", "p1", "AMU", "B2", other="p2", other_ward="AMU", other_bed="B1")
    )
    assert beds(state) == {"AMU": {"R1/B1": "p2", "R1/B2": "p1"}}


def test_leave_keeps_the_bed_held_and_is_counted():
    state = admitted("p1", "p2")
    assert apply_event(state, event("leave_out", "p1")) == {"AMU"}
    assert beds(state) == {"AMU": {"R1/B1": "p1", "R1/B2": "p2"}}
    record = ward_census(state, "AMU", T0)
    assert (record.occupied, record.on_leave) == (2, 1)
    # On leave through a transfer, and back.
    apply_event(state, event("transfer", "p1", "CCU", "B4"))
    assert (ward_census(state, "AMU", T0).on_leave, ward_census(state, "CCU", T0).on_leave) == (
        0,
        1,
    )
    assert apply_event(state, event("leave_return", "p1")) == {"CCU"}
    assert ward_census(state, "CCU", T0).on_leave == 0
    assert apply_event(state, event("leave_return", "p1")) == set()


def test_discharge_from_leave_clears_the_leave():
    state = admitted("p1")
    apply_event(state, event("leave_out", "p1"))
    apply_event(state, event("discharge", "p1"))
    assert ward_census(state, "AMU", T0).on_leave == 0


def test_merge_moves_the_bed_held_under_a_merged_identifier_to_the_survivor():
    state = admitted("old-id")
    apply_event(state, event("leave_out", "old-id"))
    assert apply_event(state, event("merge", "new-id", merged=["old-id", "never-seen"])) == {"AMU"}
    assert beds(state) == {"AMU": {"R1/B1": "new-id"}}
    assert ward_census(state, "AMU", T0).on_leave == 1
    assert apply_event(state, event("discharge", "old-id")) == set()
    assert apply_event(state, event("discharge", "new-id")) == {"AMU"}
    assert beds(state) == {}


def test_merge_into_a_patient_already_in_a_bed_releases_the_other_bed():
    state = admitted("old-id", "new-id")
    apply_event(state, event("merge", "new-id", merged=["old-id"]))
    assert beds(state) == {"AMU": {"R1/B2": "new-id"}}


def test_newest_message_wins_an_occupied_bed():
    state = admitted("p1")
    apply_event(state, event("admit", "p2", "AMU", "B1"))
    assert beds(state) == {"AMU": {"R1/B1": "p2"}}
    # the displaced patient's later discharge frees nothing that p2 holds
    apply_event(state, event("discharge", "p1"))
    assert occupied(state) == {"AMU": 1}


def test_discharge_of_unknown_patient_changes_nothing_and_stores_nothing():
    state = StepState({})
    assert apply_event(state, event("discharge", "ghost")) == set()
    assert apply_event(state, event("update", "ghost", "AMU", "B1")) == set()
    assert list(state.items()) == []


def test_applying_any_event_twice_leaves_the_same_state():
    state = admitted("p1", "p2")
    script = [
        event("transfer", "p1", "CCU", "B3"),
        event("cancel_transfer", "p1"),
        event("swap_beds", "p1", other="p2"),
        event("leave_out", "p2"),
        event("discharge", "p1"),
        event("cancel_discharge", "p1"),
        event("merge", "p3", merged=["p2"]),
        event("cancel_admit", "p1"),
    ]
    for step in script:
        apply_event(state, step)
        once = dict(state.items())
        assert apply_event(state, step) == set()
        assert dict(state.items()) == once, step.action


def test_released_records_are_kept_for_a_window_then_dropped():
    state = StepState({})
    total = BUCKET * (KEEP_BUCKETS + 2)
    for n in range(total):
        apply_event(state, event("admit", f"p{n}", "AMU", "B1"))
        apply_event(state, event("discharge", f"p{n}"))
    patients = [key for key, _ in state.items() if key.startswith("patient:")]
    assert BUCKET * KEEP_BUCKETS <= len(patients) <= BUCKET * (KEEP_BUCKETS + 1)
    # The most recent can still be undone.
    apply_event(state, event("cancel_discharge", f"p{total - 1}"))
    assert beds(state) == {"AMU": {"R1/B1": f"p{total - 1}"}}


def envelope(payload: str) -> Envelope:
    return Envelope(
        correlation_id="c1",
        channel="adt",
        received_at=T0,
        content_type="application/vnd.wardstream.event+json",
        payload=payload,
    )


def test_step_emits_census_per_changed_ward_and_dead_letters_garbage():
    step = CensusStep(clock=lambda: T0)
    state = StepState({})
    step.process(envelope(event("admit", "p1", "AMU", "B1").model_dump_json()), state)
    step.process(envelope(event("leave_out", "p1").model_dump_json()), state)
    transfer = event("transfer", "p1", "ICU", "B9")
    out = step.process(envelope(transfer.model_dump_json()), state)
    assert [(e.topic, e.key) for e in out] == [(CENSUS_WARDS, "AMU"), (CENSUS_WARDS, "ICU")]
    records = [WardCensus.model_validate_json(e.envelope.payload) for e in out]
    assert [(r.ward, r.occupied, r.on_leave, r.as_of) for r in records] == [
        ("AMU", 0, 0, transfer.occurred_at),
        ("ICU", 1, 1, transfer.occurred_at),
    ]
    assert out[1].envelope.trail[-1].step_id == "census"

    bad = step.process(envelope('{"not": "an event"}'), state)
    assert [e.topic for e in bad] == [DLQ]
    assert bad[0].envelope.headers["dlq.step_id"] == "census"
    assert occupied(state) == {"ICU": 1}


def test_step_passes_over_location_events():
    location = LocationEvent(
        trigger="Location",
        message_id="loc-1",
        occurred_at=T0,
        location=BedLocation(ward="AMU", room="R1", bed="B1"),
        physical_type="bed",
    )
    state = StepState({})
    assert CensusStep(clock=lambda: T0).process(envelope(location.model_dump_json()), state) == []
    assert list(state.items()) == []


def test_old_census_records_without_on_leave_still_read():
    old = (
        '{"schema_version":1,"ward":"AMU","occupied":1,"beds":{"B1":"p1"},'
        '"as_of":"2026-01-05T10:00:00Z"}'
    )
    assert WardCensus.model_validate_json(old).on_leave == 0
