"""IntermediateService: what a tenant's business systems call (role ``business``, for their agency)."""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from typing import cast

import grpc
import numpy as np
import orjson
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from google.protobuf.timestamp_pb2 import Timestamp

from renkei import onestop
from renkei._proto.renkei.v1 import intermediate_service_pb2 as pb
from renkei._proto.renkei.v1 import linkage_service_pb2 as lpb
from renkei.client import acquire_codes_aio
from renkei.errors import InvalidArgumentError, ProvisionTamperedError, RenkeiError, ResourceExhaustedError
from renkei.ledger import OUTCOME_TOKENS
from renkei.mid.platform import Platform
from renkei.mid.sealing import new_recipient_key
from renkei.mid.store import Application, Duplicate, check_atena
from renkei.numbers import parse_individual_number
from renkei.service.convert import page_size, timestamp
from renkei.service.limits import KIB, MIB
from renkei.service.mid.links import TenantLinks
from renkei.service.runtime import Offload, caller_agency, rpc
from renkei.service.status import error_from_rpc

MAX_DUPLICATES = 10_000
MAX_ADDRESSEES = 100_000
#: Persons in one batch inquiry (as the core's BatchInquire; larger runs go as several batches).
MAX_BATCH = 10_000
#: Recipient keys kept for retries of a request id (a retry must open the answer the core kept).
_RETRY_KEYS = 10_000
#: How long the core may take to bring back a provision (seconds), unless the caller's deadline is shorter.
INQUIRY_TIMEOUT = 30.0


#: Seconds kept back from the business system's deadline for opening and recording the answer.
_MARGIN_S = 0.3


def _timeout(context: grpc.aio.ServicerContext, most: float) -> float:
    """The core's deadline: the caller's, less a margin so that its failure reaches the caller."""
    remaining = context.time_remaining()
    return most if remaining is None else max(0.05, min(most, remaining - _MARGIN_S))


def _record(r: dict[str, object]) -> pb.ProvidedRecord:
    return pb.ProvidedRecord(
        item=str(r["item"]), dataset=str(r["dataset"]), version=int(r["version"]),  # type: ignore[call-overload]
        record_key=str(r["record_key"]), valid_from=str(r["valid_from"]), valid_until=str(r["valid_until"] or ""),
        fiscal_year=int(r["fiscal_year"] or 0), published=str(r["published"]),  # type: ignore[call-overload]
        payload_json=orjson.dumps(r["values"]).decode(), null_reasons=dict(r["null_reasons"]),  # type: ignore[call-overload]
    )


