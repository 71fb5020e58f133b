"""J-LIS's connection to the linkage core (PersonLinkService), as the ``jlis`` principal.

The core may be several front-ends on one store (docs/arch/store.md): J-LIS knows them all and
sends to the one that last answered. A forward of acquisitions (IssueCodes) is idempotent — the
same (取得番号, link id) pairs issue the same codes and wait under the same numbers — so it is sent
to the next front-end whenever one is unavailable, even mid-call; a card key registration only when
no connection could be made at all (it reached nobody)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import grpc

from renkei._proto.renkei.v1 import person_link_service_pb2 as pb
from renkei._proto.renkei.v1.person_link_service_pb2_grpc import PersonLinkServiceStub
from renkei.pki.ca import ServiceTls
from renkei.service.failover import never_connected, split_targets
from renkei.service.status import error_from_rpc

log = logging.getLogger("renkei.jlis")

#: Seconds J-LIS waits for the core on one forward (an issue of 100,000 codes is one fsync).
CALL_TIMEOUT = 30.0


class CoreLink:
    """grpc.aio channels to the core's front-ends, opened lazily on the serving event loop."""

    def __init__(self, target: str | Sequence[str], tls: ServiceTls) -> None:
        self.targets = split_targets(target)
        self._creds = grpc.ssl_channel_credentials(
            tls.ca.read_bytes(), tls.client_key.read_bytes(), tls.client_cert.read_bytes()
        )
        self._channels: list[grpc.aio.Channel] = []
        self._stubs: list[PersonLinkServiceStub] = []
        self._current = 0

    def _linked(self) -> list[PersonLinkServiceStub]:
        if not self._stubs:
            self._channels = [grpc.aio.secure_channel(
                t, self._creds,
                options=[("grpc.max_receive_message_length", 16 << 20), ("grpc.max_send_message_length", 16 << 20)],
            ) for t in self.targets]
            self._stubs = [PersonLinkServiceStub(ch) for ch in self._channels]
        return self._stubs

    async def _call(self, method: str, request: Any, *, idempotent: bool) -> Any:
        stubs = self._linked()
        for i in range(len(stubs)):
            k = (self._current + i) % len(stubs)
            try:
                got = await getattr(stubs[k], method)(request, timeout=CALL_TIMEOUT)
            except grpc.RpcError as e:
                resend = never_connected(e) or (idempotent and e.code() == grpc.StatusCode.UNAVAILABLE)
                if i + 1 < len(stubs) and resend:
                    log.warning("core front-end %s unavailable (%s); trying %s", self.targets[k],
                                e.code().name, self.targets[(k + 1) % len(stubs)])
                    continue
                raise error_from_rpc(e, "the linkage core") from None
            self._current = k
            return got
        raise AssertionError("unreachable")

    async def issue_codes(self, acquisition_numbers: bytes, link_ids: bytes) -> bytes:
        """The core's status per item; UnavailableError when no front-end can be reached."""
        r = await self._call("IssueCodes", pb.IssueCodesRequest(acquisition_numbers=acquisition_numbers,
                                                                link_ids=link_ids), idempotent=True)
        return bytes(r.statuses)

    async def register_card_key(self, public_key: bytes, link_id: bytes) -> bytes:
        r = await self._call("RegisterCardKey", pb.LinkCardKeyRequest(public_key=public_key, link_id=link_id),
                             idempotent=False)
        return bytes(r.card_key_id)

    async def close(self) -> None:
        for ch in self._channels:
            await ch.close()


__all__ = ["CoreLink"]
