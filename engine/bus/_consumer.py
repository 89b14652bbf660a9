"""Consumer groups of the embedded log.

Members of one group on one ``EmbeddedLog`` object split the partitions of
their topics round-robin, like Kafka's ``RoundRobinAssignor``; a join or a
leave bumps the group's generation and every member picks up its new share on
its next ``poll``. Partitions a member newly receives start at the group's
committed offset. Coordination is in-process: two ``EmbeddedLog`` objects (or
processes) on the same file share committed offsets but not assignments.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from engine.bus import _store
from engine.bus._errors import BusClosedError
from engine.types import Record, TopicPartition

if TYPE_CHECKING:
    from engine.bus.embedded import EmbeddedLog


class GroupMembers:
    """The live members of one consumer group, in join order."""

    def __init__(self) -> None:
        self.members: list[EmbeddedConsumer] = []
        self.generation = 0

    def join(self, member: EmbeddedConsumer) -> None:
        self.members.append(member)
        self.generation += 1

    def leave(self, member: EmbeddedConsumer) -> None:
        if member in self.members:
            self.members.remove(member)
            self.generation += 1

    def share_of(
        self, member: EmbeddedConsumer, partition_counts: Mapping[str, int]
    ) -> frozenset[TopicPartition]:
        """Round-robin over the sorted partitions of every subscribed topic,
        each going to the next member (cyclically) subscribed to its topic."""
        members = self.members
        if member not in members:
            return frozenset()
        topics = sorted({t for m in members for t in m.topics if t in partition_counts})
        mine: set[TopicPartition] = set()
        turn = 0
        for topic in topics:
            for partition in range(partition_counts[topic]):
                owner = None
                for _ in range(len(members)):
                    candidate = members[turn % len(members)]
                    turn += 1
                    if topic in candidate.topics:
                        owner = candidate
                        break
                if owner is member:
                    mine.add(TopicPartition(topic, partition))
        return frozenset(mine)


class EmbeddedConsumer:
    """A member of consumer group ``group`` of an ``EmbeddedLog`` (the ``Consumer``
    protocol). Positions start at the group's committed offsets; without one,
    at the first retained record (``from_beginning``) or at the end."""

    def __init__(
        self, log: EmbeddedLog, group: str, topics: Sequence[str], *, from_beginning: bool
    ) -> None:
        if not topics:
            raise ValueError("a consumer needs at least one topic")
        self.group = group
        self.topics = frozenset(topics)
        self.from_beginning = from_beginning
        self._log = log
        self._members: GroupMembers | None = None
        self._assigned: frozenset[TopicPartition] = frozenset()
        self._order: list[TopicPartition] = []
        self._positions: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._seen: tuple[int, int] | None = None
        self._turn = 0

    async def start(self) -> None:
        """Join the group and take a share of the partitions."""
        if self._members is not None:
            return
        self._members = self._log._join(self)
        await self._sync()

    async def stop(self) -> None:
        """Leave the group. Positions not committed are dropped."""
        members, self._members = self._members, None
        if members is not None:
            members.leave(self)
            self._log._left(self)
        self._assigned, self._order, self._seen = frozenset(), [], None
        self._positions.clear()

    # The Consumer protocol fixes the ``timeout`` parameter name.
    async def poll(self, max_records: int = 500, timeout: float = 1.0) -> list[Record]:
        """Up to ``max_records`` records from the assigned partitions, waiting up
        to ``timeout`` seconds for some to arrive."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        log = self._log
        self._require()
        while True:
            await self._sync()
            seen = self._seen
            # Taken before reading, so an append committed after the read wakes us.
            wake = log._append_signal()
            plan = self._plan()
            if plan:
                records = await log._read(_store.fetch, plan, max_records)
                if records and self._seen == seen and self._members is not None:
                    positions = self._positions
                    for record in records:
                        positions[TopicPartition(record.topic, record.partition)] = (
                            record.offset + 1
                        )
                    self._turn += 1
                    return records
                if self._seen != seen and self._members is not None:
                    continue  # rebalanced while reading: read again from the new share
            remaining = deadline - loop.time()
            if remaining <= 0 or self._members is None:
                return []
            # Appends through this object wake us at once; appends by another
            # process on the same file are seen at the next short poll.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), min(remaining, log.poll_interval_s))

    async def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None:
        """Commit the positions after the last polled records of the assigned
        partitions, or exactly ``offsets`` (next offset to read, per partition)."""
        self._require()
        if offsets is None:
            entries = {
                tp: pos
                for tp, pos in self._positions.items()
                if tp in self._assigned and self._committed.get(tp) != pos
            }
        else:
            entries = {}
            for tp, offset in offsets.items():
                if offset < 0:
                    raise ValueError(f"negative offset {offset} for {tp}")
                entries[tp] = int(offset)
        if not entries:
            return
        await self._log._commit(
            self.group, tuple((tp.topic, tp.partition, off) for tp, off in entries.items())
        )
        self._committed.update(entries)

    def assignment(self) -> frozenset[TopicPartition]:
        return self._assigned

    async def seek_to_beginning(self) -> None:
        """Rewind every assigned partition to its first retained record."""
        self._require()
        await self._sync()
        for tp in self._assigned:
            self._positions[tp] = 0

    def _require(self) -> None:
        if self._members is None:
            raise BusClosedError(f"consumer of group {self.group!r} is not started")

    def _plan(self) -> list[tuple[int, str, int, int]]:
        order = self._order
        if not order:
            return []
        # Start at a different partition each poll so a busy one cannot starve the rest.
        start = self._turn % len(order)
        pids, positions = self._log._pids, self._positions
        return [
            (pids[tp.topic][tp.partition], tp.topic, tp.partition, positions[tp])
            for tp in order[start:] + order[:start]
        ]

    async def _sync(self) -> None:
        """Bring the assignment up to date with the group and the known topics."""
        log = self._log
        for topic in self.topics:
            if topic not in log._pids:
                await log._topic_pids(topic)
        while True:
            members = self._members
            if members is None:
                return
            key = (members.generation, log._topics_version)
            if key == self._seen:
                return
            counts = {topic: len(pids) for topic, pids in log._pids.items()}
            share = members.share_of(self, counts)
            added = share - self._assigned
            start: dict[TopicPartition, int] = {}
            if added:
                committed = await log._read(_store.committed, self.group, list(self.topics))
                ends: dict[str, dict[int, int]] = {}
                if not self.from_beginning:
                    for topic in {tp.topic for tp in added}:
                        ends[topic] = await log._read(_store.end_offsets, topic)
                for tp in added:
                    offset = committed.get(tp)
                    if offset is None:
                        offset = ends[tp.topic][tp.partition] if ends else 0
                    else:
                        self._committed[tp] = offset
                    start[tp] = offset
            if self._members is None or (members.generation, log._topics_version) != key:
                continue  # the group changed while we looked offsets up
            self._positions = {
                tp: pos for tp, pos in self._positions.items() if tp in share
            } | start
            self._assigned = share
            self._order = sorted(share, key=lambda tp: (tp.topic, tp.partition))
            self._seen = key
            return
