"""The linkage core wired together: the engines behind LinkageService, OversightService,
AdminService and DisclosureService (:mod:`renkei.service.engines`).

- :class:`Linkage` — codes (issue 3) and the inquiry path (情報照会): one call into Rust
  (:class:`renkei._core.inquiry.InquiryPath`) decodes and checks the requester's code, checks the
  permission table (別表第二), translates to the provider's code, appends the provision
  record(s) durably and signs the permit. Python only looks up the two agencies (cached briefly)
  and maps a refusal to an error.
- :class:`Oversight` — the ledger read side for the commission (個人情報保護委員会), with a
  small in-memory index of the records, caught up from the ledger before each query.
- :class:`Registry` — agencies and PIA (特定個人情報保護評価) status over :class:`renkei.Core`.
- :class:`Disclosure` — card-key login (challenge, single use, expiry) and a person's own
  records (マイナポータル), newest first, with inclusion proofs; 不開示 records held back.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from renkei._core import inquiry as _inq
from renkei.core import Core
from renkei.datadir import DataDir
from renkei.errors import (
    CodeRefusedError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ProviderNotHoldingError,
    RowNotPermittedError,
    UnauthenticatedError,
)
from renkei.jlis import NumberAuthority
from renkei.ledger import Ledger, LedgerRecord, parse_vkey
from renkei.numbers import format_corporate_number
from renkei.permissions import PermissionEngine
from renkei.permits import PermitIssuer
from renkei.service import engines as e

log = logging.getLogger("renkei.linkage")

PSEUDONYM_KEY = "portal-pseudonym"
PERMIT_LIFETIME_S = 300
#: Agency facts (types, municipality, PIA state) are re-read this often (seconds).
AGENCY_CACHE_S = 2.0
#: Outcome bytes (the proto's DenialCode) → reason tokens.
OUTCOME_TOKENS = {0: "permitted", 1: "CODE_REFUSED", 4: "ROW_NOT_PERMITTED", 5: "PROVIDER_NOT_HOLDING"}
_IDEMPOTENCY_ENTRIES = 10_000
#: Batch answers are large (up to 1.6 MB of codes): only the latest few are kept for retries.
_IDEMPOTENT_BATCHES = 16


def _dt(unix_s: int | float) -> datetime:
    return datetime.fromtimestamp(unix_s, UTC)


def _us(t: datetime | None) -> int | None:
    return None if t is None else (t - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def pseudonym_key(data_dir: DataDir) -> bytes:
    return data_dir.secret_key(PSEUDONYM_KEY)


def portal_pseudonym(data_dir: DataDir, person_id: int) -> bytes:
    """HMAC-SHA256(portal-pseudonym key, person id as u32 BE): how a person appears in records."""
    return bytes(_inq.pseudonym(pseudonym_key(data_dir), int(person_id)))


def local_government_corporate_number(code: str) -> str:
    """The 法人番号 of a local public body (地方公共団体): check digit ‖ 000020 ‖ 団体コード."""
    from renkei.numbers import corporate_check_digit

    base = f"000020{code}"
    return format_corporate_number(int(f"{corporate_check_digit(base)}{base}"))


# -- linkage ----------------------------------------------------------------------------------


class Linkage:
    """The :class:`~renkei.service.engines.LinkageEngine`: codes and inquiries."""

    def __init__(self, core: Core, permissions: PermissionEngine, issuer: PermitIssuer, ledger: Ledger) -> None:
        self._core = core
        self._ledger = ledger
        self._issuer = issuer
        self._path = _inq.InquiryPath(
            core.engine, permissions._core, issuer._signer, ledger._l, pseudonym_key(core.data_dir)
        )
        self._facts: dict[int, tuple[float, tuple[int, list[str], str | None]]] = {}
        self._facts_lock = threading.Lock()
        self._done: OrderedDict[tuple[int, str], object] = OrderedDict()
        self._batches: OrderedDict[tuple[int, str], e.BatchInquiryResult] = OrderedDict()
        self._done_lock = threading.Lock()
        self._since = datetime.now(UTC)

    def _party(self, agency_id: int) -> tuple[int, list[str], str | None]:
        """(id, types, municipality) of an active agency with an approved PIA (cached briefly)."""
        now = time.monotonic()
        hit = self._facts.get(agency_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        a = self._core.require_active(agency_id)
        facts = (a.agency_id, list(a.types), a.municipality_code)
        with self._facts_lock:
            self._facts[agency_id] = (now + AGENCY_CACHE_S, facts)
        return facts

    def forget(self, agency_id: int) -> None:
        """Drop the cached facts of an agency (after a change of its PIA or status)."""
        with self._facts_lock:
            self._facts.pop(agency_id, None)

    def acquire_code(self, agency_id: int, individual_number: str, acquisition_number: bytes) -> bytes:
        return self._core.acquire_code(agency_id, individual_number, acquisition_number)

    def acquire_codes(self, agency_id: int, individual_numbers: object) -> bytes:
        return self._core.acquire_codes(agency_id, individual_numbers)

    def release_holding(self, agency_id: int, agency_code: bytes) -> None:
        self._core.release_holding(agency_id, agency_code)

    def _remembered(self, requester: int, request_id: str) -> object | None:
        if not request_id:
            return None
        with self._done_lock:
            return self._done.get((requester, request_id))

    def _remember(self, requester: int, request_id: str, answer: object) -> None:
        if request_id:
            with self._done_lock:
                self._done[(requester, request_id)] = answer
                while len(self._done) > _IDEMPOTENCY_ENTRIES:
                    self._done.popitem(last=False)

    def _answer(self, a: object) -> e.InquiryResult | Exception:
        if isinstance(a, Exception):
            return a
        outcome, reason, pcode, seq, permit, exp = a  # type: ignore[misc]
        if outcome == 0:
            return e.InquiryResult(e.Permit(*permit), pcode, seq, _dt(exp))
        if outcome == 1:
            return CodeRefusedError("agency code (機関別符号) refused")
        if outcome == 4:
            return RowNotPermittedError(f"no row of the permission table permits this inquiry: {reason}")
        return ProviderNotHoldingError("the provider holds no record of this person")

    def inquire_many(
        self, requests: Sequence[tuple[int, bytes, str, int, Sequence[str], str]]
    ) -> list[e.InquiryResult | Exception]:
        """Independent inquiries (requester, code, affair, provider, items, request id) decided
        in one Rust call and recorded in one durable commit; per request the answer or the
        error :meth:`inquire` would raise. The server batches concurrent Inquire calls here."""
        out: list[e.InquiryResult | Exception | None] = []
        todo: list[tuple[int, tuple[object, ...]]] = []
        for rq_id, code, affair, pv_id, items, request_id in requests:
            prior = self._remembered(rq_id, request_id)
            if prior is not None:
                out.append(prior)  # type: ignore[arg-type]
                continue
            try:
                todo.append((len(out), (self._party(rq_id), self._party(pv_id), bytes(code), affair, list(items))))
                out.append(None)
            except Exception as exc:
                out.append(exc)
        if todo:
            answers = self._path.inquire_many([t for _, t in todo], PERMIT_LIFETIME_S)
            for (i, _), a in zip(todo, answers, strict=True):
                out[i] = self._answer(a)
                rq_id, _code, _affair, _pv, _items, request_id = requests[i]
                if not isinstance(out[i], Exception) or isinstance(out[i], PermissionDeniedError):
                    self._remember(rq_id, request_id, out[i])
        return [o for o in out if o is not None]

    def inquire(
        self,
        requester_agency_id: int,
        agency_code: bytes,
        affair: str,
        provider_agency_id: int,
        information_items: Sequence[str],
        request_id: str,
    ) -> e.InquiryResult:
        (answer,) = self.inquire_many(
            [(requester_agency_id, agency_code, affair, provider_agency_id, information_items, request_id)]
        )
        if isinstance(answer, Exception):
            raise answer
        return answer

    def batch_inquire(
        self,
        requester_agency_id: int,
        agency_codes: bytes,
        affair: str,
        provider_agency_id: int,
        information_items: Sequence[str],
        request_id: str,
    ) -> e.BatchInquiryResult:
        if request_id:
            with self._done_lock:
                prior = self._batches.get((requester_agency_id, request_id))
            if prior is not None:
                return prior
        rq, pv = self._party(requester_agency_id), self._party(provider_agency_id)
        outcomes, pcodes, first, parts, exp = self._path.batch_inquire(
            rq, pv, agency_codes, affair, list(information_items), PERMIT_LIFETIME_S
        )
        permit = e.Permit(*parts) if parts is not None else e.Permit(b"", b"", "")
        result = e.BatchInquiryResult(permit, bytes(pcodes), bytes(outcomes), first, _dt(exp))
        if request_id:
            with self._done_lock:
                self._batches[(requester_agency_id, request_id)] = result
                while len(self._batches) > _IDEMPOTENT_BATCHES:
                    self._batches.popitem(last=False)
        return result

    def public_keys(self) -> Sequence[e.PublicKeyInfo]:
        kid = base64.urlsafe_b64encode(self._issuer.key_id).rstrip(b"=").decode()
        _name, _hash, log_key = parse_vkey(self._ledger.vkey)
        return [
            e.PublicKeyInfo(kid, "permit", "ed25519", self._issuer.public_key, self._since),
            e.PublicKeyInfo(
                self._ledger.vkey.split("+")[1], "checkpoint", "ed25519", bytes(log_key), self._since,
                note_verifier_key=self._ledger.vkey,
            ),
        ]


# -- oversight --------------------------------------------------------------------------------


def _outcome(r: LedgerRecord) -> str:
    return "permitted" if r.permitted else OUTCOME_TOKENS.get(r.denied_code, f"DENIED_{r.denied_code}")


def _record_info(r: LedgerRecord, entry: bytes) -> e.RecordInfo:
    assert r.seq is not None and r.time is not None
    return e.RecordInfo(
        r.seq, r.time, r.requester, r.provider, r.affair, tuple(r.items), r.table_hash, _outcome(r),
        r.permit_id, r.pseudonym, r.withheld, entry,
    )


_SCAN_CHUNK = 65_536


class Oversight:
    """The :class:`~renkei.service.engines.OversightEngine` over the ledger.

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
            seq = max(self._indexed, self._ledger._l.min_index())
            while seq < size:
                end = min(size, seq + _SCAN_CHUNK)
                seqs, times, reqs, provs, denied, affairs = self._ledger._l.index_columns(seq, end)
                rows = zip(seqs.tolist(), times.tolist(), reqs.tolist(), provs.tolist(), affairs, denied.tolist(),
                           strict=True)
                self._db.executemany("INSERT OR REPLACE INTO r VALUES (?, ?, ?, ?, ?, ?)", rows)
                seq = end
            self._indexed = size

    def latest_checkpoint(self) -> e.CheckpointInfo:
        cp = self._ledger.checkpoint()
        return e.CheckpointInfo(cp.note.encode(), cp.origin, cp.size, cp.root)

    def checkpoint_at(self, tree_size: int) -> e.CheckpointInfo:
        cp = self._ledger.checkpoint_at(tree_size)
        return e.CheckpointInfo(cp.note.encode(), cp.origin, cp.size, cp.root)

    def consistency_proof(self, first_size: int, second_size: int) -> Sequence[bytes]:
        if not 0 < first_size <= second_size <= self._ledger.size:
            raise InvalidArgumentError("need 0 < first_size <= second_size <= the tree size")
        return self._ledger.prove_consistency(first_size, second_size).hashes

    def inclusion_proof(self, leaf_index: int, tree_size: int | None) -> e.InclusionProofInfo:
        size = self._ledger.checkpoint().size if tree_size is None else tree_size
        if not 0 <= leaf_index < size <= self._ledger.size:
            raise InvalidArgumentError("need leaf_index < tree_size <= the tree size")
        p = self._ledger.prove_inclusion(leaf_index, size)
        return e.InclusionProofInfo(p.seq, p.size, p.leaf_hash, p.hashes)

    def _where(self, agency_id: int | None, start: datetime | None, end: datetime | None) -> tuple[str, list[int]]:
        clauses, args = ["1"], []
        if agency_id is not None:
            clauses.append("(req = ? OR prov = ?)")
            args += [agency_id, agency_id]
        if start is not None:
            clauses.append("t >= ?")
            args.append(_us(start))
        if end is not None:
            clauses.append("t < ?")
            args.append(_us(end))
        return " AND ".join(clauses), args  # type: ignore[return-value]

    def records(
        self, agency_id: int | None, start: datetime | None, end: datetime | None, after_sequence: int, limit: int
    ) -> Sequence[e.RecordInfo]:
        self._catch_up()
        where, args = self._where(agency_id, start, end)
        with self._lock:
            seqs = [s for (s,) in self._db.execute(
                f"SELECT seq FROM r WHERE {where} AND seq > ? ORDER BY seq LIMIT ?", [*args, after_sequence, limit]
            )]
        if not seqs:
            return []
        # One scan over the span when it is dense (each bundle is read once), else one by one.
        if seqs[-1] - seqs[0] < 4 * len(seqs) + 256:
            span = self._ledger._l.entries(seqs[0], seqs[-1] + 1)
            entries = [span[s - seqs[0]] for s in seqs]
        else:
            entries = [self._ledger._l.entry(s) for s in seqs]
        return [_record_info(LedgerRecord.decode(en), bytes(en)) for en in entries if en is not None]

    def agency_statistics(self, agency_id: int, start: datetime | None, end: datetime | None) -> e.AgencyStatisticsInfo:
        """As requester: inquiries and denials (by affair, by reason); as provider: provisions."""
        self._catch_up()
        where, args = self._where(None, start, end)
        with self._lock:
            by_affair = self._db.execute(
                f"SELECT affair, count(*), sum(denied != 0) FROM r WHERE {where} AND req = ? GROUP BY affair "
                "ORDER BY affair", [*args, agency_id]
            ).fetchall()
            reasons = self._db.execute(
                f"SELECT denied, count(*) FROM r WHERE {where} AND req = ? AND denied != 0 GROUP BY denied",
                [*args, agency_id],
            ).fetchall()
            (provisions,) = self._db.execute(
                f"SELECT count(*) FROM r WHERE {where} AND prov = ? AND denied = 0", [*args, agency_id]
            ).fetchone()
        return e.AgencyStatisticsInfo(
            agency_id,
            sum(n for _a, n, _d in by_affair),
            sum(d for _a, _n, d in by_affair),
            int(provisions),
            [(a, int(n), int(d)) for a, n, d in by_affair],
            {OUTCOME_TOKENS.get(c, f"DENIED_{c}"): int(n) for c, n in reasons},
        )


