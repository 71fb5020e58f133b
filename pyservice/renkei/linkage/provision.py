"""連携の媒介: the core forwards permitted inquiries to the provider's intermediate server and
relays its sealed answer.

Providers attend (:class:`ProviderDesk.attend`): each provider agency keeps one stream open to
the core, so it needs no inbound port. The core sends a call down that stream and waits, with a
deadline, for the answer that carries the same call id. The answer is sealed to the requester's
key: the core relays it unopened and keeps only its SHA-256 in the ledger. Everything here runs
on the core's event loop (asyncio); nothing blocks it.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from renkei.errors import ProviderOfflineError, ProviderRefusedError, ProviderTimedOutError
from renkei.ledger import (
    NO_DATA,
    PROVIDED,
    PROVIDER_UNAVAILABLE,
    PROVISION_TOKENS,
    REFUSED,
    TIMED_OUT,
    Ledger,
    provision_records,
)
from renkei.service.runtime import Coalescer, Offload

log = logging.getLogger("renkei.linkage")

#: How long the core waits for a provider's answer unless the requester's deadline is shorter.
PROVIDER_TIMEOUT_S = 10.0
#: Calls waiting at one provider at a time; beyond, requesters get "provider unavailable".
MAX_IN_FLIGHT = 10_000

#: Seconds kept back from the requester's deadline for recording the 提供 and answering.
RECORD_MARGIN_S = 0.25
# Provision outcomes as the ledger records them (the 提供 record's outcome code).
OUTCOME_NAMES = PROVISION_TOKENS


@dataclass(frozen=True)
class Answer:
    """A provider's answer as relayed: header, sealed bytes, signature, and what the core records."""

    header: bytes
    sealed: bytes
    signature: bytes
    outcome: int  # PROVIDED or NO_DATA, from the header

    @property
    def digest(self) -> bytes:
        return hashlib.sha256(self.sealed).digest()


@dataclass
class Attendee:
    """One provider's open stream: calls to send, calls in flight."""

    agency_id: int
    certificate_pem: bytes
    outbox: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    waiting: dict[int, asyncio.Future[Answer]] = field(default_factory=dict)
    closed: bool = False


class ProviderDesk:
    """Which provider agencies attend, and the provision calls in flight to them."""

    def __init__(self) -> None:
        self._attending: dict[int, Attendee] = {}
        self._ids = itertools.count(1)

    def attend(self, agency_id: int, certificate_pem: bytes) -> Attendee:
        """A provider's stream opens; a previous stream of the same agency is closed (its calls
        fail over as unavailable)."""
        old = self._attending.get(agency_id)
        if old is not None:
            self.leave(old)
        a = Attendee(agency_id, certificate_pem)
        self._attending[agency_id] = a
        log.info("provider agency %d attends", agency_id)
        return a

    def leave(self, a: Attendee) -> None:
        a.closed = True
        if self._attending.get(a.agency_id) is a:
            del self._attending[a.agency_id]
        for fut in a.waiting.values():
            if not fut.done():
                fut.set_exception(ProviderOfflineError(
                    f"agency {a.agency_id}'s intermediate server left before answering"))
        a.waiting.clear()
        a.outbox.put_nowait(None)

    def attending(self) -> list[int]:
        return sorted(self._attending)

    def certificate(self, agency_id: int) -> bytes:
        a = self._attending.get(agency_id)
        if a is None:
            raise ProviderOfflineError(f"agency {agency_id}'s intermediate server is not attending")
        return a.certificate_pem

    async def call(self, agency_id: int, make_call: Any, timeout: float) -> tuple[Answer, bytes]:
        """Send a call (``make_call(call_id)`` builds the message) to the provider and wait for its
        answer: (answer, provider certificate). Raises ProviderOfflineError,
        ProviderTimedOutError or ProviderRefusedError."""
        a = self._attending.get(agency_id)
        if a is None or a.closed:
            raise ProviderOfflineError(f"agency {agency_id}'s intermediate server is not attending")
        if len(a.waiting) >= MAX_IN_FLIGHT:
            raise ProviderOfflineError(f"agency {agency_id}'s intermediate server has too many calls waiting")
        call_id = next(self._ids)
        fut: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        a.waiting[call_id] = fut
        await a.outbox.put(make_call(call_id))
        try:
            answer = await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise ProviderTimedOutError(
                f"agency {agency_id}'s intermediate server did not answer within {timeout:.1f} s") from None
        finally:
            a.waiting.pop(call_id, None)
        return answer, a.certificate_pem

    def answered(self, a: Attendee, call_id: int, answer: Answer | None, refusal: str | None = None) -> None:
        """A provider's message for ``call_id`` (a late or unknown one is dropped)."""
        fut = a.waiting.get(call_id)
        if fut is None or fut.done():
            return
        if answer is not None:
            fut.set_result(answer)
        else:
            fut.set_exception(ProviderRefusedError(
                f"agency {a.agency_id}'s intermediate server refused: {(refusal or 'no reason')[:64]}"))


