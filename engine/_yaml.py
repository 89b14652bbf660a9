"""YAML documents validated as pydantic models, with errors that name a line.

The document is composed once into PyYAML's node tree (SafeLoader) and the
Python data is constructed from that same tree; error locations from pydantic
(``loc`` tuples) are then walked down the tree to the node they point at.
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

Loc = tuple[str | int, ...]
ModelT = TypeVar("ModelT", bound=BaseModel)

# Validator protocol for positions of cross-field problems: a validator names
# the offending field in its error context under AT (a loc relative to the
# model it validates), or appends (absolute loc, message) pairs to the list
# ``validate_document`` passes in the validation context under CONFLICTS.
AT = "at"
CONFLICTS = "conflicts"

# Discriminated unions in the config are tagged by this key; pydantic puts the
# tag value into error locations (``source.mllp.port``), the YAML does not.
UNION_TAG_KEY = "type"


@dataclass(frozen=True, slots=True)
class Position:
    """A 1-based line and column in a YAML document."""

    line: int
    column: int


DOCUMENT_START = Position(1, 1)


class YamlSyntaxError(Exception):
    """The text is not well-formed YAML."""

    def __init__(self, position: Position, message: str) -> None:
        super().__init__(message)
        self.position = position
        self.message = message


def position_of(node: Node) -> Position:
    """Where ``node`` starts."""
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


def parse(text: str) -> tuple[Node | None, Any]:
    """Compose ``text`` into a node tree and construct its data from the same tree.

    Returns ``(None, None)`` for an empty document. Raises ``YamlSyntaxError``.
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Position(mark.line + 1, mark.column + 1) if mark is not None else DOCUMENT_START
        message = f"YAML syntax error: {exc.problem or exc}"
        if exc.context and exc.context_mark is not None and exc.context_mark is not mark:
            message += f" ({exc.context} on line {exc.context_mark.line + 1})"
        raise YamlSyntaxError(where, message) from exc
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(DOCUMENT_START, f"YAML error: {exc}") from exc
    finally:
        loader.dispose()
    return node, data


def _scalar_key(node: Node) -> str | None:
    return node.value if isinstance(node, ScalarNode) else None


def _lookup(mapping: MappingNode, key: str | int) -> tuple[Node, Node] | None:
    """The (key node, value node) pair for ``key``, following ``<<`` merges.

    The last occurrence wins, as it does when PyYAML constructs the mapping.
    """
    wanted = str(key)
    found: tuple[Node, Node] | None = None
    merged: list[Node] = []
    for key_node, value_node in mapping.value:
        name = _scalar_key(key_node)
        if name == wanted:
            found = (key_node, value_node)
        elif name == "<<" and key_node.tag == "tag:yaml.org,2002:merge":
            merged.extend(
                value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            )
    if found is not None:
        return found
    for source in merged:
        if isinstance(source, MappingNode) and (hit := _lookup(source, key)) is not None:
            return hit
    return None


def _is_union_tag(mapping: MappingNode, part: str) -> bool:
    hit = _lookup(mapping, UNION_TAG_KEY)
    return hit is not None and _scalar_key(hit[1]) == part


@dataclass(frozen=True, slots=True)
class Located:
    """Where an error location points in the document, and its path as written."""

    position: Position
    path: Loc


def locate(root: Node | None, loc: Sequence[str | int], *, at_key: bool = False) -> Located:
    """Walk ``loc`` down the node tree.

    The position is the value node ``loc`` names, or the key node when
    ``at_key`` (unknown keys are reported on their own line). When the path
    leaves the document (a missing key), the deepest enclosing node is used.
    Union tags in ``loc`` are dropped from the returned path.
    """
    node: Node | None = root
    key_node: Node | None = None
    path: list[str | int] = []
    walked = 0
    for part in loc:
        if isinstance(node, MappingNode):
            hit = _lookup(node, part)
            if hit is None:
                if isinstance(part, str) and _is_union_tag(node, part):
                    walked += 1
                    continue
                break
            key_node, node = hit
        elif isinstance(node, SequenceNode) and isinstance(part, int):
            if not 0 <= part < len(node.value):
                break
            key_node, node = None, node.value[part]
        else:
            break
        path.append(part)
        walked += 1
    complete = walked == len(loc)
    path.extend(loc[walked:])
    if node is None:
        return Located(DOCUMENT_START, tuple(path))
    target = key_node if (complete and at_key and key_node is not None) else node
    return Located(position_of(target), tuple(path))


