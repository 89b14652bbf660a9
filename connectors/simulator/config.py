"""The simulated hospital's configuration: wards, specialties and the rates that drive it.

Every number the model uses lives here, so a run is fully described by its
config, its seed and its start time.
"""

from __future__ import annotations

import math
from typing import Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

WardKind = Literal["assessment", "general", "critical_care"]
# Values copied into HL7 fields must not contain its delimiters.
HL7_SAFE = r"^[^|^~\\&\r\n]+$"

# Relative arrival intensity by local hour: a night trough at 03-06 h, a late
# morning peak (10-13 h) and an evening peak (19-20 h), as ED admissions show.
DEFAULT_HOURLY_PROFILE: tuple[float, ...] = (
    0.55, 0.45, 0.38, 0.30, 0.28, 0.28, 0.34, 0.50,
    0.80, 1.15, 1.45, 1.55, 1.55, 1.45, 1.25, 1.15,
    1.10, 1.15, 1.30, 1.45, 1.40, 1.10, 0.85, 0.65,
)  # fmt: skip
# Relative intensity by weekday, Monday first: Monday busiest, weekends quiet.
DEFAULT_WEEKDAY_PROFILE: tuple[float, ...] = (1.25, 1.08, 1.02, 1.0, 1.0, 0.78, 0.74)


class SpecialtyConfig(BaseModel):
    """A hospital service (PV1-10): its share of admissions and how long its patients stay."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(
        min_length=1, max_length=10, pattern=HL7_SAFE, description="Hospital service code (PV1-10)."
    )
    name: str = Field(description="Human-readable name of the specialty.")
    arrival_share: float = Field(
        ge=0.0, description="Relative share of all admissions going to this specialty."
    )
    los_median_hours: float = Field(
        gt=0.0, description="Median of the lognormal length of stay of long-stay patients."
    )
    los_sigma: float = Field(
        default=0.8, gt=0.0, le=3.0, description="Shape (log-scale sigma) of the lognormal LOS."
    )
    short_stay_fraction: float = Field(
        default=0.15,
        ge=0.0,
        le=1.0,
        description="Fraction of admissions that are short stays (exponential LOS).",
    )
    short_stay_mean_hours: float = Field(
        default=14.0, gt=0.0, description="Mean length of stay of short-stay admissions."
    )
    deterioration_probability: float = Field(
        default=0.04,
        ge=0.0,
        le=1.0,
        description="Probability that a patient of this specialty deteriorates during the stay.",
    )
    min_age: int = Field(default=18, ge=0, le=110, description="Youngest patient age in years.")
    max_age: int = Field(default=95, ge=0, le=110, description="Oldest patient age in years.")
    female_fraction: float = Field(
        default=0.5, ge=0.0, le=1.0, description="Fraction of female patients."
    )

    @model_validator(mode="after")
    def _ages_ordered(self) -> Self:
        if self.min_age > self.max_age:
            raise ValueError(f"specialty {self.code}: min_age > max_age")
        return self

    @property
    def mean_los_hours(self) -> float:
        """Expected length of stay of the mixture, in hours (ignores deterioration)."""
        long_mean = self.los_median_hours * math.exp(self.los_sigma**2 / 2)
        share = self.short_stay_fraction
        return share * self.short_stay_mean_hours + (1 - share) * long_mean


class WardConfig(BaseModel):
    """One ward: a named set of beds grouped in rooms, serving one specialty."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(
        min_length=1, max_length=10, pattern=r"^[A-Z0-9]+$", description="Ward code (PV1-3.1)."
    )
    name: str = Field(description="Human-readable ward name.")
    beds: int = Field(ge=1, le=500, description="Number of beds on the ward.")
    specialty: str = Field(description="Code of the specialty the ward serves.")
    kind: WardKind = Field(
        default="general",
        description=(
            "assessment: first stop for emergency admissions, patients move on to a general "
            "ward; general: ordinary inpatient ward; critical_care: ICU beds for step-up."
        ),
    )
    room_size: int = Field(
        default=4, ge=1, le=6, description="Beds per room (last room may be smaller)."
    )
    facility: str | None = Field(
        default=None,
        pattern=HL7_SAFE,
        description="Facility code (PV1-3.4); the hospital's facility when unset.",
    )


