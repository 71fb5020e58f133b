"""A real ``renkei serve`` process on loopback for the gRPC tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc

from renkei import client


@dataclass
class RunningServer:
    proc: subprocess.Popen[str]
    data_dir: Path
    port: int
    public_port: int
    metrics_port: int

    @property
    def target(self) -> str:
        return f"localhost:{self.port}"

    @property
    def public_target(self) -> str:
        return f"localhost:{self.public_port}"

    def channel(self, principal: str) -> grpc.Channel:
        return client.principal_channel(principal, data_dir=self.data_dir, target=self.target)  # type: ignore[return-value]

    def public(self) -> grpc.Channel:
        return client.public_channel(self.public_target, data_dir=self.data_dir)  # type: ignore[return-value]

    def terminate(self, timeout: float = 20) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out


def start_server(data_dir: Path, *extra: str, timeout: float = 30) -> RunningServer:
    ready = data_dir.parent / f"{data_dir.name}.ready.json"
    ready.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "renkei.cli",
            "serve",
            "--data-dir",
            str(data_dir),
            "--port",
            "0",
            "--public-port",
            "0",
            "--metrics-port",
            "0",
            "--ready-file",
            str(ready),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"server did not start:\n{proc.communicate()[0]}")
        time.sleep(0.05)
    info = json.loads(ready.read_text())
    return RunningServer(proc, data_dir, info["port"], info["public_port"], info["metrics_port"])
