"""Durable BatchInquire through the core's gRPC with the ledger on PostgreSQL (primary +
synchronous standby, tests/pg_cluster.py) against the embedded file ledger, in the same run.

    python -m bench.bench_pg_inquire [--people 20000] [--seconds 8] [--in-flight 2]

Starts a box (``renkei up --demo``) twice on temporary directories: first with the core on the
embedded driver, then bound to a fresh database of a PostgreSQL 15 primary whose commits wait
for a synchronous standby (both on this machine). Each time J-LIS registers ``--people``
residents, the minister (agency 4) and the mayor (agency 1) acquire their codes, and the
minister sends BatchInquire calls of 10,000 codes (the most one call carries) under 別表第二
項1 for ``--seconds``, ``--in-flight`` calls at a time: each call decides every item, records
the 照会 records durably (embedded: one write-ahead frame + fdatasync; PostgreSQL: the
sequencing transaction acknowledged by the standby, then integration under a signed
checkpoint), signs the batch permit, relays it to the mayor's intermediate server and records
the 提供. Prints the Markdown rows for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from grpc_server import start_box

from bench.loadprep import provision_terms
from renkei import client
from renkei.proto import linkage as lpb
from renkei.proto import numbers as npb
from tests.pg_cluster import PgCluster

BATCH = 10_000
AFFAIR, ITEM, MINISTER, MAYOR = "B2.1", "B2.1.2.1", 4, 1


def prepare(box: client.Box, people: int) -> tuple[bytes, float]:
    """J-LIS registers the residents; both agencies acquire their codes (reserve at the core,
    relay through J-LIS, collect at the core; on PostgreSQL the codes wait in the store). The
    minister's codes and the acquisition rate (codes/s over both agencies)."""
    with box.jlis("jlis") as ch:
        pop = client.NumberServiceStub(ch).RegisterTestPopulation(
            npb.RegisterTestPopulationRequest(count=people, seed=2), timeout=300)
    numbers = np.frombuffer(pop.individual_numbers, dtype="<u8")
    held = {}
    started = time.perf_counter()
    for agency in (MINISTER, MAYOR):
        with box.core(f"agency-{agency}") as core, box.jlis(f"agency-{agency}") as jlis:
            codes, statuses = client.acquire_codes(client.LinkageServiceStub(core), client.NumberServiceStub(jlis),
                                                   numbers, timeout=300)
        if np.count_nonzero(statuses):
            raise RuntimeError(f"agency {agency}: {np.count_nonzero(statuses)} codes not issued")
        held[agency] = codes
    return bytes(held[MINISTER]), 2 * len(numbers) / (time.perf_counter() - started)


async def batch_rate(box: client.Box, codes: bytes, seconds: float, in_flight: int) -> tuple[float, int, list[float]]:
    """(inquiries/s, inquiries, call latencies) over BatchInquire calls of BATCH items."""
    async with box.core(f"agency-{MINISTER}", aio=True) as ch:
        linkage = client.LinkageServiceStub(ch)
        reqs = [lpb.BatchInquireRequest(agency_codes=codes[i * BATCH * 16:(i + 1) * BATCH * 16], affair=AFFAIR,
                                        provider_agency_id=MAYOR, information_items=[ITEM], terms=provision_terms())
                for i in range(len(codes) // (BATCH * 16))]
        for r in reqs[:2]:  # warm-up
            got = await linkage.BatchInquire(r, timeout=120)
            assert got.outcomes == bytes(BATCH), "every batch item should be permitted"
        done = 0
        lat: list[float] = []
        stop_at = time.perf_counter() + seconds

        async def worker(k: int) -> None:
            nonlocal done
            i = k
            while time.perf_counter() < stop_at:
                t = time.perf_counter()
                await linkage.BatchInquire(reqs[i % len(reqs)], timeout=120)
                lat.append(time.perf_counter() - t)
                done += BATCH
                i += in_flight

        start = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(in_flight)))
        return done / (time.perf_counter() - start), done, lat


def one(root: Path, store: str | None, people: int, seconds: float,
        in_flight: int) -> tuple[float, int, list[float], float]:
    running = start_box(root, *(["--core-store", store] if store else []))
    try:
        mine, acquired = prepare(running.box, people)
        return (*asyncio.run(batch_rate(running.box, mine, seconds, in_flight)), acquired)
    finally:
        code, output = running.terminate()
        if code != 0:
            print(f"renkei up exited with status {code}:\n{output[-3000:]}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--people", type=int, default=20_000)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--in-flight", type=int, default=2)
    args = ap.parse_args(argv)
    if args.people < BATCH:
        ap.error(f"--people must be at least {BATCH}")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        print("embedded …", file=sys.stderr, flush=True)
        results["embedded"] = one(Path(tmp) / "embedded", None, args.people, args.seconds, args.in_flight)
        cluster = PgCluster.start()
        try:
            print("postgresql …", file=sys.stderr, flush=True)
            results["postgresql"] = one(Path(tmp) / "pg", cluster.create_database("bench_inquire"), args.people,
                                        args.seconds, args.in_flight)
        finally:
            cluster.stop()
    print(f"Command: `python -m bench.bench_pg_inquire --people {args.people} --seconds {args.seconds:g} "
          f"--in-flight {args.in_flight}` — {os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.1f} at the "
          f"end), Python {platform.python_version()}; the box, the client and PostgreSQL 15 (primary + "
          f"synchronous standby) on one machine over loopback\n")
    print("| BatchInquire, 10,000 codes a call, 照会 and 提供 records durable | inquiries/s | inquiries "
          "| p50 call ms | vs embedded |")
    print("| --- | ---: | ---: | ---: | ---: |")
    base = results["embedded"][0]
    labels = (("embedded", "embedded file ledger (write-ahead frame + fdatasync)"),
              ("postgresql", "ledger on PostgreSQL, synchronous standby (sequencing + integration)"))
    for name, label in labels:
        rate, n, lat, _ = results[name]
        print(f"| {label} | **{rate:,.0f}** | {n:,} | {sorted(lat)[len(lat) // 2] * 1e3:.0f} | {rate / base:.2f}× |")
    print("\n| acquisitions (reserve, J-LIS relay, collect; one call each per agency) | codes/s | vs embedded |")
    print("| --- | ---: | ---: |")
    base = results["embedded"][3]
    for name, label in (("embedded", "embedded (waiting codes in the core's memory)"),
                        ("postgresql", "PostgreSQL (holdings events + waiting codes in the store)")):
        acquired = results[name][3]
        print(f"| {label} | **{acquired:,.0f}** | {acquired / base:.2f}× |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
