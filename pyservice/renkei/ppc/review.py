"""The commission's review of 特定個人情報保護評価 (PIA; 番号法 第27条・第28条).

An agency submits its evaluation — the level (基礎項目評価, 重点項目評価, 全項目評価), the
特定個人情報ファイル it covers, the data it links, the document's hash — and the commission's
reviewers approve it for a period, return it with their reasons, or revoke an approval; an
approval expires on its date. Nothing here decides an inquiry: the linkage core does, with the
decisions this module records and hands it.

**The decision log is the truth.** Every submission and decision is first a record of the
commission's tamper-evident log — the ledger engine of the core (:class:`renkei.ledger.Ledger`),
in ``ppc/decisions/`` under ``keys/ppc-log.key``, origin ``ppc.renkei.example/pia`` — and only
then applied to ``pia.sqlite3``, which is a projection of the log (replayed from it when a crash
fell between the two). A record (:func:`decision_record`):

=================  =============================================================================
requester          the agency id
provider           the PIA id
affair             ``pia-submit``, ``pia-approve``, ``pia-return``, ``pia-revoke``, ``pia-expire``
items              ``level:<basic|priority|full>``, ``from:<date>``, ``until:<date>``, ``revises:<id>``
table hash         SHA-256 of the submission (level, title, files, linked data, document hash)
pseudonym          SHA-256 of ("renkei-ppc-agency-v1\\0" ‖ agency id): the agency's records, in one index;
                   the public leaf (record layout 2) carries it only as a commitment
outcome            permitted (submit, approve; the permit id is the decision id) or denied with the
                   reviewer's reason (return 2, revoke 3, expire 4)
=================  =============================================================================

The agency sees every record on its PIAs with an inclusion proof; the core receives them with
proofs against a signed checkpoint and verifies both with the log's key it was bound to.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
import threading
from dataclasses import dataclass, field

from renkei.datadir import DataDir
from renkei.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError, PermissionDeniedError
from renkei.ledger import Checkpoint, InclusionProof, Ledger, LedgerRecord

SERVICE = "ppc"
LOG_KEY = "ppc-log"
KEYS = {LOG_KEY: 32}
LOG_ORIGIN = "ppc.renkei.example/pia"
LOG_DIR = "decisions"
DB_NAME = "pia.sqlite3"

LEVELS = {"basic": "基礎項目評価", "priority": "重点項目評価", "full": "全項目評価"}
#: Decision kinds → the record's affair token.
AFFAIRS = {"submitted": "pia-submit", "approved": "pia-approve", "returned": "pia-return", "revoked": "pia-revoke",
           "expired": "pia-expire"}
KINDS = {v: k for k, v in AFFAIRS.items()}
#: Denial codes of the records that end or refuse a PIA.
DENIAL = {"returned": 2, "revoked": 3, "expired": 4}
#: The state a PIA is in after each decision kind.
STATE_AFTER = {"submitted": "submitted", "approved": "approved", "returned": "returned", "revoked": "revoked",
               "expired": "expired"}
MAX_TEXT = 200
MAX_LIST = 100
MAX_REASON = 1000
#: An approval runs at most this long (an evaluation is re-done at least every five years).
MAX_APPROVAL_YEARS = 5

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pias (
    pia_id          INTEGER PRIMARY KEY,
    agency_id       INTEGER NOT NULL,
    level           TEXT NOT NULL,
    title           TEXT NOT NULL,
    files           TEXT NOT NULL,      -- JSON array
    linked_data     TEXT NOT NULL,      -- JSON array
    document_sha256 BLOB NOT NULL,
    content_sha256  BLOB NOT NULL,
    revises         INTEGER NOT NULL DEFAULT 0,
    state           TEXT NOT NULL,
    submitted_at    TEXT NOT NULL,
    approved_on     TEXT,
    expires_on      TEXT,
    decided_at      TEXT,
    decided_by      TEXT,
    reason          TEXT,
    last_seq        INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS pias_agency ON pias(agency_id);
-- How far each consumer (the linkage core) has applied the log.
CREATE TABLE IF NOT EXISTS delivery (
    target          TEXT PRIMARY KEY,
    applied_through INTEGER NOT NULL
);
"""


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def agency_pseudonym(agency_id: int) -> bytes:
    """The key of an agency's records in the decision log (public: PIAs are not personal data)."""
    return hashlib.sha256(b"renkei-ppc-agency-v1\0" + int(agency_id).to_bytes(4, "big")).digest()