# -- administration ---------------------------------------------------------------------------

_PIA_TITLE = "特定個人情報保護評価書"


class Registry:
    """The :class:`~renkei.service.engines.AgencyRegistry` over Core's registry and PIAs."""

    def __init__(self, core: Core, linkage: Linkage | None = None) -> None:
        self._core = core
        self._linkage = linkage

    def _info(self, agency_id: int) -> e.AgencyInfo:
        a = self._core.agency(agency_id)
        pias = self._core.pias(agency_id)
        try:
            self._core.require_active(agency_id)
            status = "approved"
        except Exception:
            status = "not_submitted" if not pias else ("revoked" if pias[-1].status == "revoked" else "submitted")
        created = datetime.fromisoformat(a.registered_at)
        return e.AgencyInfo(a.agency_id, a.name, a.types, a.municipality_code or "", status, created)

    def create_agency(
        self, name: str, type_ids: Sequence[str], local_government_code: str, corporate_number: str = ""
    ) -> e.AgencyInfo:
        code = local_government_code or None
        if not corporate_number:
            if code is None:
                raise InvalidArgumentError("corporate_number (法人番号) is required for an agency that is not "
                                           "a local government")
            corporate_number = local_government_corporate_number(code)
        a = self._core.register_agency(name, list(type_ids), corporate_number, municipality_code=code)
        return self._info(a.agency_id)

    def get_agency(self, agency_id: int) -> e.AgencyInfo:
        return self._info(agency_id)

    def list_agencies(self, after_id: int, limit: int) -> Sequence[e.AgencyInfo]:
        ids = sorted(a.agency_id for a in self._core.agencies() if a.agency_id > after_id)[:limit]
        return [self._info(i) for i in ids]

    def set_pia_status(self, agency_id: int, status: str) -> e.AgencyInfo:
        self._core.agency(agency_id)
        pias = self._core.pias(agency_id)
        today = date.today()
        if status == "approved":
            pending = [p for p in pias if p.status == "submitted"]
            pia = pending[-1] if pending else self._core.add_pia(
                agency_id, _PIA_TITLE, expires_on=today.replace(year=today.year + 5))
            self._core.approve_pia(pia.pia_id, today)
        elif status == "submitted":
            self._core.add_pia(agency_id, _PIA_TITLE, expires_on=today.replace(year=today.year + 5))
        elif status == "revoked":
            for p in pias:
                if p.status != "revoked":
                    self._core.revoke_pia(p.pia_id)
        else:
            raise InvalidArgumentError("pia_status must be submitted, approved or revoked")
        if self._linkage is not None:
            self._linkage.forget(agency_id)
        return self._info(agency_id)


