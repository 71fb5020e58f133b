"""Can this carry the country? One command: prepare, serve, load with locust and grpc.aio, report.

    .venv/bin/python -m bench.load [--users 20] [--seconds 60] [--persons 200000]

1. A fresh temporary data directory: corporations assigned, then ``renkei serve`` on free
   loopback ports (pinned to CPU 0 when there are two or more).
2. J-LIS registers the population over gRPC; every demo agency of the mix acquires codes for it
   in bulk (``bench.loadprep``).
3. locust, headless, ``--users`` simulated clients for ``--seconds`` (pinned to CPU 1), the
   weighted mix of ``bench/locustfile.py``.
4. The grpc.aio driver (``bench.aiodriver``): each workload alone at rising concurrency, for the
   ceiling and the peak rate whose p99 stays under 50 ms.
5. Everything is stopped (also on failure or Ctrl-C) and the temporary directory removed;
   ``bench/results/`` gets the locust CSV and HTML, ``summary.json``, PNG plots and
   ``report.md`` (the table docs/BENCHMARKS.md quotes). Exit status 1 if any request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.aiodriver import WORKLOADS, Step, peak_under, ramp, steps_as_dicts
from bench.common import machine
from bench.loadprep import (
    AGENCY_USERS,
    HOLDING_AGENCIES,
    INQUIRY_PLANS,
    PUBLIC_USERS,
    Prep,
    acquire_codes,
    assign_corporations,
    linkage_available,
    register_population,
)
from renkei import client

REPO = Path(__file__).resolve().parent.parent
DEFAULT_RESULTS = REPO / "bench" / "results"
#: Japan's local governments' linkage inquiries (情報照会) in FY2022: 30.29 million
#: (会計検査院 (Board of Audit of Japan), report of 2024 on the My Number linkage system).
FY2022_INQUIRIES = 30_290_000
#: What a run writes to the results directory (and removes first); micro.md is bench.micro's.
OUTPUTS = ("locust*", "summary.json", "report.md", "server.log", "locust_*.png", "aio_ramp.png")
P99_BOUND_MS = 50.0
SECONDS_PER_YEAR = 365 * 24 * 3600


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m bench.load",
        description="National-scale load benchmark: renkei serve under locust and a grpc.aio driver",
    )
    ap.add_argument("--users", type=int, default=20, help="locust users (default 20)")
    ap.add_argument("--spawn-rate", type=float, default=None, help="users started per second (default users/5)")
    ap.add_argument("--seconds", type=int, default=60, help="locust run time (default 60)")
    ap.add_argument("--persons", type=int, default=200_000, help="population registered by J-LIS (default 200,000)")
    ap.add_argument("--corporations", type=int, default=300, help="corporations in the registry (default 300)")
    ap.add_argument("--batch-size", type=int, default=100, help="items per BatchInquire (default 100)")
    ap.add_argument("--levels", default="1,4,16,32,64,128", help="grpc.aio concurrencies (default 1,4,16,32,64,128)")
    ap.add_argument("--step-seconds", type=float, default=4.0, help="seconds per grpc.aio step (default 4)")
    ap.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="output directory (default bench/results)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-locust", action="store_true", help="skip the locust phase")
    ap.add_argument("--no-aio", action="store_true", help="skip the grpc.aio phase")
    ap.add_argument("--no-pin", action="store_true", help="do not pin server and clients to separate CPUs")
    ap.add_argument("--keep", action="store_true", help="keep the temporary data directory")
    args = ap.parse_args(argv)
    if args.users < 1 or args.seconds < 1 or args.persons < args.batch_size or args.batch_size < 1:
        ap.error("--users, --seconds, --batch-size must be positive and --persons at least --batch-size")
    if not 3 <= args.corporations <= 100_000:
        ap.error("--corporations must be between 3 and 100,000")
    try:
        args.levels = [int(x) for x in args.levels.split(",") if x.strip()]
    except ValueError:
        ap.error("--levels must be comma-separated integers")
    if not args.levels or min(args.levels) < 1:
        ap.error("--levels must be positive")
    if args.spawn_rate is None:
        args.spawn_rate = max(1.0, args.users / 5)
    return args


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it if this process dies without stopping it (Linux)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _pin_prefix(cpu: int, pin: bool) -> list[str]:
    if pin and (os.cpu_count() or 1) >= 2 and shutil.which("taskset"):
        return ["taskset", "-c", str(cpu)]
    return []


class Server:
    """``renkei serve`` as a child process on free ports; stopped by :meth:`stop`."""

    def __init__(self, data_dir: Path, log: Path, pin: bool) -> None:
        self.ready = data_dir.parent / "ready.json"
        self.log = log
        self._log_file = log.open("w")
        self.proc = subprocess.Popen(
            [*_pin_prefix(0, pin), sys.executable, "-m", "renkei.cli", "serve", "--data-dir", str(data_dir),
             "--port", "0", "--public-port", "0", "--metrics-port", "0", "--ready-file", str(self.ready),
            ],
            stdout=self._log_file, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,  # Ctrl-C reaches us; we stop the server ourselves, gracefully
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + 60
        while not self.ready.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"renkei serve did not start; see {log}:\n{log.read_text()[-3000:]}")
            time.sleep(0.05)
        info = json.loads(self.ready.read_text())
        self.target = f"localhost:{info['port']}"
        self.public_target = f"localhost:{info['public_port']}"
        self.ca = info["ca"]

    def stop(self, grace: float = 30) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log_file.close()
        return self.proc.returncode


def prepare(args: argparse.Namespace, work: Path, server: Server, corporations: list[str]) -> Prep:
    data_dir = work / "data"
    t = time.perf_counter()
    with client.principal_channel("jlis", data_dir=data_dir, target=server.target) as jlis:
        numbers = register_population(jlis, args.persons, args.seed)  # type: ignore[arg-type]
    np.save(work / "numbers.npy", numbers)
    print(f"  J-LIS registered {len(numbers):,} residents in {time.perf_counter() - t:.1f} s", flush=True)
    with client.agency_channel(1, data_dir=data_dir, target=server.target) as ch:
        linkage = linkage_available(ch)  # type: ignore[arg-type]
    if linkage:
        for agency in HOLDING_AGENCIES:
            t = time.perf_counter()
            with client.agency_channel(agency, data_dir=data_dir, target=server.target) as ch:
                codes = acquire_codes(ch, numbers)  # type: ignore[arg-type]
            np.save(work / f"codes-{agency}.npy", codes)
            print(f"  agency {agency} acquired {len(codes):,} codes in {time.perf_counter() - t:.1f} s", flush=True)
    else:
        print("  !! the server does not serve LinkageService (UNIMPLEMENTED): Inquire, BatchInquire and "
              "AcquireCode are left out of this run", flush=True)
    return Prep(
        target=server.target, public_target=server.public_target, data_dir=str(data_dir), ca=server.ca,
        batch_size=args.batch_size, corporate_numbers=corporations, linkage=linkage, directory=str(work),
    )


def run_locust(args: argparse.Namespace, prep_path: Path, linkage: bool, results: Path) -> int:
    classes = [*(AGENCY_USERS if linkage else ()), *PUBLIC_USERS]
    cmd = [
        *_pin_prefix(1, not args.no_pin), sys.executable, "-m", "locust", "-f", str(REPO / "bench" / "locustfile.py"),
        "--headless", "-u", str(args.users), "-r", f"{args.spawn_rate:g}", "-t", f"{args.seconds}s",
        "--csv", str(results / "locust"), "--csv-full-history", "--html", str(results / "locust.html"),
        "--json-file", str(results / "locust"), "--only-summary", "--stop-timeout", "10",
        "--loglevel", "WARNING", *classes,
    ]
    env = {**os.environ, "RENKEI_BENCH_PREP": str(prep_path), "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, preexec_fn=_die_with_parent)
    try:
        return proc.wait(timeout=args.seconds + 120)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


def read_locust(results: Path, batch_size: int) -> dict[str, Any]:
    """Per-RPC and aggregated figures from locust's stats CSV."""
    rows = list(csv.DictReader((results / "locust_stats.csv").open()))
    per: dict[str, dict[str, float]] = {}
    for r in rows:
        per[r["Name"]] = {
            "requests": int(r["Request Count"]),
            "failures": int(r["Failure Count"]),
            "rps": float(r["Requests/s"]),
            "p50_ms": float(r["50%"]),
            "p95_ms": float(r["95%"]),
            "p99_ms": float(r["99%"]),
            "max_ms": float(r["Max Response Time"]),
        }
    inquiries = sum(v["rps"] for k, v in per.items() if k == "Inquire")
    inquiries += sum(v["rps"] * batch_size for k, v in per.items() if k.startswith("BatchInquire"))
    return {"per_rpc": per, "inquiries_per_s": inquiries}


