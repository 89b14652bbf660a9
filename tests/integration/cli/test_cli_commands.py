"""The ``wardstream`` command as a user runs it: a real child process each time."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]


def wardstream(*args: str, cwd: Path, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )


def test_lint_points_at_the_line_of_each_problem(tmp_path):
    config = tmp_path / "wardstream.yaml"
    config.write_text(
        "bus:\n"
        "  url: sqlite:///var/bus.db\n"
        "channels:\n"
        "  - name: adt-in\n"
        "    source:\n"
        "      type: mllp\n"
        "      port: 99999\n"
        "      colour: blue\n"
    )
    result = wardstream("lint", str(config), cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    port_error = rf"{re.escape(str(config))}:7:\d+: channels\[0\]\.source\.port"
    assert any(re.match(port_error, ln) for ln in lines)
    assert any(":8:" in ln and "colour" in ln for ln in lines)


def test_lint_accepts_the_shipped_example(tmp_path):
    result = wardstream("lint", str(ROOT / "deploy" / "examples" / "wardstream.yaml"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith(": ok")


def test_schema_check_passes_on_the_committed_schemas_and_fails_on_stale(tmp_path):
    assert wardstream("schema", "--check", cwd=ROOT).returncode == 0
    stale = tmp_path / "schemas"
    assert wardstream("schema", "--out", str(stale), cwd=tmp_path).returncode == 0
    (stale / "config.schema.json").write_text("{}\n")
    result = wardstream("schema", "--check", "--out", str(stale), cwd=tmp_path)
    assert result.returncode == 1
    assert "config.schema.json" in result.stdout


def test_up_refuses_a_bad_config_with_its_line(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("http:\n  port: eighty\n")
    result = wardstream("up", "-c", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert "bad.yaml:2:" in result.stderr
    assert "http.port" in result.stderr


def test_demo_streams_the_simulated_hospital_into_the_census(tmp_path):
    config = tmp_path / "demo.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "data_dir": str(tmp_path / "var"),
                "http": {"port": 0},
                "channels": [{"name": "demo", "source": {"type": "mllp", "port": 0}}],
            }
        )
    )
    result = wardstream(
        "demo", "-c", str(config), "--duration", "6", "--speed", "7200", cwd=tmp_path, timeout=120
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    out = result.stdout
    assert "census at http://127.0.0.1:" in out
    final = [ln for ln in out.splitlines() if "occupied beds" in ln][-1]
    received = int(re.search(r"messages in\s+(\d+)", final).group(1))
    occupied = int(re.search(r"occupied beds\s+(\d+)/(\d+)", final).group(1))
    assert received > 50
    assert 0 < occupied <= int(re.search(r"occupied beds\s+\d+/(\d+)", final).group(1))
    assert (tmp_path / "var" / "demo" / "bus.db").exists()
