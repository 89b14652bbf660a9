"""Structured logging with PHI redaction.

``configure_logging`` sets up structlog and routes the standard library's
loggers (uvicorn, aiokafka, ...) through the same processors, so every line
is redacted by ``redact_phi`` before it is rendered. Context such as the
channel, step id and correlation id is bound per task with ``bind_context``
or ``bound_context`` and appears on every line logged inside it.

Redaction is deliberately eager: values under PHI-like keys are replaced
wholesale, HL7 segments that carry patient data are masked, and dates of
birth, phone numbers and e-mail addresses are masked in any text.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

REDACTED = "[REDACTED]"

LogLevel = Literal["debug", "info", "warning", "error"]
LogFormat = Literal["auto", "json", "console"]
_LEVELS: dict[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

# Keys whose values are always PHI (or may hold whole messages).
_PHI_KEYS = frozenset(
    {
        "name", "family", "given", "surname", "forename", "birth_date", "birthdate", "dob",
        "date_of_birth", "address", "street", "city", "postcode", "postal_code", "zip",
        "zip_code", "phone", "telephone", "mobile", "telecom", "email", "mrn", "nhs_number",
        "ssn", "identifier", "identifiers", "patient_id", "pid", "payload", "message", "raw",
        "body", "text", "content", "frame", "segment", "segments", "hl7", "fhir", "resource",
        "bundle", "patient", "nok", "next_of_kin", "guarantor", "insured",
    }
)  # fmt: skip
# A key made of words joined by '_' is PHI if any word is one of these
# (patient_name, home_phone, raw_payload).
_PHI_WORDS = frozenset(
    {
        "name", "names", "family", "given", "surname", "birth", "birthdate", "dob", "address",
        "street", "city", "postcode", "zip", "phone", "telephone", "mobile", "telecom", "email",
        "mrn", "ssn", "nhs", "identifier", "identifiers", "patient", "payload", "body", "raw",
    }
)  # fmt: skip
# Never redacted wholesale (their values are still scanned).
_SAFE_KEYS = frozenset(
    {
        "event", "channel", "channel_name", "step_id", "correlation_id", "message_id",
        "envelope_id", "topic", "partition", "offset", "logger", "logger_name", "level",
        "timestamp", "exception", "stack", "file_name", "host_name", "model_name",
    }
)  # fmt: skip
# Keys structlog and the stdlib bridge add: not user data, never touched.
_SKIP_KEYS = frozenset({"_record", "_from_structlog", "timestamp", "level", "logger"})

# Each pattern starts by consuming a plain character (class) and checks what
# precedes it with a lookbehind afterwards: the regex engine then skips ahead
# to candidate first characters, where a leading lookbehind or group would
# make it try every position (10x slower on text with nothing to mask).
_SEGMENTS = re.compile(
    r"(?P<seg>PID|PD1|NK1|GT1|IN1|IN2|IN3|MRG|PV1|PV2|OBX|NTE)"
    # At a segment boundary: after a non-alphanumeric character (or the start),
    # or after an escaped \r / \n as repr() and tracebacks show them.
    r"(?:(?<![A-Za-z0-9]...)|(?<=\\[rn]...))"
    # HL7 allows any field separator; it is whatever follows the segment id.
    r"(?P<sep>[^A-Za-z0-9\s\\])"
    # The segment runs to the next real or escaped line break.
    r"(?P<body>(?:[^\r\n\\]|\\(?![rn]))*)"
)
_NUMBERS = re.compile(
    r"[+(0-9](?<![\w+./-].)(?:"
    r"(?P<date>(?:"
    r"(?:(?<=1)9|(?<=2)0)[0-9]{2}"  # 19xx / 20xx, then -MM-DD or MMDD
    r"(?:-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01]))"
    r"|(?<=[0-9])[0-9]?[/.][0-9]{1,2}[/.](?:19|20)[0-9]{2}"  # D/M/YYYY, M/D/YYYY
    # Standalone only: not part of a timestamp like 2024-05-01T10:00 or 2024-05-01 10:00.
    r")(?![\w:/-]| [0-9]{1,2}:))"
    r"|(?P<phone>(?:"
    r"(?<=\+)[0-9 ().-]{7,18}[0-9]"  # +44 20 7946 0958
    r"|(?<=\()[0-9]{1,5}\)[ .-]?[0-9]{2,6}(?:[ .-][0-9]{2,6}){0,3}"  # (555) 123-4567
    r"|(?<=[0-9])[0-9]{1,5}(?:[ .-][0-9]{2,6}){1,4}"  # 555-123-4567, 07700 900123
    r")(?![\w:]|\.[0-9])))"
)
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_ISO_DATE_PREFIX = re.compile(r"\d{4}-\d\d-\d\d")

# Fields (1-based) masked in segments that are otherwise kept: PV1 keeps the
# ward/bed location but not the clinicians or visit numbers; OBX keeps coded
# and numeric results but not free text or the responsible observer.
_FIELD_MASKS = {"PV1": frozenset({7, 8, 9, 17, 19, 50, 52}), "OBX": frozenset({16, 25})}
_OBX_KEPT_VALUE_TYPES = frozenset({"NM", "SN", "NA", "CE", "CWE", "CNE", "CQ", "ID", "IS"})
_MAX_DEPTH = 4
# Shorter strings cannot hold an e-mail address, date or phone number.
_MIN_SCANNED = 5


@functools.lru_cache(maxsize=4096)
def is_phi_key(key: str) -> bool:
    """Whether values logged under ``key`` are replaced wholesale."""
    normal = key.lower().replace("-", "_")
    if normal in _SAFE_KEYS:
        return False
    return normal in _PHI_KEYS or not _PHI_WORDS.isdisjoint(normal.split("_"))


def scrub_text(text: str) -> str:
    """``text`` with HL7 patient segments, dates of birth, phone numbers and
    e-mail addresses masked."""
    if len(text) < _MIN_SCANNED:
        return text
    text = _SEGMENTS.sub(_mask_segment, text)
    text = _NUMBERS.sub(_mask_number, text)
    return _EMAIL.sub(REDACTED, text) if "@" in text else text


def _mask_number(match: re.Match[str]) -> str:
    text = match[0]
    return REDACTED if match["date"] is not None or _looks_like_phone(text) else text


def _mask_segment(match: re.Match[str]) -> str:
    segment, sep, body = match["seg"], match["sep"], match["body"]
    if not body:
        return segment + sep
    masked_fields = _FIELD_MASKS.get(segment)
    if masked_fields is None:
        return segment + sep + REDACTED
    fields = body.split(sep)
    for i, value in enumerate(fields, start=1):
        if not value:
            continue
        free_text_obx = segment == "OBX" and i == 5 and fields[1] not in _OBX_KEPT_VALUE_TYPES
        if i in masked_fields or free_text_obx:
            fields[i - 1] = REDACTED
    return segment + sep + sep.join(fields)


def _looks_like_phone(candidate: str) -> bool:
    digits = sum(c.isdigit() for c in candidate)
    if not 9 <= digits <= 15:
        return False
    if _IPV4.fullmatch(candidate) or _ISO_DATE_PREFIX.match(candidate):
        return False
    # A plain decimal number (12345.678901) is not a phone number.
    return not (candidate.count(".") == 1 and candidate.replace(".", "").isdigit())


def _present(value: Any) -> bool:
    # Not `value in (None, "")`: == on arrays and tensors does not give a bool.
    return value is not None and not (isinstance(value, str) and not value)


def _scrub(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return scrub_text(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth >= _MAX_DEPTH:
        return REDACTED
    if isinstance(value, dict):
        return {
            k: REDACTED if is_phi_key(str(k)) and _present(v) else _scrub(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrub(item, depth + 1) for item in value]
    if isinstance(value, bytes | bytearray):
        return scrub_text(bytes(value).decode("utf-8", "replace"))
    if isinstance(value, date):
        # A datetime is a moment, not a birth date; a bare date might be one.
        return value.isoformat() if isinstance(value, datetime) else scrub_text(value.isoformat())
    # Anything else is rendered with repr() by both renderers: scan that text.
    return scrub_text(repr(value))


def redact_phi(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask PHI in every value of ``event_dict``.

    Place it after exception formatting and before the renderer. Values under
    PHI-like keys (``patient_name``, ``mrn``, ``payload``, ...) become
    ``[REDACTED]``; every other value, the event text and exception text
    included, is scanned by ``scrub_text``.
    """
    if event_dict.get("exc_info"):
        # Tracebacks carry exception messages (often whole HL7 messages): turn
        # them into text here so they are scanned, whatever the chain order.
        event_dict = structlog.processors.format_exc_info(logger, method_name, event_dict)
    for key, value in event_dict.items():
        if key in _SKIP_KEYS:
            continue
        if is_phi_key(key) and _present(value):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _scrub(value)
    return event_dict


