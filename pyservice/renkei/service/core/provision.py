"""ProvisionService: providers' intermediate servers attend the core (role ``agency``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc

from renkei._proto.renkei.v1 import provision_service_pb2 as pb
from renkei.errors import InvalidArgumentError, UnauthenticatedError
from renkei.linkage.provision import NO_DATA, PROVIDED, Answer, Attendee, ProviderDesk
from renkei.mid.sealing import ProvisionHeader
from renkei.service.limits import MIB
from renkei.service.runtime import caller_agency, rpc


class ProvisionServicer:
    def __init__(self, desk: ProviderDesk) -> None:
        self._desk = desk

    # Each message is one sealed answer; a batch's answer comes in parts below the port's limit.
    @rpc("agency", max_request=16 * MIB)
    async def Attend(
        self, requests: AsyncIterator[pb.ProviderMessage], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ProvisionCall]:
        agency = caller_agency()
        # The certificate requesters verify answers against is the one this stream presented in
        # the TLS handshake, never one a message claims.
        pems = context.auth_context().get("x509_pem_cert") or []
        if not pems:
            raise UnauthenticatedError("a client certificate is required")
        first = await anext(aiter(requests), None)
        if first is None or not first.HasField("ready"):
            raise InvalidArgumentError("the first message on an attendance stream is ProviderReady")
        a = self._desk.attend(agency, bytes(pems[0]))
        reader = asyncio.create_task(self._read(a, requests))
        try:
            while True:
                call = await a.outbox.get()
                if call is None:
                    return
                yield call
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            self._desk.leave(a)

    async def _read(self, a: Attendee, requests: AsyncIterator[pb.ProviderMessage]) -> None:
        try:
            async for m in requests:
                if m.HasField("answer"):
                    s = m.answer
                    try:
                        outcome = PROVIDED if ProvisionHeader.decode(s.header).outcome == "provided" else NO_DATA
                    except InvalidArgumentError:
                        self._desk.answered(a, s.call_id, None, "MALFORMED_HEADER")
                        continue
                    self._desk.answered(a, s.call_id, Answer(bytes(s.header), bytes(s.sealed), bytes(s.signature),
                                                             outcome))
                elif m.HasField("failure"):
                    self._desk.answered(a, m.failure.call_id, None, m.failure.reason)
        finally:
            self._desk.leave(a)


__all__ = ["ProvisionServicer"]