def leaf_hash(entry: bytes) -> bytes:
    """RFC 9162 leaf hash of a log entry."""
    return hashlib.sha256(b"\x00" + entry).digest()


@dataclass(frozen=True)
class Submission:
    """What an agency submits (canonical: :meth:`content_hash` covers all of it)."""

    agency_id: int
    level: str
    title: str
    files: tuple[str, ...]
    linked_data: tuple[str, ...]
    document_sha256: bytes
    revises: int = 0

    def check(self) -> None:
        if self.level not in LEVELS:
            raise InvalidArgumentError(f"level must be one of {', '.join(LEVELS)} ({', '.join(LEVELS.values())})")
        if not self.title.strip() or len(self.title) > MAX_TEXT:
            raise InvalidArgumentError(f"a PIA needs the 評価書's title (at most {MAX_TEXT} characters)")
        if not self.files:
            raise InvalidArgumentError("a PIA covers at least one 特定個人情報ファイル")
        for what, values in (("files", self.files), ("linked_data", self.linked_data)):
            if len(values) > MAX_LIST or any(not v.strip() or len(v) > MAX_TEXT for v in values):
                raise InvalidArgumentError(f"{what}: at most {MAX_LIST} entries of 1 to {MAX_TEXT} characters")
        if len(self.document_sha256) != 32:
            raise InvalidArgumentError("document_sha256 is the 32-byte SHA-256 of the evaluation document")

    def content_hash(self) -> bytes:
        doc = {"agency": self.agency_id, "level": self.level, "title": self.title, "files": list(self.files),
               "linked_data": list(self.linked_data), "document_sha256": self.document_sha256.hex(),
               "revises": self.revises}
        return hashlib.sha256(json.dumps(doc, ensure_ascii=False, sort_keys=True).encode()).digest()


@dataclass(frozen=True)
class Pia:
    pia_id: int
    agency_id: int
    level: str
    title: str
    files: tuple[str, ...]
    linked_data: tuple[str, ...]
    document_sha256: bytes
    content_sha256: bytes
    revises: int
    state: str
    submitted_at: str
    approved_on: str | None
    expires_on: str | None
    decided_at: str | None
    decided_by: str | None
    reason: str | None
    last_seq: int


@dataclass(frozen=True)
class Decision:
    """A record of the decision log read back: what it says and its exact bytes."""

    seq: int
    kind: str
    agency_id: int
    pia_id: int
    time: dt.datetime | None
    level: str | None
    approved_on: str | None
    expires_on: str | None
    revises: int
    reason: str
    content_sha256: bytes
    entry: bytes
    proof: list[bytes] = field(default_factory=list)


def decision_record(kind: str, agency_id: int, pia_id: int, content: bytes, *, level: str | None = None,
                    approved_on: str | None = None, expires_on: str | None = None, revises: int = 0,
                    reason: str = "") -> LedgerRecord:
    """The decision log's record of one decision (the layout in the module docstring)."""
    items = []
    if level is not None:
        items.append(f"level:{level}")
    if approved_on is not None:
        items.append(f"from:{approved_on}")
    if expires_on is not None:
        items.append(f"until:{expires_on}")
    if revises:
        items.append(f"revises:{revises}")
    denied = DENIAL.get(kind, 0)
    return LedgerRecord(requester=agency_id, provider=pia_id, affair=AFFAIRS[kind], items=items,
                        table_hash=content, pseudonym=agency_pseudonym(agency_id),
                        permit_id=bytes(16) if denied else secrets.token_bytes(16), denied_code=denied,
                        reason=reason if denied else "")


