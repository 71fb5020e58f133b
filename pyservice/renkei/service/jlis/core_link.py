"""J-LIS's connection to the linkage core (PersonLinkService), as the ``jlis`` principal."""

from __future__ import annotations

import grpc

from renkei._proto.renkei.v1 import person_link_service_pb2 as pb
from renkei._proto.renkei.v1.person_link_service_pb2_grpc import PersonLinkServiceStub
from renkei.pki.ca import ServiceTls
from renkei.service.status import error_from_rpc

#: Seconds J-LIS waits for the core on one forward (an issue of 100,000 codes is one fsync).
CALL_TIMEOUT = 30.0


class CoreLink:
    """A grpc.aio channel to the core, opened lazily on the serving event loop."""

    def __init__(self, target: str, tls: ServiceTls) -> None:
        self._target = target
        self._creds = grpc.ssl_channel_credentials(
            tls.ca.read_bytes(), tls.client_key.read_bytes(), tls.client_cert.read_bytes()
        )
        self._channel: grpc.aio.Channel | None = None
        self._stub: PersonLinkServiceStub | None = None

    def _linked(self) -> PersonLinkServiceStub:
        if self._stub is None:
            self._channel = grpc.aio.secure_channel(
                self._target, self._creds,
                options=[("grpc.max_receive_message_length", 16 << 20), ("grpc.max_send_message_length", 16 << 20)],
            )
            self._stub = PersonLinkServiceStub(self._channel)
        return self._stub

    async def issue_codes(self, acquisition_numbers: bytes, link_ids: bytes) -> bytes:
        """The core's status per item; UnavailableError when the core cannot be reached."""
        try:
            r = await self._linked().IssueCodes(
                pb.IssueCodesRequest(acquisition_numbers=acquisition_numbers, link_ids=link_ids),
                timeout=CALL_TIMEOUT,
            )
        except grpc.RpcError as e:
            raise error_from_rpc(e, "the linkage core") from None
        return bytes(r.statuses)

    async def register_card_key(self, public_key: bytes, link_id: bytes) -> bytes:
        try:
            r = await self._linked().RegisterCardKey(
                pb.LinkCardKeyRequest(public_key=public_key, link_id=link_id), timeout=CALL_TIMEOUT
            )
        except grpc.RpcError as e:
            raise error_from_rpc(e, "the linkage core") from None
        return bytes(r.card_key_id)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()


__all__ = ["CoreLink"]
