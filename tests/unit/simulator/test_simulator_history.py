"""History files: one HL7 batch (FHS/BHS ... BTS/FTS) holding the simulated messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connectors.simulator import simulate, tiny_hospital, write_history
from pipelines.hl7v2 import split_batch

START = datetime(2026, 2, 2, tzinfo=UTC)


def run(days: float = 5):  # type: ignore[no-untyped-def]
    return simulate(tiny_hospital(), seed=11, start=START, duration=timedelta(days=days))


def test_batch_wraps_every_message_in_order(tmp_path):
    path = tmp_path / "history.hl7"
    messages = list(run())
    assert write_history(path, iter(messages)) == len(messages)

    text = path.read_bytes().decode()
    blocks = text.split("\n")
    assert blocks[-1] == ""
    header, *bodies, trailer = blocks[:-1]
    assert bodies == [m.text for m in messages]
    fhs, bhs, rest = header.split("\r")
    assert rest == ""
    assert fhs.startswith("FHS|^~\\&|SIMEHR|WARDSTREAM_GENERAL|WARDSTREAM|WARDSTREAM|")
    assert fhs.split("|")[8] == "history.hl7"
    assert bhs.startswith("BHS|^~\\&|SIMEHR|WARDSTREAM_GENERAL|")
    assert bhs.split("|")[10] == messages[0].control_id
    assert trailer == f"BTS|{len(messages)}\rFTS|1\r"
    # The engine's batch splitter gets the messages back exactly.
    assert split_batch(text) == [m.text for m in messages]
    assert list(tmp_path.iterdir()) == [path]


def test_same_run_gives_the_same_file(tmp_path):
    write_history(tmp_path / "a.hl7", run())
    write_history(tmp_path / "b.hl7", run())
    a = (tmp_path / "a.hl7").read_bytes().replace(b"a.hl7", b"X")
    b = (tmp_path / "b.hl7").read_bytes().replace(b"b.hl7", b"X")
    assert a == b


def test_empty_history_is_a_valid_empty_batch(tmp_path):
    path = tmp_path / "empty.hl7"
    assert write_history(path, []) == 0
    header, trailer, end = path.read_bytes().decode().split("\n")
    assert header.startswith("FHS|^~\\&|")
    assert "\rBHS|^~\\&|" in header
    assert trailer == "BTS|0\rFTS|1\r"
    assert end == ""


def test_rewriting_replaces_the_file_whole(tmp_path):
    path = tmp_path / "history.hl7"
    write_history(path, run(days=5))
    shorter = write_history(path, run(days=1))
    assert path.read_bytes().decode().count("MSH|") == shorter
