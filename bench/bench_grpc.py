"""gRPC baseline: a trivial RPC vs real renkei RPCs, same client, same TLS, same run.

    python -m bench.bench_grpc [--seconds 5] [--concurrency 64] [--rounds 5] [--batch-seconds 6]

Starts a box (``renkei up --demo``: the linkage core, J-LIS and the NTA, each its own process)
on a temporary directory (loopback, free ports) and drives it from one grpc.aio client, one
channel per service: to the core as agency 4 and to J-LIS as J-LIS's operator over mutual TLS,
to the NTA's public port over server TLS. For each RPC it keeps ``concurrency`` calls
outstanding for ``seconds``, split into interleaved rounds so that load from elsewhere on the
machine hits every RPC alike; the median round counts. Each service has its baseline,
``grpc.health.v1.Health/Check`` on the same channel: served by grpc's own health servicer, it is
the cheapest unary RPC that process offers (the "echo"), and every row's ratio is to the
baseline of its own service. Prints a Markdown table: calls/s, ratio to the baseline, median
and p99 latency (over all rounds).

The linkage rows call as the minister (agency 4) of a mayor (agency 1) under 別表第二 項1 with
codes both hold (100,000 people registered by J-LIS, codes acquired by each agency through
``client.acquire_codes``): each Inquire decodes the code, checks holdings and the table,
translates, appends its 照会 record durably (group commit), signs a permit, forwards the inquiry to
the mayor's attending intermediate server (mid-municipal), relays its sealed answer (these persons
have no 副本 there: 該当なし, sealed all the same) and records the 提供. The BatchInquire table then
sends batches of 10,000 codes (the most one call may carry; 2 in flight) for ``--batch-seconds``
and reports inquiries/s end to end: every record durable before each answer.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from grpc_server import start_box

from bench.loadprep import provision_terms
from renkei import client
from renkei.proto import corporate as cpb
from renkei.proto import linkage as lpb
from renkei.proto import numbers as npb

Call = Callable[[], Awaitable[object]]


async def measure(call: Call, seconds: float, concurrency: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    stop_at = 0.0

    async def worker() -> None:
        while time.perf_counter() < stop_at:
            t = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - t)

    for _ in range(200):  # warm-up: connections, caches, code paths
        await call()
    start = time.perf_counter()
    stop_at = start + seconds  # after the warm-up, which may take longer than a round
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(latencies) / (time.perf_counter() - start), latencies


PEOPLE = 100_000
#: Codes per BatchInquire call: the most the core accepts in one (MAX_BATCH_INQUIRE_ITEMS).
BATCH = 10_000
#: Calls in flight per connection to a public port (below its default streams_per_connection, 16).
PUBLIC_STREAMS = 8
AFFAIR, ITEM, MINISTER, MAYOR = "B2.1", "B2.1.2.1", 4, 1


def prepare(box: client.Box) -> bytes:
    """J-LIS registers PEOPLE residents; the minister and the mayor acquire their codes (reserve
    at the core, relay through J-LIS, collect). Returns the minister's codes (16 bytes each)."""
    with box.jlis("jlis") as ch:
        people = client.NumberServiceStub(ch).RegisterTestPopulation(
            npb.RegisterTestPopulationRequest(count=PEOPLE, seed=2), timeout=300
        )
    numbers = np.frombuffer(people.individual_numbers, dtype="<u8")
    held = {}
    for agency in (MINISTER, MAYOR):
        with box.core(f"agency-{agency}") as core, box.jlis(f"agency-{agency}") as jlis:
            codes, statuses = client.acquire_codes(client.LinkageServiceStub(core), client.NumberServiceStub(jlis),
                                                   numbers, timeout=300)
        if np.count_nonzero(statuses):
            raise RuntimeError(f"agency {agency}: {np.count_nonzero(statuses)} of {len(numbers)} codes not issued")
        held[agency] = codes
    return held[MINISTER]


async def batch_rate(linkage: client.LinkageServiceStub, codes: bytes, seconds: float) -> tuple[float, int]:
    """Inquiries/s over BatchInquire calls of BATCH items, 2 in flight."""
    items = BATCH
    req = lpb.BatchInquireRequest(agency_codes=codes[:BATCH * 16], affair=AFFAIR, provider_agency_id=MAYOR,
                                  information_items=[ITEM], terms=provision_terms())
    r = await linkage.BatchInquire(req, timeout=120)  # warm-up
    assert r.outcomes == bytes(items), "every batch item should be permitted"
    done = 0
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < stop_at:
            await linkage.BatchInquire(req, timeout=120)
            done += items

    start = time.perf_counter()
    await asyncio.gather(worker(), worker())
    return done / (time.perf_counter() - start), done


