"""Damaged or restored state never hands one person's data to another, and what the services
write stays private (#11 points 7 and 13), on real boxes (each test its own)."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from renkei import client
from renkei._proto.renkei.v1 import disclosure_service_pb2 as dpb
from renkei._proto.renkei.v1 import linkage_service_pb2 as lpb
from renkei._proto.renkei.v1 import number_service_pb2 as npb
from renkei._proto.renkei.v1 import oversight_service_pb2 as opb
from renkei.linkage.disclosure import login_message
from tests.grpc_server import RunningBox, start_box

T = 20
MINISTER, CHIYODA = 4, 1
AFFAIR, ITEM = "B2.1", "B2.1.2.1"
RESIDENT_A, RESIDENT_B = "24727059608", "35806461804"


def _code(box: RunningBox, agency: int, number: str) -> bytes:
    with box.channel(f"agency-{agency}") as core, box.channel(f"agency-{agency}", "jlis") as jlis:
        out, status = client.acquire_codes(client.LinkageServiceStub(core), client.NumberServiceStub(jlis), [number],
                                           timeout=T)
    assert (status == 0).all(), status
    return bytes(out[:16])


def _assign(box: RunningBox, resident: str) -> str:
    with box.channel("jlis", "jlis") as ch:
        return str(client.NumberServiceStub(ch).AssignNumber(
            npb.AssignNumberRequest(resident_code=resident), timeout=T).individual_number)


def _inquire(box: RunningBox, code: bytes) -> lpb.InquireResponse:
    with box.channel(f"agency-{MINISTER}") as ch:
        return client.LinkageServiceStub(ch).Inquire(lpb.InquireRequest(
            agency_code=code, affair=AFFAIR, provider_agency_id=CHIYODA, information_items=[ITEM]), timeout=T)


def _my_records(box: RunningBox, number: str) -> list[dpb.DisclosedRecord]:
    """The person's own records, after registering a card key with J-LIS and logging in."""
    card = Ed25519PrivateKey.generate()
    public = card.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    with box.channel("jlis", "jlis") as ch:
        key_id = client.NumberServiceStub(ch).RegisterCardKey(
            npb.RegisterCardKeyRequest(individual_number=number, public_key=public), timeout=T).card_key_id
    with box.public("core") as ch:
        stub = client.DisclosureServiceStub(ch)
        c = stub.CreateChallenge(dpb.CreateChallengeRequest(card_key_id=key_id), timeout=T)
        s = stub.Login(dpb.LoginRequest(card_key_id=key_id, challenge=c.challenge,
                                        signature=card.sign(login_message(c.challenge))), timeout=T)
        page = stub.ListMyRecords(dpb.ListMyRecordsRequest(page_size=100), timeout=T,
                                  metadata=[("authorization", f"Bearer {s.session_token}")])
    return list(page.records)


def _stop(box: RunningBox) -> None:
    rc, out = box.terminate()
    assert rc == 0, out[-3000:]


def test_restoring_an_older_jlis_registry_never_gives_a_person_another_ones_code_or_records(tmp_path: Path) -> None:
    root = tmp_path / "box"
    box = start_box(root)
    try:
        with box.channel("jlis", "jlis") as ch:  # J-LIS's registry is not empty when backed up
            client.NumberServiceStub(ch).RegisterTestPopulation(npb.RegisterTestPopulationRequest(count=5, seed=1),
                                                                 timeout=T)
    finally:
        _stop(box)
    jlis_db = root / "jlis" / "jlis.sqlite3"
    backup = tmp_path / "jlis-backup.sqlite3"
    shutil.copy2(jlis_db, backup)  # J-LIS stopped: the WAL was checkpointed into the file

    box = start_box(root)
    try:
        a_number = _assign(box, RESIDENT_A)
        a_code = _code(box, MINISTER, a_number)
        _code(box, CHIYODA, a_number)
        a_record = _inquire(box, a_code)
        a_records = _my_records(box, a_number)
        assert a_record.record_sequence in [r.record.sequence for r in a_records]
        a_pseudonym = next(r.record.person_pseudonym for r in a_records)
    finally:
        _stop(box)

    # The operator restores J-LIS from the older copy (A is not in it), then another resident
    # is registered: with a counter for link ids, B would now get A's.
    for suffix in ("", "-wal", "-shm"):
        Path(f"{jlis_db}{suffix}").unlink(missing_ok=True)
    shutil.copy2(backup, jlis_db)
    os.chmod(jlis_db, 0o600)
    box = start_box(root)
    try:
        b_number = _assign(box, RESIDENT_B)
        b_code = _code(box, MINISTER, b_number)
        assert b_code != a_code, "B was handed A's agency code"
        _code(box, CHIYODA, b_number)
        b_records = _my_records(box, b_number)
        assert a_record.record_sequence not in [r.record.sequence for r in b_records], "B reads A's records"
        assert all(r.record.person_pseudonym != a_pseudonym for r in b_records)
        # A's code still names A: an inquiry with it is recorded under A's pseudonym, not B's.
        again = _inquire(box, a_code)
        b_new = _inquire(box, b_code)
        with box.channel("oversight") as ch:
            recs = {r.sequence: r for r in client.OversightServiceStub(ch).ListRecords(
                opb.ListRecordsRequest(agency_id=MINISTER, page_size=1000), timeout=T).records}
        assert recs[again.record_sequence].person_pseudonym == a_pseudonym
        assert recs[b_new.record_sequence].person_pseudonym != a_pseudonym
    finally:
        _stop(box)


def test_every_file_of_the_box_is_private_under_umask_022(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        box = start_box(tmp_path / "box")  # the children inherit the umask
    finally:
        os.umask(old)
    try:
        number = _assign(box, RESIDENT_A)
        code = _code(box, MINISTER, number)
        _code(box, CHIYODA, number)
        for _ in range(3):
            _inquire(box, code)
        _my_records(box, number)
    finally:
        _stop(box)  # the shutdown checkpoint writes the holdings snapshot too
    loose = []
    files = 0
    for path in [tmp_path / "box", *(tmp_path / "box").rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if path.is_symlink():
            continue
        if path.is_dir():
            if mode != 0o700:
                loose.append(f"{path} {mode:o}")
        else:
            files += 1
            if mode & 0o077:
                loose.append(f"{path} {mode:o}")
    assert files > 30 and not loose, "\n".join(loose)
    # The ledger's files are among them.
    assert any((tmp_path / "box" / "core" / "ledger").rglob("*"))