# -- disclosure -------------------------------------------------------------------------------

CHALLENGE_TTL = timedelta(minutes=2)
SESSION_TTL = timedelta(minutes=15)


@dataclass
class _Session:
    pseudonym: bytes
    expires: datetime


class Disclosure:
    """The :class:`~renkei.service.engines.DisclosureEngine`: card-key login and own records."""

    def __init__(self, jlis: NumberAuthority, ledger: Ledger, data_dir: DataDir) -> None:
        self._jlis = jlis
        self._ledger = ledger
        self._key = pseudonym_key(data_dir)
        self._challenges: dict[bytes, tuple[bytes, datetime]] = {}
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()

    def _expire(self, now: datetime) -> None:
        for c in [c for c, (_k, t) in self._challenges.items() if t <= now]:
            del self._challenges[c]
        for s in [s for s, v in self._sessions.items() if v.expires <= now]:
            del self._sessions[s]

    def create_challenge(self, card_key_id: bytes) -> e.ChallengeInfo:
        now = datetime.now(UTC)
        challenge = secrets.token_bytes(32)
        with self._lock:
            self._expire(now)
            if len(self._challenges) > 100_000:
                raise UnauthenticatedError("too many pending challenges; try again shortly")
            self._challenges[challenge] = (bytes(card_key_id), now + CHALLENGE_TTL)
        return e.ChallengeInfo(challenge, now + CHALLENGE_TTL)

    def login(self, card_key_id: bytes, challenge: bytes, signature: bytes) -> e.SessionInfo:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        now = datetime.now(UTC)
        refused = UnauthenticatedError(
            "login refused: unknown card key, unknown or expired challenge, or bad signature"
        )
        with self._lock:
            pending = self._challenges.pop(bytes(challenge), None)  # single use, even when it fails
        if pending is None or pending[0] != bytes(card_key_id) or pending[1] <= now:
            raise refused
        try:
            public_key, person_id = self._jlis.card_key(card_key_id)
        except NotFoundError:
            raise refused from None
        try:
            Ed25519PublicKey.from_public_bytes(public_key).verify(signature, login_message(challenge))
        except (InvalidSignature, ValueError):
            raise refused from None
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[token] = _Session(bytes(_inq.pseudonym(self._key, person_id)), now + SESSION_TTL)
        return e.SessionInfo(token, now + SESSION_TTL)

    def my_records(self, session_token: str, before_sequence: int | None, limit: int) -> e.DisclosurePage:
        now = datetime.now(UTC)
        with self._lock:
            s = self._sessions.get(session_token)
        if s is None or s.expires <= now:
            raise UnauthenticatedError("no such session or the session has expired; log in again")
        page = self._ledger.records_for_pseudonym(s.pseudonym, limit, before_sequence)
        cp = page.checkpoint
        records = [
            (_record_info(r.record, r.entry),
             e.InclusionProofInfo(r.proof.seq, r.proof.size, r.proof.leaf_hash, r.proof.hashes))
            for r in page.records
        ]
        return e.DisclosurePage(records, e.CheckpointInfo(cp.note.encode(), cp.origin, cp.size, cp.root),
                                page.next_before)


def login_message(challenge: bytes) -> bytes:
    """What a card signs to log in: a domain-separated challenge."""
    return b"renkei-disclosure-login\0" + challenge


def card_key_id(public_key: bytes) -> bytes:
    return hashlib.sha256(public_key).digest()


__all__ = [
    "Disclosure",
    "Linkage",
    "Oversight",
    "Registry",
    "card_key_id",
    "local_government_corporate_number",
    "login_message",
    "portal_pseudonym",
]
