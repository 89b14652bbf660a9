from datetime import UTC, datetime

from engine.state import StepState
from engine.types import Envelope
from pipelines.census import CensusStep, apply_event, census_snapshot
from schemas.census import WardCensus
from schemas.events import AdtEvent, BedLocation
from schemas.topics import CENSUS_WARDS, DLQ

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def event(action, patient, ward=None, bed=None, room="R1"):
    location = BedLocation(ward=ward, room=room, bed=bed) if ward else None
    return AdtEvent(
        action=action,
        trigger={"admit": "A01", "transfer": "A02", "discharge": "A03"}[action],
        message_id=f"m-{patient}-{action}",
        patient_id=patient,
        location=location,
        occurred_at=T0,
    )


def occupied(state):
    return {ward: len(beds) for ward, beds in census_snapshot(state).items()}


def test_admit_transfer_discharge_move_one_bed():
    state = StepState({})
    apply_event(state, event("admit", "p1", "AMU", "B1"))
    apply_event(state, event("admit", "p2", "AMU", "B2"))
    assert occupied(state) == {"AMU": 2}
    assert apply_event(state, event("transfer", "p1", "ICU", "B1")) == {"AMU", "ICU"}
    assert occupied(state) == {"AMU": 1, "ICU": 1}
    apply_event(state, event("discharge", "p1"))
    assert occupied(state) == {"AMU": 1}
    assert census_snapshot(state)["AMU"] == {"R1/B2": "p2"}


def test_replaying_events_never_doubles_a_bed():
    state = StepState({})
    events = [event("admit", "p1", "AMU", "B1"), event("transfer", "p1", "CCU", "B3")]
    for e in events + events:
        apply_event(state, e)
    assert occupied(state) == {"CCU": 1}


def test_admit_without_bed_takes_an_unassigned_slot_per_patient():
    state = StepState({})
    apply_event(state, event("admit", "p1", "ED"))
    apply_event(state, event("admit", "p2", "ED"))
    assert occupied(state) == {"ED": 2}


def test_newest_message_wins_an_occupied_bed():
    state = StepState({})
    apply_event(state, event("admit", "p1", "AMU", "B1"))
    apply_event(state, event("admit", "p2", "AMU", "B1"))
    assert census_snapshot(state)["AMU"] == {"R1/B1": "p2"}
    # the displaced patient's later discharge frees nothing that p2 holds
    apply_event(state, event("discharge", "p1"))
    assert occupied(state) == {"AMU": 1}


def test_discharge_of_unknown_patient_changes_nothing():
    state = StepState({})
    assert apply_event(state, event("discharge", "ghost")) == set()
    assert occupied(state) == {}


def envelope(payload: str) -> Envelope:
    return Envelope(
        correlation_id="c1",
        channel="adt",
        received_at=T0,
        content_type="application/json",
        payload=payload,
    )


def test_step_emits_census_per_changed_ward_and_dead_letters_garbage():
    step = CensusStep(clock=lambda: T0)
    state = StepState({})
    step.process(envelope(event("admit", "p1", "AMU", "B1").model_dump_json()), state)
    out = step.process(envelope(event("transfer", "p1", "ICU", "B9").model_dump_json()), state)
    assert [(e.topic, e.key) for e in out] == [(CENSUS_WARDS, "AMU"), (CENSUS_WARDS, "ICU")]
    records = [WardCensus.model_validate_json(e.envelope.payload) for e in out]
    assert [(r.ward, r.occupied) for r in records] == [("AMU", 0), ("ICU", 1)]
    assert out[1].envelope.trail[-1].step_id == "census"

    bad = step.process(envelope('{"not": "an event"}'), state)
    assert [e.topic for e in bad] == [DLQ]
    assert bad[0].envelope.headers["dlq.step_id"] == "census"
    assert occupied(state) == {"ICU": 1}