def duplicate_keys(root: Node | None) -> list[tuple[Position, Loc, str]]:
    """Keys given twice in one mapping: PyYAML silently keeps the last one."""
    found: list[tuple[Position, Loc, str]] = []
    stack: list[tuple[Node, Loc]] = [(root, ())] if root is not None else []
    seen: set[int] = set()  # aliases share nodes, and may even form cycles
    while stack:
        node, path = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, MappingNode):
            first_seen: dict[str, Node] = {}
            for key_node, value_node in node.value:
                name = _scalar_key(key_node)
                if name is None or name == "<<":
                    continue
                if name in first_seen:
                    line = position_of(first_seen[name]).line
                    message = f"duplicate key {name!r} (first given on line {line})"
                    found.append((position_of(key_node), (*path, name), message))
                else:
                    first_seen[name] = key_node
                stack.append((value_node, (*path, name)))
        elif isinstance(node, SequenceNode):
            stack.extend((item, (*path, i)) for i, item in enumerate(node.value))
    return sorted(found, key=lambda item: (item[0].line, item[0].column))


def format_path(path: Sequence[str | int]) -> str:
    """``("channels", 0, "source", "port")`` as ``channels[0].source.port``."""
    out: list[str] = []
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
        else:
            out.append(f".{part}" if out else part)
    return "".join(out)


@dataclass(frozen=True, slots=True)
class LintIssue:
    """One problem in a config file; ``line`` 0 means not from a file line."""

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


def issue_at(
    root: Node | None,
    source: str,
    env_paths: Mapping[Loc, str],
    loc: Loc,
    message: str,
    *,
    at_key: bool = False,
) -> LintIssue:
    """An issue at ``loc``: its file position, or the environment variable
    (a key of ``env_paths``' values) that set the value there."""
    located = locate(root, loc, at_key=at_key)
    dotted = format_path(located.path)
    env_name = next((n for p, n in env_paths.items() if located.path[: len(p)] == p), None)
    if env_name is not None:
        return LintIssue(f"{env_name} (environment)", 0, 0, dotted, message)
    where = located.position
    return LintIssue(source, where.line, where.column, dotted, message)


def unknown_key_message(model: type[BaseModel], loc: Loc) -> str:
    """'unknown setting' for the last key of ``loc``, with a close match if any."""
    key = str(loc[-1])
    known = sorted(_field_names_at(model, loc[:-1]))
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown setting {key!r}{hint}"


def _field_names_at(model: type[BaseModel], loc: Loc) -> set[str]:
    models = [model]
    for part in loc:
        if isinstance(part, int):
            continue
        nested = [
            sub
            for m in models
            if part in m.model_fields
            for sub in _models_in(m.model_fields[part].annotation)
        ]
        models = nested or models  # not a field name: a union tag, stay put
    return {name for m in models for name in m.model_fields}


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


class _IndentedDumper(yaml.SafeDumper):
    """Indents list items under their key, as hand-written configs do."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def dump(data: Any) -> str:
    """``data`` as block-style YAML, keys in insertion order."""
    return yaml.dump(
        data, Dumper=_IndentedDumper, sort_keys=False, default_flow_style=False, allow_unicode=True
    )


def validate_document(
    model: type[ModelT],
    text: str,
    source: str,
    *,
    context: dict[str, Any],
    overrides: Mapping[Loc, tuple[str, Any]],
) -> tuple[ModelT | None, list[LintIssue]]:
    """Validate YAML ``text`` as ``model``: the instance (``None`` if there are
    issues) and every issue, in document order.

    ``overrides`` set values over the document (loc -> (origin, value)); issues
    about them name the origin (an environment variable) instead of a line.
    """
    try:
        root, data = parse(text)
    except YamlSyntaxError as exc:
        return None, [LintIssue(source, exc.position.line, exc.position.column, "", exc.message)]
    if data is None:
        data = {}
    if not isinstance(data, dict):
        where = position_of(root) if root is not None else DOCUMENT_START
        message = f"the top level must be a mapping of settings, not a {type(data).__name__}"
        return None, [LintIssue(source, where.line, where.column, "", message)]
    issues = [
        LintIssue(source, where.line, where.column, format_path(path), message)
        for where, path, message in duplicate_keys(root)
    ]
    origins = _set_overrides(data, overrides)
    conflicts: list[tuple[Loc, str]] = []
    instance: ModelT | None = None
    try:
        instance = model.model_validate(data, context={**context, CONFLICTS: conflicts})
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            loc = tuple(error["loc"]) + tuple((error.get("ctx") or {}).get(AT, ()))
            if error["type"] == "extra_forbidden":
                message = unknown_key_message(model, loc)
                issues.append(issue_at(root, source, origins, loc, message, at_key=True))
            else:
                issues.append(issue_at(root, source, origins, loc, error["msg"]))
    issues.extend(issue_at(root, source, origins, loc, message) for loc, message in conflicts)
    issues.sort(key=lambda issue: (issue.line == 0, issue.line, issue.column))
    return (instance if not issues else None), issues


def _set_overrides(
    data: dict[Any, Any], overrides: Mapping[Loc, tuple[str, Any]]
) -> dict[Loc, str]:
    applied: dict[Loc, str] = {}
    for path, (origin, value) in overrides.items():
        target = data
        for part in path[:-1]:
            child = target.setdefault(part, {})
            if not isinstance(child, dict):
                break  # the document's own value is wrong; validation reports it
            target = child
        else:
            target[path[-1]] = value
            applied[path] = origin
    return applied
