"""The core's ledger on PostgreSQL (renkei.store.pgledger.PgLedger, docs/arch/store.md) on a
primary + synchronous standby: the same reads as the file ledger, two front-ends appending, the
integrator's election and fencing, bad records, and the public log verified from its key."""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
import pytest

from renkei._core import ledger as _l
from renkei.datadir import DataDir
from renkei.errors import FailedPreconditionError, InvalidRecordError, LedgerDamageError, NotFoundError
from renkei.ledger import Ledger, LedgerRecord, opens, pack_records, verify_log_dir
from renkei.store.pgledger import PgLedger
from tests.pg_cluster import PgCluster

ORIGIN = "renkei.test/pg-ledger"


def _dir(path: Path) -> DataDir:
    return DataDir.init(path, "core", {"ledger-log": 32})


def _rec(i: int, person: int, *, withheld: bool = False, disclose_after: date | None = None) -> LedgerRecord:
    return LedgerRecord(
        requester=100 + i % 5, provider=200 + i % 3, affair="1-3" if i % 2 else "JT0000000042", items=("TM1",),
        table_hash=hashlib.sha256(b"table").digest(), pseudonym=hashlib.sha256(person.to_bytes(4, "big")).digest(),
        permit_id=bytes([1 + i % 200]) * 16, withheld=withheld, disclose_after=disclose_after,
        time=datetime(2026, 1, 1, 9, tzinfo=UTC))


def _pseudonym(person: int) -> bytes:
    return hashlib.sha256(person.to_bytes(4, "big")).digest()


def _indexed(led: PgLedger) -> int:
    row = led._db.one("SELECT indexed FROM idx_coord WHERE id = 1")
    assert row is not None
    return int(row[0])


@pytest.fixture
def url(pg: PgCluster, request: pytest.FixtureRequest) -> str:
    from tests.conftest import store_url

    got = store_url(request, "postgresql")
    assert got is not None
    return got


