"""Patient flow of the default hospital over eight simulated weeks.

One seeded run is shared by every test; tolerances are wide, so a test fails
only when the model is wrong, not when the seed is unlucky.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from connectors.simulator import HospitalConfig, SimMessage, default_hospital, simulate

START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
WEEKS = 8


@pytest.fixture(scope="module")
def config() -> HospitalConfig:
    return default_hospital()


@pytest.fixture(scope="module")
def messages(config: HospitalConfig) -> list[SimMessage]:
    return list(simulate(config, seed=20260105, start=START, duration=timedelta(weeks=WEEKS)))


@pytest.fixture(scope="module")
def zone(config: HospitalConfig) -> ZoneInfo:
    return ZoneInfo(config.timezone)


def of_kind(messages: list[SimMessage], kind: str) -> list[SimMessage]:
    return [m for m in messages if m.kind == kind]


def test_stream_is_in_time_order_and_inside_the_window(messages):
    times = [m.at for m in messages]
    assert times == sorted(times)
    assert times[0] >= START
    assert times[-1] < START + timedelta(weeks=WEEKS)
    assert len({m.control_id for m in messages}) == len(messages)


def test_admissions_have_a_night_trough_and_day_and_evening_peaks(messages, zone):
    by_hour = Counter(m.at.astimezone(zone).hour for m in of_kind(messages, "A01"))
    trough = statistics.mean(by_hour[h] for h in (3, 4, 5))
    late_morning = statistics.mean(by_hour[h] for h in (10, 11, 12))
    evening = statistics.mean(by_hour[h] for h in (19, 20))
    assert trough < 0.6 * late_morning
    assert trough < 0.6 * evening


def test_monday_is_busier_than_the_weekend(messages, zone):
    by_day = Counter(m.at.astimezone(zone).weekday() for m in of_kind(messages, "A01"))
    weekend_mean = (by_day[5] + by_day[6]) / 2
    assert by_day[0] > 1.15 * weekend_mean


def test_discharges_happen_mostly_in_the_afternoon(messages, zone):
    discharges = of_kind(messages, "A03")
    afternoon = sum(12 <= m.at.astimezone(zone).hour < 18 for m in discharges)
    assert len(discharges) > 1000
    assert afternoon / len(discharges) > 0.6


def test_fewer_discharges_per_day_at_weekends(messages, zone):
    by_day = Counter(m.at.astimezone(zone).weekday() for m in of_kind(messages, "A03"))
    weekday_rate = sum(by_day[d] for d in range(5)) / 5
    weekend_rate = (by_day[5] + by_day[6]) / 2
    assert weekend_rate < 0.85 * weekday_rate


def test_length_of_stay_follows_each_specialty(messages, config):
    admitted = {m.visit_number: m for m in of_kind(messages, "A01")}
    hours: dict[str, list[float]] = defaultdict(list)
    for m in of_kind(messages, "A03"):
        a01 = admitted[m.visit_number]
        hours[a01.service].append((m.at - a01.at).total_seconds() / 3600)
    medians = {code: statistics.median(values) for code, values in hours.items()}
    for spec in config.specialties:
        if spec.code == "ICU":
            continue  # an ICU admission's stay includes the ward stay after step-down
        assert len(hours[spec.code]) >= 50, spec.code
        assert 0.5 * spec.los_median_hours < medians[spec.code] < 2 * spec.los_median_hours
    assert medians["GER"] > medians["MED"] > medians["OBS"] > medians["PAED"]
    assert medians["ORTH"] > 1.5 * medians["SURG"]


def test_occupancy_never_exceeds_beds_and_no_bed_is_shared(messages, config):
    beds = {w.code: w.beds for w in config.wards}
    occupied: Counter[str] = Counter()
    busiest: Counter[str] = Counter()
    holder: dict[str, str] = {}  # bed -> visit
    bed_of: dict[str, str] = {}  # visit -> bed
    for m in messages:
        if m.kind in ("A02", "A03"):
            vacated = bed_of.pop(m.visit_number)
            del holder[vacated]
            occupied[m.prior_ward or m.ward] -= 1
            if m.kind == "A03":
                assert vacated == m.bed
        if m.kind in ("A01", "A02"):
            assert m.bed not in holder, f"{m.bed} already holds {holder.get(m.bed)}"
            holder[m.bed] = m.visit_number
            bed_of[m.visit_number] = m.bed
            occupied[m.ward] += 1
            busiest[m.ward] = max(busiest[m.ward], occupied[m.ward])
            assert occupied[m.ward] <= beds[m.ward]
    # The hospital does fill up: the cap is reached, not merely respected.
    assert sum(busiest[w] == beds[w] for w in beds) >= len(beds) // 2


def test_every_message_refers_to_a_current_inpatient(messages):
    where: dict[str, str] = {}
    discharged: set[str] = set()
    for m in messages:
        if m.kind == "A01":
            assert m.visit_number not in where
            assert m.visit_number not in discharged
            where[m.visit_number] = m.ward
            continue
        assert m.visit_number in where, f"{m.kind} for a visit never admitted"
        if m.kind == "A02":
            assert m.prior_ward == where[m.visit_number]
            where[m.visit_number] = m.ward
        else:
            assert m.ward == where[m.visit_number]
        if m.kind == "A03":
            del where[m.visit_number]
            discharged.add(m.visit_number)


def test_patients_step_up_to_and_down_from_intensive_care(messages):
    transfers = of_kind(messages, "A02")
    step_ups = [m for m in transfers if m.ward == "ICU"]
    step_downs = [m for m in transfers if m.prior_ward == "ICU"]
    assert len(step_ups) >= 5
    assert len(step_downs) >= 20
    # Ordinary moves happen too: assessment units hand patients on to base wards.
    assert sum(m.prior_ward == "AMU" for m in transfers) >= 100


def test_some_patients_deteriorate_while_most_stay_stable(messages):
    vitals = [m.vitals for m in of_kind(messages, "R01")]
    assert all(v is not None for v in vitals)
    sick = [v for v in vitals if v and (v.respiratory_rate >= 25 or v.spo2 <= 91)]
    assert len(vitals) > 20_000
    assert len(sick) >= 100
    assert len(sick) < 0.15 * len(vitals)
    stable = [
        v for v in vitals if v and v.respiratory_rate <= 20 and v.spo2 >= 95 and not v.on_oxygen
    ]
    assert len(stable) > 0.7 * len(vitals)


def test_step_ups_follow_abnormal_observations(messages):
    last_vitals: dict[str, SimMessage] = {}
    abnormal_before = []
    for m in messages:
        if m.kind == "R01":
            last_vitals[m.visit_number] = m
        elif m.kind == "A02" and m.ward == "ICU":
            v = last_vitals[m.visit_number].vitals
            assert v is not None
            abnormal_before.append(
                v.respiratory_rate >= 21 or v.spo2 <= 93 or v.heart_rate >= 111 or v.on_oxygen
            )
    assert abnormal_before
    assert sum(abnormal_before) >= 0.75 * len(abnormal_before)


def test_deteriorating_patients_are_observed_more_often(messages):
    times: dict[str, list[datetime]] = defaultdict(list)
    sick_visits = set()
    for m in of_kind(messages, "R01"):
        times[m.visit_number].append(m.at)
        if m.vitals and m.vitals.respiratory_rate >= 25:
            sick_visits.add(m.visit_number)

    def median_gap_hours(visits: set[str]) -> float:
        gaps = [
            (b - a).total_seconds() / 3600
            for v in visits
            for a, b in zip(times[v], times[v][1:], strict=False)
        ]
        return statistics.median(gaps)

    stable_visits = set(times) - sick_visits
    assert median_gap_hours(stable_visits) > 3.0
    assert median_gap_hours(sick_visits) < 2.0


def test_demographics_fit_each_specialty(messages, config):
    admissions = of_kind(messages, "A01")
    mrns = [m.patient_id for m in admissions]
    assert len(set(mrns)) == len(mrns)
    assert len({m.visit_number for m in admissions}) == len(admissions)
    for m in admissions:
        pid = m.text.split("\r")[2].split("|")
        born = datetime.strptime(pid[7], "%Y%m%d").replace(tzinfo=UTC)
        age = (m.at - born).days / 365.25
        spec = config.specialty(m.service)
        assert spec.min_age - 0.01 <= age < spec.max_age + 1, (m.service, age)
        if spec.female_fraction == 1.0:
            assert pid[8] == "F"
    sexes = Counter(m.text.split("\r")[2].split("|")[8] for m in admissions)
    assert sexes["M"] > 0.3 * len(admissions)
    assert sexes["F"] > 0.3 * len(admissions)
