"""The conformance report over the FHIR-Converter corpus: :func:`run_conformance`.

Three questions, every figure counted here: does each input parse; does each
ADT and ORU message map to valid FHIR (or dead-letter, and why); and where
FHIR-Converter's expected bundle and ours both map a field, do they agree.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, tzinfo
from pathlib import Path
from typing import Any

from engine.conformance._pairing import compare_bundles
from engine.conformance._pipeline import (
    Hl7ParseError,
    is_batch,
    parse_corpus_input,
    run_message,
    split_input,
)
from engine.conformance._quirks import QUIRKS, classify
from engine.conformance.scoring import FieldResult, Score, score


class CorpusError(ValueError):
    """The folder is not a FHIR-Converter corpus (no ``index.json`` or ``input/``)."""


@dataclass(frozen=True, slots=True)
class MessageOutcome:
    """What happened to one message of the corpus, and how it compares."""

    file: str
    message_type: str
    template: str | None = None
    expected: str | None = None
    parse_error: str | None = None
    intake: str | None = None
    in_scope: bool = False
    dead_letter: str | None = None
    bundles: int = 0
    resources: int = 0
    invalid: tuple[str, ...] = ()
    fields: tuple[FieldResult, ...] = ()

    @property
    def parsed(self) -> bool:
        return self.parse_error is None

    @property
    def mapped(self) -> bool:
        return self.parsed and self.dead_letter is None and self.bundles > 0

    @property
    def compared(self) -> bool:
        """Mapped, in scope, and with an expected bundle to compare against."""
        return self.in_scope and self.mapped and self.expected is not None


@dataclass(frozen=True, slots=True)
class TypeRow:
    """One line of the agreement table: a message type and its counts."""

    message_type: str
    messages: int
    score: Score


@dataclass(frozen=True, slots=True)
class ConformanceReport:
    """Every message's outcome; the tables and lists are views of them."""

    corpus: str
    inputs: int
    messages: tuple[MessageOutcome, ...] = field(default_factory=tuple)

    def parse_failures(self) -> list[MessageOutcome]:
        return [m for m in self.messages if not m.parsed]

    def in_scope(self) -> list[MessageOutcome]:
        """The parsed ADT and ORU messages."""
        return [m for m in self.messages if m.parsed and m.in_scope]

    def dead_letters(self) -> list[MessageOutcome]:
        return [m for m in self.in_scope() if m.dead_letter is not None]

    def invalid(self) -> list[MessageOutcome]:
        return [m for m in self.messages if m.invalid]

    def rows(self) -> list[TypeRow]:
        """Agreement per message type (compared messages only), sorted by type."""
        kinds = sorted({m.message_type for m in self.messages if m.compared})
        rows = []
        for kind in kinds:
            group = [m for m in self.messages if m.compared and m.message_type == kind]
            rows.append(TypeRow(kind, len(group), score(f for m in group for f in m.fields)))
        return rows

    def total(self) -> TypeRow:
        rows = self.rows()
        return TypeRow(
            "total", sum(r.messages for r in rows), sum((r.score for r in rows), Score())
        )

    def results(self, *statuses: str) -> list[tuple[MessageOutcome, FieldResult]]:
        """Every field result with one of ``statuses``, message by message."""
        return [(m, f) for m in self.messages for f in m.fields if f.status in statuses]

    def by_field(self) -> dict[str, Score]:
        """Counts per resource type and field name (indexes folded: ``name[].family``)."""
        groups: dict[str, list[FieldResult]] = {}
        for message in self.messages:
            for result in message.fields:
                groups.setdefault(f"{result.resource}.{field_family(result.field)}", []).append(
                    result
                )
        return {name: score(results) for name, results in sorted(groups.items())}

    def to_json(self) -> dict[str, Any]:
        """The whole report as JSON-ready data (the tables, then every message)."""

        def row(r: TypeRow) -> dict[str, Any]:
            return {"message_type": r.message_type, "messages": r.messages, **_score_json(r.score)}

        return {
            "corpus": self.corpus,
            "inputs": self.inputs,
            "parsed": sum(m.parsed for m in self.messages),
            "messages": len(self.messages),
            "agreement": [row(r) for r in self.rows()],
            "total": row(self.total()),
            "by_field": {k: _score_json(v) for k, v in self.by_field().items()},
            "quirks": QUIRKS,
            "outcomes": [
                {**asdict(m), "parsed": m.parsed, "mapped": m.mapped, "compared": m.compared}
                for m in self.messages
            ],
        }


