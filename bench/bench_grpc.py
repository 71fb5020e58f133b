"""gRPC baseline: a trivial RPC vs real renkei RPCs, same client, same mutual TLS, same run.

    python -m bench.bench_grpc [--seconds 5] [--concurrency 64] [--rounds 5] [--batch-seconds 6]

Starts ``renkei serve`` on a temporary data directory (loopback, free ports), connects once
as J-LIS over mutual TLS with a grpc.aio channel, and for each RPC keeps ``concurrency`` calls
outstanding for ``seconds``, split into interleaved rounds so that load from elsewhere on the
machine hits every RPC alike; the median round counts. The baseline is
``grpc.health.v1.Health/Check``: served by grpc's own health servicer, it is the cheapest unary
RPC the same server offers (the "echo"). Prints a Markdown table: calls/s, ratio to the
baseline, median and p99 latency (over all rounds).

The linkage rows call as the minister (agency 4) of a mayor (agency 1) under 別表第二 項1 with
codes both hold (100,000 people): each Inquire decodes the code, checks holdings and the table,
translates, appends its provision record durably (group commit) and signs a permit. The
BatchInquire table then sends batches of 100,000 codes (2 in flight) for ``--batch-seconds``
and reports inquiries/s end to end: every record durable before each answer.
"""

from __future__ import annotations

import argparse
import asyncio
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

from grpc_server import start_server

from renkei import client
from renkei._proto.renkei.v1 import corporate_number_service_pb2 as cpb
from renkei._proto.renkei.v1 import linkage_service_pb2 as lpb
from renkei._proto.renkei.v1 import number_service_pb2 as npb

Call = Callable[[], Awaitable[object]]


async def measure(call: Call, seconds: float, concurrency: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < stop_at:
            t = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - t)

    for _ in range(200):  # warm-up: connections, caches, code paths
        await call()
    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(latencies) / (time.perf_counter() - start), latencies


PEOPLE = 100_000
AFFAIR, ITEM, MINISTER, MAYOR = "B2.1", "B2.1.2.1", 4, 1


async def acquire(data: Path, target: str, principal: str, numbers: bytes) -> bytes:
    async with client.principal_channel(principal, data_dir=data, target=target, aio=True) as ch:
        r = await client.LinkageServiceStub(ch).AcquireCodes(
            lpb.AcquireCodesRequest(individual_numbers=numbers), timeout=300
        )
        return r.agency_codes


