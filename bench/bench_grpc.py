"""gRPC baseline: a trivial RPC vs real renkei RPCs, same client, same mutual TLS, same run.

    python -m bench.bench_grpc [--seconds 5] [--concurrency 64] [--rounds 5]

Starts ``renkei serve`` on a temporary data directory (loopback, free ports), connects once
as J-LIS over mutual TLS with a grpc.aio channel, and for each RPC keeps ``concurrency`` calls
outstanding for ``seconds``, split into interleaved rounds so that load from elsewhere on the
machine hits every RPC alike; the median round counts. The baseline is
``grpc.health.v1.Health/Check``: served by grpc's own health servicer, it is the cheapest unary
RPC the same server offers (the "echo"). Prints a Markdown table: calls/s, ratio to the
baseline, median and p99 latency (over all rounds).
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


async def run(
    data: Path, target: str, seconds: float, concurrency: int, rounds: int
) -> list[tuple[str, float, list[float]]]:
    async with client.principal_channel("jlis", data_dir=data, target=target, aio=True) as ch:
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
        return [(name, statistics.median(rates[name]), lats[name]) for name, _ in cases]


def main() -> int:
    ap = argparse.ArgumentParser(description="renkei gRPC baseline benchmark")
    ap.add_argument("--seconds", type=float, default=5.0, help="per RPC, over all rounds")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp) / "data")
        try:
            results = asyncio.run(
                run(server.data_dir, server.target, args.seconds, args.concurrency, args.rounds)
            )
        finally:
            server.terminate()
    base = results[0][1]
    print(
        f"`python -m bench.bench_grpc --seconds {args.seconds:g} --concurrency {args.concurrency} "
        f"--rounds {args.rounds}` — {os.cpu_count()} CPUs "
        f"(load average {os.getloadavg()[0]:.1f} at the end), Python {platform.python_version()}, "
        f"grpcio {grpc.__version__}, client and server on one machine over loopback mutual TLS\n"
    )
    print("| RPC | calls/s | vs baseline | p50 ms | p99 ms |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, rate, lat in results:
        q = statistics.quantiles(lat, n=100)
        print(f"| {name} | {rate:,.0f} | {rate / base:.0%} | {q[49] * 1e3:.2f} | {q[98] * 1e3:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
