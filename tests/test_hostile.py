"""Hostile and careless callers against a real box (#11): every limit of docs/arch/limits.md
is hit here and must answer clearly, leave the agencies served, and keep memory bounded.

The box runs with a limits file small enough to reach each limit in seconds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from renkei import client
from renkei._proto.renkei.v1 import admin_service_pb2 as apb
from renkei._proto.renkei.v1 import corporate_number_service_pb2 as cpb
from renkei._proto.renkei.v1 import disclosure_service_pb2 as dpb
from renkei._proto.renkei.v1 import linkage_service_pb2 as lpb
from renkei._proto.renkei.v1 import number_service_pb2 as npb
from renkei._proto.renkei.v1 import oversight_service_pb2 as opb
from renkei._proto.renkei.v1 import pia_review_service_pb2 as rpb
from renkei._proto.renkei.v1.pia_review_service_pb2_grpc import PiaReviewServiceStub
from renkei.linkage.disclosure import login_message
from renkei.service.convert import encode_page_token
from renkei.service.status import error_info
from tests.grpc_server import RunningBox, start_box
from tests.provision_helpers import batch_inquiry, inquiry, terms

T = 20
MINISTER, CHIYODA, YOKOHAMA, PENSION, GOVERNOR = 4, 1, 2, 3, 6
AFFAIR, ITEM = "B2.1", "B2.1.2.1"  # 別表第二 項1: 厚生労働大臣 asks 市町村長 for 地方税関係情報
MIB = 1024 * 1024

LIMITS = """
[mtls]
calls_per_caller = 64
arrival_seconds = 3
[public]
arrival_seconds = 2
calls_per_caller = 24
[core]
denials_per_second = 1
denial_burst = 400
[nta]
query_seconds = 1
"""


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBox]:
    root = tmp_path_factory.mktemp("hostile")
    (root / "limits.toml").write_text(LIMITS)
    s = start_box(root / "box", "--limits", str(root / "limits.toml"))
    yield s
    rc, out = s.terminate()
    assert rc == 0, out[-3000:]


@pytest.fixture(scope="module")
def people(box: RunningBox) -> list[str]:
    with box.channel("jlis", "jlis") as ch:
        raw = client.NumberServiceStub(ch).RegisterTestPopulation(
            npb.RegisterTestPopulationRequest(count=40, seed=3), timeout=T
        ).individual_numbers
    return [f"{int.from_bytes(raw[i:i + 8], 'little'):012d}" for i in range(0, len(raw), 8)]


def codes_of(box: RunningBox, agency: int, numbers: list[str]) -> list[bytes]:
    with box.channel(f"agency-{agency}") as core, box.channel(f"agency-{agency}", "jlis") as jlis:
        out, status = client.acquire_codes(client.LinkageServiceStub(core), client.NumberServiceStub(jlis), numbers,
                                           timeout=T)
    assert (status == 0).all(), status
    return [out[i:i + 16] for i in range(0, len(out), 16)]


def failure(call: Any) -> tuple[grpc.StatusCode, str, str]:
    with pytest.raises(grpc.RpcError) as e:
        call()
    info = error_info(e.value)
    return e.value.code(), (info.reason if info else ""), e.value.details() or ""


def inquire(stub: Any, code: bytes, provider: int = CHIYODA, affair: str = AFFAIR, request_id: str = "",
            items: tuple[str, ...] = (ITEM,)) -> lpb.InquireResponse:
    # A retry of a request id repeats the request exactly, its recipient key included.
    t = _TERMS.setdefault(request_id, terms()) if request_id else terms()
    return stub.Inquire(inquiry(code, affair, provider, items, request_id=request_id, terms=t), timeout=T)


_TERMS: dict[str, lpb.ProvisionTerms] = {}


def ledger_size(box: RunningBox) -> int:
    with box.channel("oversight") as ch:
        return int(client.OversightServiceStub(ch).GetLatestCheckpoint(opb.GetLatestCheckpointRequest(),
                                                                       timeout=T).tree_size)


def records_since(box: RunningBox, size: int, agency: int) -> list[opb.ProvisionRecord]:
    with box.channel("oversight") as ch:
        recs = client.OversightServiceStub(ch).ListRecords(
            opb.ListRecordsRequest(agency_id=agency, page_size=1000), timeout=T).records
    return [r for r in recs if r.sequence >= size]


def _commission(box: RunningBox, principal: str, method: str, request: Any) -> Any:
    with box.channel(principal, "ppc") as ch:
        return getattr(PiaReviewServiceStub(ch), method)(request, timeout=T)


def _core_sees(box: RunningBox, agency: int, status: int) -> None:
    """Wait until the core shows the agency's PIA ``status`` (it applies the commission's pushes)."""
    deadline = time.monotonic() + T
    with box.channel("operator") as ch:
        admin = client.AdminServiceStub(ch)
        while admin.GetAgency(apb.GetAgencyRequest(agency_id=agency), timeout=T).pia_status != status:
            assert time.monotonic() < deadline, f"the core never applied agency {agency}'s PIA decision"
            time.sleep(0.1)


def revoke_pia(box: RunningBox, agency: int) -> None:
    """The commission revokes the agency's approved PIA (only the commission can: PiaReviewService)."""
    listed = _commission(box, "oversight", "ListPias", rpb.ListPiasRequest(agency_id=agency)).pias
    for pia in listed:
        if pia.state == rpb.PIA_STATE_APPROVED:
            _commission(box, "oversight", "DecidePia", rpb.DecidePiaRequest(
                pia_id=pia.pia_id, kind=rpb.PIA_DECISION_KIND_REVOKED, reason="試験のための取消し"))
    _core_sees(box, agency, apb.PIA_STATUS_REVOKED)


