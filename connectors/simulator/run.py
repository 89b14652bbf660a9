"""Getting simulated messages out: into an HL7 batch file, or live over MLLP."""

from __future__ import annotations

import asyncio
import inspect
import os
import zlib
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path

from connectors.mllp.sender import MllpSender
from connectors.simulator import hl7
from connectors.simulator.config import HospitalConfig
from connectors.simulator.model import SimMessage, simulate
from pipelines.hl7v2 import Ack

# A live run without an end: a century of simulated time is beyond any demo.
_FOREVER = timedelta(days=36_500)
# Per-sender queue depth: enough to keep a connection busy, small enough that a
# stop request leaves little to drain.
_QUEUE_DEPTH = 16


# Called with each message and its ACK; may be a plain function or a coroutine function.
OnSent = Callable[[SimMessage, Ack], Awaitable[object] | None]


def write_history(path: str | os.PathLike[str], messages: Iterable[SimMessage]) -> int:
    """Write ``messages`` as one HL7 batch file (FHS, BHS, messages, BTS, FTS); return the count.

    Segments end with ``\\r``; each message (and the header and trailer) is
    followed by a newline so the file reads one message per line. The header
    copies MSH-3..7 of the first message, so the same messages give the same
    bytes. The file appears atomically: it is written under a hidden temporary
    name and renamed, so a drop-folder watcher never sees half of it.
    """
    target = Path(path)
    partial = target.with_name(f".{target.name}.partial")
    iterator = iter(messages)
    first = next(iterator, None)
    count = 0
    with partial.open("w", encoding="utf-8", newline="") as out:
        out.write(_batch_header(first, file_name=target.name) + "\n")
        if first is not None:
            out.write(first.text + "\n")
            count = 1
            for message in iterator:
                out.write(message.text + "\n")
                count += 1
        out.write(hl7.batch_trailer(count) + "\n")
    partial.replace(target)
    return count


def _batch_header(first: SimMessage | None, *, file_name: str) -> str:
    if first is None:
        return hl7.batch_header(("", "", "", ""), timestamp="", file_name=file_name, batch_id="")
    fields = first.text.split(hl7.SEGMENT_END, 1)[0].split("|")
    return hl7.batch_header(
        (fields[2], fields[3], fields[4], fields[5]),
        timestamp=fields[6],
        file_name=file_name,
        batch_id=first.control_id,
    )


def sender_for(patient_id: str, senders: int) -> int:
    """The sender a patient's messages always go through, so their order is kept."""
    return zlib.crc32(patient_id.encode()) % senders


async def run_live(
    config: HospitalConfig,
    *,
    seed: int,
    start: datetime,
    speed: float,
    host: str,
    port: int,
    senders: int = 1,
    stop_event: asyncio.Event | None = None,
    on_sent: OnSent | None = None,
    max_messages: int | None = None,
    duration: timedelta | None = None,
    warm_up: timedelta = timedelta(0),
) -> int:
    """Send the simulation over MLLP at ``speed`` simulated seconds per wall second.

    Each message leaves when its simulated time comes due (``math.inf`` sends
    as fast as the receiver acknowledges) and is sent by the one of
    ``senders`` connections its patient hashes to, waiting for the ACK before
    that connection sends the next. ``on_sent`` (plain or async) gets every
    message with its ACK, whatever the ACK code. The run ends when the
    simulated ``duration`` is over, ``max_messages`` were handed out, or
    ``stop_event`` is set; messages already queued to a sender are still sent.
    Returns the number of messages acknowledged. A sender that gives up
    (its retries exhausted) ends the run with its error.
    """
    if not speed > 0:
        raise ValueError("speed must be positive")
    if senders < 1:
        raise ValueError("senders must be at least 1")
    stop = stop_event if stop_event is not None else asyncio.Event()
    queues: list[asyncio.Queue[SimMessage | None]] = [
        asyncio.Queue(maxsize=_QUEUE_DEPTH) for _ in range(senders)
    ]
    acked = 0

    async def deliver(queue: asyncio.Queue[SimMessage | None]) -> None:
        nonlocal acked
        async with MllpSender(host, port) as sender:
            while (message := await queue.get()) is not None:
                ack = await sender.send(message.text)
                acked += 1
                if on_sent is not None:
                    result = on_sent(message, ack)
                    if inspect.isawaitable(result):
                        await result

    async def produce() -> None:
        loop = asyncio.get_running_loop()
        began = loop.time()
        messages = simulate(
            config, seed=seed, start=start, duration=duration or _FOREVER, warm_up=warm_up
        )
        for handed, message in enumerate(messages):
            if stop.is_set() or (max_messages is not None and handed >= max_messages):
                break
            delay = began + (message.at - start).total_seconds() / speed - loop.time()
            if delay > 0 and await _stopped_within(stop, delay):
                break
            await queues[sender_for(message.patient_id, senders)].put(message)
        # Not in a ``finally``: on failure the task group cancels the senders, and a
        # full queue of a dead sender would block here forever.
        for queue in queues:
            await queue.put(None)

    try:
        async with asyncio.TaskGroup() as group:
            for queue in queues:
                group.create_task(deliver(queue))
            group.create_task(produce())
    except ExceptionGroup as failures:
        # One sender failing cancels the rest; its error is the one worth reporting.
        raise failures.exceptions[0] from failures
    return acked


async def _stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    """Wait up to ``seconds``; true when ``stop`` was set meanwhile."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True
