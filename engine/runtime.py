"""The embedded runtime: connectors, pipeline steps and the HTTP API in one process.

Start order: bus → state → steps → HTTP → listeners (ready). Stop order is the
reverse of intake: listeners stop accepting and finish their ACKs, steps drain
what is on the bus and commit, then HTTP, state and bus close.
"""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime
from typing import Any

import structlog

from connectors.mllp import MllpListener
from engine.api import ApiServer, create_app
from engine.bus import open_bus
from engine.config import WardstreamConfig
from engine.runner import StepRunner
from engine.state import StateStore, StepState
from engine.types import Bus
from pipelines.census import CensusStep
from pipelines.hl7v2.normalize import NormalizeHl7v2
from schemas.topics import EVENTS_ADT, RAW_HL7V2, default_topics

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
        self.steps: list[StepRunner] = []
        self.listeners: list[MllpListener] = []
        self.ready = False
        self.started_at: datetime | None = None
        self._census: StepRunner | None = None
        self._http: ApiServer | None = None
        self._http_task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def start(self) -> None:
        cfg = self.config
        await self.bus.start()
        retention_ms = int(cfg.bus.retention_hours * 3_600_000) if cfg.bus.retention_hours else None
        topics = [
            spec.__class__(name=spec.name, partitions=spec.partitions, retention_ms=retention_ms)
            for spec in default_topics(cfg.bus.partitions)
        ]
        await self.bus.create_topics(topics)
        if cfg.pipelines.normalize.enabled:
            self.steps.append(self._step(NormalizeHl7v2(utc_now), [RAW_HL7V2]))
        if cfg.pipelines.census.enabled:
            self._census = self._step(CensusStep(utc_now), [EVENTS_ADT])
            self.steps.append(self._census)
        for step in self.steps:
            await step.start()
        await self._start_http()
        for channel in cfg.channels:
            source = channel.source
            listener = MllpListener(
                channel=channel.name,
                bus=self.bus,
                host=source.host,
                port=source.port,
                max_frame_bytes=source.max_frame_bytes,
                idle_timeout_s=source.idle_timeout_s,
                max_connections=source.max_connections,
                clock=utc_now,
            )
            await listener.start()
            self.listeners.append(listener)
            log.info("mllp listening", channel=channel.name, host=source.host, port=listener.port)
        self.started_at = utc_now()
        self.ready = True
        log.info("engine ready", bus=self.bus.url, http_port=self.http_port)

    def _step(self, processor: Any, topics: list[str]) -> StepRunner:
        return StepRunner(
            bus=self.bus, processor=processor, topics=topics, store=self.store, clock=utc_now
        )

    async def _start_http(self) -> None:
        import uvicorn

        cfg = self.config.http
        app = create_app(self, token=cfg.token)
        server = ApiServer(
            uvicorn.Config(
                app, host=cfg.host, port=cfg.port, log_config=None, lifespan="off", access_log=False
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
        for step in self.steps:
            await step.wait_idle(grace)
            await step.stop()
        if self._http is not None and self._http_task is not None:
            self._http.should_exit = True
            await self._http_task
        await self.store.close()
        await self.bus.stop()
        log.info("engine stopped")