async def batch_rate(linkage: client.LinkageServiceStub, codes: bytes, seconds: float) -> tuple[float, int]:
    """Inquiries/s over BatchInquire calls of len(codes)/16 items, 2 in flight."""
    items = len(codes) // 16
    req = lpb.BatchInquireRequest(agency_codes=codes, affair=AFFAIR, provider_agency_id=MAYOR,
                                  information_items=[ITEM])
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
    data: Path, target: str, seconds: float, concurrency: int, rounds: int, batch_seconds: float
) -> tuple[list[tuple[str, float, list[float]]], tuple[float, int]]:
    async with client.principal_channel("jlis", data_dir=data, target=target, aio=True) as jch:
        people = await client.NumberServiceStub(jch).RegisterTestPopulation(
            npb.RegisterTestPopulationRequest(count=PEOPLE, seed=2), timeout=300
        )
    mine = await acquire(data, target, "agency-4", people.individual_numbers)
    await acquire(data, target, "agency-1", people.individual_numbers)
    async with client.principal_channel("agency-4", data_dir=data, target=target, aio=True) as ach, \
            client.principal_channel("jlis", data_dir=data, target=target, aio=True) as ch:
        linkage = client.LinkageServiceStub(ach)
        inquiries = [
            lpb.InquireRequest(agency_code=mine[i * 16:(i + 1) * 16], affair=AFFAIR, provider_agency_id=MAYOR,
                               information_items=[ITEM])
            for i in range(PEOPLE)
        ]
        nth = iter(range(10**12))

        def inquire() -> Awaitable[object]:
            return linkage.Inquire(inquiries[next(nth) % PEOPLE], timeout=10)

        health = health_pb2_grpc.HealthStub(ch)
        numbers = client.NumberServiceStub(ch)
        corp = client.CorporateNumberServiceStub(ch)
        population = await numbers.RegisterTestPopulation(
            npb.RegisterTestPopulationRequest(count=1000, seed=1), timeout=30
        )
        one = f"{int(np.frombuffer(population.individual_numbers, dtype='<u8')[0]):012d}"
        check = health_pb2.HealthCheckRequest()
        validate = npb.ValidateNumbersRequest(kind=npb.NUMBER_KIND_INDIVIDUAL, numbers=["621498320257"])
        status = npb.GetNumberStatusRequest(individual_number=one)
        lookup = cpb.BatchGetCorporationsRequest(corporate_numbers=["5835678256246"])
        cases: list[tuple[str, Call]] = [
            ("Health/Check (baseline)", lambda: health.Check(check, timeout=10)),
            (
                "NumberService/ValidateNumbers (1 number, no engine thread)",
                lambda: numbers.ValidateNumbers(validate, timeout=10),
            ),
            (
                "NumberService/GetNumberStatus (registry on a worker thread)",
                lambda: numbers.GetNumberStatus(status, timeout=10),
            ),
            (
                "CorporateNumberService/BatchGetCorporations (1 number)",
                lambda: corp.BatchGetCorporations(lookup, timeout=10),
            ),
            ("LinkageService/Inquire (as agency 4; durable record + permit)", inquire),
        ]
        # Rounds interleave the cases so that load from elsewhere on the machine hits them alike;
        # each case reports its median round.
        rates: dict[str, list[float]] = {name: [] for name, _ in cases}
        lats: dict[str, list[float]] = {name: [] for name, _ in cases}
        for _ in range(rounds):
            for name, call in cases:
                rate, lat = await measure(call, seconds / rounds, concurrency)
                rates[name].append(rate)
                lats[name] += lat
        batch = await batch_rate(linkage, mine, batch_seconds)
        return [(name, statistics.median(rates[name]), lats[name]) for name, _ in cases], batch


def main() -> int:
    ap = argparse.ArgumentParser(description="renkei gRPC baseline benchmark")
    ap.add_argument("--seconds", type=float, default=5.0, help="per RPC, over all rounds")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batch-seconds", type=float, default=6.0, help="BatchInquire run time")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp) / "data")
        try:
            results, (batch, batch_items) = asyncio.run(
                run(server.data_dir, server.target, args.seconds, args.concurrency, args.rounds,
                    args.batch_seconds)
            )
        finally:
            server.terminate()
    base = results[0][1]
    print(
        f"`python -m bench.bench_grpc --seconds {args.seconds:g} --concurrency {args.concurrency} "
        f"--rounds {args.rounds} --batch-seconds {args.batch_seconds:g}` — {os.cpu_count()} CPUs "
        f"(load average {os.getloadavg()[0]:.1f} at the end), Python {platform.python_version()}, "
        f"grpcio {grpc.__version__}, client and server on one machine over loopback mutual TLS\n"
    )
    print("| RPC | calls/s | vs baseline | p50 ms | p99 ms |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, rate, lat in results:
        q = statistics.quantiles(lat, n=100)
        print(f"| {name} | {rate:,.0f} | {rate / base:.0%} | {q[49] * 1e3:.2f} | {q[98] * 1e3:.2f} |")
    print()
    print("| BatchInquire (100,000 codes a call, 2 in flight, records durable) | inquiries/s | inquiries |")
    print("| --- | ---: | ---: |")
    print(f"| as agency 4 of agency 1, 別表第二 項1 | {batch:,.0f} | {batch_items:,} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
