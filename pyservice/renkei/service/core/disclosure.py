"""DisclosureService: a person's own provision records (public port; card-key login).

The person is identified by a session from :meth:`Login`, never by a My Number; the session
token travels in the ``authorization`` metadata as ``Bearer <token>``.
"""

from __future__ import annotations

from datetime import UTC, datetime

import grpc

from renkei._proto.renkei.v1 import disclosure_service_pb2 as pb
from renkei.errors import InvalidArgumentError, UnauthenticatedError
from renkei.ledger import Checkpoint, StoredRecord
from renkei.linkage.cosigning import CosignedCheckpoint, Cosigner
from renkei.linkage.delegation import Delegation, Operation
from renkei.linkage.disclosure import Disclosure
from renkei.service.convert import decode_page_token, encode_page_token, page_size, timestamp
from renkei.service.core.oversight import checkpoint_message, inclusion_message, record_message
from renkei.service.limits import KIB
from renkei.service.runtime import Offload, rpc

CARD_KEY_ID_BYTES = 32
MAX_CHALLENGE_BYTES = 256
MAX_SIGNATURE_BYTES = 1024


def _card_key_id(value: bytes) -> bytes:
    if len(value) != CARD_KEY_ID_BYTES:
        raise InvalidArgumentError(
            f"card_key_id must be {CARD_KEY_ID_BYTES} bytes (SHA-256 of the public key)"
        )
    return value