def parse_decision(entry: bytes, proof: list[bytes] | None = None) -> Decision:
    """A decision from its log entry, the public leaf (record layout 2) the tree hashes: everything
    a decision says is in clear there; the agency's pseudonym only as a commitment, which nobody
    needs (the agency id is the requester). Raises InvalidArgumentError for an entry that is not one."""
    r, _commitment = LedgerRecord.decode_public(entry)
    kind = KINDS.get(r.affair)
    if kind is None:
        raise InvalidArgumentError(f"record {r.seq} is not a PIA decision")
    fields: dict[str, str] = {}
    for item in r.items:
        key, _, value = item.partition(":")
        fields[key] = value
    return Decision(int(r.seq or 0), kind, r.requester, r.provider, r.time, fields.get("level"), fields.get("from"),
                    fields.get("until"), int(fields.get("revises", "0") or 0), r.reason, r.table_hash, entry,
                    list(proof or []))


def _date(value: str | dt.date | None, what: str) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise InvalidArgumentError(f"{what} must be a date YYYY-MM-DD") from None


def _years_after(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return dt.date(day.year + years, 2, 28)


def init_data_dir(path: str | os.PathLike[str]) -> DataDir:
    """Create (or complete) the commission's PIA data directory: its log key, registry, log."""
    data_dir = DataDir.init(path, SERVICE, KEYS)
    PiaReview(data_dir).close()
    return data_dir


_COLUMNS = ("pia_id, agency_id, level, title, files, linked_data, document_sha256, content_sha256, revises, state, "
            "submitted_at, approved_on, expires_on, decided_at, decided_by, reason, last_seq")


def _pia(row: tuple[object, ...]) -> Pia:
    (pia_id, agency, level, title, files, linked, doc, content, revises, state, submitted, approved, expires,
     decided, by, reason, last) = row
    return Pia(int(pia_id), int(agency), str(level), str(title), tuple(json.loads(str(files))),  # type: ignore[call-overload]
               tuple(json.loads(str(linked))), bytes(doc), bytes(content), int(revises), str(state),  # type: ignore[call-overload]
               str(submitted), None if approved is None else str(approved), None if expires is None else str(expires),
               None if decided is None else str(decided), None if by is None else str(by),
               None if reason is None else str(reason), int(last))  # type: ignore[call-overload]


class PiaReview:
    """The commission's PIA registry and its decision log (one process: the log's writer lock)."""

    def __init__(self, data_dir: DataDir | str | os.PathLike[str]) -> None:
        self.data_dir = data_dir if isinstance(data_dir, DataDir) else DataDir(data_dir, SERVICE)
        self.log = Ledger(self.data_dir, LOG_ORIGIN, key_name=LOG_KEY, subdir=LOG_DIR)
        self._db = self.data_dir.connect(DB_NAME)
        self._db.executescript(_SCHEMA)
        self._lock = threading.RLock()
        self._replay()

    def close(self) -> None:
        self.log.close()
        self._db.close()

    def __enter__(self) -> PiaReview:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def vkey(self) -> str:
        return self.log.vkey

    # -- the projection of the log ----------------------------------------------------------------

    def _replay(self) -> None:
        """Apply log records the registry has not seen (a crash between the two)."""
        with self._lock:
            seen = self._db.execute("SELECT coalesce(max(last_seq), -1) FROM pias").fetchone()[0]
            for stored in self.log.stored(list(range(int(seen) + 1, self.log.size))):
                self._project(parse_decision(stored.entry), None, None)
            # A submission written but never recorded (the process died before the log's append).
            self._db.execute("DELETE FROM pias WHERE last_seq = -1")

    def _project(self, d: Decision, submission: Submission | None, actor: str | None) -> None:
        stamp = (d.time or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")
        if d.kind == "submitted":
            # The submission's row was written (last_seq -1) before its record was appended.
            self._db.execute("UPDATE pias SET last_seq = ?, submitted_at = ? WHERE pia_id = ?", (d.seq, stamp,
                                                                                                 d.pia_id))
            return
        self._db.execute(
            "UPDATE pias SET state = ?, approved_on = coalesce(?, approved_on), expires_on = coalesce(?, expires_on), "
            "decided_at = ?, decided_by = ?, reason = ?, last_seq = ? WHERE pia_id = ?",
            (STATE_AFTER[d.kind], d.approved_on, d.expires_on, stamp, actor, d.reason or None, d.seq, d.pia_id))

    def _record(self, record: LedgerRecord, submission: Submission | None, actor: str | None) -> Decision:
        """Append to the log (durable), then project into the registry."""
        seq = self.log.append(record)
        # What the log holds (its public leaf, read back and checked), not what was handed in.
        decision = parse_decision(self.log.stored([seq])[0].entry)
        with self._lock:
            self._project(decision, submission, actor)
        return decision

    # -- agencies ---------------------------------------------------------------------------------

    def submit(self, submission: Submission) -> Pia:
        """A PIA submitted by an agency (a revision of its returned PIA with ``revises``)."""
        submission.check()
        if submission.revises:
            old = self.pia(submission.revises)
            if old.agency_id != submission.agency_id:
                raise PermissionDeniedError("an agency revises its own PIAs only")
            if old.state != "returned":
                raise FailedPreconditionError(f"PIA {old.pia_id} is {old.state}: only a returned PIA is revised")
        with self._lock:
            pia_id = int(self._db.execute("SELECT coalesce(max(pia_id), 0) + 1 FROM pias").fetchone()[0])
            # The text first (not yet recorded: last_seq -1), then the record, which makes it a submission.
            self._db.execute(
                f"INSERT INTO pias({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'submitted', ?, NULL, NULL, NULL, "
                "NULL, NULL, -1)",
                (pia_id, submission.agency_id, submission.level, submission.title,
                 json.dumps(list(submission.files), ensure_ascii=False),
                 json.dumps(list(submission.linked_data), ensure_ascii=False), submission.document_sha256,
                 submission.content_hash(), submission.revises, _now()))
            self._record(decision_record("submitted", submission.agency_id, pia_id, submission.content_hash(),
                                         level=submission.level, revises=submission.revises), submission, None)
        return self.pia(pia_id)

    # -- reviewers --------------------------------------------------------------------------------

    def decide(self, pia_id: int, kind: str, *, reviewer: str, reason: str = "",
               approved_on: str | dt.date | None = None, expires_on: str | dt.date | None = None) -> Pia:
        """A reviewer's decision: ``approved`` (a period of at most five years), ``returned`` or
        ``revoked`` (each with its reason)."""
        if kind not in ("approved", "returned", "revoked"):
            raise InvalidArgumentError("a decision approves, returns or revokes")
        if len(reason) > MAX_REASON:
            raise InvalidArgumentError(f"the reason is at most {MAX_REASON} characters")
        with self._lock:
            pia = self.pia(pia_id)
            allowed = {"approved": ("submitted",), "returned": ("submitted",), "revoked": ("approved",)}[kind]
            if pia.state not in allowed:
                raise FailedPreconditionError(f"PIA {pia_id} is {pia.state}: it cannot be {kind}")
            if kind == "approved":
                start = _date(approved_on or dt.datetime.now(dt.UTC).date(), "approved_on")
                if expires_on is None:
                    raise InvalidArgumentError("an approval needs expires_on")
                end = _date(expires_on, "expires_on")
                if end < start:
                    raise InvalidArgumentError("an approval cannot expire before it starts")
                if end > _years_after(start, MAX_APPROVAL_YEARS):
                    raise InvalidArgumentError(f"an approval runs at most {MAX_APPROVAL_YEARS} years")
                record = decision_record("approved", pia.agency_id, pia_id, pia.content_sha256, level=pia.level,
                                         approved_on=start.isoformat(), expires_on=end.isoformat())
            else:
                if not reason.strip():
                    raise InvalidArgumentError(f"a PIA is {kind} with its reason")
                record = decision_record(kind, pia.agency_id, pia_id, pia.content_sha256, reason=reason.strip())
            self._record(record, None, reviewer)
        return self.pia(pia_id)

    def expire_due(self, today: dt.date | None = None) -> list[Pia]:
        """Record the expiry of every approval whose last day is before ``today``."""
        day = (today or dt.datetime.now(dt.UTC).date()).isoformat()
        out = []
        with self._lock:
            due = [self.pia(int(r[0])) for r in self._db.execute(
                "SELECT pia_id FROM pias WHERE state = 'approved' AND expires_on < ?", (day,)).fetchall()]
            for pia in due:
                self._record(decision_record("expired", pia.agency_id, pia.pia_id, pia.content_sha256,
                                             reason=f"the approval ended on {pia.expires_on}"), None, "ppc")
                out.append(self.pia(pia.pia_id))
        return out

    # -- reading ----------------------------------------------------------------------------------

    def pia(self, pia_id: int) -> Pia:
        with self._lock:
            row = self._db.execute(f"SELECT {_COLUMNS} FROM pias WHERE pia_id = ?", (int(pia_id),)).fetchone()
        if row is None:
            raise NotFoundError(f"no PIA {pia_id}")
        return _pia(row)

    def pias(self, agency_id: int | None = None) -> list[Pia]:
        sql, args = f"SELECT {_COLUMNS} FROM pias", []
        if agency_id is not None:
            sql += " WHERE agency_id = ?"
            args.append(int(agency_id))
        with self._lock:
            return [_pia(r) for r in self._db.execute(sql + " ORDER BY pia_id", args).fetchall()]

    def decisions(self, agency_id: int | None = None, first: int = 0) -> tuple[Checkpoint, list[Decision]]:
        """The decisions (from sequence ``first``; of one agency when given), each with an inclusion
        proof against the returned checkpoint."""
        cp = self.log.checkpoint()
        out = []
        for stored in self.log.stored(list(range(first, cp.size))):
            if agency_id is not None and stored.record.requester != agency_id:
                continue
            seq = int(stored.record.seq or 0)
            proof: InclusionProof = self.log.prove_inclusion(seq, cp.size)
            if proof.leaf_hash != leaf_hash(stored.entry):
                raise FailedPreconditionError(f"decision log record {seq} is not the leaf its tree holds")
            out.append(parse_decision(stored.entry, proof.hashes))
        return cp, out

    # -- delivery to the core ---------------------------------------------------------------------

    def applied_through(self, target: str) -> int:
        """The last sequence ``target`` confirmed it applied (-1: none)."""
        with self._lock:
            row = self._db.execute("SELECT applied_through FROM delivery WHERE target = ?", (target,)).fetchone()
        return -1 if row is None else int(row[0])

    def set_applied_through(self, target: str, seq: int) -> None:
        with self._lock:
            self._db.execute("INSERT INTO delivery(target, applied_through) VALUES (?, ?) ON CONFLICT(target) "
                             "DO UPDATE SET applied_through = excluded.applied_through", (target, int(seq)))


__all__ = ["AFFAIRS", "DB_NAME", "KEYS", "LEVELS", "LOG_DIR", "LOG_KEY", "LOG_ORIGIN", "SERVICE", "Decision", "Pia",
           "PiaReview", "Submission", "agency_pseudonym", "decision_record", "init_data_dir", "leaf_hash",
           "parse_decision"]
