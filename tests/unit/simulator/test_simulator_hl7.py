"""The simulator's messages are HL7 v2.5 that a real parser (hl7apy) accepts."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from connectors.simulator import SimMessage, simulate, tiny_hospital

TS = re.compile(r"^\d{14}[+-]\d{4}$")
VITAL_LOINC = ["9279-1", "59408-5", "8867-4", "8310-5", "8480-6", "67775-7", "3151-8"]
VITAL_UNITS = ["/min", "%", "/min", "Cel", "mm[Hg]", "", "L/min"]


@pytest.fixture(scope="module")
def messages() -> list[SimMessage]:
    # Summer in Europe/London: timestamps carry +0100.
    start = datetime(2026, 7, 6, tzinfo=UTC)
    return list(simulate(tiny_hospital(), seed=42, start=start, duration=timedelta(days=21)))


@pytest.fixture(scope="module")
def sample(messages: list[SimMessage]) -> list[SimMessage]:
    """A few messages of every kind, including step-up and step-down transfers."""
    picked: list[SimMessage] = []
    for kind in ("A01", "A02", "A03", "R01"):
        picked += [m for m in messages if m.kind == kind][:4]
    picked += [m for m in messages if m.kind == "A02" and m.ward == "ICU"][:2]
    picked += [m for m in messages if m.kind == "A02" and m.prior_ward == "ICU"][:2]
    picked += [m for m in messages if m.vitals and m.vitals.oxygen_l_min > 0][:2]
    return picked


def parse(text: str, *, strict: bool = False):  # type: ignore[no-untyped-def]
    level = VALIDATION_LEVEL.STRICT if strict else VALIDATION_LEVEL.TOLERANT
    return parse_message(text, find_groups=strict, validation_level=level)


def test_sample_covers_every_kind(sample):
    kinds = {m.kind for m in sample}
    assert kinds == {"A01", "A02", "A03", "R01"}
    assert any(m.ward == "ICU" for m in sample if m.kind == "A02")
    assert any(m.vitals and m.vitals.on_oxygen for m in sample)


def test_messages_parse_with_the_required_fields(sample):
    for m in sample:
        msg = parse(m.text)
        assert (
            msg.msh.msh_9.to_er7()
            == {
                "A01": "ADT^A01^ADT_A01",
                "A02": "ADT^A02^ADT_A02",
                "A03": "ADT^A03^ADT_A03",
                "R01": "ORU^R01^ORU_R01",
            }[m.kind]
        )
        assert msg.msh.msh_3.to_er7() == "SIMEHR"
        assert msg.msh.msh_4.to_er7() == "WARDSTREAM_GENERAL"
        assert msg.msh.msh_10.to_er7() == m.control_id
        assert msg.msh.msh_12.to_er7() == "2.5"
        assert msg.msh.msh_7.to_er7().endswith("+0100")
        assert msg.pid.pid_3.cx_1.to_er7() == m.patient_id
        assert msg.pid.pid_3.cx_4.to_er7() == "WSG"
        assert msg.pid.pid_5.xpn_1.to_er7()
        assert re.fullmatch(r"\d{8}", msg.pid.pid_7.to_er7())
        assert msg.pid.pid_8.to_er7() in {"F", "M"}
        assert msg.pv1.pv1_2.to_er7() == "I"
        assert msg.pv1.pv1_3.pl_1.to_er7() == m.ward
        assert msg.pv1.pv1_3.pl_3.to_er7() == m.bed
        assert msg.pv1.pv1_3.pl_4.to_er7() == "WARDSTREAM_GENERAL"
        assert msg.pv1.pv1_10.to_er7() == m.service
        assert msg.pv1.pv1_19.cx_1.to_er7() == m.visit_number
        assert TS.match(msg.pv1.pv1_44.to_er7())


def test_adt_messages_carry_event_and_location_history(sample):
    for m in sample:
        if m.kind == "R01":
            continue
        msg = parse(m.text)
        assert msg.evn.evn_1.to_er7() == m.kind
        assert msg.evn.evn_2.to_er7() == msg.msh.msh_7.to_er7()
        assert msg.evn.evn_6.to_er7() == msg.msh.msh_7.to_er7()
        if m.kind == "A02":
            assert msg.pv1.pv1_6.pl_1.to_er7() == m.prior_ward
            assert msg.pv1.pv1_6.pl_1.to_er7() != m.ward
        if m.kind == "A03":
            assert msg.pv1.pv1_45.to_er7() == msg.msh.msh_7.to_er7()


def test_vital_sign_results_carry_the_news2_observations(sample):
    for m in sample:
        if m.kind != "R01":
            continue
        assert m.vitals is not None
        msg = parse(m.text)
        assert msg.obr.obr_25.to_er7() == "F"
        obx = list(msg.obx)
        assert [o.obx_3.to_er7().split("^")[0] for o in obx] == VITAL_LOINC
        assert [o.obx_3.to_er7().split("^")[2] for o in obx] == ["LN"] * 7
        assert [o.obx_6.to_er7().split("^")[0] for o in obx] == VITAL_UNITS
        assert [o.obx_2.to_er7() for o in obx] == ["NM"] * 5 + ["CWE", "NM"]
        values = [o.obx_5.to_er7() for o in obx]
        assert int(values[0]) == m.vitals.respiratory_rate
        assert int(values[1]) == m.vitals.spo2
        assert float(values[3]) == m.vitals.temperature
        assert values[5].split("^")[0] == m.vitals.consciousness
        assert float(values[6]) == m.vitals.oxygen_l_min


def test_messages_pass_strict_validation(sample):
    for kind in ("A01", "A02", "A03", "R01"):
        m = next(m for m in sample if m.kind == kind)
        assert parse(m.text, strict=True).validate()


def test_er7_layout(messages):
    for m in messages[:200]:
        assert m.text.startswith("MSH|^~\\&|")
        assert m.text.endswith("\r")
        assert "\n" not in m.text
        segments = m.text.rstrip("\r").split("\r")
        assert [s[:3] for s in segments[:2]] == (
            ["MSH", "PID"] if m.kind == "R01" else ["MSH", "EVN"]
        )
        assert len(m.control_id) <= 20


def test_winter_timestamps_use_the_zone_offset():
    start = datetime(2026, 1, 5, tzinfo=UTC)
    first = next(iter(simulate(tiny_hospital(), seed=1, start=start, duration=timedelta(days=2))))
    assert parse(first.text).msh.msh_7.to_er7().endswith("+0000")
