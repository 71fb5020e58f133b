"""The ledger's PostgreSQL sequencer and integrator (renkei.store.tlog) on a primary with a
synchronous standby made for the run (tests/pg_cluster.py; both on this machine).

    python -m bench.bench_pg_ledger [--batches 20] [--batch-size 10000]

Measures durable appends (sequencing: one transaction per batch, acknowledged once the standby
has flushed it), single-entry appends (the commit round trip), and integration (tiles and
checkpoint, one transaction per step). Baseline in the same run: one INSERT of each batch's
packed bytes as one bytea and its commit — the floor of any design that makes the batch durable
on both nodes. Prints the Markdown table for docs/BENCHMARKS.md.

    python -m bench.bench_pg_ledger --hashing-only [--batches 20] [--batch-size 10000]

The integrator's hashing alone (no database): the engine's ``integrate_leaves`` (leaf hashes,
right edge, every tile and bundle the growth writes, the root) against the pure-Python path of
``renkei.store.tlog`` (``tiles_for`` + ``push``) on the same public leaves, in steps of
``INTEGRATE_BATCH``.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time

from bench.bench_ledger import make_batches
from bench.common import machine
from renkei._core import ledger as _l
from renkei.store import tlog
from renkei.store.tlog import INTEGRATE_BATCH, PgLog, split_bundle
from tests.pg_cluster import PgCluster


def hashing(batches: list[list[bytes]]) -> tuple[float, float, int]:
    """(engine records/s, pure-Python records/s, records) of the integrator's hashing."""
    leaves = [e for b in batches for e in b]
    steps = [leaves[i:i + INTEGRATE_BATCH] for i in range(0, len(leaves), INTEGRATE_BATCH)]
    packed = [tlog.bundle(s) for s in steps]
    start = time.perf_counter()
    edge, roots = b"", []
    for p in packed:
        edge, _n, root, _tiles = _l.integrate_leaves(edge, p)
        roots.append(root)
    engine = time.perf_counter() - start
    start = time.perf_counter()
    py_edge: list[bytes] = []
    tiles: dict[str, bytes] = {}
    size = 0
    for step, root in zip(steps, roots, strict=True):
        hashes = [tlog.leaf_hash(e) for e in step]
        tiles.update(tlog.tiles_for(tiles.get, size, step, hashes))
        for h in hashes:
            tlog.push(py_edge, size, h)
            size += 1
        assert tlog.edge_root(py_edge) == root
    python = time.perf_counter() - start
    return len(leaves) / engine, len(leaves) / python, len(leaves)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=10_000)
    p.add_argument("--singles", type=int, default=300)
    p.add_argument("--hashing-only", action="store_true")
    args = p.parse_args(argv)
    packed, rec_len = make_batches(args.batches, args.batch_size)
    if args.hashing_only:
        # The integrator sees public leaves: prepare them as the sequencer does.
        leaves = [split_bundle(_l.prepare_records(b, i * args.batch_size, 1)[0]) for i, b in enumerate(packed)]
        engine, python, n = hashing(leaves)
        print(f"Command: `python -m bench.bench_pg_ledger --hashing-only --batches {args.batches} "
              f"--batch-size {args.batch_size}` ({machine()})\n")
        print("| integrator hashing, steps of 16,384 public leaves of "
              f"{len(leaves[0][0])} B ({n:,} records) | records/s |\n| --- | --- |")
        print(f"| engine `integrate_leaves` (leaf hashes, edge, tiles, bundles, root) | **{engine:,.0f}** |")
        print(f"| pure Python (`tlog.tiles_for` + `push`, the path it replaces) | {python:,.0f} |")
        print(f"| engine / Python | **{engine / python:.1f}×** |")
        return 0
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