def test_reads_match_the_file_ledger(tmp_path: Path, url: str) -> None:
    d = _dir(tmp_path / "core")
    pgl = PgLedger(d, url, ORIGIN, background=False)
    fl = Ledger(_dir(tmp_path / "files"), ORIGIN)
    records = [_rec(i, i % 7, withheld=(i % 13 == 0), disclose_after=date(2020, 1, 1) if i % 26 == 0 else None)
               for i in range(700)]
    # Batches of several sizes, and singles: the same sequence numbers on both.
    for lo, hi in ((0, 1), (1, 300), (300, 301), (301, 700)):
        a, b = pgl.append_batch(records[lo:hi]), fl.append_batch(records[lo:hi])
        assert (a.first_seq, a.count, a.checkpoint.size) == (lo, hi - lo, hi)
        assert (b.first_seq, b.count, b.checkpoint.size) == (lo, hi - lo, hi)
    assert pgl.append(records[0]) == fl.append(records[0]) == 700
    assert pgl.size == fl.size == 701
    cp = pgl.checkpoint()
    assert cp.note == pgl.checkpoint_at(cp.size).note
    assert [c.size for c in pgl.checkpoints()] == [300, 700, 701]  # every ≥ 256 records, then the latest
    with pytest.raises(NotFoundError):
        pgl.checkpoint_at(5)
    # Records: the same opened content (salts differ), every opening opens its public leaf.
    for s in (0, 299, 300, 699, 700):
        assert pgl.get(s) == fl.get(s)
    for got, want in zip(pgl.stored([3, 4, 5, 650]), fl.stored([3, 4, 5, 650]), strict=True):
        assert got.record == want.record and opens(got.entry, got.opening) and got.entry != want.entry
    # Proofs verify against the checkpoint's root; the trees are the same shape, not the same hashes.
    p = pgl.prove_inclusion(450)
    p.verify()
    assert p.root == cp.root and p.leaf_hash == _l.leaf_hash(pgl.stored([450])[0].entry)
    pgl.prove_inclusion(10, 300).verify()
    c = pgl.prove_consistency(300, 701)
    c.verify()
    assert c.root1 == pgl.checkpoint_at(300).root
    assert pgl.root_at(300) == c.root1
    # The person's records: the same sequence numbers, pages and 不開示 hold-backs as the files',
    # whether found by scanning the not yet indexed tail, in the index, or both.
    for stage, person in ((0, 0), (0, 3), (333, 0), (333, 3), (701, 0), (701, 3)):
        while (done := _indexed(pgl)) < stage:
            pgl.index(limit=stage - done)
        assert _indexed(pgl) == stage
        pages_pg, pages_f = [], []
        for ledger, pages in ((pgl, pages_pg), (fl, pages_f)):
            before = None
            while True:
                page = ledger.records_for_pseudonym(_pseudonym(person), 30, before, today=date(2026, 1, 1))
                pages.append([r.record.seq for r in page.records])
                for r in page.records:
                    r.proof.verify()
                    assert opens(r.entry, r.opening) and r.opening[16:] == _pseudonym(person)
                if page.next_before is None:
                    break
                before = page.next_before
        assert pages_pg == pages_f and sum(map(len, pages_pg)) > 30
    # The oversight index's columns.
    cols_pg, cols_f = pgl.index_columns(250, 310), fl.index_columns(250, 310)
    assert [list(x) for x in cols_pg[:5]] == [list(x) for x in cols_f[:5]] and cols_pg[5] == cols_f[5]
    # Everything public verifies from the key alone; every opening opens its leaf.
    report = pgl.verify()
    assert report["size"] == 701 and report["openings_checked"] == 701 and report["checkpoints_checked"] == 2
    # Damage to the private tables is named.
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE ledger.person_index SET prefix = prefix + 1 WHERE seq = 5")
        with pytest.raises(LedgerDamageError, match="record 5"):
            pgl.verify()
        conn.execute("UPDATE ledger.person_index SET prefix = prefix - 1 WHERE seq = 5")
        conn.execute("UPDATE ledger.openings SET data = set_byte(data, 100, get_byte(data, 100) # 1) "
                     "WHERE first = 1")
        with pytest.raises(LedgerDamageError, match="record 3"):
            pgl.verify()
        conn.execute("UPDATE ledger.openings SET data = set_byte(data, 100, get_byte(data, 100) # 1) "
                     "WHERE first = 1")
    pgl.verify()
    # Leaves, openings and tiles are stored uncompressed (set once at creation).
    stored = pgl._db.all("SELECT c.relname, a.attstorage FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
                         "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'ledger' "
                         "AND a.attname IN ('leaves', 'data')")
    assert sorted(stored) == [("openings", "e"), ("seq", "e"), ("tiles", "e")]
    pgl.export(tmp_path / "copy")
    assert verify_log_dir(tmp_path / "copy", pgl.vkey)["size"] == 701
    # Retention (施行令 第30条) as the file ledger's: nothing is 7 years old yet; then the two
    # full bundles are (the partial one never is), bodies and openings gone, proofs kept.
    assert pgl.retention(datetime(2030, 1, 1, tzinfo=UTC)) == fl.retention(datetime(2030, 1, 1, tzinfo=UTC)) == 0
    later = datetime(2033, 6, 1, tzinfo=UTC)
    assert pgl.retention(later) == fl.retention(later) == 512
    assert pgl.min_index() == fl.min_index() == 512 and pgl.retention(later) == 0
    assert pgl.get(5) is None and fl.get(5) is None and pgl.get(600) == fl.get(600)
    assert [r.record.seq for r in pgl.stored([5, 511, 512, 700])] == [512, 700]
    pgl.prove_inclusion(5).verify()
    for person in (0, 3):
        got = pgl.records_for_pseudonym(_pseudonym(person), 500, today=date(2026, 1, 1))
        want = fl.records_for_pseudonym(_pseudonym(person), 500, today=date(2026, 1, 1))
        assert [r.record.seq for r in got.records] == [r.record.seq for r in want.records]
        assert got.records and min(r.record.seq for r in got.records) >= 512
    assert list(pgl.index_columns(512, 701)[0]) == list(fl.index_columns(512, 701)[0])
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM ledger.person_index WHERE seq < 512").fetchone() == (0,)
        (zeros,) = conn.execute("SELECT substring(data from 1 for 48 * 211) = %s FROM ledger.openings "
                                "WHERE first = 301", (bytes(48 * 211),)).fetchone()  # records 301..511
        assert zeros
    assert pgl.verify()["openings_checked"] == 701 - 512
    pgl.export(tmp_path / "retired")
    assert verify_log_dir(tmp_path / "retired", pgl.vkey)["records_retained_away"] == 512
    pgl.close()
    fl.close()
    # Reopened (another front-end's view): same state, origin fixed in the database.
    again = PgLedger(_dir(tmp_path / "other"), url, background=False)
    assert again.origin == ORIGIN and again.checkpoint() == cp
    assert (tmp_path / "other" / "ledger" / "vkey").read_text().strip() == again.vkey != ""
    again.close()


