"""Agencies under attack: their inquiry latency and the core's memory while hostile callers
flood the public port or send oversized bodies, against the same run's quiet baseline.

    python -m bench.bench_hostile [--seconds 10] [--rounds 2] [--concurrency 16] [--flood-connections 64]

Starts a demo box (``renkei up``, loopback, free ports) in a temporary directory, registers
residents and has the minister (agency 4) and 千代田区長 (agency 1) acquire their codes. Then
three phases of ``--seconds`` each, the minister keeping ``--concurrency`` Inquire calls
outstanding over mutual TLS throughout (each one durable record and a signed permit):

1. **quiet**: nothing else (the baseline);
2. **public flood**: a separate process opens ``--flood-connections`` TLS connections without a
   client certificate to the core's public port and keeps 16 calls open on each that never send
   their body (re-opening each as soon as the server ends it);
3. **oversized bodies**: a separate process keeps 16 calls of 16 MiB to the public port
   (no certificate) and 16 calls of 16 MiB BatchInquire as 横浜市 (agency 2) going.

The three phases repeat ``--rounds`` times, so that load from elsewhere on a shared machine hits
each alike; each attack phase is compared with the quiet phase of its own round and the median
round is reported. For each phase: the minister's calls/s, p50 and p99 latency and failures; the CPU the core's
process and the attacking process used (100 % = one core);
the attack's outcomes (summed over rounds); in the first round, the core's peak resident memory
(VmHWM) by the end of the phase and its resident memory a few seconds after it. Loopback only;
everything is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc

from bench.loadprep import provision_terms
from renkei import client
from renkei._proto.renkei.v1 import linkage_service_pb2 as lpb
from renkei._proto.renkei.v1 import number_service_pb2 as npb
from tests.grpc_server import RunningBox, start_box

AFFAIR, ITEM, MINISTER, MAYOR, YOKOHAMA = "B2.1", "B2.1.2.1", 4, 1, 2
MIB = 1024 * 1024


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _status(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _agency_load(box: dict[str, Any], codes: list[bytes], seconds: float, concurrency: int) -> dict[str, Any]:
    latencies: list[float] = []
    failures: Counter[str] = Counter()
    async with client.principal_channel(f"agency-{MINISTER}", box["core"], pki=box["pki"], aio=True) as ch:
        stub = client.LinkageServiceStub(ch)

        async def one(i: int) -> None:
            t = time.perf_counter()
            try:
                await stub.Inquire(lpb.InquireRequest(agency_code=codes[i % len(codes)], affair=AFFAIR,
                                                      provider_agency_id=MAYOR, information_items=[ITEM],
                                                      terms=provision_terms()), timeout=30)
                latencies.append(time.perf_counter() - t)
            except grpc.aio.AioRpcError as e:
                failures[e.code().name] += 1

        for i in range(50):  # warm-up
            await one(i)
        latencies.clear()
        stop_at = time.perf_counter() + seconds
        start = time.perf_counter()

        async def worker(w: int) -> None:
            i = w
            while time.perf_counter() < stop_at:
                await one(i)
                i += concurrency

        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        elapsed = time.perf_counter() - start
    lat = sorted(latencies)
    return {
        "calls_per_s": len(lat) / elapsed,
        "p50_ms": 1000 * statistics.median(lat) if lat else float("nan"),
        "p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else float("nan"),
        "failures": dict(failures),
    }


async def _overhead(box: dict[str, Any], seconds: float, rounds: int) -> dict[str, list[float]]:
    """Calls/s of grpc's own Health/Check and of NumberService/ValidateNumbers (one number, as
    an agency) through the same channel, 64 outstanding, interleaved rounds: what the wrapper
    (identity before the body, gates, size check, parse, metrics) costs a call."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    rates: dict[str, list[float]] = {"Health/Check (baseline)": [], "NumberService/ValidateNumbers (1 number)": []}
    async with client.principal_channel(f"agency-{MINISTER}", box["jlis"], pki=box["pki"], aio=True) as ch:
        health = health_pb2_grpc.HealthStub(ch)
        numbers = client.NumberServiceStub(ch)
        calls = {
            "Health/Check (baseline)": lambda: health.Check(health_pb2.HealthCheckRequest(), timeout=30),
            "NumberService/ValidateNumbers (1 number)": lambda: numbers.ValidateNumbers(
                npb.ValidateNumbersRequest(kind=npb.NUMBER_KIND_CORPORATE, numbers=["8000020131016"]), timeout=30),
        }
        for _ in range(rounds):
            for name, call in calls.items():
                done = 0
                stop_at = time.perf_counter() + seconds

                async def worker(call: Any = call, stop_at: float = stop_at) -> None:
                    nonlocal done
                    while time.perf_counter() < stop_at:
                        await call()
                        done += 1

                start = time.perf_counter()
                await asyncio.gather(*(worker() for _ in range(64)))
                rates[name].append(done / (time.perf_counter() - start))
    return rates