def approve_new_pia(box: RunningBox, agency: int) -> None:
    """The agency submits a fresh PIA and the commission approves it (a revoked one stays revoked)."""
    pia = _commission(box, f"agency-{agency}", "SubmitPia", rpb.SubmitPiaRequest(
        level=rpb.PIA_LEVEL_FULL, title="全項目評価書 (再評価)", files=["特定個人情報ファイル"],
        document_sha256=hashlib.sha256(b"re-evaluation").digest()))
    _commission(box, "oversight", "DecidePia", rpb.DecidePiaRequest(
        pia_id=pia.pia_id, kind=rpb.PIA_DECISION_KIND_APPROVED,
        expires_on=(dt.date.today() + dt.timedelta(days=365)).isoformat()))
    _core_sees(box, agency, apb.PIA_STATUS_APPROVED)


def rss_peak_mib(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def metrics(box: RunningBox, service: str) -> str:
    port = box.metrics_port(service)
    return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=T).read().decode()


async def _never(stop: asyncio.Event) -> AsyncIterator[bytes]:
    """A request stream that never sends its message (until told to stop)."""
    await stop.wait()
    if False:  # pragma: no cover - makes this an async generator
        yield b""


async def hold_calls(channel: Any, method: str, count: int, stop: asyncio.Event) -> list[asyncio.Task[Any]]:
    """``count`` calls of ``method`` that never send their body (as a client-streaming call:
    the wire is that of a unary call whose body has not arrived)."""
    call = channel.stream_unary(method)
    return [asyncio.ensure_future(call(_never(stop), timeout=60)) for _ in range(count)]


async def outcomes(tasks: list[asyncio.Task[Any]]) -> list[tuple[str, str]]:
    out = []
    for t in tasks:
        try:
            await t
            out.append(("OK", ""))
        except grpc.aio.AioRpcError as e:
            out.append((e.code().name, e.details() or ""))
    return out


# -- 1. the public port can never starve agencies; unsent bodies do not hold slots ---------------


