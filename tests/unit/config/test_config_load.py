"""Loading configuration: defaults, files, the environment, and YAML round trips."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from engine.config import (
    ChannelConfig,
    ConfigError,
    HttpConfig,
    MllpSourceConfig,
    WardstreamConfig,
    dump_config,
    load_config,
    parse_config,
)

EXAMPLE = Path(__file__).resolve().parents[3] / "deploy" / "examples" / "wardstream.yaml"


def write(tmp_path: Path, text: str, name: str = "wardstream.yaml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_empty_file_means_the_documented_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "# nothing here\n"), environ={})

    assert config.data_dir == tmp_path / "var"
    assert config.bus.url == f"sqlite:///{tmp_path}/var/bus.db"
    assert (config.http.host, config.http.port, config.http.token) == ("127.0.0.1", 8080, None)
    [channel] = config.channels
    assert channel.name == "mllp-default"
    assert (channel.source.type, channel.source.host, channel.source.port) == (
        "mllp",
        "127.0.0.1",
        2575,
    )
    assert config.log.redact_phi is True
    assert config.pipelines.normalize.enabled
    assert config.pipelines.census.enabled


def test_no_file_keeps_paths_relative_to_the_working_directory() -> None:
    config = load_config(None, environ={})
    assert config == WardstreamConfig()
    assert config.data_dir == Path("var")
    assert config.bus.url == "sqlite:///var/bus.db"


def test_relative_paths_are_resolved_against_the_config_file(tmp_path: Path) -> None:
    text = "data_dir: state\nbus: {url: 'sqlite:///state/log.db?x=1'}\n"
    nested = load_config(write(tmp_path, text, "etc/ws.yaml"), environ={})
    absolute = load_config(
        write(tmp_path, f"data_dir: {tmp_path}/abs\nbus: {{url: 'sqlite:///{tmp_path}/b.db'}}\n"),
        environ={},
    )

    assert nested.data_dir == tmp_path / "etc" / "state"
    assert nested.bus.url == f"sqlite:///{tmp_path}/etc/state/log.db?x=1"
    assert absolute.data_dir == tmp_path / "abs"
    assert absolute.bus.url == f"sqlite:///{tmp_path}/b.db"


def test_home_directory_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert parse_config("data_dir: ~/ws\n").data_dir == tmp_path / "ws"


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "http: {port: 8080}\nlog: {level: warning}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WARDSTREAM_HTTP_PORT", "9191")
    monkeypatch.setenv("WARDSTREAM_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("WARDSTREAM_HTTP_TOKEN", "s3cret-token")
    monkeypatch.setenv("WARDSTREAM_BUS_URL", "kafka://127.0.0.1:9092,127.0.0.2:9092")
    monkeypatch.setenv("WARDSTREAM_DATA_DIR", "from-env")

    config = load_config(path)

    assert config.http.port == 9191
    assert config.log.level == "debug"
    assert config.http.token == "s3cret-token"
    assert config.bus.url == "kafka://127.0.0.1:9092,127.0.0.2:9092"
    assert config.data_dir == tmp_path / "from-env"


def test_relative_paths_from_the_environment_mean_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "data_dir: in-file\n", "etc/ws.yaml")
    monkeypatch.chdir(tmp_path)
    env = {"WARDSTREAM_DATA_DIR": "state", "WARDSTREAM_BUS_URL": "sqlite:///state/bus.db"}

    config = load_config(path, environ=env)

    assert config.data_dir == tmp_path / "state"
    assert config.bus.url == f"sqlite:///{tmp_path}/state/bus.db"


def test_empty_environment_variable_counts_as_unset(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, "http: {port: 8181}\n"), environ={"WARDSTREAM_HTTP_PORT": ""}
    )
    assert config.http.port == 8181


def test_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None, environ={"WARDSTREAM_HTTP_PORT": "99999"})
    assert str(caught.value) == (
        "WARDSTREAM_HTTP_PORT (environment): http.port: Input should be less than or equal to 65535"
    )


def test_token_is_kept_out_of_repr() -> None:
    config = parse_config("http: {token: very-secret-token}\n")
    assert config.http.token == "very-secret-token"
    assert "very-secret-token" not in repr(config)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml", environ={})


def test_example_config_loads(tmp_path: Path) -> None:
    config = load_config(EXAMPLE, environ={})
    assert [c.name for c in config.channels] == ["adt-in", "lab-results"]
    assert config.data_dir == EXAMPLE.parent / "var"


def test_dump_uses_model_field_order() -> None:
    data = yaml.safe_load(dump_config(WardstreamConfig()))
    assert list(data) == list(WardstreamConfig.model_fields)
    assert list(data["bus"]) == ["url", "partitions", "synchronous", "retention_hours", "kafka"]
    assert next(iter(data["channels"][0]["source"])) == "type"


@pytest.mark.parametrize(
    "config",
    [
        WardstreamConfig(),
        WardstreamConfig(
            data_dir=Path("/srv/wardstream"),
            channels=[
                ChannelConfig(name="adt-in", strict=True),
                ChannelConfig(
                    name="lab_results",
                    source=MllpSourceConfig(host="0.0.0.0", port=2576, idle_timeout_s=2.5),
                ),
            ],
        ),
        parse_config(
            "bus: {url: 'kafka://k1:9092', retention_hours: null}\n"
            "http: {token: abc}\nchannels: []\nruntime: {shutdown_grace_s: 0}\n"
        ),
    ],
    ids=["defaults", "custom", "kafka"],
)
def test_yaml_round_trip(config: WardstreamConfig) -> None:
    text = dump_config(config)
    again = parse_config(text)
    assert again == config
    assert dump_config(again) == text


def test_loaded_config_round_trips_through_a_file(tmp_path: Path) -> None:
    original = load_config(EXAMPLE, environ={})
    copy = load_config(write(tmp_path, dump_config(original)), environ={})
    assert copy == original


def test_direct_construction_rejects_duplicate_channel_names() -> None:
    with pytest.raises(ValidationError, match="already taken by channels\\[0\\]"):
        WardstreamConfig(channels=[ChannelConfig(name="a"), ChannelConfig(name="a")])


def test_port_zero_never_conflicts() -> None:
    zero = MllpSourceConfig(port=0)
    config = WardstreamConfig(
        http=HttpConfig(port=0),
        channels=[ChannelConfig(name="a", source=zero), ChannelConfig(name="b", source=zero)],
    )
    assert [c.source.port for c in config.channels] == [0, 0]
