"""Single Inquire throughput with 1, 2 and 4 core front-ends on one PostgreSQL store (issue #16).

    python -m bench.bench_frontends [--frontends 1,2,4] [--seconds 5] [--concurrency 32] [--people 5000]

Starts a PostgreSQL primary + synchronous standby (tests/pg_cluster.py), then for each count N a
box on its own database: ``renkei up --demo --core-store … --core-frontends N`` (every service its
own process; the intermediate servers attend every front-end). J-LIS registers ``--people``
residents; the minister (agency 4) and the mayor (agency 1) acquire their codes. Then one client
process per front-end (grpc.aio, ``--concurrency`` calls in flight each, its own channel) calls
``LinkageService/Inquire`` as the minister for ``--seconds``: each call decodes the code, checks
holdings and the table, appends the 照会 record (sequenced in PostgreSQL, committed on the
synchronous standby), signs the permit, relays to the mayor's intermediate server and records the
提供. Prints calls/s for each N and its ratio to N = 1 in the same run (linear would be N).

Where the front-ends and the clients share the machine's cores, the ratio measures that sharing
as much as the design: it is printed with the machine's core count.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.loadprep import provision_terms
from renkei import client
from renkei.proto import linkage as lpb
from renkei.proto import numbers as npb

AFFAIR, ITEM, MINISTER, MAYOR = "B2.1", "B2.1.2.1", 4, 1


def _client(target: str, pki: str, codes: bytes, seconds: float, concurrency: int, start_at: float,
            out: mp.Queue) -> None:  # type: ignore[type-arg]
    async def run() -> tuple[int, int]:
        async with client.principal_channel(f"agency-{MINISTER}", target, pki=Path(pki), aio=True) as ch:
            stub = client.LinkageServiceStub(ch)
            n = len(codes) // 16
            reqs = [lpb.InquireRequest(agency_code=codes[i * 16:(i + 1) * 16], affair=AFFAIR,
                                       provider_agency_id=MAYOR, information_items=[ITEM], terms=provision_terms())
                    for i in range(min(n, 2000))]
            nth = itertools.count()
            for _ in range(100):  # warm-up: the connection, the front-end's caches
                await stub.Inquire(reqs[next(nth) % len(reqs)], timeout=30)
            await asyncio.sleep(max(0.0, start_at - time.time()))
            done = failed = 0
            stop = time.perf_counter() + seconds

            async def worker() -> None:
                nonlocal done, failed
                while time.perf_counter() < stop:
                    try:
                        await stub.Inquire(reqs[next(nth) % len(reqs)], timeout=30)
                        done += 1
                    except Exception:  # counted and reported
                        failed += 1
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return done, failed

    out.put(asyncio.run(run()))


def _cpu() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine (/proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def measure(n: int, url: str, root: Path, people: int, seconds: float,
            concurrency: int) -> tuple[float, int, float]:
    from grpc_server import start_box

    box = start_box(root / f"box-{n}", "--core-store", url, "--core-frontends", str(n), timeout=300)
    try:
        b = box.box
        with b.jlis("jlis") as ch:
            raw = client.NumberServiceStub(ch).RegisterTestPopulation(
                npb.RegisterTestPopulationRequest(count=people, seed=5), timeout=300).individual_numbers
        numbers = np.frombuffer(raw, dtype="<u8")
        held = {}
        for agency in (MINISTER, MAYOR):
            with b.core(f"agency-{agency}") as core, b.jlis(f"agency-{agency}") as jlis:
                codes, statuses = client.acquire_codes(client.LinkageServiceStub(core),
                                                       client.NumberServiceStub(jlis), numbers, timeout=300)
            assert not np.count_nonzero(statuses)
            held[agency] = bytes(codes)
        targets = [box.target("core")] + [box.target(f"core-{k}") for k in range(2, n + 1)]
        ctx = mp.get_context("spawn")
        out: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
        start_at = time.time() + 8.0  # after every client's warm-up
        procs = [ctx.Process(target=_client, args=(t, str(box.pki), held[MINISTER], seconds, concurrency, start_at,
                                                   out)) for t in targets]
        for p in procs:
            p.start()
        time.sleep(max(0.0, start_at - time.time()))
        cpu0 = _cpu()
        time.sleep(seconds)
        cpu1 = _cpu()
        results = [out.get(timeout=seconds + 120) for _ in procs]
        for p in procs:
            p.join(timeout=30)
        done = sum(r[0] for r in results)
        failed = sum(r[1] for r in results)
        busy = (cpu1[0] - cpu0[0]) / max(1, cpu1[1] - cpu0[1])
        return done / seconds, failed, busy
    finally:
        box.terminate()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frontends", default="1,2,4")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--concurrency", type=int, default=32, help="calls in flight per client process")
    ap.add_argument("--people", type=int, default=5000)
    args = ap.parse_args()
    from pg_cluster import PgCluster

    counts = [int(x) for x in args.frontends.split(",")]
    cluster = PgCluster.start()
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="renkei-bench-frontends-") as tmp:
            for n in counts:
                url = cluster.create_database(f"renkei_fe_{n}")
                rate, failed, busy = measure(n, url, Path(tmp), args.people, args.seconds, args.concurrency)
                rows.append((n, rate, failed, busy))
                print(f"{n} front-end(s): {rate:,.0f} Inquire/s ({failed} failed), machine {busy:.0%} busy", flush=True)
    finally:
        cluster.stop()
    base = rows[0][1]
    print(f"\ncores on this machine: {os.cpu_count()}; load average {os.getloadavg()[0]:.1f}\n")
    print("| front-ends | Inquire/s | × 1 front-end | failed | machine CPU busy |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for n, rate, failed, busy in rows:
        print(f"| {n} | {rate:,.0f} | {rate / base:.2f} | {failed} | {busy:.0%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
