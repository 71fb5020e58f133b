"""The ledger as anyone sees it: `renkei ledger verify --dir D --vkey V` checks any C2SP
tlog-tiles log from its public key alone (a log written by Tessera, one written by an
independent pure-Python writer, a public copy of renkei's ledger); the public files name no
person; damage in the newest durable bundle is refused at open and every record read back is
checked against its leaf hash (issue #11 point 9); an earlier-format ledger is refused by name.
"""

from __future__ import annotations

import random
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from renkei import cli, ledger
from renkei.errors import LedgerDamageError
from renkei.ledger import Ledger
from tests.datadirs import core_dir
from tests.ledger_helpers import make_record, pseudonym
from tests.reference import tiles_ref, tiles_writer

TESSERA = Path(__file__).parent / "data" / "tessera-log"
TESSERA_VKEY = "example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx"


def _verify_cli(d: Path, vkey: str, *extra: str) -> int:
    return cli.main(["ledger", "verify", "--dir", str(d), "--vkey", vkey, *extra])


def _flips_named(root: Path, rels: list[str], vkey: str, rng: random.Random, per_file: int = 12,
                 upto: dict[str, int] | None = None, **kw: object) -> int:
    n = 0
    for rel in rels:
        p = root / rel
        data = p.read_bytes()
        size = (upto or {}).get(rel, len(data))
        positions = range(size) if size <= per_file else rng.sample(range(size), per_file)
        for pos in positions:
            bad = bytearray(data)
            bad[pos] ^= rng.randrange(1, 256)
            p.write_bytes(bad)
            try:
                with pytest.raises(LedgerDamageError) as e:
                    ledger.verify_log_dir(root, vkey, **kw)  # type: ignore[arg-type]
                assert e.value.path == rel, (rel, pos, str(e.value))
                n += 1
            finally:
                p.write_bytes(data)
    return n


def test_a_log_written_by_tessera_verifies_from_its_public_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "log"
    shutil.copytree(TESSERA, d)
    assert _verify_cli(d, TESSERA_VKEY) == 0
    assert "ledger OK: 15 records" in capsys.readouterr().out
    rep = ledger.verify_log_dir(d, TESSERA_VKEY)
    assert rep["size"] == 15 and rep["records_checked"] == 15 and not rep["renkei"]
    # Every checkpoint Tessera published along the way verifies against its own partial tiles.
    for size in range(1, 16):
        (d / "checkpoint").write_bytes((TESSERA / f"checkpoint.{size}").read_bytes())
        assert ledger.verify_log_dir(d, TESSERA_VKEY)["size"] == size
    (d / "checkpoint").write_bytes((TESSERA / "checkpoint").read_bytes())
    # The entries are strings, not renkei records: asking for record checks names the bundle.
    with pytest.raises(LedgerDamageError) as e:
        ledger.verify_log_dir(d, TESSERA_VKEY, renkei=True)
    assert e.value.path == "tile/entries/000.p/15" and e.value.record == 0
    assert _verify_cli(d, TESSERA_VKEY, "--entries", "renkei") == 1
    # Another key, or another origin, is refused.
    other = tiles_writer.vkey("example.com/log/testdata", Ed25519PrivateKey.generate())
    with pytest.raises(LedgerDamageError) as e:
        ledger.verify_log_dir(d, other)
    assert e.value.path == "checkpoint"
    with pytest.raises(LedgerDamageError):
        ledger.verify_log_dir(d, TESSERA_VKEY, origin="example.com/log/other")
    # Any byte flipped in a file the checkpoint covers is named.
    rng = random.Random(3)
    assert _flips_named(d, ["checkpoint", "tile/0/000.p/15", "tile/entries/000.p/15"], TESSERA_VKEY, rng, 400) > 500


def test_a_foreign_log_from_an_independent_writer_verifies(tmp_path: Path) -> None:
    rng = random.Random(12)
    entries = [rng.randbytes(rng.randrange(0, 120)) for _ in range(66_000)]
    key, witness = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    origin = "log.example.org/foreign"
    # Signed by the log and cosigned by a key the verifier does not know (ignored, per C2SP).
    note = tiles_writer.write_log(tmp_path, entries, origin, [(origin, key), ("witness.example", witness)])
    vk = tiles_writer.vkey(origin, key)
    rep = ledger.verify_log_dir(tmp_path, vk)
    assert (rep["size"], rep["records_checked"], rep["renkei"]) == (66_000, 66_000, False)
    assert rep["tiles_checked"] == 258 + 2 + 1  # level 0: 257 full + 1 partial; level 1: 1 full + 1 partial; level 2
    assert _verify_cli(tmp_path, "@" + str(_write(tmp_path / "vkey.txt", vk))) == 0
    # A log whose origin is not its key's name verifies when the origin is given.
    other = tmp_path / "other"
    tiles_writer.write_log(other, entries[:300], "https://other.example/log", [("other.example", key)], False)
    with pytest.raises(LedgerDamageError):
        ledger.verify_log_dir(other, tiles_writer.vkey("other.example", key))
    assert ledger.verify_log_dir(other, tiles_writer.vkey("other.example", key), origin="https://other.example/log")
    rels = ["checkpoint", "tile/entries/000", "tile/entries/257.p/208", "tile/0/257.p/208", "tile/0/100", "tile/1/000",
            "tile/1/001.p/1", "tile/2/000.p/1"]
    # (The cosignature line of the unknown key is not checked: only up to the log's own line.)
    assert _flips_named(tmp_path, rels, vk, rng, upto={"checkpoint": len(note.split("— witness")[0].encode())}) > 80
    # Superseded partials are not part of the log: a flip there changes nothing.
    stale = tmp_path / "tile/0/003.p/100"
    stale.write_bytes(bytes(len(stale.read_bytes())))
    ledger.verify_log_dir(tmp_path, vk)


