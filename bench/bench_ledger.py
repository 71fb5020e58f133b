"""Ledger benchmark: durable appends, inclusion proofs, per-person look-ups, bytes on disk.

    python -m bench.bench_ledger [--batches 40] [--batch-size 10000]

Baselines are measured in the same run: (e) the I/O floor, one plain write + fdatasync of the
same packed record bytes per batch to one file (what any log that acknowledges only durable
records must at least do); hashlib SHA-256 over the same record bytes, (a) as one leaf hash per
record and (b) in bulk over the packed batch; (c) the previous design's layout (bundle, tile and
index files per batch, one syncfs). Prints the Markdown table for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import os
import platform
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from renkei import ledger
from renkei.datadir import DataDir

# The checkpoint history format (core_rs/src/ledger/store.rs): magic, then per stored checkpoint
# size u64 ‖ root 32 B ‖ Ed25519 signature 64 B, one at least every HISTORY_SPACING records.
HISTORY_MAGIC = 8
HISTORY_ENTRY = 8 + 32 + 64
HISTORY_SPACING = 256
SMALL_COMMITS = 128

def make_batches(n_batches: int, size: int, seed: int = 1) -> tuple[list[bytes], int]:
    """Packed batches of realistic, distinct records (random pseudonyms and permit ids)."""
    template = ledger.LedgerRecord(
        requester=131_016, provider=1, affair="JT00000000000042",
        items=("TM00000000000001", "TM00000000000002", "2-1"),
        table_hash=hashlib.sha256(b"table").digest(), pseudonym=bytes(32), permit_id=b"\x01" * 16,
        time=datetime(2026, 11, 26, tzinfo=UTC),
    ).encode()
    rec_len = len(template)
    rng = np.random.default_rng(seed)
    row = np.frombuffer(len(template).to_bytes(2, "big") + template, dtype=np.uint8)
    batches = []
    for _ in range(n_batches):
        a = np.tile(row, (size, 1))
        a[:, 2 + 81 : 2 + 113] = rng.integers(0, 256, (size, 32), dtype=np.uint8)  # pseudonym
        a[:, 2 + 65 : 2 + 81] = rng.integers(1, 256, (size, 16), dtype=np.uint8)  # permit id
        batches.append(a.tobytes())
    return batches, rec_len


def _pseudonym_of(batches: list[bytes], rec_len: int, batch_size: int, i: int) -> bytes:
    off = (i % batch_size) * (rec_len + 2) + 2 + 81
    return batches[i // batch_size][off : off + 32]


def du(path: Path) -> tuple[int, int, int]:
    """(apparent bytes, allocated bytes, files)."""
    apparent = allocated = files = 0
    for p in path.rglob("*"):
        if p.is_file():
            st = p.stat()
            apparent += st.st_size
            allocated += st.st_blocks * 512
            files += 1
    return apparent, allocated, files


def io_floor(batches: list[bytes], rec_len: int, where: str | None) -> float:
    """Seconds to make the same bytes durable in the same file layout, with nothing else: per
    batch one file per 256-record bundle and one 8 KiB level-0 tile per bundle, the 4-byte-per-
    record index, then one syncfs — the I/O any tlog-tiles log must do before acknowledging."""
    libc = ctypes.CDLL(None, use_errno=True)
    scratch = Path(tempfile.mkdtemp(prefix="bench-floor-", dir=where or os.getcwd()))
    tile = bytes(8192)
    try:
        dfd = os.open(scratch, os.O_RDONLY | os.O_DIRECTORY)
        t0 = time.perf_counter()
        for bi, b in enumerate(batches):
            step = 256 * (rec_len + 2)
            for k in range(0, len(b), step):
                (scratch / f"e{bi}-{k}").write_bytes(b[k : k + step])
                (scratch / f"t{bi}-{k}").write_bytes(tile)
            with open(scratch / "index", "ab") as f:
                f.write(bytes(4 * (len(b) // (rec_len + 2))))
            if libc.syncfs(dfd) != 0:
                raise OSError(ctypes.get_errno(), "syncfs failed")
        elapsed = time.perf_counter() - t0
        os.close(dfd)
        return elapsed
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def core_dir(path: Path) -> DataDir:
    """A core data directory with its keys, as `renkei core init` makes it."""
    from renkei.service.core import KEYS

    return DataDir.init(path, "core", KEYS)


def write_floor(batches: list[bytes], where: str | None) -> float:
    """Seconds for one plain write + fdatasync of each batch's packed bytes to one file."""
    scratch = Path(tempfile.mkdtemp(prefix="bench-floor-", dir=where or os.getcwd()))
    try:
        fd = os.open(scratch / "log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.write(fd, b"x")
        os.fdatasync(fd)
        t0 = time.perf_counter()
        for b in batches:
            os.write(fd, b)
            os.fdatasync(fd)
        elapsed = time.perf_counter() - t0
        os.close(fd)
        return elapsed
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def create_floor(batches: list[bytes], rec_len: int, where: str | None) -> float:
    """Seconds to create (empty) as many new files per batch as a tlog-tiles log must: one entry
    bundle and one level-0 tile per 256 records — the file-system cost of the layout alone."""
    scratch = Path(tempfile.mkdtemp(prefix="bench-create-", dir=where or os.getcwd()))
    try:
        t0 = time.perf_counter()
        for bi, b in enumerate(batches):
            for k in range(0, len(b) // (rec_len + 2), 256):
                for kind in ("e", "t"):
                    os.close(os.open(scratch / f"{kind}{bi}-{k}", os.O_WRONLY | os.O_CREAT, 0o644))
        return time.perf_counter() - t0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def cpu() -> float:
    t = os.times()
    return t.user + t.system


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=10_000)
    ap.add_argument("--proofs", type=int, default=200_000)
    ap.add_argument("--lookups", type=int, default=2_000, help="per-person look-ups timed")
    ap.add_argument("--repeat", type=int, default=3, help="append runs (fresh ledger each); median and best")
    ap.add_argument("--dir", default=None, help="where to put the ledger (default: a temp dir here)")
    args = ap.parse_args()
    batches, rec_len = make_batches(args.batches, args.batch_size)
    n = args.batches * args.batch_size
    runs: list[float] = []
    for _ in range(args.repeat - 1):
        scratch = Path(tempfile.mkdtemp(prefix="bench-ledger-", dir=args.dir or os.getcwd()))
        try:
            with ledger.Ledger(core_dir(scratch)) as lg:
                lg.append_batch(batches[0][: (rec_len + 2) * 10])
                t0 = time.perf_counter()
                for b in batches:
                    lg.append_batch(b)
                runs.append(time.perf_counter() - t0)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    root = Path(tempfile.mkdtemp(prefix="bench-ledger-", dir=args.dir or os.getcwd()))
    try:
        lg = ledger.Ledger(core_dir(root))
        lg.append_batch(batches[0][: (rec_len + 2) * 10])  # warm: key, files, code paths

        # Baseline (a): one hashlib leaf hash per record over the same bytes.
        t0 = time.perf_counter()
        for b in batches:
            mv = memoryview(b)
            for off in range(0, len(b), rec_len + 2):
                hashlib.sha256(b"\x00" + mv[off + 2 : off + 2 + rec_len]).digest()
        t_leaf = time.perf_counter() - t0
        # Baseline (b): hashlib over each packed batch in one call.
        t0 = time.perf_counter()
        for b in batches:
            hashlib.sha256(b).digest()
        t_bulk = time.perf_counter() - t0

        t_floor = io_floor(batches, rec_len, args.dir)
        t_wfloor = write_floor(batches, args.dir)

        t0, c0 = time.perf_counter(), cpu()
        for b in batches:
            lg.append_batch(b)
        runs.append(time.perf_counter() - t0)
        cpu_app = cpu() - c0
        t_wfloor = min(t_wfloor, write_floor(batches, args.dir))
        t_create = create_floor(batches, rec_len, args.dir)
        segments = len(list((lg.path / "wal").iterdir()))
        size = lg.size

        idx = np.random.default_rng(2).integers(0, size, args.proofs, dtype=np.uint64)
        lg._l.inclusion_proofs(idx[:1000], size)  # warm the tile cache a little
        t0 = time.perf_counter()
        flat, counts = lg._l.inclusion_proofs(idx, size)
        t_proofs = time.perf_counter() - t0
        assert len(flat) == 32 * int(counts.sum())
        t0 = time.perf_counter()
        for i in idx[:20_000]:
            lg._l.inclusion_proof(int(i), size)
        t_proof_single = time.perf_counter() - t0
        p = lg.prove_inclusion(int(idx[0]))
        p.verify()

        # Per-person look-ups (each person here has one record among `size`): the segment runs
        # against baseline (d), a numpy scan of a flat 4-byte prefix index (the previous design).
        want = np.random.default_rng(3).integers(0, n, args.lookups)
        people = [_pseudonym_of(batches, rec_len, args.batch_size, int(w)) for w in want]
        t0 = time.perf_counter()
        for ps in people:
            assert lg.records_for_pseudonym(ps, page_size=50).records
        t_lookup = time.perf_counter() - t0
        # A person with no records: the look-up reads one bucket of every index run (and scans the
        # in-memory tail), which prices a run.
        lg._l.settle_index()
        n_runs = lg._l.index_runs()
        strangers = [bytes(r) for r in np.random.default_rng(4).integers(0, 256, (args.lookups, 32), dtype=np.uint8)]
        t0 = time.perf_counter()
        for ps in strangers:
            assert not lg.records_for_pseudonym(ps, page_size=50).records
        t_miss = time.perf_counter() - t0
        flat = np.concatenate([np.frombuffer(b, dtype=np.uint8).reshape(-1, rec_len + 2)[:, 2 + 81 : 2 + 85]
                               for b in batches]).copy().view(">u4").ravel()
        t0 = time.perf_counter()
        for ps in people:
            assert np.flatnonzero(flat == int.from_bytes(ps[:4], "big"))[::-1].size
        t_scan = time.perf_counter() - t0
        history_bytes = (lg.path / "checkpoints").stat().st_size
        n_stored = (history_bytes - HISTORY_MAGIC) // HISTORY_ENTRY

        apparent, allocated, files = du(lg.path)
        wal_bytes = sum(p.stat().st_size for p in (lg.path / "wal").iterdir())
        open_bytes = sum(p.stat().st_size for p in (lg.path / "open").iterdir())
        record_bytes = size * rec_len
        per_app = (apparent - wal_bytes - record_bytes) / size
        per_alloc = (allocated - wal_bytes - record_bytes) / size
        t_verify0 = time.perf_counter()
        lg.verify()
        t_verify = time.perf_counter() - t_verify0
        lg.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    # The history under the gRPC server's coalesced commits of ~64 records (the worst case for it).
    small = Path(tempfile.mkdtemp(prefix="bench-ledger-small-", dir=args.dir or os.getcwd()))
    try:
        with ledger.Ledger(core_dir(small)) as sl:
            per = (rec_len + 2) * 64
            t0 = time.perf_counter()
            for i in range(SMALL_COMMITS):
                sl.append_batch(batches[0][i * per : (i + 1) * per])
            t_small = time.perf_counter() - t0
            small_n = sl.size
            small_hist = (sl.path / "checkpoints").stat().st_size
    finally:
        shutil.rmtree(small, ignore_errors=True)

    runs.sort()
    t_app = runs[len(runs) // 2]
    t_best = runs[0]
    rate = n / t_app
    print(f"## Ledger\n\nCommand: `python -m bench.bench_ledger --batches {args.batches} "
          f"--batch-size {args.batch_size}` ({platform.machine()}, {os.cpu_count()} CPUs, ext4 work disk, "
          f"one thread; load average {os.getloadavg()[0]:.1f} at the end: the disk and CPUs are shared)\n")
    print(f"{n:,} records of {rec_len} bytes in {args.batches} durable batches of {args.batch_size:,} "
          "(each batch: one write-ahead frame of the public leaves, openings and signed checkpoint, made "
          "durable by one fdatasync while the bundles, tiles, openings and index are written without sync; "
          "then the checkpoint renamed into place)\n")
    print("| measure | result |\n| --- | --- |")
    print(f"| durable appends, median of {len(runs)} runs | **{rate:,.0f} records/s** "
          f"({t_app / args.batches * 1e3:.2f} ms per batch) |")
    print(f"| durable appends, best run | {n / t_best:,.0f} records/s "
          f"({t_best / args.batches * 1e3:.2f} ms/batch) |")
    print(f"| CPU time of the process during the last run (user + system, both threads) | "
          f"{cpu_app / n * 1e9:,.0f} ns/record = {n / cpu_app:,.0f} records per CPU-second |")
    print(f"| baseline (e): I/O floor — one plain write + fdatasync of each batch's packed bytes, one file "
          f"(best of 2) | {n / t_wfloor:,.0f} rec/s ({t_wfloor / args.batches * 1e3:.2f} ms per batch) |")
    print(f"| append time (median) / baseline (e) | **{t_app / t_wfloor:.2f}×** (best {t_best / t_wfloor:.2f}×) |")
    print(f"| baseline (f): the layout's file-system floor — create (empty) one bundle and one level-0 tile "
          f"file per 256 records, nothing else | {n / t_create:,.0f} rec/s ({t_create / args.batches * 1e3:.2f} ms "
          f"per batch) |")
    print(f"| append time (median) / (baseline (e) + baseline (f)) | **{t_app / (t_wfloor + t_create):.2f}×** "
          f"(best {t_best / (t_wfloor + t_create):.2f}×) |")
    print(f"| write-ahead log segments at the end (rotated past 64 MiB) | {segments} |")
    print(f"| durable appends in {SMALL_COMMITS} commits of 64 records (the gRPC server's coalesced commits) | "
          f"{SMALL_COMMITS * 64 / t_small:,.0f} records/s = {t_small / SMALL_COMMITS * 1e3:.2f} ms per commit |")
    print(f"| baseline (a): hashlib SHA-256 leaf hash per record, same bytes | {n / t_leaf:,.0f} rec/s |")
    print(f"| append time (median) / baseline (a) | **{t_app / t_leaf:.2f}×** "
          f"(best {t_best / t_leaf:.2f}×) |")
    print(f"| baseline (b): hashlib SHA-256 over each packed batch (bulk) | {n / t_bulk:,.0f} rec/s |")
    print(f"| append time (median) / baseline (b) | {t_app / t_bulk:.2f}× (best {t_best / t_bulk:.2f}×) |")
    print(f"| baseline (c): the previous design's I/O — the same bundle, tile and index bytes written as "
          f"files, one syncfs per batch, no hashing | {n / t_floor:,.0f} rec/s |")
    print(f"| baseline (c) / baseline (b): what durability alone costs, in bulk-hash times | "
          f"{t_floor / t_bulk:.2f}× |")
    print(f"| append time (median) / baseline (c) | {t_app / t_floor:.2f}× (best {t_best / t_floor:.2f}×) |")
    print(f"| inclusion proofs, batch call (tree of {size:,}) | **{args.proofs / t_proofs:,.0f} proofs/s** |")
    print(f"| inclusion proofs, one Python call each | {20_000 / t_proof_single:,.0f} proofs/s |")
    print(f"| per-person look-ups, page of 50 with inclusion proofs (tree of {size:,}: "
          f"{n_runs} merged runs + tail) | **{args.lookups / t_lookup:,.0f} look-ups/s** |")
    print(f"| baseline (d): numpy scan of a flat 4-byte prefix index, per look-up, candidates only | "
          f"{args.lookups / t_scan:,.0f} look-ups/s |")
    print(f"| look-up time / baseline (d) | {t_lookup / t_scan:.2f}× |")
    per_run = t_miss / args.lookups / max(n_runs, 1)
    # 10^9 records = 15,258 full segments: at most 13 runs (no number below 16,383 has more than
    # 13 one-bits); every run's look-up reads one bucket of ~256 entries whatever its size.
    print(f"| look-ups of a person with no records ({size // 65536} full segments in {n_runs} merged runs "
          f"+ the in-memory tail) | {args.lookups / t_miss:,.0f} look-ups/s = {t_miss / args.lookups * 1e6:.1f} µs "
          f"each; projected at 1,000,000,000 records (≤ 13 runs), counting the whole look-up as per-run "
          f"cost: **{per_run * 13 * 1e3:.2f} ms** |")
    print(f"| full `verify` (recompute every record and tile) | {size / t_verify:,.0f} records/s |")
    print(f"| on disk, apparent size, without the write-ahead log | {apparent - wal_bytes:,} B = records + "
          f"**{per_app:.2f} B/record** ({files:,} files), of which private openings "
          f"{open_bytes / size:.2f} B/record |")
    print(f"| write-ahead log (bounded: rotated past 64 MiB) | {wal_bytes:,} B |")
    print(f"| checkpoint history (`checkpoints`) | {n_stored} stored checkpoints × {HISTORY_ENTRY} B "
          f"+ {HISTORY_MAGIC} B = {history_bytes:,} B = {history_bytes / size:.3f} B/record |")
    print(f"| checkpoint history after {SMALL_COMMITS} commits of 64 records ({small_n:,} records) | "
          f"{small_hist:,} B = {small_hist / small_n:.3f} B/record "
          f"({(small_hist - HISTORY_MAGIC) // HISTORY_ENTRY} entries: {HISTORY_ENTRY}/{HISTORY_SPACING} = "
          f"{HISTORY_ENTRY / HISTORY_SPACING:.3f} B/record, + the {HISTORY_MAGIC} B header once) |")
    print(f"| on disk, allocated blocks, without the write-ahead log | {allocated - wal_bytes:,} B = records + "
          f"{per_alloc:.2f} B/record |")
    print()
    tile = 32 * (1 + 1 / 256 + 1 / 65536)
    run = 5 + 1028 / 65536
    public = 2 + tile
    print("Per-record overhead arithmetic (independent of ledger size): public — 2 B bundle length prefix + "
          f"32 B level-0 tile hash + 32/256 B level-1 + 32/65,536 B level-2 = {public:.2f} B (the leaf itself is "
          f"as long as the record: the commitment takes the pseudonym's 32 bytes), + the checkpoint history at most "
          f"{HISTORY_ENTRY / HISTORY_SPACING:.2f} B; private — the opening 48 B (salt 16 ‖ pseudonym 32) + the "
          f"per-person index {run:.3f} B (5 B per record in runs of any size, 1,028 B of bucket directory per "
          f"65,536 records) = {48 + run:.2f} B; together {public + HISTORY_ENTRY / HISTORY_SPACING + 48 + run:.2f} "
          "B/record, plus the write-ahead log (at most 64 MiB + one batch, whatever the ledger's size). "
          "Allocated blocks add the unused tail of each file's last 4 KiB block: tiles are exactly 8,192 B "
          "(none), a full bundle of 256 records wastes on average 2 KiB, i.e. about 8 B/record.")


if __name__ == "__main__":
    main()
