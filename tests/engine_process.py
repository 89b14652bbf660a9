"""Run ``wardstream up`` as a real child process for integration tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from tests.ports import free_port


@dataclass
class EngineProcess:
    """One engine child process with its own data dir, MLLP and HTTP ports."""

    data_dir: Path
    bus_url: str | None = None
    bus: dict[str, object] = field(default_factory=dict)
    extra: dict[str, object] = field(default_factory=dict)
    mllp_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def config_path(self) -> Path:
        return self.data_dir / "wardstream.yaml"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "engine.log"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def write_config(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config: dict[str, object] = {
            "data_dir": str(self.data_dir),
            "bus": {"url": self.bus_url or f"sqlite:///{self.data_dir / 'bus.db'}", **self.bus},
            "http": {"host": "127.0.0.1", "port": self.http_port},
            "log": {"level": "info", "format": "json"},
            "channels": [
                {
                    "name": "adt-in",
                    "source": {"type": "mllp", "host": "127.0.0.1", "port": self.mllp_port},
                }
            ],
        }
        config.update(self.extra)
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))

    def start(self, timeout: float = 30.0) -> None:
        self.write_config()
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "engine.cli", "up", "-c", str(self.config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"engine exited {self.proc.returncode}: {self.log_tail()}")
            try:
                if self.get("/readyz", timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"engine not ready in {timeout}s: {self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def get(self, path: str, *, timeout: float = 5.0) -> httpx.Response:
        return httpx.get(f"{self.http}{path}", timeout=timeout)
