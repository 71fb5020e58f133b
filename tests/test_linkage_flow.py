"""The linkage core end to end against a real box (``renkei up``: J-LIS, the core and the NTA as
separate processes, loopback, real TLS).

Two agencies acquire codes for the same people through J-LIS (取得番号 reserved at the core,
relayed by J-LIS with link ids, codes collected at the core); the minister (厚生労働大臣) inquires of a mayor
(千代田区長) under 別表第二 項1 (row B2.1.2, 地方税関係情報); the permit verifies offline with the
key from GetPublicKeys; the record is in the ledger with a valid inclusion proof; the person
lists it through DisclosureService; the commission sees it with a consistency proof across it.
The box's core runs on each store driver in turn (embedded, PostgreSQL with a synchronous standby).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import given, settings
from hypothesis import strategies as st

from renkei import client
from renkei._core import inquiry as _inq
from renkei._proto.renkei.v1 import admin_service_pb2 as apb
from renkei._proto.renkei.v1 import disclosure_service_pb2 as dpb
from renkei._proto.renkei.v1 import intermediate_service_pb2 as ipb
from renkei._proto.renkei.v1 import linkage_service_pb2 as lpb
from renkei._proto.renkei.v1 import number_service_pb2 as npb
from renkei._proto.renkei.v1 import oversight_service_pb2 as opb
from renkei._proto.renkei.v1.intermediate_service_pb2_grpc import IntermediateServiceStub
from renkei.ledger import opens as ledger_opens
from renkei.ledger import verify_checkpoint, verify_consistency, verify_inclusion
from renkei.linkage.disclosure import login_message
from renkei.linkage.registry import AgencyRegistry
from renkei.service.status import error_info
from tests.conftest import store_url
from tests.grpc_server import RunningBox, start_box
from tests.provision_helpers import batch_inquiry, inquiry, opened
from tests.tlog_witness_spec import WitnessKey

T = 10
MINISTER, CHIYODA, YOKOHAMA = 4, 1, 2
AFFAIR, ITEM = "B2.1", "B2.1.2.1"  # 別表第二 項1, 地方税関係情報 (row B2.1.2: 厚生労働大臣 ← 市町村長)


@pytest.fixture(scope="module", params=["embedded", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBox]:
    """The box, its core on either store driver (docs/arch/store.md): the same flow on both."""
    url = store_url(request, request.param)
    s = start_box(tmp_path_factory.mktemp("linkage") / "box", *(["--core-store", url] if url else []))
    yield s
    rc, out = s.terminate()
    assert rc == 0, out


@pytest.fixture(scope="module")
def people(server: RunningBox) -> list[str]:
    with server.channel("jlis", "jlis") as ch:
        raw = client.NumberServiceStub(ch).RegisterTestPopulation(
            npb.RegisterTestPopulationRequest(count=50, seed=7), timeout=T
        ).individual_numbers
    return [f"{int.from_bytes(raw[i:i + 8], 'little'):012d}" for i in range(0, len(raw), 8)]


def _codes(server: RunningBox, principal: str, numbers: list[str]) -> list[bytes]:
    with server.channel(principal) as core, server.channel(principal, "jlis") as jlis:
        out, status = client.acquire_codes(client.LinkageServiceStub(core), client.NumberServiceStub(jlis), numbers,
                                           timeout=T)
    assert (status == 0).all(), status
    return [out[i:i + 16] for i in range(0, len(out), 16)]


def _fails(call: object, code: grpc.StatusCode, reason: str) -> None:
    with pytest.raises(grpc.RpcError) as e:
        call()  # type: ignore[operator]
    assert e.value.code() is code, e.value
    info = error_info(e.value)
    assert info is not None and info.reason == reason, info


def _inquire(stub: client.LinkageServiceStub, code: bytes, provider: int = CHIYODA, affair: str = AFFAIR,
             items: tuple[str, ...] = (ITEM,)) -> lpb.InquireResponse:
    return stub.Inquire(inquiry(code, affair, provider, items), timeout=T)


def test_full_flow(server: RunningBox, people: list[str]) -> None:
    mine = _codes(server, "agency-4", people[:10])
    theirs = _codes(server, "agency-1", people[:10])
    assert mine != theirs
    with server.channel("agency-4") as ch:
        _inquire(client.LinkageServiceStub(ch), mine[0])  # the log is not empty before ours
    with server.channel("oversight") as och:
        oversight = client.OversightServiceStub(och)
        before = oversight.GetLatestCheckpoint(opb.GetLatestCheckpointRequest(), timeout=T)
    with server.channel("agency-4") as ch:
        linkage = client.LinkageServiceStub(ch)
        answer = _inquire(linkage, mine[3])
        keys = linkage.GetPublicKeys(lpb.GetPublicKeysRequest(), timeout=T).keys
    # The mayor's intermediate server answered: sealed to our key, signed with the mayor's
    # certificate, bound to the permit; no field carries the mayor's code of the person.
    header, _ = opened(answer, server.pki, MINISTER, CHIYODA)
    assert header.outcome == "no data" and header.permit_id == answer.permit_id  # no 副本 of these persons
    assert theirs[3] not in answer.SerializeToString() and mine[3] not in answer.SerializeToString()
    assert answer.provision_record_sequence > answer.record_sequence
    # It verified the permit offline (the core's key from GetPublicKeys) and recorded the exchange
    # under the 照会's sequence number.
    with server.channel("business-1", "mid-municipal") as ch:
        ex = IntermediateServiceStub(ch).ListExchanges(ipb.ListExchangesRequest(page_size=1000), timeout=T).records[-1]
    assert (ex.role, ex.counterpart_agency_id, ex.ledger_sequence) == ("provider", MINISTER, answer.record_sequence)
    assert ex.permit_id == answer.permit_id
    assert any(k.purpose == "permit" for k in keys)

    # The record is in the ledger under a signed checkpoint; inclusion and consistency verify.
    log_key = next(k for k in keys if k.purpose == "checkpoint")
    with server.channel("oversight") as och:
        oversight = client.OversightServiceStub(och)
        cp = oversight.GetLatestCheckpoint(opb.GetLatestCheckpointRequest(), timeout=T)
        checked = verify_checkpoint(cp.note, log_key.note_verifier_key)
        assert checked.size == cp.tree_size > answer.record_sequence and checked.root == cp.root_hash
        # ... and cosigned by the box's witness (C2SP cosignature/v1, checked from the spec).
        _cosigned_by_the_witness(server, cp)
        proof = oversight.GetInclusionProof(
            opb.GetInclusionProofRequest(leaf_index=answer.record_sequence, tree_size=cp.tree_size), timeout=T
        )
        verify_inclusion(proof.leaf_index, proof.tree_size, proof.leaf_hash, list(proof.hashes), cp.root_hash)
        recs = oversight.ListRecords(opb.ListRecordsRequest(agency_id=MINISTER, page_size=1000), timeout=T).records
        rec = next(r for r in recs if r.sequence == answer.record_sequence)
        assert (rec.outcome, rec.affair, list(rec.information_items)) == ("permitted", AFFAIR, [ITEM])
        assert rec.permit_id[:12] == answer.permit_id
        # The leaf is public and names no person; the commission's opening ties it to the pseudonym.
        assert rec.person_pseudonym not in rec.leaf_data and rec.leaf_data[0] == 2
        assert ledger_opens(rec.leaf_data, rec.person_opening) and rec.person_opening[16:] == rec.person_pseudonym
        assert hashlib.sha256(b"\x00" + rec.leaf_data).digest() == proof.leaf_hash
        # The commission's earlier checkpoint is a prefix of the one covering our record.
        old = before.tree_size
        assert 0 < old <= answer.record_sequence < cp.tree_size
        verify_checkpoint(before.note, log_key.note_verifier_key)
        cons = oversight.GetConsistencyProof(
            opb.GetConsistencyProofRequest(first_size=old, second_size=cp.tree_size), timeout=T
        )
        verify_consistency(old, cp.tree_size, before.root_hash, cp.root_hash, list(cons.hashes))
        # Any stored checkpoint can be fetched again, signed as published; others are NOT_FOUND.
        again = oversight.GetCheckpoint(opb.GetCheckpointRequest(tree_size=cp.tree_size), timeout=T)
        assert again.note == cp.note
        with pytest.raises(grpc.RpcError) as missing:
            oversight.GetCheckpoint(opb.GetCheckpointRequest(tree_size=cp.tree_size + 10**9), timeout=T)
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        stats = oversight.GetAgencyStatistics(opb.GetAgencyStatisticsRequest(agency_id=MINISTER), timeout=T)
        assert stats.inquiries >= 1
    binding = server.data_dir("core") / "store.conninfo"
    if binding.exists():
        # The ledger is on PostgreSQL: sequenced and integrated there, no write-ahead log here.
        assert not (server.data_dir("core") / "ledger" / "wal").exists()
        with psycopg.connect(binding.read_text().strip()) as conn:
            row = conn.execute("SELECT size, checkpoint FROM ledger.int_coord").fetchone()
        assert row is not None and row[0] >= cp.tree_size

    # The person lists it through DisclosureService after logging in with their card key.
    card = Ed25519PrivateKey.generate()
    public = card.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    with server.channel("jlis", "jlis") as jch:
        key_id = client.NumberServiceStub(jch).RegisterCardKey(
            npb.RegisterCardKeyRequest(individual_number=people[3], public_key=public), timeout=T
        ).card_key_id
    with server.public("core") as pch:
        disclosure = client.DisclosureServiceStub(pch)
        ch_ = disclosure.CreateChallenge(dpb.CreateChallengeRequest(card_key_id=key_id), timeout=T)
        sig = card.sign(login_message(ch_.challenge))
        session = disclosure.Login(
            dpb.LoginRequest(card_key_id=key_id, challenge=ch_.challenge, signature=sig), timeout=T
        )
        _fails(lambda: disclosure.Login(  # a challenge is single use
            dpb.LoginRequest(card_key_id=key_id, challenge=ch_.challenge, signature=sig), timeout=T),
            grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED")
        mine_page = disclosure.ListMyRecords(
            dpb.ListMyRecordsRequest(page_size=10), timeout=T,
            metadata=[("authorization", f"Bearer {session.session_token}")],
        )
        _cosigned_by_the_witness(server, mine_page.checkpoint)
        seqs = [d.record.sequence for d in mine_page.records]
        assert answer.record_sequence in seqs and seqs == sorted(seqs, reverse=True)
        for d in mine_page.records:
            p = d.inclusion_proof
            verify_inclusion(p.leaf_index, p.tree_size, p.leaf_hash, list(p.hashes), mine_page.checkpoint.root_hash)
            assert d.record.person_pseudonym == rec.person_pseudonym
            assert ledger_opens(d.record.leaf_data, d.record.person_opening)
            assert hashlib.sha256(b"\x00" + d.record.leaf_data).digest() == p.leaf_hash
        _fails(lambda: disclosure.ListMyRecords(dpb.ListMyRecordsRequest(), timeout=T,
                                                metadata=[("authorization", "Bearer nope")]),
               grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED")


def _cosigned_by_the_witness(server: RunningBox, cp: opb.Checkpoint) -> None:
    witness = WitnessKey.from_vkey(server.service("witness")["vkey"])
    note = cp.note.decode()
    text, sigs = note[: note.rindex("\n\n") + 1], note[note.rindex("\n\n") + 2:]
    [ts] = witness.verify_cosignatures(sigs.encode(), text, now=time.time())
    assert [(c.witness, c.time.seconds) for c in cp.cosignatures] == [(witness.name, ts)]


def _denials(server: RunningBox, agency: int) -> tuple[int, dict[str, int]]:
    with server.channel("oversight") as och:
        s = client.OversightServiceStub(och).GetAgencyStatistics(
            opb.GetAgencyStatisticsRequest(agency_id=agency), timeout=T
        )
    return s.denials, dict(s.denials_by_reason)


def test_refusals_are_recorded_and_uniform(server: RunningBox, people: list[str]) -> None:
    mine = _codes(server, "agency-4", people[10:20])
    chiyoda = _codes(server, "agency-1", people[10:20])
    denials0, reasons0 = _denials(server, MINISTER)
    forged = bytearray(mine[0])
    forged[7] ^= 0x40
    with server.channel("agency-4") as ch:
        stub = client.LinkageServiceStub(ch)
        for code in (chiyoda[0], bytes(forged), bytes(16)):  # another agency's, forged, junk
            _fails(lambda c=code: _inquire(stub, c), grpc.StatusCode.PERMISSION_DENIED, "CODE_REFUSED")
        # 横浜市 holds none of them: the provider does not hold the person.
        _fails(lambda: _inquire(stub, mine[1], provider=YOKOHAMA), grpc.StatusCode.PERMISSION_DENIED,
               "PROVIDER_NOT_HOLDING")
        # Row not in the table: the minister may not ask for 医療保険給付関係情報 of a mayor.
        _fails(lambda: _inquire(stub, mine[1], items=("B2.1.1.1",)), grpc.StatusCode.PERMISSION_DENIED,
               "ROW_NOT_PERMITTED")
    with server.channel("agency-1") as ch:  # the mayor may not ask the minister under 項1
        _fails(lambda: _inquire(client.LinkageServiceStub(ch), chiyoda[2], provider=MINISTER),
               grpc.StatusCode.PERMISSION_DENIED, "ROW_NOT_PERMITTED")
    denials, reasons = _denials(server, MINISTER)
    assert denials - denials0 == 5
    assert reasons.get("CODE_REFUSED", 0) - reasons0.get("CODE_REFUSED", 0) == 3
    assert reasons.get("ROW_NOT_PERMITTED", 0) - reasons0.get("ROW_NOT_PERMITTED", 0) == 1


def test_agency_without_pia_and_oversized_batch(server: RunningBox, people: list[str]) -> None:
    with server.channel("operator") as ch:
        created = client.AdminServiceStub(ch).CreateAgency(
            apb.CreateAgencyRequest(name="府中市長", type_ids=["municipal_mayor"], local_government_code="132063"),
            timeout=T,
        )
    agency = created.agency_id
    from renkei.pki.ca import DevelopmentCA

    DevelopmentCA(server.pki).issue_agency_certificate(agency, "府中市長")  # the PKI operator, not the core
    with server.channel(f"agency-{agency}") as ch:
        stub = client.LinkageServiceStub(ch)
        _fails(lambda: stub.ReserveAcquisitionNumbers(lpb.ReserveAcquisitionNumbersRequest(count=1), timeout=T),
               grpc.StatusCode.FAILED_PRECONDITION, "PIA_NOT_APPROVED")
        _fails(lambda: _inquire(stub, bytes(16)), grpc.StatusCode.FAILED_PRECONDITION, "PIA_NOT_APPROVED")
    with server.channel("agency-4") as ch:
        stub = client.LinkageServiceStub(ch)
        _fails(lambda: stub.BatchInquire(batch_inquiry(bytes(16 * 10_001), AFFAIR, CHIYODA, [ITEM]), timeout=T),
               grpc.StatusCode.RESOURCE_EXHAUSTED, "BATCH_TOO_LARGE")


def test_batch_inquire_one_permit_per_batch(server: RunningBox, people: list[str]) -> None:
    mine = _codes(server, "agency-4", people[20:50])
    theirs = _codes(server, "agency-1", people[20:40])  # the last ten are not held by the provider
    codes = b"".join(mine)
    with server.channel("agency-4") as ch:
        stub = client.LinkageServiceStub(ch)
        r = stub.BatchInquire(batch_inquiry(codes, AFFAIR, CHIYODA, [ITEM]), timeout=T)
    assert list(r.outcomes) == [0] * 20 + [lpb.DENIAL_CODE_PROVIDER_NOT_HOLDING] * 10
    # One sealed answer for the batch, from the mayor's intermediate server, which checked the
    # batch permit against the tree of its own codes (refused items carry a zero code).
    header, answer = opened(r, server.pki, MINISTER, CHIYODA)
    assert header.persons == 30 and [p["index"] for p in answer["persons"]] == list(range(20))
    assert not any(c in r.SerializeToString() for c in theirs)
    with server.channel("business-1", "mid-municipal") as ch:
        ex = IntermediateServiceStub(ch).ListExchanges(ipb.ListExchangesRequest(page_size=1000), timeout=T).records[-1]
    assert (ex.persons, ex.ledger_sequence, ex.permit_id) == (30, r.first_record_sequence, r.permit_id)
    with server.channel("oversight") as ch:
        recs = client.OversightServiceStub(ch).ListRecords(opb.ListRecordsRequest(agency_id=MINISTER, page_size=1000),
                                                           timeout=T).records
    provisions = [x for x in recs if x.kind == "provision" and x.sequence >= r.provision_record_sequence]
    assert [x.inquiry_sequence for x in provisions] == [r.first_record_sequence + i for i in range(20)]


def test_linkage_is_not_served_on_the_public_port(server: RunningBox) -> None:
    with server.public("core") as ch, pytest.raises(grpc.RpcError) as e:
        _inquire(client.LinkageServiceStub(ch), bytes(16))
    assert e.value.code() is grpc.StatusCode.UNIMPLEMENTED


_METHODS = ["ReserveAcquisitionNumbers", "CollectCodes", "ReleaseHolding", "Inquire", "BatchInquire", "GetPublicKeys"]


def _malformed(rng: random.Random, method: str, code: bytes) -> bytes:
    """A random request: raw junk, or a message of the method with random field values."""
    if rng.random() < 0.3:
        return rng.randbytes(rng.randrange(0, 64))
    junk = ["", "B2.1", "beppyo2-1", "B2.1.2.1", "x" * 300, "項", "\x00", "B2.999"]
    some_code = rng.choice([code, rng.randbytes(16), rng.randbytes(rng.randrange(0, 40)), b""])
    if method == "ReserveAcquisitionNumbers":
        return lpb.ReserveAcquisitionNumbersRequest(count=rng.choice([0, 100_001, 2**32 - 1])).SerializeToString()
    if method == "CollectCodes":
        return lpb.CollectCodesRequest(acquisition_numbers=rng.randbytes(rng.choice([0, 15, 16, 17, 32]))
                                       ).SerializeToString()
    if method == "ReleaseHolding":
        return lpb.ReleaseHoldingRequest(agency_code=rng.randbytes(rng.choice([0, 15, 17]))).SerializeToString()
    items = [rng.choice(junk) for _ in range(rng.randrange(0, 4))]
    common = {"affair": rng.choice(junk), "provider_agency_id": rng.choice([0, 1, 2, 99, 2**32 - 1]),
              "information_items": items, "request_id": rng.choice(["", "x" * 300])}
    if method == "Inquire":
        return lpb.InquireRequest(agency_code=some_code, **common).SerializeToString()
    if method == "BatchInquire":
        return lpb.BatchInquireRequest(agency_codes=some_code * rng.randrange(0, 3), **common).SerializeToString()
    return lpb.GetPublicKeysRequest().SerializeToString()


def test_10000_malformed_linkage_requests_never_internal(server: RunningBox, people: list[str]) -> None:
    (code,) = _codes(server, "agency-4", people[:1])
    rng = random.Random(20261126)
    with server.channel("agency-4") as ch:
        calls = {m: ch.unary_unary(f"/renkei.v1.LinkageService/{m}") for m in _METHODS}
        codes: dict[grpc.StatusCode, int] = {}
        for _round in range(100):
            futures = []
            for _ in range(100):
                m = rng.choice(_METHODS)
                futures.append(calls[m].future(_malformed(rng, m, code), timeout=T))
            for f in futures:
                try:
                    f.result()
                    c = grpc.StatusCode.OK
                except grpc.RpcError as e:
                    c = e.code()
                codes[c] = codes.get(c, 0) + 1
        assert sum(codes.values()) == 10_000
        assert grpc.StatusCode.INTERNAL not in codes and grpc.StatusCode.UNKNOWN not in codes, codes
        health = health_pb2_grpc.HealthStub(ch)
        assert health.Check(health_pb2.HealthCheckRequest(), timeout=T).status == health_pb2.HealthCheckResponse.SERVING
    # ... and still serving real inquiries.
    _codes(server, "agency-1", people[:1])  # the mayor holds the person too
    with server.channel("agency-4") as ch:
        assert opened(_inquire(client.LinkageServiceStub(ch), code), server.pki, MINISTER, CHIYODA)[0].persons == 1


def test_cli_agency_add_registers_and_issues_certificate(tmp_path: Path) -> None:
    from renkei.pki.ca import DevelopmentCA
    from renkei.service.core import init_data_dir

    data = init_data_dir(tmp_path / "core").path
    DevelopmentCA.init(tmp_path / "pki")
    out = subprocess.run(
        [sys.executable, "-m", "renkei.cli", "--json", "agency", "add", "--data-dir", str(data),
         "--pki", str(tmp_path / "pki"), "--name", "中央区長", "--type", "municipal_mayor",
         "--municipality-code", "131024"],
        capture_output=True, text=True, check=True,
    ).stdout
    info = json.loads(out)
    with AgencyRegistry(data) as registry:
        a = registry.agency(info["agency_id"])
        assert a.corporate_number == "8000020131024" and a.municipality_code == "131024"
        registry.add_pia(a.agency_id, "評価書", approved_on="2025-01-01", expires_on="2099-01-01")  # no commission here
        registry.require_active(a.agency_id)
    cert = x509.load_pem_x509_certificate(Path(info["certificate"]).read_bytes())
    uris = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.UniformResourceIdentifier)
    assert f"urn:renkei:agency:{a.agency_id}" in uris


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=32, max_size=100), st.integers(0, 2**32 - 1))
def test_pseudonym_is_hmac_sha256_of_the_person_id(key: bytes, person: int) -> None:
    want = hmac.new(key, person.to_bytes(4, "big"), hashlib.sha256).digest()
    assert bytes(_inq.pseudonym(key, person)) == want


def test_restart_keeps_agencies_codes_and_records(tmp_path: Path) -> None:
    s = start_box(tmp_path / "box")
    try:
        with s.channel("jlis", "jlis") as ch:
            raw = client.NumberServiceStub(ch).RegisterTestPopulation(
                npb.RegisterTestPopulationRequest(count=3, seed=11), timeout=T).individual_numbers
        people = [f"{int.from_bytes(raw[i:i + 8], 'little'):012d}" for i in range(0, len(raw), 8)]
        mine = _codes(s, "agency-4", people)
        _codes(s, "agency-1", people)
        with s.channel("agency-4") as ch:
            first = _inquire(client.LinkageServiceStub(ch), mine[0])
    finally:
        rc, out = s.terminate()
    assert rc == 0, out
    s = start_box(tmp_path / "box")  # SIGTERM closed the ledger; the same directories again
    try:
        with s.channel("agency-4") as ch:
            again = _inquire(client.LinkageServiceStub(ch), mine[1])
        assert opened(again, s.pki, MINISTER, CHIYODA)[0].persons == 1
        assert again.record_sequence == first.provision_record_sequence + 1
        with s.channel("oversight") as och:
            recs = client.OversightServiceStub(och).ListRecords(opb.ListRecordsRequest(agency_id=MINISTER), timeout=T)
        assert [r.sequence for r in recs.records] == [first.record_sequence, first.provision_record_sequence,
                                                      again.record_sequence, again.provision_record_sequence]
        with s.channel("operator") as och:
            agencies = client.AdminServiceStub(och).ListAgencies(apb.ListAgenciesRequest(), timeout=T).agencies
        assert [a.agency_id for a in agencies] == [1, 2, 3, 4, 5, 6, 7]  # not registered twice
    finally:
        rc, out = s.terminate()
    assert rc == 0, out
