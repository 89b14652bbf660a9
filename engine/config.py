"""Wardstream configuration: typed settings read from YAML and the environment.

An empty file (or no file) is a valid configuration: one MLLP channel on
127.0.0.1:2575, the HTTP API on 127.0.0.1:8080, data in ``./var`` and the
embedded bus at ``sqlite:///var/bus.db``.

Relative paths: ``data_dir``, the path in a ``sqlite:///`` bus URL (given or
defaulted) and the TLS certificate, key and CA files are resolved against the
directory of the config file they were read from; against the working
directory when they come from the environment or when there is no file.

Every problem found while loading is reported as ``FILE:LINE:COL: path: message``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from engine import _yaml
from engine._yaml import LintIssue, Loc
from engine.bus import DEFAULT_BUS_URL
from engine.tls import TlsSetupError, server_context

#: Environment variables that override the file, and the setting each one sets.
ENV_OVERRIDES: dict[str, tuple[str, ...]] = {
    "WARDSTREAM_BUS_URL": ("bus", "url"),
    "WARDSTREAM_HTTP_PORT": ("http", "port"),
    "WARDSTREAM_HTTP_TOKEN": ("http", "token"),
    "WARDSTREAM_DATA_DIR": ("data_dir",),
    "WARDSTREAM_LOG_LEVEL": ("log", "level"),
}

# Validators that check several fields at once name the offending field
# (relative to the validated model) in the error context under this key.
_AT = _yaml.AT

Port = Annotated[int, Field(ge=0, le=65535)]
Host = Annotated[str, Field(min_length=1, max_length=253)]
_WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 - compared, never bound


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _existing_file(value: Path, info: ValidationInfo) -> Path:
    # Like data_dir: relative to the config file's directory when read from a file.
    base = info.context.get("base_dir") if isinstance(info.context, dict) else None
    path = value.expanduser()
    if base is not None and not path.is_absolute():
        path = Path(base) / path
    if not path.is_file():
        problem = "is not a file" if path.exists() else "does not exist"
        raise PydanticCustomError(
            "file_missing", "{path} {problem}", {"path": str(path), "problem": problem}
        )
    return path


#: A file the config names: resolved like ``data_dir``, and it must exist.
ConfigFile = Annotated[Path, AfterValidator(_existing_file)]


class TlsConfig(_Settings):
    """TLS for a listener (TLS 1.2 or later); optionally mutual TLS."""

    cert_file: ConfigFile = Field(
        description=(
            "PEM certificate the listener presents, leaf first, then any intermediates. "
            "Relative paths are resolved against the config file's directory."
        )
    )
    key_file: ConfigFile = Field(description="PEM private key of cert_file, unencrypted.")
    ca_file: ConfigFile | None = Field(
        default=None,
        description=(
            "PEM CA certificates that client certificates are verified against (mutual TLS); "
            "null: client certificates are not asked for."
        ),
    )
    require_client_cert: bool = Field(
        default=False,
        description="Refuse clients without a certificate signed by ca_file (needs ca_file).",
    )

    @model_validator(mode="after")
    def _usable(self) -> Self:
        if self.require_client_cert and self.ca_file is None:
            raise PydanticCustomError(
                "client_cert_without_ca",
                "needs ca_file to verify client certificates",
                {_AT: ("require_client_cert",)},
            )
        try:
            server_context(self.cert_file, self.key_file, ca_file=self.ca_file)
        except TlsSetupError as exc:
            raise PydanticCustomError(
                "tls_files", "{problem}", {"problem": str(exc), _AT: ("cert_file",)}
            ) from exc
        return self


class KafkaConfig(_Settings):
    """Client settings used only when ``bus.url`` is a ``kafka://`` URL."""

    enable_idempotence: bool = Field(
        default=True, description="Idempotent producer (no duplicates from producer retries)."
    )
    session_timeout_ms: int = Field(
        default=10_000,
        ge=1_000,
        le=3_600_000,
        description="Consumer group session timeout: a member silent this long is evicted.",
    )
    heartbeat_interval_ms: int = Field(
        default=3_000,
        ge=100,
        description="Consumer heartbeat interval; must be below session_timeout_ms.",
    )
    client_id: str = Field(
        default="wardstream", min_length=1, description="Client id reported to the brokers."
    )

    @model_validator(mode="after")
    def _heartbeat_below_session(self) -> Self:
        if self.heartbeat_interval_ms >= self.session_timeout_ms:
            raise PydanticCustomError(
                "heartbeat_too_slow",
                "must be lower than session_timeout_ms ({session_timeout_ms})",
                {"session_timeout_ms": self.session_timeout_ms, _AT: ("heartbeat_interval_ms",)},
            )
        return self


