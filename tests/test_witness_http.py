"""The witness (``renkei witness serve``, a real process) against a client written from the
C2SP specifications (tests/tlog_witness_spec.py): every status of tlog-witness's add-checkpoint,
cosignature/v1 verified by the client with the witness's vkey, the monitoring endpoint, the
compare-and-set under concurrent requests, and state kept across a restart."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.tlog_witness_spec import SpecLog, WitnessClient, WitnessKey, body, now

LOGS = 12
NAME = "ppc.test/witness"


@dataclass
class RunningWitness:
    proc: subprocess.Popen[bytes]
    info: dict[str, object]
    data_dir: Path
    log: Path

    @property
    def host_port(self) -> tuple[str, int]:
        host, port = str(self.info["http"]).rsplit(":", 1)
        return host, int(port)

    def client(self) -> WitnessClient:
        return WitnessClient(*self.host_port)

    @property
    def key(self) -> WitnessKey:
        return WitnessKey.from_vkey(str(self.info["vkey"]))

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)


def spec_logs() -> list[SpecLog]:
    return [SpecLog(f"log{i}.test/ledger", hashlib.sha256(b"spec log %d" % i).digest()) for i in range(LOGS)]


def start_witness(data_dir: Path, logs: list[SpecLog]) -> RunningWitness:
    ready = data_dir.parent / f"{data_dir.name}.ready.json"
    ready.unlink(missing_ok=True)
    log = data_dir.parent / f"{data_dir.name}.log"
    args = [sys.executable, "-m", "renkei.cli", "witness", "serve", "--data-dir", str(data_dir), "--port", "0",
            "--ready-file", str(ready), "--name", NAME]
    for lg in logs:
        args += ["--log", f"{lg.origin}={lg.vkey}"]
    proc = subprocess.Popen(args, stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 60
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(log.read_text())
        time.sleep(0.05)
    return RunningWitness(proc, json.loads(ready.read_text()), data_dir, log)


@pytest.fixture(scope="module")
def logs() -> list[SpecLog]:
    return spec_logs()


@pytest.fixture(scope="module")
def witness(tmp_path_factory: pytest.TempPathFactory, logs: list[SpecLog]) -> Iterator[RunningWitness]:
    d = tmp_path_factory.mktemp("witness") / "w"
    subprocess.run([sys.executable, "-m", "renkei.cli", "witness", "init", "--data-dir", str(d), "--name", NAME],
                   check=True, capture_output=True)
    w = start_witness(d, logs)
    yield w
    assert w.stop() == 0, w.log.read_text()


def test_ready_file_and_vkey_command(witness: RunningWitness) -> None:
    out = subprocess.run([sys.executable, "-m", "renkei.cli", "witness", "vkey", "--data-dir", str(witness.data_dir)],
                         check=True, capture_output=True, text=True).stdout.strip()
    assert out == witness.info["vkey"]
    assert witness.key.name == NAME
    assert witness.info["pid"] == witness.proc.pid
    key = witness.data_dir / "keys" / "witness-key.key"
    assert key.stat().st_mode & 0o777 == 0o600 and witness.data_dir.stat().st_mode & 0o777 == 0o700


def test_first_checkpoint_then_growth_with_a_consistency_proof(witness: RunningWitness, logs: list[SpecLog]) -> None:
    lg, c = logs[0], witness.client()
    lg.append(10)
    a = c.add_checkpoint(body(0, [], lg.checkpoint(10)))
    assert a.status == 200, a.body
    witness.key.verify_cosignatures(a.body, lg.text(10), now=now())
    lg.append(7)
    a = c.add_checkpoint(body(10, lg.proof(10, 17), lg.checkpoint(17)))
    assert a.status == 200, a.body
    witness.key.verify_cosignatures(a.body, lg.text(17), now=now())
    # The same checkpoint again (old = size, same root): cosigned again, with a fresh timestamp.
    a = c.add_checkpoint(body(17, [], lg.checkpoint(17)))
    assert a.status == 200, a.body
    # The monitoring endpoint: the latest cosigned checkpoint, log signature and cosignature.
    m = c.get(f"/{hashlib.sha256(lg.origin.encode()).hexdigest()}/checkpoint")
    assert m.status == 200
    text, sigs = m.body.decode().split("\n\n", 1)
    assert text + "\n" == lg.text(17)
    assert lg.sign(lg.text(17)) in sigs
    witness.key.verify_cosignatures(sigs.encode(), lg.text(17))
    assert c.get(f"/{hashlib.sha256(b'never.test/log').hexdigest()}/checkpoint").status == 404
    c.close()


def test_404_unknown_origin(witness: RunningWitness) -> None:
    stranger = SpecLog("stranger.test/log", hashlib.sha256(b"stranger").digest())
    stranger.append(3)
    assert witness.client().add_checkpoint(body(0, [], stranger.checkpoint(3))).status == 404


def test_403_no_trusted_signature_or_a_failing_one(witness: RunningWitness, logs: list[SpecLog]) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    lg, c = logs[1], witness.client()
    lg.append(5)
    text = lg.text(5)
    other = Ed25519PrivateKey.generate()
    # Signed only by an unknown key with the log's name: no trusted signature.
    assert c.add_checkpoint(body(0, [], text + "\n" + lg.sign(text, key=other))).status == 403
    # The trusted key's line with a signature that fails (the note is malformed).
    assert c.add_checkpoint(body(0, [], text + "\n" + lg.sign(text, corrupt=True))).status == 403
    # A failing trusted signature is not excused by a good one beside it.
    assert c.add_checkpoint(body(0, [], text + "\n" + lg.sign(text) + lg.sign(text, corrupt=True))).status == 403
    # Unknown keys' signatures are ignored: a good one plus a stranger's is cosigned.
    a = c.add_checkpoint(body(0, [], lg.checkpoint(5, extra_sigs=lg.sign(text, name="someone.else/key", key=other))))
    assert a.status == 200, a.body
    witness.key.verify_cosignatures(a.body, text)


def test_400_old_larger_than_the_checkpoint(witness: RunningWitness, logs: list[SpecLog]) -> None:
    lg, c = logs[2], witness.client()
    lg.append(4)
    assert c.add_checkpoint(body(5, [], lg.checkpoint(4))).status == 400
    for bad in (b"", b"old 0\n", b"old 01\n\n" + lg.checkpoint(4).encode(), b"new 0\n\n" + lg.checkpoint(4).encode(),
                b"old 0\nnot base64!\n\n" + lg.checkpoint(4).encode()):
        assert c.add_checkpoint(bad).status == 400, bad


def test_409_with_the_witness_size(witness: RunningWitness, logs: list[SpecLog]) -> None:
    lg, c = logs[3], witness.client()
    lg.append(8)
    assert c.add_checkpoint(body(0, [], lg.checkpoint(8))).status == 200
    lg.append(4)
    for old in (0, 5, 11):
        a = c.add_checkpoint(body(old, lg.proof(old, 12), lg.checkpoint(12)))
        assert a.status == 409
        assert a.content_type == "text/x.tlog.size"
        assert a.body == b"8\n"
    # The client retries from the size it was told.
    assert c.add_checkpoint(body(8, lg.proof(8, 12), lg.checkpoint(12))).status == 200


def test_422_bad_proofs_and_a_split_view(witness: RunningWitness, logs: list[SpecLog]) -> None:
    lg, c = logs[4], witness.client()
    lg.append(6)
    # A proof from old size 0 must be empty.
    assert c.add_checkpoint(body(0, [lg.root(3)], lg.checkpoint(6))).status == 422
    # A size-0 checkpoint must have the empty tree's root.
    assert c.add_checkpoint(body(0, [], lg.checkpoint(0, root=b"\x01" * 32))).status == 422
    assert c.add_checkpoint(body(0, [], lg.checkpoint(6))).status == 200
    lg.append(10)
    good = lg.proof(6, 16)
    # A proof that does not verify: a hash flipped, one missing, one too many.
    flipped = [good[0][:-1] + bytes([good[0][-1] ^ 1]), *good[1:]]
    for proof in (flipped, good[:-1], [*good, good[0]]):
        assert c.add_checkpoint(body(6, proof, lg.checkpoint(16))).status == 422
    # A forked log: same size 6, another root (a split view) — refused, 422 per tlog-witness.
    fork = SpecLog(lg.origin, lg.seed, [b"forked"] * 6)
    assert c.add_checkpoint(body(6, [], fork.checkpoint(6))).status == 422
    # ... and a fork that grew: its proof cannot tie it to what was cosigned.
    fork.append(10)
    assert c.add_checkpoint(body(6, fork.proof(6, 16), fork.checkpoint(16))).status == 422
    # The honest log still goes on from 6.
    assert c.add_checkpoint(body(6, good, lg.checkpoint(16))).status == 200


def test_compare_and_set_under_concurrent_requests(witness: RunningWitness, logs: list[SpecLog]) -> None:
    lg = logs[5]
    lg.append(20)
    assert witness.client().add_checkpoint(body(0, [], lg.checkpoint(20))).status == 200
    lg.append(40)
    sizes = list(range(21, 61))

    def submit(size: int) -> int:
        c = witness.client()
        try:
            return c.add_checkpoint(body(20, lg.proof(20, size), lg.checkpoint(size))).status
        finally:
            c.close()

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(submit, sizes))
    assert statuses.count(200) == 1 and statuses.count(409) == len(sizes) - 1, statuses
    winner = sizes[statuses.index(200)]
    a = witness.client().add_checkpoint(body(0, [], lg.checkpoint(60)))
    assert a.status == 409 and a.body == f"{winner}\n".encode()


def test_state_survives_a_restart(tmp_path: Path) -> None:
    logs = spec_logs()
    d = tmp_path / "w"
    subprocess.run([sys.executable, "-m", "renkei.cli", "witness", "init", "--data-dir", str(d), "--name", NAME],
                   check=True, capture_output=True)
    w = start_witness(d, logs[:1])
    lg = logs[0]
    lg.append(9)
    assert w.client().add_checkpoint(body(0, [], lg.checkpoint(9))).status == 200
    vkey = w.info["vkey"]
    assert w.stop() == 0
    w = start_witness(d, logs[:1])
    try:
        assert w.info["vkey"] == vkey  # the key was kept, not recreated
        a = w.client().add_checkpoint(body(0, [], lg.checkpoint(9)))
        assert (a.status, a.body) == (409, b"9\n")
    finally:
        assert w.stop() == 0


def test_serve_refuses_an_uninitialised_directory(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "renkei.cli", "witness", "serve", "--data-dir", str(tmp_path / "none"),
                        "--port", "0"], capture_output=True, text=True)
    assert r.returncode == 1 and "renkei witness init" in r.stderr
    assert not (tmp_path / "none").exists()
