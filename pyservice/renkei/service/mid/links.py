"""The intermediate server's channels to the core and J-LIS, one set per tenant, each with that
agency's own certificate (the core and J-LIS see the agency, never the platform)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc

from renkei._proto.renkei.v1 import linkage_service_pb2 as lpb
from renkei._proto.renkei.v1.linkage_service_pb2_grpc import LinkageServiceStub
from renkei._proto.renkei.v1.number_service_pb2_grpc import NumberServiceStub
from renkei._proto.renkei.v1.provision_service_pb2_grpc import ProvisionServiceStub
from renkei.mid.platform import Platform
from renkei.service.status import error_from_rpc

#: Keepalive pings on the tenants' channels: an attendance stream that died silently (a NAT, a
#: restarted core) is noticed within half a minute. The servers accept pings this often
#: (renkei.service.server.MIN_PING_INTERVAL_MS).
KEEPALIVE_MS = 20_000
_OPTIONS = [("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20),
            ("grpc.keepalive_time_ms", KEEPALIVE_MS), ("grpc.keepalive_timeout_ms", 10_000),
            ("grpc.keepalive_permit_without_calls", 1)]


@dataclass
class Link:
    """One tenant's stubs."""

    channels: list[Any]
    linkage: LinkageServiceStub
    numbers: NumberServiceStub
    provision: ProvisionServiceStub


class TenantLinks:
    def __init__(self, platform: Platform, core_target: str, jlis_target: str) -> None:
        self._platform = platform
        self._core = core_target
        self._jlis = jlis_target
        self._links: dict[int, Link] = {}

    def _creds(self, agency_id: int) -> grpc.ChannelCredentials:
        c = self._platform.credentials(agency_id)
        return grpc.ssl_channel_credentials(c.ca.read_bytes(), c.private_key.read_bytes(), c.certificate.read_bytes())

    def of(self, agency_id: int) -> Link:
        """The tenant's stubs (channels are opened on first use, on the serving event loop)."""
        link = self._links.get(agency_id)
        if link is None:
            creds = self._creds(agency_id)
            core = grpc.aio.secure_channel(self._core, creds, options=_OPTIONS)
            jlis = grpc.aio.secure_channel(self._jlis, creds, options=_OPTIONS)
            link = self._links[agency_id] = Link([core, jlis], LinkageServiceStub(core), NumberServiceStub(jlis),
                                                 ProvisionServiceStub(core))
        return link

    async def permit_key(self, agency_id: int, timeout: float = 10.0) -> bytes:
        """The core's current permit-verification key."""
        try:
            keys = (await self.of(agency_id).linkage.GetPublicKeys(lpb.GetPublicKeysRequest(), timeout=timeout)).keys
        except grpc.RpcError as e:
            raise error_from_rpc(e, "the linkage core") from None
        return bytes(next(k.public_key for k in keys if k.purpose == "permit"))

    async def close(self) -> None:
        for link in self._links.values():
            for ch in link.channels:
                await ch.close()
        self._links.clear()


__all__ = ["Link", "TenantLinks"]
