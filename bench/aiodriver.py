"""The ceiling: a plain grpc.aio driver (no gevent, no locust) over the same prepared population.

Locust spends most of a core on its own bookkeeping and gevent; on a 2-core machine it saturates
before the box does (stack.md §2). This driver keeps ``c`` calls outstanding on one channel
per principal and service (an agency's to the core and to J-LIS; the NTA's public port) for a
fixed time at each of a rising series of concurrencies, one workload at a time, and records
every call's latency (an acquisition's three calls as one). The peak rate whose p99 stays under the bound is the
figure the country comparison uses. Any refused or failed call is counted and fails the run.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

import grpc

from bench.loadprep import INQUIRY_PLANS, Prep, acquisition_error, batch_outcome_error, provision_terms
from renkei import client
from renkei.proto import corporate as cpb
from renkei.proto import linkage as lpb
from renkei.proto import numbers as npb

TIMEOUT = 30.0
#: Workload name → (needs LinkageService, items per call is the batch size).
WORKLOADS: dict[str, tuple[bool, bool]] = {
    "Inquire": (True, False),
    "BatchInquire": (True, True),
    "AcquireCode": (True, False),
    "BatchGetCorporations": (False, False),
}


@dataclass
class Step:
    workload: str
    concurrency: int
    seconds: float
    calls: int
    items: int
    failures: int
    calls_per_s: float
    items_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    first_failure: str = ""


def _percentiles(latencies: list[float]) -> tuple[float, float, float]:
    if len(latencies) < 2:
        v = latencies[0] * 1e3 if latencies else float("nan")
        return v, v, v
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return q[49] * 1e3, q[94] * 1e3, q[98] * 1e3


Call = Callable[[], Awaitable[str | None]]
#: The agency whose acquisitions the AcquireCode workload makes (横浜市長, new residents).
ACQUIRING_AGENCY = 2


def _make_call(workload: str, prep: Prep, channels: dict[str, Any]) -> tuple[Call, int]:
    """An async function doing one call of ``workload`` (None or a failure text) and its items.
    ``channels``: "nta" (public), "core-<agency>" and "jlis-<agency>" (mutual TLS as the agency)."""
    if workload == "BatchGetCorporations":
        corp = client.CorporateNumberServiceStub(channels["nta"])

        async def lookup() -> str | None:
            r = await corp.BatchGetCorporations(
                cpb.BatchGetCorporationsRequest(corporate_numbers=random.sample(prep.corporate_numbers, 3)),
                timeout=TIMEOUT,
            )
            return None if len(r.corporations) == 3 else f"{len(r.corporations)} of 3 corporations found"

        return lookup, 1
    if workload == "Inquire":
        plan = INQUIRY_PLANS["nhi-local-tax"]
        linkage = client.LinkageServiceStub(channels[f"core-{plan.requester}"])
        codes = prep.codes(plan.requester)

        async def inquire() -> str | None:
            await linkage.Inquire(
                lpb.InquireRequest(
                    agency_code=codes[random.randrange(len(codes))].tobytes(), affair=plan.affair,
                    provider_agency_id=plan.provider, information_items=list(plan.items),
                    request_id=uuid.uuid4().hex, terms=provision_terms(),
                ),
                timeout=TIMEOUT,
            )
            return None

        return inquire, 1
    if workload == "BatchInquire":
        plan = INQUIRY_PLANS["local-tax-pension"]
        linkage = client.LinkageServiceStub(channels[f"core-{plan.requester}"])
        codes = prep.codes(plan.requester)
        size = prep.batch_size

        async def batch() -> str | None:
            start = random.randrange(len(codes) - size + 1)
            r = await linkage.BatchInquire(
                lpb.BatchInquireRequest(
                    agency_codes=codes[start : start + size].tobytes(), affair=plan.affair,
                    provider_agency_id=plan.provider, information_items=list(plan.items),
                    request_id=uuid.uuid4().hex, terms=provision_terms(),
                ),
                timeout=TIMEOUT,
            )
            return batch_outcome_error(r)

        return batch, size
    if workload == "AcquireCode":
        numbers = prep.numbers
        core = client.LinkageServiceStub(channels[f"core-{ACQUIRING_AGENCY}"])
        jlis = client.NumberServiceStub(channels[f"jlis-{ACQUIRING_AGENCY}"])
        reserve = lpb.ReserveAcquisitionNumbersRequest(count=1)

        async def acquire() -> str | None:
            # The three calls of one acquisition (client.acquire_codes, asynchronously).
            acq = (await core.ReserveAcquisitionNumbers(reserve, timeout=TIMEOUT)).acquisition_numbers
            number = int(numbers[random.randrange(len(numbers))]).to_bytes(8, "little")
            relayed = await jlis.RelayAcquisitions(
                npb.RelayAcquisitionsRequest(individual_numbers=number, acquisition_numbers=acq), timeout=TIMEOUT
            )
            problem = acquisition_error(relayed.statuses, 1)
            if problem is not None:
                return f"J-LIS: {problem}"
            collected = await core.CollectCodes(lpb.CollectCodesRequest(acquisition_numbers=acq), timeout=TIMEOUT)
            problem = acquisition_error(collected.statuses, 1)
            return None if problem is None else f"core: {problem}"

        return acquire, 1
    raise ValueError(f"unknown workload {workload!r}")


async def _step(call: Call, items: int, workload: str,
                concurrency: int, seconds: float) -> Step:
    latencies: list[float] = []
    failures: list[str] = []
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < stop_at:
            t = time.perf_counter()
            try:
                problem = await call()
            except grpc.RpcError as e:
                problem = f"{e.code().name}: {e.details()}"  # type: ignore[attr-defined]
            latencies.append(time.perf_counter() - t)
            if problem is not None:
                failures.append(problem)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    p50, p95, p99 = _percentiles(latencies)
    return Step(
        workload, concurrency, elapsed, len(latencies), len(latencies) * items, len(failures),
        len(latencies) / elapsed, len(latencies) * items / elapsed, p50, p95, p99,
        failures[0] if failures else "",
    )


async def ramp(prep: Prep, workloads: list[str], levels: list[int], step_seconds: float,
               progress: Callable[[Step], None] | None = None) -> list[Step]:
    """Every workload at every concurrency of ``levels``, ``step_seconds`` each, in order."""
    channels: dict[str, Any] = {"nta": prep.nta_channel(aio=True)}
    if prep.linkage:
        for agency in (1, 2):
            channels[f"core-{agency}"] = prep.core_channel(agency, aio=True)
        channels[f"jlis-{ACQUIRING_AGENCY}"] = prep.jlis_channel(ACQUIRING_AGENCY, aio=True)
    steps: list[Step] = []
    try:
        for workload in workloads:
            call, items = _make_call(workload, prep, channels)
            for _ in range(50):  # warm-up: connection, handshake, code paths
                await call()
            for level in levels:
                s = await _step(call, items, workload, level, step_seconds)
                steps.append(s)
                if progress is not None:
                    progress(s)
    finally:
        for ch in channels.values():
            await ch.close()
    return steps


def peak_under(steps: list[Step], workload: str, p99_bound_ms: float) -> Step | None:
    """The step of ``workload`` with the most items/s whose p99 is under the bound, if any."""
    ok = [s for s in steps if s.workload == workload and s.p99_ms < p99_bound_ms and s.failures == 0]
    return max(ok, key=lambda s: s.items_per_s) if ok else None


def steps_as_dicts(steps: list[Step]) -> list[dict[str, Any]]:
    return [asdict(s) for s in steps]
