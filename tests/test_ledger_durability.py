"""Crash and tamper tests of the provision ledger.

Crash: a real writer process (its write-ahead log rotating every MiB) is killed with SIGKILL at
random moments during batched appends, 50 times. After each restart every acknowledged record
is present and verifies, the tree is consistent with every checkpoint published before, and
`renkei ledger verify` passes.

Tamper: flipping any single byte of any entry bundle, tile, checkpoint (and index) file is
caught by `renkei ledger verify`, which names the damaged record or file.
"""

from __future__ import annotations

import base64
import dataclasses
import itertools
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from renkei import cli, ledger
from renkei.errors import LedgerDamageError, NotFoundError
from renkei.ledger import Ledger
from tests.datadirs import core_dir
from tests.ledger_helpers import make_record

TESTS = Path(__file__).parent
CYCLES = 50
SEGMENT = 65_536  # records per pseudonym-index segment (store.rs)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # The writer imports tests.datadirs: the repository root is on its path whatever PYTHONPATH was.
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(TESTS.parent), env.get("PYTHONPATH", "")])
    return env


def test_sigkill_during_batched_appends(tmp_path: Path) -> None:
    rng = random.Random(20261126)
    # Start just short of a full index segment, so kills also land around sealing its run.
    seed = Ledger(core_dir(tmp_path))
    res = seed.append_batch([make_record(i) for i in range(SEGMENT - 2500)])
    seed.close()
    acked_end = res.first_seq + res.count
    checkpoints: list[ledger.Checkpoint] = [res.checkpoint]
    for cycle in range(CYCLES):
        child = subprocess.Popen(
            [sys.executable, str(TESTS / "ledger_crash_writer.py"), str(tmp_path), str(cycle)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), text=True,
        )
        assert child.stdout is not None
        if cycle % 5 == 4:
            # Some kills land while the child is still starting or recovering in open().
            time.sleep(rng.uniform(0.1, 0.5))
        else:
            line = child.stdout.readline()
            assert line == "ready\n", child.stderr.read() if child.stderr else line
            time.sleep(rng.uniform(0.0, 0.08))
        child.send_signal(signal.SIGKILL)
        out, _err = child.communicate()
        assert child.returncode == -signal.SIGKILL
        lines = out.split("\n")
        # Only newline-terminated lines were printed whole; the last piece may be cut by the kill.
        for ln in lines[:-1]:
            if ln == "ready":
                continue
            tag, first_s, count_s, note_b64 = ln.split(" ")
            assert tag == "ack"
            first, count = int(first_s), int(count_s)
            assert first >= acked_end  # nothing acknowledged was rolled back
            acked_end = max(acked_end, first + count)
            checkpoints.append(ledger.Checkpoint.from_note(base64.b64decode(note_b64).decode()))

        # Read-only verify passes even before recovery: a torn tail beyond the checkpoint is inert.
        vkey_file = tmp_path / "ledger" / "vkey"
        if vkey_file.exists():
            ledger.verify_ledger_dir(tmp_path / "ledger", vkey_file.read_text().strip())
        lg = Ledger(core_dir(tmp_path))  # recovery runs here
        assert lg.size >= acked_end
        # Every acknowledged record is present, intact, and provably in the tree.
        for seq in {0, acked_end - 1, *rng.sample(range(max(acked_end, 1)), min(acked_end, 20))}:
            if seq < 0 or seq >= acked_end:
                continue
            got = lg.get(seq)
            assert got == dataclasses.replace(make_record(seq), seq=seq)
            lg.prove_inclusion(seq).verify()
        # The durable history holds acknowledged checkpoints at least 256 records apart (plus
        # the latest), nothing beyond what the ledger's tree says; each acknowledged checkpoint
        # is either stored exactly as published or not found.
        hist = lg.checkpoints()
        history = {c.size: c for c in hist}
        assert hist[-1] == lg.checkpoint()
        assert all(b.size - a.size >= 256 for a, b in itertools.pairwise(hist[:-1]))
        for cp in checkpoints:
            if cp.size in history:
                assert history[cp.size] == cp
                assert lg.checkpoint_at(cp.size) == cp
            else:
                with pytest.raises(NotFoundError):
                    lg.checkpoint_at(cp.size)
        assert all(lg._l.root_at(c.size) == c.root for c in history.values())
        # Consistent with every checkpoint published before.
        for cp in checkpoints:
            ledger.verify_checkpoint(cp.note, lg.vkey)
            assert lg._l.root_at(cp.size) == cp.root
            if cp.size:
                p = lg.prove_consistency(cp.size)
                ledger.verify_consistency(cp.size, p.size2, cp.root, p.root2, p.hashes)
        lg.close()
        assert cli.main(["ledger", "verify", "--data-dir", str(tmp_path)]) == 0
        if cycle % 10 == 9:
            cmd = [sys.executable, "-m", "renkei.cli", "ledger", "verify", "--data-dir", str(tmp_path)]
            r = subprocess.run(cmd, capture_output=True, text=True, env=_env())
            assert r.returncode == 0, r.stderr
    assert acked_end > SEGMENT + 2000
    # The index runs cover the full segments exactly, merged (at most one run per one-bit).
    lg = Ledger(core_dir(tmp_path))
    lg._l.settle_index()
    full = lg.size // SEGMENT
    lg.close()
    names = os.listdir(tmp_path / "ledger" / "index" / "run")
    runs = sorted((int(a), int(b)) for a, b in (n.split("-") for n in names))
    assert sum(c for _f, c in runs) == full and len(runs) <= bin(full).count("1"), runs
    assert len(checkpoints) > CYCLES  # the kills landed at many different moments


