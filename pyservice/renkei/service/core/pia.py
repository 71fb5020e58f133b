"""PiaDecisionService: the commission's PIA decisions arriving at the core (role ``commission``).

The core checks the checkpoint's signature with the commission's key it was bound to at init
and every record's inclusion (renkei.linkage.commission), applies them in log order and forgets
the affected agencies' cached admission, so an approval or a revocation decides the next call."""

from __future__ import annotations

import grpc

from renkei._proto.renkei.v1 import pia_decision_service_pb2 as pb
from renkei.errors import FailedPreconditionError, InvalidArgumentError
from renkei.linkage.inquiry import Linkage
from renkei.linkage.registry import AgencyRegistry
from renkei.ppc.review import parse_decision
from renkei.service.limits import MIB
from renkei.service.runtime import Offload, rpc

MAX_DECISIONS = 1000


class PiaDecisionServicer:
    def __init__(self, registry: AgencyRegistry, linkage: Linkage, offload: Offload) -> None:
        self._registry = registry
        self._linkage = linkage
        self._offload = offload

    # MAX_DECISIONS records of a few hundred bytes, each with a proof of up to 64 hashes.
    @rpc("commission", max_request=4 * MIB)
    async def ApplyPiaDecisions(self, request: pb.ApplyPiaDecisionsRequest,
                                context: grpc.aio.ServicerContext) -> pb.ApplyPiaDecisionsResponse:
        commission = self._registry.commission
        if commission is None:
            raise FailedPreconditionError("this core is bound to no commission (core init --commission-vkey)")
        if len(request.decisions) > MAX_DECISIONS:
            raise InvalidArgumentError(f"at most {MAX_DECISIONS} decisions a call")
        items = [(d.sequence, bytes(d.entry), list(d.inclusion_proof)) for d in request.decisions]

        def apply() -> tuple[int, int]:
            through, applied = commission.apply(request.checkpoint, items)
            for _seq, entry, _proof in items:
                self._linkage.forget(parse_decision(entry).agency_id)
            return through, applied

        through, applied = await self._offload.call(apply)
        return pb.ApplyPiaDecisionsResponse(next_sequence=through + 1, applied=applied)


__all__ = ["PiaDecisionServicer"]
