"""The contracts every part of Wardstream speaks: envelopes on the bus, and the
Source / Sink / Processor / Bus protocols.

Pipelines depend on this module only; they never import a bus driver.
"""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

ENVELOPE_SCHEMA_VERSION: Literal[1] = 1

_ids = random.Random(uuid.uuid4().int)
os.register_at_fork(after_in_child=lambda: _ids.seed(uuid.uuid4().int))


def new_id() -> str:
    """A random 128-bit id as 32 hex digits, like ``uuid4().hex``, from a generator
    seeded by the OS once per process (and again in a forked child): ``uuid4``
    reads the OS entropy source on every call, a system call that hands the GIL
    to another thread in the middle of every message on the hot path."""
    return f"{_ids.getrandbits(128):032x}"


Headers = Sequence[tuple[str, bytes]]


class Stage(BaseModel):
    """One step an envelope passed through, in order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    step_id: str = Field(description="Stable id of the step (used in logs, metrics, DLQ records).")
    at: AwareDatetime = Field(description="When the step handled the envelope.")
    status: Literal["ok", "error", "skipped"] = Field(
        default="ok", description="Outcome of the step."
    )
    detail: str | None = Field(default=None, description="Short reason, for errors and skips.")


class Envelope(BaseModel):
    """The one record shape on every topic.

    ``payload`` holds the message itself: the raw HL7v2 text, a FHIR JSON
    document, or a canonical event serialised as JSON.
    """

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = Field(
        default=ENVELOPE_SCHEMA_VERSION, description="Version of this envelope schema."
    )
    id: str = Field(default_factory=new_id, description="Unique id of this envelope.")
    correlation_id: str = Field(
        description=(
            "Id tying derived records to their source: MSH-10 for HL7v2, resource id for FHIR."
        )
    )
    channel: str = Field(description="Name of the channel that received the source message.")
    received_at: AwareDatetime = Field(description="When the source message was received.")
    content_type: str = Field(
        description="Media type of the payload, e.g. x-application/hl7-v2+er7 or application/json."
    )
    payload: str = Field(description="The message body.")
    headers: dict[str, str] = Field(
        default_factory=dict, description="Free-form metadata (sender, peer address, ...)."
    )
    trail: list[Stage] = Field(
        default_factory=list, description="Stages this envelope passed, oldest first."
    )

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Envelope:
        return cls.model_validate_json(data)

    def derive(
        self,
        *,
        step_id: str,
        at: datetime,
        content_type: str,
        payload: str,
        status: Literal["ok", "error", "skipped"] = "ok",
        detail: str | None = None,
    ) -> Envelope:
        """A new envelope produced from this one by ``step_id``, keeping the correlation."""
        return Envelope(
            correlation_id=self.correlation_id,
            channel=self.channel,
            received_at=self.received_at,
            content_type=content_type,
            payload=payload,
            headers=dict(self.headers),
            trail=[*self.trail, Stage(step_id=step_id, at=at, status=status, detail=detail)],
        )


@dataclass(frozen=True, slots=True)
class TopicPartition:
    topic: str
    partition: int


@dataclass(frozen=True, slots=True)
class Record:
    """One record read from a topic."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp_ms: int = 0


@dataclass(frozen=True, slots=True)
class AppendResult:
    """Where an appended record landed. ``duplicate`` is true when the append
    carried a dedup id already stored, and nothing new was written; partition and
    offset then point at the stored original when the driver knows it (-1 if not)."""

    topic: str
    partition: int
    offset: int
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic and its settings. Retention of ``None`` keeps records forever."""

    name: str
    partitions: int = 1
    retention_ms: int | None = None
    retention_bytes: int | None = None
    extra: Mapping[str, str] = field(default_factory=dict)


@runtime_checkable
class Consumer(Protocol):
    """A member of a consumer group reading some topics.

    Offsets are committed explicitly, after processing: ``commit()`` with no
    argument commits the position after the last record returned by ``poll``.
    """

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def poll(self, max_records: int = 500, timeout: float = 1.0) -> list[Record]: ...

    async def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None: ...

    def assignment(self) -> frozenset[TopicPartition]: ...

    async def seek_to_beginning(self) -> None: ...


@runtime_checkable
class Bus(Protocol):
    """A durable, partitioned log of topics: the embedded SQLite log or Kafka."""

    url: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def create_topics(self, specs: Sequence[TopicSpec]) -> None:
        """Create missing topics; existing ones are left as they are."""
        ...

    async def partitions_for(self, topic: str) -> int: ...

    async def append(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None = None,
        headers: Headers = (),
        partition: int | None = None,
        dedup_id: str | None = None,
    ) -> AppendResult:
        """Append one record and return once it is durable.

        The partition is ``partition`` if given, else Kafka's default
        partitioner over ``key`` (murmur2), else round-robin. ``dedup_id``
        makes the append idempotent: a second append with the same id writes
        nothing and reports ``duplicate=True``.
        """
        ...

    def consumer(
        self,
        group: str,
        topics: Sequence[str],
        *,
        from_beginning: bool = True,
    ) -> Consumer: ...

    async def end_offsets(self, topic: str) -> dict[int, int]:
        """The offset the next record will get, per partition of ``topic``."""
        ...

    async def read(
        self, topic: str, partition: int, offset: int, max_records: int = 500
    ) -> list[Record]:
        """Up to ``max_records`` records of one partition from ``offset`` on,
        outside any consumer group (for tests, replay and operations). Records
        deleted by retention are skipped; empty when nothing is there."""
        ...

    async def committed(self, group: str) -> dict[TopicPartition, int]:
        """The committed next offsets of ``group``, per partition it has committed."""
        ...


AppendCallback = Callable[[AppendResult | None, BaseException | None], None]
"""Called on the event loop once an append is durable: (result, None) or (None, error)."""


@runtime_checkable
class CallbackAppender(Protocol):
    """A bus that can also take an append with a completion callback instead of
    returning an awaitable (the embedded log does): no task or future per record
    on the hot path. ``append_nowait`` raises at once only when the append cannot
    even be queued (the bus is closed); every other outcome goes to ``callback``,
    after the record is durable."""

    def append_nowait(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None = None,
        headers: Headers = (),
        partition: int | None = None,
        dedup_id: str | None = None,
        callback: AppendCallback,
    ) -> None: ...


class Source(Protocol):
    """Produces envelopes into the runtime. The ``ack`` callback given with each
    envelope is awaited by the runtime only after the durable append."""

    name: str

    async def start(self, emit: Callable[[Envelope], Awaitable[AppendResult]]) -> None: ...

    async def stop(self) -> None: ...


class Sink(Protocol):
    """Consumes envelopes out of the runtime (a FHIR server, a file, a store)."""

    name: str

    async def write(self, batch: Sequence[Envelope]) -> None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Emit:
    """One output of a processor: an envelope to append to ``topic`` under ``key``."""

    topic: str
    envelope: Envelope
    key: str | None = None


class Processor(Protocol):
    """A pipeline step: pure, typed, with explicit keyed state passed in.

    It turns one envelope into zero or more outputs. Failures are data: a
    processor returns an ``Emit`` to the ``dlq`` topic rather than raising.
    """

    step_id: str

    def process(self, envelope: Envelope, state: KeyedState) -> Sequence[Emit]: ...


class KeyedState(Protocol):
    """Keyed state owned by one step (e.g. beds per ward), durable across restarts."""

    def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, value: bytes) -> None: ...

    def delete(self, key: str) -> None: ...

    def items(self) -> Iterator[tuple[str, bytes]]: ...
