"""configure_logging end to end: what reaches the stream, from structlog and
from the standard library, with context and without PHI."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from engine.logging import (
    bind_context,
    bound_context,
    configure_logging,
    current_context,
    get_logger,
    reset_logging,
    unbind_context,
)

ADT_A01 = "\r".join(
    [
        "MSH|^~\\&|EPIC|UCLH|WARDSTREAM|UCLH|20240501101500+0100||ADT^A01|MSG00042|P|2.5",
        "EVN|A01|20240501101500+0100",
        "PID|1||MRN7654321^^^UCLH^MR~9434765919^^^NHS^NH||FITZGERALD^ELEANOR^MARY^^MRS||19530412|F"
        "|||42 Larkspur Road^^Camden^^NW5 2QT^GBR||020 7946 0123^PRN^PH~eleanor.fitz@example.org",
        "NK1|1|FITZGERALD^PATRICK|SON|42 Larkspur Road^^Camden",
        "PV1|1|I|WARD7^12^B^UCLH||||C1234^OKONKWO^CHIDI^^^DR|||MED",
    ]
)
PHI = [
    "FITZGERALD",
    "ELEANOR",
    "PATRICK",
    "MRN7654321",
    "9434765919",
    "19530412",
    "1953-04-12",
    "Larkspur",
    "7946 0123",
    "eleanor.fitz",
    "OKONKWO",
]
CONTEXT = {"channel": "adt-in", "step_id": "normalize", "correlation_id": "MSG00042"}


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    reset_logging()
    yield
    reset_logging()


def log_everything() -> None:
    """The lines a failing ingest produces: PHI in the message, in keyword
    arguments, in an exception and on a third-party (stdlib) logger."""
    log = get_logger("wardstream.test")
    with bound_context(**CONTEXT):
        log.info(f"received {ADT_A01}")
        log.info("admitted", patient_name="Eleanor Fitzgerald", mrn="MRN7654321", ward="WARD7")
        log.warning("demographics", patient={"dob": "1953-04-12", "gender": "F"}, beds=12)
        try:
            raise ValueError(f"unparseable message {ADT_A01!r}")
        except ValueError:
            log.exception("normalize failed")
        logging.getLogger("aiokafka.consumer").warning(
            "callback for %s failed: %s", "020 7946 0123", ADT_A01.replace("\r", "\n")
        )
        try:
            raise RuntimeError(ADT_A01)
        except RuntimeError:
            logging.getLogger("uvicorn.error").exception("exception in ASGI application")


def assert_no_phi(output: str) -> None:
    leaked = [value for value in PHI if value in output]
    assert leaked == [], f"PHI reached the log: {leaked}\n{output}"


def test_json_lines_carry_context_but_no_phi() -> None:
    out = io.StringIO()
    configure_logging("info", "json", stream=out)

    log_everything()

    output = out.getvalue()
    assert_no_phi(output)
    lines = [json.loads(line) for line in output.splitlines()]
    assert [line["event"].split(" ")[0] for line in lines] == [
        "received",
        "admitted",
        "demographics",
        "normalize",
        "callback",
        "exception",
    ]
    for line in lines:
        assert {k: line[k] for k in CONTEXT} == CONTEXT
        assert line["timestamp"].endswith("Z")
    assert [line["logger"] for line in lines[-2:]] == ["aiokafka.consumer", "uvicorn.error"]
    assert lines[1]["patient_name"] == "[REDACTED]"
    assert lines[1]["ward"] == "WARD7"
    assert lines[2]["beds"] == 12
    assert "ValueError: unparseable message" in lines[3]["exception"]
    assert "RuntimeError: MSH|^~\\&|EPIC|UCLH" in lines[5]["exception"]
    assert "PV1|1|I|WARD7^12^B^UCLH" in lines[0]["event"]


def test_console_format_is_redacted_too() -> None:
    out = io.StringIO()
    configure_logging("info", "console", stream=out)

    log_everything()

    output = out.getvalue()
    assert_no_phi(output)
    assert not output.startswith("{")
    assert "channel=adt-in" in output
    assert "correlation_id=MSG00042" in output
    assert "Traceback (most recent call last)" in output


def test_without_redaction_the_same_lines_carry_phi() -> None:
    """The fixture really contains PHI: the checks above would catch a leak."""
    out = io.StringIO()
    configure_logging("info", "json", redact=False, stream=out)

    log_everything()

    output = out.getvalue()
    assert [value for value in PHI if value not in output] == []
    assert "PHI redaction is disabled" in output.splitlines()[0]


def test_auto_format_is_console_on_a_terminal_and_json_otherwise() -> None:
    main, replica = os.openpty()
    with os.fdopen(replica, "w", encoding="utf-8") as terminal:
        configure_logging("info", "auto", stream=terminal)
        get_logger().info("hello", patient_name="Eleanor Fitzgerald")
        terminal.flush()
        on_terminal = os.read(main, 65536).decode()
        reset_logging()
    os.close(main)
    piped = io.StringIO()
    configure_logging("info", "auto", stream=piped)
    get_logger().info("hello", patient_name="Eleanor Fitzgerald")

    assert "hello" in on_terminal
    assert "[REDACTED]" in on_terminal
    assert not on_terminal.lstrip().startswith("{")
    assert json.loads(piped.getvalue())["patient_name"] == "[REDACTED]"


def test_output_to_a_file_path(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "wardstream.log"
    path.parent.mkdir()
    configure_logging("info", "json", stream=path)
    get_logger().info("first", mrn="MRN7654321")
    logging.getLogger("uvicorn").info("second %s", "eleanor.fitz@example.org")
    reset_logging()

    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [(line["event"], line.get("mrn")) for line in lines] == [
        ("first", "[REDACTED]"),
        ("second [REDACTED]", None),
    ]


def test_level_filters_structlog_and_stdlib_lines() -> None:
    out = io.StringIO()
    configure_logging("warning", "json", stream=out)

    get_logger().info("quiet")
    logging.getLogger("aiokafka").info("quiet too")
    get_logger().warning("loud")
    logging.getLogger("aiokafka").error("loud too")

    assert [json.loads(line)["event"] for line in out.getvalue().splitlines()] == [
        "loud",
        "loud too",
    ]


def test_reset_restores_the_root_logger() -> None:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    configure_logging("error", "json", stream=io.StringIO())
    configure_logging("debug", "json", stream=io.StringIO())
    reset_logging()
    assert (root.level, root.handlers) == (level, handlers)


def test_reconfiguring_replaces_the_handler() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("info", "json", stream=first)
    configure_logging("info", "json", stream=second)

    logging.getLogger("aiokafka").warning("once")
    structlog.get_logger("module.level").info("also once")

    assert first.getvalue() == ""
    events = [json.loads(line) for line in second.getvalue().splitlines()]
    assert [(e["event"], e["logger"]) for e in events] == [
        ("once", "aiokafka"),
        ("also once", "module.level"),
    ]


def test_invalid_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging("verbose")
    with pytest.raises(ValueError, match="unknown log format"):
        configure_logging("info", "xml")


def test_context_helpers() -> None:
    bind_context(channel="adt-in", step_id="census")
    with bound_context(correlation_id="MSG1", step_id="normalize"):
        assert dict(current_context()) == {
            "channel": "adt-in",
            "step_id": "normalize",
            "correlation_id": "MSG1",
        }
    assert dict(current_context()) == {"channel": "adt-in", "step_id": "census"}
    unbind_context("step_id")
    assert dict(current_context()) == {"channel": "adt-in"}


async def test_context_is_per_task() -> None:
    out = io.StringIO()
    configure_logging("info", "json", stream=out)
    log = get_logger()

    async def handle(channel: str, correlation_id: str) -> None:
        bind_context(channel=channel, correlation_id=correlation_id)
        await asyncio.sleep(0)
        log.info("handled")

    await asyncio.gather(handle("adt-in", "A1"), handle("lab-in", "B2"))

    lines = sorted(
        (e["channel"], e["correlation_id"]) for e in map(json.loads, out.getvalue().splitlines())
    )
    assert lines == [("adt-in", "A1"), ("lab-in", "B2")]
