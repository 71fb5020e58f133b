"""LinkageService: agency codes and inquiries, for agencies' intermediate servers (中間サーバー).

The requester is always the agency of the client certificate; no request field can name it.
Code acquisition here is the agency's two steps at the core (reserve 取得番号, collect codes);
J-LIS forwards in between (PersonLinkService).

An inquiry is decided and its 照会 recorded by the engine; a permitted one is then forwarded to
the provider's intermediate server (:class:`renkei.linkage.provision.Mediator`), whose sealed
answer comes back unopened with the 提供 recorded. The requester never sees the provider's code
(docs/arch/provision.md).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

import grpc

from renkei._proto.renkei.v1 import linkage_service_pb2 as pb
from renkei._proto.renkei.v1 import provision_service_pb2 as ppb
from renkei.errors import InvalidArgumentError, PermissionDeniedError, UnimplementedError
from renkei.ledger import LedgerRecord
from renkei.linkage.acquisition import AcquisitionDesk
from renkei.linkage.delegation import DelegationBook
from renkei.linkage.inquiry import Linkage
from renkei.linkage.notices import NoticeDesk
from renkei.linkage.provision import OUTCOME_NAMES, Exchange, Mediator, Provision
from renkei.linkage.self_disclosure import SessionCodes
from renkei.permits import WirePermit
from renkei.service.convert import BatchTooLargeError, agency_id, timestamp
from renkei.service.core.metrics import CoreMetrics
from renkei.service.limits import KIB, MIB
from renkei.service.runtime import ANY_ROLE, Coalescer, Offload, caller_agency, rpc

CODE_BYTES = 16
#: The documented maximum of BatchInquireRequest: a batch's sealed answer must fit one message
#: (16 MiB) on the provider's stream and back to the requester; larger runs go as several batches.
MAX_BATCH_INQUIRE_ITEMS = 10_000
RECIPIENT_KEY_BYTES = 32
MAX_INFORMATION_ITEMS = 64
MAX_TEXT = 256


def _permit(p: WirePermit) -> pb.Permit:
    return pb.Permit(body=p.body, signature=p.signature, key_id=p.key_id)


def _code(value: bytes, what: str = "agency_code") -> bytes:
    if len(value) != CODE_BYTES:
        raise InvalidArgumentError(f"{what} must be {CODE_BYTES} bytes")
    return value


def _inquiry_fields(affair: str, items: list[str], request_id: str) -> None:
    if not affair or len(affair) > MAX_TEXT:
        raise InvalidArgumentError("affair is required (a 別表第二 row id or an ordinance affair id)")
    if not items:
        raise InvalidArgumentError("information_items must name at least one item")
    if len(items) > MAX_INFORMATION_ITEMS or any(not i or len(i) > MAX_TEXT for i in items):
        raise InvalidArgumentError(f"information_items: 1 to {MAX_INFORMATION_ITEMS} non-empty ids")
    if len(request_id) > MAX_TEXT:
        raise InvalidArgumentError("request_id is too long")


@dataclass(frozen=True)
class _Terms:
    recipient_public_key: bytes
    fiscal_year: int
    as_of: str
    withheld_until: date | None
    delegator: int | None


def _terms(t: pb.ProvisionTerms) -> _Terms:
    """The provision terms, checked before anything is decided or recorded."""
    if len(t.recipient_public_key) != RECIPIENT_KEY_BYTES:
        raise InvalidArgumentError(
            f"terms.recipient_public_key must be the requester's X25519 public key ({RECIPIENT_KEY_BYTES} bytes)")
    for name, value in (("as_of", t.as_of), ("withheld_until", t.withheld_until)):
        if value:
            try:
                date.fromisoformat(value)
            except ValueError:
                raise InvalidArgumentError(f"terms.{name} must be a date YYYY-MM-DD") from None
    if t.fiscal_year and not 1900 <= t.fiscal_year <= 2999:
        raise InvalidArgumentError("terms.fiscal_year must be a year (年度) or 0")
    return _Terms(bytes(t.recipient_public_key), t.fiscal_year, t.as_of,
                  date.fromisoformat(t.withheld_until) if t.withheld_until else None,
                  t.delegator_agency_id or None)


def _first_permitted(packed: bytes) -> LedgerRecord:
    """The first permitted 照会 of packed records (its affair and items are the permit's codes)."""
    at = 0
    while at < len(packed):
        n = int.from_bytes(packed[at:at + 2], "big")
        rec = LedgerRecord.decode(packed[at + 2:at + 2 + n])
        if rec.permitted:
            return rec
        at += 2 + n
    raise AssertionError("an exchange without a permitted inquiry")


def _exchange(requester: int, provider: int, permit: WirePermit, inquiries: bytes, first: int,
              provider_codes: bytes, terms: _Terms) -> Exchange:
    """The call for the provider: the permit and what it names (affair and items in the
    permit's codes, the provider's own codes), the conditions and the requester's key — never
    the requester's code."""
    rec = _first_permitted(inquiries)
    call = ppb.ProvisionCall(
        permit=_permit(permit), requester_agency_id=requester, affair=rec.affair,
        items=list(rec.items), provider_agency_codes=provider_codes, fiscal_year=terms.fiscal_year,
        as_of=terms.as_of, recipient_public_key=terms.recipient_public_key,
        permit_id=rec.permit_id[:12])
    return Exchange(provider, call, inquiries, first)


def _sealed(p: Provision) -> pb.SealedProvision:
    return pb.SealedProvision(header=p.answer.header, sealed=p.answer.sealed, signature=p.answer.signature)


class _Provisions:
    """Provisions of inquiries that carried a request id, for retries: an identical retry (the
    engine answers it with the first 照会) gets the first answer instead of a second forward, which
    the provider would refuse as a replayed permit. A failed provision is forgotten (a retry tries
    the provider again with the same permit). Batches' answers are large: only a few are kept."""

    def __init__(self, singles: int = 10_000, batches: int = 32) -> None:
        self._caps = {"single": singles, "batch": batches}
        self._kept: dict[str, OrderedDict[tuple[int, str, int], asyncio.Future[Provision]]] = {
            k: OrderedDict() for k in self._caps}

    async def once(self, kind: str, key: tuple[int, str, int] | None, provide: Callable[[], Awaitable[Provision]],
                   ) -> Provision:
        if key is None:
            return await provide()
        kept = self._kept[kind]
        first = kept.get(key)
        if first is not None:
            return await asyncio.shield(first)
        fut: asyncio.Future[Provision] = asyncio.get_running_loop().create_future()
        kept[key] = fut
        while len(kept) > self._caps[kind]:
            kept.popitem(last=False)
        try:
            p = await provide()
        except BaseException as e:
            if kept.get(key) is fut:
                del kept[key]
            if not isinstance(e, asyncio.CancelledError):
                fut.set_exception(e)
                fut.exception()  # retrieved: waiting retries re-raise it, nobody else must
            else:
                fut.cancel()
            raise
        fut.set_result(p)
        return p


class LinkageServicer:
    def __init__(self, engine: Linkage, desk: AcquisitionDesk, offload: Offload, mediator: Mediator,
                 metrics: CoreMetrics | None = None, notices: NoticeDesk | None = None,
                 delegations: DelegationBook | None = None, session_codes: SessionCodes | None = None) -> None:
        self._session_codes = session_codes
        self._notices = notices
        self._delegations = delegations
        self._engine = engine
        self._desk = desk
        self._offload = offload
        self._mediator = mediator
        self._metrics = metrics
        self._provisions = _Provisions()
        # Concurrent Inquire calls share one engine call and one ledger commit.
        many = metrics.timed(engine.inquire_many) if metrics is not None else engine.inquire_many
        self._batch_inquire = metrics.timed(engine.batch_inquire) if metrics is not None else engine.batch_inquire
        self._inquiries = Coalescer(many, offload)

    @rpc("agency")
    async def ReserveAcquisitionNumbers(
        self, request: pb.ReserveAcquisitionNumbersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReserveAcquisitionNumbersResponse:
        agency = caller_agency()
        r = await self._offload.call(self._desk.reserve, agency, request.count)
        return pb.ReserveAcquisitionNumbersResponse(
            acquisition_numbers=r.acquisition_numbers, expire_time=timestamp(datetime.fromtimestamp(r.expires_at, UTC))
        )

    @rpc("agency", max_request=2 * MIB)  # 100,000 acquisition numbers of 16 bytes
    async def CollectCodes(
        self, request: pb.CollectCodesRequest, context: grpc.aio.ServicerContext
    ) -> pb.CollectCodesResponse:
        agency = caller_agency()
        codes, statuses = await self._offload.call(self._desk.collect, agency, request.acquisition_numbers)
        if self._metrics is not None:
            self._metrics.collected(agency, statuses)
        return pb.CollectCodesResponse(agency_codes=codes, statuses=statuses.tobytes())

    @rpc("agency")
    async def ReleaseHolding(
        self, request: pb.ReleaseHoldingRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReleaseHoldingResponse:
        agency = caller_agency()
        await self._offload.call(self._engine.release_holding, agency, _code(request.agency_code))
        return pb.ReleaseHoldingResponse()

    @rpc("agency", max_request=64 * KIB)  # 64 items of up to 256 characters
    async def Inquire(
        self, request: pb.InquireRequest, context: grpc.aio.ServicerContext
    ) -> pb.InquireResponse:
        agency = caller_agency()
        code = _code(request.agency_code)
        provider = agency_id(request.provider_agency_id, "provider_agency_id")
        items = list(request.information_items)
        _inquiry_fields(request.affair, items, request.request_id)
        terms = _terms(request.terms)
        try:
            r = await self._inquiries.submit((agency, code, request.affair, provider, items, request.request_id,
                                              terms.withheld_until, terms.delegator))
        except Exception as exc:
            if self._metrics is not None:
                self._metrics.inquiry_failed(agency, provider, exc)
            raise
        if self._metrics is not None:
            self._metrics.inquiry(agency, provider, "permitted")
        exchange = _exchange(agency, provider, r.permit, r.record, r.record_sequence, r.provider_agency_code, terms)
        key = (agency, request.request_id, r.record_sequence) if request.request_id else None
        p = await self._provisions.once("single", key, lambda: self._provide(exchange, 1, context))
        return pb.InquireResponse(
            record_sequence=r.record_sequence, provision=_sealed(p), provider_certificate_pem=p.provider_certificate,
            permit_id=p.permit_id, provision_record_sequence=p.record_sequence, provided_at=timestamp(p.provided_at))

    async def _provide(self, exchange: Exchange, persons: int, context: grpc.aio.ServicerContext) -> Provision:
        start = time.perf_counter()
        outcome = "provided"
        try:
            p = await self._mediator.provide(exchange, context.time_remaining())
            outcome = OUTCOME_NAMES[p.outcome]
            return p
        except Exception as exc:
            outcome = {"PROVIDER_OFFLINE": OUTCOME_NAMES[2], "PROVIDER_TIMED_OUT": OUTCOME_NAMES[3],
                       "PROVIDER_REFUSED": OUTCOME_NAMES[4]}.get(getattr(exc, "reason", ""), "error")
            raise
        finally:
            if self._metrics is not None:
                self._metrics.exchanged(exchange.provider, outcome, persons, time.perf_counter() - start)

    @rpc("agency", max_request=256 * KIB)  # 10,000 codes of 16 bytes and 64 items
    async def BatchInquire(
        self, request: pb.BatchInquireRequest, context: grpc.aio.ServicerContext
    ) -> pb.BatchInquireResponse:
        agency = caller_agency()
        codes = request.agency_codes
        if len(codes) % CODE_BYTES or not codes:
            raise InvalidArgumentError(f"agency_codes must be a non-empty run of {CODE_BYTES}-byte codes")
        if len(codes) // CODE_BYTES > MAX_BATCH_INQUIRE_ITEMS:
            raise BatchTooLargeError(
                f"{len(codes) // CODE_BYTES} items, at most {MAX_BATCH_INQUIRE_ITEMS} a batch"
            )
        provider = agency_id(request.provider_agency_id, "provider_agency_id")
        items = list(request.information_items)
        _inquiry_fields(request.affair, items, request.request_id)
        terms = _terms(request.terms)
        r = await self._offload.call(
            self._batch_inquire, agency, codes, request.affair, provider, items, request.request_id,
            terms.withheld_until, terms.delegator,
        )
        if self._metrics is not None:
            self._metrics.batch(agency, provider, r.outcomes)
        out = pb.BatchInquireResponse(outcomes=r.outcomes, first_record_sequence=r.first_record_sequence)
        permitted = r.outcomes.count(0)
        if permitted:
            # The provider gets the batch permit and its own codes (zero where refused: the
            # permit's tree has a leaf per item, refused ones with a zero code).
            exchange = _exchange(agency, provider, r.permit, r.records, r.first_record_sequence,
                                 r.provider_agency_codes, terms)
            key = (agency, request.request_id, r.first_record_sequence) if request.request_id else None
            p = await self._provisions.once("batch", key, lambda: self._provide(exchange, permitted, context))
            out.provision.CopyFrom(_sealed(p))
            out.provider_certificate_pem = p.provider_certificate
            out.permit_id = p.permit_id
            out.provision_record_sequence = p.record_sequence
            out.provided_at.CopyFrom(timestamp(p.provided_at))
        return out

    @rpc(ANY_ROLE)
    async def GetPublicKeys(
        self, request: pb.GetPublicKeysRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetPublicKeysResponse:
        keys = await self._offload.call(self._engine.public_keys)
        return pb.GetPublicKeysResponse(
            keys=[
                pb.PublicKey(
                    key_id=k.key_id,
                    purpose=k.purpose,
                    algorithm=k.algorithm,
                    public_key=k.public_key,
                    note_verifier_key=k.note_verifier_key,
                    not_before=timestamp(k.not_before),
                    not_after=timestamp(k.not_after),
                )
                for k in keys
            ]
        )

    @rpc("agency", max_request=64 * KIB)
    async def SendNotice(self, request: pb.SendNoticeRequest, context: grpc.aio.ServicerContext
                         ) -> pb.SendNoticeResponse:
        if self._notices is None:
            raise UnimplementedError("this core keeps no notices")
        notice_id = await self._offload.call(self._notices.send, caller_agency(), bytes(request.agency_code),
                                             request.title, request.body)
        return pb.SendNoticeResponse(notice_id=notice_id)

    @rpc("agency")
    async def SetSupportMeasure(self, request: pb.SetSupportMeasureRequest, context: grpc.aio.ServicerContext
                                ) -> pb.SetSupportMeasureResponse:
        if self._notices is None or self._delegations is None:
            raise UnimplementedError("this core keeps no delegations")
        agency = caller_agency()
        notices, book = self._notices, self._delegations

        def flag() -> None:
            # 支援措置 is the municipality's (住民基本台帳事務): only a 市町村長 sets it.
            if "municipal_mayor" not in self._engine.registry.agency(agency).types:
                raise PermissionDeniedError("only a municipality (市町村長) sets 支援措置")
            book.set_support(notices.pseudonym_of(agency, bytes(request.agency_code)), agency, request.supported)

        await self._offload.call(flag)
        return pb.SetSupportMeasureResponse()

    @rpc("agency")
    async def IssueSessionCode(self, request: pb.IssueSessionCodeRequest, context: grpc.aio.ServicerContext
                               ) -> pb.IssueSessionCodeResponse:
        """自己情報表示: the disclosure system's code for the person of a live session (docs/arch/portal.md)."""
        if self._session_codes is None:
            raise UnimplementedError("this core issues no session codes")
        if not request.session_token or len(request.session_token) > MAX_TEXT:
            raise InvalidArgumentError("session_token: the person's DisclosureService session")
        code = await self._offload.call(self._session_codes.issue, caller_agency(), request.session_token)
        return pb.IssueSessionCodeResponse(agency_code=code)


__all__ = ["MAX_BATCH_INQUIRE_ITEMS", "LinkageServicer"]
