"""NumberService: J-LIS's numbers, its step of code acquisition, and card-key registration.

J-LIS talks to the linkage core only through :class:`~renkei.service.jlis.core_link.CoreLink`
(PersonLinkService, as the ``jlis`` principal) and hands it link ids, never a My Number.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import grpc
import numpy as np
import numpy.typing as npt

from renkei._core import numbers as _n
from renkei._proto.renkei.v1 import number_service_pb2 as pb
from renkei.errors import InvalidArgumentError, InvalidNumberError, UnimplementedError
from renkei.jlis.authority import NumberAuthority
from renkei.jlis.cards import CardOffice
from renkei.jlis.notices import NoticeDesk
from renkei.jlis.relay import ACQUISITION_NUMBER_LEN, resolve_pairs
from renkei.numbers import NumberKind
from renkei.service.convert import BatchTooLargeError, unpack_u64
from renkei.service.jlis.core_link import CoreLink
from renkei.service.limits import KIB, MIB
from renkei.service.metrics import Metrics
from renkei.service.runtime import ANY_ROLE, Offload, rpc

MAX_BATCH_ASSIGN = 100_000
MAX_RELAY = 100_000
MAX_VALIDATE = 10_000
#: Up to this many numbers are validated on the event loop (about a microsecond each).
INLINE_VALIDATE = 64
MAX_TEST_POPULATION = 100_000

_KINDS: dict[int, NumberKind] = {
    pb.NUMBER_KIND_INDIVIDUAL: "individual",
    pb.NUMBER_KIND_CORPORATE: "corporate",
    pb.NUMBER_KIND_RESIDENT_CODE: "resident_code",
}


def synthetic_residents(count: int, seed: int) -> npt.NDArray[np.uint64]:
    """``count`` distinct pseudo-random valid 住民票コード drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    bodies = rng.choice(10**10, size=count, replace=False).astype(np.uint64)
    candidates = (bodies[:, None] * np.uint64(10) + np.arange(10, dtype=np.uint64)).ravel()
    valid = _n.validate_batch("resident_code", candidates).reshape(count, 10)
    out: npt.NDArray[np.uint64] = bodies * np.uint64(10) + np.argmax(valid, axis=1).astype(np.uint64)
    return out