def _write(p: Path, text: str) -> Path:
    p.write_text(text + "\n")
    return p


def test_the_public_copy_names_no_person_and_verifies_from_the_public_key(tmp_path: Path) -> None:
    lg = Ledger(core_dir(tmp_path / "core"))
    recs = [make_record(i, person=i % 3) for i in range(700)]
    lg.append_batch(recs)
    lg.append_batch([make_record(700 + i, person=1) for i in range(20)])
    vkey = lg.vkey
    lg.close()
    led = tmp_path / "core" / "ledger"
    pub = tmp_path / "public"
    pub.mkdir()
    for name in ("checkpoint", "format", "checkpoints"):
        shutil.copy(led / name, pub / name)
    shutil.copytree(led / "tile", pub / "tile")
    rep = ledger.verify_log_dir(pub, vkey)
    assert rep["renkei"] and rep["size"] == 720 and rep["records_checked"] == 720
    assert rep["openings_checked"] == 0 and rep["checkpoints_checked"] == 2
    assert _verify_cli(pub, vkey) == 0
    # Without renkei's format file it is checked as any log; the records still verify as such.
    (pub / "format").unlink()
    assert not ledger.verify_log_dir(pub, vkey)["renkei"]
    assert ledger.verify_log_dir(pub, vkey, renkei=True)["renkei"]
    # No public byte is a pseudonym (nor its 8-byte prefix): the persons are committed.
    public = b"".join(p.read_bytes() for p in pub.rglob("*") if p.is_file())
    for person in range(3):
        assert pseudonym(person)[:8] not in public
    _origin, _size, _root, leaves = tiles_ref.read_log(pub)
    commitments = [e[81:113] for e in leaves]
    assert len(set(commitments)) == 720  # the same person never shows the same value twice
    # Everything but the person is public: the audit re-checks records from the bundles alone.
    for seq in (0, 356, 719):
        public, commitment = ledger.LedgerRecord.decode_public(leaves[seq])
        want = make_record(seq, person=seq % 3 if seq < 700 else 1)
        assert commitment == commitments[seq] and public.pseudonym == bytes(32) and public.seq == seq
        fields = ("requester", "provider", "affair", "items", "table_hash", "permit_id", "time")
        assert [getattr(public, f) for f in fields] == [getattr(want, f) for f in fields]
    # The opening (private) ties a leaf to its person; any other person's does not.
    lg = Ledger(core_dir(tmp_path / "core"))
    o = lg._l.openings(5, 6)[0]
    assert o is not None and o[16:] == pseudonym(5 % 3) and ledger.opens(leaves[5], o)
    assert not ledger.opens(leaves[6], o) and not ledger.opens(leaves[5], o[:16] + pseudonym(0))
    page = lg.records_for_pseudonym(pseudonym(1), page_size=5)
    for r in page.records:
        assert ledger.opens(r.entry, r.opening) and r.opening[16:] == pseudonym(1)
        assert r.record.pseudonym == pseudonym(1)
        r.proof.verify()
    lg.close()


def _rotating(tmp_path: Path) -> Ledger:
    # wal_limit=1: every commit rotates the write-ahead log, so the files below the last commit
    # are the durable ones (not replayed from the log on open).
    lg = Ledger(core_dir(tmp_path), wal_limit=1)
    for b in range(3):
        lg.append_batch([make_record(300 * b + i) for i in range(300)])
    return lg


