"""Two core front-ends on one PostgreSQL store (docs/arch/store.md, issue #16): `renkei up
--core-frontends 2` starts core A and core-2 B on the same data directory (the same keys), each a
process of its own, and the intermediate servers attend both. Codes acquired through A
translate through B; both append to one ledger; then A is killed with SIGKILL while an agency
inquires through B: B keeps answering (the provider's answers reach it on its own attendance
stream), the ledger's integrator role moves to B, and every record B acknowledged is proven in
the tree."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import grpc
import psycopg
import pytest

from renkei import client
from renkei._proto.renkei.v1 import linkage_service_pb2 as lpb
from renkei._proto.renkei.v1 import number_service_pb2 as npb
from renkei._proto.renkei.v1 import oversight_service_pb2 as opb
from renkei.ledger import verify_checkpoint, verify_inclusion
from tests.grpc_server import RunningBox, start_box
from tests.pg_cluster import PgCluster, pg_bindir
from tests.provision_helpers import batch_inquiry

T = 20
MINISTER, CHIYODA = 4, 1
AFFAIR, ITEM = "B2.1", "B2.1.2.1"


def acquire(box: RunningBox, target: str, principal: str, numbers: list[str]) -> bytes:
    with client.principal_channel(principal, target, pki=box.pki) as core, box.channel(principal, "jlis") as jlis:
        out, status = client.acquire_codes(client.LinkageServiceStub(core), client.NumberServiceStub(jlis), numbers,
                                           timeout=T)
    assert (status == 0).all(), status
    return bytes(out)


def integrator_epoch(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT epoch FROM ledger.int_coord WHERE id = 1").fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.slow
@pytest.mark.skipif(pg_bindir() is None, reason="PostgreSQL server binaries are not installed")
def test_two_front_ends_share_one_store_and_one_survives_the_other(tmp_path: Path) -> None:
    cluster = PgCluster.start()
    try:
        url = cluster.create_database("renkei_frontends")
        box = start_box(tmp_path / "box", "--core-store", url, "--core-frontends", "2")
        try:
            a_target, b_target = box.target("core"), box.target("core-2")
            assert box.data_dir("core") == box.root / "core" and box.pid("core") != box.pid("core-2")
            with box.channel("jlis", "jlis") as ch:
                raw = client.NumberServiceStub(ch).RegisterTestPopulation(
                    npb.RegisterTestPopulationRequest(count=40, seed=7), timeout=T).individual_numbers
            people = [f"{int.from_bytes(raw[i:i + 8], 'little'):012d}" for i in range(0, len(raw), 8)]
            # Acquisitions complete on the front-end J-LIS forwards to (A: the codes wait in its
            # memory under their 取得番号, docs/arch/store.md); the holdings they make are shared.
            mine = acquire(box, a_target, "agency-4", people)
            acquire(box, a_target, "agency-1", people)

            # B translates codes A issued (its follower applied A's holdings events).
            def inquire(target: str) -> lpb.BatchInquireResponse:
                with client.principal_channel("agency-4", target, pki=box.pki) as ch:
                    r: lpb.BatchInquireResponse = client.LinkageServiceStub(ch).BatchInquire(
                        batch_inquiry(mine, AFFAIR, CHIYODA, [ITEM]), timeout=T)
                    return r

            ra, rb = inquire(a_target), inquire(b_target)
            assert len(ra.outcomes) == len(rb.outcomes) == len(people)
            assert ra.first_record_sequence != rb.first_record_sequence  # one ledger, two appenders

            # Who integrates the ledger now; A's death must hand it to B if it is A.
            epoch_before = integrator_epoch(url)
            acked: list[tuple[int, int]] = []
            failed: list[str] = []
            marks: dict[str, float] = {}
            stop = threading.Event()

            def agency() -> None:
                with client.principal_channel("agency-4", b_target, pki=box.pki) as ch:
                    stub = client.LinkageServiceStub(ch)
                    while not stop.is_set():
                        started = time.monotonic()
                        try:
                            r = stub.BatchInquire(batch_inquiry(mine, AFFAIR, CHIYODA, [ITEM]), timeout=T)
                        except grpc.RpcError as e:
                            failed.append(f"{e.code()} {e.details()}")
                            time.sleep(0.05)
                            continue
                        acked.append((r.first_record_sequence, len(r.outcomes)))
                        if r.HasField("provision"):
                            acked.append((r.provision_record_sequence, len(r.outcomes)))
                        if "killed" in marks and started > marks["killed"] and "first_after" not in marks:
                            marks["first_after"] = time.monotonic()

            thread = threading.Thread(target=agency)
            thread.start()
            time.sleep(2.0)
            before = len(acked)
            marks["killed"] = time.monotonic()
            os.kill(box.pid("core"), signal.SIGKILL)  # front-end A dies; `renkei up` does not restart it
            deadline = time.monotonic() + 30
            while ("first_after" not in marks or len(acked) < before + 20) and time.monotonic() < deadline:
                time.sleep(0.1)
            stop.set()
            thread.join(timeout=60)
            assert "first_after" in marks, \
                f"front-end B acknowledged nothing after A died ({before} before, {len(acked)} in all; {failed[:3]})"
            gap = marks["first_after"] - marks["killed"]
            records = sum(n for _, n in acked)
            print(f"\nfront-ends: {len(acked)} record runs ({records} records) acknowledged by B, {before} before A's "
                  f"kill -9; first acknowledged after it {gap:.2f} s later; {len(failed)} calls failed")
            assert failed == [], failed[:5]
            # B acknowledged appends after A died, so B integrates (a new epoch if A had held it).
            assert integrator_epoch(url) >= epoch_before
            assert any(line.startswith("[core-2]") and "integrates the ledger" in line
                       for line in box.output().splitlines())

            with client.principal_channel("oversight", b_target, pki=box.pki) as och, \
                    client.principal_channel("agency-4", b_target, pki=box.pki) as ch:
                oversight = client.OversightServiceStub(och)
                keys = client.LinkageServiceStub(ch).GetPublicKeys(lpb.GetPublicKeysRequest(), timeout=T).keys
                vkey = next(k for k in keys if k.purpose == "checkpoint").note_verifier_key
                cp = oversight.GetLatestCheckpoint(opb.GetLatestCheckpointRequest(), timeout=T)
                verify_checkpoint(cp.note, vkey)
                checked = 0
                for first, n in [*acked, (ra.first_record_sequence, len(ra.outcomes))]:
                    for seq in range(first, first + n):
                        p = oversight.GetInclusionProof(opb.GetInclusionProofRequest(
                            leaf_index=seq, tree_size=cp.tree_size), timeout=T)
                        verify_inclusion(p.leaf_index, p.tree_size, p.leaf_hash, list(p.hashes), cp.root_hash)
                        checked += 1
                assert checked == records + len(ra.outcomes)
        finally:
            box.terminate()
    finally:
        cluster.stop()
