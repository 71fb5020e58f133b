"""The commission's PIA review process (``renkei ppc init|serve``): PiaReviewService on mutual TLS.

Its data directory (``renkei-data/ppc``) holds the decision log's key (``keys/ppc-log.key``),
the log (``decisions/``, the ledger engine) and ``pia.sqlite3`` (the PIAs, a projection of the
log; how far the core has applied it). With ``--core`` it delivers every record of the log to the
linkage core's PiaDecisionService with inclusion proofs against a signed checkpoint, as the
``commission`` principal (its client certificate in ``tls/``): at start (before it reports ready),
after every decision and every second while records wait; a core that cannot be reached is
retried with backoff (decisions wait in the log, nothing is lost). An hourly sweep records the
expiry of approvals past their last day.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

import grpc

from renkei._proto.renkei.v1 import pia_decision_service_pb2 as dpb
from renkei._proto.renkei.v1 import pia_review_service_pb2
from renkei._proto.renkei.v1.pia_decision_service_pb2_grpc import PiaDecisionServiceStub
from renkei.errors import UnavailableError
from renkei.pki.ca import ServiceTls
from renkei.ppc.review import PiaReview
from renkei.service.failover import split_targets
from renkei.service.ppc.review import PiaReviewServicer
from renkei.service.runtime import Offload
from renkei.service.server import ServiceConfig, ServiceProcess
from renkei.service.status import error_from_rpc

log = logging.getLogger("renkei.ppc")
TARGET = "core"
BATCH = 500
CALL_TIMEOUT = 30.0
EXPIRY_SWEEP = 3600.0


class CoreDelivery:
    """Hands the decision log to the core (synchronous; run it on a worker thread).

    The core may be several front-ends on one store (docs/arch/store.md); the decisions go to the
    one that last answered, and to the next when it is unavailable — applying is idempotent (the
    core skips what it has), so a batch that may have reached a dying front-end is simply resent."""

    def __init__(self, review: PiaReview, target: str | Sequence[str], tls: ServiceTls) -> None:
        self._review = review
        self._targets = split_targets(target)
        self._creds = grpc.ssl_channel_credentials(tls.ca.read_bytes(), tls.client_key.read_bytes(),
                                                   tls.client_cert.read_bytes())
        self._channels = [grpc.secure_channel(t, self._creds) for t in self._targets]
        self._stubs = [PiaDecisionServiceStub(ch) for ch in self._channels]
        self._current = 0

    @property
    def _target(self) -> str:
        return self._targets[self._current]

    @property
    def _stub(self) -> PiaDecisionServiceStub:
        return self._stubs[self._current]

    def close(self) -> None:
        for ch in self._channels:
            ch.close()

    def deliver(self) -> int:
        """Send what the core has not applied, moving to the next front-end when one is
        unavailable; returns how many it applied now."""
        for i in range(len(self._stubs)):
            try:
                return self._deliver()
            except UnavailableError as e:
                if i + 1 == len(self._stubs):
                    raise
                log.warning("%s; delivering to %s", e, self._targets[(self._current + 1) % len(self._targets)])
                self._current = (self._current + 1) % len(self._targets)
        raise AssertionError("unreachable")

    def pending(self) -> int:
        return max(0, self._review.log.size - 1 - self._review.applied_through(TARGET))

    def _deliver(self) -> int:
        applied = 0
        for attempt in range(2):
            cp, decisions = self._review.decisions(first=self._review.applied_through(TARGET) + 1)
            try:
                for i in range(0, len(decisions), BATCH):
                    batch = decisions[i:i + BATCH]
                    r = self._stub.ApplyPiaDecisions(dpb.ApplyPiaDecisionsRequest(
                        checkpoint=cp.note, decisions=[dpb.DecisionEvidence(sequence=d.seq, entry=d.entry,
                                                                            inclusion_proof=d.proof)
                                                       for d in batch]), timeout=CALL_TIMEOUT)
                    self._review.set_applied_through(TARGET, int(r.next_sequence) - 1)
                    applied += r.applied
                return applied
            except grpc.RpcError as e:
                if e.code() is grpc.StatusCode.FAILED_PRECONDITION and attempt == 0:
                    # The core expects an earlier record (restored from a backup, a new core): start over;
                    # it skips what it has.
                    log.warning("the core expects earlier decisions (%s); delivering from the start", e.details())
                    self._review.set_applied_through(TARGET, -1)
                    continue
                raise error_from_rpc(e, f"the linkage core at {self._target}") from None
        return applied


def build(config: ServiceConfig, review: PiaReview, *, delivery: CoreDelivery | None) -> ServiceProcess:
    process = ServiceProcess(config)
    registry = Offload(1, "ppc")
    wake = asyncio.Event()
    process.add_service(pia_review_service_pb2.DESCRIPTOR.services_by_name["PiaReviewService"],
                        PiaReviewServicer(review, registry, wake=wake.set))

    async def deliver() -> None:
        assert delivery is not None
        pause = 0.5
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), 1.0)
            wake.clear()
            if not delivery.pending():
                continue
            try:
                applied = await registry.call(delivery.deliver)
                if applied:
                    log.info("the core applied %d PIA decisions", applied)
                pause = 0.5
            except UnavailableError as e:
                log.warning("%s; retrying in %.1f s", e, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 30.0)
            except Exception:
                log.exception("delivering PIA decisions to the core failed; retrying in 30 s")
                await asyncio.sleep(30.0)

    async def expire() -> None:
        while True:
            try:
                expired = await registry.call(review.expire_due)
                if expired:
                    log.info("%d PIA approvals expired", len(expired))
                    wake.set()
            except Exception:
                log.exception("the PIA expiry sweep failed; retrying in an hour")
            await asyncio.sleep(EXPIRY_SWEEP)

    if delivery is not None:
        process.add_background(deliver)
        process.add_closer(delivery.close)
    process.add_background(expire)

    def close() -> None:
        registry.shutdown()
        review.close()

    process.add_shutdown_hook(close)
    return process


__all__ = ["CoreDelivery", "build"]
