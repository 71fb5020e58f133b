"""Shared helpers for the ledger tests."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime

from renkei.ledger import LedgerRecord


def pseudonym(person: int) -> bytes:
    return hashlib.sha256(b"test-pseudonym:%d" % person).digest()


def make_record(i: int, person: int | None = None, denied: bool = False, withheld: bool = False,
                disclose_after: date | None = None, time: datetime | None = None) -> LedgerRecord:
    return LedgerRecord(
        requester=131_000 + i % 50,
        provider=1 + i % 7,
        affair="1-3" if i % 2 else "JT00000000000042",
        items=(f"TM{i % 1000:014d}", "2-1"),
        table_hash=hashlib.sha256(b"table v1").digest(),
        pseudonym=pseudonym(i % 10 if person is None else person),
        permit_id=bytes(16) if denied else hashlib.sha256(b"permit%d" % i).digest()[:16],
        denied_code=3 if denied else 0,
        reason="提供者が当該者の符号を保有していない" if denied else "",
        withheld=withheld,
        disclose_after=disclose_after,
        time=time or datetime(2026, 1, 1, tzinfo=UTC),
    )