def test_unsent_bodies_time_out_and_agencies_keep_being_served(box: RunningBox, people: list[str]) -> None:
    mine = codes_of(box, MINISTER, people[:4])
    codes_of(box, CHIYODA, people[:4])

    async def attack() -> tuple[list[tuple[str, str]], list[float], list[tuple[str, str]]]:
        stop = asyncio.Event()
        ca = box.pki / "ca.pem"
        # Many connections without a client certificate to the core's public port, each with
        # as many calls as it may open, none sending a body.
        public = [client.public_channel(box.target("core", "public_grpc"), ca=ca, aio=True) for _ in range(8)]
        # One agency holding far more calls than its share of the mutual-TLS port.
        hog = client.principal_channel(f"agency-{YOKOHAMA}", box.target("core"), pki=box.pki, aio=True)
        held = []
        for ch in public:
            held += await hold_calls(ch, "/renkei.v1.DisclosureService/CreateChallenge", 16, stop)
        hogged = await hold_calls(hog, "/renkei.v1.LinkageService/Inquire", 1100, stop)
        await asyncio.sleep(0.5)
        # Meanwhile the minister's inquiries are answered, promptly.
        latencies = []
        async with client.principal_channel(f"agency-{MINISTER}", box.target("core"), pki=box.pki, aio=True) as ch:
            stub = client.LinkageServiceStub(ch)
            for i in range(20):
                t = time.perf_counter()
                r = await stub.Inquire(inquiry(mine[i % 4], AFFAIR, CHIYODA, [ITEM]), timeout=T)
                latencies.append(time.perf_counter() - t)
                assert r.provision.sealed  # the mayor's intermediate server answered
        started = time.monotonic()
        got_public = await outcomes(held)
        got_hog = await outcomes(hogged)
        waited = time.monotonic() - started
        stop.set()
        for ch in [*public, hog]:
            await ch.close()
        assert waited < 15, f"held calls were ended after {waited:.1f} s"
        return got_public, latencies, got_hog

    got_public, latencies, got_hog = asyncio.run(attack())
    assert max(latencies) < 2.0, latencies
    # The public calls without a body were ended by the arrival bound (2 s here) or refused for
    # being more than one address may hold (24 here); none was left hanging.
    kinds = {code for code, _ in got_public}
    assert kinds <= {"DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED"}, kinds
    assert any(code == "DEADLINE_EXCEEDED" for code, _ in got_public)
    assert any("calls in progress" in d for code, d in got_public if code == "RESOURCE_EXHAUSTED")
    # The hog got its 64 calls (each ended by the 3 s arrival bound); the rest were refused.
    hog_codes = [code for code, _ in got_hog]
    # (Streams past the connection's 1,024 are refused by HTTP/2 itself: REFUSED_STREAM.)
    assert set(hog_codes) <= {"DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "UNAVAILABLE"}, set(got_hog)
    assert all("RST_STREAM" in d for code, d in got_hog if code == "UNAVAILABLE")
    assert hog_codes.count("DEADLINE_EXCEEDED") >= 64 and hog_codes.count("RESOURCE_EXHAUSTED") >= 1000
    text = metrics(box, "core")
    assert 'renkei_refused_total{port="mtls",reason="TOO_MANY_CALLS"}' in text
    assert 'renkei_refused_total{port="public",reason="REQUEST_TIMEOUT"}' in text
    assert 'renkei_limit{name="mtls.calls_per_caller"} 64' in text


# -- 2. oversized bodies: refused before they are parsed, memory bounded --------------------------


def test_oversized_bodies_are_refused_before_parsing_and_memory_stays_bounded(
    box: RunningBox, people: list[str]
) -> None:
    pid = box.pid("core")
    mine = codes_of(box, MINISTER, people[4:6])
    codes_of(box, CHIYODA, people[4:6])
    before = rss_peak_mib(pid)

    async def attack() -> tuple[list[str], list[str], list[str]]:
        body = os.urandom(16 * MIB)
        many_items = lpb.InquireRequest(agency_code=bytes(16), affair=AFFAIR, provider_agency_id=CHIYODA,
                                        information_items=["x"] * (4 * MIB)).SerializeToString()
        opts = [("grpc.max_send_message_length", 64 * MIB)]
        ca = box.pki / "ca.pem"
        public = grpc.aio.secure_channel(box.target("core", "public_grpc"),
                                         grpc.ssl_channel_credentials(ca.read_bytes()), options=opts)
        folder = box.pki / "clients" / f"agency-{YOKOHAMA}"
        creds = grpc.ssl_channel_credentials(ca.read_bytes(), (folder / "key.pem").read_bytes(),
                                             (folder / "cert.pem").read_bytes())
        agency = grpc.aio.secure_channel(box.target("core"), creds, options=opts)

        async def one(ch: Any, method: str, data: bytes) -> str:
            try:
                await ch.unary_unary(method)(data, timeout=60)
                return "OK"
            except grpc.aio.AioRpcError as e:
                info = error_info(e)
                return f"{e.code().name} {info.reason if info else e.details()}"

        unauth = await asyncio.gather(*(one(public, "/renkei.v1.DisclosureService/CreateChallenge", body)
                                        for _ in range(16)))
        big = await asyncio.gather(*(one(agency, "/renkei.v1.LinkageService/BatchInquire", body)
                                     for _ in range(16)))
        items = await asyncio.gather(*(one(agency, "/renkei.v1.LinkageService/Inquire", many_items)
                                       for _ in range(4)))
        # A method of another role (J-LIS's): refused before the body is read.
        wrong = await asyncio.gather(*(one(agency, "/renkei.v1.PersonLinkService/IssueCodes", body)
                                       for _ in range(16)))
        assert all(r == "PERMISSION_DENIED PERMISSION_DENIED" for r in wrong), wrong
        await public.close()
        await agency.close()
        return unauth, big, items

    unauth, big, items = asyncio.run(attack())
    # Without a certificate: refused by grpc on the message's length prefix (64 KiB on the public port).
    assert all(r.startswith("RESOURCE_EXHAUSTED") for r in unauth), unauth
    # An agency: refused on the received bytes, before parsing (BatchInquire takes 256 KiB, Inquire
    # 64 KiB); after 4 of them within 10 s its calls are refused before their body is read.
    assert set(big + items) <= {"RESOURCE_EXHAUSTED REQUEST_TOO_LARGE", "RESOURCE_EXHAUSTED RATE_LIMITED"}, big
    assert (big + items).count("RESOURCE_EXHAUSTED REQUEST_TOO_LARGE") >= 4
    assert items == ["RESOURCE_EXHAUSTED RATE_LIMITED"] * 4
    grew = rss_peak_mib(pid) - before
    print(f"core peak RSS {before:.0f} MiB -> {before + grew:.0f} MiB")
    assert grew < 400, f"the core's peak RSS grew by {grew:.0f} MiB under the oversized-body load"
    # Agencies are served afterwards as before.
    with box.channel(f"agency-{MINISTER}") as ch:
        assert inquire(client.LinkageServiceStub(ch), mine[0]).provision.sealed
    text = metrics(box, "core")
    assert 'renkei_refused_total{port="mtls",reason="REQUEST_TOO_LARGE"}' in text
    assert 'renkei_refused_total{port="mtls",reason="PERMISSION_DENIED"} 16' in text
    assert 'renkei_refused_total{port="mtls",reason="PENALIZED"}' in text


# -- 3. no work that blocks the loop or a single worker --------------------------------------------


def test_validate_numbers_is_bounded_and_public_searches_are_bounded(box: RunningBox) -> None:
    with box.channel("agency-1", "jlis") as ch:
        stub = client.NumberServiceStub(ch)
        ok = stub.ValidateNumbers(npb.ValidateNumbersRequest(kind=npb.NUMBER_KIND_CORPORATE,
                                                             numbers=["8000020131016"] * 10_000), timeout=T)
        assert len(ok.results) == 10_000 and ok.results[0].valid
        code, reason, _ = failure(lambda: stub.ValidateNumbers(
            npb.ValidateNumbersRequest(kind=npb.NUMBER_KIND_CORPORATE, numbers=["1" * 12] * 100_000), timeout=T))
        assert (code, reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "REQUEST_TOO_LARGE")
    with box.public("nta") as ch:
        nta = client.CorporateNumberServiceStub(ch)
        # 5 million kinds do not even reach the registry (64 KiB on the public port) ...
        code, _, detail = failure(lambda: nta.SearchCorporations(
            cpb.SearchCorporationsRequest(name="デジタル", kinds=["999"] * 5_000_000), timeout=T))
        assert code is grpc.StatusCode.RESOURCE_EXHAUSTED and len(detail) < 1024
        # ... and unknown ones get a short answer that does not repeat them all.
        code, reason, detail = failure(lambda: nta.SearchCorporations(
            cpb.SearchCorporationsRequest(name="デジタル", kinds=[f"{i:03d}" for i in range(10)]), timeout=T))
        assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT") and len(detail) < 300
        page = nta.SearchCorporations(cpb.SearchCorporationsRequest(name="デジタル", kinds=["101", "101"]), timeout=T)
        assert page.total_count == 1


# -- 4. challenges: only for registered card keys, no lock-out -------------------------------------


def test_challenges_only_for_registered_keys_and_logins_never_locked_out(box: RunningBox, people: list[str]) -> None:
    card = Ed25519PrivateKey.generate()
    public = card.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    with box.channel("jlis", "jlis") as ch:
        key_id = client.NumberServiceStub(ch).RegisterCardKey(
            npb.RegisterCardKeyRequest(individual_number=people[7], public_key=public), timeout=T).card_key_id
    with box.public("core") as ch:
        stub = client.DisclosureServiceStub(ch)
        code, _, detail = failure(lambda: stub.CreateChallenge(
            dpb.CreateChallengeRequest(card_key_id=os.urandom(32)), timeout=T))
        assert code is grpc.StatusCode.UNAUTHENTICATED and "not registered" in detail
        for _ in range(300):  # an attacker asking for this person's key: costs the server nothing
            stub.CreateChallenge(dpb.CreateChallengeRequest(card_key_id=key_id), timeout=T)
        c = stub.CreateChallenge(dpb.CreateChallengeRequest(card_key_id=key_id), timeout=T)
        session = stub.Login(dpb.LoginRequest(card_key_id=key_id, challenge=c.challenge,
                                              signature=card.sign(login_message(c.challenge))), timeout=T)
        auth = [("authorization", f"Bearer {session.session_token}")]
        # 11: a page token with a negative position is a clear INVALID_ARGUMENT, not INTERNAL.
        bad = encode_page_token(-5, b"my-records")
        code, _, _ = failure(lambda: stub.ListMyRecords(dpb.ListMyRecordsRequest(page_token=bad), timeout=T,
                                                             metadata=auth))
        assert code is grpc.StatusCode.INVALID_ARGUMENT
        stub.ListMyRecords(dpb.ListMyRecordsRequest(), timeout=T, metadata=auth)


# -- 5. per-agency budgets ------------------------------------------------------------------------


def test_denial_budget_refuses_a_batch_of_junk_whole_and_shows_in_metrics(box: RunningBox) -> None:
    size = ledger_size(box)
    with box.channel(f"agency-{GOVERNOR}") as ch:
        stub = client.LinkageServiceStub(ch)
        junk = os.urandom(16 * 1000)  # 1,000 forged codes: 1,000 denials, more than the 400 left
        code, reason, detail = failure(lambda: stub.BatchInquire(batch_inquiry(junk, AFFAIR, CHIYODA, [ITEM]),
                                                                 timeout=T))
        assert (code, reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "RATE_LIMITED"), detail
        assert "1000 denials" in detail
    assert ledger_size(box) == size, "a refused batch records nothing"
    text = metrics(box, "core")
    assert 'renkei_limit{name="core.denial_burst"} 400' in text
    assert 'renkei_limit{name="core.denials_per_second"} 1' in text
    with box.channel(f"agency-{GOVERNOR}") as ch:
        stub = client.LinkageServiceStub(ch)
        small = stub.BatchInquire(batch_inquiry(os.urandom(16 * 300), AFFAIR, CHIYODA, [ITEM]), timeout=T)
        assert set(small.outcomes) == {lpb.DENIAL_CODE_CODE_REFUSED}
        # Now the budget is spent: even one more junk inquiry is refused before it is decided.
        for _ in range(200):
            try:
                inquire(stub, os.urandom(16))
            except grpc.RpcError as e:
                if error_info(e).reason == "RATE_LIMITED":  # type: ignore[union-attr]
                    break
        else:
            raise AssertionError("the denial budget never ran out")
    text = metrics(box, "core")
    assert f'renkei_rate_limited_total{{agency="{GOVERNOR}",budget="denials"}}' in text
    assert f'renkei_agency_budget{{agency="{GOVERNOR}",budget="denials"}}' in text


# -- 6. a request id names one request ---------------------------------------------------------------


def test_request_ids_are_bound_to_the_request(box: RunningBox, people: list[str]) -> None:
    mine = codes_of(box, MINISTER, people[10:14])
    codes_of(box, CHIYODA, people[10:14])
    with box.channel(f"agency-{MINISTER}") as ch:
        stub = client.LinkageServiceStub(ch)
        first = inquire(stub, mine[0], request_id="rid-1")
        size = ledger_size(box)
        again = inquire(stub, mine[0], request_id="rid-1")  # the identical retry: the first answer
        assert again == first and ledger_size(box) == size
        forged = bytearray(mine[0])
        forged[3] ^= 1
        for label, call in [
            ("another person", lambda: inquire(stub, mine[1], request_id="rid-1")),
            ("a forged code", lambda: inquire(stub, bytes(forged), request_id="rid-1")),
            ("another affair", lambda: inquire(stub, mine[0], affair="B2.2", request_id="rid-1")),
            ("another provider", lambda: inquire(stub, mine[0], provider=YOKOHAMA, request_id="rid-1")),
            ("a batch", lambda: stub.BatchInquire(batch_inquiry(mine[0], AFFAIR, CHIYODA, [ITEM],
                                                                 request_id="rid-1"), timeout=T)),
        ]:
            code, reason, _ = failure(call)
            assert (code, reason) == (grpc.StatusCode.ALREADY_EXISTS, "REQUEST_ID_REUSED"), label
        recs = records_since(box, size, MINISTER)
        assert [r.outcome for r in recs] == ["REQUEST_ID_REUSED"] * 5
        # After the holding is released, the identical retry is decided again: refused, recorded.
        second = inquire(stub, mine[2], request_id="rid-2")
        stub.ReleaseHolding(lpb.ReleaseHoldingRequest(agency_code=mine[2]), timeout=T)
        size = ledger_size(box)
        code, reason, _ = failure(lambda: inquire(stub, mine[2], request_id="rid-2"))
        assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "CODE_REFUSED")
        assert [r.outcome for r in records_since(box, size, MINISTER)] == ["CODE_REFUSED"]
        assert second.record_sequence < size
        # After the requester's PIA is revoked, likewise (and its own PIA problem is named).
        inquire(stub, mine[3], request_id="rid-3")
    revoke_pia(box, MINISTER)
    try:
        with box.channel(f"agency-{MINISTER}") as ch:
            stub = client.LinkageServiceStub(ch)
            size = ledger_size(box)
            code, reason, _ = failure(lambda: inquire(stub, mine[3], request_id="rid-3"))
            assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "PIA_NOT_APPROVED")
            assert [r.outcome for r in records_since(box, size, MINISTER)] == ["REQUESTER_NOT_ELIGIBLE"]
    finally:
        approve_new_pia(box, MINISTER)


