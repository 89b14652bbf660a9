"""FHIR search: the parameters the result store indexes, how their values are
taken from resources, and how a search query string is parsed.

Supported: ``_id`` on every stored type and ``identifier`` on those that
have one; ``patient``, ``subject``, ``date``, ``location`` (Encounter);
``patient``, ``subject``, ``encounter``, ``date``, ``code`` (Observation);
``target`` (Provenance); ``_count`` and ``_offset`` for paging. Dates without
a time zone are read as UTC; ``\\`` escapes ``,`` ``|`` ``$`` and itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from engine.fhir._values import date_range, split_escaped, unescape

ParamKind = Literal["token", "reference", "date"]
DatePrefix = Literal["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb"]

#: Types the store accepts; the four clinical ones also become canonical events.
STORED_TYPES: tuple[str, ...] = (
    "Patient",
    "Encounter",
    "Location",
    "Observation",
    "Practitioner",
    "Organization",
    "Provenance",
)

DEFAULT_COUNT = 50
MAX_COUNT = 500
# Parameters that change the rendering only; accepted and ignored.
_IGNORED = frozenset({"_format", "_pretty", "_summary", "_total"})
# Far-away bounds standing in for open-ended ranges (epoch seconds).
OPEN_START = -1e15
OPEN_END = 1e15


class SearchError(ValueError):
    """A search query the store cannot answer; ``expression`` names the parameter."""

    def __init__(self, message: str, *, parameter: str | None = None) -> None:
        super().__init__(message)
        self.parameter = parameter


@dataclass(frozen=True, slots=True)
class SearchParam:
    """One search parameter of one resource type."""

    name: str
    kind: ParamKind
    expression: str
    documentation: str
    target: str | None = None


def _params(type_: str, *extra: SearchParam, identifier: bool = True) -> tuple[SearchParam, ...]:
    by_id = SearchParam("_id", "token", f"{type_}.id", "Logical id of the resource.")
    by_identifier = SearchParam(
        "identifier",
        "token",
        f"{type_}.identifier",
        "An identifier: system|value, |value (no system), or value (any system).",
    )
    return (by_id, by_identifier, *extra) if identifier else (by_id, *extra)


SEARCH_PARAMS: dict[str, tuple[SearchParam, ...]] = {
    "Patient": _params("Patient"),
    "Encounter": _params(
        "Encounter",
        SearchParam(
            "patient",
            "reference",
            "Encounter.subject.where(resolve() is Patient)",
            "The patient of the encounter: Patient/id or id.",
            "Patient",
        ),
        SearchParam("subject", "reference", "Encounter.subject", "The encounter's subject."),
        SearchParam(
            "date",
            "date",
            "Encounter.period",
            "Overlap with the encounter's period, with eq/ne/gt/lt/ge/le prefixes.",
        ),
        SearchParam(
            "location",
            "reference",
            "Encounter.location.location",
            "A location the encounter took place at: Location/id or id.",
            "Location",
        ),
    ),
    "Observation": _params(
        "Observation",
        SearchParam(
            "patient",
            "reference",
            "Observation.subject.where(resolve() is Patient)",
            "The patient observed: Patient/id or id.",
            "Patient",
        ),
        SearchParam("subject", "reference", "Observation.subject", "The observation's subject."),
        SearchParam(
            "encounter",
            "reference",
            "Observation.encounter",
            "The encounter of the observation: Encounter/id or id.",
            "Encounter",
        ),
        SearchParam(
            "date",
            "date",
            "Observation.effective",
            "When observed (effectiveDateTime, Period or Instant), with prefixes.",
        ),
        SearchParam("code", "token", "Observation.code", "What was observed: system|code."),
    ),
    "Location": _params("Location"),
    "Practitioner": _params("Practitioner"),
    "Organization": _params("Organization"),
    "Provenance": _params(
        "Provenance",
        SearchParam("target", "reference", "Provenance.target", "A resource it is about."),
        identifier=False,
    ),
}


@dataclass(frozen=True, slots=True)
class IndexRows:
    """The search index entries of one resource."""

    tokens: list[tuple[str, str | None, str]] = field(default_factory=list)
    references: list[tuple[str, str]] = field(default_factory=list)
    dates: list[tuple[str, float, float]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TokenCondition:
    param: str
    # (system, value); system None matches any, "" matches "no system"; value None any.
    alternatives: tuple[tuple[str | None, str | None], ...]


@dataclass(frozen=True, slots=True)
class ReferenceCondition:
    param: str
    alternatives: tuple[str, ...]  # "Type/id", or "id" to match any type


@dataclass(frozen=True, slots=True)
class DateCondition:
    param: str
    alternatives: tuple[tuple[DatePrefix, float, float], ...]


Condition = TokenCondition | ReferenceCondition | DateCondition


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """A parsed search: every condition must hold (alternatives within one are ORed)."""

    type: str
    conditions: tuple[Condition, ...] = ()
    ids: tuple[str, ...] | None = None
    count: int = DEFAULT_COUNT
    offset: int = 0
    echo: tuple[tuple[str, str], ...] = ()


def _codings(value: Any) -> Iterable[Mapping[str, Any]]:
    if isinstance(value, Mapping):
        yield value
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, Mapping):
                yield item


def _reference(ref: Any) -> str | None:
    """``Type/id`` of a literal reference (relative or absolute, version dropped)."""
    if not isinstance(ref, Mapping) or not isinstance(ref.get("reference"), str):
        return None
    parts = ref["reference"].split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) < 2 or not parts[-2][:1].isupper():
        return None
    return f"{parts[-2]}/{parts[-1]}"


def _period(value: Any) -> tuple[float, float] | None:
    if not isinstance(value, Mapping):
        return None
    start, end = value.get("start"), value.get("end")
    try:
        low = date_range(start)[0] if isinstance(start, str) else OPEN_START
        high = date_range(end)[1] if isinstance(end, str) else OPEN_END
    except ValueError:
        return None
    return low, high


def _instant(value: Any) -> tuple[float, float] | None:
    if not isinstance(value, str):
        return None
    try:
        return date_range(value)
    except ValueError:
        return None


def index_rows(resource: Mapping[str, Any]) -> IndexRows:
    """What the store indexes for ``resource`` (read from its JSON, no validation)."""
    rows = IndexRows()
    for ident in _codings(resource.get("identifier")):
        if isinstance(ident.get("value"), str):
            rows.tokens.append(("identifier", ident.get("system"), ident["value"]))
    extract = _EXTRACTORS.get(str(resource.get("resourceType")))
    if extract is not None:
        extract(resource, rows)
    return rows


def _subject(resource: Mapping[str, Any], rows: IndexRows) -> None:
    target = _reference(resource.get("subject"))
    if target is not None:
        rows.references.append(("subject", target))
        if target.startswith("Patient/"):
            rows.references.append(("patient", target))


def _encounter(resource: Mapping[str, Any], rows: IndexRows) -> None:
    _subject(resource, rows)
    if (period := _period(resource.get("period"))) is not None:
        rows.dates.append(("date", *period))
    locations = resource.get("location")
    for entry in locations if isinstance(locations, list) else []:
        target = _reference(entry.get("location")) if isinstance(entry, Mapping) else None
        if target is not None:
            rows.references.append(("location", target))


def _observation(resource: Mapping[str, Any], rows: IndexRows) -> None:
    _subject(resource, rows)
    if (target := _reference(resource.get("encounter"))) is not None:
        rows.references.append(("encounter", target))
    when = (
        _instant(resource.get("effectiveDateTime"))
        or _instant(resource.get("effectiveInstant"))
        or _period(resource.get("effectivePeriod"))
    )
    if when is not None:
        rows.dates.append(("date", *when))
    code = resource.get("code")
    if isinstance(code, Mapping):
        for coding in _codings(code.get("coding")):
            if isinstance(coding.get("code"), str):
                rows.tokens.append(("code", coding.get("system"), coding["code"]))


def _provenance(resource: Mapping[str, Any], rows: IndexRows) -> None:
    targets = resource.get("target")
    for ref in targets if isinstance(targets, list) else []:
        if (target := _reference(ref)) is not None:
            rows.references.append(("target", target))


_EXTRACTORS: dict[str, Callable[[Mapping[str, Any], IndexRows], None]] = {
    "Encounter": _encounter,
    "Observation": _observation,
    "Provenance": _provenance,
}


def _split_values(text: str) -> list[str]:
    """Comma-separated alternatives, still escaped (``\\,`` is a literal comma)."""
    return [part for part in split_escaped(text, ",") if part]


def _token(value: str) -> tuple[str | None, str | None]:
    parts = split_escaped(value, "|", limit=1)
    if len(parts) == 1:
        return None, unescape(value)
    system, code = (unescape(part) for part in parts)
    return system, code or None


def _date(param: str, value: str) -> tuple[DatePrefix, float, float]:
    prefix: DatePrefix = "eq"
    if value[:2] in ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb"):
        prefix, value = value[:2], value[2:]  # type: ignore[assignment]
    try:
        start, end = date_range(value)
    except ValueError as exc:
        raise SearchError(f"{param}: {exc}", parameter=param) from exc
    return prefix, start, end


def _int(name: str, value: str, low: int, high: int) -> int:
    if not value.isdigit():
        raise SearchError(f"{name} must be a whole number, got {value!r}", parameter=name)
    return max(low, min(high, int(value)))


def parse_search(type_: str, params: Sequence[tuple[str, str]]) -> SearchQuery:
    """Parse the query parameters of ``GET [base]/{type}?...``.

    Repeated parameters are ANDed, comma-separated values ORed. Unknown
    parameters and modifiers are refused (a typo must not widen a search).
    """
    known = {p.name: p for p in SEARCH_PARAMS.get(type_, ())}
    conditions: list[Condition] = []
    ids: set[str] | None = None
    count, offset = DEFAULT_COUNT, 0
    echo: list[tuple[str, str]] = []
    for name, value in params:
        if name in _IGNORED:
            continue
        echo.append((name, value))
        if name == "_count":
            count = _int(name, value, 0, MAX_COUNT)
            continue
        if name == "_offset":
            offset = _int(name, value, 0, 1_000_000_000)
            continue
        spec = known.get(name)
        if spec is None:
            raise SearchError(
                f"unknown search parameter {name!r} for {type_}; supported: "
                + ", ".join(sorted([*known, "_count", "_offset"])),
                parameter=name,
            )
        values = _split_values(value)
        if not values:
            raise SearchError(f"{name}: empty value", parameter=name)
        if name == "_id":
            given = {unescape(v) for v in values}
            ids = given if ids is None else ids & given
        elif spec.kind == "token":
            conditions.append(TokenCondition(name, tuple(_token(v) for v in values)))
        elif spec.kind == "reference":
            targets = tuple(_target(spec, unescape(v)) for v in values)
            conditions.append(ReferenceCondition(name, targets))
        else:
            conditions.append(DateCondition(name, tuple(_date(name, unescape(v)) for v in values)))
    return SearchQuery(
        type=type_,
        conditions=tuple(conditions),
        ids=None if ids is None else tuple(sorted(ids)),
        count=count,
        offset=offset,
        echo=tuple(echo),
    )


def _target(spec: SearchParam, value: str) -> str:
    ref = _reference({"reference": value})
    if ref is not None:
        return ref
    return f"{spec.target}/{value}" if spec.target else value


def parse_conditional(type_: str, query: str) -> SearchQuery:
    """The search of an ``If-None-Exist`` header or ``request.ifNoneExist``
    (``identifier=system|value``, a query string without ``?``)."""
    from urllib.parse import parse_qsl

    text = query.split("?", 1)[1] if "?" in query else query
    pairs = parse_qsl(text, keep_blank_values=True)
    if not pairs:
        raise SearchError(f"empty conditional search {query!r}")
    return parse_search(type_, pairs)


__all__ = [
    "DEFAULT_COUNT",
    "MAX_COUNT",
    "SEARCH_PARAMS",
    "STORED_TYPES",
    "Condition",
    "DateCondition",
    "IndexRows",
    "ReferenceCondition",
    "SearchError",
    "SearchParam",
    "SearchQuery",
    "TokenCondition",
    "date_range",
    "index_rows",
    "parse_conditional",
    "parse_search",
]