def session_token(context: grpc.aio.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
            return value[len("Bearer ") :]
    raise UnauthenticatedError("log in first: send the session token as 'authorization: Bearer <token>'")


class DisclosureServicer:
    def __init__(self, engine: Disclosure, offload: Offload, cosigner: Cosigner | None = None) -> None:
        self._engine = engine
        self._offload = offload
        self._cosigner = cosigner

    @rpc(public=True, max_request=4 * KIB)
    async def CreateChallenge(
        self, request: pb.CreateChallengeRequest, context: grpc.aio.ServicerContext
    ) -> pb.Challenge:
        # An empty id asks for a challenge bound to no key (a relying party's login page).
        key = request.card_key_id and _card_key_id(request.card_key_id)
        c = await self._offload.call(self._engine.create_challenge, key)
        return pb.Challenge(challenge=c.challenge, expire_time=timestamp(c.expires_at))

    @rpc(public=True, max_request=4 * KIB)
    async def Login(self, request: pb.LoginRequest, context: grpc.aio.ServicerContext) -> pb.LoginResponse:
        key = _card_key_id(request.card_key_id)
        if not 0 < len(request.challenge) <= MAX_CHALLENGE_BYTES:
            raise InvalidArgumentError("challenge is missing or too long")
        if not 0 < len(request.signature) <= MAX_SIGNATURE_BYTES:
            raise InvalidArgumentError("signature is missing or too long")
        s = await self._offload.call(self._engine.login, key, request.challenge, request.signature)
        return pb.LoginResponse(session_token=s.token, expire_time=timestamp(s.expires_at),
                                person_pseudonym=s.pseudonym)

    @rpc(public=True, max_request=4 * KIB)
    async def ListMyRecords(
        self, request: pb.ListMyRecordsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListMyRecordsResponse:
        token = session_token(context)
        limit = page_size(request.page_size)
        before = decode_page_token(request.page_token, b"my-records")
        page, whose = await self._offload.call(self._engine.my_records, token, before, limit, request.delegation_id)
        checkpoint: Checkpoint | CosignedCheckpoint = page.checkpoint
        if self._cosigner is not None:
            cosigned = await self._cosigner.latest()
            page = await self._offload.call(self._cosigner.attach, page, cosigned)
            if page.checkpoint is cosigned.checkpoint:
                checkpoint = cosigned
        return pb.ListMyRecordsResponse(
            records=[
                pb.DisclosedRecord(
                    record=record_message(StoredRecord(r.record, r.entry, r.opening)),
                    inclusion_proof=inclusion_message(r.proof),
                )
                for r in page.records
            ],
            checkpoint=checkpoint_message(checkpoint),
            next_page_token=""
            if page.next_before is None
            else encode_page_token(page.next_before, b"my-records"),
            person_pseudonym=whose,
        )

    @rpc(public=True, max_request=4 * KIB)
    async def ListMyNotices(
        self, request: pb.ListMyNoticesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListMyNoticesResponse:
        token = session_token(context)
        limit = page_size(request.page_size)
        before = decode_page_token(request.page_token, b"my-notices")
        notices, more = await self._offload.call(self._engine.my_notices, token, before, limit,
                                                 request.delegation_id)
        return pb.ListMyNoticesResponse(
            notices=[pb.PersonNotice(notice_id=n.notice_id, agency_id=n.agency_id, title=n.title, body=n.body,
                                     send_time=timestamp(n.sent_at)) for n in notices],
            next_page_token="" if more is None else encode_page_token(more, b"my-notices"))

    # -- 代理人 ----------------------------------------------------------------------------------

    @rpc(public=True, max_request=4 * KIB)
    async def CreateDelegation(
        self, request: pb.CreateDelegationRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateDelegationResponse:
        token = session_token(context)
        if not request.HasField("valid_until"):
            raise InvalidArgumentError("valid_until is required")

        def create() -> tuple[Delegation, str]:
            book, me = self._engine.book(token)
            return book.offer(me, request.label, list(request.scopes), request.valid_until.ToDatetime(tzinfo=UTC))

        d, code = await self._offload.call(create)
        return pb.CreateDelegationResponse(delegation=_delegation(d, False), offer_code=code)

    @rpc(public=True, max_request=4 * KIB)
    async def AcceptDelegation(
        self, request: pb.AcceptDelegationRequest, context: grpc.aio.ServicerContext
    ) -> pb.Delegation:
        token = session_token(context)
        if not 0 < len(request.offer_code) <= 64:
            raise InvalidArgumentError("offer_code is missing or too long")

        def accept() -> Delegation:
            book, me = self._engine.book(token)
            return book.accept(me, request.offer_code)

        return _delegation(await self._offload.call(accept), True)

    @rpc(public=True, max_request=4 * KIB)
    async def RevokeDelegation(
        self, request: pb.RevokeDelegationRequest, context: grpc.aio.ServicerContext
    ) -> pb.Delegation:
        token = session_token(context)

        def revoke() -> Delegation:
            book, me = self._engine.book(token)
            return book.revoke(me, request.delegation_id)

        return _delegation(await self._offload.call(revoke), False)

    @rpc(public=True, max_request=4 * KIB)
    async def ListDelegations(
        self, request: pb.ListDelegationsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListDelegationsResponse:
        token = session_token(context)

        def both() -> tuple[list[Delegation], list[Delegation]]:
            book, me = self._engine.book(token)
            return book.of(me)

        mine, theirs = await self._offload.call(both)
        return pb.ListDelegationsResponse(as_principal=[_delegation(d, False) for d in mine],
                                          as_agent=[_delegation(d, True) for d in theirs])

    @rpc(public=True, max_request=4 * KIB)
    async def ListOperations(
        self, request: pb.ListOperationsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListOperationsResponse:
        token = session_token(context)

        def ops() -> list[Operation]:
            book, me = self._engine.book(token)
            return book.operations(me)

        return pb.ListOperationsResponse(operations=[
            pb.Operation(time=timestamp(o.at), actor=o.actor, action=o.action, delegation_id=o.delegation_id or 0)
            for o in await self._offload.call(ops)])

    @rpc(public=True, max_request=4 * KIB)
    async def Logout(self, request: pb.LogoutRequest, context: grpc.aio.ServicerContext) -> pb.LogoutResponse:
        # The session is a row of the core's store: ended here, it is ended at every front-end.
        token = session_token(context)
        return pb.LogoutResponse(ended=await self._offload.call(self._engine.logout, token))


def _delegation(d: Delegation, as_agent: bool) -> pb.Delegation:
    # The agent sees the principal's label of the delegation, never who the principal is.
    return pb.Delegation(delegation_id=d.delegation_id, label=d.label, scopes=list(d.scope),
                         valid_until=timestamp(d.valid_until), create_time=timestamp(d.created_at),
                         state=d.state(datetime.now(UTC)), as_agent=as_agent)


__all__ = ["DisclosureServicer"]
