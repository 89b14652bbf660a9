"""The engine's FHIR result store: current resources by (type, id) on SQLite.

One SQLite file (WAL) holds each resource's current version as JSON with its
``versionId`` and ``lastUpdated``, plus search index tables (tokens,
references, date ranges) rewritten with every new version. Writing the same
content again makes no new version, so replaying ``fhir.out`` changes nothing.

Writes come in groups: every operation of a group commits or none does (a
transaction Bundle is one group; a batch Bundle one group per entry). Inside a
group, ``urn:uuid:`` full URLs are resolved to the ids the store assigned.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from engine._sqlite import SqliteWorker
from engine.fhir._sql import PendingWrites, search_sql
from engine.fhir.search import SearchQuery, index_rows

_SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    type TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,
    last_updated TEXT NOT NULL, hash TEXT NOT NULL, content TEXT NOT NULL,
    PRIMARY KEY (type, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idx_token (
    type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL,
    system TEXT NOT NULL, value TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_token_value ON idx_token (type, param, value);
CREATE INDEX IF NOT EXISTS idx_token_owner ON idx_token (type, id);
CREATE TABLE IF NOT EXISTS idx_ref (
    type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL, target TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_ref_target ON idx_ref (type, param, target);
CREATE INDEX IF NOT EXISTS idx_ref_owner ON idx_ref (type, id);
CREATE TABLE IF NOT EXISTS idx_date (
    type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL,
    start REAL NOT NULL, "end" REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_date_start ON idx_date (type, param, start);
CREATE INDEX IF NOT EXISTS idx_date_owner ON idx_date (type, id);
"""

# Built once: json.dumps with options makes a new encoder on every call.
_HASH_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_CONTENT_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)

ID_PATTERN = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
WriteStatus = Literal["created", "updated", "unchanged", "matched"]


class FhirStoreError(ValueError):
    """A write the store refuses: ``status`` is the HTTP status, ``code`` the
    OperationOutcome issue code, ``expression`` FHIRPath locations."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        code: str = "invalid",
        expression: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.expression = list(expression)


@dataclass(frozen=True, slots=True)
class StoredResource:
    """One resource version as stored (``resource`` carries its meta)."""

    type: str
    id: str
    version: int
    last_updated: str
    resource: dict[str, Any]

    @property
    def etag(self) -> str:
        return f'W/"{self.version}"'

    @property
    def location(self) -> str:
        return f"{self.type}/{self.id}/_history/{self.version}"


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What one write did: ``created`` (201), else 200."""

    status: WriteStatus
    stored: StoredResource

    @property
    def http_status(self) -> int:
        return 201 if self.status == "created" else 200


@dataclass(frozen=True, slots=True)
class Write:
    """One write: an upsert at ``id``, or a create (``id`` None) with the
    server's id, unless ``if_none_exist`` finds exactly one match."""

    resource: dict[str, Any]
    id: str | None = None
    if_none_exist: SearchQuery | None = None
    full_url: str | None = None
    expression: str = field(default="")  # where the resource sits, for errors