# -- the attacks, each in its own process -------------------------------------------------------


async def _never(stop: asyncio.Event) -> AsyncIterator[bytes]:
    await stop.wait()
    if False:  # pragma: no cover - an async generator that never yields
        yield b""


async def _flood(target: str, ca: Path, seconds: float, connections: int) -> Counter[str]:
    outcome: Counter[str] = Counter()
    stop = asyncio.Event()
    stop_at = time.monotonic() + seconds
    creds = grpc.ssl_channel_credentials(ca.read_bytes())
    channels = [grpc.aio.secure_channel(target, creds, options=[("grpc.use_local_subchannel_pool", 1)])
                for _ in range(connections)]

    async def hold(ch: Any) -> None:
        call = ch.stream_unary("/renkei.v1.DisclosureService/CreateChallenge")
        while time.monotonic() < stop_at:
            try:
                await asyncio.wait_for(call(_never(stop), timeout=60), timeout=max(0.1, stop_at - time.monotonic()))
                outcome["OK"] += 1
            except TimeoutError:
                outcome["still held at the end"] += 1
            except grpc.aio.AioRpcError as e:
                outcome[e.code().name] += 1
                if e.code() is grpc.StatusCode.RESOURCE_EXHAUSTED:
                    await asyncio.sleep(0.05)

    await asyncio.gather(*(hold(ch) for ch in channels for _ in range(16)))
    stop.set()
    for ch in channels:
        await ch.close()
    return outcome


async def _oversized(box: dict[str, Any], seconds: float) -> Counter[str]:
    outcome: Counter[str] = Counter()
    stop_at = time.monotonic() + seconds
    body = os.urandom(16 * MIB)
    ca = Path(box["pki"]) / "ca.pem"
    opts = [("grpc.max_send_message_length", 64 * MIB)]
    public = grpc.aio.secure_channel(box["core_public"], grpc.ssl_channel_credentials(ca.read_bytes()), options=opts)
    folder = Path(box["pki"]) / "clients" / f"agency-{YOKOHAMA}"
    creds = grpc.ssl_channel_credentials(ca.read_bytes(), (folder / "key.pem").read_bytes(),
                                         (folder / "cert.pem").read_bytes())
    agency = grpc.aio.secure_channel(box["core"], creds, options=opts)

    async def loop(ch: Any, method: str, label: str) -> None:
        call = ch.unary_unary(method)
        while time.monotonic() < stop_at:
            try:
                await call(body, timeout=60)
                outcome[f"{label} OK"] += 1
            except grpc.aio.AioRpcError as e:
                outcome[f"{label} {e.code().name}"] += 1

    await asyncio.gather(*(loop(public, "/renkei.v1.DisclosureService/CreateChallenge", "public") for _ in range(16)),
                         *(loop(agency, "/renkei.v1.LinkageService/BatchInquire", "agency") for _ in range(16)))
    await public.close()
    await agency.close()
    return outcome


def _attack_main(args: argparse.Namespace) -> None:
    box = json.loads(args.attack_box)
    if args.attack == "flood":
        out = asyncio.run(_flood(box["core_public"], Path(box["pki"]) / "ca.pem", args.seconds,
                                 args.flood_connections))
    else:
        out = asyncio.run(_oversized(box, args.seconds))
    print(json.dumps(dict(out)))


# -- orchestration ------------------------------------------------------------------------------


def _prepare(s: RunningBox, people: int) -> list[bytes]:
    with s.channel("jlis", "jlis") as ch:
        raw = client.NumberServiceStub(ch).RegisterTestPopulation(
            npb.RegisterTestPopulationRequest(count=people, seed=5), timeout=120).individual_numbers
    numbers = [f"{int.from_bytes(raw[i:i + 8], 'little'):012d}" for i in range(0, len(raw), 8)]
    codes: list[bytes] = []
    for agency in (MINISTER, MAYOR):
        with s.channel(f"agency-{agency}") as core, s.channel(f"agency-{agency}", "jlis") as jlis:
            out, status = client.acquire_codes(client.LinkageServiceStub(core), client.NumberServiceStub(jlis),
                                               numbers, timeout=120)
        assert (status == 0).all()
        if agency == MINISTER:
            codes = [bytes(out[i:i + 16]) for i in range(0, len(out), 16)]
    return codes