class _WardstreamHandler(logging.StreamHandler[TextIO]):
    """The root handler ``configure_logging`` installs (and replaces on reconfiguration)."""


_owned_file: TextIO | None = None
# The root level before configure_logging first changed it, for reset_logging.
_root_level_before: int | None = None


def configure_logging(
    level: LogLevel | str = "info",
    fmt: LogFormat | str = "auto",
    redact: bool = True,
    *,
    stream: TextIO | str | Path | None = None,
) -> None:
    """Configure structlog and the standard library's logging.

    ``fmt`` is ``json`` (JSON lines), ``console`` (human-readable) or ``auto``
    (console when the output is a terminal, else JSON). ``stream`` is a text
    stream or a file path to append to (standard error by default). Calling
    it again replaces the previous configuration.

    uvicorn installs its own handlers unless started with ``log_config=None``;
    start it that way so its lines go through these processors too.
    """
    level_no = _LEVELS.get(str(level).lower())
    if level_no is None:
        raise ValueError(f"unknown log level {level!r}: use one of {', '.join(_LEVELS)}")
    if fmt not in ("auto", "json", "console"):
        raise ValueError(f"unknown log format {fmt!r}: use auto, json or console")
    out = _open_stream(stream)
    tty = _isatty(out)
    renderer: Processor
    if fmt == "console" or (fmt == "auto" and tty):
        renderer = structlog.dev.ConsoleRenderer(colors=tty)
    else:
        renderer = structlog.processors.JSONRenderer()
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]
    if redact:
        shared.append(redact_phi)
    shared.append(structlog.processors.TimeStamper(fmt="iso", utc=True))

    structlog.configure(
        processors=[_add_logger_name, *shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level_no),
        logger_factory=_NamedWriteLoggerFactory(out),
        # Not cached, so a later configure_logging reaches module-level loggers.
        cache_logger_on_first_use=False,
    )
    handler = _WardstreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    global _root_level_before
    root = logging.getLogger()
    if _root_level_before is None:
        _root_level_before = root.level
    _remove_handlers(root)
    root.addHandler(handler)
    root.setLevel(level_no)
    if not redact:
        get_logger(__name__).warning("PHI redaction is disabled: logs may contain patient data")


