"""The hand-written intake envelope JSON of the ingest hot path is the bytes
pydantic writes for the same Envelope, and reads back as that Envelope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.types import Envelope
from pipelines.hl7v2 import Message, intake_envelope, parse
from pipelines.hl7v2._intake import intake_envelope_bytes
from tests.hl7_factory import adt

# Anything but the characters that would split the message into other segments
# or fields; JSON escapes (quotes, backslashes, control characters), non-ASCII
# and the HL7 escape character are all in.
FIELD_TEXT = st.text(
    alphabet=st.characters(blacklist_characters="\r\n|^~&", blacklist_categories=("Cs",)),
    max_size=30,
)
ANY_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)
OFFSETS = st.one_of(
    st.just(UTC),
    st.integers(-18 * 60 + 1, 18 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m))),
    st.integers(-86_399, 86_399).map(lambda s: timezone(timedelta(seconds=s))),
)
TIMES = st.datetimes(
    min_value=datetime(1900, 1, 2),  # noqa: DTZ001 - hypothesis takes naive bounds
    max_value=datetime(2200, 1, 1),  # noqa: DTZ001 - and adds the zone below
    timezones=OFFSETS,
)


def message(control_id: str = "C-1", name: str = "DOE^JANE") -> Message:
    return parse(adt("A01", control_id, "P1", name=name, sending_app="PAS"))


def both(msg: Message, **options: object) -> tuple[bytes, bytes]:
    expected = intake_envelope(msg, **options).to_bytes()  # type: ignore[arg-type]
    return expected, intake_envelope_bytes(msg, **options)  # type: ignore[arg-type]


def test_same_bytes_as_pydantic_for_a_plain_message() -> None:
    at = datetime(2026, 1, 5, 10, 15, 0, 123456, tzinfo=UTC)
    expected, fast = both(
        message(),
        channel="adt-in",
        received_at=at,
        headers={"peer": "127.0.0.1:4000"},
        envelope_id="e1",
    )
    assert fast == expected
    assert b'"received_at":"2026-01-05T10:15:00.123456Z"' in fast


@pytest.mark.parametrize(
    "headers",
    [None, {}, {"peer": "p"}, {"sending_facility": "OVERRIDE", "z": "é\n\x01"}],
)
def test_caller_headers_land_where_a_dict_merge_puts_them(
    headers: dict[str, str] | None,
) -> None:
    at = datetime(2026, 1, 5, 10, 15, tzinfo=UTC)
    expected, fast = both(message(), channel="c", received_at=at, headers=headers, envelope_id="e1")
    assert fast == expected


def test_a_naive_time_is_refused_like_pydantic_does() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        intake_envelope_bytes(message(), channel="c", received_at=datetime(2026, 1, 5))  # noqa: DTZ001


def test_without_an_id_each_envelope_gets_a_new_one() -> None:
    at = datetime(2026, 1, 5, tzinfo=UTC)
    first = Envelope.from_bytes(intake_envelope_bytes(message(), channel="c", received_at=at))
    second = Envelope.from_bytes(intake_envelope_bytes(message(), channel="c", received_at=at))
    assert first.id != second.id
    assert len(first.id) == 32


@settings(max_examples=300, deadline=None)
@given(
    control_id=FIELD_TEXT.filter(str.strip),
    name=FIELD_TEXT,
    channel=ANY_TEXT,
    envelope_id=ANY_TEXT,
    headers=st.dictionaries(ANY_TEXT, ANY_TEXT, max_size=4),
    at=TIMES,
)
def test_same_bytes_and_same_envelope_for_any_content(
    control_id: str,
    name: str,
    channel: str,
    envelope_id: str,
    headers: dict[str, str],
    at: datetime,
) -> None:
    msg = message(control_id, name)
    expected, fast = both(
        msg, channel=channel, received_at=at, headers=headers, envelope_id=envelope_id or "x"
    )
    assert fast == expected
    parsed = Envelope.model_validate_json(fast)
    assert (parsed.id, parsed.correlation_id, parsed.channel) == (
        envelope_id or "x",
        msg.header.control_id,
        channel,
    )
    assert parsed.payload == msg.text
    assert parsed.headers == {
        "sending_application": "PAS",
        "sending_facility": "GENERAL",
        "message_type": "ADT^A01",
        **headers,
    }
    offset = at.utcoffset()
    assert offset is not None
    if not offset % timedelta(minutes=1):
        # pydantic itself writes sub-minute offsets lossily; whole minutes round-trip.
        assert parsed.received_at == at


def test_every_second_of_a_day_boundary_formats_as_pydantic_does() -> None:
    start = datetime(2025, 12, 31, 23, 59, 58, tzinfo=UTC)
    for step in range(5):
        at = start + timedelta(seconds=step, microseconds=step * 250_000)
        expected, fast = both(message(), channel="c", received_at=at, envelope_id="e")
        assert fast == expected