def _plan_text(name: str) -> str:
    p = INQUIRY_PLANS[name]
    return f"agency {p.requester} asks agency {p.provider}, affair {p.affair}, items {', '.join(p.items)} ({p.row})"


WORKLOAD_TEXT = {
    "Inquire": f"one person a call; {_plan_text('nhi-local-tax')}",
    "BatchInquire": f"batches of --batch-size persons; {_plan_text('local-tax-pension')}",
    "AcquireCode": "agency 2 acquires a code for a random registered resident (already held: code re-issued)",
    "BatchGetCorporations": "3 random registered 法人番号 a call, public port",
}


def country(rate: float) -> dict[str, float]:
    """A year of FY2022's inquiries at ``rate`` inquiries/s."""
    return {
        "inquiries_per_s": rate,
        "minutes_for_fy2022": FY2022_INQUIRIES / rate / 60 if rate > 0 else float("inf"),
        "fy2022_average_per_s": FY2022_INQUIRIES / SECONDS_PER_YEAR,
        "times_the_fy2022_average": rate / (FY2022_INQUIRIES / SECONDS_PER_YEAR),
    }


def report(summary: dict[str, Any]) -> str:
    """The Markdown that docs/BENCHMARKS.md quotes."""
    a = summary["args"]
    lines = [
        f"`{summary['command']}` — "
        f"{summary['machine']}; load average {summary['load_average_end']:.1f} at the end; "
        + ("server on CPU 0, clients on CPU 1" if summary["pinned"] else "server and clients not pinned")
        + f"; wall time {summary['wall_seconds']:.0f} s",
        "",
        f"Population: {summary.get('persons', 0):,} residents registered by J-LIS, each held by agencies "
        f"{', '.join(map(str, HOLDING_AGENCIES))}; {summary.get('corporations', 0):,} corporations; "
        f"BatchInquire of {a['batch_size']} persons.",
        "",
    ]
    loc = summary.get("locust")
    if loc:
        lines += [
            f"**locust** ({a['users']} users, {a['seconds']} s, weighted mix; one channel per user: "
            "mutual TLS as its agency, or the public port):",
            "",
            "| RPC | requests | failures | req/s | p50 ms | p95 ms | p99 ms |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for name, v in loc["per_rpc"].items():
            lines.append(
                f"| {name} | {v['requests']:,} | {v['failures']:,} | {v['rps']:,.1f} | {v['p50_ms']:.0f} | "
                f"{v['p95_ms']:.0f} | {v['p99_ms']:.0f} |"
            )
        lines += ["", f"Inquiries answered under locust (Inquire + BatchInquire items): "
                      f"{loc['inquiries_per_s']:,.0f}/s.", ""]
    steps = summary.get("aio")
    if steps:
        lines += [
            "**grpc.aio driver** (no gevent; each workload alone, one channel, c calls outstanding):",
            "",
            *[f"- {w}: {d}" for w, d in WORKLOAD_TEXT.items()],
            "",
            "| workload | c | calls/s | items/s | p50 ms | p95 ms | p99 ms | failures |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for s in steps:
            lines.append(
                f"| {s['workload']} | {s['concurrency']} | {s['calls_per_s']:,.0f} | {s['items_per_s']:,.0f} | "
                f"{s['p50_ms']:.1f} | {s['p95_ms']:.1f} | {s['p99_ms']:.1f} | {s['failures']} |"
            )
        lines.append("")
        ceilings = []
        for w in dict.fromkeys(s["workload"] for s in steps):
            top = max((s for s in steps if s["workload"] == w), key=lambda s: s["items_per_s"])
            ceilings.append(f"{w} {top['items_per_s']:,.0f}/s (c={top['concurrency']}, p99 {top['p99_ms']:.0f} ms)")
        lines += [f"Ceiling at any latency: {'; '.join(ceilings)}.", ""]
    c = summary.get("country")
    if c:
        lines += [
            f"**The country** (FY2022: {FY2022_INQUIRIES:,} linkage inquiries by local governments, "
            f"{c['fy2022_average_per_s']:.2f}/s averaged over the year):",
            "",
            "| measure | inquiries/s (p99 < 50 ms) | minutes of this machine for FY2022's year "
            "| × the FY2022 average |",
            "| --- | ---: | ---: | ---: |",
        ]
        for label, v in c["rows"].items():
            lines.append(
                f"| {label} | {v['inquiries_per_s']:,.0f} | {v['minutes_for_fy2022']:,.1f} | "
                f"{v['times_the_fy2022_average']:,.0f}× |"
            )
        lines.append("")
    lines.append(f"Failed requests: {summary['failed_requests']}.")
    return "\n".join(lines)


def country_rows(steps: list[Step], loc: dict[str, Any] | None) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    single = peak_under(steps, "Inquire", P99_BOUND_MS)
    if single is not None:
        rows[f"single Inquire, grpc.aio peak (c={single.concurrency}, p99 {single.p99_ms:.1f} ms)"] = country(
            single.items_per_s
        )
    batch = peak_under(steps, "BatchInquire", P99_BOUND_MS)
    if batch is not None:
        rows[f"BatchInquire items, grpc.aio peak (c={batch.concurrency}, p99 {batch.p99_ms:.1f} ms)"] = country(
            batch.items_per_s
        )
    if loc and loc["inquiries_per_s"] > 0:
        worst = max(v["p99_ms"] for k, v in loc["per_rpc"].items() if k == "Inquire" or k.startswith("BatchInquire"))
        if worst < P99_BOUND_MS:
            rows[f"locust mix, inquiries only (worst inquiry p99 {worst:.0f} ms)"] = country(loc["inquiries_per_s"])
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Ctrl-C and SIGTERM both stop everything through the same path (also when started in the
    # background, where SIGINT would otherwise be ignored).
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.perf_counter()
    results: Path = args.results
    results.mkdir(parents=True, exist_ok=True)
    for pattern in OUTPUTS:  # this run's report only; nothing of a previous run is reused
        for old in results.glob(pattern):
            old.unlink()
    pinned = not args.no_pin and bool(_pin_prefix(0, True))
    work = Path(tempfile.mkdtemp(prefix="renkei-load-"))
    server: Server | None = None
    summary: dict[str, Any] = {
        "command": shlex.join(["python", "-m", "bench.load", *(sys.argv[1:] if argv is None else argv)]),
        "machine": machine(),
        "python": platform.python_version(),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "pinned": pinned,
        "plans": {k: vars(v) for k, v in INQUIRY_PLANS.items()},
    }
    failed = 0
    try:
        print(f"[1/4] data directory {work}/data: {args.corporations} corporations", flush=True)
        (work / "data").mkdir()
        corporations = assign_corporations(work / "data", args.corporations, args.seed)
        print("[1/4] starting renkei serve", flush=True)
        server = Server(work / "data", work / "server.log", pin=not args.no_pin)
        print(f"[2/4] preparing {args.persons:,} residents on {server.target}", flush=True)
        prep = prepare(args, work, server, corporations)
        prep_path = prep.save()
        summary["linkage_served"] = prep.linkage
        summary["persons"] = len(prep.numbers)
        summary["corporations"] = len(corporations)
        if pinned:
            os.sched_setaffinity(0, {1})
        if not args.no_locust:
            print(f"[3/4] locust: {args.users} users for {args.seconds} s", flush=True)
            code = run_locust(args, prep_path, prep.linkage, results)
            if not (results / "locust_stats.csv").exists():
                raise RuntimeError(f"locust exited with status {code} and wrote no statistics (output above)")
            loc = read_locust(results, args.batch_size)
            summary["locust"] = {**loc, "exit_code": code}
            failed += sum(int(v["failures"]) for k, v in loc["per_rpc"].items() if k != "Aggregated")
        steps: list[Step] = []
        if not args.no_aio:
            workloads = [w for w, (needs, _) in WORKLOADS.items() if prep.linkage or not needs]
            print(f"[4/4] grpc.aio: {', '.join(workloads)} at concurrency {args.levels}", flush=True)

            def show(s: Step) -> None:
                print(f"  {s.workload:<21} c={s.concurrency:<4} {s.calls_per_s:>9,.0f} calls/s "
                      f"{s.items_per_s:>11,.0f} items/s  p99 {s.p99_ms:7.1f} ms  failures {s.failures}"
                      + (f" ({s.first_failure})" if s.failures else ""), flush=True)

            steps = asyncio.run(ramp(prep, workloads, args.levels, args.step_seconds, show))
            summary["aio"] = steps_as_dicts(steps)
            failed += sum(s.failures for s in steps)
        summary["country"] = {
            "fy2022_inquiries": FY2022_INQUIRIES,
            "fy2022_average_per_s": FY2022_INQUIRIES / SECONDS_PER_YEAR,
            "p99_bound_ms": P99_BOUND_MS,
            "rows": country_rows(steps, summary.get("locust")),
        }
    except KeyboardInterrupt:
        print("interrupted: stopping everything", file=sys.stderr)
        failed = failed or 1
        summary["interrupted"] = True
    finally:
        if server is not None:
            summary["server_exit_code"] = server.stop()
            shutil.copy(server.log, results / "server.log")
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    summary["failed_requests"] = failed
    summary["wall_seconds"] = time.perf_counter() - started
    summary["load_average_end"] = os.getloadavg()[0]
    (results / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    if summary.get("interrupted"):
        return 130
    from bench.loadplots import plot_all

    for png in plot_all(results, summary):
        print(f"plot {png}")
    text = report(summary)
    (results / "report.md").write_text(text + "\n")
    print()
    print(text)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
