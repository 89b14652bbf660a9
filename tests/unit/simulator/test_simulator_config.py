"""The hospital config: validation, documentation, YAML round trip."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from connectors.simulator import HospitalConfig, default_hospital, tiny_hospital


def as_dict(config: HospitalConfig) -> dict[str, Any]:
    return config.model_dump(mode="json")


def with_changes(**changes: Any) -> dict[str, Any]:
    data = as_dict(tiny_hospital())
    data.update(changes)
    return data


def test_default_hospital_shape():
    config = default_hospital()
    assert 8 <= len(config.wards) <= 12
    assert 200 <= config.total_beds <= 320
    icu = [w for w in config.wards if w.kind == "critical_care"]
    assert len(icu) == 1
    assert icu[0].beds <= 12
    assert {w.specialty for w in config.wards} == {s.code for s in config.specialties}


def test_every_field_is_documented():
    schema = HospitalConfig.model_json_schema()
    models = [schema, *schema["$defs"].values()]
    for model in models:
        for name, prop in model["properties"].items():
            assert prop.get("description"), f"{model['title']}.{name} has no description"


def test_yaml_round_trip():
    config = default_hospital()
    text = yaml.safe_dump(as_dict(config), sort_keys=False)
    assert HospitalConfig.model_validate(yaml.safe_load(text)) == config


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"surprise": 1}, "Extra inputs are not permitted"),
        ({"timezone": "Mars/Olympus_Mons"}, "unknown time zone"),
        ({"hourly_profile": [1.0] * 23}, "24 values"),
        ({"weekday_profile": [1.0] * 6 + [-1.0]}, "profile weights"),
        ({"facility": "GENERAL|EAST"}, "pattern"),
        ({"sending_application": "SIM^EHR"}, "pattern"),
    ],
)
def test_rejects_bad_hospital_settings(changes, message):
    with pytest.raises(ValidationError, match=message):
        HospitalConfig.model_validate(with_changes(**changes))


def test_rejects_inconsistent_wards():
    data = as_dict(tiny_hospital())
    data["wards"][0]["specialty"] = "DERM"
    with pytest.raises(ValidationError, match="unknown specialty"):
        HospitalConfig.model_validate(data)
    data = as_dict(tiny_hospital())
    data["wards"][1]["code"] = data["wards"][0]["code"]
    with pytest.raises(ValidationError, match="ward codes must be unique"):
        HospitalConfig.model_validate(data)
    data = as_dict(tiny_hospital())
    data["wards"] = [w for w in data["wards"] if w["specialty"] != "SURG"]
    with pytest.raises(ValidationError, match="SURG admits patients but has no general ward"):
        HospitalConfig.model_validate(data)
    data = as_dict(tiny_hospital())
    data["wards"][0]["code"] = "med-1"
    with pytest.raises(ValidationError, match="pattern"):
        HospitalConfig.model_validate(data)


def test_mean_length_of_stay_mixes_short_and_long_stays():
    spec = default_hospital().specialty("OBS")
    assert spec.short_stay_mean_hours < spec.mean_los_hours
    assert spec.mean_los_hours > spec.short_stay_fraction * spec.short_stay_mean_hours
    with pytest.raises(KeyError):
        default_hospital().specialty("NOPE")
