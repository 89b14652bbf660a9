"""Config validation: every problem reported as FILE:LINE:COL: path: message."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from engine.config import ConfigError, LintIssue, WardstreamConfig, lint_file, load_config

EXAMPLE = Path(__file__).resolve().parents[3] / "deploy" / "examples" / "wardstream.yaml"


def lint(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "wardstream.yaml"
    path.write_text(text, encoding="utf-8")
    return [str(issue).removeprefix(f"{tmp_path}/") for issue in lint_file(path)]


def test_example_config_lints_clean() -> None:
    assert lint_file(EXAMPLE) == []


def test_value_error_points_at_the_value(tmp_path: Path) -> None:
    text = """\
http:
  port: 8080
channels:
  - name: adt-in
    source:
      type: mllp
      port: 70000
"""
    assert lint(tmp_path, text) == [
        "wardstream.yaml:7:13: channels[0].source.port: Input should be less than or equal to 65535"
    ]


def test_unknown_keys_point_at_the_key_and_suggest_a_name(tmp_path: Path) -> None:
    text = """\
htp:
  port: 1
channels:
  - name: a
    source:
      type: mllp
      hots: 127.0.0.1
"""
    assert lint(tmp_path, text) == [
        "wardstream.yaml:1:1: htp: unknown setting 'htp'; did you mean 'http'?",
        "wardstream.yaml:7:7: channels[0].source.hots:"
        " unknown setting 'hots'; did you mean 'host'?",
    ]


def test_every_problem_is_reported_in_file_order(tmp_path: Path) -> None:
    text = """\
bus:
  url: sqllite:///x
  synchronous: always
  kafka:
    heartbeat_interval_ms: 20000
log: {level: verbose}
channels:
  - name: Bad Name
  - name: ok
    source: {type: file}
  - source: {type: mllp}
runtime:
  batch_size: 0
"""
    assert lint(tmp_path, text) == [
        "wardstream.yaml:2:8: bus.url: expected sqlite:///PATH or kafka://HOST:PORT[,HOST:PORT],"
        " got 'sqllite:///x'",
        "wardstream.yaml:3:16: bus.synchronous: Input should be 'full' or 'normal'",
        "wardstream.yaml:5:28: bus.kafka.heartbeat_interval_ms:"
        " must be lower than session_timeout_ms (10000)",
        "wardstream.yaml:6:14: log.level: Input should be 'debug', 'info', 'warning' or 'error'",
        "wardstream.yaml:8:11: channels[0].name:"
        " String should match pattern '^[a-z0-9][a-z0-9_-]*$'",
        "wardstream.yaml:10:13: channels[1].source: Input tag 'file' found using 'type'"
        " does not match any of the expected tags: 'mllp'",
        "wardstream.yaml:11:5: channels[2].name: Field required",
        "wardstream.yaml:13:15: runtime.batch_size: Input should be greater than or equal to 1",
    ]


def test_duplicate_names_and_ports_are_all_reported(tmp_path: Path) -> None:
    text = """\
http: {host: 0.0.0.0, port: 8080}
channels:
  - name: adt
    source: {type: mllp, port: 2575}
  - name: adt
    source: {type: mllp, port: 2575}
  - name: web
    source: {type: mllp, port: 8080}
  - name: other-host
    source: {type: mllp, host: 10.0.0.5, port: 2575}
"""
    assert lint(tmp_path, text) == [
        "wardstream.yaml:5:11: channels[1].name:"
        " channel name 'adt' is already taken by channels[0]",
        "wardstream.yaml:6:32: channels[1].source.port:"
        " port 2575 on 127.0.0.1 is already used by channels[0] (adt)",
        "wardstream.yaml:8:32: channels[2].source.port:"
        " port 8080 on 127.0.0.1 is already used by http",
    ]


def test_missing_source_still_gets_a_position(tmp_path: Path) -> None:
    text = "channels:\n  - name: a\n  - name: b\n"
    assert lint(tmp_path, text) == [
        "wardstream.yaml:3:5: channels[1].source.port:"
        " port 2575 on 127.0.0.1 is already used by channels[0] (a)"
    ]


def test_yaml_syntax_error_has_a_line(tmp_path: Path) -> None:
    text = "http:\n  port: 8080\n channels: [\n"
    [issue] = lint(tmp_path, text)
    assert issue.startswith("wardstream.yaml:3:")
    assert "YAML syntax error" in issue


@pytest.mark.parametrize(
    ("text", "kind"), [("- a\n- b\n", "list"), ("just text\n", "str"), ("42\n", "int")]
)
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str, kind: str) -> None:
    assert lint(tmp_path, text) == [
        f"wardstream.yaml:1:1: the top level must be a mapping of settings, not a {kind}"
    ]


def test_duplicate_keys_are_errors(tmp_path: Path) -> None:
    text = "runtime:\n  batch_size: 10\n  batch_size: 20\n"
    assert lint(tmp_path, text) == [
        "wardstream.yaml:3:3: runtime.batch_size:"
        " duplicate key 'batch_size' (first given on line 2)"
    ]


def test_positions_follow_anchors_and_merge_keys(tmp_path: Path) -> None:
    text = """\
defaults: &mllp
  type: mllp
  port: 99999
channels:
  - name: a
    source:
      <<: *mllp
      host: 127.0.0.1
"""
    assert lint(tmp_path, text) == [
        "wardstream.yaml:1:1: defaults: unknown setting 'defaults'",
        "wardstream.yaml:3:9: channels[0].source.port: Input should be less than or equal to 65535",
    ]


def test_kafka_url_with_several_brokers_is_valid(tmp_path: Path) -> None:
    assert lint(tmp_path, "bus: {url: 'kafka://k1:9092,k2:9093'}\n") == []
    assert lint(tmp_path, "bus: {url: 'kafka://k1'}\n") == [
        "wardstream.yaml:1:12: bus.url: expected sqlite:///PATH or kafka://HOST:PORT[,HOST:PORT],"
        " got 'kafka://k1'"
    ]


def test_log_level_is_case_insensitive(tmp_path: Path) -> None:
    assert lint(tmp_path, "log: {level: WARNING}\n") == []


def test_config_error_lists_every_issue(tmp_path: Path) -> None:
    path = tmp_path / "ws.yaml"
    path.write_text("http: {port: -1}\nruntime: {max_pending_frames: 0}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert [type(i) for i in caught.value.issues] == [LintIssue, LintIssue]
    assert str(caught.value).splitlines() == [
        f"{path}:1:14: http.port: Input should be greater than or equal to 0",
        f"{path}:2:31: runtime.max_pending_frames: Input should be greater than or equal to 1",
    ]


def test_lint_ignores_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARDSTREAM_HTTP_PORT", "not-a-port")
    assert lint(tmp_path, "") == []


def _models(model: type[BaseModel], seen: set[type[BaseModel]]) -> set[type[BaseModel]]:
    seen.add(model)
    for field in model.model_fields.values():
        for sub in _nested(field.annotation):
            if sub not in seen:
                _models(sub, seen)
    return seen


def _nested(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in getattr(annotation, "__args__", ()) for m in _nested(arg)]


def test_every_setting_has_a_description() -> None:
    models = _models(WardstreamConfig, set())
    assert len(models) >= 9
    undocumented = [
        f"{model.__name__}.{name}"
        for model in models
        for name, field in model.model_fields.items()
        if not field.description
    ]
    assert undocumented == []
    assert all(model.model_config.get("extra") == "forbid" for model in models)
