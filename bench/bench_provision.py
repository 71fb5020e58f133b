"""Provision (情報照会 → 情報提供) end to end, and the intermediate server's 副本 store, each beside
a baseline measured in the same run.

    python -m bench.bench_provision [--persons 20000] [--singles 300] [--batch 10000] [--batches 4]
                                    [--registrations 100000] [--seconds 8] [--concurrency 16]

1. **副本 bulk registration** into the embedded store (SQLite, one durable transaction per call),
   ``--registrations`` records in calls of 10,000, beside the floor of the same rows inserted by
   ``executemany`` into a bare table of the same shape in the same file system.
2. A demo box (``renkei up --demo --demo-persons N``: the core, J-LIS, two intermediate servers,
   every hop mutual TLS on loopback, every record durable) with ``--persons`` registered people:
   - **single provision at 1 in flight**: the minister's business system asks its intermediate
     server for one person's 地方税関係情報 held by 千代田区 (business system → mid-national → core
     → mid-municipal → back): p50 / p99 over ``--singles`` calls, beside the floor of the four
     durable commits the path makes in sequence (a SQLite WAL commit with one fsync, same disk);
   - **relay ceiling**: ``--concurrency`` inquiries in flight for ``--seconds`` at the core (as the
     minister's intermediate server) answered by 千代田区's real intermediate server, then by a
     no-op provider (the bench attends for 千代田区 and answers every call at once with canned
     bytes; the real one is paused with SIGSTOP meanwhile): calls/s of each;
   - **batch provision**: ``--batches`` batches of ``--batch`` persons through the business API,
     one at a time and two in flight: persons/s end to end (HPKE-sealed, signed, 照会 and 提供
     records durable);
   - **encryption's share**: the same batches' answers sealed, signed, verified and opened in
     this process (the same sizes and suite: X25519/HKDF-SHA256/AES-128-GCM, ECDSA P-256), and
     the batch rate with that time taken out: what the path would do without encryption.

For context, X-Road's published figure is about 110 messages/s through a pair of security servers.
Loopback only; everything is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform as pyplatform
import queue
import signal
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc

from renkei import client
from renkei._proto.renkei.v1 import intermediate_service_pb2 as ipb
from renkei._proto.renkei.v1 import linkage_service_pb2 as lpb
from renkei._proto.renkei.v1 import provision_service_pb2 as ppb
from renkei.mid import sealing
from renkei.mid.platform import Platform, Tenant, load_private_key
from renkei.mid.store import Duplicate
from renkei.service.demo import atena_number
from tests.grpc_server import RunningBox, start_box

MINISTER, CHIYODA = 4, 1
T = 120


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


# -- 1. 副本 registration -----------------------------------------------------------------------


def bench_registration(n: int, root: Path) -> dict[str, Any]:
    from renkei.pki.ca import DevelopmentCA

    DevelopmentCA.init(root / "pki").issue_agency_certificate(CHIYODA, "千代田区長")
    data = Platform.init(root / "mid", [Tenant(CHIYODA, "千代田区長", ("municipal_mayor",))])
    p = Platform(data)
    atenas = [f"{CHIYODA:03d}{i:012d}" for i in range(n)]
    for k in range(0, n, 50_000):
        p.store.register_addressees(CHIYODA, [(a, [], None) for a in atenas[k:k + 50_000]])
        p.store.set_codes(CHIYODA, [(a, i.to_bytes(16, "big")) for i, a in enumerate(atenas[k:k + 50_000], k)])
    providable = p.catalog.providable(("municipal_mayor",))
    records = [Duplicate(a, "local_tax_info", "0001", 1, f"T2025-{i:08d}", "2025-06-01",
                         {"課税年度": 2025, "総所得金額": 3_000_000 + i, "市町村民税額": 200_000 + i}, "2025-06-01",
                         fiscal_year=2025) for i, a in enumerate(atenas)]
    start = time.perf_counter()
    for k in range(0, n, 10_000):
        statuses = p.store.register_duplicates(CHIYODA, records[k:k + 10_000], providable)
        assert set(statuses) == {0}, set(statuses)
    took = time.perf_counter() - start
    p.close()
    # The floor: the same rows, executemany into a bare table, one durable transaction per 10,000.
    db = sqlite3.connect(root / "floor.sqlite3")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE d (tenant, atena, item, dataset, version, record_key, valid_from, valid_until, "
               "fiscal_year, published, payload, null_reasons, registered, PRIMARY KEY (tenant, record_key, "
               "version))")
    rows = [(CHIYODA, r.atena, r.item, r.dataset, r.version, r.record_key, r.valid_from, None, r.fiscal_year,
             r.published, json.dumps(r.payload, ensure_ascii=False), "{}", "2025-06-01") for r in records]
    start = time.perf_counter()
    for k in range(0, n, 10_000):
        with db:
            db.executemany("INSERT INTO d VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows[k:k + 10_000])
    floor = time.perf_counter() - start
    db.close()
    return {"records": n, "per_s": n / took, "floor_per_s": n / floor, "ratio": took / floor}


def commit_floor(root: Path, n: int = 300) -> float:
    """Median seconds of one durable SQLite commit (WAL, synchronous=FULL: one fsync), on the file
    system the box uses: the single provision path makes four in sequence (the core's 照会 and 提供
    records, the provider's and the requester's 記録管理)."""
    db = sqlite3.connect(root / "commit-floor.sqlite3", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")
    took = []
    for i in range(n):
        t = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t VALUES (?, ?)", (i, b"x" * 200))
        db.execute("COMMIT")
        took.append(time.perf_counter() - t)
    db.close()
    return statistics.median(took)


# -- 2. the box ------------------------------------------------------------------------------------


def _business(box: RunningBox) -> Any:
    return client.IntermediateServiceStub(box.box.mid("national", f"business-{MINISTER}"))


def bench_singles(box: RunningBox, n: int, persons: int) -> dict[str, Any]:
    stub = _business(box)
    ask = dict(affair="JT01010000000001", provider_agency_id=CHIYODA, items=["TM00000000000002"],
               conditions=ipb.InquiryConditions(fiscal_year=2025))
    for i in range(20):  # warm the channels
        stub.Inquire(ipb.MidInquireRequest(integrated_address_number=atena_number(MINISTER, i), **ask), timeout=T)
    lat = []
    for i in range(n):
        t = time.perf_counter()
        r = stub.Inquire(ipb.MidInquireRequest(
            integrated_address_number=atena_number(MINISTER, i % (persons // 2)), **ask), timeout=T)
        lat.append(time.perf_counter() - t)
        assert r.outcome == "provided"
    return {"calls": n, "p50_ms": 1000 * _pct(lat, 0.5), "p99_ms": 1000 * _pct(lat, 0.99),
            "mean_ms": 1000 * statistics.fmean(lat)}


class _NoOpProvider:
    """Attends for an agency and answers every call at once with canned bytes (no store, no
    sealing): what is left is the core's relay and its records."""

    def __init__(self, box: RunningBox, agency: int) -> None:
        self._out: queue.Queue[ppb.ProviderMessage | None] = queue.Queue()
        self._out.put(ppb.ProviderMessage(ready=ppb.ProviderReady()))
        self._ch = box.channel(f"agency-{agency}")
        self._stream = client.ProvisionServiceStub(self._ch).Attend(iter(self._out.get, None))
        header = sealing.ProvisionHeader(b"\0" * 12, MINISTER, agency, "beppyo2-1", ("local_tax_info",), 1,
                                         "provided").encode()
        self._canned = (header, os.urandom(600), os.urandom(64))
        threading.Thread(target=self._run, daemon=True).start()
        time.sleep(0.5)

    def _run(self) -> None:
        try:
            for call in self._stream:
                h, s, sig = self._canned
                self._out.put(ppb.ProviderMessage(answer=lpb.SealedProvision(
                    call_id=call.call_id, header=h, sealed=s, signature=sig)))
        except grpc.RpcError:
            pass

    def close(self) -> None:
        self._out.put(None)
        self._stream.cancel()
        self._ch.close()


