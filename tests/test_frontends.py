"""Two core front-ends on one PostgreSQL store (docs/arch/store.md, issue #16): `renkei up
--core-frontends 2` starts core A and core-2 B on the same data directory (the same keys), each a
process of its own, and the intermediate servers attend both. Codes reserved and collected at B
while J-LIS forwards to A wait in the store between the two; both front-ends append to one
ledger. Then A is killed with SIGKILL while an agency inquires through B and another acquires
codes through B: B keeps answering (the provider's answers reach it on its own attendance
stream), J-LIS resends its forwards to B, the ledger's integrator role moves to B, every record B
acknowledged is proven in the tree, every acknowledged acquisition is a holding, and the
commission's next approval reaches the core through B."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import signal
import threading
import time
from pathlib import Path

import grpc
import psycopg
import pytest

from renkei import client
from renkei._proto.renkei.v1 import admin_service_pb2 as apb
from renkei._proto.renkei.v1 import linkage_service_pb2 as lpb
from renkei._proto.renkei.v1 import number_service_pb2 as npb
from renkei._proto.renkei.v1 import oversight_service_pb2 as opb
from renkei._proto.renkei.v1 import pia_review_service_pb2 as rpb
from renkei._proto.renkei.v1.pia_review_service_pb2_grpc import PiaReviewServiceStub
from renkei.ledger import verify_checkpoint, verify_inclusion
from renkei.pki.ca import DevelopmentCA
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
                    npb.RegisterTestPopulationRequest(count=400, seed=7), timeout=T).individual_numbers
            everyone = [f"{int.from_bytes(raw[i:i + 8], 'little'):012d}" for i in range(0, len(raw), 8)]
            people = everyone[:40]
            # Reserved and collected at B, forwarded by J-LIS to A (its first front-end): the codes
            # wait in the store under their 取得番号 (docs/arch/store.md), not in A's memory.
            mine_all = acquire(box, b_target, "agency-4", everyone)
            mine = mine_all[:16 * len(people)]
            acquire(box, b_target, "agency-1", people)

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

            acquired: list[tuple[float, int]] = []  # (when, chunk) acknowledged to agency 1
            acq_failed: list[str] = []

            def acquirer() -> None:
                with client.principal_channel("agency-1", b_target, pki=box.pki) as core, \
                        box.channel("agency-1", "jlis") as jlis:
                    k = 1
                    while not stop.is_set():
                        chunk = everyone[k * 10:(k + 1) * 10]
                        try:
                            _codes, status = client.acquire_codes(client.LinkageServiceStub(core),
                                                                  client.NumberServiceStub(jlis), chunk, timeout=T)
                        except grpc.RpcError as e:
                            acq_failed.append(f"{e.code()} {e.details()}")
                            time.sleep(0.05)
                            continue
                        if (status != 0).any():
                            acq_failed.append(f"statuses {status.tolist()}")
                        else:
                            acquired.append((time.monotonic(), k))
                        k = k % 39 + 1

            thread = threading.Thread(target=agency)
            thread.start()
            acq_thread = threading.Thread(target=acquirer)
            acq_thread.start()
            time.sleep(2.0)
            before = len(acked)
            marks["killed"] = time.monotonic()
            os.kill(box.pid("core"), signal.SIGKILL)  # front-end A dies; `renkei up` does not restart it
            deadline = time.monotonic() + 30
            while ("first_after" not in marks or len(acked) < before + 20
                   or sum(1 for t, _ in acquired if t > marks["killed"]) < 5) and time.monotonic() < deadline:
                time.sleep(0.1)
            stop.set()
            thread.join(timeout=60)
            acq_thread.join(timeout=60)
            assert "first_after" in marks, \
                f"front-end B acknowledged nothing after A died ({before} before, {len(acked)} in all; {failed[:3]})"
            gap = marks["first_after"] - marks["killed"]
            records = sum(n for _, n in acked)
            print(f"\nfront-ends: {len(acked)} record runs ({records} records) acknowledged by B, {before} before A's "
                  f"kill -9; first acknowledged after it {gap:.2f} s later; {len(failed)} calls failed")
            assert failed == [], failed[:5]
            after = [k for t, k in acquired if t > marks["killed"]]
            print(f"acquisitions: {len(acquired)} chunks of 10 acknowledged, {len(after)} after A's kill -9; "
                  f"{len(acq_failed)} failed")
            assert acq_failed == [], acq_failed[:5]
            assert len(after) >= 5, "acquisitions stopped with front-end A"
            assert any(line.startswith("[jlis]") and "unavailable" in line and "trying" in line
                       for line in box.output().splitlines()), "J-LIS never moved to B"
            # Every acknowledged acquisition is a holding: agency 4's inquiries to 千代田区 (agency 1)
            # about those persons are never PROVIDER_NOT_HOLDING (5).
            held = sorted({k for _, k in acquired})
            codes4 = b"".join(mine_all[16 * i:16 * (i + 1)] for k in held for i in range(k * 10, (k + 1) * 10))
            with client.principal_channel("agency-4", b_target, pki=box.pki) as ch:
                r = client.LinkageServiceStub(ch).BatchInquire(batch_inquiry(codes4, AFFAIR, CHIYODA, [ITEM]),
                                                               timeout=T)
            assert len(r.outcomes) == 10 * len(held) and 5 not in bytes(r.outcomes), bytes(r.outcomes)
            acked.append((r.first_record_sequence, len(r.outcomes)))
            if r.HasField("provision"):
                acked.append((r.provision_record_sequence, len(r.outcomes)))
            records = sum(n for _, n in acked)
            # B acknowledged appends after A died, so B integrates (a new epoch if A had held it).
            assert integrator_epoch(url) >= epoch_before
            assert any(line.startswith("[core-2]") and "integrates the ledger" in line
                       for line in box.output().splitlines())

            # The commission's decisions reach the core through B now (the ppc delivers to the first
            # front-end that answers; applying is idempotent).
            with client.principal_channel("operator", b_target, pki=box.pki) as ch:
                agency = client.AdminServiceStub(ch).CreateAgency(apb.CreateAgencyRequest(
                    name="テスト町長", type_ids=["municipal_mayor"], local_government_code="131024"), timeout=T)
            DevelopmentCA(box.pki).issue_agency_certificate(agency.agency_id, "テスト町長")
            me = f"agency-{agency.agency_id}"
            with box.channel(me, "ppc") as pch:
                pia = PiaReviewServiceStub(pch).SubmitPia(rpb.SubmitPiaRequest(
                    level=rpb.PIA_LEVEL_FULL, title="住民基本台帳事務 全項目評価書", files=["住民基本台帳ファイル"],
                    document_sha256=hashlib.sha256(b"pia").digest()), timeout=T)
            with box.channel("oversight", "ppc") as pch:
                PiaReviewServiceStub(pch).DecidePia(rpb.DecidePiaRequest(
                    pia_id=pia.pia_id, kind=rpb.PIA_DECISION_KIND_APPROVED,
                    expires_on=(dt.date.today() + dt.timedelta(days=700)).isoformat()), timeout=T)

            def reserve() -> bool:
                with client.principal_channel(me, b_target, pki=box.pki) as ch:
                    try:
                        client.LinkageServiceStub(ch).ReserveAcquisitionNumbers(
                            lpb.ReserveAcquisitionNumbersRequest(count=1), timeout=T)
                        return True
                    except grpc.RpcError:
                        return False

            deadline = time.monotonic() + 30
            while not reserve():
                assert time.monotonic() < deadline, "the approval never reached front-end B"
                time.sleep(0.2)

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