class BusConfig(_Settings):
    """The durable log every record goes through."""

    url: str = Field(
        default=DEFAULT_BUS_URL,
        description=(
            "Bus driver by URL: sqlite:///PATH (embedded log, the default; a relative PATH "
            "is resolved like data_dir) or kafka://HOST:PORT[,HOST:PORT]. "
            "Environment: WARDSTREAM_BUS_URL."
        ),
    )
    partitions: int = Field(
        default=4, ge=1, le=1024, description="Partitions for topics the engine creates."
    )
    synchronous: Literal["full", "normal"] = Field(
        default="full",
        description=(
            "Embedded log durability (SQLite PRAGMA synchronous): full survives power loss, "
            "normal only process crashes."
        ),
    )
    retention_hours: int | None = Field(
        default=168, ge=1, description="Hours records are kept; null keeps them forever."
    )
    kafka: KafkaConfig = Field(
        default_factory=KafkaConfig, description="Kafka client settings (kafka:// URLs only)."
    )

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        scheme, sep, rest = url.partition("://")
        scheme = scheme.lower()
        if sep and scheme == "sqlite" and rest.startswith("/") and len(rest) > 1:
            return url
        if sep and scheme == "kafka" and rest and all(_is_host_port(b) for b in rest.split(",")):
            return url
        raise PydanticCustomError(
            "bus_url",
            "expected sqlite:///PATH or kafka://HOST:PORT[,HOST:PORT], got '{url}'",
            {"url": url},
        )


def absolute_sqlite_url(url: str, base: Path) -> str:
    """``sqlite:///rel/bus.db`` with its path made absolute against ``base``;
    other URLs unchanged."""
    scheme, sep, rest = url.partition("://")
    if scheme.lower() != "sqlite" or not sep or not rest.startswith("/") or rest.startswith("//"):
        return url
    return f"{scheme}:///{base.absolute() / rest[1:]}"


def _is_host_port(text: str) -> bool:
    host, sep, port = text.rpartition(":")
    return bool(sep and host and port.isdigit() and 0 < int(port) <= 65535)


class HttpConfig(_Settings):
    """The HTTP API and dashboard listener."""

    host: Host = Field(default="127.0.0.1", description="Address the HTTP API listens on.")
    port: Port = Field(
        default=8080,
        description="TCP port of the API (0: any free port). Environment: WARDSTREAM_HTTP_PORT.",
    )
    token: str | None = Field(
        default=None,
        min_length=1,
        repr=False,
        description=(
            "Bearer token required by the API; null disables authentication. "
            "Environment: WARDSTREAM_HTTP_TOKEN."
        ),
    )
    tls: TlsConfig | None = Field(
        default=None, description="Serve the API over HTTPS; null: plain HTTP."
    )


