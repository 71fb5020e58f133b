"""Witness cosignatures (連署) on the ledger's checkpoints: the core's side of C2SP tlog-witness.

A background task follows the ledger's published checkpoints and submits the newest one to each
configured witness (all at once, at most every ``interval`` seconds, at once when a caller is
waiting) with a consistency proof from the size that witness last accepted. Cosignatures that
verify with the witness's key are stored durably — on the core's store (renkei.store):
``cosignatures.sqlite3`` in the core's data directory, or schema ``cosignatures`` of the
PostgreSQL database it is bound to; next to the ledger and not in it — before anyone is shown
them. Inquiries never
wait for witnesses.

Readers get a checkpoint with every cosignature gathered for its size appended to the log's
signed note (a C2SP cosigned checkpoint: clients ignore keys they do not know).

A witness that refuses because it cosigned another root for a size, or cannot be shown
consistent with what it cosigned (422, a 409 without a size, a size larger than this ledger),
has seen a **split view** or a rollback: the core counts ``renkei_witness_split_view_total``
and logs an ERROR. Other failures (unreachable, 403, 404 …) are counted in
``renkei_witness_submissions_total`` and retried with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from renkei.datadir import DataDir
from renkei.ledger import Checkpoint, InclusionProof, Ledger, PersonPage, PersonRecord
from renkei.service.metrics import Metrics
from renkei.store import open_database, register_component
from renkei.witness.client import Conflict, Cosigned, Refused, WitnessEndpoint, submit

log = logging.getLogger("renkei.cosigning")

SPLIT_VIEW = "renkei_witness_split_view_total"
SUBMISSIONS = "renkei_witness_submissions_total"
#: Cosigned checkpoints are kept when at least this many records apart (plus the newest), as the
#: ledger keeps its checkpoint history.
SPACING = 256

SCHEMA = register_component("cosignatures", {
    "sqlite": """
