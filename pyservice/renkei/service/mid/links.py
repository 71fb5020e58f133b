"""The intermediate server's channels to the core and J-LIS, one set per tenant, each with that
agency's own certificate (the core and J-LIS see the agency, never the platform).

The core may be several front-ends on one store (docs/arch/store.md): a tenant then attends
**every** front-end (a provision call reaches the provider on the stream of the front-end that
took the inquiry), and its requests go to the first front-end that accepts a connection — a
call that never reached a front-end is safe to send to the next one; one that reached it and
failed is not retried elsewhere (it may have been recorded): renkei.service.failover."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc

from renkei._proto.renkei.v1 import linkage_service_pb2 as lpb
from renkei._proto.renkei.v1.linkage_service_pb2_grpc import LinkageServiceStub
from renkei._proto.renkei.v1.number_service_pb2_grpc import NumberServiceStub
from renkei._proto.renkei.v1.provision_service_pb2_grpc import ProvisionServiceStub
from renkei.mid.platform import Platform
from renkei.service.failover import FirstAvailable
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
    """One tenant's stubs: requests (``linkage``, any front-end), J-LIS, and one provision stub per
    core front-end (``provision``, by target) for the attendance streams."""

    channels: list[Any]
    linkage: Any
    numbers: NumberServiceStub
    provision: dict[str, ProvisionServiceStub]
    keys: dict[str, LinkageServiceStub]


class TenantLinks:
    def __init__(self, platform: Platform, core_targets: str | list[str], jlis_target: str) -> None:
        self._platform = platform
        self.core_targets = [core_targets] if isinstance(core_targets, str) else list(core_targets)
        if not self.core_targets:
            raise ValueError("at least one core front-end")
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
            cores = {t: grpc.aio.secure_channel(t, creds, options=_OPTIONS) for t in self.core_targets}
            jlis = grpc.aio.secure_channel(self._jlis, creds, options=_OPTIONS)
            stubs = {t: LinkageServiceStub(ch) for t, ch in cores.items()}
            linkage: Any = stubs[self.core_targets[0]] if len(cores) == 1 else FirstAvailable(list(stubs.values()))
            link = self._links[agency_id] = Link([*cores.values(), jlis], linkage, NumberServiceStub(jlis),
                                                 {t: ProvisionServiceStub(ch) for t, ch in cores.items()}, stubs)
        return link

    async def permit_key(self, agency_id: int, target: str | None = None, timeout: float = 10.0) -> bytes:
        """The core's current permit-verification key (of front-end ``target``: the one an
        attendance stream is about to open on)."""
        link = self.of(agency_id)
        stub = link.linkage if target is None else link.keys[target]
        try:
            keys = (await stub.GetPublicKeys(lpb.GetPublicKeysRequest(), timeout=timeout)).keys
        except grpc.RpcError as e:
            raise error_from_rpc(e, "the linkage core") from None
        return bytes(next(k.public_key for k in keys if k.purpose == "permit"))

    async def close(self) -> None:
        for link in self._links.values():
            for ch in link.channels:
                await ch.close()
        self._links.clear()


__all__ = ["Link", "TenantLinks"]