class LogConfig(_Settings):
    """Log output."""

    level: Literal["debug", "info", "warning", "error"] = Field(
        default="info",
        description="Lowest level written (case-insensitive). Environment: WARDSTREAM_LOG_LEVEL.",
    )
    format: Literal["auto", "json", "console"] = Field(
        default="auto",
        description="json: JSON lines; console: human-readable; auto: console on a TTY, else json.",
    )
    redact_phi: bool = Field(
        default=True,
        description="Mask names, identifiers, dates of birth and HL7 patient segments in logs.",
    )

    @field_validator("level", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value


class MllpSourceConfig(_Settings):
    """An HL7v2 listener speaking MLLP over TCP."""

    type: Literal["mllp"] = Field(default="mllp", description="Source kind.")
    host: Host = Field(default="127.0.0.1", description="Address to listen on.")
    port: Port = Field(default=2575, description="TCP port to listen on (0: any free port).")
    max_frame_bytes: int = Field(
        default=1_048_576,
        ge=1_024,
        le=268_435_456,
        description="Largest accepted message; bigger frames are rejected with an AR.",
    )
    idle_timeout_s: float = Field(
        default=300, gt=0, description="Seconds a connection may stay silent before it is closed."
    )
    max_connections: int = Field(
        default=1024, ge=1, description="Concurrent connections accepted; more wait in backlog."
    )
    tls: TlsConfig | None = Field(
        default=None, description="Accept MLLP over TLS only; null: plain TCP."
    )


# One member for now; file drops and FHIR ingest join this union by ``type``.
SourceConfig = Annotated[MllpSourceConfig, Field(discriminator="type")]


class ChannelConfig(_Settings):
    """A named source of messages and how to treat them."""

    name: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_-]*$",
        max_length=64,
        description="Unique channel name: lower-case letters, digits, '-' and '_'.",
    )
    source: SourceConfig = Field(
        default_factory=MllpSourceConfig, description="Where messages come from, by type."
    )
    strict: bool = Field(
        default=False,
        description="Validate message structure against the declared HL7 version.",
    )
    timezone: str | None = Field(
        default=None,
        description=(
            "IANA zone (e.g. Europe/London) for HL7 date/times sent without an offset; "
            "default: the engine's `timezone`."
        ),
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return value if value is None else _check_zone(value)


def _check_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


class PipelineToggle(_Settings):
    """Whether a pipeline runs."""

    enabled: bool = Field(default=True, description="Run this pipeline.")


class PipelinesConfig(_Settings):
    """The processing pipelines."""

    normalize: PipelineToggle = Field(
        default_factory=PipelineToggle, description="Raw messages to canonical events."
    )
    census: PipelineToggle = Field(
        default_factory=PipelineToggle, description="Live bed census per ward."
    )
    fhir_out: PipelineToggle = Field(
        default_factory=PipelineToggle,
        description="Canonical events to FHIR R4 transaction Bundles on fhir.out.",
    )


class FhirDestinationConfig(_Settings):
    """A FHIR R4 server the engine writes its FHIR output (``fhir.out``) to."""

    name: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_-]*$",
        max_length=64,
        description=(
            "Unique destination name: lower-case letters, digits, '-' and '_'. Its consumer "
            "group is dest.<name>."
        ),
    )
    type: Literal["fhir"] = Field(default="fhir", description="Destination kind.")
    base_url: str = Field(
        pattern=r"^https?://[^\s/?#]+[^\s?#]*$",
        description="Base URL of the FHIR server; transaction Bundles are POSTed to it.",
    )
    token: str | None = Field(
        default=None,
        min_length=1,
        repr=False,
        description="Bearer token sent to the server; null sends no Authorization header.",
    )
    ca_file: ConfigFile | None = Field(
        default=None,
        description=(
            "PEM CA certificates that an https server's certificate is verified against "
            "(a private CA); null: the system's trust store. Relative paths are resolved "
            "against the config file's directory."
        ),
    )
    timeout_s: float = Field(
        default=10, gt=0, le=600, description="Seconds one request may take before it is retried."
    )
    max_retries: int = Field(
        default=5,
        ge=0,
        le=100,
        description=(
            "Retries of a Bundle after 5xx, 429, timeouts or connection errors, with "
            "exponential backoff; then the batch waits and is tried again later (never dropped)."
        ),
    )
    backoff_s: float = Field(
        default=0.5, ge=0, le=60, description="First retry delay in seconds; doubles each retry."
    )
    conditional: Literal["put", "if-none-exist"] = Field(
        default="put",
        description=(
            "How resources are written: put (update at the engine's deterministic id) or "
            "if-none-exist (conditional create by identifier, for servers assigning ids)."
        ),
    )


# One member for now; more destination kinds join this union by ``type``.
DestinationConfig = Annotated[FhirDestinationConfig, Field(discriminator="type")]


class FhirConfig(_Settings):
    """FHIR R4 ingest, output and the result store served at /fhir."""

    validate_on_ingest: bool = Field(
        default=True,
        description=(
            "Validate posted resources against FHIR R4 (structure, cardinality, datatypes, "
            "required bindings); invalid input is answered 400 with an OperationOutcome."
        ),
    )
    validate_output: bool = Field(
        default=False,
        description=(
            "Validate every resource the engine produces before it goes to fhir.out (invalid "
            "ones go to dlq); off by default because it is slow on the hot path."
        ),
    )
    store: bool = Field(
        default=True,
        description=(
            "Keep the engine's own FHIR output (fhir.out) in the result store served at /fhir."
        ),
    )


