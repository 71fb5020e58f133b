"""PersonLinkService: what J-LIS tells the core, by link id only (needs the jlis role)."""

from __future__ import annotations

import hashlib

import grpc

from renkei._proto.renkei.v1 import person_link_service_pb2 as pb
from renkei.errors import InvalidArgumentError
from renkei.linkage.acquisition import AcquisitionDesk
from renkei.linkage.codes import LINK_ID_LEN, AgencyCodes
from renkei.linkage.disclosure import check_card_key
from renkei.linkage.registry import AgencyRegistry
from renkei.service.limits import MIB
from renkei.service.runtime import Offload, rpc


class PersonLinkServicer:
    def __init__(
        self, desk: AcquisitionDesk, codes: AgencyCodes, registry: AgencyRegistry, offload: Offload,
    ) -> None:
        self._desk = desk
        self._codes = codes
        self._registry = registry
        self._offload = offload

    @rpc("jlis", max_request=4 * MIB)  # 100,000 pairs of 16-byte acquisition numbers and link ids
    async def IssueCodes(
        self, request: pb.IssueCodesRequest, context: grpc.aio.ServicerContext
    ) -> pb.IssueCodesResponse:
        statuses = await self._offload.call(self._desk.issue, request.acquisition_numbers, request.link_ids)
        return pb.IssueCodesResponse(statuses=statuses.tobytes())

    @rpc("jlis")
    async def RegisterCardKey(
        self, request: pb.LinkCardKeyRequest, context: grpc.aio.ServicerContext
    ) -> pb.LinkCardKeyResponse:
        # Ed25519 (32 bytes) or a JPKI 利用者証明用 key's SPKI: J-LIS forwards each card it issues.
        check_card_key(bytes(request.public_key))
        if len(request.link_id) != LINK_ID_LEN:
            raise InvalidArgumentError(f"link_id must be {LINK_ID_LEN} bytes")
        key_id = hashlib.sha256(request.public_key).digest()

        def register() -> None:
            person = int(self._codes.persons_of_links(request.link_id, assign=True)[0])
            self._registry.register_card_key(key_id, bytes(request.public_key), person)

        await self._offload.call(register)
        return pb.LinkCardKeyResponse(card_key_id=key_id)


__all__ = ["PersonLinkServicer"]
