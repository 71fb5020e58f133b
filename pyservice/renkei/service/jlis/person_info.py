"""PersonInfoService: J-LIS's 本人確認情報 — reports of the resident register, 個人番号等照会,
entitlements and the query log (renkei.jlis.info). Handlers are thin: registry work runs on J-LIS's
registry thread, the log's durable append on its own pool, before any answer."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import grpc

from renkei._proto.renkei.v1 import person_info_service_pb2 as pb
from renkei.errors import InvalidArgumentError, PermissionDeniedError
from renkei.jlis.facts import EVENTS
from renkei.jlis.info import Decision, PersonInfo
from renkei.jlis.queries import ITEMS, Entitlement
from renkei.jpki.profile import BasicFacts
from renkei.ledger import outcome_token
from renkei.service.runtime import Offload, caller, caller_agency, rpc

_EVENTS = {getattr(pb, f"RESIDENT_EVENT_{name.upper()}"): name for name in EVENTS}
_SEX = {pb.SEX_MALE: "1", pb.SEX_FEMALE: "2", pb.SEX_UNKNOWN: "3"}
_SEX_BACK = {v: k for k, v in _SEX.items()}
_ITEMS = {pb.ENTITLEMENT_ITEM_FACTS: "facts", pb.ENTITLEMENT_ITEM_NUMBER: "number", pb.ENTITLEMENT_ITEM_CARD: "card"}
_ITEMS_BACK = {v: k for k, v in _ITEMS.items()}
MAX_RECORDS = 1000
_DENIALS = {1: "NOT_ENTITLED", 2: "NO_SUCH_PERSON", 3: "AMBIGUOUS", 4: "NO_NUMBER"}
assert set(_ITEMS.values()) == set(ITEMS)


def _date(text: str, what: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidArgumentError(f"{what} must be a date YYYY-MM-DD") from None


def facts_from(message: pb.BasicFacts) -> BasicFacts:
    sex = _SEX.get(message.sex)
    if sex is None:
        raise InvalidArgumentError("facts.sex is required (SEX_MALE, SEX_FEMALE or SEX_UNKNOWN)")
    return BasicFacts(message.name, _date(message.birth, "facts.birth"), sex, message.address)


def facts_message(facts: BasicFacts) -> pb.BasicFacts:
    return pb.BasicFacts(name=facts.name, birth=facts.birth.isoformat(), sex=_SEX_BACK[facts.sex],
                         address=facts.address)


def entitlement_message(e: Entitlement) -> pb.Entitlement:
    return pb.Entitlement(entitlement_id=e.entitlement_id, agency_id=e.agency_id, item=_ITEMS_BACK[e.item],
                          purpose=e.purpose, legal_basis=e.legal_basis, granted_at=e.granted_at,
                          granted_by=e.granted_by, revoked_at=e.revoked_at or "", revoked_by=e.revoked_by or "")


class PersonInfoServicer:
    def __init__(self, info: PersonInfo, registry: Offload, log: Offload, *,
                 wake: Callable[[], None] | None = None) -> None:
        self._info = info
        self._registry = registry
        self._log = log
        self._wake = wake or (lambda: None)

    async def _logged(self, decision: Decision) -> tuple[Any, int]:
        """Append the decision's record durably, then answer or raise."""
        seq = await self._log.call(self._info.log.append, decision.record)
        if decision.error is not None:
            raise decision.error
        return decision.answer, seq

    @rpc("jlis")
    async def ReportResidentFacts(self, request: pb.ReportResidentFactsRequest,
                                  context: grpc.aio.ServicerContext) -> pb.ReportResidentFactsResponse:
        event = _EVENTS.get(request.event)
        if event is None:
            raise InvalidArgumentError("event is required (RESIDENT_EVENT_…)")
        if not request.HasField("facts"):
            raise InvalidArgumentError("facts (all four 基本4情報 after the event) are required")
        facts = facts_from(request.facts)
        day = _date(request.effective_on, "effective_on")
        reported, revoked = await self._registry.call(self._info.report, request.resident_code, event, day, facts,
                                                      request.municipality_code)
        self._wake()  # a notice may have been waiting for these facts
        return pb.ReportResidentFactsResponse(version=reported.version, changed=sorted(reported.changed),
                                              certificates_revoked=revoked)

    @rpc("agency")
    async def QueryPersonFacts(self, request: pb.QueryPersonFactsRequest,
                               context: grpc.aio.ServicerContext) -> pb.QueryPersonFactsResponse:
        agency = caller_agency()
        which = request.WhichOneof("person")
        if which is None:
            raise InvalidArgumentError("name the person by individual_number or resident_code")
        kwargs = {"number": request.individual_number} if which == "individual_number" else {
            "resident_code": request.resident_code}
        decision = await self._registry.call(lambda: self._info.decide_facts(agency, request.purpose,
                                                                             **kwargs))
        person, seq = await self._logged(decision)
        return pb.QueryPersonFactsResponse(
            facts=facts_message(person.facts), version=person.version, record_sequence=seq,
            deceased_on="" if person.deceased_on is None else person.deceased_on.isoformat())

    @rpc("agency")
    async def QueryIndividualNumber(self, request: pb.QueryIndividualNumberRequest,
                                    context: grpc.aio.ServicerContext) -> pb.QueryIndividualNumberResponse:
        agency = caller_agency()
        which = request.WhichOneof("person")
        if which is None:
            raise InvalidArgumentError("name the person by resident_code or by 4情報 (facts)")
        if which == "resident_code":
            decision = await self._registry.call(lambda: self._info.decide_number(
                agency, request.purpose, resident_code=request.resident_code))
        else:
            f = request.facts
            sex = _SEX.get(f.sex)
            if sex is None or not f.name:
                raise InvalidArgumentError("a 4情報 search needs name, birth and sex")
            search = (f.name, _date(f.birth, "facts.birth"), sex, f.address or None)
            decision = await self._registry.call(lambda: self._info.decide_number(agency, request.purpose,
                                                                                  search=search))
        number, seq = await self._logged(decision)
        return pb.QueryIndividualNumberResponse(individual_number=number, record_sequence=seq)

    @rpc("jlis")
    async def GrantEntitlement(self, request: pb.GrantEntitlementRequest,
                               context: grpc.aio.ServicerContext) -> pb.Entitlement:
        item = _ITEMS.get(request.item)
        if item is None:
            raise InvalidArgumentError("item is required (ENTITLEMENT_ITEM_FACTS, _NUMBER or _CARD)")
        e = await self._registry.call(self._info.entitlements.grant, request.agency_id, item, request.purpose,
                                      request.legal_basis, request.actor)
        return entitlement_message(e)

    @rpc("jlis")
    async def RevokeEntitlement(self, request: pb.RevokeEntitlementRequest,
                                context: grpc.aio.ServicerContext) -> pb.Entitlement:
        if not request.actor:
            raise InvalidArgumentError("actor (who revokes it) is required")
        e = await self._registry.call(self._info.entitlements.revoke, request.entitlement_id, request.actor)
        return entitlement_message(e)

    @rpc("jlis", "agency")
    async def ListEntitlements(self, request: pb.ListEntitlementsRequest,
                               context: grpc.aio.ServicerContext) -> pb.ListEntitlementsResponse:
        who = caller()
        agency: int | None = request.agency_id or None
        if who.role == "agency":
            if agency not in (None, who.agency_id):
                raise PermissionDeniedError("an agency sees its own entitlements only")
            agency = who.agency_id
        found = await self._registry.call(lambda: self._info.entitlements.list(agency, live_only=request.live_only))
        return pb.ListEntitlementsResponse(entitlements=[entitlement_message(e) for e in found])

    @rpc("jlis", "oversight")
    async def ListQueryRecords(self, request: pb.ListQueryRecordsRequest,
                               context: grpc.aio.ServicerContext) -> pb.ListQueryRecordsResponse:
        count = request.count or 100
        if count > MAX_RECORDS:
            raise InvalidArgumentError(f"count must be at most {MAX_RECORDS}")

        def read() -> pb.ListQueryRecordsResponse:
            ledger = self._info.log.ledger
            cp = ledger.checkpoint()
            out = []
            # The public leaves (layout 2): the person only as a commitment. Their openings stay
            # in J-LIS (the pseudonym would let a reader link one person's queries).
            for stored in ledger.stored(list(range(request.first, min(cp.size, request.first + count)))):
                record, seq = stored.record, int(stored.record.seq or 0)
                proof = ledger.prove_inclusion(seq, cp.size)
                out.append(pb.QueryRecord(
                    sequence=seq, time=record.time.isoformat() if record.time else "", requester=record.requester,
                    purpose=record.affair, items=list(record.items), basis_hash=record.table_hash,
                    outcome="permitted" if record.permitted else _DENIALS.get(record.denied_code,
                                                                               outcome_token(record.denied_code)),
                    reason=record.reason, entry=stored.entry, inclusion_proof=proof.hashes))
            return pb.ListQueryRecordsResponse(checkpoint=cp.note, vkey=ledger.vkey, records=out)

        return await self._log.call(read)


__all__ = ["PersonInfoServicer", "entitlement_message", "facts_from", "facts_message"]
