"""One corpus input through the engine's own path: intake, normalize, FHIR out.

The same calls the engine makes, without a bus: ``parse_bytes`` (or
``split_batch`` for a batch file), ``validate_for_intake`` (the MLLP verdict),
the intake envelope, ``canonical_events``, then per event ``to_fhir``,
``validate_resource`` on every resource and ``transaction_bundle``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from pydantic import ValidationError

from pipelines.fhir_map import FhirInputError, to_fhir, transaction_bundle, validate_resource
from pipelines.hl7v2 import (
    Hl7ParseError,
    Message,
    intake_envelope,
    parse,
    parse_bytes,
    split_batch,
    validate_for_intake,
)
from pipelines.hl7v2.normalize import MappingError, canonical_events

Json = dict[str, Any]
CHANNEL = "conformance"
# A fixed receive time: the Provenance it feeds is not compared, and fixed input
# gives the same report twice.
RECEIVED_AT = datetime(2026, 1, 1, tzinfo=UTC)
MAPPED_CODES = frozenset({"ADT", "ORU"})
_BATCH_HEADERS = (b"FHS", b"BHS")


@dataclass(slots=True)
class PipelineRun:
    """What the engine made of one message."""

    message_type: str
    intake: str
    in_scope: bool
    dead_letter: str | None = None
    bundles: list[Json] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)

    @property
    def mapped(self) -> bool:
        return self.dead_letter is None and bool(self.bundles)

    def resources(self) -> list[Json]:
        """The resources of every bundle, each (type, id) once, in order."""
        seen: set[tuple[str, str]] = set()
        found: list[Json] = []
        for bundle in self.bundles:
            for entry in bundle["entry"]:
                resource = entry["resource"]
                key = (resource["resourceType"], resource["id"])
                if key not in seen:
                    seen.add(key)
                    found.append(resource)
        return found


def is_batch(data: bytes) -> bool:
    """Whether ``data`` is an HL7 batch file (an FHS or BHS segment opens a line)."""
    lines = data.removeprefix(b"\xef\xbb\xbf").replace(b"\r", b"\n").split(b"\n")
    return any(line[:3] in _BATCH_HEADERS for line in lines)


def split_input(data: bytes) -> list[bytes | str]:
    """The messages of one input file: its bytes, or the texts of a batch file."""
    if is_batch(data):
        return list(split_batch(data.decode("utf-8-sig")))
    return [data]


def parse_corpus_input(raw: bytes | str) -> Message:
    """Parse one message as intake does. Raises :class:`Hl7ParseError`."""
    return parse_bytes(raw) if isinstance(raw, bytes) else parse(raw)


def _intake_verdict(raw: bytes | str) -> str:
    result = validate_for_intake(raw)
    if result.error is None:
        return result.ack_code
    return f"{result.ack_code}: {result.error.text}"


def _issues(resource: Json) -> list[str]:
    try:
        validate_resource(resource)
    except FhirInputError as exc:
        label = f"{resource.get('resourceType')}/{resource.get('id', '?')}"
        return [f"{label}: {issue.expression}: {issue.diagnostics}" for issue in exc.issues]
    return []


def run_message(
    message: Message, raw: bytes | str, *, envelope_id: str, default_tz: tzinfo = UTC
) -> PipelineRun:
    """Map one parsed message to transaction Bundles, validating every resource."""
    header = message.header
    kind = header.message_code.strip().upper()
    trigger = header.trigger_event.strip().upper()
    run = PipelineRun(
        message_type=f"{kind}^{trigger}" if trigger else kind,
        intake=_intake_verdict(raw),
        in_scope=kind in MAPPED_CODES,
    )
    try:
        events = canonical_events(message, default_tz)
    except MappingError as exc:
        run.dead_letter = str(exc)
        return run
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "event"
        run.dead_letter = f"canonical event invalid at {where}: {first['type']}"
        return run
    source = intake_envelope(
        message, channel=CHANNEL, received_at=RECEIVED_AT, envelope_id=envelope_id
    )
    for event in events:
        resources = to_fhir(event, source)
        for resource in resources:
            run.invalid += _issues(resource)
        bundle = transaction_bundle(resources)
        run.invalid += _issues(bundle)
        run.bundles.append(bundle)
    return run


__all__ = [
    "CHANNEL",
    "RECEIVED_AT",
    "Hl7ParseError",
    "PipelineRun",
    "is_batch",
    "parse_corpus_input",
    "run_message",
    "split_input",
]