def test_two_front_ends_append_and_one_integrates(tmp_path: Path, url: str) -> None:
    d = _dir(tmp_path / "core")
    a = PgLedger(d, url, ORIGIN, integrate_s=0.02)
    b = PgLedger(d, url, ORIGIN, integrate_s=0.02)
    got: list[tuple[int, int]] = []
    lock = threading.Lock()

    def run(ledger: PgLedger, k: int) -> None:
        for j in range(15):
            n = 1 + (k * 7 + j) % 40
            r = ledger.append_batch(pack_records([_rec(j, k) for _ in range(n)]))
            assert r.checkpoint.size >= r.first_seq + r.count  # covered when acknowledged
            with lock:
                got.append((r.first_seq, r.count))

    threads = [threading.Thread(target=run, args=(led, k)) for k, led in enumerate([a, b, a, b])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got.sort()
    at = 0
    for first, n in got:
        assert first == at
        at += n
    assert a.size == b.size == at
    assert [a.epoch is not None, b.epoch is not None].count(True) == 1, "one integrator"
    holder, other = (a, b) if a.epoch is not None else (b, a)
    # The holder goes away: the other takes over and integrates what it sequences.
    old_epoch = holder.epoch
    holder.close()
    r = other.append_batch([_rec(1, 1)] * 3)
    assert r.checkpoint.size == at + 3 and other.epoch is not None and old_epoch is not None
    assert other.epoch > old_epoch
    assert other.verify()["size"] == at + 3
    other.close()


def test_a_fenced_integrator_stops_and_a_bad_record_fails_only_its_caller(tmp_path: Path, url: str) -> None:
    d = _dir(tmp_path / "core")
    a = PgLedger(d, url, ORIGIN, background=False)
    b = PgLedger(d, url, ORIGIN, background=False)
    assert a.elect()
    a.append_batch([_rec(0, 0)])
    # b is elected behind a's back (a's session lost without a noticing): a is fenced.
    assert a._session is not None
    a._session.close()
    a._session = psycopg.connect(url)  # a live session, but no longer the lock holder
    assert b.elect()
    a._sequence([(0, pack_records([_rec(1, 1)]))])
    with pytest.raises(FailedPreconditionError):
        a.integrate()
    assert a.epoch is None
    assert b.integrate()[0] == 2
    # A group with a bad record: its caller alone fails.
    good, bad = pack_records([_rec(2, 2)]), bytearray(pack_records([_rec(3, 3)]))
    bad[2] = 9  # layout version 9
    results = b._sequence([(1, good), (2, bytes(bad)), (3, good)])
    assert results[1] == (2, 1) and results[3] == (3, 1) and isinstance(results[2], InvalidRecordError)
    assert b.integrate()[0] == 4
    with pytest.raises(InvalidRecordError):
        b.append_batch(bytes(bad))
    assert b.size == 4
    a.close()
    b.close()


def test_the_cli_reads_a_core_ledger_on_postgresql(tmp_path: Path, url: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from renkei import cli
    from renkei.ledger import open_ledger, verify_checkpoint
    from renkei.service.core import init_data_dir

    d = init_data_dir(tmp_path / "core", store=url)
    with open_ledger(d, background=False) as lg:
        assert isinstance(lg, PgLedger)
        lg.append_batch([_rec(i, i) for i in range(300)])
        cp = lg.checkpoint()
        vkey = lg.vkey
    assert not (tmp_path / "core" / "ledger" / "wal").exists()
    capsys.readouterr()
    assert cli.main(["ledger", "verify", "--data-dir", str(d.path)]) == 0
    assert "ledger OK: 300 records" in capsys.readouterr().out
    assert cli.main(["ledger", "checkpoint", "--data-dir", str(d.path)]) == 0
    assert verify_checkpoint(capsys.readouterr().out, vkey) == cp
    assert cli.main(["ledger", "prove-inclusion", "7", "--data-dir", str(d.path)]) == 0
    assert '"seq": 7' in capsys.readouterr().out
    assert cli.main(["ledger", "prove-consistency", "256", "300", "--data-dir", str(d.path)]) == 0
    capsys.readouterr()
    assert cli.main(["core", "status", "--data-dir", str(d.path), "--json"]) == 0
    assert '"ledger_records": 300' in capsys.readouterr().out


_CHILD = """
import sys
from pathlib import Path
from renkei.datadir import DataDir
from renkei.ledger import pack_records
from renkei.store.pgledger import PgLedger
from tests.test_store_pgledger import _rec

led = PgLedger(DataDir(Path(sys.argv[1]), "core"), sys.argv[2], integrate_s=0.02)
for j in range(int(sys.argv[3])):
    r = led.append_batch(pack_records([_rec(j, 7) for _ in range(1 + j % 9)]))
    assert r.checkpoint.size >= r.first_seq + r.count
    print(r.first_seq, r.count, flush=True)
led.close()
"""


def test_two_processes_append_to_one_ledger(tmp_path: Path, url: str) -> None:
    """Two front-end processes (each its copy of the data directory and the same log key)
    append at once: distinct, contiguous ranges, every append covered by a checkpoint, and the
    log verifies."""
    import os
    import shutil
    import subprocess
    import sys

    d = _dir(tmp_path / "a")
    mine = PgLedger(d, url, ORIGIN, integrate_s=0.02)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(tmp_path / "b"), url, "40"],
                             stdout=subprocess.PIPE, text=True, env=env)
    assert child.stdout is not None
    first_line = child.stdout.readline()  # the child appends: now both do
    ours = [(r.first_seq, r.count) for r in (mine.append_batch([_rec(j, 3)] * (1 + j % 5)) for j in range(40))]
    out, _ = child.communicate(timeout=120)
    assert child.returncode == 0
    theirs = [(int(a), int(b)) for a, b in (line.split() for line in (first_line + out).splitlines())]
    assert len(theirs) == 40 and min(theirs) < max(ours) and min(ours) < max(theirs), "interleaved"
    got = ours + theirs
    got.sort()
    at = 0
    for first, n in got:
        assert first == at
        at += n
    assert mine.size == at
    assert mine.verify()["size"] == at
    mine.close()