# -- 12. every decided inquiry is recorded; another agency's PIA is not told ------------------------


def test_inquiries_to_unknown_or_ineligible_providers_are_recorded(box: RunningBox, people: list[str]) -> None:
    mine = codes_of(box, MINISTER, people[20:22])
    with box.channel(f"agency-{MINISTER}") as ch:
        stub = client.LinkageServiceStub(ch)
        size = ledger_size(box)
        code, reason, detail = failure(lambda: inquire(stub, mine[0], provider=4242))
        assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "PROVIDER_UNAVAILABLE")
        recs = records_since(box, size, MINISTER)
        assert [(r.outcome, r.provider_agency_id) for r in recs] == [("PROVIDER_UNAVAILABLE", 4242)]
    revoke_pia(box, CHIYODA)
    try:
        with box.channel(f"agency-{MINISTER}") as ch:
            stub = client.LinkageServiceStub(ch)
            size = ledger_size(box)
            code, reason, detail = failure(lambda: inquire(stub, mine[1]))
            assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "PROVIDER_UNAVAILABLE")
            assert "評価書" not in detail and "revoked" not in detail and "PIA " not in detail, detail
            recs = records_since(box, size, MINISTER)
            assert [(r.outcome, r.provider_agency_id) for r in recs] == [("PROVIDER_UNAVAILABLE", CHIYODA)]
            assert b"\xe8\xa9\x95\xe4\xbe\xa1\xe6\x9b\xb8" not in recs[0].leaf_data  # no PIA title in the record
    finally:
        approve_new_pia(box, CHIYODA)


