"""The commission's (個人情報保護委員会) view of the provision ledger, behind OversightService.

Checkpoints and proofs come straight from :class:`renkei.ledger.Ledger`; record queries by agency
and time use a small in-memory index (sequence, time, agencies, affair, outcome) built from the
ledger at first use and caught up with the records appended since before every query, so it
never misses a record the ledger holds.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from renkei.errors import InvalidArgumentError
from renkei.ledger import NO_DATA, PROVIDED, Checkpoint, InclusionProof, Ledger, StoredRecord, outcome_token

_SCAN_CHUNK = 65_536


def _us(t: datetime | None) -> int | None:
    return None if t is None else (t - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


@dataclass(frozen=True)
class AgencyStatistics:
    """An agency's inquiries and denials (as requester) and provisions (as provider)."""

    agency_id: int
    inquiries: int
    denials: int
    provisions: int
    by_affair: Sequence[tuple[str, int, int]]  # (affair, inquiries, denials)
    denials_by_reason: dict[str, int] = field(default_factory=dict)


#: The index's outcome of a 提供 record: this bit with its outcome (record.rs INDEX_PROVISION).
_PROVISION = 0x8000


class Oversight:
    """The commission's (個人情報保護委員会) read side of the ledger.

    The index (an in-memory SQLite table of sequence, time, agencies, affair and outcome) is
    built from the ledger at first use and caught up with the records appended since before
    every query, so it never misses a record the ledger holds.
    """

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._db.executescript(
            "CREATE TABLE r (seq INTEGER PRIMARY KEY, t INTEGER, req INTEGER, prov INTEGER, affair TEXT,"
            " denied INTEGER); CREATE INDEX r_req ON r(req, t); CREATE INDEX r_prov ON r(prov, t);"
        )
        self._indexed = 0
        self._lock = threading.Lock()

    def _catch_up(self) -> None:
        with self._lock:
            size = self._ledger.size
            seq = max(self._indexed, self._ledger.min_index())
            while seq < size:
                end = min(size, seq + _SCAN_CHUNK)
                seqs, times, reqs, provs, denied, affairs = self._ledger.index_columns(seq, end)
                rows = zip(seqs.tolist(), times.tolist(), reqs.tolist(), provs.tolist(), affairs, denied.tolist(),
                           strict=True)
                self._db.executemany("INSERT OR REPLACE INTO r VALUES (?, ?, ?, ?, ?, ?)", rows)
                seq = end
            self._indexed = size

    def latest_checkpoint(self) -> Checkpoint:
        return self._ledger.checkpoint()

    def checkpoint_at(self, tree_size: int) -> Checkpoint:
        return self._ledger.checkpoint_at(tree_size)

    def consistency_proof(self, first_size: int, second_size: int) -> Sequence[bytes]:
        if not 0 < first_size <= second_size <= self._ledger.size:
            raise InvalidArgumentError("need 0 < first_size <= second_size <= the tree size")
        return self._ledger.prove_consistency(first_size, second_size).hashes

    def inclusion_proof(self, leaf_index: int, tree_size: int | None) -> InclusionProof:
        size = self._ledger.checkpoint().size if tree_size is None else tree_size
        if not 0 <= leaf_index < size <= self._ledger.size:
            raise InvalidArgumentError("need leaf_index < tree_size <= the tree size")
        return self._ledger.prove_inclusion(leaf_index, size)

    def _where(self, agency_id: int | None, start: datetime | None, end: datetime | None) -> tuple[str, list[int]]:
        clauses: list[str] = ["1"]
        args: list[int] = []
        if agency_id is not None:
            clauses.append("(req = ? OR prov = ?)")
            args += [agency_id, agency_id]
        if start is not None:
            clauses.append("t >= ?")
            args.append(_us(start) or 0)
        if end is not None:
            clauses.append("t < ?")
            args.append(_us(end) or 0)
        return " AND ".join(clauses), args

    def records(
        self, agency_id: int | None, start: datetime | None, end: datetime | None, after_sequence: int, limit: int
    ) -> Sequence[StoredRecord]:
        self._catch_up()
        where, args = self._where(agency_id, start, end)
        with self._lock:
            seqs = [s for (s,) in self._db.execute(
                f"SELECT seq FROM r WHERE {where} AND seq > ? ORDER BY seq LIMIT ?", [*args, after_sequence, limit]
            )]
        # Opened (each leaf checked against the tree, each opening against its commitment).
        return self._ledger.stored(seqs)

    def agency_statistics(self, agency_id: int, start: datetime | None, end: datetime | None) -> AgencyStatistics:
        """As requester: inquiries (照会) and denials (by affair, by reason); as provider: the
        provisions (提供) it answered, provided or with no data."""
        self._catch_up()
        where, args = self._where(None, start, end)
        with self._lock:
            by_affair = self._db.execute(
                f"SELECT affair, count(*), sum(denied != 0) FROM r WHERE {where} AND req = ? AND denied < ? "
                "GROUP BY affair ORDER BY affair", [*args, agency_id, _PROVISION]
            ).fetchall()
            reasons = self._db.execute(
                f"SELECT denied, count(*) FROM r WHERE {where} AND req = ? AND denied != 0 AND denied < ? "
                "GROUP BY denied", [*args, agency_id, _PROVISION],
            ).fetchall()
            (provisions,) = self._db.execute(
                f"SELECT count(*) FROM r WHERE {where} AND prov = ? AND denied IN (?, ?)",
                [*args, agency_id, _PROVISION | PROVIDED, _PROVISION | NO_DATA]
            ).fetchone()
        return AgencyStatistics(
            agency_id,
            sum(n for _a, n, _d in by_affair),
            sum(d for _a, _n, d in by_affair),
            int(provisions),
            [(a, int(n), int(d)) for a, n, d in by_affair],
            {outcome_token(c): int(n) for c, n in reasons},
        )


__all__ = ["AgencyStatistics", "Oversight"]
