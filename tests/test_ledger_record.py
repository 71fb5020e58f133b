"""renkei._core.ledger.Record: the provision record as a frozen engine object, the ledger's
`records` and `index_columns`, and LedgerRecord on top of them."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, date, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from renkei._core import ledger as _l
from renkei.errors import InvalidArgumentError, InvalidRecordError
from renkei.ledger import Ledger, LedgerRecord, provision_records
from tests.datadirs import core_dir
from tests.ledger_helpers import make_record
from tests.reference import record_ref


def test_record_fields_encoding_and_equality() -> None:
    lr = make_record(7, denied=True, withheld=True, disclose_after=date(2030, 1, 2))
    rec = lr.to_core()
    assert isinstance(rec, _l.Record)
    assert (rec.requester, rec.provider, rec.affair, rec.items) == (lr.requester, lr.provider, lr.affair, lr.items)
    assert (rec.denied_code, rec.reason, rec.permitted) == (3, lr.reason, False)
    assert rec.permit_id == bytes(16) and rec.pseudonym == lr.pseudonym and rec.table_hash == lr.table_hash
    assert rec.withheld and rec.disclose_after == (date(2030, 1, 2) - date(1970, 1, 1)).days
    assert rec.time_us == 1_767_225_600_000_000 and rec.seq == 0
    data = rec.encode()
    assert data == lr.encode() and _l.decode_record(data) == rec
    assert hash(_l.decode_record(data)) == hash(rec) and len({rec, _l.decode_record(data)}) == 1
    assert rec.leaf_hash() == _l.leaf_hash(data) == hashlib.sha256(b"\x00" + data).digest()
    assert LedgerRecord.from_core(rec) == LedgerRecord.decode(data) == dataclasses.replace(lr, seq=0)
    assert rec != make_record(8, denied=True).to_core() and rec != "a record"
    # The repr shows a short prefix of the pseudonym, never all of it.
    assert lr.pseudonym.hex()[:8] in repr(rec) and lr.pseudonym.hex()[:10] not in repr(rec)
    with pytest.raises(AttributeError):
        rec.seq = 5  # type: ignore[misc]


def test_record_is_checked_like_encode_record() -> None:
    base = dict(requester=1, provider=2, affair="1-3", items=["TM00000000000001"], table_hash=bytes(32),
                pseudonym=bytes(32))
    assert _l.Record(**base, permit_id=b"\x01" * 16).permitted  # type: ignore[arg-type]
    with pytest.raises(InvalidRecordError, match="non-zero permit id"):
        _l.Record(**base)  # type: ignore[arg-type]
    with pytest.raises(InvalidRecordError, match="no permit id"):
        _l.Record(**base, permit_id=b"\x01" * 16, denied_code=2, reason="x")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="no reason text"):
        _l.Record(**base, permit_id=b"\x01" * 16, reason="x")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="32 bytes"):
        _l.Record(**{**base, "pseudonym": b"short"}, permit_id=b"\x01" * 16)  # type: ignore[arg-type]
    with pytest.raises(InvalidRecordError):
        _l.Record(**{**base, "affair": "has space"}, permit_id=b"\x01" * 16)  # type: ignore[arg-type]
    with pytest.raises(InvalidRecordError):
        _l.decode_record(b"\x02" + bytes(200))


def test_records_and_index_columns_match_the_entries(tmp_path) -> None:  # type: ignore[no-untyped-def]
    lg = Ledger(core_dir(tmp_path))
    old = datetime(2018, 1, 1, tzinfo=UTC)
    lg.append_batch([make_record(i, denied=i % 3 == 0, time=old) for i in range(300)])
    lg.append_batch([make_record(i, time=datetime(2026, 1, 1, tzinfo=UTC)) for i in range(300, 320)])
    assert lg.retention(now=datetime(2026, 6, 1, tzinfo=UTC)) == 256
    recs = lg._l.records(0, 320)
    entries = lg._l.entries(0, 320)
    opens = lg._l.openings(0, 320)
    assert recs[:256] == [None] * 256 and opens[:256] == [None] * 256
    for seq in range(256, 320):
        r, e, o = recs[seq], entries[seq], opens[seq]
        assert r is not None and e is not None and o is not None and r.seq == seq
        # The public leaf is the record with the person committed; its opening gives it back.
        assert _l.decode_record(e, o) == r and len(o) == 48 and o[16:] == r.pseudonym
        assert e[0] == 2 and r.encode()[0] == 1 and e[1:81] == r.encode()[1:81] and e[113:] == r.encode()[113:]
        assert r.pseudonym not in e
        public, commitment = _l.decode_public_record(e)
        assert public.pseudonym == bytes(32) and commitment == e[81:113] and public.affair == r.affair
    seqs, times, reqs, provs, denied, affairs = lg._l.index_columns(250, 320)
    assert seqs.dtype == np.int64 and times.dtype == np.int64 and reqs.dtype == np.uint32
    assert provs.dtype == np.uint32 and denied.dtype == np.uint16
    assert seqs.tolist() == list(range(256, 320))
    want = [recs[s] for s in range(256, 320)]
    assert times.tolist() == [r.time_us for r in want if r]
    assert reqs.tolist() == [r.requester for r in want if r] and provs.tolist() == [r.provider for r in want if r]
    assert denied.tolist() == [r.denied_code for r in want if r] and affairs == [r.affair for r in want if r]
    assert affairs[0] is affairs[2]  # equal affairs share one str
    assert lg._l.index_columns(5, 5)[0].tolist() == []
    lg.close()


# -- 提供 records and 委任元, against the pure-Python reference (tests/reference/record_ref.py) -----

_ids = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=64)


@st.composite
def _fields(draw: st.DrawFn) -> dict[str, object]:
    kind = draw(st.sampled_from(["permitted", "denied", "provision"]))
    withheld = draw(st.booleans())
    f: dict[str, object] = dict(
        seq=0, time_us=draw(st.integers(0, 253_402_300_799_999_999)),  # to 9999-12-31 (dates up to 9999-12-31 below)
        requester=draw(st.integers(0, 2**32 - 1)),
        provider=draw(st.integers(0, 2**32 - 1)), affair=draw(_ids), items=draw(st.lists(_ids, max_size=5)),
        table_hash=draw(st.binary(min_size=32, max_size=32)), denied_code=0, reason="",
        permit_id=draw(st.binary(min_size=16, max_size=16).filter(any)), pseudonym=draw(st.binary(min_size=32,
                                                                                                   max_size=32)),
        withheld=withheld, disclose_after=draw(st.none() | st.integers(0, 2_932_896)) if withheld else None,
        delegator=draw(st.none() | st.integers(1, 2**32 - 1)))
    if kind == "denied":
        f.update(denied_code=draw(st.integers(1, 2**16 - 1)), reason=draw(st.text(max_size=40).filter(
            lambda t: all(c.isprintable() for c in t))), permit_id=bytes(16))
    elif kind == "provision":
        f.update(reason=draw(st.sampled_from(["", "did not answer", "応答なし"])),
                 provision=(draw(st.integers(0, 4)), draw(st.integers(0, 2**64 - 1)),
                            draw(st.binary(min_size=32, max_size=32))))
    return f


@settings(max_examples=300, deadline=None)
@given(_fields())
def test_engine_encodes_every_shape_as_the_reference(f: dict[str, object]) -> None:
    data = _l.encode_record(**f)  # type: ignore[arg-type]
    assert data == record_ref.encode(**f)  # type: ignore[arg-type]
    rec = _l.decode_record(data)
    assert rec.encode() == data and rec.delegator == f["delegator"] and rec.provision == f.get("provision")
    lr = LedgerRecord.decode(data)
    assert lr.is_provision == ("provision" in f) and lr.permitted == (not f["denied_code"] and "provision" not in f)
    assert lr.encode() == data
    for cut in (len(data) - 1, len(data) - 4, len(data) - 40):  # a truncated record never decodes
        with pytest.raises(InvalidRecordError):
            _l.decode_record(data[:cut])


@settings(max_examples=100, deadline=None)
@given(st.lists(_fields().filter(lambda f: "provision" not in f), min_size=1, max_size=6),
       st.integers(0, 2**40), st.integers(0, 4), st.binary(min_size=32, max_size=32))
def test_provision_records_answer_each_permitted_inquiry(qs: list[dict[str, object]], first: int, code: int,
                                                         digest: bytes) -> None:
    packed = b"".join(len(e).to_bytes(2, "big") + e for e in (record_ref.encode(**q) for q in qs))  # type: ignore[arg-type]
    detail = "" if code < 2 else "the provider did not answer"
    out = provision_records(packed, first, code, detail, digest, datetime(2031, 4, 1, tzinfo=UTC))
    at_us = int(datetime(2031, 4, 1, tzinfo=UTC).timestamp()) * 1_000_000
    want = [record_ref.encode(**record_ref.provision_of(q, first + i, at_us, code, detail, digest))  # type: ignore[arg-type]
            for i, q in enumerate(qs) if not q["denied_code"]]
    assert out == b"".join(len(e).to_bytes(2, "big") + e for e in want)


def test_a_provision_record_is_checked() -> None:
    base = dict(requester=1, provider=2, affair="B2.1", items=["B2.1.2.1"], table_hash=bytes(32),
                pseudonym=bytes(32))
    ok = _l.Record(**base, permit_id=b"\x01" * 16, provision=(1, 5, bytes(32)), delegator=9)  # type: ignore[arg-type]
    assert (ok.provision, ok.permitted, ok.denied_code, ok.delegator) == ((1, 5, bytes(32)), False, 0, 9)
    with pytest.raises(InvalidRecordError, match="permit id of its inquiry"):
        _l.Record(**base, provision=(0, 5, bytes(32)))  # type: ignore[arg-type]
    with pytest.raises(InvalidRecordError, match="unknown provision outcome"):
        _l.Record(**base, permit_id=b"\x01" * 16, provision=(5, 5, bytes(32)))  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="no denial code"):
        _l.Record(**base, permit_id=b"\x01" * 16, denied_code=3, provision=(0, 5, bytes(32)))  # type: ignore[arg-type]
    with pytest.raises(InvalidRecordError, match="delegator"):
        _l.Record(**base, permit_id=b"\x01" * 16, delegator=0)  # type: ignore[arg-type]
    # A denied inquiry is answered by no provision; a damaged run of records is refused.
    denied = _l.pack_records([_l.Record(**base, denied_code=4, reason="x").encode()])  # type: ignore[arg-type]
    assert provision_records(denied, 0, 0) == b""
    with pytest.raises(InvalidRecordError):
        provision_records(denied[:-1], 0, 0)
