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
from dataclasses import dataclass, field
from typing import Any

from renkei.errors import ProviderRefusedError, ProviderTimedOutError, ProviderUnavailableError

log = logging.getLogger("renkei.linkage")

#: How long the core waits for a provider's answer unless the requester's deadline is shorter.
PROVIDER_TIMEOUT_S = 10.0
#: Calls waiting at one provider at a time; beyond, requesters get "provider unavailable".
MAX_IN_FLIGHT = 10_000

# Provision outcomes as the ledger records them (the 提供 record's outcome code).
PROVIDED = 0
NO_DATA = 1
PROVIDER_UNAVAILABLE = 2
TIMED_OUT = 3
REFUSED = 4
OUTCOME_NAMES = {PROVIDED: "provided", NO_DATA: "no data", PROVIDER_UNAVAILABLE: "provider unavailable",
                 TIMED_OUT: "timed out", REFUSED: "refused by provider"}


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
                fut.set_exception(ProviderUnavailableError(
                    f"agency {a.agency_id}'s intermediate server left before answering"))
        a.waiting.clear()
        a.outbox.put_nowait(None)

    def attending(self) -> list[int]:
        return sorted(self._attending)

    def certificate(self, agency_id: int) -> bytes:
        a = self._attending.get(agency_id)
        if a is None:
            raise ProviderUnavailableError(f"agency {agency_id}'s intermediate server is not attending")
        return a.certificate_pem

    async def call(self, agency_id: int, make_call: Any, timeout: float) -> tuple[Answer, bytes]:
        """Send a call (``make_call(call_id)`` builds the message) to the provider and wait for its
        answer: (answer, provider certificate). Raises ProviderUnavailableError,
        ProviderTimedOutError or ProviderRefusedError."""
        a = self._attending.get(agency_id)
        if a is None or a.closed:
            raise ProviderUnavailableError(f"agency {agency_id}'s intermediate server is not attending")
        if len(a.waiting) >= MAX_IN_FLIGHT:
            raise ProviderUnavailableError(f"agency {agency_id}'s intermediate server has too many calls waiting")
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


__all__ = ["OUTCOME_NAMES", "Answer", "Attendee", "ProviderDesk"]


@dataclass(frozen=True)
class Provision:
    """What the requester gets back: the relayed answer and the 提供 record."""

    answer: Answer | None
    provider_certificate: bytes
    permit_id: bytes
    record_sequence: int  # the 提供 record (the first one for a batch)
    provided_at: float  # unix seconds (提供日時)
    outcome: int


class Mediator:
    """連携の媒介: after the inquiry path has decided and recorded the 照会 and signed the permit,
    forward the call to the provider, wait for its sealed answer, record the 提供 (outcome,
    提供日時, SHA-256 of the ciphertext) and give the answer back, unopened."""

    def __init__(self, desk: ProviderDesk, record: Any, timeout: float = PROVIDER_TIMEOUT_S) -> None:
        self._desk = desk
        self._record = record  # async (outcome, digest) -> (first sequence, unix seconds)
        self._timeout = timeout

    async def provide(self, provider: int, make_call: Any, permit_id: bytes, deadline: float | None) -> Provision:
        timeout = self._timeout if deadline is None else max(0.0, min(self._timeout, deadline))
        answer: Answer | None = None
        certificate = b""
        failure: Exception | None = None
        try:
            answer, certificate = await self._desk.call(provider, make_call, timeout)
            outcome = answer.outcome
        except ProviderUnavailableError as e:
            outcome, failure = PROVIDER_UNAVAILABLE, e
        except ProviderTimedOutError as e:
            outcome, failure = TIMED_OUT, e
        except ProviderRefusedError as e:
            outcome, failure = REFUSED, e
        digest = answer.digest if answer is not None else b""
        seq, at = await self._record(outcome, digest)
        if failure is not None:
            raise failure  # recorded first: every decided exchange is in the ledger
        return Provision(answer, certificate, permit_id, seq, at, outcome)


__all__ += ["Mediator", "Provision"]