def instant(moment: datetime) -> str:
    """A FHIR ``instant`` in UTC with milliseconds."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def content_hash(resource: dict[str, Any]) -> str:
    """Hash of the content, ignoring ``meta.versionId`` and ``meta.lastUpdated``."""
    body = dict(resource)
    meta = body.get("meta")
    if isinstance(meta, dict):
        meta = {k: v for k, v in meta.items() if k not in ("versionId", "lastUpdated")}
        if meta:
            body["meta"] = meta
        else:
            body.pop("meta")
    return hashlib.sha256(_HASH_JSON.encode(body).encode()).hexdigest()


def _rewrite_references(value: Any, mapping: dict[str, str]) -> Any:
    if isinstance(value, dict):
        out = {k: _rewrite_references(v, mapping) for k, v in value.items()}
        ref = out.get("reference")
        if isinstance(ref, str) and ref in mapping:
            out["reference"] = mapping[ref]
        return out
    if isinstance(value, list):
        return [_rewrite_references(v, mapping) for v in value]
    return value


class FhirStore:
    """SQLite file of current FHIR resources with search indexes."""

    def __init__(
        self,
        path: Path,
        *,
        clock: Callable[[], datetime],
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self.path = path
        self._clock = clock
        self._new_id = new_id
        self._sqlite = SqliteWorker(path, _SCHEMA, thread_name="fhir-store")

    async def read(self, type_: str, id_: str) -> StoredResource | None:
        """The current version of ``type_/id_``, or None."""
        return await self._sqlite.run(lambda db: _read(db, type_, id_))

    async def search(self, query: SearchQuery) -> tuple[int, list[StoredResource]]:
        """(total matches, the page ``query.offset``..+``query.count``), ordered by id."""

        def run(db: sqlite3.Connection) -> tuple[int, list[StoredResource]]:
            clause, args = search_sql(query)
            total = db.execute(f"SELECT count(*) FROM resources r WHERE {clause}", args)
            count = int(total.fetchone()[0])
            if query.count == 0:
                return count, []
            rows = db.execute(
                f"SELECT type, id, version, last_updated, content FROM resources r WHERE {clause}"
                " ORDER BY r.id LIMIT ? OFFSET ?",
                [*args, query.count, query.offset],
            )
            return count, [_stored(row) for row in rows]

        return await self._sqlite.run(run)

    async def versions_after(self, writes: Sequence[Write]) -> list[int]:
        """The version each update (``id`` set) would leave: the current one
        when the content is unchanged, else the next."""

        def run(db: sqlite3.Connection) -> list[int]:
            out = []
            for write in writes:
                type_ = str(write.resource.get("resourceType", ""))
                row = db.execute(
                    "SELECT version, hash FROM resources WHERE type = ? AND id = ?",
                    (type_, write.id),
                ).fetchone()
                if row is None:
                    out.append(1)
                else:
                    same = row[1] == content_hash({**write.resource, "id": write.id})
                    out.append(int(row[0]) if same else int(row[0]) + 1)
            return out

        return await self._sqlite.run(run)

    async def write(self, writes: Sequence[Write]) -> list[WriteResult]:
        """Apply ``writes`` as one all-or-nothing group; raises FhirStoreError."""
        result = (await self.write_groups([writes]))[0]
        if isinstance(result, FhirStoreError):
            raise result
        return result

    async def write_groups(
        self, groups: Sequence[Sequence[Write]]
    ) -> list[list[WriteResult] | FhirStoreError]:
        """Apply each group all-or-nothing, in one SQLite transaction for all:
        a group that fails leaves nothing and is reported in its slot."""

        def run(db: sqlite3.Connection) -> list[list[WriteResult] | FhirStoreError]:
            now = instant(self._clock())
            out: list[list[WriteResult] | FhirStoreError] = []
            pending = PendingWrites()
            db.execute("BEGIN IMMEDIATE")
            try:
                pending.prefetch(db, _update_keys(groups))
                for group in groups:
                    if any(write.if_none_exist is not None for write in group):
                        pending.flush(db)  # the search must see the writes before it
                    # A group writes into its own child: dropped if it fails.
                    child = PendingWrites(pending)
                    try:
                        out.append(self._apply(db, child, group, now))
                    except FhirStoreError as exc:
                        out.append(exc)
                        continue
                    pending.merge(child)
                pending.flush(db)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return out

        return await self._sqlite.run(run)

    def _apply(
        self,
        db: sqlite3.Connection,
        pending: PendingWrites,
        group: Sequence[Write],
        now: str,
    ) -> list[WriteResult]:
        # Ids first, so references between the group's resources can be resolved.
        targets: list[tuple[str, StoredResource | None]] = []
        mapping: dict[str, str] = {}
        for write in group:
            type_ = str(write.resource.get("resourceType", ""))
            matched = _match(db, write) if write.if_none_exist is not None else None
            id_ = matched.id if matched is not None else (write.id or self._new_id())
            if not ID_PATTERN.match(id_):
                raise FhirStoreError(
                    f"invalid resource id {id_!r}", expression=[f"{write.expression or type_}.id"]
                )
            targets.append((id_, matched))
            if write.full_url and write.full_url.startswith("urn:"):
                mapping[write.full_url] = f"{type_}/{id_}"
        results = []
        for write, (id_, matched) in zip(group, targets, strict=True):
            if matched is not None:
                results.append(WriteResult("matched", matched))
                continue
            resource = _rewrite_references(write.resource, mapping) if mapping else write.resource
            results.append(_upsert(db, pending, {**resource, "id": id_}, now))
        return results

    async def close(self) -> None:
        """Close the file; the store is not used again."""
        await self._sqlite.close()


def _stored(row: tuple[Any, ...]) -> StoredResource:
    type_, id_, version, last_updated, content = row
    return StoredResource(type_, id_, int(version), last_updated, json.loads(content))


def _read(db: sqlite3.Connection, type_: str, id_: str) -> StoredResource | None:
    row = db.execute(
        "SELECT type, id, version, last_updated, content FROM resources WHERE type = ? AND id = ?",
        (type_, id_),
    ).fetchone()
    return None if row is None else _stored(row)


def _match(db: sqlite3.Connection, write: Write) -> StoredResource | None:
    assert write.if_none_exist is not None
    query = write.if_none_exist
    clause, args = search_sql(query)
    rows = db.execute(
        f"SELECT type, id, version, last_updated, content FROM resources r WHERE {clause}"
        " ORDER BY r.id LIMIT 2",
        args,
    ).fetchall()
    if len(rows) > 1:
        criteria = "&".join(f"{k}={v}" for k, v in query.echo)
        raise FhirStoreError(
            f"conditional create: more than one {query.type} matches {criteria!r}",
            status=412,
            code="duplicate",
            expression=[write.expression or query.type],
        )
    return _stored(rows[0]) if rows else None


def _update_keys(groups: Sequence[Sequence[Write]]) -> list[tuple[str, str]]:
    """(type, id) of every write at a known id: the rows to read up front."""
    return [
        (str(write.resource.get("resourceType", "")), write.id)
        for group in groups
        for write in group
        if write.id is not None and write.if_none_exist is None
    ]


def _upsert(
    db: sqlite3.Connection, pending: PendingWrites, resource: dict[str, Any], now: str
) -> WriteResult:
    type_, id_ = str(resource["resourceType"]), str(resource["id"])
    digest = content_hash(resource)
    current = pending.lookup(db, (type_, id_))
    if current is not None and current[4] == digest:
        _, _, version, last_updated, _, content = current
        stored = StoredResource(type_, id_, int(version), last_updated, json.loads(content))
        return WriteResult("unchanged", stored)
    version = 1 if current is None else int(current[2]) + 1
    meta = dict(resource.get("meta") or {})
    meta.update(versionId=str(version), lastUpdated=now)
    body = {**resource, "meta": meta}
    content = _CONTENT_JSON.encode(body)
    pending.put(
        (type_, id_, version, now, digest, content), index_rows(body), replaces=current is not None
    )
    stored = StoredResource(type_, id_, version, now, body)
    return WriteResult("created" if current is None else "updated", stored)


__all__ = [
    "ID_PATTERN",
    "FhirStore",
    "FhirStoreError",
    "StoredResource",
    "Write",
    "WriteResult",
    "WriteStatus",
    "content_hash",
    "instant",
]