CREATE TABLE IF NOT EXISTS witness (vkey TEXT PRIMARY KEY, size INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoint (size INTEGER PRIMARY KEY, note TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cosignature (
    size INTEGER NOT NULL REFERENCES checkpoint(size) ON DELETE CASCADE,
    vkey TEXT NOT NULL,
    line TEXT NOT NULL,
    time INTEGER NOT NULL,
    PRIMARY KEY (size, vkey)
);
""",
    "postgresql": """
CREATE TABLE IF NOT EXISTS witness (vkey TEXT PRIMARY KEY, size BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoint (size BIGINT PRIMARY KEY, note TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cosignature (
    size BIGINT NOT NULL REFERENCES checkpoint(size) ON DELETE CASCADE,
    vkey TEXT NOT NULL,
    line TEXT NOT NULL,
    time BIGINT NOT NULL,
    PRIMARY KEY (size, vkey)
)
""",
})

_SET_WITNESS = "INSERT INTO witness VALUES (?, ?) ON CONFLICT (vkey) DO UPDATE SET size = excluded.size"


class CosignatureStore:
    """The cosignatures the core gathered, and the size each witness last accepted, on the
    core's store (either driver: the statements are the SQL both share)."""

    def __init__(self, data_dir: DataDir) -> None:
        self._db = open_database(data_dir, "cosignatures", SCHEMA)

    def close(self) -> None:
        self._db.close()

    def witness_size(self, vkey: str) -> int:
        row = self._db.one("SELECT size FROM witness WHERE vkey = ?", (vkey,))
        return 0 if row is None else int(row[0])

    def set_witness_size(self, vkey: str, size: int) -> None:
        with self._db.transaction() as tx:
            tx.execute(_SET_WITNESS, (vkey, size))

    def record(self, vkey: str, size: int, note: str, lines: str, timestamp: int) -> None:
        """Store a verified cosignature of checkpoint ``note`` (durable on return); the
        previous newest checkpoint is dropped when it is fewer than SPACING records after the one
        before it."""
        with self._db.transaction() as tx:
            sizes = [int(s) for (s,) in tx.all("SELECT size FROM checkpoint ORDER BY size DESC LIMIT 2")]
            if len(sizes) == 2 and sizes[0] < size and sizes[0] - sizes[1] < SPACING:
                tx.execute("DELETE FROM cosignature WHERE size = ?", (sizes[0],))
                tx.execute("DELETE FROM checkpoint WHERE size = ?", (sizes[0],))
            row = tx.one("SELECT note FROM checkpoint WHERE size = ?", (size,))
            if row is not None and row[0] != note:  # cosignatures of another root for this size go
                tx.execute("DELETE FROM cosignature WHERE size = ?", (size,))
                tx.execute("DELETE FROM checkpoint WHERE size = ?", (size,))
            tx.execute("INSERT INTO checkpoint VALUES (?, ?) ON CONFLICT (size) DO NOTHING", (size, note))
            tx.execute("INSERT INTO cosignature VALUES (?, ?, ?, ?) ON CONFLICT (size, vkey) DO UPDATE "
                       "SET line = excluded.line, time = excluded.time", (size, vkey, lines, timestamp))
            tx.execute(_SET_WITNESS, (vkey, size))

    def cosigned(self, size: int) -> tuple[str, list[tuple[str, int]]] | None:
        """(log-signed note, [(cosignature lines, time)]) of ``size``, or None."""
        # One statement: the note and its cosignatures from one snapshot, on either driver.
        rows = self._db.all("SELECT c.note, s.line, s.time FROM checkpoint c LEFT JOIN cosignature s "
                            "ON s.size = c.size WHERE c.size = ? ORDER BY s.vkey", (size,))
        if not rows:
            return None
        return str(rows[0][0]), [(str(line), int(t)) for _, line, t in rows if line is not None]

    def newest(self, quorum: int) -> int | None:
        """The largest size with cosignatures of at least ``quorum`` witnesses."""
        row = self._db.one(
            "SELECT max(size) FROM (SELECT size FROM cosignature GROUP BY size HAVING count(*) >= ?) AS q", (quorum,)
        )
        return None if row is None or row[0] is None else int(row[0])


@dataclass(frozen=True)
class CosignedCheckpoint:
    """A checkpoint with the witnesses' cosignatures appended to its note."""

    checkpoint: Checkpoint
    witnesses: tuple[tuple[str, int], ...]  # (witness name, cosignature time)


def _cosigned(note: str, sigs: Sequence[tuple[str, int]]) -> CosignedCheckpoint:
    full = note + "".join(line for line, _ in sigs)
    names = tuple((line.split(" ", 2)[1], t) for line, t in sigs)
    return CosignedCheckpoint(Checkpoint.from_note(full), names)


@dataclass
class _Witness:
    endpoint: WitnessEndpoint
    size: int
    root: bytes | None  # of the checkpoint it last cosigned, when known
    alarmed: tuple[int, bytes] | None = None  # the checkpoint last refused as a split view
    failures: int = 0
    next_try: float = 0.0


class Cosigner:
    """Gathers witness cosignatures for the ledger's checkpoints (see the module docstring)."""

    def __init__(self, ledger: Ledger, store: CosignatureStore, witnesses: Sequence[WitnessEndpoint],
                 metrics: Metrics, *, quorum: int = 1, interval: float = 1.0, timeout: float = 10.0) -> None:
        self._ledger = ledger
        self._store = store
        self._witnesses = [self._known(w) for w in witnesses]
        self._metrics = metrics
        self.quorum = max(1, min(quorum, len(witnesses)))
        self._interval = interval
        self._timeout = timeout
        self._kick = asyncio.Event()
        self._changed = asyncio.Condition()
        self._newest = store.newest(self.quorum)
        self._stopping = False
        self._split_views = metrics.counter(
            SPLIT_VIEW, "Witnesses that refused a checkpoint as inconsistent with one they cosigned "
                        "(a split view or rollback of the ledger): investigate at once.", ("witness",))
        self._submissions = metrics.counter(
            SUBMISSIONS, "Checkpoint submissions to witnesses, by witness and outcome.", ("outcome", "witness"))
        for w in self._witnesses:
            self._split_views.inc(w.endpoint.name, n=0)

    def _known(self, endpoint: WitnessEndpoint) -> _Witness:
        size = self._store.witness_size(endpoint.vkey)
        stored = self._store.cosigned(size) if size else None
        return _Witness(endpoint, size, None if stored is None else Checkpoint.from_note(stored[0]).root)

    @property
    def witnesses(self) -> list[WitnessEndpoint]:
        return [w.endpoint for w in self._witnesses]

    @property
    def newest_size(self) -> int | None:
        return self._newest

    # -- readers -------------------------------------------------------------------------------

    def stored(self, size: int) -> CosignedCheckpoint | None:
        """The cosigned checkpoint of ``size`` when one is kept and it is of this ledger (its
        root is the ledger's at that size: cosignatures of a fork are never served); blocking."""
        stored = self._store.cosigned(size)
        if stored is None or not 0 < size <= self._ledger.size:
            return None
        cc = _cosigned(stored[0], stored[1])
        return cc if cc.checkpoint.root == self._ledger.root_at(size) else None

    def at(self, checkpoint: Checkpoint) -> CosignedCheckpoint:
        """``checkpoint`` with the cosignatures gathered for exactly it (blocking read)."""
        stored = self._store.cosigned(checkpoint.size)
        if stored is None or Checkpoint.from_note(stored[0]).root != checkpoint.root:
            return CosignedCheckpoint(checkpoint, ())
        return _cosigned(checkpoint.note, stored[1])

    async def latest(self, wait: float = 2.0) -> CosignedCheckpoint:
        """The newest checkpoint cosigned by a quorum, waiting up to ``wait`` seconds for the
        witnesses to reach the ledger's current size; the ledger's latest checkpoint (with the
        cosignatures it has, often none) when they do not in time."""
        target = self._ledger.size
        if target > 0 and (self._newest is None or self._newest < target):
            self._kick.set()
            try:
                async with self._changed:
                    await asyncio.wait_for(
                        self._changed.wait_for(lambda: self._newest is not None and self._newest >= target), wait)
            except TimeoutError:
                pass
        loop = asyncio.get_running_loop()
        newest = self._newest
        if newest is not None and newest >= target:
            cosigned = await loop.run_in_executor(None, self.stored, newest)
            if cosigned is not None:
                return cosigned
        return await loop.run_in_executor(None, lambda: self.at(self._ledger.checkpoint()))

    def attach(self, page: PersonPage, cosigned: CosignedCheckpoint) -> PersonPage:
        """A person's page against ``cosigned`` when it covers every record of the page (proofs
        recomputed for its size); the page unchanged otherwise."""
        cp = cosigned.checkpoint
        if cp.size < page.checkpoint.size:
            return page
        if cp.size == page.checkpoint.size:
            return PersonPage(page.records, page.next_before, cp)
        return reprove(self._ledger, page, cp)

    # -- the background task -------------------------------------------------------------------

    async def run(self) -> None:
        """Follow the ledger until cancelled."""
        async with httpx.AsyncClient(timeout=self._timeout, http2=False) as client:
            while True:
                try:
                    await self._round(client)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("cosigning round failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._kick.wait(), self._interval)
                self._kick.clear()

    async def _round(self, client: httpx.AsyncClient) -> None:
        loop = asyncio.get_running_loop()
        cp = await loop.run_in_executor(None, self._ledger.checkpoint)
        now = time.monotonic()
        # A witness that cosigned this size with another root is shown this one too: it refuses (a
        # split view), which is what the alarm is for.
        due = [w for w in self._witnesses if (w.size, w.root) != (cp.size, cp.root) and w.next_try <= now]
        if not due:
            return
        await asyncio.gather(*(self._submit(client, w, cp) for w in due))
        newest = await loop.run_in_executor(None, self._store.newest, self.quorum)
        if newest != self._newest:
            self._newest = newest
            async with self._changed:
                self._changed.notify_all()

    def _alarm(self, w: _Witness, cp: Checkpoint, why: str) -> None:
        if w.alarmed == (cp.size, cp.root):  # counted once per refused checkpoint, retried with backoff
            log.warning("witness %s still refuses ledger checkpoint %d (split view)", w.endpoint.name, cp.size)
            return
        w.alarmed = (cp.size, cp.root)
        self._split_views.inc(w.endpoint.name)
        log.error("SPLIT VIEW ALARM: witness %s refused ledger checkpoint %d (%s): the ledger has shown "
                  "inconsistent checkpoints or was rolled back", w.endpoint.name, cp.size, why)

    def _failed(self, w: _Witness, outcome: str) -> None:
        self._submissions.inc(outcome, w.endpoint.name)
        w.failures += 1
        w.next_try = time.monotonic() + min(30.0, 0.5 * 2 ** min(w.failures, 6))

    async def _submit(self, client: httpx.AsyncClient, w: _Witness, cp: Checkpoint) -> None:
        loop = asyncio.get_running_loop()
        text = cp.note[: cp.note.rindex("\n\n") + 1]
        for _ in range(3):  # a 409 tells the witness's size; resubmit from it
            old = w.size
            if old > cp.size:
                self._alarm(w, cp, f"the witness holds size {old}, larger than the ledger")
                self._failed(w, "rollback")
                return
            proof: list[bytes] = []
            if 0 < old < cp.size:
                proof = (await loop.run_in_executor(None, self._ledger.prove_consistency, old, cp.size)).hashes
            try:
                outcome = await submit(client, w.endpoint, old, proof, cp.note, text)
            except httpx.HTTPError as e:
                log.warning("witness %s unreachable: %s", w.endpoint.name, type(e).__name__)
                self._failed(w, "unreachable")
                return
            if isinstance(outcome, Cosigned):
                await loop.run_in_executor(None, self._store.record, w.endpoint.vkey, cp.size, cp.note,
                                           outcome.lines, outcome.timestamp)
                w.size, w.root, w.failures, w.next_try = cp.size, cp.root, 0, 0.0
                self._submissions.inc("cosigned", w.endpoint.name)
                return
            if isinstance(outcome, Conflict):
                if outcome.size is None:
                    self._alarm(w, cp, "409 without a size: another root for the same size")
                    self._failed(w, "split_view")
                    return
                self._submissions.inc("conflict", w.endpoint.name)
                w.size, w.root = outcome.size, None
                await loop.run_in_executor(None, self._store.set_witness_size, w.endpoint.vkey, outcome.size)
                continue
            assert isinstance(outcome, Refused)
            if outcome.status == 422:
                self._alarm(w, cp, outcome.message)
                self._failed(w, "split_view")
                return
            log.warning("witness %s refused checkpoint %d: %d %s", w.endpoint.name, cp.size, outcome.status,
                        outcome.message)
            self._failed(w, f"http_{outcome.status}")
            return
        self._failed(w, "conflict_loop")


def reprove(ledger: Ledger, page: PersonPage, checkpoint: Checkpoint) -> PersonPage:
    """``page`` with every inclusion proof against ``checkpoint`` (a cosigned one at least as
    large as every record of the page)."""
    out = []
    for r in page.records:
        p = ledger.prove_inclusion(r.proof.seq, checkpoint.size)
        if p.root != checkpoint.root:
            raise AssertionError("the ledger's root differs from its own checkpoint")
        out.append(PersonRecord(r.record, r.entry, InclusionProof(p.seq, p.size, r.proof.leaf_hash, p.hashes,
                                                                  checkpoint.root)))
    return PersonPage(out, page.next_before, checkpoint)


__all__ = ["SPLIT_VIEW", "SUBMISSIONS", "CosignatureStore", "CosignedCheckpoint", "Cosigner",
           "reprove"]
