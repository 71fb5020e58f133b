"""A real box (``renkei up --demo``: every service its own process) on loopback for the gRPC tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from renkei import client


@dataclass
class RunningBox:
    proc: subprocess.Popen[bytes]
    root: Path
    info: dict[str, Any]
    log: Path

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def box(self) -> client.Box:
        return client.Box(self.info["services"], Path(self.info["pki"]))

    def service(self, name: str) -> dict[str, Any]:
        return dict(self.info["services"][name])

    def data_dir(self, name: str) -> Path:
        return self.root / name

    def target(self, service: str = "core", kind: str = "grpc") -> str:
        return str(self.info["services"][service][kind])

    def channel(self, principal: str, service: str = "core") -> grpc.Channel:
        return client.principal_channel(principal, self.target(service), pki=self.pki)  # type: ignore[return-value]

    def public(self, service: str = "nta") -> grpc.Channel:
        return client.public_channel(self.target(service, "public_grpc"), ca=self.pki / "ca.pem")  # type: ignore[return-value]

    def metrics_port(self, service: str) -> int:
        return int(self.info["services"][service]["metrics"].rsplit(":", 1)[1])

    def pid(self, service: str) -> int:
        return int(self.info["services"][service]["pid"])

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def terminate(self, timeout: float = 60) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=timeout)
        return self.proc.returncode, self.output()


def start_box(root: Path, *extra: str, timeout: float = 120, demo: bool = True, persons: int = 0,
              env: dict[str, str] | None = None) -> RunningBox:
    """``renkei up`` on ``root`` with free ports; returns once every service is serving. With
    ``persons``, the demo population of that size is registered (agencies only by default)."""
    ready = root.parent / f"{root.name}.ready.json"
    ready.unlink(missing_ok=True)
    log = root.parent / f"{root.name}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "renkei.cli", "up", "--dir", str(root), "--base-port", "0",
         "--ready-file", str(ready), *(["--demo", "--demo-persons", str(persons)] if demo else []), *extra],
        stdout=log.open("wb"),  # a file, not a pipe: a full pipe would stall the services' logging
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"renkei up did not start:\n{log.read_text(errors='replace')}")
        time.sleep(0.05)
    return RunningBox(proc, root, json.loads(ready.read_text()), log)
