"""The ``fhir`` section and FHIR ``destinations`` of the engine configuration."""

from __future__ import annotations

import pytest

from engine.config import ConfigError, FhirDestinationConfig, dump_config, parse_config

DESTINATION = """
destinations:
  - name: ehr
    type: fhir
    base_url: https://ehr.example.org/fhir
    token: abc
    timeout_s: 2.5
    max_retries: 3
    conditional: if-none-exist
"""


def test_defaults() -> None:
    config = parse_config("")
    assert config.destinations == []
    assert (config.fhir.validate_on_ingest, config.fhir.validate_output, config.fhir.store) == (
        True,
        False,
        True,
    )
    assert config.pipelines.fhir_out.enabled


def test_destination_round_trips() -> None:
    config = parse_config(DESTINATION + "fhir: {validate_output: true, store: false}\n")
    (destination,) = config.destinations
    assert destination == FhirDestinationConfig(
        name="ehr",
        base_url="https://ehr.example.org/fhir",
        token="abc",
        timeout_s=2.5,
        max_retries=3,
        conditional="if-none-exist",
    )
    assert "abc" not in repr(destination)
    assert (config.fhir.validate_output, config.fhir.store) == (True, False)
    assert parse_config(dump_config(config)) == config


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (DESTINATION.replace("https://ehr.example.org/fhir", "ftp://ehr"), "base_url"),
        (DESTINATION.replace("conditional: if-none-exist", "conditional: post"), "conditional"),
        (DESTINATION.replace("max_retries: 3", "max_retries: -1"), "max_retries"),
        (DESTINATION.replace("token: abc", "verify: false"), "unknown setting 'verify'"),
        (DESTINATION.replace("name: ehr", "name: EHR!"), "destinations[0].name"),
        (
            DESTINATION + "  - {name: ehr, type: fhir, base_url: 'http://other/fhir'}\n",
            "destination name 'ehr' is already taken by destinations[0]",
        ),
        ("fhir: {validate: true}\n", "unknown setting 'validate'"),
    ],
)
def test_refusals_name_the_setting(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_config(text)