async def run(
    box: client.Box, mine: bytes, seconds: float, concurrency: int, rounds: int, batch_seconds: float
) -> tuple[list[tuple[str, str, float, list[float]]], tuple[float, int]]:
    """(row, its service's baseline row, median calls/s, latencies) per RPC, and the batch rate."""
    async with box.core(f"agency-{MINISTER}", aio=True) as core_ch, box.jlis("jlis", aio=True) as jlis_ch, \
            contextlib.AsyncExitStack() as stack:
        # The public port lets one connection open few streams (limits.md: streams_per_connection),
        # as public callers are many: one connection per PUBLIC_STREAMS calls in flight, as they would.
        nta_chs = [await stack.enter_async_context(box.nta(aio=True))
                   for _ in range(-(-concurrency // PUBLIC_STREAMS))]
        linkage = client.LinkageServiceStub(core_ch)
        inquiries = [
            lpb.InquireRequest(agency_code=mine[i * 16:(i + 1) * 16], affair=AFFAIR, provider_agency_id=MAYOR,
                               information_items=[ITEM], terms=provision_terms())
            for i in range(PEOPLE)
        ]
        nth = iter(range(10**12))

        def inquire() -> Awaitable[object]:
            return linkage.Inquire(inquiries[next(nth) % PEOPLE], timeout=10)

        health = {name: health_pb2_grpc.HealthStub(ch) for name, ch in
                  (("core", core_ch), ("jlis", jlis_ch))}
        nta_health = itertools.cycle([health_pb2_grpc.HealthStub(ch) for ch in nta_chs])
        numbers = client.NumberServiceStub(jlis_ch)
        corps = itertools.cycle([client.CorporateNumberServiceStub(ch) for ch in nta_chs])
        population = await numbers.RegisterTestPopulation(
            npb.RegisterTestPopulationRequest(count=1000, seed=1), timeout=30
        )
        one = f"{int(np.frombuffer(population.individual_numbers, dtype='<u8')[0]):012d}"
        check = health_pb2.HealthCheckRequest()
        validate = npb.ValidateNumbersRequest(kind=npb.NUMBER_KIND_INDIVIDUAL, numbers=["621498320257"])
        status = npb.GetNumberStatusRequest(individual_number=one)
        lookup = cpb.BatchGetCorporationsRequest(corporate_numbers=["5835678256246"])
        base = {"core": "Health/Check at the core (baseline, mutual TLS)",
                "jlis": "Health/Check at J-LIS (baseline, mutual TLS)",
                "nta": "Health/Check at the NTA (baseline, public port)"}

        def health_check(service: str) -> Call:
            if service == "nta":
                return lambda: next(nta_health).Check(check, timeout=10)
            return lambda: health[service].Check(check, timeout=10)

        cases: list[tuple[str, str, Call]] = [
            (base["core"], "core", health_check("core")),
            ("LinkageService/Inquire (as agency 4; 照会 record, permit, relay to the provider's mid, 提供 record)",
             "core", inquire),
            (base["jlis"], "jlis", health_check("jlis")),
            (
                "NumberService/ValidateNumbers (1 number, no engine thread)", "jlis",
                lambda: numbers.ValidateNumbers(validate, timeout=10),
            ),
            (
                "NumberService/GetNumberStatus (registry on a worker thread)", "jlis",
                lambda: numbers.GetNumberStatus(status, timeout=10),
            ),
            (base["nta"], "nta", health_check("nta")),
            (
                "CorporateNumberService/BatchGetCorporations (1 number)", "nta",
                lambda: next(corps).BatchGetCorporations(lookup, timeout=10),
            ),
        ]
        # Rounds interleave the cases so that load from elsewhere on the machine hits them alike;
        # each case reports its median round.
        rates: dict[str, list[float]] = {name: [] for name, _, _ in cases}
        lats: dict[str, list[float]] = {name: [] for name, _, _ in cases}
        for _ in range(rounds):
            for name, _, call in cases:
                print(f"  {name} …", file=sys.stderr, flush=True)
                rate, lat = await measure(call, seconds / rounds, concurrency)
                print(f"    {rate:,.0f} calls/s", file=sys.stderr, flush=True)
                rates[name].append(rate)
                lats[name] += lat
        batch = await batch_rate(linkage, mine, batch_seconds)
        return [(name, base[service], statistics.median(rates[name]), lats[name]) for name, service, _ in cases], batch


def main() -> int:
    ap = argparse.ArgumentParser(description="renkei gRPC baseline benchmark")
    ap.add_argument("--seconds", type=float, default=5.0, help="per RPC, over all rounds")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batch-seconds", type=float, default=6.0, help="BatchInquire run time")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        # Every client here is one loopback address; the public port's per-address limit is meant
        # for the many callers of the real thing, so the bench lifts it (docs/arch/limits.md).
        limits = Path(tmp) / "limits.toml"
        limits.write_text("[public]\ncalls_per_caller = 1024\nreads_per_caller = 512\n")
        running = start_box(Path(tmp) / "box", "--limits", str(limits))
        try:
            mine = prepare(running.box)
            results, (batch, batch_items) = asyncio.run(
                run(running.box, mine, args.seconds, args.concurrency, args.rounds, args.batch_seconds)
            )
        finally:
            code, output = running.terminate()
            if code != 0:
                print(f"renkei up exited with status {code}:\n{output[-3000:]}", file=sys.stderr)
    rate_of = {name: rate for name, _, rate, _ in results}
    print(
        f"`python -m bench.bench_grpc --seconds {args.seconds:g} --concurrency {args.concurrency} "
        f"--rounds {args.rounds} --batch-seconds {args.batch_seconds:g}` — {os.cpu_count()} CPUs "
        f"(load average {os.getloadavg()[0]:.1f} at the end), Python {platform.python_version()}, "
        f"grpcio {grpc.__version__}, client and the box (core, J-LIS, NTA: one process each) on one machine "
        f"over loopback TLS (mutual; the NTA's public port server-only)\n"
    )
    print("| RPC | calls/s | vs its service's baseline | p50 ms | p99 ms |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, baseline, rate, lat in results:
        q = statistics.quantiles(lat, n=100)
        print(f"| {name} | {rate:,.0f} | {rate / rate_of[baseline]:.0%} | {q[49] * 1e3:.2f} | {q[98] * 1e3:.2f} |")
    print()
    print("| BatchInquire (10,000 codes a call, 2 in flight, 照会 and 提供 records durable) "
          "| inquiries/s | inquiries |")
    print("| --- | ---: | ---: |")
    print(f"| as agency 4 of agency 1, 別表第二 項1 | {batch:,.0f} | {batch_items:,} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
