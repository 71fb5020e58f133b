"""PiaReviewService: agencies submit PIAs and see their decisions; reviewers (role oversight) decide."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import grpc

from renkei._proto.renkei.v1 import pia_review_service_pb2 as pb
from renkei.errors import InvalidArgumentError, NotFoundError, PermissionDeniedError
from renkei.ppc.review import Decision, Pia, PiaReview, Submission
from renkei.service.auth import Identity
from renkei.service.limits import KIB
from renkei.service.runtime import Offload, caller, caller_agency, rpc

_LEVELS = {pb.PIA_LEVEL_BASIC: "basic", pb.PIA_LEVEL_PRIORITY: "priority", pb.PIA_LEVEL_FULL: "full"}
_LEVELS_BACK = {v: k for k, v in _LEVELS.items()}
_STATES = {"submitted": pb.PIA_STATE_SUBMITTED, "approved": pb.PIA_STATE_APPROVED, "returned": pb.PIA_STATE_RETURNED,
           "revoked": pb.PIA_STATE_REVOKED, "expired": pb.PIA_STATE_EXPIRED}
_KINDS = {"submitted": pb.PIA_DECISION_KIND_SUBMITTED, "approved": pb.PIA_DECISION_KIND_APPROVED,
          "returned": pb.PIA_DECISION_KIND_RETURNED, "revoked": pb.PIA_DECISION_KIND_REVOKED,
          "expired": pb.PIA_DECISION_KIND_EXPIRED}
_DECIDE = {pb.PIA_DECISION_KIND_APPROVED: "approved", pb.PIA_DECISION_KIND_RETURNED: "returned",
           pb.PIA_DECISION_KIND_REVOKED: "revoked"}


def pia_message(p: Pia) -> pb.Pia:
    return pb.Pia(pia_id=p.pia_id, agency_id=p.agency_id, level=_LEVELS_BACK[p.level], title=p.title,
                  files=list(p.files), linked_data=list(p.linked_data), document_sha256=p.document_sha256,
                  state=_STATES[p.state], submitted_at=p.submitted_at, approved_on=p.approved_on or "",
                  expires_on=p.expires_on or "", decided_at=p.decided_at or "", reason=p.reason or "",
                  revises=p.revises, content_sha256=p.content_sha256)


def decision_message(d: Decision) -> pb.PiaDecision:
    return pb.PiaDecision(sequence=d.seq, pia_id=d.pia_id, agency_id=d.agency_id, kind=_KINDS[d.kind],
                          time="" if d.time is None else d.time.isoformat(), reason=d.reason,
                          approved_on=d.approved_on or "", expires_on=d.expires_on or "", entry=d.entry,
                          inclusion_proof=d.proof)


class PiaReviewServicer:
    def __init__(self, review: PiaReview, registry: Offload, *, wake: Callable[[], None] | None = None) -> None:
        self._review = review
        self._registry = registry
        self._wake = wake or (lambda: None)

    def _visible(self, who: Identity, pia: Pia) -> Pia:
        if who.role == "agency" and pia.agency_id != who.agency_id:
            raise NotFoundError(f"no PIA {pia.pia_id}")  # another agency's PIA is not even named
        return pia

    # Up to MAX_LIST files and linked data of MAX_TEXT characters each (renkei.ppc.review).
    @rpc("agency", max_request=256 * KIB)
    async def SubmitPia(self, request: pb.SubmitPiaRequest, context: grpc.aio.ServicerContext) -> pb.Pia:
        agency = caller_agency()
        level = _LEVELS.get(request.level)
        if level is None:
            raise InvalidArgumentError("level is required (PIA_LEVEL_BASIC, _PRIORITY or _FULL)")
        submission = Submission(agency, level, request.title, tuple(request.files), tuple(request.linked_data),
                                bytes(request.document_sha256), int(request.revises))
        pia = await self._registry.call(self._review.submit, submission)
        self._wake()
        return pia_message(pia)

    @rpc("agency", "oversight")
    async def GetPia(self, request: pb.GetPiaRequest, context: grpc.aio.ServicerContext) -> pb.Pia:
        who = caller()
        pia = await self._registry.call(self._review.pia, request.pia_id)
        return pia_message(self._visible(who, pia))

    @rpc("agency", "oversight")
    async def ListPias(self, request: pb.ListPiasRequest, context: grpc.aio.ServicerContext) -> pb.ListPiasResponse:
        who = caller()
        agency = request.agency_id or None
        if who.role == "agency":
            if agency not in (None, who.agency_id):
                raise PermissionDeniedError("an agency sees its own PIAs only")
            agency = who.agency_id
        pias = await self._registry.call(self._review.pias, agency)
        return pb.ListPiasResponse(pias=[pia_message(p) for p in pias])

    @rpc("oversight")
    async def DecidePia(self, request: pb.DecidePiaRequest, context: grpc.aio.ServicerContext) -> pb.Pia:
        who = caller()
        kind = _DECIDE.get(request.kind)
        if kind is None:
            raise InvalidArgumentError("kind is APPROVED, RETURNED or REVOKED")
        approved_on: str | dt.date | None = request.approved_on or None
        expires_on = request.expires_on or None
        pia = await self._registry.call(lambda: self._review.decide(
            request.pia_id, kind, reviewer=who.principal, reason=request.reason, approved_on=approved_on,
            expires_on=expires_on))
        self._wake()
        return pia_message(pia)

    @rpc("agency", "oversight")
    async def ListPiaDecisions(self, request: pb.ListPiaDecisionsRequest,
                               context: grpc.aio.ServicerContext) -> pb.ListPiaDecisionsResponse:
        who = caller()
        agency = request.agency_id or None
        if who.role == "agency":
            if agency not in (None, who.agency_id):
                raise PermissionDeniedError("an agency sees the decisions on its own PIAs only")
            agency = who.agency_id
        cp, decisions = await self._registry.call(self._review.decisions, agency)
        return pb.ListPiaDecisionsResponse(checkpoint=cp.note, vkey=self._review.vkey,
                                           decisions=[decision_message(d) for d in decisions])


__all__ = ["PiaReviewServicer", "decision_message", "pia_message"]
