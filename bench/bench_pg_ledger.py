"""The ledger's PostgreSQL sequencer and integrator (renkei.store.tlog) on a primary with a
synchronous standby made for the run (tests/pg_cluster.py; both on this machine).

    python -m bench.bench_pg_ledger [--batches 20] [--batch-size 10000]

Measures durable appends (sequencing: one transaction per batch, acknowledged once the standby
has flushed it), single-entry appends (the commit round trip), and integration (tiles and
checkpoint, one transaction per step). Baseline in the same run: one INSERT of each batch's
packed bytes as one bytea and its commit — the floor of any design that makes the batch durable
on both nodes. Prints the Markdown table for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time

from bench.bench_ledger import make_batches
from bench.common import machine
from renkei.store.tlog import INTEGRATE_BATCH, PgLog, split_bundle
from tests.pg_cluster import PgCluster


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=10_000)
    p.add_argument("--singles", type=int, default=300)
    args = p.parse_args(argv)
    packed, rec_len = make_batches(args.batches, args.batch_size)
    batches = [split_bundle(b) for b in packed]
    cluster = PgCluster.start()
    try:
        url = cluster.create_database("bench")
        log = PgLog(url, "renkei.bench/pg-ledger", hashlib.sha256(b"bench").digest(),
                    max_pending=args.batches * args.batch_size + args.singles + 1)
        assert log.elect()
        # Baseline: the same bytes, one bytea per batch, one synchronously replicated commit.
        with cluster.primary.connect("bench") as conn:
            conn.execute("CREATE TABLE floor (id serial PRIMARY KEY, data bytea NOT NULL)")
            floor = []
            for b in packed:
                start = time.perf_counter()
                with conn.transaction():
                    conn.execute("INSERT INTO floor(data) VALUES (%s)", (b,))
                floor.append(time.perf_counter() - start)
        seq = []
        for batch in batches:
            start = time.perf_counter()
            log.append(batch)
            seq.append(time.perf_counter() - start)
        start = time.perf_counter()
        size = 0
        steps = 0
        while size < log.sequenced():
            size = log.integrate(limit=INTEGRATE_BATCH)
            steps += 1
        integrate_s = time.perf_counter() - start
        singles = []
        for i in range(args.singles):
            start = time.perf_counter()
            log.append([batches[0][i % len(batches[0])]])
            singles.append(time.perf_counter() - start)
        log.close()
    finally:
        cluster.stop()
    n = args.batch_size
    med, best, fmed = statistics.median(seq), min(seq), statistics.median(floor)
    print(f"Command: `python -m bench.bench_pg_ledger --batches {args.batches} --batch-size {n}` ({machine()}; "
          f"PostgreSQL 15 primary + synchronous standby on the same machine, loopback)\n")
    print("| measure | result |\n| --- | --- |")
    print(f"| durable appends (sequencing), batches of {n:,} records of {rec_len} B, median | "
          f"**{n / med:,.0f} records/s** ({med * 1000:.1f} ms per batch) |")
    print(f"| durable appends, best batch | {n / best:,.0f} records/s ({best * 1000:.1f} ms) |")
    print(f"| baseline: one INSERT of the batch's packed bytes as one bytea + commit, median | "
          f"{n / fmed:,.0f} records/s ({fmed * 1000:.1f} ms per batch) |")
    print(f"| sequencing / baseline | **{med / fmed:.2f}×** |")
    print(f"| integration (leaf hashes, tiles, bundles, signed checkpoint; {steps} transactions) | "
          f"{size / integrate_s:,.0f} records/s |")
    sm = statistics.median(singles)
    print(f"| single-entry appends, one after another (the commit round trip), median | "
          f"{1 / sm:,.0f} appends/s ({sm * 1000:.2f} ms) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
