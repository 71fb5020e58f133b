"""renkei._core.ledger.Record: the provision record as a frozen engine object, the ledger's
`records` and `index_columns`, and LedgerRecord on top of them."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, date, datetime

import numpy as np
import pytest

from renkei._core import ledger as _l
from renkei.errors import InvalidArgumentError, InvalidRecordError
from renkei.ledger import Ledger, LedgerRecord
from tests.datadirs import core_dir
from tests.ledger_helpers import make_record


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
