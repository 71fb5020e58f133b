"""The commission's PIA decisions as the linkage core holds them (番号法 第28条: no linkage without an
approved 特定個人情報保護評価).

A core data directory is **bound** to the commission's decision log at init
(``core/commission.vkey``: the log's verifier key, ``renkei core init --commission-vkey``; ``renkei
up`` binds the box's core to its ``ppc``). From then on an agency's PIA state is what the
commission decided and nothing else: the commission's service delivers each decision record with
an inclusion proof against a checkpoint signed by its log key (PiaDecisionService, role
``commission``); the core checks the signature and the proof, applies the records in log order and
keeps each with its evidence (tables ``commission_pias`` and ``commission_evidence`` in the
registry's database: ``registry.sqlite3`` or PostgreSQL, renkei.store). When it decides whether an
agency may link, the core re-checks the evidence of the decision it relies on (once per process
and decision): a row edited in the database without a record the commission signed counts for
nothing. The registry's own ``pias`` table (the library's ``add_pia`` for embedders without a
commission) is ignored by a bound core; the operator's tools
to set PIA state are gone.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from dataclasses import dataclass

from renkei.datadir import DataDir, write_atomic
from renkei.errors import FailedPreconditionError, InvalidArgumentError
from renkei.ledger import parse_vkey, verify_checkpoint, verify_inclusion
from renkei.ppc.review import LOG_ORIGIN, Decision, leaf_hash, parse_decision
from renkei.store import Database, Tx, register_component

BINDING = "commission.vkey"

SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS commission_pias (
    pia_id      INTEGER PRIMARY KEY,       -- the commission's PIA id
    agency_id   INTEGER NOT NULL,
    level       TEXT,
    state       TEXT NOT NULL,             -- submitted, approved, returned, revoked, expired
    approved_on TEXT,
    expires_on  TEXT,
    seq         INTEGER NOT NULL,          -- the decision record this state rests on
    decided_at  TEXT
);
CREATE INDEX IF NOT EXISTS commission_pias_agency ON commission_pias(agency_id);
CREATE TABLE IF NOT EXISTS commission_evidence (
    seq        INTEGER PRIMARY KEY,
    entry      BLOB NOT NULL,
    proof      TEXT NOT NULL,              -- JSON list of hex hashes
    checkpoint TEXT NOT NULL               -- the signed note the proof is against
);
CREATE TABLE IF NOT EXISTS commission_applied (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    applied_through INTEGER NOT NULL
);
"""

POSTGRES_SCHEMA = """
CREATE TABLE IF NOT EXISTS commission_pias (
    pia_id      BIGINT PRIMARY KEY,
    agency_id   BIGINT NOT NULL,
    level       TEXT,
    state       TEXT NOT NULL,
    approved_on TEXT,
    expires_on  TEXT,
    seq         BIGINT NOT NULL,
    decided_at  TEXT
);
CREATE INDEX IF NOT EXISTS commission_pias_agency ON commission_pias(agency_id);
CREATE TABLE IF NOT EXISTS commission_evidence (
    seq        BIGINT PRIMARY KEY,
    entry      BYTEA NOT NULL,
    proof      TEXT NOT NULL,
    checkpoint TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS commission_applied (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    applied_through BIGINT NOT NULL
);
"""

#: Part of the registry's component (the same database; renkei.store).
register_component("registry", {"sqlite": SQLITE_SCHEMA, "postgresql": POSTGRES_SCHEMA})


def bound_vkey(data_dir: DataDir) -> str | None:
    """The commission's decision-log verifier key this core is bound to, or None."""
    path = data_dir.path / BINDING
    if not path.exists():
        return None
    return path.read_text().strip()


def bind(data_dir: DataDir, vkey: str) -> None:
    """Bind a core data directory to the commission's decision log (once; another key is refused)."""
    name, _id, _key = parse_vkey(vkey)
    if name != LOG_ORIGIN:
        raise InvalidArgumentError(f"the commission's decision-log key names {LOG_ORIGIN!r}, not {name!r}")
    current = bound_vkey(data_dir)
    if current is not None:
        if current != vkey:
            raise FailedPreconditionError(f"{data_dir.path / BINDING} binds this core to another commission key; "
                                          f"a core's commission is fixed at init")
        return
    write_atomic(data_dir.path / BINDING, (vkey + "\n").encode(), 0o600)


