"""Vital signs: a stable per-patient baseline, bent by a severity curve when deteriorating.

Severity runs from 0 (the patient's own normal) to 1 (shocked, hypoxic, drowsy);
at 1 a set of observations scores a high NEWS2.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass, field
from typing import Literal

from connectors.simulator._events import Vitals


@dataclass(frozen=True, slots=True)
class Baseline:
    """A patient's normal observations."""

    respiratory_rate: float
    spo2: float
    heart_rate: float
    temperature: float
    systolic_bp: float


def draw_baseline(rng: random.Random, *, age_years: float) -> Baseline:
    """Normal values, with children breathing and beating faster than adults."""
    child = age_years < 12
    return Baseline(
        respiratory_rate=rng.gauss(22.0 if child else 15.5, 1.5),
        spo2=min(99.0, rng.gauss(97.0, 1.0)),
        heart_rate=rng.gauss(100.0 if child else 76.0, 8.0),
        temperature=rng.gauss(36.8, 0.25),
        systolic_bp=rng.gauss(105.0 if child else 126.0, 10.0),
    )


@dataclass(slots=True)
class SeverityCurve:
    """Piecewise-linear severity over simulated seconds, flat outside its breakpoints."""

    times: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def add(self, at: int, value: float) -> None:
        """Append a breakpoint; breakpoints must come in time order."""
        if self.times and at < self.times[-1]:
            raise ValueError("severity breakpoints must be in time order")
        self.times.append(at)
        self.values.append(value)

    def truncate(self, at: int) -> None:
        """Drop breakpoints after ``at``, pinning the curve's value there."""
        value = self.at(at)
        cut = bisect.bisect_right(self.times, at)
        del self.times[cut:]
        del self.values[cut:]
        self.add(at, value)

    def at(self, t: int) -> float:
        """Severity at time ``t``."""
        if not self.times:
            return 0.0
        i = bisect.bisect_right(self.times, t)
        if i == 0:
            return self.values[0]
        if i == len(self.times):
            return self.values[-1]
        t0, t1 = self.times[i - 1], self.times[i]
        v0, v1 = self.values[i - 1], self.values[i]
        return v0 + (v1 - v0) * (t - t0) / (t1 - t0)


def measure(rng: random.Random, base: Baseline, severity: float) -> Vitals:
    """One set of observations at ``severity``, with measurement noise."""
    s = max(0.0, min(1.0, severity))
    rr = base.respiratory_rate + 15.0 * s + rng.gauss(0.0, 1.2)
    oxygen = 0.0
    if s > 0.35:
        # Oxygen is started once saturation drops; flow rises with severity.
        oxygen = float(min(15, max(1, round((s - 0.25) * 16))))
    spo2 = base.spo2 - 11.0 * s + rng.gauss(0.0, 0.8) + (1.5 if oxygen else 0.0)
    hr = base.heart_rate + 48.0 * s + rng.gauss(0.0, 4.0)
    temp = base.temperature + 2.0 * s + rng.gauss(0.0, 0.15)
    sbp = base.systolic_bp - 42.0 * s + rng.gauss(0.0, 6.0)
    return Vitals(
        respiratory_rate=_clamp_int(rr, 6, 50),
        spo2=_clamp_int(spo2, 70, 100),
        heart_rate=_clamp_int(hr, 30, 200),
        temperature=round(max(34.0, min(41.5, temp)), 1),
        systolic_bp=_clamp_int(sbp, 60, 220),
        consciousness=_consciousness(rng, s),
        oxygen_l_min=oxygen,
    )


def _consciousness(rng: random.Random, s: float) -> Literal["A", "C", "V", "P", "U"]:
    if s < 0.7:
        return "A"
    roll = rng.random() * s
    if roll < 0.55:
        return "A"
    if roll < 0.75:
        return "C"
    if roll < 0.9:
        return "V"
    return "P"


def _clamp_int(value: float, low: int, high: int) -> int:
    return max(low, min(high, round(value)))