class RuntimeConfig(_Settings):
    """Backpressure and lifecycle of the engine."""

    batch_size: int = Field(
        default=500,
        ge=1,
        description="Records a pipeline step or sink takes from the bus per poll: the bound on"
        " the work each stage holds in memory at once.",
    )
    max_pending_frames: int = Field(
        default=64,
        ge=1,
        description="MLLP frames one connection may have read ahead of their ACKs; the"
        " connection stops being read beyond it until ACKs catch up (backpressure).",
    )
    shutdown_grace_s: float = Field(
        default=10, ge=0, description="Seconds to drain in-flight work on shutdown."
    )


def _default_channels() -> list[ChannelConfig]:
    return [ChannelConfig(name="mllp-default")]


class WardstreamConfig(_Settings):
    """The whole engine configuration; every setting has a default."""

    data_dir: Path = Field(
        default=Path("var"),
        description=(
            "Directory for engine state. Relative paths are resolved against the config "
            "file's directory. Environment: WARDSTREAM_DATA_DIR (relative to the working "
            "directory)."
        ),
    )
    timezone: str = Field(
        default="UTC",
        description="IANA zone for HL7 date/times sent without an offset (channels may override).",
    )

    @field_validator("timezone")
    @classmethod
    def _known_engine_zone(cls, value: str) -> str:
        return _check_zone(value)

    bus: BusConfig = Field(default_factory=BusConfig, description="The durable log.")
    http: HttpConfig = Field(default_factory=HttpConfig, description="HTTP API listener.")
    log: LogConfig = Field(default_factory=LogConfig, description="Log output.")
    channels: list[ChannelConfig] = Field(
        default_factory=_default_channels,
        description="Inbound channels; by default one MLLP channel on 127.0.0.1:2575.",
    )
    pipelines: PipelinesConfig = Field(
        default_factory=PipelinesConfig, description="Which pipelines run."
    )
    runtime: RuntimeConfig = Field(
        default_factory=RuntimeConfig, description="Queues, concurrency and shutdown."
    )
    fhir: FhirConfig = Field(
        default_factory=FhirConfig, description="FHIR ingest, output validation and result store."
    )
    destinations: list[DestinationConfig] = Field(
        default_factory=list,
        description="Where the engine's FHIR output is written, besides its own result store.",
    )

    @field_validator("data_dir")
    @classmethod
    def _expand_user(cls, value: Path) -> Path:
        return value.expanduser()

    @model_validator(mode="before")
    @classmethod
    def _resolve_against_config_dir(cls, data: Any, info: ValidationInfo) -> Any:
        # Relative locations in a file mean "next to the file", so the engine
        # finds the same state and log whatever directory it is started from.
        base = info.context.get("base_dir") if isinstance(info.context, dict) else None
        if base is None or not isinstance(data, dict):
            return data
        data = dict(data)
        data_dir = data.get("data_dir", cls.model_fields["data_dir"].default)
        if isinstance(data_dir, str | Path):
            data["data_dir"] = Path(base) / Path(data_dir).expanduser()
        bus = data.get("bus", {})
        if isinstance(bus, dict) and isinstance(url := bus.get("url", DEFAULT_BUS_URL), str):
            data["bus"] = {**bus, "url": absolute_sqlite_url(url, Path(base))}
        return data

    @model_validator(mode="after")
    def _unique_channels_and_ports(self, info: ValidationInfo) -> Self:
        problems = _conflicts(self)
        context = info.context if isinstance(info.context, dict) else {}
        collector = context.get(_yaml.CONFLICTS)
        if isinstance(collector, list):
            # Loading collects every conflict so one run reports them all.
            collector.extend(problems)
        elif problems:
            loc, message = problems[0]
            raise PydanticCustomError("conflict", "{problem}", {"problem": message, _AT: loc})
        return self


