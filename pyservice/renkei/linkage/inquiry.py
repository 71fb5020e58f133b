"""情報照会: the inquiry path of the linkage core, behind LinkageService.

One call into Rust (:class:`renkei._core.inquiry.InquiryPath`) decodes and checks the
requester's code, checks the permission table (別表第二), translates to the provider's code,
appends the provision record(s) durably and signs the permit. Python around it:

* **Every decided inquiry is recorded.** A requester or provider that may not take part (not
  registered, not active, no approved PIA) is a refusal decided before the table, handed to the
  path with its outcome (``REQUESTER_NOT_ELIGIBLE``, ``PROVIDER_UNAVAILABLE``) so it is recorded
  like any denial. The requester hears its own problem in full, and of a provider only that it
  cannot be asked now — never another agency's PIA title or state.
* **A request id names one request.** A retry is the identical request (same kind, code(s),
  affair, provider, items: a SHA-256 digest) with the same request id within the window; it gets
  the first answer, and only while that answer's facts still hold (both agencies still
  eligible, the codes still translate to the same provider codes) — otherwise it is decided
  again. Any other request with that id within the window is refused (ALREADY_EXISTS,
  ``REQUEST_ID_REUSED``) and recorded as such.
* **Per-agency budgets** (token buckets, :class:`~renkei.service.limits.CoreLimits`): items
  decided, and denied items. A batch that would record more denials than the agency has left
  is refused whole by the path (nothing recorded); an agency out of budget is refused
  (RESOURCE_EXHAUSTED, ``RATE_LIMITED``) before anything is decided. Both are in the metrics.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from renkei._core import inquiry as _inq
from renkei.errors import (
    CodeRefusedError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PiaNotApprovedError,
    ProviderNotHoldingError,
    ProviderUnavailableError,
    RateLimitedError,
    RenkeiError,
    RequestIdReusedError,
    RowNotPermittedError,
)
from renkei.ledger import Ledger, parse_vkey
from renkei.linkage.codes import AgencyCodes
from renkei.linkage.registry import AgencyRegistry
from renkei.permissions.engine import PermissionEngine
from renkei.permits import PermitIssuer, WirePermit
from renkei.service.limits import CoreLimits
from renkei.service.metrics import Metrics

PERMIT_LIFETIME_S = 300
#: Agency facts (types, municipality, PIA state) are re-read this often (seconds).
AGENCY_CACHE_S = 2.0
#: Request ids remembered for retries (single inquiries; each entry is a few hundred bytes).
_IDEMPOTENCY_ENTRIES = 100_000
#: Batch answers are large (up to 1.6 MB of codes): only the latest few are kept for retries.
_IDEMPOTENT_BATCHES = 32

_Party = tuple[int, list[str], str | None]
_Refusal = tuple[int, str]


def _dt(unix_s: int | float) -> datetime:
    return datetime.fromtimestamp(unix_s, UTC)


#: (requester, code, affair, provider, items, request id, 照会側不開示 until, 委任元)
InquiryRequest = tuple[int, bytes, str, int, Sequence[str], str, "date | None", "int | None"]


def _day(d: date | None) -> int | None:
    """照会側不開示 until ``d``: days since 1970-01-01 as the record keeps it."""
    return None if d is None else (d - date(1970, 1, 1)).days


def _delegator(agency: int | None) -> int | None:
    if agency is None or agency == 0:
        return None
    if not 0 < agency < 2**32:
        raise InvalidArgumentError("delegator_agency_id out of range")
    return agency


@dataclass(frozen=True)
class InquiryResult:
    """A permitted inquiry: the permit, the provider's code, the 照会 record's sequence number
    and its bytes (packed), from which the 提供 record that answers it is made."""

    permit: WirePermit
    provider_agency_code: bytes
    record_sequence: int
    expires_at: datetime
    record: bytes = b""


@dataclass(frozen=True)
class BatchInquiryResult:
    permit: WirePermit
    provider_agency_codes: bytes  # 16 bytes per item, zeros where refused
    outcomes: bytes  # one DenialCode byte per item, 0 = permitted
    first_record_sequence: int
    expires_at: datetime
    records: bytes = b""  # the 照会 records, packed


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


def request_digest(kind: bytes, codes: bytes, affair: str, provider: int, items: Sequence[str]) -> bytes:
    """What makes two requests the same request (a request id names one of them)."""
    h = hashlib.sha256(b"renkei-inquiry-v1\0" + kind + b"\0")
    h.update(struct.pack(">QI", len(codes), provider))
    h.update(codes)
    for text in (affair, *items):
        raw = text.encode()
        h.update(struct.pack(">I", len(raw)) + raw)
    return h.digest()


@dataclass
class _Remembered:
    digest: bytes
    expires: float
    #: The answer (an InquiryResult, a BatchInquiryResult or the refusal raised), once decided.
    answer: object = None
    #: For re-checking a retry: the codes and provider of the request.
    codes: bytes = b""
    provider: int = 0
    done: threading.Event = field(default_factory=threading.Event)


class _Bucket:
    __slots__ = ("at", "tokens")

    def __init__(self, tokens: float, at: float) -> None:
        self.tokens = tokens
        self.at = at


class AgencyBudgets:
    """Per-agency token buckets: items decided and denials recorded (thread-safe)."""

    def __init__(self, limits: CoreLimits, metrics: Metrics | None = None) -> None:
        self._limits = limits
        self._metrics = metrics
        self._items: dict[int, _Bucket] = {}
        self._denials: dict[int, _Bucket] = {}
        self._lock = threading.Lock()
        self._budget = None if metrics is None else metrics.labeled_gauge(
            "renkei_agency_budget", "An agency's budget left after its last inquiry (items decided, denials recorded).",
            ("agency", "budget"))
        self._rate_limited = None if metrics is None else metrics.counter(
            "renkei_rate_limited_total",
            "Inquiries refused because the agency's budget did not cover them, by agency and budget.",
            ("agency", "budget"))

    @staticmethod
    def _refill(b: _Bucket, rate: float, burst: int, now: float) -> None:
        b.tokens = min(float(burst), b.tokens + max(0.0, now - b.at) * rate)
        b.at = max(b.at, now)

    def _buckets(self, agency: int, now: float) -> tuple[_Bucket, _Bucket]:
        lim = self._limits
        items = self._items.get(agency)
        if items is None:
            items = self._items[agency] = _Bucket(float(lim.inquiry_item_burst), now)
        denials = self._denials.get(agency)
        if denials is None:
            denials = self._denials[agency] = _Bucket(float(lim.denial_burst), now)
        self._refill(items, lim.inquiry_items_per_second, lim.inquiry_item_burst, now)
        self._refill(denials, lim.denials_per_second, lim.denial_burst, now)
        return items, denials

    def admit(self, agency: int, items: int) -> int:
        """Take ``items`` from the agency's item budget; returns how many denials it may still
        cause. RateLimitedError (nothing taken) when either budget does not cover it."""
        with self._lock:
            item_b, denial_b = self._buckets(agency, time.monotonic())
            if item_b.tokens < items:
                self._limited(agency, "items")
                wait = (items - item_b.tokens) / self._limits.inquiry_items_per_second
                raise RateLimitedError(
                    f"agency {agency} may decide {int(item_b.tokens)} more inquiry items now "
                    f"({self._limits.inquiry_items_per_second:g}/s); this call has {items}; retry in {wait:.1f} s"
                )
            if denial_b.tokens < 1:
                self._limited(agency, "denials")
                wait = (1 - denial_b.tokens) / self._limits.denials_per_second
                raise RateLimitedError(
                    f"agency {agency} has used its budget of denied inquiries ({self._limits.denials_per_second:g}/s, "
                    f"{self._limits.denial_burst} at once); retry in {wait:.1f} s"
                )
            item_b.tokens -= items
            return int(denial_b.tokens)

    def charge(self, agency: int, denials: int, unused_items: int = 0) -> None:
        """Take the denials an admitted call recorded (and give back items it did not decide)."""
        with self._lock:
            item_b, denial_b = self._buckets(agency, time.monotonic())
            denial_b.tokens -= denials
            item_b.tokens = min(float(self._limits.inquiry_item_burst), item_b.tokens + unused_items)
            left = (item_b.tokens, denial_b.tokens)
        if self._budget is not None:
            self._budget.set((str(agency), "items"), int(left[0]))
            self._budget.set((str(agency), "denials"), int(left[1]))

    def _limited(self, agency: int, budget: str) -> None:
        if self._rate_limited is not None:
            self._rate_limited.inc(str(agency), budget)


#: Why an agency may not take part, in the words a record keeps (never a PIA's title).
def _ineligible(exc: Exception) -> str:
    if isinstance(exc, NotFoundError):
        return "not a registered agency"
    if isinstance(exc, PiaNotApprovedError):
        return "no approved, unexpired PIA"
    return "not active"


class Linkage:
    """The inquiry path behind LinkageService: one Rust call per group of inquiries."""

    def __init__(self, registry: AgencyRegistry, codes: AgencyCodes, permissions: PermissionEngine,
                 issuer: PermitIssuer, ledger: Ledger, pseudonym_key: bytes, *,
                 limits: CoreLimits | None = None, metrics: Metrics | None = None) -> None:
        self._registry = registry
        self._codes = codes
        self._ledger = ledger
        self._issuer = issuer
        self._path = _inq.InquiryPath(codes.engine, permissions._core, issuer._signer, ledger.appender, pseudonym_key)
        self._facts: dict[int, tuple[float, _Party]] = {}
        self._facts_lock = threading.Lock()
        self._limits = limits or CoreLimits()
        self._budgets = AgencyBudgets(self._limits, metrics)
        # (requester, request id) -> what it named; singles and batches apart (batches are big).
        self._ids: OrderedDict[tuple[int, str], _Remembered] = OrderedDict()
        self._batch_ids: OrderedDict[tuple[int, str], _Remembered] = OrderedDict()
        self._ids_lock = threading.Lock()
        self._since = datetime.now(UTC)

    @property
    def registry(self) -> AgencyRegistry:
        return self._registry

    def _party(self, agency_id: int) -> _Party:
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

    # -- who may take part --------------------------------------------------------------------

    def _parties(self, rq_id: int, pv_id: int) -> tuple[_Party, _Party, _Refusal | None, Exception | None]:
        """Both parties; when one may not take part, the refusal to record and the error the
        requester gets (its own problem in full; of the provider only that it cannot be asked)."""
        try:
            rq = self._party(rq_id)
        except (NotFoundError, FailedPreconditionError) as e:
            why = f"requester agency {rq_id}: {_ineligible(e)}"
            return (rq_id, [], None), (pv_id, [], None), (_inq.REQUESTER_NOT_ELIGIBLE, why), e
        try:
            pv = self._party(pv_id)
        except (NotFoundError, FailedPreconditionError) as e:
            why = f"provider agency {pv_id}: {_ineligible(e)}"
            err = ProviderUnavailableError(
                f"provider agency {pv_id} cannot be asked now (not registered, not active, or without an approved PIA)"
            )
            return rq, (pv_id, [], None), (_inq.PROVIDER_UNAVAILABLE, why), err
        return rq, pv, None, None

    # -- request ids ----------------------------------------------------------------------------

    def _claim(self, key: tuple[int, str], digest: bytes, codes: bytes, provider: int,
               batch: bool) -> tuple[str, _Remembered]:
        """``("new", entry)`` reserved for this request, ``("retry", first)`` for the identical
        request, ``("reused", first)`` for another request with the same id."""
        now = time.monotonic()
        with self._ids_lock:
            for table in (self._ids, self._batch_ids):
                while table and next(iter(table.values())).expires <= now:
                    table.popitem(last=False)
            first = self._ids.get(key) or self._batch_ids.get(key)
            if first is not None:
                return ("retry" if first.digest == digest else "reused"), first
            entry = _Remembered(digest, now + self._limits.request_id_window_seconds, codes=codes, provider=provider)
            table, cap = (self._batch_ids, _IDEMPOTENT_BATCHES) if batch else (self._ids, _IDEMPOTENCY_ENTRIES)
            table[key] = entry
            while len(table) > cap:
                table.popitem(last=False)
            return "new", entry

    def _settle(self, key: tuple[int, str], entry: _Remembered, answer: object) -> None:
        """Keep ``answer`` for retries if it was decided (a result or a recorded refusal);
        otherwise forget the id, so that a retry is decided afresh."""
        if answer is None or isinstance(answer, RateLimitedError) or not isinstance(
            answer, InquiryResult | BatchInquiryResult | RenkeiError
        ):
            with self._ids_lock:
                for table in (self._ids, self._batch_ids):
                    if table.get(key) is entry:
                        del table[key]
        else:
            entry.answer = answer
        entry.done.set()

    def _still_holds(self, entry: _Remembered, rq_id: int) -> object | None:
        """The first answer for a retry, if its facts still hold (both agencies eligible, every
        permitted code still translates to the same provider code); else None (decide again)."""
        if not entry.done.wait(timeout=60) or entry.answer is None:
            return None
        answer = entry.answer
        if isinstance(answer, Exception):
            return answer  # a refusal is answered again as it was
        try:
            self._party(rq_id)
            self._party(entry.provider)
        except (NotFoundError, FailedPreconditionError):
            return None
        if isinstance(answer, InquiryResult):
            translated, status = self._codes.engine.translate(rq_id, entry.codes, entry.provider)
            return answer if status[0] == 0 and translated == answer.provider_agency_code else None
        if isinstance(answer, BatchInquiryResult):
            translated, status = self._codes.engine.translate(rq_id, entry.codes, entry.provider)
            for i, o in enumerate(answer.outcomes):
                if o == 0 and (status[i] != 0 or translated[16 * i : 16 * i + 16]
                               != answer.provider_agency_codes[16 * i : 16 * i + 16]):
                    return None
            return answer
        return None

    def _reuse_refusal(self, request_id: str) -> tuple[_Refusal, RequestIdReusedError]:
        return (
            (_inq.REQUEST_ID_REUSED, "the request id was used for a different inquiry"),
            RequestIdReusedError(
                f"request id {request_id[:64]!r} was used for a different inquiry within the last "
                f"{self._limits.request_id_window_seconds:g} s; a retry must repeat the identical request, "
                f"a new inquiry needs a new id (this attempt is recorded)"
            ),
        )

    # -- answers ----------------------------------------------------------------------------------

    def _answer(self, a: Any, err: Exception | None) -> InquiryResult | Exception:
        if isinstance(a, Exception):
            return a
        outcome, reason, pcode, seq, permit, exp, record = a
        if outcome == 0:
            return InquiryResult(WirePermit(*permit), pcode, seq, _dt(exp), record)
        if err is not None:
            return err  # refused before the table: the error prepared for the requester
        if outcome == 1:
            return CodeRefusedError("agency code (機関別符号) refused")
        if outcome == 4:
            return RowNotPermittedError(f"no row of the permission table permits this inquiry: {reason}")
        return ProviderNotHoldingError("the provider holds no record of this person")

    def inquire_many(
        self, requests: Sequence[tuple[int, bytes, str, int, Sequence[str], str] | InquiryRequest]
    ) -> list[InquiryResult | Exception]:
        """Independent inquiries (requester, code, affair, provider, items, request id[,
        照会側不開示 until, 委任元]) decided in one Rust call and recorded in one durable commit;
        per request the answer or the error :meth:`inquire` would raise. The server batches
        concurrent Inquire calls here."""
        out: list[Any] = [None] * len(requests)
        todo: list[tuple[int, tuple[Any, ...], Exception | None]] = []
        claimed: dict[int, tuple[tuple[int, str], _Remembered]] = {}
        in_group: dict[tuple[int, str], int] = {}
        copies: list[tuple[int, int]] = []
        for i, one in enumerate(requests):
            rq_id, code, affair, pv_id, items, request_id = one[:6]
            withheld_until, delegator = (one[6], one[7]) if len(one) == 8 else (None, None)
            try:
                refusal: _Refusal | None = None
                err: Exception | None = None
                if request_id:
                    key = (rq_id, request_id)
                    digest = request_digest(b"single", bytes(code), affair, pv_id, items)
                    j = in_group.get(key)
                    if j is not None and claimed[j][1].digest == digest:
                        copies.append((i, j))  # the same request twice in one group: one answer
                        continue
                    if j is not None:
                        refusal, err = self._reuse_refusal(request_id)
                    else:
                        state, entry = self._claim(key, digest, bytes(code), pv_id, batch=False)
                        if state == "retry":
                            prior = self._still_holds(entry, rq_id)
                            if prior is not None:
                                out[i] = prior
                                continue
                            self._settle(key, entry, None)  # its facts changed: decide again
                            state, entry = self._claim(key, digest, bytes(code), pv_id, batch=False)
                        if state == "reused":
                            refusal, err = self._reuse_refusal(request_id)
                        else:
                            claimed[i] = (key, entry)
                            in_group[key] = i
                rq, pv, why, problem = self._parties(rq_id, pv_id)
                if refusal is None and why is not None:
                    refusal, err = why, problem
                self._budgets.admit(rq_id, 1)
                todo.append((i, (rq, pv, bytes(code), affair, list(items), refusal, _day(withheld_until),
                                 _delegator(delegator)), err))
            except Exception as exc:
                out[i] = exc
        if todo:
            try:
                answers = self._path.inquire_many([t for _, t, _ in todo], PERMIT_LIFETIME_S)
            except Exception as exc:
                answers = [exc] * len(todo)
            for (i, t, err), a in zip(todo, answers, strict=True):
                out[i] = self._answer(a, err)
                if not isinstance(a, Exception):
                    self._budgets.charge(t[0][0], 0 if a[0] == 0 else 1)
                else:
                    self._budgets.charge(t[0][0], 0, unused_items=1)
        for i, j in copies:
            out[i] = out[j]
        for i, (key, entry) in claimed.items():
            self._settle(key, entry, out[i])
        return out

    def inquire(
        self,
        requester_agency_id: int,
        agency_code: bytes,
        affair: str,
        provider_agency_id: int,
        information_items: Sequence[str],
        request_id: str,
        withheld_until: date | None = None,
        delegator: int | None = None,
    ) -> InquiryResult:
        (answer,) = self.inquire_many(
            [(requester_agency_id, agency_code, affair, provider_agency_id, information_items, request_id,
              withheld_until, delegator)]
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
        withheld_until: date | None = None,
        delegator: int | None = None,
    ) -> BatchInquiryResult:
        rq_id, codes, items = requester_agency_id, bytes(agency_codes), list(information_items)
        refusal: _Refusal | None = None
        err: Exception | None = None
        claim: tuple[tuple[int, str], _Remembered] | None = None
        if request_id:
            key = (rq_id, request_id)
            digest = request_digest(b"batch", codes, affair, provider_agency_id, items)
            state, entry = self._claim(key, digest, codes, provider_agency_id, batch=True)
            if state == "retry":
                prior = self._still_holds(entry, rq_id)
                if isinstance(prior, Exception):
                    raise prior
                if isinstance(prior, BatchInquiryResult):
                    return prior
                self._settle(key, entry, None)
                state, entry = self._claim(key, digest, codes, provider_agency_id, batch=True)
            if state == "reused":
                refusal, err = self._reuse_refusal(request_id)
            else:
                claim = (key, entry)
        answer: object = None
        try:
            rq, pv, why, problem = self._parties(rq_id, provider_agency_id)
            if refusal is None and why is not None:
                refusal, err = why, problem
            n = len(codes) // 16
            may_deny = self._budgets.admit(rq_id, n)
            try:
                outcomes, pcodes, first, parts, exp, records = self._path.batch_inquire(
                    rq, pv, codes, affair, items, PERMIT_LIFETIME_S, refusal=refusal, max_denials=may_deny,
                    withheld_until=_day(withheld_until), delegator=_delegator(delegator),
                )
            except Exception:
                self._budgets.charge(rq_id, 0, unused_items=n)
                raise
            self._budgets.charge(rq_id, sum(1 for o in outcomes if o))
            if err is not None:
                answer = err
                raise err
            permit = WirePermit(*parts) if parts is not None else WirePermit(b"", b"", "")
            result = BatchInquiryResult(permit, bytes(pcodes), bytes(outcomes), first, _dt(exp), bytes(records))
            answer = result
            return result
        finally:
            if claim is not None:
                self._settle(claim[0], claim[1], answer)

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
