"""The ledger's PostgreSQL sequencer and integrator (renkei.store.tlog, docs/arch/store.md): its
tiles verify as a C2SP log; one integrator at a time, fenced by its epoch; tiles are create-once;
appends are pushed back when integration lags; and under load a kill -9 of the integrating
front-end and then of the PostgreSQL primary loses no acknowledged entry, the log goes on
consistently and the witness cosigns the next checkpoint."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from renkei._core import ledger as _l
from renkei.errors import FailedPreconditionError, LedgerDamageError, ResourceExhaustedError
from renkei.ledger import verify_checkpoint, verify_consistency, verify_log_dir
from renkei.store.tlog import PgLog, leaf_hash, split_bundle, tile_path
from tests.pg_cluster import PgCluster, pg_bindir
from tests.tlog_witness_spec import body

ORIGIN = "renkei.test/pg-ledger"
SEED = hashlib.sha256(b"renkei pg ledger test seed").digest()


def entries_of(directory: Path, size: int) -> list[bytes]:
    """Every entry of the exported log, from its bundles."""
    out: list[bytes] = []
    for n in range((size + 255) // 256):
        width = min(256, size - 256 * n)
        out.extend(split_bundle((directory / tile_path(None, n, width)).read_bytes()))
    return out


def mem_tree(entries: list[bytes]) -> _l.MemTree:
    tree = _l.MemTree()
    for e in entries:
        tree.push(e)
    return tree


def test_the_log_verifies_as_c2sp_tiles_at_every_size(tmp_path: Path, pg: PgCluster) -> None:
    log = PgLog(pg.create_database("renkei_tlog"), ORIGIN, SEED)
    assert verify_checkpoint(log.checkpoint(), log.vkey).size == 0
    with pytest.raises(FailedPreconditionError, match="not the log's integrator"):
        log.integrate()
    assert log.elect() and log.epoch == 1
    written: list[bytes] = []
    # Level-2 tiles need 65,536 entries: batches of every shape, integrated in uneven steps.
    for step, sizes in enumerate([[1], [255], [1, 3], [300] * 3, [1000] * 66, [7]]):
        for n in sizes:
            batch = [f"entry {len(written) + k} ".encode() * (1 + (len(written) + k) % 5) for k in range(n)]
            assert log.append(batch) == len(written)
            written.extend(batch)
        while log.integrate(limit=20_000) < len(written):
            pass
        out = tmp_path / f"export{step}"
        log.export(out)
        report = verify_log_dir(out, log.vkey, renkei=False)
        cp = verify_checkpoint(log.checkpoint(), log.vkey)
        assert cp.size == len(written) and report
        assert cp.root == mem_tree(written).root(len(written))
    assert entries_of(out, len(written)) == written
    assert log.tile(tile_path(2, 0, 1)) is not None  # the first level-2 tile exists
    log.close()


def test_one_integrator_at_a_time_fenced_by_its_epoch(pg: PgCluster) -> None:
    url = pg.create_database("renkei_tlog_fence")
    a, b = PgLog(url, ORIGIN, SEED), PgLog(url, ORIGIN, SEED)
    assert a.elect() and not b.elect()
    a.append([b"one"])
    assert a.integrate() == 1
    # A's session dies without A noticing (its host froze): the lock is released, B wins ...
    with pg.primary.connect("renkei_tlog_fence") as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted")
    deadline = time.monotonic() + 10
    while not b.elect():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert b.epoch == 2
    b.append([b"two"])
    # ... and A, integrating under its old epoch, is refused: the epoch is the fencing token.
    with pytest.raises(FailedPreconditionError, match="another integrator was elected"):
        a.integrate()
    assert a.epoch is None and b.integrate() == 2
    a.close()
    b.close()


def test_tiles_are_create_once_and_appends_are_pushed_back(pg: PgCluster) -> None:
    url = pg.create_database("renkei_tlog_once")
    log = PgLog(url, ORIGIN, SEED, max_pending=10)
    assert log.elect()
    log.append([b"a", b"b", b"c"])
    assert log.integrate() == 3
    log.append([b"d"])
    # Someone else's bytes where the next partial bundle goes: integration refuses to fork.
    with pg.primary.connect("renkei_tlog_once") as admin:
        admin.execute("INSERT INTO tlog.tiles(path, data) VALUES (%s, %s)", (tile_path(None, 0, 4), b"\x00\x01x"))
    with pytest.raises(LedgerDamageError, match="would fork"):
        log.integrate()
    assert verify_checkpoint(log.checkpoint(), log.vkey).size == 3  # nothing changed
    with pg.primary.connect("renkei_tlog_once") as admin:
        admin.execute("DELETE FROM tlog.tiles WHERE path = %s", (tile_path(None, 0, 4),))
    assert log.integrate() == 4
    log.append([b"e"] * 11)
    with pytest.raises(ResourceExhaustedError, match="11 log entries await integration"):
        log.append([b"f"])
    assert log.integrate() == 15
    log.close()


class FrontEnd:
    """A front-end process (tests/pg_log_frontend.py) and what it printed."""

    def __init__(self, url: str, name: str) -> None:
        self.name = name
        self.acks: list[tuple[int, int, int, float, float]] = []  # (first, count, start, begun, acknowledged)
        self.epochs: list[tuple[int, float]] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.pg_log_frontend", url, ORIGIN, SEED.hex(), name],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            parts = raw.decode().split()
            if parts[0] == "ack":
                self.acks.append((int(parts[1]), int(parts[2]), int(parts[3].rsplit("-", 1)[1]), float(parts[4]),
                                  time.time()))
            elif parts[0] == "integrator":
                self.epochs.append((int(parts[1]), time.monotonic()))

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._reader.join(timeout=10)


def _wait(what: str, cond: object, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.skipif(pg_bindir() is None, reason="PostgreSQL server binaries are not installed")
def test_kill_9_of_the_integrator_then_of_the_primary_loses_no_acknowledged_entry(tmp_path: Path) -> None:
    from renkei.service.witness import init_data_dir as init_witness
    from renkei.witness.cosignature import CosignatureKey
    from renkei.witness.protocol import TrustedLog, Witness
    from renkei.witness.state import WitnessState

    cluster = PgCluster.start()
    fronts: list[FrontEnd] = []
    try:
        url = cluster.create_database("renkei_ledger")
        log = PgLog(url, ORIGIN, SEED)
        wdir = init_witness(tmp_path / "witness", "w.test/pg")
        witness = Witness(CosignatureKey("w.test/pg", wdir.secret_key("witness-key")),
                          [TrustedLog.of(ORIGIN, [log.vkey])], WitnessState(wdir))
        fronts = [FrontEnd(url, "a"), FrontEnd(url, "b")]
        _wait("an integrator and acknowledged appends",
              lambda: any(f.epochs for f in fronts) and all(len(f.acks) > 20 for f in fronts))
        _wait("a first integration", lambda: verify_checkpoint(log.checkpoint(), log.vkey).size > 0)
        seen = log.checkpoint()
        assert witness.add_checkpoint(body(0, [], seen))  # the witness has seen the log before the crashes
        # 1. kill -9 the integrating front-end: the other takes over and integration goes on.
        holder = max(fronts, key=lambda f: f.epochs[-1][0] if f.epochs else -1)
        other = next(f for f in fronts if f is not holder)
        holder.kill()
        killed = time.monotonic()
        _wait("the other front-end elected", lambda: any(t > killed for _e, t in other.epochs))
        target = log.sequenced()
        _wait("integration past the kill", lambda: verify_checkpoint(log.checkpoint(), log.vkey).size >= target)
        takeover_s = next(t for _e, t in other.epochs if t > killed) - killed
        # 2. kill -9 the primary under load; promote; the front-end reconnects by itself.
        acked_before = len(other.acks)
        killed_at = time.time()
        cluster.kill_primary()
        time.sleep(0.5)
        cluster.promote()
        _wait("appends begun after the kill acknowledged on the new primary",
              lambda: sum(1 for a in other.acks[acked_before:] if a[3] > killed_at) > 50, timeout=40)
        failover_s = min(a[4] for a in other.acks[acked_before:] if a[3] > killed_at) - killed_at
        other.kill()
        # Every acknowledged entry, at its sequence number, in the integrated log.
        assert log.elect()
        while log.integrate() < log.sequenced():
            pass
        cp = verify_checkpoint(log.checkpoint(), log.vkey)
        out = tmp_path / "export"
        log.export(out)
        verify_log_dir(out, log.vkey, renkei=False)
        entries = entries_of(out, cp.size)
        acks = [(f.name, a) for f in fronts for a in f.acks]
        lost = [(name, first + k) for name, (first, count, start, _b, _w) in acks for k in range(count)
                if first + k >= cp.size or entries[first + k] != f"{name}-{start + k}".encode()]
        assert lost == []
        assert len({first for _n, (first, *_r) in acks}) == len(acks)  # no sequence number given twice
        # The log continued: consistent with what the witness saw before, which cosigns the next one.
        old = verify_checkpoint(seen, log.vkey)
        tree = mem_tree(entries)
        proof = tree.consistency_proof(old.size, cp.size)
        verify_consistency(old.size, cp.size, old.root, cp.root, proof)
        assert leaf_hash(entries[0]) and witness.add_checkpoint(body(old.size, proof, cp.note))
        print(f"\npg ledger: {cp.size} entries, {len(acks)} acknowledged batches, 0 lost; integrator taken over "
              f"{takeover_s:.2f} s after kill -9 of its front-end; first append acknowledged {failover_s:.2f} s "
              f"after kill -9 of the primary")
        assert failover_s < 15
        log.close()
    finally:
        for f in fronts:
            f.kill()
        cluster.stop()
