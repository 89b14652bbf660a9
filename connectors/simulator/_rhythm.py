"""Daily and weekly rhythms: when patients arrive, how long they stay, when they go home."""

from __future__ import annotations

import math
import random
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from connectors.simulator.config import HospitalConfig, SpecialtyConfig

HOUR = 3600
DAY = 24 * HOUR
# Planned discharges happen in working hours, whatever the spread says.
_EARLIEST_DISCHARGE_HOUR = 9.0
_LATEST_DISCHARGE_HOUR = 21.0


class Clock:
    """Converts between model seconds (since ``start``, UTC-based) and local wall time."""

    def __init__(self, start_utc: datetime, zone: ZoneInfo) -> None:
        self.start = start_utc
        self.zone = zone

    def at(self, t: int) -> datetime:
        """The instant ``t`` seconds after start (UTC)."""
        return self.start + timedelta(seconds=t)

    def local(self, t: int) -> datetime:
        """The hospital's wall-clock time at ``t``."""
        return self.at(t).astimezone(self.zone)

    def seconds(self, instant: datetime) -> int:
        """Model seconds of an aware ``instant``."""
        return int((instant - self.start).total_seconds())

    def local_time_on(self, day: date, hour: float) -> int:
        """Model seconds of ``hour`` (fractional) o'clock local time on ``day``."""
        minutes = round(hour * 60)
        wall = datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=self.zone)
        return self.seconds(wall)


class ArrivalProcess:
    """A non-homogeneous Poisson process of admissions, sampled by thinning.

    The rate at local time ``t`` is ``admissions_per_day / 24`` scaled by the
    normalised hourly and weekday profiles, so a week holds on average
    ``7 * admissions_per_day`` arrivals.
    """

    def __init__(self, config: HospitalConfig, clock: Clock, rng: random.Random) -> None:
        hourly = config.hourly_profile
        weekly = config.weekday_profile
        mean_h = sum(hourly) / len(hourly)
        mean_d = sum(weekly) / len(weekly)
        self._hourly = [v / mean_h for v in hourly]
        self._weekly = [v / mean_d for v in weekly]
        self._base_per_second = config.admissions_per_day / DAY
        self._max_factor = max(self._hourly) * max(self._weekly)
        self._clock = clock
        self._rng = rng

    def rate_factor(self, t: int) -> float:
        """Relative intensity at model time ``t`` (1.0 is the weekly mean)."""
        local = self._clock.local(t)
        return self._hourly[local.hour] * self._weekly[local.weekday()]

    def next_after(self, t: int) -> int:
        """The next arrival strictly after ``t``."""
        rate_max = self._base_per_second * self._max_factor
        current = float(t)
        while True:
            current += self._rng.expovariate(rate_max)
            candidate = max(t + 1, round(current))
            if self._rng.random() * self._max_factor <= self.rate_factor(candidate):
                return candidate


def sample_los_hours(rng: random.Random, spec: SpecialtyConfig) -> float:
    """Length of stay: exponential short stays mixed with lognormal long stays."""
    if rng.random() < spec.short_stay_fraction:
        hours = rng.expovariate(1.0 / spec.short_stay_mean_hours)
    else:
        hours = rng.lognormvariate(math.log(spec.los_median_hours), spec.los_sigma)
    return max(1.0, hours)


def plan_discharge(
    rng: random.Random, config: HospitalConfig, clock: Clock, *, natural: int, earliest: int
) -> int:
    """When a patient medically ready at ``natural`` actually leaves.

    Most discharges move to the afternoon of their day (the ward round, the
    pharmacy, transport); one planned for a weekend goes ahead with
    ``weekend_discharge_probability``, else it slips to Monday afternoon.
    """
    natural = max(natural, earliest)
    if rng.random() < config.unplanned_discharge_fraction:
        return natural
    hour = rng.gauss(config.discharge_peak_hour, config.discharge_spread_hours)
    hour = min(_LATEST_DISCHARGE_HOUR, max(_EARLIEST_DISCHARGE_HOUR, hour))
    day = clock.local(natural).date()
    planned = clock.local_time_on(day, hour)
    if planned < earliest:
        day += timedelta(days=1)
        planned = clock.local_time_on(day, hour)
    if day.weekday() >= 5 and rng.random() >= config.weekend_discharge_probability:
        day += timedelta(days=7 - day.weekday())
        planned = clock.local_time_on(day, hour)
    return planned
