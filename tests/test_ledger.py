"""The provision ledger: engine vs the pure-Python RFC 9162 reference, the durable store and
its Python API, signatures checked with an independent Ed25519 (the `cryptography` package)."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from renkei import cli, ledger
from renkei._core import ledger as _l
from renkei.errors import InvalidRecordError, LedgerDamageError, NotFoundError, ProofError, StorageError
from renkei.ledger import Ledger, LedgerRecord
from tests.datadirs import core_dir
from tests.ledger_helpers import make_record, pseudonym
from tests.reference import tiles_ref, tlog_ref


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 4000), st.binary(max_size=8), st.data())
def test_engine_matches_reference(n: int, salt: bytes, data: st.DataObject) -> None:
    leaves = [salt + i.to_bytes(4, "big")[: i % 5] for i in range(n)]
    t = _l.MemTree()
    for e in leaves:
        t.push(e)
    for _ in range(4):
        size = data.draw(st.integers(1, n))
        assert t.root(size) == tlog_ref.mth(leaves[:size])
        m = data.draw(st.integers(0, size - 1))
        p = t.inclusion_proof(m, size)
        assert p == tlog_ref.path(m, leaves[:size])
        ledger.verify_inclusion(m, size, tlog_ref.leaf_hash(leaves[m]), p, t.root(size))
        old = data.draw(st.integers(1, size))
        c = t.consistency_proof(old, size)
        assert c == tlog_ref.proof(old, leaves[:size])
        ledger.verify_consistency(old, size, t.root(old), t.root(size), c)
        if old < size:
            with pytest.raises(ProofError):
                ledger.verify_consistency(old, size, t.root(size), t.root(old), c)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(1, 700), min_size=1, max_size=6), st.data())
def test_durable_store_matches_reference(tmp_path_factory: pytest.TempPathFactory, batches: list[int],
                                         data: st.DataObject) -> None:
    lg = Ledger(core_dir(tmp_path_factory.mktemp("d")))
    entries: list[bytes] = []
    sizes = []
    for b in batches:
        recs = [make_record(len(entries) + i) for i in range(b)]
        res = lg.append_batch(recs)
        assert res.first_seq == len(entries)
        entries += [lg._l.entry(res.first_seq + i) for i in range(b)]
        sizes.append(len(entries))
        assert res.checkpoint.root == tlog_ref.mth(entries)
    n = len(entries)
    for _ in range(5):
        m = data.draw(st.integers(0, n - 1))
        p = lg.prove_inclusion(m)
        assert p.hashes == tlog_ref.path(m, entries)
        p.verify()
    for old in sizes:
        c = lg.prove_consistency(old)
        assert c.hashes == tlog_ref.proof(old, entries)
        c.verify()


def _verify_with_cryptography(note: str, vkey: str) -> None:
    name, _key_id, pub = ledger.parse_vkey(vkey)
    text, sigs = note.split("\n\n", 1)
    line = sigs.strip("\n")
    assert line.startswith(f"— {name} ")
    raw = base64.b64decode(line.split(" ")[2])
    Ed25519PublicKey.from_public_bytes(pub).verify(raw[4:], (text + "\n").encode())


def test_checkpoints_verify_with_independent_ed25519(tmp_path) -> None:  # type: ignore[no-untyped-def]
    lg = Ledger(core_dir(tmp_path), origin="renkei.test/ledger")
    for i in range(3):
        res = lg.append_batch([make_record(i * 10 + k) for k in range(10)])
        _verify_with_cryptography(res.checkpoint.note, lg.vkey)
        cp = ledger.verify_checkpoint(res.checkpoint.note, lg.vkey)
        assert cp.origin == "renkei.test/ledger" and cp.size == 10 * (i + 1)
    assert (tmp_path / "keys" / "ledger-log.key").stat().st_mode & 0o777 == 0o600
    note = lg.checkpoint().note
    assert note.startswith("renkei.test/ledger\n30\n")
    with pytest.raises(Exception):  # noqa: B017 - cryptography's InvalidSignature
        _verify_with_cryptography(note.replace("\n30\n", "\n31\n"), lg.vkey)
    # The history keeps every checkpoint at least 256 records after the previous stored one,
    # plus the latest; each verifies independently and any two are consistent.
    published = {c.size: c for c in [lg.append_batch([make_record(30 + k) for k in range(300)]).checkpoint]}
    published |= {c.size: c for c in [lg.append_batch([make_record(330 + k) for k in range(10)]).checkpoint]}
    hist = lg.checkpoints()
    assert [c.size for c in hist] == [330, 340] and hist == [published[330], published[340]]
    assert hist[-1] == lg.checkpoint()
    for c in hist:
        _verify_with_cryptography(c.note, lg.vkey)
        assert lg.checkpoint_at(c.size) == c
    p = lg.prove_consistency(330, 340)
    ledger.verify_consistency(330, 340, hist[0].root, hist[1].root, p.hashes)
    for size in (0, 10, 30, 15):
        with pytest.raises(NotFoundError):
            lg.checkpoint_at(size)
    assert (tmp_path / "ledger" / "checkpoints").stat().st_size == 8 + 104
    # One writer at a time; reopen keeps the origin; a different one is refused.
    with pytest.raises(StorageError):
        Ledger(core_dir(tmp_path))
    lg.close()
    assert Ledger(core_dir(tmp_path)).origin == "renkei.test/ledger"
    with pytest.raises(ValueError):
        Ledger(core_dir(tmp_path), origin="other")


def test_old_full_note_history_is_refused_as_named_damage(tmp_path: Path) -> None:
    lg = Ledger(core_dir(tmp_path))
    note = lg.append_batch([make_record(k) for k in range(3)]).checkpoint.note.encode()
    lg.close()
    hist = tmp_path / "ledger" / "checkpoints"
    old = len(note).to_bytes(2, "big") + note  # the previous format: u16 length + full note
    hist.write_bytes(old)
    with pytest.raises(LedgerDamageError) as e:
        Ledger(core_dir(tmp_path))
    assert e.value.path == "checkpoints" and "older ledger format" in str(e.value)
    assert hist.read_bytes() == old
    with pytest.raises(LedgerDamageError):
        ledger.verify_ledger_dir(tmp_path / "ledger", (tmp_path / "ledger" / "vkey").read_text().strip())


def test_single_appends_and_records_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    lg = Ledger(core_dir(tmp_path))
    r = make_record(1, denied=True)
    seq = lg.append(r)
    assert seq == 0
    got = lg.get(0)
    assert got is not None and not got.permitted and got.reason == r.reason and got.seq == 0
    assert got.pseudonym == r.pseudonym and got.items == r.items and got.time == r.time
    now = LedgerRecord(**{**r.__dict__, "time": None})
    lg.append(now)
    t = lg.get(1).time  # type: ignore[union-attr]
    assert abs((datetime.now(UTC) - t).total_seconds()) < 60
    with pytest.raises(InvalidRecordError):
        lg.append(LedgerRecord(**{**r.__dict__, "affair": "has space"}))
    with pytest.raises(InvalidRecordError):
        lg.append(LedgerRecord(**{**r.__dict__, "permit_id": b"\x01" * 16}))  # a denial with a permit
    with pytest.raises(InvalidRecordError):
        lg.append_batch(b"\x00\x05abc")
    with pytest.raises(NotFoundError):
        lg.prove_inclusion(5)
    assert lg.size == 2  # refused input lost nothing and added nothing
    packed = np.frombuffer(ledger.pack_records([make_record(i) for i in range(5)]), dtype=np.uint8)
    assert lg.append_batch(packed).count == 5
    lg.verify()


def test_concurrent_single_appends_share_commits(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import threading

    lg = Ledger(core_dir(tmp_path))
    seqs: list[int] = []
    notes: set[str] = set()
    lock = threading.Lock()

    def worker(k: int) -> None:
        for j in range(25):
            r = make_record(k * 100 + j)
            s, note = lg._l.append_one(r.encode())
            with lock:
                seqs.append(s)
                notes.add(note)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seqs) == list(range(200))
    assert lg.size == 200
    lg.verify()
    # Every acknowledgement carried a checkpoint covering its record.
    for note in notes:
        cp = ledger.verify_checkpoint(note, lg.vkey)
        lg.prove_consistency(cp.size).verify()


def test_verify_while_appending(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import threading

    lg = Ledger(core_dir(tmp_path))
    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set():
            lg.append_batch([make_record(lg.size + i) for i in range(37)])

    t = threading.Thread(target=writer)
    t.start()
    try:
        for _ in range(30):
            lg.verify()  # never a false alarm while checkpoints move on
    finally:
        stop.set()
        t.join()
    assert lg.size > 0


SEGMENT = 65_536  # records per pseudonym-index segment (store.rs)
PERSONS = 12


def _indexed_pseudonym(p: int) -> bytes:
    # Persons share all four prefix bytes, only the top one, or none: every index path is taken.
    return bytes([p % 3, p % 4, 0, 0]) + bytes(27) + bytes([p])


def _owner(i: int) -> int:
    return (i * 7919 + i // 13) % PERSONS


def _visible(i: int, today: date) -> bool:
    # Mirrors the records built in `indexed`: every 11th is 不開示, every 22nd until 2028-01-01.
    return i % 11 != 0 or (i % 22 == 0 and today >= date(2028, 1, 1))


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    """Two full index segments (sorted runs) and a tail, many records per person."""
    templates = {}
    for p in range(PERSONS):
        for kind in range(3):
            r = make_record(p, person=0, withheld=kind > 0, disclose_after=date(2028, 1, 1) if kind == 2 else None)
            templates[p, kind] = dataclasses.replace(r, pseudonym=_indexed_pseudonym(p)).encode()
    lg = Ledger(core_dir(tmp_path_factory.mktemp("indexed")))
    n = 2 * SEGMENT + 3000
    for lo, hi in ((0, SEGMENT - 9), (SEGMENT - 9, SEGMENT + 1), (SEGMENT + 1, n)):
        kinds = [0 if i % 11 else (2 if i % 22 == 0 else 1) for i in range(lo, hi)]
        lg.append_batch(ledger.pack_records([templates[_owner(i), k] for i, k in zip(range(lo, hi), kinds,
                                                                                   strict=True)]))
    yield lg
    lg.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(person=st.integers(0, PERSONS - 1), before=st.one_of(st.none(), st.integers(0, 2 * SEGMENT + 3000)),
       page_size=st.integers(1, 2500), late=st.booleans())
def test_person_index_agrees_with_a_plain_scan(indexed: Ledger, person: int, before: int | None, page_size: int,
                                               late: bool) -> None:
    today = date(2030, 1, 1) if late else date(2026, 1, 1)
    start = indexed.size if before is None else before
    want = [i for i in range(start - 1, -1, -1) if _owner(i) == person and _visible(i, today)]
    page = indexed.records_for_pseudonym(_indexed_pseudonym(person), page_size=page_size, before=before,
                                         today=today)
    assert [r.proof.seq for r in page.records] == want[:page_size]
    assert page.next_before == (want[page_size] + 1 if len(want) > page_size else None)
    for r in page.records[:3]:
        r.proof.verify()
        assert r.record.pseudonym == _indexed_pseudonym(person)


def test_person_view_newest_first_paged_with_withheld(tmp_path) -> None:  # type: ignore[no-untyped-def]
    lg = Ledger(core_dir(tmp_path))
    recs = [make_record(i, person=i % 3) for i in range(30)]
    recs.append(make_record(30, person=0, withheld=True))  # 不開示, no date: never shown
    recs.append(make_record(31, person=0, withheld=True, disclose_after=date(2030, 4, 1)))
    lg.append_batch(recs)
    seen: list[int] = []
    before = None
    while True:
        page = lg.records_for_pseudonym(pseudonym(0), page_size=3, before=before, today=date(2026, 6, 1))
        for pr in page.records:
            pr.proof.verify()
            assert pr.proof.root == page.checkpoint.root == lg.checkpoint().root
            assert pr.record.pseudonym == pseudonym(0)
            seen.append(pr.proof.seq)
        if page.next_before is None:
            break
        before = page.next_before
    assert seen == sorted((i for i in range(30) if i % 3 == 0), reverse=True)
    later = lg.records_for_pseudonym(pseudonym(0), page_size=100, today=date(2030, 4, 1))
    assert [p.proof.seq for p in later.records][:1] == [31]
    assert 30 not in [p.proof.seq for p in later.records]
    assert lg.records_for_pseudonym(pseudonym(99)).records == []


def test_retention_drops_bodies_keeps_proofs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    lg = Ledger(core_dir(tmp_path))
    old = datetime(2018, 1, 1, tzinfo=UTC)
    lg.append_batch([make_record(i, time=old) for i in range(600)])
    lg.append_batch([make_record(i, time=datetime(2026, 1, 1, tzinfo=UTC)) for i in range(10)])
    proof_before = lg.prove_inclusion(3)
    cp_before = lg.checkpoint()
    bundle1 = tmp_path / "ledger" / "tile" / "entries" / "001"
    saved = bundle1.read_bytes()
    assert lg.retention(now=datetime(2026, 6, 1, tzinfo=UTC)) == 512  # two full bundles
    assert lg.get(3) is None and lg.get(600) is not None
    p = lg.prove_inclusion(3)
    assert p == proof_before
    p.verify()
    assert lg.checkpoint() == cp_before
    assert lg.verify()["records_retained_away"] == 512
    assert lg.retention(now=datetime(2026, 6, 1, tzinfo=UTC)) == 0  # idempotent
    lg.close()
    # Interrupted run: watermark published, a retired bundle not yet deleted: verify passes
    # and the next run finishes the job.
    bundle1.write_bytes(saved)
    lg2 = Ledger(core_dir(tmp_path))
    assert lg2.get(300) is None
    lg2.verify()
    assert lg2.retention(now=datetime(2026, 6, 1, tzinfo=UTC)) == 256
    assert not bundle1.exists()
    assert lg2.prove_inclusion(3) == proof_before
    lg2.verify()


def test_cli(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    lg = Ledger(core_dir(tmp_path))
    lg.append_batch([make_record(i) for i in range(40)])
    lg.append_batch([make_record(i) for i in range(40)])
    note = lg.checkpoint().note
    lg.close()
    d = ["--data-dir", str(tmp_path)]
    assert cli.main(["ledger", "verify", *d]) == 0
    assert "ledger OK: 80 records" in capsys.readouterr().out
    assert cli.main(["ledger", "checkpoint", *d]) == 0
    assert capsys.readouterr().out == note
    assert cli.main(["ledger", "prove-inclusion", "7", *d]) == 0
    assert '"seq": 7' in capsys.readouterr().out
    assert cli.main(["ledger", "prove-consistency", "40", "80", *d]) == 0
    assert '"size1": 40' in capsys.readouterr().out
    assert cli.main(["ledger", "prove-consistency", "0", "80", *d]) == 1


def test_files_readable_by_an_independent_tlog_tiles_reader(tmp_path) -> None:  # type: ignore[no-untyped-def]
    lg = Ledger(core_dir(tmp_path))
    for b in (3, 700, 1, 255):
        lg.append_batch([make_record(lg.size + i) for i in range(b)])
    expected = [lg._l.entry(i) for i in range(lg.size)]
    cp = lg.checkpoint()
    lg.close()
    origin, size, root, entries = tiles_ref.read_log(tmp_path / "ledger")
    assert (origin, size, root) == (cp.origin, cp.size, cp.root)
    assert entries == expected
    assert tlog_ref.mth(entries) == root