def _phase(name: str, box: dict[str, Any], pid: int, codes: list[bytes], args: argparse.Namespace,
           attack: str | None) -> dict[str, Any]:
    proc = None
    if attack is not None:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.bench_hostile", "--attack", attack, "--attack-box", json.dumps(box),
             "--seconds", str(args.seconds + 2), "--flood-connections", str(args.flood_connections)],
            stdout=subprocess.PIPE, text=True)
        time.sleep(1.0)  # the attack is under way before the agency load starts
    hwm0 = _status(pid, "VmHWM")
    cpu0, t0 = _cpu_seconds(pid), time.monotonic()
    attacker_cpu0 = _cpu_seconds(proc.pid) if proc is not None else 0.0
    row = asyncio.run(_agency_load(box, codes, args.seconds, args.concurrency))
    core_cpu = (_cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
    attacker_cpu = (_cpu_seconds(proc.pid) - attacker_cpu0) / (time.monotonic() - t0) if proc is not None else 0.0
    attack_out: dict[str, int] = {}
    if proc is not None:
        stdout, _ = proc.communicate(timeout=args.seconds + 120)
        attack_out = json.loads(stdout.strip().splitlines()[-1]) if stdout.strip() else {}
    time.sleep(3.0)  # let the core hand freed memory back
    row.update(phase=name, attack=attack_out, rss_peak_before_mib=hwm0, rss_peak_mib=_status(pid, "VmHWM"),
               rss_after_mib=_status(pid, "VmRSS"), core_cpu=core_cpu, attacker_cpu=attacker_cpu)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--overhead-only", action="store_true", help="only the per-call wrapper's cost, no attacks")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--flood-connections", type=int, default=64)
    ap.add_argument("--people", type=int, default=2000)
    ap.add_argument("--attack", choices=["flood", "oversized"], help=argparse.SUPPRESS)
    ap.add_argument("--attack-box", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.attack:
        _attack_main(args)
        return
    with tempfile.TemporaryDirectory(prefix="renkei-hostile-") as tmp:
        s = start_box(Path(tmp) / "box")
        try:
            codes = _prepare(s, args.people)
            box = {"core": s.target("core"), "core_public": s.target("core", "public_grpc"), "pki": str(s.pki),
                   "jlis": s.target("jlis")}
            pid = s.pid("core")
            overhead = asyncio.run(_overhead(box, 3.0, args.rounds))
            if args.overhead_only:
                for name, rs in overhead.items():
                    print(f"{name}: {statistics.median(rs):,.0f} calls/s")
                return
            names = ["quiet (baseline)", f"public flood ({args.flood_connections} connections × 16 unsent bodies)",
                     "oversized bodies (16 × 16 MiB public + 16 × 16 MiB BatchInquire)"]
            rounds = [[_phase(names[0], box, pid, codes, args, None),
                       _phase(names[1], box, pid, codes, args, "flood"),
                       _phase(names[2], box, pid, codes, args, "oversized")] for _ in range(args.rounds)]
        finally:
            s.terminate()
    load = os.getloadavg()[0]
    print(f"`python -m bench.bench_hostile --seconds {args.seconds:g} --rounds {args.rounds} --concurrency "
          f"{args.concurrency} --flood-connections {args.flood_connections}` — "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"grpcio {grpc.__version__}; load average {load:.1f} at the end; client, attacker and box on one machine "
          f"over loopback TLS; median of {args.rounds} rounds\n")
    # Peak RSS is the process's high-water mark: the first round shows each phase's own.
    print("| phase | agency Inquire calls/s | vs quiet (same round) | p50 ms | p99 ms | agency failures "
          "| core CPU | attacker CPU | core peak RSS MiB (round 1) | core RSS after MiB (round 1) | attack outcomes |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for i, name in enumerate(names):
        rows = [r[i] for r in rounds]
        ratios = [r[i]["calls_per_s"] / r[0]["calls_per_s"] for r in rounds if r[0]["calls_per_s"]]
        attack: Counter[str] = Counter()
        for row in rows:
            attack.update(row["attack"])
        med = statistics.median
        print(f"| {name} | {med(x['calls_per_s'] for x in rows):,.0f} | {med(ratios):.2f}× | "
              f"{med(x['p50_ms'] for x in rows):.1f} | {med(x['p99_ms'] for x in rows):.1f} | "
              f"{sum(sum(x['failures'].values()) for x in rows)} | {med(x['core_cpu'] for x in rows):.0%} | "
              f"{med(x['attacker_cpu'] for x in rows):.0%} | {rows[0]['rss_peak_mib']:.0f} | "
              f"{rows[0]['rss_after_mib']:.0f} | "
              f"{', '.join(f'{k} {v:,}' for k, v in sorted(attack.items())) or '—'} |")
    print("\nWhat the per-call wrapper costs (J-LIS's mutual-TLS port, 64 calls outstanding, 3 s a round, "
          "median of the rounds):\n")
    print("| RPC | calls/s | vs baseline |")
    print("|---|---|---|")
    base = statistics.median(next(iter(overhead.values())))
    for name, rs in overhead.items():
        print(f"| {name} | {statistics.median(rs):,.0f} | {statistics.median(rs) / base:.0%} |")


if __name__ == "__main__":
    main()
