"""Kill -9 of the PostgreSQL primary while one agency runs inquiries and another acquires codes
through a running core whose store is on it (docs/arch/store.md, issue #16): the standby is
promoted, the core reconnects by itself, every acknowledged record (照会 and 提供) has an inclusion
proof under a checkpoint after the failover, a consistency proof from the last checkpoint seen
before the crash verifies, every acknowledged acquisition is a holding, and the box's witness
cosigns a checkpoint after the failover. Prints the failover time (kill → first acknowledged
inquiry) and the calls that failed in between."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc
import pytest

from renkei import client
from renkei._proto.renkei.v1 import linkage_service_pb2 as lpb
from renkei._proto.renkei.v1 import number_service_pb2 as npb
from renkei._proto.renkei.v1 import oversight_service_pb2 as opb
from renkei.ledger import verify_checkpoint, verify_consistency, verify_inclusion
from renkei.service.status import error_info
from tests.pg_cluster import PgCluster, pg_bindir
from tests.provision_helpers import batch_inquiry
from tests.tlog_witness_spec import WitnessKey

T = 20
MINISTER, CHIYODA = 4, 1
AFFAIR, ITEM = "B2.1", "B2.1.2.1"


def _codes(box: object, principal: str, numbers: list[str]) -> bytes:
    from tests.grpc_server import RunningBox

    assert isinstance(box, RunningBox)
    with box.channel(principal) as core, box.channel(principal, "jlis") as jlis:
        out, status = client.acquire_codes(client.LinkageServiceStub(core), client.NumberServiceStub(jlis), numbers,
                                           timeout=T)
    assert (status == 0).all(), status
    return bytes(out)


@pytest.mark.slow
@pytest.mark.skipif(pg_bindir() is None, reason="PostgreSQL server binaries are not installed")
def test_inquiries_ride_through_a_failover_of_the_ledgers_store(tmp_path: Path) -> None:
    from tests.grpc_server import start_box

    cluster = PgCluster.start()
    try:
        box = start_box(tmp_path / "box", "--core-store", cluster.create_database("renkei_ledger_failover"))
        try:
            with box.channel("jlis", "jlis") as ch:
                raw = client.NumberServiceStub(ch).RegisterTestPopulation(
                    npb.RegisterTestPopulationRequest(count=400, seed=11), timeout=T).individual_numbers
            everyone = [f"{int.from_bytes(raw[i:i + 8], 'little'):012d}" for i in range(0, len(raw), 8)]
            people = everyone[:20]
            mine_all = _codes(box, "agency-4", everyone)
            mine = mine_all[:16 * len(people)]
            _codes(box, "agency-1", people)  # the provider holds them too
            acked: list[tuple[int, int]] = []  # (first sequence, count) of every acknowledged record run
            failed: list[str] = []
            other: list[str] = []
            marks: dict[str, float] = {}
            seen: dict[str, opb.Checkpoint] = {}
            stop = threading.Event()

            def agency() -> None:
                with box.channel("agency-4") as ch, box.channel("oversight") as och:
                    stub = client.LinkageServiceStub(ch)
                    oversight = client.OversightServiceStub(och)
                    while not stop.is_set():
                        started = time.monotonic()
                        try:
                            r = stub.BatchInquire(batch_inquiry(mine, AFFAIR, CHIYODA, [ITEM]), timeout=T)
                        except grpc.RpcError as e:
                            info = error_info(e)
                            if e.code() == grpc.StatusCode.UNAVAILABLE and info is not None \
                                    and info.reason == "STORE_UNAVAILABLE":
                                failed.append(info.reason)
                            else:
                                other.append(f"{e.code()} {e.details()}")
                            time.sleep(0.05)
                            continue
                        n = len(r.outcomes)
                        acked.append((r.first_record_sequence, n))
                        if r.HasField("provision"):
                            acked.append((r.provision_record_sequence, n))
                        if "killed" not in marks:
                            # The last checkpoint an outside reader saw before the crash.
                            seen["before"] = oversight.GetLatestCheckpoint(opb.GetLatestCheckpointRequest(),
                                                                           timeout=T)
                        elif started > marks["killed"] and "first_after" not in marks:
                            marks["first_after"] = time.monotonic()

            acquired: list[tuple[float, int]] = []  # (when, chunk) acknowledged to agency 1
            acq_failed: list[str] = []
            acq_other: list[str] = []

            def acquirer() -> None:
                with box.channel("agency-1") as core, box.channel("agency-1", "jlis") as jlis:
                    k = 2
                    while not stop.is_set():
                        try:
                            _c, status = client.acquire_codes(client.LinkageServiceStub(core),
                                                              client.NumberServiceStub(jlis),
                                                              everyone[k * 10:(k + 1) * 10], timeout=T)
                        except grpc.RpcError as e:
                            # The core's store, or (J-LIS's forward) the core, unavailable: retried.
                            (acq_failed if e.code() == grpc.StatusCode.UNAVAILABLE else acq_other).append(
                                f"{e.code()} {e.details()}")
                            time.sleep(0.05)
                            continue
                        if (status != 0).any():
                            acq_other.append(f"statuses {status.tolist()}")
                        else:
                            acquired.append((time.monotonic(), k))
                        k = k % 39 + 1

            thread = threading.Thread(target=agency)
            thread.start()
            acq_thread = threading.Thread(target=acquirer)
            acq_thread.start()
            time.sleep(3.0)
            before = len(acked)
            assert before > 0 and "before" in seen
            marks["killed"] = time.monotonic()
            cluster.kill_primary()
            time.sleep(0.5)  # the failover manager's detection (Patroni: its loop_wait); then promote
            cluster.promote()
            deadline = time.monotonic() + 60
            while ("first_after" not in marks or len(acked) < before + 10
                   or sum(1 for t, _ in acquired if t > marks["killed"]) < 5) and time.monotonic() < deadline:
                time.sleep(0.1)
            stop.set()
            thread.join(timeout=60)
            acq_thread.join(timeout=60)
            assert other == [], other[:5]
            assert acq_other == [], acq_other[:5]
            after = sum(1 for t, _ in acquired if t > marks["killed"])
            print(f"\nacquisitions: {len(acquired)} chunks of 10 acknowledged, {after} after the kill; "
                  f"{len(acq_failed)} failed UNAVAILABLE in between")
            assert after >= 5, "acquisitions did not resume after the failover"
            # Every acknowledged acquisition is a holding: the minister's inquiries to 千代田区 about
            # those persons are never PROVIDER_NOT_HOLDING (5).
            held = sorted({k for _, k in acquired})
            codes4 = b"".join(mine_all[16 * i:16 * (i + 1)] for k in held for i in range(k * 10, (k + 1) * 10))
            with box.channel("agency-4") as ch:
                r = client.LinkageServiceStub(ch).BatchInquire(batch_inquiry(codes4, AFFAIR, CHIYODA, [ITEM]),
                                                               timeout=T)
            assert len(r.outcomes) == 10 * len(held) and 5 not in bytes(r.outcomes), bytes(r.outcomes)
            acked.append((r.first_record_sequence, len(r.outcomes)))
            if r.HasField("provision"):
                acked.append((r.provision_record_sequence, len(r.outcomes)))
            assert "first_after" in marks, "the running core acknowledged no inquiry after the promote"
            failover_s = marks["first_after"] - marks["killed"]
            records = sum(n for _, n in acked)
            print(f"\nledger failover: {len(acked)} record runs ({records} records) acknowledged, {before} before the "
                  f"kill; first acknowledged inquiry {failover_s:.2f} s after kill -9; {len(failed)} calls failed "
                  f"UNAVAILABLE in between")
            assert failover_s < 20

            with box.channel("oversight") as och, box.channel("agency-4") as ch:
                oversight = client.OversightServiceStub(och)
                keys = client.LinkageServiceStub(ch).GetPublicKeys(lpb.GetPublicKeysRequest(), timeout=T).keys
                vkey = next(k for k in keys if k.purpose == "checkpoint").note_verifier_key
                cp = oversight.GetLatestCheckpoint(opb.GetLatestCheckpointRequest(), timeout=T)
                verify_checkpoint(cp.note, vkey)
                old = seen["before"]
                verify_checkpoint(old.note, vkey)
                assert old.tree_size < cp.tree_size
                # The log continued: consistent with the last checkpoint seen before the crash.
                cons = oversight.GetConsistencyProof(opb.GetConsistencyProofRequest(
                    first_size=old.tree_size, second_size=cp.tree_size), timeout=T)
                verify_consistency(old.tree_size, cp.tree_size, old.root_hash, cp.root_hash, list(cons.hashes))
                # Every acknowledged record is in the tree after the failover.
                checked = 0
                for first, n in acked:
                    for seq in range(first, first + n):
                        p = oversight.GetInclusionProof(opb.GetInclusionProofRequest(
                            leaf_index=seq, tree_size=cp.tree_size), timeout=T)
                        verify_inclusion(p.leaf_index, p.tree_size, p.leaf_hash, list(p.hashes), cp.root_hash)
                        checked += 1
                assert checked == records
                # The witness cosigns a checkpoint after the failover (its own state, consistency
                # proof from the last size it cosigned, which was before the crash).
                witness = WitnessKey.from_vkey(box.service("witness")["vkey"])
                deadline = time.monotonic() + 30
                while True:
                    latest = oversight.GetLatestCheckpoint(opb.GetLatestCheckpointRequest(), timeout=T)
                    if latest.tree_size >= cp.tree_size and latest.cosignatures:
                        break
                    assert time.monotonic() < deadline, "the witness cosigned nothing after the failover"
                    time.sleep(0.2)
                note = latest.note.decode()
                text, sigs = note[: note.rindex("\n\n") + 1], note[note.rindex("\n\n") + 2:]
                assert witness.verify_cosignatures(sigs.encode(), text, now=time.time())
                print(f"{checked} inclusion proofs verified under the checkpoint of size {cp.tree_size}; consistency "
                      f"from size {old.tree_size} (seen before the crash); the witness cosigned size "
                      f"{latest.tree_size}")
        finally:
            rc, out = box.terminate()
        assert rc == 0, out[-3000:]
    finally:
        cluster.stop()
