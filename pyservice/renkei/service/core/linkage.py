"""LinkageService: agency codes and inquiries, for agencies' intermediate servers (中間サーバー).

The requester is always the agency of the client certificate; no request field can name it.
Code acquisition here is the agency's two steps at the core (reserve 取得番号, collect codes);
J-LIS forwards in between (PersonLinkService).
"""

from __future__ import annotations

from datetime import UTC, datetime

import grpc

from renkei._proto.renkei.v1 import linkage_service_pb2 as pb
from renkei.errors import InvalidArgumentError
from renkei.linkage.acquisition import AcquisitionDesk
from renkei.linkage.inquiry import Linkage
from renkei.permits import WirePermit
from renkei.service.convert import BatchTooLargeError, agency_id, timestamp
from renkei.service.core.metrics import CoreMetrics
from renkei.service.limits import KIB, MIB
from renkei.service.runtime import ANY_ROLE, Coalescer, Offload, caller_agency, rpc

CODE_BYTES = 16
#: The documented maximum of BatchInquireRequest (16 bytes a code: 1.6 MB of codes).
MAX_BATCH_INQUIRE_ITEMS = 100_000
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


class LinkageServicer:
    def __init__(self, engine: Linkage, desk: AcquisitionDesk, offload: Offload,
                 metrics: CoreMetrics | None = None) -> None:
        self._engine = engine
        self._desk = desk
        self._offload = offload
        self._metrics = metrics
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
        try:
            r = await self._inquiries.submit((agency, code, request.affair, provider, items, request.request_id))
        except Exception as exc:
            if self._metrics is not None:
                self._metrics.inquiry_failed(agency, provider, exc)
            raise
        if self._metrics is not None:
            self._metrics.inquiry(agency, provider, "permitted")
        return pb.InquireResponse(
            permit=_permit(r.permit),
            provider_agency_code=r.provider_agency_code,
            record_sequence=r.record_sequence,
            expires_at=timestamp(r.expires_at),
        )

    @rpc("agency", max_request=2 * MIB)  # 100,000 codes of 16 bytes and 64 items
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
        r = await self._offload.call(
            self._batch_inquire, agency, codes, request.affair, provider, items, request.request_id
        )
        if self._metrics is not None:
            self._metrics.batch(agency, provider, r.outcomes)
        return pb.BatchInquireResponse(
            permit=_permit(r.permit),
            provider_agency_codes=r.provider_agency_codes,
            outcomes=r.outcomes,
            first_record_sequence=r.first_record_sequence,
            expires_at=timestamp(r.expires_at),
        )

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


__all__ = ["MAX_BATCH_INQUIRE_ITEMS", "LinkageServicer"]