def _build(d: Path, batches: tuple[int, ...]) -> Path:
    lg = Ledger(core_dir(d))
    for b in batches:
        n = lg.size
        lg.append_batch([make_record(n + i) for i in range(b)])
    lg.verify()
    lg.close()
    return d


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 1,500 records: full and partial bundles and level-0 tiles, a partial level-1 tile.
    return _build(tmp_path_factory.mktemp("tamper"), (1, 300, 250, 949))


def _ledger_files(root: Path) -> list[Path]:
    led = root / "ledger"
    return sorted(p for p in led.rglob("*") if p.is_file() and p.name not in ("origin", "vkey", "lock", "LOCK"))


def _flip_and_check(led: Path, p: Path, positions: list[int], rng: random.Random) -> int:
    rel = str(p.relative_to(led))
    vkey = (led / "vkey").read_text().strip()
    data = p.read_bytes()
    for pos in positions:
        bad = bytearray(data)
        bad[pos] ^= rng.randrange(1, 256)
        p.write_bytes(bad)
        try:
            with pytest.raises(LedgerDamageError) as e:
                ledger.verify_ledger_dir(led, vkey)
            assert e.value.path == rel, (rel, pos, str(e.value))
            if rel.startswith("tile/entries/"):
                first = int(rel.split("/")[2].split(".")[0]) * 256
                assert e.value.record is not None and first <= e.value.record < first + 256, (rel, pos)
        finally:
            p.write_bytes(data)
    return len(positions)


def test_tamper_any_byte_is_named(built: Path) -> None:
    rng = random.Random(5)
    led = built / "ledger"
    files = _ledger_files(built)
    rels = {str(p.relative_to(led)) for p in files}
    want = {"checkpoint", "checkpoints", "format", "open/0", "wal/" + "0" * 20, "tile/entries/005.p/220",
            "tile/0/005.p/220", "tile/1/000.p/5"}
    assert want <= rels
    flips = 0
    for p in files:
        n = p.stat().st_size
        # Exhaustive for small files (the checkpoint, upper tiles), sampled for the rest.
        positions = list(range(n)) if n <= 400 else sorted({0, 1, n - 1, *rng.sample(range(n), 60)})
        flips += _flip_and_check(led, p, positions, rng)
    assert flips > 900
    assert cli.main(["ledger", "verify", "--data-dir", str(built)]) == 0


def test_tamper_upper_tile_levels(tmp_path: Path) -> None:
    # 70,000 records (the tlog-tiles example): full level-1 tile, partial level-1 and level-2.
    d = _build(tmp_path, (1000, 69000))
    led = d / "ledger"
    rng = random.Random(7)
    files = _ledger_files(d)
    rels = [str(p.relative_to(led)) for p in files]
    assert {"tile/1/000", "tile/1/001.p/17", "tile/2/000.p/1", "tile/0/273.p/112", "index/run/0-1", "open/1",
            "checkpoints"} <= set(rels)
    upper = [p for p, r in zip(files, rels, strict=True) if not r.startswith(("tile/0/", "tile/entries/"))]
    some = rng.sample([p for p in files if p not in upper], 6)
    for p in upper + some:
        n = p.stat().st_size
        _flip_and_check(led, p, sorted({0, n - 1, *rng.sample(range(n), min(n, 4))}), rng)


def test_verify_cli_names_damage_and_exits_nonzero(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = built / "ledger" / "tile" / "entries" / "001"
    data = p.read_bytes()
    p.write_bytes(data[:100] + bytes([data[100] ^ 0x40]) + data[101:])
    try:
        assert cli.main(["ledger", "verify", "--data-dir", str(built)]) == 1
        err = capsys.readouterr().err
        assert "record 2" in err and "tile/entries/001" in err
    finally:
        p.write_bytes(data)