class HospitalConfig(BaseModel):
    """The whole simulated hospital."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    facility: str = Field(
        default="WARDSTREAM_GENERAL",
        pattern=HL7_SAFE,
        description="Sending facility (MSH-4) and default PV1-3.4.",
    )
    sending_application: str = Field(
        default="SIMEHR", pattern=HL7_SAFE, description="Sending application (MSH-3)."
    )
    receiving_application: str = Field(
        default="WARDSTREAM", pattern=HL7_SAFE, description="Receiving application (MSH-5)."
    )
    receiving_facility: str = Field(
        default="WARDSTREAM", pattern=HL7_SAFE, description="Receiving facility (MSH-6)."
    )
    assigning_authority: str = Field(
        default="WSG",
        pattern=HL7_SAFE,
        description="Assigning authority of MRNs and visit numbers (CX-4).",
    )
    timezone: str = Field(
        default="Europe/London",
        description="IANA zone of the hospital: drives daily rhythms and HL7 timestamp offsets.",
    )
    admissions_per_day: float = Field(
        default=55.0, gt=0.0, description="Mean number of admissions per day over a week."
    )
    hourly_profile: tuple[float, ...] = Field(
        default=DEFAULT_HOURLY_PROFILE,
        description="24 relative arrival intensities by local hour (normalised internally).",
    )
    weekday_profile: tuple[float, ...] = Field(
        default=DEFAULT_WEEKDAY_PROFILE,
        description="7 relative arrival intensities by weekday, Monday first.",
    )
    discharge_peak_hour: float = Field(
        default=15.0,
        ge=0.0,
        lt=24.0,
        description="Local hour around which planned discharges happen.",
    )
    discharge_spread_hours: float = Field(
        default=1.6, gt=0.0, description="Standard deviation of planned discharge times (hours)."
    )
    unplanned_discharge_fraction: float = Field(
        default=0.12,
        ge=0.0,
        le=1.0,
        description="Fraction of discharges keeping their natural time, not an afternoon slot.",
    )
    weekend_discharge_probability: float = Field(
        default=0.55,
        ge=0.0,
        le=1.0,
        description="Chance a Saturday/Sunday discharge goes ahead; else it slips to Monday.",
    )
    assessment_max_hours: float = Field(
        default=36.0,
        gt=0.0,
        description="Longest planned stay on an assessment unit before moving on.",
    )
    max_boarding_hours: float = Field(
        default=24.0,
        gt=0.0,
        description="A patient waiting longer for a bed is diverted elsewhere (no messages).",
    )
    step_up_probability: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="Chance that a severely deteriorating patient is transferred to critical care.",
    )
    icu_los_median_hours: float = Field(
        default=60.0, gt=0.0, description="Median length of a critical-care stay."
    )
    post_icu_los_median_hours: float = Field(
        default=72.0, gt=0.0, description="Median ward stay after stepping down from critical care."
    )
    step_down_specialty: str = Field(
        default="MED",
        description="Specialty receiving patients admitted straight to critical care.",
    )
    vitals_interval_hours: float = Field(
        default=4.0, gt=0.0, description="Hours between vital-sign sets of a stable patient."
    )
    acute_vitals_interval_hours: float = Field(
        default=1.0,
        gt=0.0,
        description="Hours between vital-sign sets when deteriorating or in ICU.",
    )
    specialties: tuple[SpecialtyConfig, ...] = Field(description="Hospital services.")
    wards: tuple[WardConfig, ...] = Field(description="Wards with their beds.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("hourly_profile", "weekday_profile")
    @classmethod
    def _profile_positive(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(v < 0 for v in value) or sum(value) <= 0:
            raise ValueError("profile weights must be >= 0 with a positive sum")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if len(self.hourly_profile) != 24:
            raise ValueError("hourly_profile needs 24 values")
        if len(self.weekday_profile) != 7:
            raise ValueError("weekday_profile needs 7 values")
        codes = [s.code for s in self.specialties]
        if len(set(codes)) != len(codes):
            raise ValueError("specialty codes must be unique")
        ward_codes = [w.code for w in self.wards]
        if len(set(ward_codes)) != len(ward_codes):
            raise ValueError("ward codes must be unique")
        if sum(s.arrival_share for s in self.specialties) <= 0:
            raise ValueError("at least one specialty needs a positive arrival_share")
        for ward in self.wards:
            if ward.specialty not in codes:
                raise ValueError(f"ward {ward.code}: unknown specialty {ward.specialty!r}")
        icu = {w.specialty for w in self.wards if w.kind == "critical_care"}
        for spec in self.specialties:
            served = [w for w in self.wards if w.specialty == spec.code and w.kind != "assessment"]
            if spec.arrival_share > 0 and spec.code not in icu and not served:
                raise ValueError(f"specialty {spec.code} admits patients but has no general ward")
        if icu and not any(
            w.specialty == self.step_down_specialty and w.kind == "general" for w in self.wards
        ):
            raise ValueError(
                f"step_down_specialty {self.step_down_specialty!r} has no general ward"
            )
        return self

    def specialty(self, code: str) -> SpecialtyConfig:
        """The specialty with ``code``."""
        for spec in self.specialties:
            if spec.code == code:
                return spec
        raise KeyError(code)

    @property
    def total_beds(self) -> int:
        """Beds over all wards."""
        return sum(w.beds for w in self.wards)


def _spec(code: str, name: str, share: float, median_h: float, **kw: float) -> SpecialtyConfig:
    return SpecialtyConfig(
        code=code, name=name, arrival_share=share, los_median_hours=median_h, **kw
    )


def default_hospital() -> HospitalConfig:
    """A mid-sized general hospital: eleven wards, 256 beds, an 8-bed ICU."""
    specialties = (
        _spec("MED", "General medicine", 0.235, 80.0, los_sigma=0.9,
              deterioration_probability=0.06),
        _spec("SURG", "General surgery", 0.185, 60.0, los_sigma=0.8, short_stay_fraction=0.25),
        _spec("ORTH", "Trauma and orthopaedics", 0.075, 120.0, los_sigma=0.7, max_age=100),
        _spec("CARD", "Cardiology", 0.083, 66.0, los_sigma=0.7, min_age=30),
        _spec(
            "GER", "Elderly care", 0.054, 200.0, los_sigma=0.7, min_age=75, max_age=102,
            female_fraction=0.58, deterioration_probability=0.07, short_stay_fraction=0.05,
        ),
        _spec(
            "OBS", "Obstetrics", 0.17, 40.0, los_sigma=0.6, min_age=17, max_age=46,
            female_fraction=1.0, deterioration_probability=0.01, short_stay_fraction=0.3,
            short_stay_mean_hours=10.0,
        ),
        _spec(
            "PAED", "Paediatrics", 0.135, 30.0, los_sigma=0.8, min_age=0, max_age=15,
            deterioration_probability=0.02, short_stay_fraction=0.35, short_stay_mean_hours=8.0,
        ),
        _spec("ICU", "Critical care", 0.023, 60.0, los_sigma=0.7, short_stay_fraction=0.0,
              deterioration_probability=0.0),
    )  # fmt: skip
    wards = (
        WardConfig(code="AMU", name="Acute Medical Unit", beds=24, specialty="MED",
                   kind="assessment"),
        WardConfig(code="MW1", name="Medical Ward 1", beds=32, specialty="MED"),
        WardConfig(code="MW2", name="Medical Ward 2", beds=32, specialty="MED", room_size=6),
        WardConfig(code="SAU", name="Surgical Assessment Unit", beds=12, specialty="SURG",
                   kind="assessment"),
        WardConfig(code="SW1", name="General Surgery Ward", beds=28, specialty="SURG"),
        WardConfig(code="ORT", name="Trauma and Orthopaedics", beds=24, specialty="ORTH"),
        WardConfig(code="CAR", name="Cardiology Ward", beds=20, specialty="CARD", room_size=2),
        WardConfig(code="ECW", name="Elderly Care Ward", beds=36, specialty="GER", room_size=6),
        WardConfig(code="MAT", name="Maternity Ward", beds=24, specialty="OBS", room_size=2),
        WardConfig(code="PAE", name="Children's Ward", beds=16, specialty="PAED", room_size=2),
        WardConfig(code="ICU", name="Intensive Care Unit", beds=8, specialty="ICU",
                   kind="critical_care", room_size=1),
    )  # fmt: skip
    return HospitalConfig(specialties=specialties, wards=wards)


def tiny_hospital() -> HospitalConfig:
    """Three small wards (medicine, surgery, a 2-bed ICU): quick runs for tests and demos."""
    specialties = (
        _spec("MED", "General medicine", 0.6, 60.0, deterioration_probability=0.15),
        _spec("SURG", "General surgery", 0.4, 40.0, deterioration_probability=0.1),
        _spec("ICU", "Critical care", 0.0, 48.0),
    )
    wards = (
        WardConfig(code="MED", name="Medical Ward", beds=8, specialty="MED"),
        WardConfig(code="SUR", name="Surgical Ward", beds=6, specialty="SURG", room_size=2),
        WardConfig(
            code="ICU", name="Intensive Care", beds=2, specialty="ICU", kind="critical_care"
        ),
    )
    return HospitalConfig(
        admissions_per_day=5.0,
        icu_los_median_hours=36.0,
        post_icu_los_median_hours=36.0,
        step_up_probability=0.7,
        specialties=specialties,
        wards=wards,
    )
