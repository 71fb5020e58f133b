"""情報照会: the inquiry path of the linkage core, behind LinkageService.

One call into Rust (:class:`renkei._core.inquiry.InquiryPath`) decodes and checks the
requester's code, checks the permission table (別表第二), translates to the provider's code,
appends the provision record(s) durably and signs the permit. Python only looks up the two
agencies (cached briefly), remembers answers for idempotent retries and maps a refusal to an
error.
"""

from __future__ import annotations

import base64
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from renkei._core import inquiry as _inq
from renkei.errors import (
    CodeRefusedError,
    PermissionDeniedError,
    ProviderNotHoldingError,
    RowNotPermittedError,
)
from renkei.ledger import Ledger, parse_vkey
from renkei.linkage.codes import AgencyCodes
from renkei.linkage.registry import AgencyRegistry
from renkei.permissions.engine import PermissionEngine
from renkei.permits import PermitIssuer, WirePermit

PERMIT_LIFETIME_S = 300
#: Agency facts (types, municipality, PIA state) are re-read this often (seconds).
AGENCY_CACHE_S = 2.0
_IDEMPOTENCY_ENTRIES = 10_000
#: Batch answers are large (up to 1.6 MB of codes): only the latest few are kept for retries.
_IDEMPOTENT_BATCHES = 16


def _dt(unix_s: int | float) -> datetime:
    return datetime.fromtimestamp(unix_s, UTC)


@dataclass(frozen=True)
class InquiryResult:
    """A permitted inquiry: the permit, the provider's code, the record's sequence number."""

    permit: WirePermit
    provider_agency_code: bytes
    record_sequence: int
    expires_at: datetime


@dataclass(frozen=True)
class BatchInquiryResult:
    permit: WirePermit
    provider_agency_codes: bytes  # 16 bytes per item, zeros where refused
    outcomes: bytes  # one DenialCode byte per item, 0 = permitted
    first_record_sequence: int
    expires_at: datetime


@dataclass(frozen=True)
class PublicKeyInfo:
    """A public key of the core: permit signing or checkpoint signing."""

    key_id: str
    purpose: str  # "permit" or "checkpoint"
    algorithm: str  # "ed25519"
    public_key: bytes
    not_before: datetime
    not_after: datetime | None = None
    note_verifier_key: str = ""


class Linkage:
    """The inquiry path behind LinkageService: one Rust call per group of inquiries."""

    def __init__(self, registry: AgencyRegistry, codes: AgencyCodes, permissions: PermissionEngine,
                 issuer: PermitIssuer, ledger: Ledger, pseudonym_key: bytes) -> None:
        self._registry = registry
        self._codes = codes
        self._ledger = ledger
        self._issuer = issuer
        self._path = _inq.InquiryPath(codes.engine, permissions._core, issuer._signer, ledger._l, pseudonym_key)
        self._facts: dict[int, tuple[float, tuple[int, list[str], str | None]]] = {}
        self._facts_lock = threading.Lock()
        self._done: OrderedDict[tuple[int, str], object] = OrderedDict()
        self._batches: OrderedDict[tuple[int, str], BatchInquiryResult] = OrderedDict()
        self._done_lock = threading.Lock()
        self._since = datetime.now(UTC)

    def _party(self, agency_id: int) -> tuple[int, list[str], str | None]:
        """(id, types, municipality) of an active agency with an approved PIA (cached briefly)."""
        now = time.monotonic()
        hit = self._facts.get(agency_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        a = self._registry.require_active(agency_id)
        facts = (a.agency_id, list(a.types), a.municipality_code)
        with self._facts_lock:
            self._facts[agency_id] = (now + AGENCY_CACHE_S, facts)
        return facts

    def forget(self, agency_id: int) -> None:
        """Drop the cached facts of an agency (after a change of its PIA or status)."""
        with self._facts_lock:
            self._facts.pop(agency_id, None)

    def release_holding(self, agency_id: int, agency_code: bytes) -> None:
        self._codes.release(agency_id, agency_code)

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

    def _answer(self, a: Any) -> InquiryResult | Exception:
        if isinstance(a, Exception):
            return a
        outcome, reason, pcode, seq, permit, exp = a
        if outcome == 0:
            return InquiryResult(WirePermit(*permit), pcode, seq, _dt(exp))
        if outcome == 1:
            return CodeRefusedError("agency code (機関別符号) refused")
        if outcome == 4:
            return RowNotPermittedError(f"no row of the permission table permits this inquiry: {reason}")
        return ProviderNotHoldingError("the provider holds no record of this person")

    def inquire_many(
        self, requests: Sequence[tuple[int, bytes, str, int, Sequence[str], str]]
    ) -> list[InquiryResult | Exception]:
        """Independent inquiries (requester, code, affair, provider, items, request id) decided
        in one Rust call and recorded in one durable commit; per request the answer or the
        error :meth:`inquire` would raise. The server batches concurrent Inquire calls here."""
        out: list[InquiryResult | Exception | None] = []
        todo: list[tuple[int, tuple[Any, ...]]] = []
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
    ) -> InquiryResult:
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
    ) -> BatchInquiryResult:
        if request_id:
            with self._done_lock:
                prior = self._batches.get((requester_agency_id, request_id))
            if prior is not None:
                return prior
        rq, pv = self._party(requester_agency_id), self._party(provider_agency_id)
        outcomes, pcodes, first, parts, exp = self._path.batch_inquire(
            rq, pv, agency_codes, affair, list(information_items), PERMIT_LIFETIME_S
        )
        permit = WirePermit(*parts) if parts is not None else WirePermit(b"", b"", "")
        result = BatchInquiryResult(permit, bytes(pcodes), bytes(outcomes), first, _dt(exp))
        if request_id:
            with self._done_lock:
                self._batches[(requester_agency_id, request_id)] = result
                while len(self._batches) > _IDEMPOTENT_BATCHES:
                    self._batches.popitem(last=False)
        return result

    def public_keys(self) -> Sequence[PublicKeyInfo]:
        kid = base64.urlsafe_b64encode(self._issuer.key_id).rstrip(b"=").decode()
        _name, _hash, log_key = parse_vkey(self._ledger.vkey)
        return [
            PublicKeyInfo(kid, "permit", "ed25519", self._issuer.public_key, self._since),
            PublicKeyInfo(
                self._ledger.vkey.split("+")[1], "checkpoint", "ed25519", bytes(log_key), self._since,
                note_verifier_key=self._ledger.vkey,
            ),
        ]


__all__ = ["BatchInquiryResult", "InquiryResult", "Linkage", "PublicKeyInfo"]