@dataclass(frozen=True)
class CommissionPia:
    pia_id: int
    agency_id: int
    level: str | None
    state: str
    approved_on: str | None
    expires_on: str | None
    seq: int
    decided_at: str | None

    def in_force(self, day: str) -> bool:
        return (self.state == "approved" and self.approved_on is not None and self.expires_on is not None
                and self.approved_on <= day <= self.expires_on)


class CommissionPias:
    """The commission's decisions in the core's registry (the registry's database)."""

    def __init__(self, db: Database, vkey: str, *, read_only: bool = False) -> None:
        self._db = db
        self.vkey = vkey
        if not read_only:
            schema = SQLITE_SCHEMA if db.kind == "sqlite" else POSTGRES_SCHEMA
            with db.transaction() as tx:
                for statement in schema.split(";"):
                    if statement.strip():
                        tx.execute(statement)
        # A read-only registry of a core that never applied a decision has none of the tables.
        self._tables = not read_only or db.has_table("commission_applied")
        self._apply = threading.Lock()
        self._verified: set[int] = set()
        self._verified_lock = threading.Lock()

    @classmethod
    def of(cls, data_dir: DataDir, db: Database, *, read_only: bool = False) -> CommissionPias | None:
        vkey = bound_vkey(data_dir)
        return None if vkey is None else cls(db, vkey, read_only=read_only)

    # -- applying ---------------------------------------------------------------------------------

    def applied_through(self) -> int:
        if not self._tables:
            return -1
        return self._through(self._db.one("SELECT applied_through FROM commission_applied WHERE id = 1"))

    @staticmethod
    def _through(row: tuple[object, ...] | None) -> int:
        return -1 if row is None else int(str(row[0]))

    def apply(self, checkpoint: str, decisions: list[tuple[int, bytes, list[bytes]]]) -> tuple[int, int]:
        """Verify and apply decisions (sequence, entry, inclusion proof) in log order against the signed
        ``checkpoint``; returns (applied through, applied now). Decisions already applied are
        skipped; a gap is refused (the commission resends from ``applied_through + 1``)."""
        cp = verify_checkpoint(checkpoint, self.vkey)
        applied = 0
        with self._apply:
            through = self.applied_through()
            for seq, entry, proof in sorted(decisions, key=lambda d: d[0]):
                if seq <= through:
                    continue
                if seq != through + 1:
                    raise FailedPreconditionError(f"decision {seq} arrived before {through + 1}: send from "
                                                  f"{through + 1}")
                if seq >= cp.size:
                    raise InvalidArgumentError(f"decision {seq} is not in the checkpoint's tree of {cp.size}")
                verify_inclusion(seq, cp.size, leaf_hash(entry), proof, cp.root)
                d = parse_decision(entry)
                if d.seq != seq:
                    raise InvalidArgumentError(f"record {seq} names sequence {d.seq}")
                with self._db.transaction() as tx:
                    # Another front-end on the same store may have applied it meanwhile.
                    now = self._through(tx.one("SELECT applied_through FROM commission_applied WHERE id = 1"))
                    if now < seq:
                        tx.execute(
                            "INSERT INTO commission_evidence(seq, entry, proof, checkpoint) VALUES (?, ?, ?, ?) "
                            "ON CONFLICT(seq) DO UPDATE SET entry = excluded.entry, proof = excluded.proof, "
                            "checkpoint = excluded.checkpoint",
                            (seq, bytes(entry), json.dumps([h.hex() for h in proof]), checkpoint))
                        self._project(tx, d)
                        tx.execute("INSERT INTO commission_applied(id, applied_through) VALUES (1, ?) "
                                   "ON CONFLICT(id) DO UPDATE SET applied_through = excluded.applied_through", (seq,))
                        applied += 1
                through = max(seq, now)
        return through, applied

    def _project(self, tx: Tx, d: Decision) -> None:
        stamp = None if d.time is None else d.time.isoformat(timespec="seconds")
        if d.kind == "submitted":
            tx.execute(
                "INSERT INTO commission_pias(pia_id, agency_id, level, state, approved_on, expires_on, seq, "
                "decided_at) VALUES (?, ?, ?, 'submitted', NULL, NULL, ?, ?) ON CONFLICT(pia_id) DO UPDATE SET "
                "agency_id = excluded.agency_id, level = excluded.level, state = excluded.state, approved_on = NULL, "
                "expires_on = NULL, seq = excluded.seq, decided_at = excluded.decided_at",
                (d.pia_id, d.agency_id, d.level, d.seq, stamp))
            return
        row = tx.one("SELECT agency_id FROM commission_pias WHERE pia_id = ?", (d.pia_id,))
        if row is None or int(row[0]) != d.agency_id:
            raise InvalidArgumentError(f"decision {d.seq} is on PIA {d.pia_id}, which the core never saw submitted by "
                                       f"agency {d.agency_id}")
        state = {"approved": "approved", "returned": "returned", "revoked": "revoked", "expired": "expired"}[d.kind]
        tx.execute(
            "UPDATE commission_pias SET state = ?, level = coalesce(?, level), approved_on = coalesce(?, approved_on), "
            "expires_on = coalesce(?, expires_on), seq = ?, decided_at = ? WHERE pia_id = ?",
            (state, d.level, d.approved_on, d.expires_on, d.seq, stamp, d.pia_id))

    # -- reading ----------------------------------------------------------------------------------

    def pias(self, agency_id: int) -> list[CommissionPia]:
        if not self._tables:
            return []
        rows = self._db.all(
            "SELECT pia_id, agency_id, level, state, approved_on, expires_on, seq, decided_at FROM commission_pias "
            "WHERE agency_id = ? ORDER BY pia_id", (int(agency_id),))
        return [CommissionPia(int(r[0]), int(r[1]), r[2], r[3], r[4], r[5], int(r[6]), r[7]) for r in rows]

    def proven(self, pia: CommissionPia) -> bool:
        """Whether the decision ``pia`` rests on is a record the commission signed, saying what the
        row says (checked once per process and decision)."""
        with self._verified_lock:
            if pia.seq in self._verified:
                return True
        row = self._db.one("SELECT entry, proof, checkpoint FROM commission_evidence WHERE seq = ?", (pia.seq,))
        if row is None:
            return False
        entry, proof, note = bytes(row[0]), [bytes.fromhex(h) for h in json.loads(row[1])], str(row[2])
        try:
            cp = verify_checkpoint(note, self.vkey)
            verify_inclusion(pia.seq, cp.size, leaf_hash(entry), proof, cp.root)
            d = parse_decision(entry)
        except Exception:
            return False
        ok = (d.seq == pia.seq and d.pia_id == pia.pia_id and d.agency_id == pia.agency_id
              and d.kind == pia.state and (d.kind != "approved" or (d.approved_on, d.expires_on) ==
                                           (pia.approved_on, pia.expires_on)))
        if ok:
            with self._verified_lock:
                self._verified.add(pia.seq)
        return ok

    def in_force(self, agency_id: int, day: dt.date) -> CommissionPia | None:
        """An approved PIA of the agency in force on ``day`` whose decision is proven."""
        text = day.isoformat()
        for pia in self.pias(agency_id):
            if pia.in_force(text) and self.proven(pia):
                return pia
        return None


def describe(pias: list[CommissionPia], day: dt.date) -> str:
    """Why none of ``pias`` admits the agency (for the refusal's message)."""
    if not pias:
        return "the commission has decided on none"
    last = pias[-1]
    if last.state == "approved" and last.expires_on is not None and last.expires_on < day.isoformat():
        return f"the latest, PIA {last.pia_id}, expired on {last.expires_on}"
    if last.state == "approved" and last.approved_on is not None and last.approved_on > day.isoformat():
        return f"the latest, PIA {last.pia_id}, takes effect on {last.approved_on}"
    if last.state == "approved":
        return f"the latest, PIA {last.pia_id}, lacks the commission's signed decision"
    return f"the latest, PIA {last.pia_id}, is {last.state}"


__all__ = ["BINDING", "POSTGRES_SCHEMA", "SQLITE_SCHEMA", "CommissionPia", "CommissionPias", "bind", "bound_vkey",
           "describe"]