def _core_rate(box: RunningBox, codes: list[bytes], seconds: float, concurrency: int) -> tuple[float, int]:
    """Inquire calls/s at the core as the minister's intermediate server, ``concurrency`` in flight."""
    private, public = sealing.new_recipient_key()
    del private
    stub = client.LinkageServiceStub(box.channel(f"agency-{MINISTER}"))
    stop = time.monotonic() + seconds
    done = [0]
    errors = [0]
    lock = threading.Lock()

    def worker(k: int) -> None:
        i = k
        while time.monotonic() < stop:
            try:
                stub.Inquire(lpb.InquireRequest(agency_code=codes[i % len(codes)], affair="B2.1",
                                                provider_agency_id=CHIYODA, information_items=["B2.1.2.1"],
                                                terms=lpb.ProvisionTerms(recipient_public_key=public)), timeout=T)
                with lock:
                    done[0] += 1
            except grpc.RpcError:
                with lock:
                    errors[0] += 1
            i += concurrency

    start = time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(worker, range(concurrency)))
    return done[0] / (time.monotonic() - start), errors[0]


def _minister_codes(box: RunningBox, n: int) -> list[bytes]:
    """The minister's own codes of persons 千代田区 holds (as its intermediate server holds them)."""
    root = box.data_dir("mid-national")
    db = sqlite3.connect(f"file:{root / 'mid.sqlite3'}?mode=ro", uri=True)
    rows = db.execute("SELECT code FROM codes WHERE tenant = ? ORDER BY atena LIMIT ?", (MINISTER, n)).fetchall()
    db.close()
    return [bytes(r[0]) for r in rows]