def _conflicts(config: WardstreamConfig) -> list[tuple[Loc, str]]:
    """Channel and destination names used twice, and listeners bound to the same host
    and port."""
    problems: list[tuple[Loc, str]] = []
    names: dict[str, int] = {}
    for i, channel in enumerate(config.channels):
        if channel.name in names:
            message = (
                f"channel name {channel.name!r} is already taken by channels[{names[channel.name]}]"
            )
            problems.append((("channels", i, "name"), message))
        names.setdefault(channel.name, i)
    destinations: dict[str, int] = {}
    for i, destination in enumerate(config.destinations):
        if destination.name in destinations:
            first = destinations[destination.name]
            message = (
                f"destination name {destination.name!r} is already taken by destinations[{first}]"
            )
            problems.append((("destinations", i, "name"), message))
        destinations.setdefault(destination.name, i)
    taken: list[tuple[str, int, str]] = [(config.http.host, config.http.port, "http")]
    for i, channel in enumerate(config.channels):
        host, port = channel.source.host, channel.source.port
        for other_host, other_port, owner in taken:
            # Port 0 asks the OS for a free port, so it never collides.
            same_host = host == other_host or bool({host, other_host} & _WILDCARD_HOSTS)
            if port and port == other_port and same_host:
                message = f"port {port} on {host} is already used by {owner}"
                problems.append((("channels", i, "source", "port"), message))
                break
        taken.append((host, port, f"channels[{i}] ({channel.name})"))
    return problems


class ConfigError(Exception):
    """The configuration is invalid; ``issues`` lists every problem found."""

    def __init__(self, issues: list[LintIssue]) -> None:
        super().__init__("\n".join(str(issue) for issue in issues))
        self.issues = issues


def load_config(
    path: Path | str | None = None, *, environ: Mapping[str, str] | None = None
) -> WardstreamConfig:
    """Read the config file at ``path`` (defaults only when ``None``), then apply
    the ``WARDSTREAM_*`` overrides from ``environ`` (``os.environ`` by default).

    Raises ``ConfigError`` listing every problem.
    """
    env = os.environ if environ is None else environ
    if path is None:
        return parse_config("", source="<defaults>", environ=env)
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([LintIssue(str(path), 0, 0, "", f"cannot read: {exc}")]) from exc
    return parse_config(text, source=str(path), base_dir=path.absolute().parent, environ=env)


def parse_config(
    text: str,
    *,
    source: str = "<string>",
    base_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> WardstreamConfig:
    """Validate YAML ``text``; ``source`` names it in errors. No environment
    overrides are applied unless ``environ`` is given."""
    config, issues = _validate(text, source, base_dir, environ or {})
    if config is None:
        raise ConfigError(issues)
    return config


def lint_file(path: Path | str) -> list[LintIssue]:
    """Every problem in the config file at ``path`` (the environment is ignored)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [LintIssue(str(path), 0, 0, "", f"cannot read: {exc}")]
    return _validate(text, str(path), path.absolute().parent, {})[1]


def dump_config(config: WardstreamConfig) -> str:
    """The config as YAML, every setting included, in field order (diffs cleanly)."""
    return _yaml.dump(config.model_dump(mode="json"))


def _validate(
    text: str, source: str, base_dir: Path | None, environ: Mapping[str, str]
) -> tuple[WardstreamConfig | None, list[LintIssue]]:
    return _yaml.validate_document(
        WardstreamConfig,
        text,
        source,
        context={"base_dir": base_dir},
        overrides=_env_overrides(environ),
    )


def _env_overrides(environ: Mapping[str, str]) -> dict[Loc, tuple[str, str]]:
    """The settings the environment overrides: path -> (variable, value).
    An empty variable counts as unset."""
    found: dict[Loc, tuple[str, str]] = {}
    for name, path in ENV_OVERRIDES.items():
        value = environ.get(name)
        if not value:
            continue
        # Relative values from the environment mean the working directory.
        if path == ("data_dir",):
            value = str(Path(value).expanduser().absolute())
        elif path == ("bus", "url"):
            value = absolute_sqlite_url(value, Path.cwd())
        found[path] = (name, value)
    return found


__all__ = [
    "ENV_OVERRIDES",
    "BusConfig",
    "ChannelConfig",
    "ConfigError",
    "ConfigFile",
    "DestinationConfig",
    "FhirConfig",
    "FhirDestinationConfig",
    "HttpConfig",
    "KafkaConfig",
    "LintIssue",
    "LogConfig",
    "MllpSourceConfig",
    "PipelineToggle",
    "PipelinesConfig",
    "RuntimeConfig",
    "SourceConfig",
    "TlsConfig",
    "WardstreamConfig",
    "absolute_sqlite_url",
    "dump_config",
    "lint_file",
    "load_config",
    "parse_config",
]