def reset_logging() -> None:
    """Undo ``configure_logging``: structlog defaults, no Wardstream handler,
    the root logger's level as it was, no bound context."""
    global _owned_file, _root_level_before
    root = logging.getLogger()
    _remove_handlers(root)
    if _root_level_before is not None:
        root.setLevel(_root_level_before)
        _root_level_before = None
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    if _owned_file is not None:
        _owned_file.close()
        _owned_file = None


def _remove_handlers(root: logging.Logger) -> None:
    for handler in [h for h in root.handlers if isinstance(h, _WardstreamHandler)]:
        root.removeHandler(handler)
        handler.close()


def _open_stream(stream: TextIO | str | Path | None) -> TextIO:
    global _owned_file
    if _owned_file is not None:
        _owned_file.close()
        _owned_file = None
    if stream is None:
        return sys.stderr
    if isinstance(stream, str | Path):
        _owned_file = Path(stream).open("a", encoding="utf-8", buffering=1)  # noqa: SIM115
        return _owned_file
    return stream


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # detached or closed streams
        return False


def get_logger(name: str | None = None, **initial: Any) -> FilteringBoundLogger:
    """A structlog logger, optionally named (the ``logger`` key, as on stdlib
    lines) and with bound values."""
    args = () if name is None else (name,)
    logger: FilteringBoundLogger = structlog.get_logger(*args, **initial)
    return logger


class _NamedWriteLogger(structlog.WriteLogger):
    """A WriteLogger that keeps the name it was asked for with ``get_logger(name)``."""

    def __init__(self, file: TextIO, name: str | None) -> None:
        super().__init__(file)
        self.name = name


class _NamedWriteLoggerFactory:
    def __init__(self, file: TextIO) -> None:
        self._file = file

    def __call__(self, *args: Any) -> _NamedWriteLogger:
        return _NamedWriteLogger(self._file, str(args[0]) if args else None)


def _add_logger_name(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    name = getattr(logger, "name", None)
    if name is not None:
        event_dict.setdefault("logger", name)
    return event_dict


def bind_context(**values: Any) -> None:
    """Bind ``values`` (channel, step_id, correlation_id, ...) to every line
    logged by the current task or thread from now on."""
    structlog.contextvars.bind_contextvars(**values)


def unbind_context(*keys: str) -> None:
    """Remove keys bound by ``bind_context``."""
    structlog.contextvars.unbind_contextvars(*keys)


@contextmanager
def bound_context(**values: Any) -> Iterator[None]:
    """Bind ``values`` for the duration of a ``with`` block, then restore what was bound."""
    with structlog.contextvars.bound_contextvars(**values):
        yield


def current_context() -> MutableMapping[str, Any]:
    """The values bound in the current context."""
    return structlog.contextvars.get_contextvars()


__all__ = [
    "REDACTED",
    "bind_context",
    "bound_context",
    "configure_logging",
    "current_context",
    "get_logger",
    "is_phi_key",
    "redact_phi",
    "reset_logging",
    "scrub_text",
]
