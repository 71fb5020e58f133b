"""The witness round trip: add-checkpoint requests against a real ``renkei witness serve`` and,
in the same run, a no-op POST on the same HTTP stack (Starlette on uvicorn), so the witness's own
cost (parse, Ed25519 verify of the log signature, RFC 9162 consistency proof, durable
compare-and-set in SQLite with synchronous=FULL, cosignature) stands beside the stack's.

    .venv/bin/python -m bench.bench_witness [--requests 2000] [--clients 4]

Sequential: one keep-alive connection, each request extends one log by one entry with a
consistency proof (p50/p99 latency, requests/s). Concurrent: ``--clients`` connections, each its
own log (the compare-and-set is per log), total requests/s. Bodies are prepared before timing.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.common import machine
from renkei._core import ledger as _l

NOOP_APP = """
import socket, sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
async def noop(request):
    await request.body()
    return Response(b"ok\\n", headers={"content-type": "text/plain"})
app = Starlette(routes=[Route("/add-checkpoint", noop, methods=["POST"])])
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")).run(sockets=[s])
"""


def bodies(origin: str, seed: bytes, n: int) -> list[bytes]:
    """Requests that take a fresh witness from size 1 to n + 1, one entry at a time."""
    tree = _l.MemTree()
    out = []
    for size in range(1, n + 2):
        tree.push(f"entry {size} of {origin}".encode())
        root = tree.root(size)
        text = f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"
        note = _l.sign_note(text, name=origin, seed=seed)
        old = size - 1
        proof = tree.consistency_proof(old, size) if old else []
        out.append(("\n".join([f"old {old}", *(base64.b64encode(h).decode() for h in proof)]) + "\n\n" + note).encode())
    return out


def run(host: str, port: int, reqs: list[bytes]) -> list[float]:
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle/delayed-ACK stalls
    lat = []
    for b in reqs:
        t = time.perf_counter()
        conn.request("POST", "/add-checkpoint", body=b)
        r = conn.getresponse()
        r.read()
        lat.append(time.perf_counter() - t)
        if r.status != 200:
            raise SystemExit(f"unexpected status {r.status}")
    conn.close()
    return lat


def measure(host: str, port: int, seq: list[bytes], par: list[list[bytes]]) -> dict[str, float]:
    run(host, port, seq[:1])  # warm-up (also the first, proof-less request)
    lat = run(host, port, seq[1:])
    threads, results = [], []

    def worker(reqs: list[bytes]) -> None:
        results.append(run(host, port, reqs))

    t0 = time.perf_counter()
    for reqs in par:
        threads.append(threading.Thread(target=worker, args=(reqs,)))
        threads[-1].start()
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - t0
    lat_ms = sorted(x * 1000 for x in lat)
    return {"seq_rps": len(lat) / sum(lat), "p50_ms": statistics.median(lat_ms),
            "p99_ms": lat_ms[int(0.99 * (len(lat_ms) - 1))], "par_rps": sum(len(r) for r in par) / elapsed}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=4)
    args = ap.parse_args()
    seed = bytes(range(32))
    origins = [f"bench{i}.example/log" for i in range(args.clients + 1)]
    seq = bodies(origins[0], seed, args.requests)
    per = args.requests // args.clients
    par = [bodies(o, seed, per - 1) for o in origins[1:]]
    vkey = _l.vkey_for(origins[0], seed)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "w"
        subprocess.run([sys.executable, "-m", "renkei.cli", "witness", "init", "--data-dir", str(d), "--name",
                        "bench.example/witness"], check=True, capture_output=True)
        ready = Path(tmp) / "ready.json"
        cmd = [sys.executable, "-m", "renkei.cli", "witness", "serve", "--data-dir", str(d), "--port", "0",
               "--ready-file", str(ready), "--log-level", "WARNING"]
        for o in origins:
            cmd += ["--log", f"{o}={_l.vkey_for(o, seed) if o != origins[0] else vkey}"]
        witness = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        noop = subprocess.Popen([sys.executable, "-c", NOOP_APP], stdout=subprocess.PIPE, text=True)
        try:
            while not ready.exists():
                time.sleep(0.05)
            host, port = json.loads(ready.read_text())["http"].rsplit(":", 1)
            noop_port = int(noop.stdout.readline()) if noop.stdout else 0
            base = measure("127.0.0.1", noop_port, seq, par)
            wit = measure(host, int(port), seq, par)
        finally:
            witness.terminate()
            noop.terminate()
            witness.wait()
            noop.wait()
    print(f"# witness round trip — {machine()}, {os.cpu_count()} CPUs, {args.requests} requests, "
          f"{args.clients} clients")
    print("| endpoint | sequential req/s | p50 ms | p99 ms | concurrent req/s |")
    print("|---|---:|---:|---:|---:|")
    for name, m in (("no-op POST (same stack)", base), ("witness add-checkpoint", wit)):
        print(f"| {name} | {m['seq_rps']:,.0f} | {m['p50_ms']:.2f} | {m['p99_ms']:.2f} | {m['par_rps']:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