def _score_json(counts: Score) -> dict[str, Any]:
    ratio = counts.score
    return {
        "compared": counts.compared,
        "agreed": counts.agreed,
        "score": round(ratio * 100, 1) if ratio is not None else None,
        "ours_only": counts.ours_only,
        "theirs_only": counts.theirs_only,
    }


def field_family(name: str) -> str:
    """A field name without its pairing index or key: ``name[2].family`` → ``name[].family``,
    ``identifier[1234]`` → ``identifier[]``, ``location(completed)#2`` → ``location(completed)``."""
    return _REPEAT.sub("", _INDEX.sub("[]", name))


_INDEX = re.compile(r"\[[^\]]*\]")
_REPEAT = re.compile(r"#\d+$")


def _entries(corpus: Path) -> list[dict[str, Any]]:
    index = corpus / "index.json"
    if not index.is_file() or not (corpus / "input").is_dir():
        raise CorpusError(f"{corpus}: not a FHIR-Converter corpus (index.json and input/ needed)")
    entries: list[dict[str, Any]] = json.loads(index.read_text(encoding="utf-8"))
    return entries


def _their_resources(corpus: Path, expected: str) -> list[dict[str, Any]]:
    bundle = json.loads((corpus / expected).read_text(encoding="utf-8"))
    return [e["resource"] for e in bundle.get("entry", []) if isinstance(e.get("resource"), dict)]


def _outcomes(corpus: Path, entry: dict[str, Any], default_tz: tzinfo) -> Iterable[MessageOutcome]:
    name = Path(entry["input"]).name
    data = (corpus / entry["input"]).read_bytes()
    fallback_type = "^".join((entry.get("msh_9") or "?").split("^")[:2])
    template: str | None = entry.get("template")
    expected: str | None = entry.get("expected")
    try:
        raws = split_input(data)
    except Hl7ParseError as exc:
        yield MessageOutcome(name, fallback_type, template, expected, parse_error=str(exc))
        return
    batch = is_batch(data)
    for position, raw in enumerate(raws, start=1):
        label = f"{name}#{position}" if batch else name
        try:
            message = parse_corpus_input(raw)
            message_type = message.header.message_type
        except Hl7ParseError as exc:
            yield MessageOutcome(label, fallback_type, template, expected, parse_error=str(exc))
            continue
        run = run_message(message, raw, envelope_id=f"conformance-{label}", default_tz=default_tz)
        fields: tuple[FieldResult, ...] = ()
        if run.in_scope and run.mapped and expected is not None:
            theirs = _their_resources(corpus, expected)
            fields = tuple(
                classify(f, run.message_type) for f in compare_bundles(run.resources(), theirs)
            )
        yield MessageOutcome(
            label,
            run.message_type or message_type,
            template,
            expected,
            intake=run.intake,
            in_scope=run.in_scope,
            dead_letter=run.dead_letter,
            bundles=len(run.bundles),
            resources=sum(len(b["entry"]) for b in run.bundles),
            invalid=tuple(run.invalid),
            fields=fields,
        )


def run_conformance(corpus: Path, *, default_tz: tzinfo = UTC) -> ConformanceReport:
    """Run every input of the FHIR-Converter corpus at ``corpus`` through the engine's
    pipeline and compare with the expected bundles. Raises :class:`CorpusError`."""
    entries = _entries(corpus)
    messages = tuple(m for entry in entries for m in _outcomes(corpus, entry, default_tz))
    return ConformanceReport(str(corpus), len(entries), messages)