class IntermediateServicer:
    def __init__(self, platform: Platform, links: TenantLinks, offload: Offload) -> None:
        self._p = platform
        self._links = links
        self._offload = offload
        self._keys: OrderedDict[tuple[int, str], tuple[X25519PrivateKey, bytes]] = OrderedDict()
        self._ca = None if not platform.tenants else platform.credentials(next(iter(platform.tenants))).ca.read_bytes()

    def _tenant(self, context: grpc.aio.ServicerContext) -> int:
        """The tenant the calling business system belongs to (its certificate names the agency)."""
        return self._p.tenant(caller_agency()).agency_id

    @rpc("business", max_request=16 * MIB)
    async def RegisterAddressees(
        self, request: pb.RegisterAddresseesRequest, context: grpc.aio.ServicerContext
    ) -> pb.RegisterAddresseesResponse:
        tenant = self._tenant(context)
        if len(request.addressees) > MAX_ADDRESSEES:
            raise ResourceExhaustedError(f"at most {MAX_ADDRESSEES} addressees a call")
        rows = []
        for i, a in enumerate(request.addressees):
            try:
                number = parse_individual_number(a.individual_number) if a.individual_number else None
            except InvalidArgumentError:
                raise InvalidArgumentError(f"addressee {i}: not a valid individual number (個人番号)") from None
            rows.append((a.integrated_address_number, list(a.business_ids), number))
        new = await self._offload.call(self._p.store.register_addressees, tenant, rows)
        return pb.RegisterAddresseesResponse(registered=new)

    @rpc("business", max_request=4 * MIB)
    async def AcquireCodes(
        self, request: pb.MidAcquireCodesRequest, context: grpc.aio.ServicerContext
    ) -> pb.MidAcquireCodesResponse:
        tenant = self._tenant(context)
        wanted = list(request.integrated_address_numbers) or None
        pending = await self._offload.call(self._p.store.awaiting_codes, tenant, wanted, MAX_ADDRESSEES)
        if not pending:
            return pb.MidAcquireCodesResponse(acquired=0)
        link = self._links.of(tenant)
        numbers = np.array([n for _a, n in pending], dtype=np.uint64)
        try:
            codes, statuses = await acquire_codes_aio(link.linkage, link.numbers, numbers, timeout=60)
        except grpc.RpcError as e:
            raise error_from_rpc(e, "the linkage core or J-LIS") from None
        got = [(a, codes[i * 16:(i + 1) * 16]) for i, (a, _n) in enumerate(pending) if statuses[i] == 0]
        missing = [a for i, (a, _n) in enumerate(pending) if statuses[i] == 2]
        await self._offload.call(self._p.store.set_codes, tenant, got)
        await self._offload.call(self._p.store.forget_number, tenant, [a for a, _c in got])
        return pb.MidAcquireCodesResponse(acquired=len(got), no_such_number=missing)

    @rpc("business", max_request=16 * MIB)
    async def RegisterDuplicates(
        self, request: pb.RegisterDuplicatesRequest, context: grpc.aio.ServicerContext
    ) -> pb.RegisterDuplicatesResponse:
        tenant = self._tenant(context)
        if len(request.records) > MAX_DUPLICATES:
            raise ResourceExhaustedError(f"at most {MAX_DUPLICATES} records a call")
        records = []
        for r in request.records:
            try:
                item = self._p.catalog.item(r.item)
                payload = json.loads(r.payload_json or "{}")
                if not isinstance(payload, dict):
                    raise ValueError
            except (InvalidArgumentError, ValueError):
                item, payload = "", {"__invalid__": True}
            records.append(Duplicate(r.integrated_address_number, item, r.dataset, r.version, r.record_key,
                                     r.valid_from, payload, r.published, r.valid_until or None,
                                     r.fiscal_year or None, dict(r.null_reasons)))
        providable = self._p.catalog.providable(self._p.tenant(tenant).types)
        statuses = await self._offload.call(self._p.store.register_duplicates, tenant, records, providable)
        return pb.RegisterDuplicatesResponse(statuses=cast("list[pb.DuplicateStatus]", statuses),
                                             registered=sum(1 for s in statuses if s == 0))

    async def _failed(self, tenant: int, provider: int, affair: str, items: list[str], atena: str | None,
                      persons: int, err: RenkeiError, ledger_seq: int | None = None, permit_id: bytes | None = None,
                      digest: bytes | None = None) -> None:
        """記録管理 of an exchange that did not bring an answer: its reason is the outcome."""
        await self._offload.call(self._p.store.record_exchange, tenant, "requester", provider, affair, items,
                                 atena, persons, err.reason, ledger_seq, permit_id, digest)

    def _recipient(self, tenant: int, request_id: str) -> tuple[X25519PrivateKey, bytes]:
        """A fresh HPKE key pair per inquiry; a retry with the same request id gets the same one."""
        if not request_id:
            return new_recipient_key()
        key = (tenant, request_id)
        hit = self._keys.get(key)
        if hit is None:
            hit = self._keys[key] = new_recipient_key()
            while len(self._keys) > _RETRY_KEYS:
                self._keys.popitem(last=False)
        return hit

    def _inquiry(self, tenant: int, codes: bytes, request: pb.MidInquireRequest | pb.MidBatchInquireRequest,
                 public_key: bytes) -> tuple[str, list[str], lpb.ProvisionTerms]:
        affair = self._p.catalog.affair(request.affair)
        items = [self._p.catalog.item(i) for i in request.items]
        if not items:
            raise InvalidArgumentError("items: name at least one 特定個人情報")
        terms = lpb.ProvisionTerms(
            recipient_public_key=public_key, fiscal_year=request.conditions.fiscal_year,
            as_of=request.conditions.as_of, withheld_until=request.withheld_until,
            delegator_agency_id=request.delegator_agency_id)
        return affair, items, terms

    @rpc("business", max_request=64 * KIB)
    async def Inquire(self, request: pb.MidInquireRequest, context: grpc.aio.ServicerContext) -> pb.MidInquireResponse:
        tenant = self._tenant(context)
        atena = check_atena(request.integrated_address_number)
        if request.application_id:
            # Before the core is asked: an inquiry for someone else's or a decided application is refused.
            await self._offload.call(self._p.store.check_application, tenant, request.application_id)
        code = await self._offload.call(self._p.store.code_of, tenant, atena)
        private, public = self._recipient(tenant, request.request_id)
        affair, items, terms = self._inquiry(tenant, code, request, public)
        timeout = _timeout(context, INQUIRY_TIMEOUT)
        provider = request.provider_agency_id
        try:
            r = await self._links.of(tenant).linkage.Inquire(lpb.InquireRequest(
                agency_code=code, affair=affair, provider_agency_id=provider,
                information_items=items, request_id=request.request_id, terms=terms), timeout=timeout)
        except grpc.RpcError as e:
            err = error_from_rpc(e, "the linkage core")
            await self._failed(tenant, provider, affair, items, atena, 1, err)
            raise err from None
        p = r.provision
        digest = hashlib.sha256(p.sealed).digest()
        assert self._ca is not None
        try:
            header, answer = await self._offload.call(partial(
                self._p.open_answer, p.header, p.sealed, p.signature, r.provider_certificate_pem, self._ca, private,
                permit_id=bytes(r.permit_id), requester=tenant, provider=provider))
        except ProvisionTamperedError as e:
            await self._failed(tenant, provider, affair, items, atena, 1, e, r.record_sequence, bytes(r.permit_id),
                               digest)
            raise
        records = answer["persons"][0]["records"] if answer["persons"] else []
        await self._offload.call(self._p.store.record_exchange, tenant, "requester", provider,
                                 affair, items, atena, 1, header.outcome, r.record_sequence,
                                 bytes(r.permit_id), digest)
        if request.application_id:
            await self._offload.call(self._p.store.link_exchange, tenant, request.application_id,
                                     r.record_sequence, r.provision_record_sequence, affair, provider,
                                     header.outcome)
        return pb.MidInquireResponse(outcome=header.outcome, records=[_record(x) for x in records],
                                     inquiry_record_sequence=r.record_sequence,
                                     provision_record_sequence=r.provision_record_sequence,
                                     provided_at=r.provided_at)

    @rpc("business", max_request=4 * MIB)
    async def BatchInquire(
        self, request: pb.MidBatchInquireRequest, context: grpc.aio.ServicerContext
    ) -> pb.MidBatchInquireResponse:
        tenant = self._tenant(context)
        if len(request.integrated_address_numbers) > MAX_BATCH:
            raise ResourceExhaustedError(f"at most {MAX_BATCH} persons a batch")
        if not request.integrated_address_numbers:
            raise InvalidArgumentError("integrated_address_numbers: at least one")
        # Per-person work (10,000 a batch) runs on a worker thread, never on the event loop.
        atenas, codes = await self._offload.call(self._codes_of, tenant, request.integrated_address_numbers)
        have = [i for i, c in enumerate(codes) if c is not None]
        if not have:
            return pb.MidBatchInquireResponse(answers=[
                pb.PersonAnswer(integrated_address_number=a, outcome="CODE_NOT_ACQUIRED") for a in atenas])
        private, public = self._recipient(tenant, request.request_id)
        packed = b"".join(codes[i] for i in have)  # type: ignore[misc]
        affair, items, terms = self._inquiry(tenant, packed, request, public)
        timeout = _timeout(context, INQUIRY_TIMEOUT * 4)
        provider = request.provider_agency_id
        try:
            r = await self._links.of(tenant).linkage.BatchInquire(lpb.BatchInquireRequest(
                agency_codes=packed, affair=affair, provider_agency_id=provider,
                information_items=items, request_id=request.request_id, terms=terms), timeout=timeout)
        except grpc.RpcError as e:
            err = error_from_rpc(e, "the linkage core")
            await self._failed(tenant, provider, affair, items, None, len(have), err)
            raise err from None
        digest = hashlib.sha256(r.provision.sealed).digest() if r.HasField("provision") else b""
        assert self._ca is not None
        ca = self._ca

        def answer() -> tuple[list[pb.PersonAnswer], str | None]:
            answers = [pb.PersonAnswer(integrated_address_number=a, outcome="CODE_NOT_ACQUIRED") for a in atenas]
            for k, i in enumerate(have):
                o = r.outcomes[k]
                answers[i].outcome = "no data" if o == 0 else OUTCOME_TOKENS.get(o, f"DENIED_{o}")
            if not r.HasField("provision"):
                return answers, None
            p = r.provision
            header, opened = self._p.open_answer(p.header, p.sealed, p.signature, r.provider_certificate_pem, ca,
                                                 private, permit_id=bytes(r.permit_id), requester=tenant,
                                                 provider=provider)
            for person in opened["persons"]:
                if person["records"]:
                    target = answers[have[int(person["index"])]]
                    target.outcome = "provided"
                    target.records.extend(_record(x) for x in person["records"])
            return answers, header.outcome

        try:
            answers, outcome = await self._offload.call(answer)
        except ProvisionTamperedError as e:
            await self._failed(tenant, provider, affair, items, None, len(have), e, r.first_record_sequence,
                               bytes(r.permit_id), digest)
            raise
        if outcome is not None:
            await self._offload.call(self._p.store.record_exchange, tenant, "requester", provider,
                                     affair, items, None, len(have), outcome, r.first_record_sequence,
                                     bytes(r.permit_id), digest)
        return pb.MidBatchInquireResponse(answers=answers, first_inquiry_record_sequence=r.first_record_sequence,
                                          provision_record_sequence=r.provision_record_sequence)

    def _codes_of(self, tenant: int, numbers: Sequence[str]) -> tuple[list[str], list[bytes | None]]:
        atenas = [check_atena(a) for a in numbers]
        return atenas, self._p.store.codes_of(tenant, atenas)

    @rpc("business")
    async def ListExchanges(
        self, request: pb.ListExchangesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListExchangesResponse:
        tenant = self._tenant(context)
        rows = await self._offload.call(self._p.store.exchanges, tenant, request.after_sequence,
                                        page_size(request.page_size))
        return pb.ListExchangesResponse(records=[pb.ExchangeRecord(
            sequence=e.seq, time=timestamp(datetime.fromisoformat(e.at).astimezone(UTC)), role=e.role,
            counterpart_agency_id=e.counterpart, affair=e.affair, items=list(e.items),
            integrated_address_number=e.atena or "", persons=e.persons, outcome=e.outcome,
            ledger_sequence=e.ledger_seq or 0, permit_id=e.permit_id or b"",
            ciphertext_sha256=e.ciphertext_sha256 or b"") for e in rows])

    # -- ワンストップ申請 (docs/arch/onestop.md) ---------------------------------------------------

    def _municipality(self, agency_id: int) -> int:
        if "municipal_mayor" not in self._p.tenant(agency_id).types:
            raise InvalidArgumentError(f"agency {agency_id} is not a municipality: it takes no applications")
        return agency_id

    @rpc("portal", max_request=64 * KIB)
    async def DeliverApplication(
        self, request: pb.DeliverApplicationRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeliverApplicationResponse:
        tenant = self._municipality(request.agency_id)
        document, signature, certificate = bytes(request.document), bytes(request.signature), \
            bytes(request.certificate)
        await self._offload.call(onestop.check_signed, document, signature, certificate, tenant)
        a = await self._offload.call(self._p.store.add_application, tenant, document, signature, certificate)
        return pb.DeliverApplicationResponse(application_id=a.id, received_at=_ts(a.received_at))

    @rpc("portal")
    async def GetApplications(
        self, request: pb.GetApplicationsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetApplicationsResponse:
        tenant = self._municipality(request.agency_id)
        if len(request.application_ids) > 1000:
            raise ResourceExhaustedError("at most 1,000 applications a call")
        found = await self._offload.call(self._p.store.applications, tenant, list(request.application_ids))
        return pb.GetApplicationsResponse(applications=[_application(a, full=False) for a in found])

    @rpc("business")
    async def ListApplications(
        self, request: pb.ListApplicationsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListApplicationsResponse:
        tenant = self._tenant(context)
        found = await self._offload.call(self._p.store.applications, tenant, None, request.after_id,
                                         page_size(request.page_size))
        return pb.ListApplicationsResponse(applications=[_application(a, full=True) for a in found])

    @rpc("business")
    async def UpdateApplication(self, request: pb.UpdateApplicationRequest,
                                context: grpc.aio.ServicerContext) -> pb.Application:
        tenant = self._tenant(context)
        a = await self._offload.call(self._p.store.update_application, tenant, request.application_id,
                                     request.status, request.note)
        return _application(a, full=True)


def _ts(iso: str) -> Timestamp | None:
    return timestamp(datetime.fromisoformat(iso).astimezone(UTC))


def _application(a: Application, *, full: bool) -> pb.Application:
    """The portal gets the status and the exchanges, never the document or the certificate back."""
    out = pb.Application(
        application_id=a.id, agency_id=a.tenant, status=a.status, note=a.note, received_at=_ts(a.received_at),
        updated_at=_ts(a.updated_at), exchanges=[pb.ApplicationExchange(
            inquiry_record_sequence=e.inquiry_seq, provision_record_sequence=e.provision_seq, affair=e.affair,
            provider_agency_id=e.provider, outcome=e.outcome) for e in a.exchanges])
    if full:
        out.document, out.signature, out.certificate = a.document, a.signature, a.certificate
    return out


__all__ = ["IntermediateServicer"]