class NumberServicer:
    """J-LIS over gRPC; all calls but ValidateNumbers need the ``jlis`` role."""

    def __init__(self, authority: NumberAuthority, core: CoreLink, offload: Offload, *, demo: bool,
                 metrics: Metrics | None = None, serial: Offload | None = None, notices: NoticeDesk | None = None,
                 cards: CardOffice | None = None, wake: Callable[[], None] | None = None) -> None:
        self._jlis = authority
        self._core = core
        self._offload = offload
        self._demo = demo
        self._relayed = None if metrics is None else metrics.counter(
            "renkei_jlis_relayed_total",
            "My Numbers relayed to the core for code acquisition (J-LIS's step), by outcome.", ("status",))
        self._own_serial = serial is None
        self._serial = serial or Offload(1, "jlis")  # one SQLite connection: one thread
        self._notices = notices
        self._cards = cards
        self._wake = wake or (lambda: None)

    def close(self) -> None:
        if self._own_serial:
            self._serial.shutdown()

    @rpc("jlis")
    async def AssignNumber(
        self, request: pb.AssignNumberRequest, context: grpc.aio.ServicerContext
    ) -> pb.AssignNumberResponse:
        number = await self._serial.call(self._jlis.assign, request.resident_code)
        self._wake()
        return pb.AssignNumberResponse(individual_number=number)

    @rpc("jlis", max_request=1 * MIB)  # 100,000 resident codes of 8 bytes
    async def BatchAssignNumbers(
        self, request: pb.BatchAssignNumbersRequest, context: grpc.aio.ServicerContext
    ) -> pb.BatchAssignNumbersResponse:
        codes = unpack_u64(request.resident_codes, "resident_codes", MAX_BATCH_ASSIGN)
        out = await self._serial.call(self._jlis.assign_batch, codes)
        self._wake()
        return pb.BatchAssignNumbersResponse(individual_numbers=out.astype("<u8").tobytes())

    @rpc("jlis")
    async def ChangeNumber(
        self, request: pb.ChangeNumberRequest, context: grpc.aio.ServicerContext
    ) -> pb.ChangeNumberResponse:
        when = None
        if request.change_date:
            try:
                when = date.fromisoformat(request.change_date).isoformat()
            except ValueError:
                raise InvalidArgumentError("change_date must be a date YYYY-MM-DD") from None
        number = await self._serial.call(self._jlis.change, request.individual_number, when)
        if self._cards is not None:
            cards = self._cards
            link = await self._serial.call(lambda: self._jlis.lookup(number).link_id)
            await self._serial.call(cards.number_changed, link)
        self._wake()
        return pb.ChangeNumberResponse(individual_number=number)

    @rpc("jlis")
    async def GetNumberStatus(
        self, request: pb.GetNumberStatusRequest, context: grpc.aio.ServicerContext
    ) -> pb.NumberStatus:
        record = await self._serial.call(self._jlis.lookup, request.individual_number)
        state = pb.NumberStatus.STATE_CURRENT if record.state == "current" else pb.NumberStatus.STATE_FORMER
        return pb.NumberStatus(individual_number=record.number, state=state)

    @rpc(ANY_ROLE, max_request=256 * KIB)  # 10,000 numbers as text
    async def ValidateNumbers(
        self, request: pb.ValidateNumbersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ValidateNumbersResponse:
        kind = _KINDS.get(request.kind)
        if kind is None:
            raise InvalidArgumentError(
                "kind is required (NUMBER_KIND_INDIVIDUAL, _CORPORATE or _RESIDENT_CODE)"
            )
        if len(request.numbers) > MAX_VALIDATE:
            raise BatchTooLargeError(f"{len(request.numbers)} numbers, at most {MAX_VALIDATE} a call")

        def validate() -> pb.ValidateNumbersResponse:
            results = []
            for text in request.numbers:
                try:
                    _n.parse_valid(kind, text)
                    results.append(pb.NumberValidity(valid=True))
                except InvalidNumberError as e:
                    results.append(pb.NumberValidity(valid=False, problem=e.problem or "invalid"))
            return pb.ValidateNumbersResponse(results=results)

        # A few numbers are microseconds: inline. 10,000 are milliseconds: never on the event loop.
        if len(request.numbers) <= INLINE_VALIDATE:
            return validate()
        return await self._offload.call(validate)

    @rpc("jlis")
    async def RegisterTestPopulation(
        self, request: pb.RegisterTestPopulationRequest, context: grpc.aio.ServicerContext
    ) -> pb.RegisterTestPopulationResponse:
        if not self._demo:
            raise UnimplementedError("RegisterTestPopulation is test-only: start J-LIS with --demo")
        if request.count == 0:
            raise InvalidArgumentError("count must be at least 1")
        if request.count > MAX_TEST_POPULATION:
            raise BatchTooLargeError(f"count {request.count}: at most {MAX_TEST_POPULATION} a call")

        def register() -> np.ndarray:
            # A synthetic population has no 4情報 to address a notice to: none is queued.
            return self._jlis.assign_batch(synthetic_residents(request.count, request.seed), notices=False)

        out = await self._serial.call(register)
        return pb.RegisterTestPopulationResponse(individual_numbers=out.astype("<u8").tobytes())

    @rpc("jlis")
    async def RegisterCardKey(
        self, request: pb.RegisterCardKeyRequest, context: grpc.aio.ServicerContext
    ) -> pb.RegisterCardKeyResponse:
        key_id, link = await self._serial.call(
            self._jlis.register_card_key, request.individual_number, request.public_key
        )
        await self._core.register_card_key(bytes(request.public_key), link)
        return pb.RegisterCardKeyResponse(card_key_id=key_id)

    @rpc("agency", max_request=4 * MIB)  # 100,000 (number, acquisition number) pairs
    async def RelayAcquisitions(
        self, request: pb.RelayAcquisitionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.RelayAcquisitionsResponse:
        numbers = unpack_u64(request.individual_numbers, "individual_numbers", MAX_RELAY)
        if len(request.acquisition_numbers) != ACQUISITION_NUMBER_LEN * len(numbers):
            raise InvalidArgumentError(
                f"acquisition_numbers: one {ACQUISITION_NUMBER_LEN}-byte acquisition number per individual number"
            )
        forward = await self._serial.call(resolve_pairs, self._jlis, numbers, request.acquisition_numbers)
        if forward.index.size:
            issued = await self._core.issue_codes(forward.acquisition_numbers, forward.link_ids)
            forward.statuses[forward.index] = np.frombuffer(issued, dtype=np.uint8)
        if self._relayed is not None:
            counts = np.bincount(forward.statuses.astype(np.uint8), minlength=1)
            for code in np.flatnonzero(counts):
                self._relayed.inc(RELAY_STATUSES.get(int(code), str(int(code))), n=int(counts[code]))
        return pb.RelayAcquisitionsResponse(statuses=forward.statuses.tobytes())

    @rpc("jlis")
    async def ListNotices(self, request: pb.ListNoticesRequest,
                          context: grpc.aio.ServicerContext) -> pb.ListNoticesResponse:
        if self._notices is None:
            raise UnimplementedError("this J-LIS keeps no notice desk")
        if request.state not in ("", "pending", "rendered"):
            raise InvalidArgumentError("state is 'pending', 'rendered' or empty")
        limit = request.limit or 100
        if limit > 1000:
            raise InvalidArgumentError("limit is at most 1,000")
        desk = self._notices

        def read() -> pb.ListNoticesResponse:
            counts = desk.counts()
            return pb.ListNoticesResponse(
                notices=[pb.Notice(notice_id=n.notice_id, event=n.event, created_at=n.created_at, state=n.state,
                                   rendered_at=n.rendered_at or "", file=n.file or "")
                         for n in desk.notices(state=request.state or None, limit=limit)],
                pending=counts["pending"], rendered=counts["rendered"], waiting_for_facts=counts["waiting_for_facts"])

        return await self._serial.call(read)


#: Status bytes of RelayAcquisitionsResponse (the proto's AcquisitionStatus) as metric labels.
RELAY_STATUSES = {0: "issued", 1: "refused", 2: "no_such_number", 3: "pending"}


__all__ = ["MAX_BATCH_ASSIGN", "MAX_TEST_POPULATION", "MAX_VALIDATE", "NumberServicer"]
