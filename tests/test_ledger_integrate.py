"""The two halves of a commit as the PostgreSQL ledger uses them (renkei._core.ledger
prepare_records / integrate_leaves / tiles_*), against slow pure-Python references: the tile
writer of renkei.store.tlog (tiles_for, push, edge_root), the RFC 9162 definitions
(tests/reference/tlog_ref.py) and the record layout's commitment, recomputed with hashlib."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from renkei._core import ledger as _l
from renkei.errors import InvalidArgumentError, InvalidRecordError, LedgerDamageError
from renkei.ledger import LedgerRecord, pack_records
from renkei.store import tlog
from tests.reference import tlog_ref


def _entries(n: int, start: int) -> list[bytes]:
    return [f"entry {i} {'z' * (i % 11)}".encode() for i in range(start, start + n)]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=700), min_size=1, max_size=6))
def test_integration_writes_the_reference_tiles(steps: list[int]) -> None:
    rust_edge = b""
    py_edge: list[bytes] = []
    ref_tiles: dict[str, bytes] = {}
    all_entries: list[bytes] = []
    for k in steps:
        batch = _entries(k, len(all_entries))
        size = len(all_entries)
        expected = tlog.tiles_for(ref_tiles.get, size, batch) if batch else {}
        for e in batch:
            tlog.push(py_edge, size, tlog.leaf_hash(e))
            size += 1
        rust_edge, new_size, root, tiles = _l.integrate_leaves(rust_edge, tlog.bundle(batch))
        all_entries += batch
        assert dict(tiles) == expected
        assert len(tiles) == len(expected), "no tile written twice in one step"
        ref_tiles.update(expected)
        assert new_size == len(all_entries)
        assert root == tlog.edge_root(py_edge) == _l.edge_root(rust_edge)[1]
    if len(all_entries) <= 1500:
        assert root == tlog_ref.mth(all_entries)


def test_integration_across_a_level_2_tile() -> None:
    mem = _l.MemTree()
    edge, tiles_seen = b"", {}
    n = 0
    for k in (65_535, 1, 300):
        batch = _entries(k, n)
        for e in batch:
            mem.push(e)
        edge, n, root, tiles = _l.integrate_leaves(edge, tlog.bundle(batch))
        tiles_seen.update(tiles)
        assert root == mem.root(n)
    assert "tile/2/000.p/1" in tiles_seen and "tile/1/000" in tiles_seen
    # Proofs from the fetched tiles equal the memory tree's, at the checkpoints' sizes.
    for size in (65_535, 65_536, 65_836):
        assert _l.tiles_root(size, tiles_seen.get) == mem.root(size)
        for i in (0, 300, size - 1):
            assert _l.tiles_inclusion_proof(i, size, tiles_seen.get) == mem.inclusion_proof(i, size)
        assert _l.tiles_consistency_proof(65_535, size, tiles_seen.get) == mem.consistency_proof(65_535, size)


def test_a_damaged_edge_or_reader_is_named() -> None:
    edge, *_ = _l.integrate_leaves(b"", tlog.bundle(_entries(5, 0)))
    with pytest.raises(LedgerDamageError):
        _l.integrate_leaves(edge[:-1], tlog.bundle(_entries(1, 5)))
    with pytest.raises(InvalidArgumentError):
        _l.integrate_leaves(edge, b"\x00\x05ab")
    with pytest.raises(LedgerDamageError, match=r"tile/0/000\.p/5"):
        _l.tiles_root(5, lambda path: None)

    def broken(path: str) -> bytes:
        raise OSError("the store went away")

    with pytest.raises(OSError, match="went away"):
        _l.tiles_inclusion_proof(1, 5, broken)


def _record(i: int, time_us: int = 0) -> LedgerRecord:
    from datetime import UTC, datetime, timedelta

    return LedgerRecord(
        requester=100 + i, provider=7, affair="1-3", items=("TM1",), table_hash=hashlib.sha256(b"t").digest(),
        pseudonym=hashlib.sha256(i.to_bytes(4, "big")).digest(), permit_id=b"\x02" * 16,
        time=None if time_us == 0 else datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=time_us))


def _reference_leaf(record: bytes, seq: int, now_us: int, opening: bytes) -> bytes:
    """The public leaf the layout defines (docs/arch/ledger.md), built with hashlib."""
    salt, pseudonym = opening[:16], opening[16:]
    assert record[81:113] == pseudonym
    out = bytearray(record)
    out[0] = 2
    out[1:9] = seq.to_bytes(8, "big")
    if int.from_bytes(record[9:17], "big") == 0:
        out[9:17] = now_us.to_bytes(8, "big", signed=True)
    out[81:113] = hashlib.sha256(b"rkprs2:" + salt + pseudonym).digest()
    return bytes(out)


@settings(max_examples=20, deadline=None)
@given(st.integers(min_value=1, max_value=40), st.integers(min_value=0, max_value=2**40),
       st.booleans())
def test_prepare_builds_the_reference_leaves(n: int, first: int, timed: bool) -> None:
    records = [_record(i, 1_700_000_000_000_000 + i if timed else 0).encode() for i in range(n)]
    now = 1_764_000_000_123_456
    leaves, openings = _l.prepare_records(pack_records(records), first, now)
    got = tlog.split_bundle(leaves)
    assert len(got) == n and len(openings) == 48 * n
    salts = set()
    for i, (rec, leaf) in enumerate(zip(records, got, strict=True)):
        opening = openings[48 * i:48 * (i + 1)]
        assert leaf == _reference_leaf(rec, first + i, now, opening)
        assert _l.opens(leaf, opening)
        assert LedgerRecord.decode(leaf, opening).seq == first + i
        salts.add(opening[:16])
    assert len(salts) == n, "a fresh salt per record"
    # Salts are drawn per call: the same records again get other commitments.
    again, _ = _l.prepare_records(pack_records(records), first, now)
    assert again != leaves


def test_prepare_refuses_bad_records_whole() -> None:
    good = _record(1).encode()
    bad = b"\x09" + good[1:]
    with pytest.raises(InvalidRecordError, match="record 1"):
        _l.prepare_records(pack_records([good, bad]), 0, 1)
    with pytest.raises(InvalidRecordError):
        _l.prepare_records(b"\x00\x09ab", 0, 1)
