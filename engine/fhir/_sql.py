"""SQL of searches over the result store's index tables (``resources r``,
``idx_token``, ``idx_ref``, ``idx_date`` as ``d``). Values are always bound."""

from __future__ import annotations

from typing import Any

from engine.fhir.search import Condition, ReferenceCondition, SearchQuery, TokenCondition

# Date prefixes over [start, end) ranges: the resource's (d) against the parameter's.
_DATE_SQL = {
    "eq": ('d.start >= ? AND d."end" <= ?', (0, 1)),
    "ne": ('NOT (d.start >= ? AND d."end" <= ?)', (0, 1)),
    "gt": ('d."end" > ?', (1,)),
    "lt": ("d.start < ?", (0,)),
    "ge": ('d."end" > ?', (0,)),
    "le": ("d.start < ?", (1,)),
    "sa": ("d.start >= ?", (1,)),
    "eb": ('d."end" <= ?', (0,)),
}


def _condition(cond: Condition) -> tuple[str, list[str], list[Any]]:
    """The index table of ``cond`` and its ORed alternatives as SQL over ``d``."""
    alts: list[str] = []
    args: list[Any] = []
    if isinstance(cond, TokenCondition):
        for system, value in cond.alternatives:
            parts = []
            if system is not None:
                parts.append("d.system = ?")
                args.append(system)
            if value is not None:
                parts.append("d.value = ?")
                args.append(value)
            alts.append("(" + (" AND ".join(parts) or "1") + ")")
        return "idx_token", alts, args
    if isinstance(cond, ReferenceCondition):
        for target in cond.alternatives:
            # A bare id matches a reference to that id of any type.
            if "/" in target:
                alts.append("d.target = ?")
            else:
                alts.append("substr(d.target, instr(d.target, '/') + 1) = ?")
            args.append(target)
        return "idx_ref", alts, args
    for prefix, start, end in cond.alternatives:
        sql, picks = _DATE_SQL[prefix]
        alts.append(f"({sql})")
        args.extend((start, end)[k] for k in picks)
    return "idx_date", alts, args


def search_sql(query: SearchQuery) -> tuple[str, list[Any]]:
    """SQL over ``resources r`` selecting what ``query`` matches."""
    clauses, args = ["r.type = ?"], [query.type]
    if query.ids is not None:
        clauses.append(f"r.id IN ({','.join('?' * len(query.ids))})" if query.ids else "0")
        args.extend(query.ids)
    for cond in query.conditions:
        table, alts, alt_args = _condition(cond)
        clauses.append(
            f"EXISTS (SELECT 1 FROM {table} d WHERE d.type = r.type AND d.id = r.id"
            f" AND d.param = ? AND ({' OR '.join(alts)}))"
        )
        args.extend([cond.param, *alt_args])
    return " AND ".join(clauses), args


__all__ = ["search_sql"]