@pytest.mark.parametrize("cut", ["byte", "record", "half"])
def test_a_cut_newest_durable_bundle_is_refused_at_open(tmp_path: Path, cut: str) -> None:
    _rotating(tmp_path).close()
    led = tmp_path / "ledger"
    assert [p.name for p in (led / "wal").iterdir()] == [f"{900:020}"]
    p = led / "tile" / "entries" / "002"
    data = p.read_bytes()
    rec_len = int.from_bytes(data[:2], "big") + 2
    p.write_bytes(data[: {"byte": len(data) - 1, "record": len(data) - rec_len, "half": len(data) // 2}[cut]])
    with pytest.raises(LedgerDamageError) as e:
        Ledger(core_dir(tmp_path))
    assert e.value.path == "tile/entries/002" and e.value.record is not None and 512 <= e.value.record < 768
    p.write_bytes(data)
    lg = Ledger(core_dir(tmp_path))
    assert lg.size == 900 and lg.get(899) == make_record(899).__class__(**{**make_record(899).__dict__, "seq": 899})
    lg.verify()


def test_a_cut_bundle_still_in_the_write_ahead_log_is_rebuilt_from_it(tmp_path: Path) -> None:
    # The case: the newest bundle cut, then an append; the records stay theirs.
    lg = Ledger(core_dir(tmp_path))
    lg.append_batch([make_record(i) for i in range(1000)])
    lg.close()
    newest = tmp_path / "ledger" / "tile" / "entries" / "003.p/232"
    newest.write_bytes(newest.read_bytes()[:-100])
    lg = Ledger(core_dir(tmp_path))
    lg.append_batch([make_record(1000 + i) for i in range(50)])
    for seq in (767, 768, 999, 1000, 1049):
        got = lg.get(seq)
        assert got is not None and got.seq == seq and got.requester == make_record(seq).requester
        assert got.items == make_record(seq).items
    lg.verify()
    lg.close()


def test_a_record_edited_on_disk_is_never_served(tmp_path: Path) -> None:
    lg = _rotating(tmp_path)
    p = tmp_path / "ledger" / "tile" / "entries" / "001"
    data = p.read_bytes()
    at = 2 + 30  # record 256's permission-table hash
    p.write_bytes(data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :])
    for read in (lambda: lg.get(256), lambda: lg._l.records(250, 260), lambda: lg._l.entries(256, 257),
                 lambda: lg.stored([256]), lambda: lg.records_for_pseudonym(pseudonym(256 % 10), page_size=100)):
        with pytest.raises(LedgerDamageError) as e:
            read()
        assert e.value.path == "tile/entries/001" and e.value.record == 256
    assert lg.get(255) is not None and lg.get(512) is not None
    p.write_bytes(data)
    assert lg.get(256) is not None
    # An opening edited on disk: the record is not served either.
    o = tmp_path / "ledger" / "open" / "0"
    odata = o.read_bytes()
    o.write_bytes(odata[: 48 * 300 + 20] + bytes([odata[48 * 300 + 20] ^ 1]) + odata[48 * 300 + 21 :])
    with pytest.raises(LedgerDamageError) as e:
        lg.get(300)
    assert e.value.path == "open/0" and e.value.record == 300
    o.write_bytes(odata)
    lg.verify()
    lg.close()


def test_a_ledger_of_the_earlier_format_is_refused_by_name(tmp_path: Path) -> None:
    lg = Ledger(core_dir(tmp_path))
    lg.append_batch([make_record(i) for i in range(10)])
    vkey = lg.vkey
    lg.close()
    # The earlier format had no `format` file (and no write-ahead log, and pseudonyms in the bundles).
    (tmp_path / "ledger" / "format").unlink()
    with pytest.raises(LedgerDamageError) as e:
        Ledger(core_dir(tmp_path))
    assert e.value.path == "format" and "earlier ledger format" in str(e.value) and "ledger.v1" in str(e.value)
    # Its public files can still be checked from the public key.
    assert ledger.verify_log_dir(tmp_path / "ledger", vkey)["size"] == 10
    # An empty earlier-format ledger is simply taken over.
    empty = tmp_path / "empty"
    Ledger(core_dir(empty)).close()
    (empty / "ledger" / "format").unlink()
    Ledger(core_dir(empty)).close()
    assert (empty / "ledger" / "format").read_bytes() == b"renkei-ledger 2\n"


def test_retention_drops_openings_with_the_bodies(tmp_path: Path) -> None:
    lg = Ledger(core_dir(tmp_path))
    old = datetime(2018, 1, 1, tzinfo=UTC)
    lg.append_batch([make_record(i, time=old) for i in range(600)])
    lg.append_batch([make_record(i, time=datetime(2026, 1, 1, tzinfo=UTC)) for i in range(10)])
    assert lg.retention(now=datetime(2026, 6, 1, tzinfo=UTC)) == 512
    opened = (tmp_path / "ledger" / "open" / "0").read_bytes()
    assert opened[: 512 * 48] == bytes(512 * 48) and opened[512 * 48 : 513 * 48] != bytes(48)
    assert lg._l.openings(0, 513)[:512] == [None] * 512
    lg.close()
    lg = Ledger(core_dir(tmp_path))  # replaying the write-ahead log does not bring them back
    assert (tmp_path / "ledger" / "open" / "0").read_bytes()[: 512 * 48] == bytes(512 * 48)
    assert not (tmp_path / "ledger" / "tile" / "entries" / "000").exists()
    lg.verify()
    vkey = lg.vkey
    lg.close()
    # The public copy (with `retention`, which says which bodies are retired) still verifies.
    pub = tmp_path / "public"
    pub.mkdir()
    for name in ("checkpoint", "format", "checkpoints", "retention"):
        shutil.copy(tmp_path / "ledger" / name, pub / name)
    shutil.copytree(tmp_path / "ledger" / "tile", pub / "tile")
    rep = ledger.verify_log_dir(pub, vkey)
    assert (rep["records_retained_away"], rep["records_checked"]) == (512, 98)
