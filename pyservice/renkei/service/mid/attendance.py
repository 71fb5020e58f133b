"""The provider side: one attendance stream per tenant to the core's ProvisionService.

The core sends a ProvisionCall down the stream for each permitted inquiry of which the tenant
is the provider; the tenant answers from its 副本 (verify the permit offline, seal, sign) on a
worker thread and sends the SealedProvision back. A broken stream is re-opened with backoff;
until it is, the core answers requesters "provider unavailable" (and records it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import grpc

from renkei._proto.renkei.v1 import linkage_service_pb2 as lpb
from renkei._proto.renkei.v1 import provision_service_pb2 as pb
from renkei.errors import RenkeiError
from renkei.mid.platform import Platform
from renkei.permits import from_wire
from renkei.service.mid.links import TenantLinks
from renkei.service.runtime import Offload

log = logging.getLogger("renkei.mid")
BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0)


async def _drain(outbox: asyncio.Queue[pb.ProviderMessage | None]) -> AsyncIterator[pb.ProviderMessage]:
    while True:
        m = await outbox.get()
        if m is None:
            return
        yield m


class Attendance:
    def __init__(self, platform: Platform, links: TenantLinks, offload: Offload) -> None:
        self._platform = platform
        self._links = links
        self._offload = offload
        #: Whether a tenant attends at least one core front-end.
        self.connected: dict[int, bool] = {}
        self._streams: dict[tuple[int, str], bool] = {}
        self._answering: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Attend for every tenant until cancelled (the process's shutdown cancels it)."""
        await asyncio.gather(*(self._attend(agency, target) for agency in self._platform.tenants
                               for target in self._links.core_targets))

    def _mark(self, agency: int, target: str, up: bool) -> None:
        self._streams[(agency, target)] = up
        self.connected[agency] = any(v for (a, _t), v in self._streams.items() if a == agency)

    async def _attend(self, agency: int, target: str) -> None:
        attempt = 0
        certificate = self._platform.credentials(agency).certificate.read_bytes()
        while True:
            try:
                self._platform.set_permit_key(await self._links.permit_key(agency, target))
                outbox: asyncio.Queue[pb.ProviderMessage | None] = asyncio.Queue()
                await outbox.put(pb.ProviderMessage(ready=pb.ProviderReady(certificate_pem=certificate)))

                call = self._links.of(agency).provision[target].Attend(_drain(outbox))
                self._mark(agency, target, True)
                attempt = 0
                log.info("agency %d attends the core (%s) for provision", agency, target)
                async for request in call:
                    # Answered concurrently; kept referenced until done (the loop holds tasks weakly).
                    task = asyncio.create_task(self._answer(agency, request, outbox))
                    self._answering.add(task)
                    task.add_done_callback(self._answering.discard)
            except asyncio.CancelledError:
                raise
            except (grpc.RpcError, RenkeiError, OSError) as e:
                log.warning("agency %d: attendance stream to %s down (%s); retrying", agency, target,
                            type(e).__name__)
            self._mark(agency, target, False)
            await asyncio.sleep(BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)])
            attempt += 1

    async def _answer(self, agency: int, c: pb.ProvisionCall, outbox: asyncio.Queue[pb.ProviderMessage | None]) -> None:
        try:
            token = from_wire(c.permit.body, c.permit.signature, c.permit.key_id)
            header, sealed, signature, _outcome = await self._offload.call(
                lambda: self._platform.answer(
                    agency, permit_token=token, permit_id=bytes(c.permit_id), requester=c.requester_agency_id,
                    affair=c.affair, items=list(c.items), codes=bytes(c.provider_agency_codes),
                    fiscal_year=c.fiscal_year, as_of=c.as_of, recipient_public_key=bytes(c.recipient_public_key)))
            await outbox.put(pb.ProviderMessage(answer=lpb.SealedProvision(
                call_id=c.call_id, header=header, sealed=sealed, signature=signature)))
        except RenkeiError as e:
            log.info("agency %d refused provision call %d: %s", agency, c.call_id, e.reason)
            await outbox.put(pb.ProviderMessage(failure=pb.ProvisionFailure(call_id=c.call_id, reason=e.reason)))
        except Exception:
            log.exception("agency %d: provision call %d failed", agency, c.call_id)
            await outbox.put(pb.ProviderMessage(failure=pb.ProvisionFailure(call_id=c.call_id, reason="INTERNAL")))


__all__ = ["Attendance"]
