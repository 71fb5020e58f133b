"""The README's Python snippets run exactly as written against ``renkei up --demo --ready-file
box.json`` (started in a fresh directory, which is also the snippets' working directory, so
``box.json`` resolves as the README says)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def snippets() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


@pytest.fixture(scope="module")
def cwd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    here = tmp_path_factory.mktemp("readme")
    log = (here / "up.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "renkei.cli", "up", "--demo", "--ready-file", "box.json",
                             "--base-port", "0"], cwd=here, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 120
    while not (here / "box.json").exists():
        assert proc.poll() is None and time.monotonic() < deadline, (here / "up.log").read_text()
        time.sleep(0.05)
    yield here
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0, (here / "up.log").read_text()


def run(code: str, cwd: Path) -> str:
    r = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"{code}\n---\n{r.stderr}"
    return r.stdout


def test_readme_has_the_snippets_it_promises() -> None:
    assert len(snippets()) == 3


def test_first_snippet_finds_the_demo_digital_agency(cwd: Path) -> None:
    assert run(snippets()[0], cwd).strip() == "デジタル庁"


def test_exchange_snippet_brings_the_mayors_data(cwd: Path) -> None:
    from renkei.service.demo import _duplicates

    want = next(json.loads(d.payload_json) for d in _duplicates(1, range(7, 8))
                if d.item == "local_tax_info" and d.fiscal_year == 2025)["市町村民税額"]
    first, second = run(snippets()[1], cwd).splitlines()
    assert first == f"provided {want}", first
    assert re.fullmatch(r"照会 record \d+ 提供 record \d+", second), second


def test_embedding_snippet_runs_in_the_working_directory(cwd: Path) -> None:
    run(snippets()[2], cwd)
    assert (cwd / "demo-jlis" / "keys" / "jlis-number.key").exists()
