"""The embedded runtime: connectors, pipeline steps, sinks and the HTTP API in one process.

Start order: bus → state → steps → sinks → HTTP → listeners (ready). Stop
order is the reverse of intake: listeners stop accepting and finish their
ACKs, HTTP stops taking FHIR input, steps drain what is on the bus and commit,
sinks drain theirs, then the stores and the bus close.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from connectors.fhir import FhirIngest, FhirRestWriter
from connectors.mllp import MllpListener
from engine.api import ApiServer, create_app
from engine.bus import open_bus
from engine.config import FhirDestinationConfig, WardstreamConfig
from engine.fhir.sink import STEP_ID as STORE_STEP
from engine.fhir.sink import FhirStoreSink
from engine.fhir.store import FhirStore
from engine.runner import StepRunner
from engine.sink_runner import SinkRunner, bus_dead_letters
from engine.state import StateStore, StepState
from engine.tls import server_context_for
from engine.types import Bus, Emit, Sink
from pipelines.census import CensusStep
from pipelines.fhir_in import NormalizeFhir
from pipelines.fhir_out import FhirOut
from pipelines.hl7v2.normalize import NormalizeHl7v2
from schemas.topics import EVENTS_ADT, EVENTS_OBS, FHIR_OUT, RAW_FHIR, RAW_HL7V2, default_topics

log = structlog.get_logger("wardstream.runtime")


def utc_now() -> datetime:
    return datetime.now(UTC)


def bus_options(config: WardstreamConfig) -> dict[str, Any]:
    """Driver options for the configured bus URL."""
    if config.bus.url.startswith("kafka:"):
        kafka = config.bus.kafka
        return {
            "enable_idempotence": kafka.enable_idempotence,
            "session_timeout_ms": kafka.session_timeout_ms,
            "heartbeat_interval_ms": kafka.heartbeat_interval_ms,
            "client_id": kafka.client_id,
            "dedup_path": str(config.data_dir / "kafka-dedup.db"),
        }
    return {"synchronous": config.bus.synchronous, "default_partitions": config.bus.partitions}


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def _listener_stats(listener: MllpListener) -> dict[str, Any]:
    stats = listener.stats
    return {
        "messages": stats.messages_in,
        "bytes": stats.bytes_in,
        "acks": dict(stats.acks),
        "oversize_frames": stats.oversize_frames,
        "append_failures": stats.append_failures,
        "strict_refused": stats.strict_refused,
        "connections_open": stats.connections_open,
        "connections_total": stats.connections_total,
        "ack_p50_ms": _ms(stats.latency.p50()),
        "ack_p99_ms": _ms(stats.latency.p99()),
    }


class Engine:
    """One Wardstream process."""

    def __init__(self, config: WardstreamConfig, *, bus: Bus | None = None) -> None:
        self.config = config
        self.bus = bus if bus is not None else open_bus(config.bus.url, **bus_options(config))
        self.store = StateStore(config.data_dir / "state.db")
        self.fhir_store = FhirStore(config.data_dir / "fhir.db", clock=utc_now)
        self.fhir_ingest = FhirIngest(
            bus=self.bus,
            store=self.fhir_store,
            clock=utc_now,
            validate=config.fhir.validate_on_ingest,
        )
        self.steps: list[StepRunner] = []
        self.sinks: list[SinkRunner] = []
        self._refused: Counter[str] = Counter()
        self.listeners: list[MllpListener] = []
        self.ready = False
        self.started_at: datetime | None = None
        self._census: StepRunner | None = None
        self._http: ApiServer | None = None
        self._http_task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def start(self) -> None:
        cfg = self.config
        # httpx logs every request at info; destinations log retries and refusals themselves.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        await self.bus.start()
        retention_ms = int(cfg.bus.retention_hours * 3_600_000) if cfg.bus.retention_hours else None
        topics = [
            spec.__class__(name=spec.name, partitions=spec.partitions, retention_ms=retention_ms)
            for spec in default_topics(cfg.bus.partitions)
        ]
        await self.bus.create_topics(topics)
        if cfg.pipelines.normalize.enabled:
            channel_tz = {
                channel.name: ZoneInfo(channel.timezone)
                for channel in cfg.channels
                if channel.timezone is not None
            }
            normalize = NormalizeHl7v2(utc_now, ZoneInfo(cfg.timezone), channel_tz)
            self.steps.append(self._step(normalize, [RAW_HL7V2]))
            self.steps.append(self._step(NormalizeFhir(utc_now), [RAW_FHIR]))
        if cfg.pipelines.census.enabled:
            self._census = self._step(CensusStep(utc_now), [EVENTS_ADT])
            self.steps.append(self._census)
        if cfg.pipelines.fhir_out.enabled:
            fhir_out = FhirOut(utc_now, validate=cfg.fhir.validate_output)
            self.steps.append(self._step(fhir_out, [EVENTS_ADT, EVENTS_OBS]))
        if cfg.fhir.store:
            store_sink = FhirStoreSink(
                self.fhir_store, dead_letters=self._dead_letters(STORE_STEP), clock=utc_now
            )
            self.sinks.append(self._sink(store_sink, store_sink.name))
        for destination in cfg.destinations:
            writer = self._destination(destination)
            self.sinks.append(self._sink(writer, writer.step_id))
        for step in self.steps:
            await step.start()
        for sink in self.sinks:
            await sink.start()
        await self._start_http()
        for channel in cfg.channels:
            source = channel.source
            tls_context = server_context_for(source.tls)
            listener = MllpListener(
                channel=channel.name,
                bus=self.bus,
                host=source.host,
                port=source.port,
                max_frame_bytes=source.max_frame_bytes,
                idle_timeout_s=source.idle_timeout_s,
                max_connections=source.max_connections,
                max_pending_frames=cfg.runtime.max_pending_frames,
                strict=channel.strict,
                clock=utc_now,
                ssl=tls_context,
            )
            await listener.start()
            self.listeners.append(listener)
            log.info(
                "mllp listening",
                channel=channel.name,
                host=source.host,
                port=listener.port,
                tls=tls_context is not None,
            )
        self.started_at = utc_now()
        self.ready = True
        log.info("engine ready", bus=self.bus.url, http_port=self.http_port)

    def _step(self, processor: Any, topics: list[str]) -> StepRunner:
        return StepRunner(
            bus=self.bus,
            processor=processor,
            topics=topics,
            store=self.store,
            clock=utc_now,
            max_batch=self.config.runtime.batch_size,
        )

    def _drain_order(self) -> list[list[StepRunner] | list[SinkRunner]]:
        raw = {RAW_HL7V2, RAW_FHIR}
        intake = [step for step in self.steps if set(step.topics) <= raw]
        events = [step for step in self.steps if step not in intake]
        return [intake, events, self.sinks]

    def _dead_letters(self, group: str) -> Callable[[Emit], Awaitable[object]]:
        """Where a sink's refused records go: ``dlq``, counted per sink."""
        append = bus_dead_letters(self.bus)

        async def dead_letter(emit: Emit) -> object:
            result = await append(emit)
            self._refused[group] += 1
            return result

        return dead_letter

    def _sink(self, sink: Sink, group: str) -> SinkRunner:
        return SinkRunner(
            bus=self.bus,
            sink=sink,
            group=group,
            topics=[FHIR_OUT],
            clock=utc_now,
            max_batch=self.config.runtime.batch_size,
        )

    def _destination(self, config: FhirDestinationConfig) -> FhirRestWriter:
        return FhirRestWriter(
            config.base_url,
            name=config.name,
            token=config.token,
            timeout_s=config.timeout_s,
            max_retries=config.max_retries,
            backoff_s=config.backoff_s,
            conditional=config.conditional,
            ca_file=config.ca_file,
            dead_letters=self._dead_letters(f"dest.{config.name}"),
            clock=utc_now,
        )

    async def _start_http(self) -> None:
        import uvicorn

        cfg = self.config.http
        app = create_app(self, token=cfg.token)
        tls_context = server_context_for(cfg.tls)
        server = ApiServer(
            uvicorn.Config(
                app,
                host=cfg.host,
                port=cfg.port,
                log_config=None,
                lifespan="off",
                access_log=False,
                # The engine's own context, so HTTPS and MLLP share one TLS policy.
                ssl_context_factory=(
                    None if tls_context is None else lambda _config, _default: tls_context
                ),
            )
        )
        self._http = server
        self._http_task = asyncio.create_task(server.serve(), name="http")
        while not server.started:
            if self._http_task.done():
                await self._http_task
                raise RuntimeError(f"HTTP server failed to start on {cfg.host}:{cfg.port}")
            await asyncio.sleep(0.01)

    @property
    def http_port(self) -> int | None:
        if self._http is None or not self._http.servers:
            return None
        sockets = self._http.servers[0].sockets
        return int(sockets[0].getsockname()[1]) if sockets else None

    def census_state(self) -> StepState:
        return self._census.state if self._census is not None else StepState({})

    def stats(self) -> dict[str, Any]:
        return {
            "listeners": {
                listener.channel: _listener_stats(listener) for listener in self.listeners
            },
            "steps": {
                step.step_id: {"processed": step.processed, "dead_letters": step.dead_letters}
                for step in self.steps
            },
            "sinks": {
                sink.group: {
                    "written": sink.written,
                    "failures": sink.failures,
                    "dead_letters": sink.dead_letters + self._refused[sink.group],
                }
                for sink in self.sinks
            },
        }

    def request_stop(self) -> None:
        self._stop.set()

    async def run_until_stopped(self) -> None:
        """Run until SIGTERM/SIGINT (or :meth:`request_stop`), then shut down gracefully."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        try:
            await self._stop.wait()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            await self.stop()

    async def stop(self) -> None:
        self.ready = False
        grace = self.config.runtime.shutdown_grace_s
        for listener in self.listeners:
            await listener.stop()
        if self._http is not None and self._http_task is not None:
            self._http.should_exit = True
            await self._http_task
        # Stage by stage, so each drains what the one before it emitted while stopping.
        for stage in self._drain_order():
            await asyncio.gather(*(runner.wait_idle(grace) for runner in stage))
        for step in self.steps:
            await step.stop()
        for sink in self.sinks:
            await sink.stop(timeout=grace)
        await self.fhir_store.close()
        await self.store.close()
        await self.bus.stop()
        log.info("engine stopped")
