"""OversightService: the commission's view of the provision ledger (needs the oversight role)."""

from __future__ import annotations

import grpc

from renkei._proto.renkei.v1 import oversight_service_pb2 as pb
from renkei.errors import InvalidArgumentError, UnimplementedError
from renkei.ledger import Checkpoint, InclusionProof, StoredRecord
from renkei.linkage.cosigning import CosignedCheckpoint, Cosigner
from renkei.linkage.oversight import Oversight
from renkei.linkage.registry import AgencyRegistry
from renkei.service.convert import decode_page_token, encode_page_token, optional_time, page_size, timestamp
from renkei.service.runtime import Offload, rpc


def checkpoint_message(c: Checkpoint | CosignedCheckpoint) -> pb.Checkpoint:
    witnesses = c.witnesses if isinstance(c, CosignedCheckpoint) else ()
    c = c.checkpoint if isinstance(c, CosignedCheckpoint) else c
    cosignatures = []
    for name, t in witnesses:
        cs = pb.Cosignature(witness=name)
        cs.time.FromSeconds(t)
        cosignatures.append(cs)
    return pb.Checkpoint(note=c.note.encode(), origin=c.origin, tree_size=c.size, root_hash=c.root,
                         cosignatures=cosignatures)


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
    def __init__(self, engine: Oversight, offload: Offload, cosigner: Cosigner | None = None,
                 registry: AgencyRegistry | None = None) -> None:
        self._engine = engine
        self._registry = registry
        self._offload = offload
        self._cosigner = cosigner

    async def _latest(self) -> Checkpoint | CosignedCheckpoint:
        if self._cosigner is not None:
            return await self._cosigner.latest()
        return await self._offload.call(self._engine.latest_checkpoint)

    @rpc("oversight")
    async def GetLatestCheckpoint(
        self, request: pb.GetLatestCheckpointRequest, context: grpc.aio.ServicerContext
    ) -> pb.Checkpoint:
        return checkpoint_message(await self._latest())

    @rpc("oversight")
    async def GetCheckpoint(
        self, request: pb.GetCheckpointRequest, context: grpc.aio.ServicerContext
    ) -> pb.Checkpoint:
        if request.tree_size == 0:
            raise InvalidArgumentError("tree_size must be > 0")
        if self._cosigner is not None:
            kept = await self._offload.call(self._cosigner.stored, request.tree_size)
            if kept is not None:
                return checkpoint_message(kept)
        return checkpoint_message(await self._offload.call(self._engine.checkpoint_at, request.tree_size))

    @rpc("oversight")
    async def GetConsistencyProof(
        self, request: pb.GetConsistencyProofRequest, context: grpc.aio.ServicerContext
    ) -> pb.ConsistencyProof:
        if not 0 < request.first_size <= request.second_size:
            raise InvalidArgumentError("need 0 < first_size <= second_size")
        hashes = await self._offload.call(
            self._engine.consistency_proof, request.first_size, request.second_size
        )
        return pb.ConsistencyProof(
            first_size=request.first_size, second_size=request.second_size, hashes=list(hashes)
        )

    @rpc("oversight")
    async def GetInclusionProof(
        self, request: pb.GetInclusionProofRequest, context: grpc.aio.ServicerContext
    ) -> pb.InclusionProof:
        if request.tree_size and request.leaf_index >= request.tree_size:
            raise InvalidArgumentError("leaf_index must be below tree_size")
        size = request.tree_size
        if not size and self._cosigner is not None:
            latest = await self._latest()
            size = (latest.checkpoint if isinstance(latest, CosignedCheckpoint) else latest).size
        proof = await self._offload.call(self._engine.inclusion_proof, request.leaf_index, size or None)
        return inclusion_message(proof)

    @rpc("oversight")
    async def ListRecords(
        self, request: pb.ListRecordsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListRecordsResponse:
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

    @rpc("oversight")
    async def GetAgencyStatistics(
        self, request: pb.GetAgencyStatisticsRequest, context: grpc.aio.ServicerContext
    ) -> pb.AgencyStatistics:
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

    @rpc("oversight")
    async def ListAgencyFacts(
        self, request: pb.ListAgencyFactsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListAgencyFactsResponse:
        if self._registry is None:
            raise UnimplementedError("this core serves no agency listing")
        registry = self._registry
        limit = page_size(request.page_size)
        after = decode_page_token(request.page_token, b"agency-facts") or 0

        def page() -> list[pb.AgencyFacts]:
            return [pb.AgencyFacts(agency_id=a.agency_id, name=a.name, type_ids=list(a.types),
                                   local_government_code=a.municipality_code or "", status=a.status)
                    for a in registry.agencies() if a.agency_id > after][: limit + 1]

        rows = await self._offload.call(page)
        more = len(rows) > limit
        rows = rows[:limit]
        token = encode_page_token(rows[-1].agency_id, b"agency-facts") if more and rows else ""
        return pb.ListAgencyFactsResponse(agencies=rows, next_page_token=token)


__all__ = ["OversightServicer", "checkpoint_message", "inclusion_message", "record_message"]
