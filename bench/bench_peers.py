"""The provision ledger beside a peer RFC 6962 implementation, on the same records, same run.

    .venv/bin/python -m bench.bench_peers [--records 200000] [--proofs 200000] [--build]

The peer is ct-merkle (Rust, in memory: ``bench/ctmerkle/``, a separate crate outside the
workspace; ``--build`` builds it, a few seconds once its sources are fetched). Both build the
tree of the same records (the ledger bench's realistic 171-byte provision records, as the ledger
stored them, with their sequence numbers); the roots must be equal, which shows the two compute
the same RFC 6962 tree. Compared:

* appends: the ledger's durable batches (tiles and bundles written, one syncfs, signed
  checkpoint) against ct-merkle's in-memory ``push`` (no disk, no signature);
* inclusion proofs for the same random indices: the ledger's batch call (tiles from disk
  through the page cache) against ct-merkle's ``prove_inclusion`` (all nodes in memory).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.bench_ledger import core_dir, make_batches
from bench.common import machine
from renkei import ledger

REPO = Path(__file__).resolve().parent.parent
MANIFEST = REPO / "bench" / "ctmerkle" / "Cargo.toml"
TARGET = REPO / "target" / "ctmerkle-bench"
BINARY = TARGET / "release" / "renkei-ctmerkle-bench"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--batch-size", type=int, default=10_000)
    ap.add_argument("--proofs", type=int, default=200_000)
    ap.add_argument("--build", action="store_true", help="build the ct-merkle bench binary first")
    args = ap.parse_args()
    if args.build:
        subprocess.run(["cargo", "build", "--release", "--manifest-path", str(MANIFEST), "--target-dir",
                        str(TARGET)], check=True)
    batches, rec_len = make_batches(max(1, args.records // args.batch_size), args.batch_size, seed=5)
    n = len(batches) * args.batch_size
    idx = np.random.default_rng(6).integers(0, n, args.proofs, dtype=np.uint64)
    work = Path(tempfile.mkdtemp(prefix="bench-peers-", dir=REPO / "target" if (REPO / "target").is_dir() else None))
    try:
        with ledger.Ledger(core_dir(work / "data")) as lg:
            t0 = time.perf_counter()
            for b in batches:
                lg.append_batch(b)
            t_append = time.perf_counter() - t0
            ours_root = lg.checkpoint().root
            t0 = time.perf_counter()
            flat, counts = lg._l.inclusion_proofs(idx, n)
            t_proofs = time.perf_counter() - t0
            assert len(flat) == 32 * int(counts.sum())
            # The ledger stamps each record's sequence number into it: the peer gets the records
            # as stored, so that both hash the same leaves.
            stored = b"".join(len(e).to_bytes(2, "big") + e for e in map(lg._l.entry, range(n)))
        peer = None
        if BINARY.exists():
            (work / "records.bin").write_bytes(stored)
            (work / "indices.bin").write_bytes(idx.astype("<u8").tobytes())
            out = subprocess.run([str(BINARY), str(work / "records.bin"), str(work / "indices.bin")],
                                 capture_output=True, text=True, check=True)
            peer = json.loads(out.stdout)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    append = n / t_append
    proofs = len(idx) / t_proofs
    print(f"machine: {machine()}\n")
    print(f"{n:,} provision records of {rec_len} bytes; {len(idx):,} inclusion proofs at random indices\n")
    print("| what | rate | note |\n| --- | ---: | --- |")
    if peer is None:
        print(f"| ledger append, durable batches of {args.batch_size:,} | {append:,.0f}/s | "
              f"(ct-merkle peer skipped: {BINARY} not built; pass --build) |")
        print(f"| ledger inclusion proofs, batch call | {proofs:,.0f}/s | |")
        return
    same = bytes.fromhex(peer["root"]) == ours_root
    if not same:
        raise SystemExit(f"roots differ: ledger {ours_root.hex()} ct-merkle {peer['root']}")
    print(f"| ledger append, durable batches of {args.batch_size:,} | {append:,.0f}/s | "
          f"{append / peer['append_rate']:.2f}× ct-merkle in memory; same root |")
    print(f"| ct-merkle push, in memory | {peer['append_rate']:,.0f}/s | peer baseline (no disk, no signature) |")
    print(f"| ledger inclusion proofs, batch call | {proofs:,.0f}/s | {proofs / peer['proof_rate']:.2f}× ct-merkle |")
    print(f"| ct-merkle prove_inclusion, in memory | {peer['proof_rate']:,.0f}/s | peer baseline |")


if __name__ == "__main__":
    main()