# -- 11 and 14. clear errors instead of INTERNAL; agencies are registered once ----------------------


def test_admin_inputs_get_clear_errors_and_agencies_are_not_duplicated(box: RunningBox) -> None:
    with box.channel("operator") as ch:
        admin = client.AdminServiceStub(ch)
        emoji = admin.CreateAgency(apb.CreateAgencyRequest(name="😀" * 64, type_ids=["municipal_mayor"],
                                                           local_government_code="132012"), timeout=T)
        assert emoji.name == "😀" * 64
        for name in ("府中\x00市長", "府中\n市長", "😀" * 65, "   "):
            code, _, _ = failure(lambda n=name: admin.CreateAgency(apb.CreateAgencyRequest(
                name=n, type_ids=["municipal_mayor"], local_government_code="132063"), timeout=T))
            assert code is grpc.StatusCode.INVALID_ARGUMENT, repr(name)
        # The same agency again (corporate number and type): ALREADY_EXISTS, naming the first.
        code, reason, detail = failure(lambda: admin.CreateAgency(apb.CreateAgencyRequest(
            name="八王子市長 (again)", type_ids=["municipal_mayor"], local_government_code="132012"), timeout=T))
        assert (code, reason) == (grpc.StatusCode.ALREADY_EXISTS, "ALREADY_EXISTS") and str(emoji.agency_id) in detail
        code, _, _ = failure(lambda: admin.CreateAgency(apb.CreateAgencyRequest(
            name="千代田区長 (again)", type_ids=["municipal_mayor"], local_government_code="131016"), timeout=T))
        assert code is grpc.StatusCode.ALREADY_EXISTS
        # The same legal person as another organ (its board of education) is another agency.
        board = admin.CreateAgency(apb.CreateAgencyRequest(
            name="八王子市教育委員会", type_ids=["municipal_board_of_education"], local_government_code="132012"),
            timeout=T)
        assert board.agency_id != emoji.agency_id
        for body in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 3000 + b"1" + b"}" * 3000):
            code, _, _ = failure(lambda b=body: admin.LoadPermissionTable(apb.LoadPermissionTableRequest(
                table_json=b, effective_from="2031-01-01"), timeout=T))
            assert code is grpc.StatusCode.INVALID_ARGUMENT
        table = (Path(__file__).resolve().parent.parent / "pyservice/renkei/data/permissions/beppyo2-2015.json")
        for day in ("0001-01-01", "9999-12-31"):
            code, _, _ = failure(lambda d=day: admin.LoadPermissionTable(apb.LoadPermissionTableRequest(
                table_json=table.read_bytes(), effective_from=d), timeout=T))
            assert code is grpc.StatusCode.INVALID_ARGUMENT, day


def test_metrics_bind_loopback_only(box: RunningBox) -> None:
    for service in ("core", "jlis", "nta"):
        assert box.service(service)["metrics"].startswith("127.0.0.1:")
