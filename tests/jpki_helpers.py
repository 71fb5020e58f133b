"""JPKI data directories, cards and a real responder process for the JPKI tests."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from renkei.jpki.ca import Jpki
from renkei.jpki.card import Card, issue_card
from renkei.jpki.profile import BasicFacts

FACTS = BasicFacts("山田 太郎", dt.date(1984, 2, 29), "1", "東京都千代田区霞が関二丁目1番2号")
AUTH_PIN = "1234"
SIGN_PIN = "ABC123"


def new_card(jpki: Jpki, path: Path, facts: BasicFacts = FACTS, *, sign: bool = True,
             now: dt.datetime | None = None) -> Card:
    return issue_card(jpki, path, facts, AUTH_PIN, SIGN_PIN if sign else None, now)


@dataclass
class Responder:
    """``renkei jpki serve`` as a child process on a free loopback port."""

    proc: subprocess.Popen[bytes]
    http: str
    log: Path

    def url(self, kind: str = "auth") -> str:
        return f"http://{self.http}/ocsp/{kind}"

    def base(self) -> str:
        return f"http://{self.http}"

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


def start_responder(jpki_dir: Path, *extra: str, timeout: float = 60) -> Responder:
    ready = jpki_dir.parent / f"{jpki_dir.name}.ready.json"
    ready.unlink(missing_ok=True)
    log = jpki_dir.parent / f"{jpki_dir.name}.serve.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "renkei.cli", "jpki", "serve", "--data-dir", str(jpki_dir), "--port", "0",
         "--ready-file", str(ready), *extra],
        stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"renkei jpki serve did not start:\n{log.read_text(errors='replace')}")
        time.sleep(0.05)
    info = json.loads(ready.read_text())
    assert info["pid"] == proc.pid and Path(info["data_dir"]) == jpki_dir.resolve()
    return Responder(proc, str(info["http"]), log)