def bench_relay(box: RunningBox, seconds: float, concurrency: int, persons: int) -> dict[str, Any]:
    codes = _minister_codes(box, persons // 2)
    real, real_err = _core_rate(box, codes, seconds, concurrency)
    mid = box.pid("mid-municipal")
    os.kill(mid, signal.SIGSTOP)  # its stream stays open but answers nothing; ours replaces it
    noop = _NoOpProvider(box, CHIYODA)
    try:
        ceiling, noop_err = _core_rate(box, codes, seconds, concurrency)
    finally:
        noop.close()
        os.kill(mid, signal.SIGCONT)
    time.sleep(1.5)  # the municipal platform attends again
    return {"concurrency": concurrency, "real_per_s": real, "noop_per_s": ceiling, "errors": real_err + noop_err,
            "ratio": ceiling / real if real else float("nan")}


def bench_batches(box: RunningBox, size: int, batches: int, persons: int) -> dict[str, Any]:
    stub = _business(box)
    holders = persons // 2  # 千代田区 holds the first half

    def one(k: int) -> tuple[float, int, int]:
        first = (k * size) % max(1, holders - size + 1)
        t = time.perf_counter()
        r = stub.BatchInquire(ipb.MidBatchInquireRequest(
            integrated_address_numbers=[atena_number(MINISTER, p) for p in range(first, first + size)],
            affair="B2.1", provider_agency_id=CHIYODA, items=["local_tax_info"],
            conditions=ipb.InquiryConditions(fiscal_year=2025)), timeout=T)
        took = time.perf_counter() - t
        provided = sum(1 for a in r.answers if a.outcome == "provided")
        return took, provided, r.ByteSize()

    one(0)  # warm
    serial = [one(k) for k in range(batches)]
    start = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        pair = list(pool.map(one, range(batches)))
    two = time.perf_counter() - start
    assert all(p == size for _, p, _ in serial + pair), [p for _, p, _ in serial]
    per_batch = statistics.median(t for t, _, _ in serial)
    return {"size": size, "batches": batches, "median_s": per_batch, "serial_per_s": size / per_batch,
            "two_in_flight_per_s": size * batches / two, "response_bytes": serial[0][2]}


def bench_crypto(box: RunningBox, size: int, batches: int) -> dict[str, Any]:
    """Seal, sign, verify and open answers of a batch's size, as the two intermediate servers do."""
    from renkei.mid.store import MidStore  # noqa: F401  (the same store the answers come from)

    p = Platform(client_dir := _open_mid(box))
    atenas = [atena_number(CHIYODA, i) for i in range(size)]
    found = p.store.duplicates_for(CHIYODA, atenas, ["local_tax_info"], fiscal_year=2025)
    answer = {"persons": [{"index": i, "records": found.get(a, [])} for i, a in enumerate(atenas)]}
    plaintext = json.dumps(answer, ensure_ascii=False, separators=(",", ":")).encode()
    key = load_private_key(p.credentials(CHIYODA).private_key)
    cert = p.credentials(CHIYODA).certificate.read_bytes()
    ca = p.credentials(CHIYODA).ca.read_bytes()
    header = sealing.ProvisionHeader(b"\1" * 12, MINISTER, CHIYODA, "beppyo2-1", ("local_tax_info",), size,
                                     "provided")
    times = []
    for _ in range(batches):
        private, public = sealing.new_recipient_key()
        t = time.perf_counter()
        sealed = sealing.seal(header, plaintext, public)
        sig = sealing.sign(header, sealed, key)
        sealing.verify(header, sealed, sig, cert, ca)
        assert sealing.open_sealed(header, sealed, private) == plaintext
        times.append(time.perf_counter() - t)
    p.close()
    del client_dir
    return {"plaintext_bytes": len(plaintext), "crypto_s": statistics.median(times)}


def _open_mid(box: RunningBox) -> Any:
    from renkei.datadir import DataDir
    from renkei.mid.platform import SERVICE

    return DataDir(box.data_dir("mid-municipal"), SERVICE)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--persons", type=int, default=20_000)
    ap.add_argument("--singles", type=int, default=300)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--batches", type=int, default=4)
    ap.add_argument("--registrations", type=int, default=100_000)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    args = ap.parse_args()
    if args.batch * 2 > args.persons:
        ap.error("--persons must be at least twice --batch (千代田区 holds half of them)")
    out: dict[str, Any] = {"machine": f"{pyplatform.machine()}, {os.cpu_count()} CPUs",
                           "python": sys.version.split()[0]}
    with tempfile.TemporaryDirectory(prefix="renkei-bench-provision-") as tmp:
        root = Path(tmp)
        out["registration"] = bench_registration(args.registrations, root / "reg")
        t = time.perf_counter()
        box = start_box(root / "box", persons=args.persons, timeout=1800)
        out["seed_s"] = time.perf_counter() - t
        try:
            out["single"] = bench_singles(box, args.singles, args.persons)
            out["single"]["commit_floor_ms"] = 1000 * commit_floor(root)
            out["relay"] = bench_relay(box, args.seconds, args.concurrency, args.persons)
            out["batch"] = bench_batches(box, args.batch, args.batches, args.persons)
            out["crypto"] = bench_crypto(box, args.batch, args.batches)
        finally:
            box.terminate()
    b, c = out["batch"], out["crypto"]
    out["batch"]["without_encryption_per_s"] = b["size"] / (b["median_s"] - c["crypto_s"])
    out["batch"]["encryption_overhead"] = b["median_s"] / (b["median_s"] - c["crypto_s"])
    if args.json:
        print(json.dumps(out, ensure_ascii=False, indent=1))
        return 0
    r, s, rl = out["registration"], out["single"], out["relay"]
    print(f"machine: {out['machine']}, Python {out['python']}; demo box of {args.persons:,} persons seeded in "
          f"{out['seed_s']:.0f} s")
    print(f"副本 registration   {r['per_s']:>10,.0f} records/s   (floor, bare executemany: {r['floor_per_s']:,.0f}/s; "
          f"×{r['ratio']:.2f})")
    print(f"single provision    p50 {s['p50_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms at 1 in flight "
          f"({s['calls']} calls, mean {s['mean_ms']:.1f} ms); floor: 4 durable commits in sequence = "
          f"4 × {s['commit_floor_ms']:.2f} ms = {4 * s['commit_floor_ms']:.1f} ms")
    print(f"relay, {rl['concurrency']} in flight  real provider {rl['real_per_s']:,.0f}/s, no-op provider "
          f"{rl['noop_per_s']:,.0f}/s (ceiling ×{rl['ratio']:.2f}; errors {rl['errors']})")
    print(f"batch provision     {b['serial_per_s']:>10,.0f} persons/s one at a time ({b['size']:,} a batch, median "
          f"{b['median_s']:.2f} s), {b['two_in_flight_per_s']:,.0f}/s two in flight")
    print(f"  encryption        {c['crypto_s'] * 1000:.0f} ms a batch ({c['plaintext_bytes'] / 1e6:.1f} MB sealed, "
          f"signed, verified, opened): without it {b['without_encryption_per_s']:,.0f} persons/s; overhead "
          f"×{b['encryption_overhead']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
