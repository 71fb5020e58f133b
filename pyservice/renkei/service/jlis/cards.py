"""CardService: J-LIS's card management (renkei.jlis.cards) for its staff and municipalities' card desks.

The caller is J-LIS (role jlis: its staff, the call centre) or an agency with a live CARD
entitlement for the request's purpose. Every call — allowed or refused — is recorded in J-LIS's
query log before it answers. Card work (key generation, scrypt for the PINs) runs on its own
pool, off the event loop and off J-LIS's registry thread.
"""

from __future__ import annotations

import datetime as dt

import grpc

from renkei._proto.renkei.v1 import card_service_pb2 as pb
from renkei.errors import InvalidArgumentError
from renkei.jlis.cards import CardRecord
from renkei.jlis.info import Decision, PersonInfo
from renkei.service.auth import Identity
from renkei.service.runtime import ANY_ROLE, Offload, caller, rpc

_REASONS = {pb.CARD_REASON_NEW: "new", pb.CARD_REASON_LOST: "lost", pb.CARD_REASON_DAMAGED: "damaged",
            pb.CARD_REASON_RENEWAL: "renewal", pb.CARD_REASON_NUMBER_CHANGE: "number_change"}
_REASONS_BACK = {v: k for k, v in _REASONS.items()}
_STATES = {"active": pb.CARD_STATE_ACTIVE, "suspended": pb.CARD_STATE_SUSPENDED, "replaced": pb.CARD_STATE_REPLACED,
           "expired": pb.CARD_STATE_EXPIRED, "void": pb.CARD_STATE_VOID}
#: The purpose J-LIS's own staff calls are recorded under.
STAFF_PURPOSE = "jlis-card-management"


class CardServicer:
    def __init__(self, info: PersonInfo, registry: Offload, cards: Offload, log: Offload) -> None:
        self._info = info
        self._office = info.cards
        self._registry = registry
        self._cards = cards
        self._log = log

    async def _allowed(self, purpose: str, event: str, link_id: bytes | None = None) -> Identity:
        """The caller (its role checked by @rpc), once its call is recorded; an agency without
        the CARD entitlement is refused (recorded too)."""
        who = caller()
        if who.role == "jlis":
            decision = Decision(self._info.log.record(0, STAFF_PURPOSE, event, None, link_id))
        else:
            assert who.agency_id is not None
            decision = await self._registry.call(self._info.card_desk, who.agency_id, purpose, event, link_id)
        await self._log.call(self._info.log.append, decision.record)
        if decision.error is not None:
            raise decision.error
        return who

    def _status(self, card: CardRecord) -> pb.CardStatus:
        certs = []
        if self._office.jpki is not None:
            for kind, record in sorted(self._office.jpki.current_certificates(card.card_id).items()):
                certs.append(pb.CardCertificate(kind=kind, serial=str(record.serial), status=record.status,
                                                reason=record.reason or "",
                                                not_after=record.not_after.isoformat()))
        return pb.CardStatus(card_id=card.card_id, state=_STATES[card.state], state_reason=card.state_reason or "",
                             issued_at=card.issued_at, expires_on=card.expires_on.isoformat(), certificates=certs)

    @rpc("jlis", "agency")  # the face photo is a reference (a hash or URI), never the image
    async def ApplyForCard(self, request: pb.ApplyForCardRequest,
                           context: grpc.aio.ServicerContext) -> pb.CardApplication:
        reason = _REASONS.get(request.reason)
        if reason is None:
            raise InvalidArgumentError("reason is required (CARD_REASON_…)")
        which = request.WhichOneof("person")
        if which is None:
            raise InvalidArgumentError("name the applicant by individual_number or resident_code")
        link = await self._registry.call(
            self._info.link_of_number if which == "individual_number" else self._info.link_of_resident,
            getattr(request, which))
        who = await self._allowed(request.purpose, "card-apply", link)
        app = await self._registry.call(self._office.apply, link, reason, request.face_photo, who.principal)
        return pb.CardApplication(application_id=app.application_id, reason=_REASONS_BACK[app.reason],
                                  applied_at=app.applied_at, state=app.state, card_id=app.card_id or "")

    @rpc("jlis", "agency")
    async def IssueCard(self, request: pb.IssueCardRequest, context: grpc.aio.ServicerContext) -> pb.IssueCardResponse:
        app = await self._registry.call(self._office.application, request.application_id)
        who = await self._allowed(request.purpose, "card-issue", app.link_id)

        def issue() -> tuple[pb.CardStatus, bytes]:
            issued = self._office.issue(request.application_id, auth_pin=request.auth_pin,
                                        sign_pin=None if request.without_signing else request.sign_pin,
                                        kenmen_pin=request.kenmen_pin, actor=who.principal)
            return self._status(issued.card), issued.token

        status, token = await self._cards.call(issue)
        return pb.IssueCardResponse(card=status, token=token)

    @rpc("jlis", "agency")
    async def SuspendCard(self, request: pb.SuspendCardRequest, context: grpc.aio.ServicerContext) -> pb.CardStatus:
        card = await self._registry.call(self._office.card, request.card_id)
        who = await self._allowed(request.purpose, "card-suspend", card.link_id)
        return await self._cards.call(lambda: self._status(self._office.suspend(card.card_id, who.principal)))

    @rpc("jlis", "agency")
    async def ResumeCard(self, request: pb.ResumeCardRequest, context: grpc.aio.ServicerContext) -> pb.CardStatus:
        card = await self._registry.call(self._office.card, request.card_id)
        who = await self._allowed(request.purpose, "card-resume", card.link_id)
        return await self._cards.call(lambda: self._status(self._office.resume(card.card_id, who.principal)))

    @rpc("jlis", "agency")
    async def GetCard(self, request: pb.GetCardRequest, context: grpc.aio.ServicerContext) -> pb.CardStatus:
        card = await self._registry.call(self._office.card, request.card_id)
        await self._allowed(request.purpose, "card-status", card.link_id)
        return await self._cards.call(self._status, card)

    @rpc("jlis")
    async def ExpireCards(self, request: pb.ExpireCardsRequest,
                          context: grpc.aio.ServicerContext) -> pb.ExpireCardsResponse:
        day = None
        if request.today:
            try:
                day = dt.date.fromisoformat(request.today)
            except ValueError:
                raise InvalidArgumentError("today must be a date YYYY-MM-DD") from None
        await self._allowed("", "card-expire")
        ids = await self._cards.call(self._office.expire, day)
        return pb.ExpireCardsResponse(card_ids=ids)

    @rpc(ANY_ROLE)
    async def GetKenmenKey(self, request: pb.GetKenmenKeyRequest, context: grpc.aio.ServicerContext) -> pb.KenmenKey:
        return pb.KenmenKey(public_key_pem=self._office.kenmen_public_pem)


__all__ = ["STAFF_PURPOSE", "CardServicer"]