__all__ = ["NO_DATA", "OUTCOME_NAMES", "PROVIDED", "PROVIDER_UNAVAILABLE", "REFUSED", "TIMED_OUT", "Answer",
           "Attendee", "ProviderDesk"]


@dataclass(frozen=True)
class Provision:
    """What the requester gets back: the relayed answer and the 提供 record(s)."""

    answer: Answer
    provider_certificate: bytes
    permit_id: bytes
    record_sequence: int  # the 提供 record (the first one for a batch)
    provided_at: datetime  # 提供日時
    outcome: int


@dataclass(frozen=True)
class Exchange:
    """A decided, recorded 照会 to forward: the call for the provider (without its call id),
    the packed 照会 records (one per person) and the first one's sequence number."""

    provider: int
    call: Any  # a ProvisionCall message; the mediator sets call_id
    inquiries: bytes
    first_sequence: int


def _count(packed: bytes) -> int:
    n = at = 0
    while at < len(packed):
        at += 2 + int.from_bytes(packed[at:at + 2], "big")
        n += 1
    return n


class Mediator:
    """連携の媒介: after the inquiry path has decided and recorded the 照会 and signed the permit,
    forward the call to the provider, wait for its sealed answer, record the 提供 (outcome,
    提供日時, SHA-256 of the ciphertext) and give the answer back, unopened.

    The 提供 records of concurrent exchanges share one durable commit (a :class:`Coalescer` on
    the engine threads). ``tamper`` is a fault seam for tests (a core that alters what it
    relays): requesters must detect it.
    """

    def __init__(self, desk: ProviderDesk, ledger: Ledger, offload: Offload, timeout: float = PROVIDER_TIMEOUT_S,
                 tamper: Callable[[bytes], bytes] | None = None) -> None:
        self._desk = desk
        self._ledger = ledger
        self._timeout = timeout
        self._tamper = tamper
        self._records = Coalescer(self._record_many, offload)

    def _record_many(self, items: list[tuple[bytes, int, int, str, bytes, datetime]]) -> list[int | Exception]:
        """Append the 提供 records of many exchanges in one commit; per exchange its first sequence."""
        parts: list[bytes] = []
        counts: list[int] = []
        out: list[int | Exception] = []
        for inquiries, first, outcome, detail, digest, at in items:
            packed = provision_records(inquiries, first, outcome, detail[:1024], digest, at)
            parts.append(packed)
            counts.append(_count(packed))
        appended = self._ledger.append_batch(b"".join(parts))
        seq = appended.first_seq
        for n in counts:
            out.append(seq)
            seq += n
        return out

    async def provide(self, exchange: Exchange, deadline: float | None) -> Provision:
        """Forward, wait, record, answer. ``deadline``: seconds the requester still waits (the
        provider gets that less a margin for recording, at most the mediator's timeout).
        Raises ProviderOfflineError, ProviderTimedOutError or ProviderRefusedError — after
        the failure is recorded."""
        timeout = self._timeout if deadline is None else max(0.0, min(self._timeout, deadline - RECORD_MARGIN_S))
        answer: Answer | None = None
        certificate = b""
        failure: Exception | None = None
        outcome, detail = PROVIDED, ""

        def make_call(call_id: int) -> Any:
            exchange.call.call_id = call_id
            return exchange.call

        try:
            answer, certificate = await self._desk.call(exchange.provider, make_call, timeout)
            outcome = answer.outcome
        except ProviderOfflineError as e:
            outcome, failure, detail = PROVIDER_UNAVAILABLE, e, str(e)
        except ProviderTimedOutError as e:
            outcome, failure, detail = TIMED_OUT, e, str(e)
        except ProviderRefusedError as e:
            outcome, failure, detail = REFUSED, e, str(e)
        digest = answer.digest if answer is not None else bytes(32)
        at = datetime.now(UTC)
        seq = await self._records.submit((exchange.inquiries, exchange.first_sequence, outcome, detail, digest, at))
        if failure is not None:
            raise failure  # recorded first: every decided exchange is in the ledger
        assert answer is not None
        if self._tamper is not None:
            answer = Answer(answer.header, self._tamper(answer.sealed), answer.signature, answer.outcome)
        return Provision(answer, certificate, bytes(exchange.call.permit_id), seq, at, outcome)


__all__ += ["Exchange", "Mediator", "Provision"]
