"""HL7 data types and timestamps → canonical values, and a fuzz check that the
step turns anything into events or dead letters without raising."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.state import StepState
from engine.types import Envelope
from pipelines.hl7v2._datatypes import (
    bed_location,
    coding,
    human_names,
    identifiers,
    practitioners,
    telecoms,
)
from pipelines.hl7v2.normalize import NormalizeHl7v2
from pipelines.hl7v2.timestamps import Hl7TimestampError, parse_hl7_date, parse_hl7_datetime
from pipelines.hl7v2.tokenizer import Field, parse
from schemas.events import BedLocation, Coding, Identifier, Practitioner
from schemas.topics import DLQ, EVENTS_ADT, EVENTS_OBS

NEW_YORK = ZoneInfo("America/New_York")


def field(raw: str) -> Field:
    """ZZZ-1 of a message holding ``raw``."""
    message = parse(f"MSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|2.5\rZZZ|{raw}\r")
    segment = message.segment("ZZZ")
    assert segment is not None
    return segment.field(1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026", datetime(2026, 1, 1, tzinfo=NEW_YORK)),
        ("202603", datetime(2026, 3, 1, tzinfo=NEW_YORK)),
        ("20260704", datetime(2026, 7, 4, tzinfo=NEW_YORK)),
        ("2026070412", datetime(2026, 7, 4, 12, tzinfo=NEW_YORK)),
        ("202607041230", datetime(2026, 7, 4, 12, 30, tzinfo=NEW_YORK)),
        ("20260704123045", datetime(2026, 7, 4, 12, 30, 45, tzinfo=NEW_YORK)),
        ("20260704123045.1234", datetime(2026, 7, 4, 12, 30, 45, 123400, tzinfo=NEW_YORK)),
        (
            "20260704123045+0530",
            datetime(2026, 7, 4, 12, 30, 45, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        ),
        ("202607041230-0500", datetime(2026, 7, 4, 12, 30, tzinfo=timezone(timedelta(hours=-5)))),
        (" 20260704 ", datetime(2026, 7, 4, tzinfo=NEW_YORK)),
    ],
)
def test_dtm_values_become_aware_datetimes(value, expected):
    parsed = parse_hl7_datetime(value, NEW_YORK)
    assert parsed == expected
    assert parsed.utcoffset() == expected.utcoffset()


def test_a_value_without_offset_takes_the_zone_with_its_daylight_saving():
    summer = parse_hl7_datetime("20260704120000", NEW_YORK)
    winter = parse_hl7_datetime("20260104120000", NEW_YORK)
    assert (summer.utcoffset(), winter.utcoffset()) == (timedelta(hours=-4), timedelta(hours=-5))


@pytest.mark.parametrize(
    "value",
    [
        "",
        "20",
        "202",
        "2026070",
        "20261301",
        "20260230",
        "2026070425",
        "20260704+05",
        "20260704+2500",
        "20260704+0575",
        "2026-07-04",
        "20260704.5",
        "2026070412304.5",
        "abcd",
        "20260704123045.x",
    ],
)
def test_unreadable_dtm_values_raise_a_typed_error_without_the_value(value):
    with pytest.raises(Hl7TimestampError) as raised:
        parse_hl7_datetime(value, UTC)
    assert value.strip() == "" or value not in str(raised.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("19700412", date(1970, 4, 12)),
        ("1970", date(1970, 1, 1)),
        ("197004", date(1970, 4, 1)),
        ("198808181126+0215", date(1988, 8, 18)),
        ("19880818112600.5", date(1988, 8, 18)),
    ],
)
def test_dates_are_read_as_written(value, expected):
    assert parse_hl7_date(value) == expected


def test_cx_repetitions_keep_id_authority_and_type():
    raw = 'MRN1^^^RVJ&1.2.3&ISO^mr~^^^NHS^NH~""~NHS2^^^NHS^NH'
    assert identifiers(field(raw)) == [
        Identifier(value="MRN1", authority="RVJ", type="MR"),
        Identifier(value="NHS2", authority="NHS", type="NH"),
    ]


def test_xpn_takes_the_family_surname_and_the_given_names():
    (name,) = human_names(field("EVERYMAN&VAN&EVERY^ADAM^A^III^DR^^L"))
    assert (name.family, name.given, name.suffix, name.prefix, name.use) == (
        "EVERYMAN",
        ["ADAM", "A"],
        "III",
        "DR",
        "L",
    )
    assert human_names(field("^^^^^^L")) == []


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("(0113)4960000", [("phone", "(0113)4960000", None)]),
        ("^PRN^PH^^44^113^4960000^22", [("phone", "+44 113 4960000 X22", "PRN")]),
        ("^WPN^PH^^^113^4960000", [("phone", "113 4960000", "WPN")]),
        ("^PRN^CP^^^^^^^^^07700900123", [("phone", "07700900123", "PRN")]),
        ("^NET^X.400^a@b.org", [("email", "a@b.org", "NET")]),
        ("^^^c@d.org", [("email", "c@d.org", None)]),
        (
            "01234^ORN^FX~02345^^BP~03456^^TDD",
            [("fax", "01234", "ORN"), ("pager", "02345", None), ("other", "03456", None)],
        ),
        ("^PRN^PH", []),
    ],
)
def test_xtn_numbers_and_email(raw, expected):
    assert [(t.system, t.value, t.use) for t in telecoms(field(raw))] == expected


def test_pl_needs_a_point_of_care():
    assert bed_location(field("W1^R2^B3^F4")) == BedLocation(
        ward="W1", room="R2", bed="B3", facility="F4"
    )
    assert bed_location(field("^R2^B3")) is None
    assert bed_location(field('""')) is None


def test_xcn_and_cwe():
    assert practitioners(field("C1^JONES^ANN^B~~^^^")) == [
        Practitioner(id="C1", family="JONES", given=["ANN", "B"])
    ]
    assert coding(field("8867-4^Heart rate^LN")) == Coding(
        system="http://loinc.org", code="8867-4", display="Heart rate"
    )
    assert coding(field("X1^^99LOCAL^^^^^^Original")) == Coding(
        system="99LOCAL", code="X1", display="Original"
    )
    assert coding(field("^no code")) is None


_PIECES = st.sampled_from(
    [
        "|",
        "^",
        "~",
        "&",
        "\\",
        "\r",
        "PID",
        "PV1",
        "OBR",
        "OBX",
        "MRG",
        "EVN",
        "1",
        "A",
        "I",
        "NM",
        "CWE",
        "SN",
        "F",
        "X",
        "LN",
        "8867-4",
        "W1",
        "B2",
        "MRN1",
        '""',
        "2026",
        "20260101",
        "+0100",
        "20261399",
        ".5",
        "<",
        ":",
        "Y",
        "M",
    ]
)
_TRIGGERS = st.sampled_from(
    [
        "ADT^A01",
        "ADT^A02",
        "ADT^A03",
        "ADT^A04",
        "ADT^A05",
        "ADT^A06",
        "ADT^A07",
        "ADT^A08",
        "ADT^A11",
        "ADT^A12",
        "ADT^A13",
        "ADT^A17",
        "ADT^A21",
        "ADT^A22",
        "ADT^A28",
        "ADT^A31",
        "ADT^A40",
        "ORU^R01",
        "ADT",
        "SIU^S12",
        "",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_TRIGGERS, st.lists(st.lists(_PIECES, max_size=30).map("".join), max_size=8))
def test_normalize_never_raises(trigger, bodies):
    text = f"MSH|^~\\&|A|B|C|D|20260101||{trigger}|C1|P|2.5\r" + "\r".join(bodies)
    envelope = Envelope(
        correlation_id="C1",
        channel="fuzz",
        received_at=datetime(2026, 1, 1, tzinfo=UTC),
        content_type="x-application/hl7-v2+er7",
        payload=text,
    )
    step = NormalizeHl7v2(lambda: datetime(2026, 1, 1, tzinfo=UTC), UTC)
    out = step.process(envelope, StepState({}))
    assert out
    topics = {emit.topic for emit in out}
    assert topics in ({DLQ}, {EVENTS_ADT}, {EVENTS_OBS})
    if topics == {DLQ}:
        assert len(out) == 1
        assert out[0].envelope.headers["dlq.reason"]


def test_street_name_beside_the_street_address_is_kept_as_a_line():
    from pipelines.hl7v2 import parse
    from pipelines.hl7v2._datatypes import addresses

    pid = parse(
        "MSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|2.5\r"
        "PID|1||X||DOE^J||||||1000&Hospital Lane^Ste. 123^Ann Arbor^MI^99999^USA\r"
    ).segment("PID")
    (address,) = addresses(pid.field(11))
    assert address.lines == ["1000", "Hospital Lane", "Ste. 123"]
    assert (address.city, address.postal_code) == ("Ann Arbor", "99999")