def test_the_integrator_killed_mid_append_is_taken_over(tmp_path: Path, url: str) -> None:
    """kill -9 of the front-end that integrates while it appends: the database ends its session
    (and its advisory lock), another front-end is elected, integrates what was sequenced, and
    every append the dead one acknowledged is in the tree it continues."""
    import os
    import shutil
    import signal
    import subprocess
    import sys
    import time

    d = _dir(tmp_path / "a")
    PgLedger(d, url, ORIGIN, background=False).close()  # the ledger and its origin exist
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(tmp_path / "b"), url, "100000"],
                             stdout=subprocess.PIPE, text=True, env=env)
    assert child.stdout is not None
    acked = [child.stdout.readline() for _ in range(30)]  # it appends (and, alone, integrates)
    child.send_signal(signal.SIGKILL)
    child.wait()
    acked += child.stdout.read().splitlines()
    runs = [(int(a), int(b)) for a, b in (line.split() for line in acked if line.strip())]
    other = PgLedger(d, url, ORIGIN, integrate_s=0.02)
    started = time.monotonic()
    r = other.append_batch([_rec(1, 1)] * 2)  # elected once the dead session is gone
    assert other.epoch is not None and time.monotonic() - started < 15
    assert r.checkpoint.size == r.first_seq + 2
    for first, n in runs:
        assert first + n <= r.first_seq
        for s in (first, first + n - 1):
            p = other.prove_inclusion(s)
            p.verify()
            assert other.get(s) == LedgerRecord.decode(other.stored([s])[0].entry, other.stored([s])[0].opening)
    assert other.verify()["size"] == r.first_seq + 2
    other.close()
