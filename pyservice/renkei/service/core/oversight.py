"""OversightService: the commission's view of the provision ledger (needs the oversight role)."""

from __future__ import annotations

import grpc

from renkei._proto.renkei.v1 import oversight_service_pb2 as pb
from renkei.errors import InvalidArgumentError
from renkei.ledger import Checkpoint, InclusionProof, StoredRecord
from renkei.linkage.oversight import Oversight
from renkei.service.auth import Authenticator
from renkei.service.convert import decode_page_token, encode_page_token, optional_time, page_size, timestamp
from renkei.service.runtime import Offload


def checkpoint_message(c: Checkpoint) -> pb.Checkpoint:
    return pb.Checkpoint(note=c.note.encode(), origin=c.origin, tree_size=c.size, root_hash=c.root)


def inclusion_message(p: InclusionProof) -> pb.InclusionProof:
    return pb.InclusionProof(leaf_index=p.seq, tree_size=p.size, leaf_hash=p.leaf_hash, hashes=list(p.hashes))


def record_message(stored: StoredRecord) -> pb.ProvisionRecord:
    r = stored.record
    assert r.seq is not None and r.time is not None  # always set on records read back
    return pb.ProvisionRecord(
        sequence=r.seq,
        time=timestamp(r.time),
        requester_agency_id=r.requester,
        provider_agency_id=r.provider,
        affair=r.affair,
        information_items=list(r.items),
        table_version_hash=r.table_hash,
        outcome=stored.outcome,
        permit_id=r.permit_id,
        person_pseudonym=r.pseudonym,
        withheld=r.withheld,
        leaf_data=stored.entry,
        person_opening=stored.opening,
    )


def _window(request: object) -> tuple[object, object]:
    start, end = optional_time(request, "start_time"), optional_time(request, "end_time")
    if start is not None and end is not None and start >= end:
        raise InvalidArgumentError("start_time must be before end_time")
    return start, end


class OversightServicer:
    def __init__(self, engine: Oversight, auth: Authenticator, offload: Offload) -> None:
        self._engine = engine
        self._auth = auth
        self._offload = offload

    async def GetLatestCheckpoint(
        self, request: pb.GetLatestCheckpointRequest, context: grpc.aio.ServicerContext
    ) -> pb.Checkpoint:
        self._auth.require(context, "oversight")
        return checkpoint_message(await self._offload.call(self._engine.latest_checkpoint))

    async def GetCheckpoint(
        self, request: pb.GetCheckpointRequest, context: grpc.aio.ServicerContext
    ) -> pb.Checkpoint:
        self._auth.require(context, "oversight")
        if request.tree_size == 0:
            raise InvalidArgumentError("tree_size must be > 0")
        return checkpoint_message(await self._offload.call(self._engine.checkpoint_at, request.tree_size))

    async def GetConsistencyProof(
        self, request: pb.GetConsistencyProofRequest, context: grpc.aio.ServicerContext
    ) -> pb.ConsistencyProof:
        self._auth.require(context, "oversight")
        if not 0 < request.first_size <= request.second_size:
            raise InvalidArgumentError("need 0 < first_size <= second_size")
        hashes = await self._offload.call(
            self._engine.consistency_proof, request.first_size, request.second_size
        )
        return pb.ConsistencyProof(
            first_size=request.first_size, second_size=request.second_size, hashes=list(hashes)
        )

    async def GetInclusionProof(
        self, request: pb.GetInclusionProofRequest, context: grpc.aio.ServicerContext
    ) -> pb.InclusionProof:
        self._auth.require(context, "oversight")
        if request.tree_size and request.leaf_index >= request.tree_size:
            raise InvalidArgumentError("leaf_index must be below tree_size")
        proof = await self._offload.call(
            self._engine.inclusion_proof, request.leaf_index, request.tree_size or None
        )
        return inclusion_message(proof)

    async def ListRecords(
        self, request: pb.ListRecordsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListRecordsResponse:
        self._auth.require(context, "oversight")
        start, end = _window(request)
        limit = page_size(request.page_size)
        query = pb.ListRecordsRequest(
            agency_id=request.agency_id, start_time=request.start_time, end_time=request.end_time
        ).SerializeToString(deterministic=True)
        after = decode_page_token(request.page_token, query)
        rows = await self._offload.call(
            self._engine.records,
            request.agency_id or None,
            start,
            end,
            -1 if after is None else after,
            limit + 1,
        )
        more = len(rows) > limit
        rows = list(rows)[:limit]
        token = encode_page_token(rows[-1].record.seq or 0, query) if more and rows else ""
        return pb.ListRecordsResponse(records=[record_message(r) for r in rows], next_page_token=token)

    async def GetAgencyStatistics(
        self, request: pb.GetAgencyStatisticsRequest, context: grpc.aio.ServicerContext
    ) -> pb.AgencyStatistics:
        self._auth.require(context, "oversight")
        if request.agency_id == 0:
            raise InvalidArgumentError("agency_id is required")
        start, end = _window(request)
        s = await self._offload.call(self._engine.agency_statistics, request.agency_id, start, end)
        return pb.AgencyStatistics(
            agency_id=s.agency_id,
            inquiries=s.inquiries,
            denials=s.denials,
            provisions=s.provisions,
            by_affair=[pb.AffairCount(affair=a, inquiries=i, denials=d) for a, i, d in s.by_affair],
            denials_by_reason=dict(s.denials_by_reason),
        )


__all__ = ["OversightServicer", "checkpoint_message", "inclusion_message", "record_message"]
