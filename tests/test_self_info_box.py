"""あなたの情報 (自己情報表示) across the real processes of a box: マイナポータル, an agency of the
core's registry under its own table version (番号法 附則第6条), is issued its own code for the
logged-in person, inquires the agencies through the intermediate-server flow, opens and verifies
the sealed answers and shows them; each fetch is a 照会 + 提供 the person then sees (proofs
verified) in やりとり履歴; the core refuses the portal anything else; the commission's audit
accepts the portal's records with the table and fails without it; the 自己情報取得API serves the
same fetch under a third scope; the portal's metrics count logins and fetches."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import grpc
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from renkei import client
from renkei._proto.renkei.v1 import disclosure_service_pb2 as dpb
from renkei._proto.renkei.v1 import linkage_service_pb2 as lpb
from renkei._proto.renkei.v1.disclosure_service_pb2_grpc import DisclosureServiceStub
from renkei.errors import ProvisionTamperedError
from renkei.jpki.card import Card
from renkei.linkage.disclosure import login_message
from renkei.mid.platform import Platform
from renkei.mid.sealing import new_recipient_key
from renkei.portal.reader import card_response
from renkei.service.status import error_info
from tests.grpc_server import RunningBox, start_box
from tests.portal_helpers import CHIYODA, PIN, YOKOHAMA, T, Visit, card_path, demo_number, portal_url, register_resident

PORTAL, PENSION, INSURER = 7, 3, 5


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBox]:
    b = start_box(tmp_path_factory.mktemp("selfinfo") / "box", persons=0)
    yield b
    rc, out = b.terminate()
    assert rc == 0, out


@pytest.fixture(scope="module")
def resident(box: RunningBox) -> int:
    """Demo person 1: held by 千代田区 (no 副本) and 横浜市 (its 地方税 副本), by no national body."""
    register_resident(box, 1)
    return 1


def _csrf(page: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', page)
    assert m, page
    return m.group(1)


def _logged_in(box: RunningBox, n: int) -> Visit:
    v = Visit(portal_url(box))
    assert v.login(box, n).status_code == 303
    return v


def _states(page: str) -> dict[int, str]:
    return {int(a): s for a, s in re.findall(r'data-provider="(\d+)" data-state="([a-z_]+)"', page)}


def _core_session(box: RunningBox, n: int) -> str:
    """The person's own DisclosureService session at the core (what the portal holds after a login)."""
    with box.public("core") as ch:
        stub = DisclosureServiceStub(ch)
        challenge = bytes(stub.CreateChallenge(dpb.CreateChallengeRequest(), timeout=T).challenge)
        with Card(card_path(box, n), box.root / "jpki") as card:
            answer = card_response(card, PIN, login_message(challenge))
        cert = x509.load_der_x509_certificate(base64.b64decode(answer["certificate"]))
        key_id = hashlib.sha256(cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
                                ).digest()
        r = stub.Login(dpb.LoginRequest(card_key_id=key_id, challenge=challenge,
                                        signature=base64.b64decode(answer["signature"])), timeout=T)
    return str(r.session_token)


def test_open_anata_no_joho_see_the_data_then_its_records_verified(box: RunningBox, resident: int) -> None:
    v = _logged_in(box, resident)
    page = v.get("/myinfo")
    assert page.status_code == 200 and '<a href="/myinfo">あなたの情報</a>' in page.text
    # A labelled form: one checkbox per agency the table lets the portal ask, named in Japanese.
    for label in ("千代田区長：地方税関係情報、住民票関係情報", "横浜市長：地方税関係情報、住民票関係情報",
                  "日本年金機構：年金給付関係情報", "全国健康保険協会：医療保険給付関係情報"):
        assert label in page.text, label
    assert len(re.findall(r'<label for="src-a\d+"', page.text)) == 4
    assert "厚生労働大臣：" not in page.text  # no row lets the portal ask the ministry
    form = {"csrf": _csrf(page.text), "a1": "on", "a2": "on", "a3": "on", "a5": "on"}
    r = v.post("/myinfo", form)
    assert r.status_code == 200, r.text
    # 横浜市 provided (signature checked, opened), 千代田区 holds the person but has no record,
    # the national bodies do not hold them.
    assert _states(r.text) == {YOKOHAMA: "provided", CHIYODA: "no_data", PENSION: "not_holding",
                               INSURER: "not_holding"}
    for want in ("提供あり", "提供なし", "提供元不在", "提供元の電子署名を確認済み", "地方税関係情報", "2025年度",
                 "総所得金額", "4200000", "市町村民税額", "180000"):
        assert want in r.text, want
    assert demo_number(box, resident) not in r.text
    seqs = [int(x) for x in re.findall(r"照会記録 #(\d+)", r.text)]
    assert len(seqs) == 2  # the provided and the no-data fetch came back with their ledger records

    # The fetches are in the person's やりとり履歴 at once, with the portal as 照会機関, verified.
    records = v.get("/records").text
    for seq in seqs:
        row = re.search(rf'<tr data-sequence="{seq}">(.*?)</tr>', records, re.S)
        assert row, records
        for want in ("マイナポータル（デジタル庁）", "自己情報表示", "地方税関係情報", "✔ 検証済み"):
            assert want in row.group(1), (want, row.group(1))
    # So are the refused ones (the core recorded them: 提供元不在, providers that do not hold the person).
    assert records.count("マイナポータル（デジタル庁）") >= 4
    assert records.count("照会できませんでした（提供元不在：提供機関はあなたの情報を保有していません）") >= 2
    # Nothing fetched is kept: a fresh page shows the form, not the data.
    again = v.get("/myinfo").text
    assert "4200000" not in again and "myinfo-results" not in again
    assert not any(b"4200000" in p.read_bytes() for p in (box.root / "portal").rglob("*") if p.is_file())


def test_choosing_nothing_or_a_forged_form_is_refused(box: RunningBox, resident: int) -> None:
    v = _logged_in(box, resident)
    page = v.get("/myinfo").text
    r = v.post("/myinfo", {"csrf": _csrf(page)})
    assert r.status_code == 400 and 'data-reason="nothing_chosen"' in r.text
    assert v.post("/myinfo", {"csrf": "forged", "a2": "on"}).status_code == 400
    assert Visit(portal_url(box)).post("/myinfo", {"a2": "on"}).status_code == 400
    assert Visit(portal_url(box)).get("/myinfo").headers["location"] == "/login"


def test_the_core_issues_the_session_code_to_the_portal_only_and_allows_only_its_rows(
        box: RunningBox, resident: int) -> None:
    token = _core_session(box, resident)
    with box.channel("agency-4") as ch:  # the ministry: not the disclosure system
        with pytest.raises(grpc.RpcError) as e:
            client.LinkageServiceStub(ch).IssueSessionCode(lpb.IssueSessionCodeRequest(session_token=token), timeout=T)
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with box.channel(f"agency-{PORTAL}") as ch:
        stub = client.LinkageServiceStub(ch)
        with pytest.raises(grpc.RpcError) as e:
            stub.IssueSessionCode(lpb.IssueSessionCodeRequest(session_token="no-such-session"), timeout=T)
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
        code = bytes(stub.IssueSessionCode(lpb.IssueSessionCodeRequest(session_token=token), timeout=T).agency_code)
        assert len(code) == 16 and demo_number(box, resident).encode() not in code

        def ask(affair: str, provider: int, items: list[str]) -> lpb.InquireResponse:
            private, public = new_recipient_key()
            r: lpb.InquireResponse = stub.Inquire(lpb.InquireRequest(
                agency_code=code, affair=affair, provider_agency_id=provider, information_items=items,
                terms=lpb.ProvisionTerms(recipient_public_key=public)), timeout=T)
            header, answer = Platform.open_answer(
                r.provision.header, r.provision.sealed, r.provision.signature, r.provider_certificate_pem,
                (box.pki / "ca.pem").read_bytes(), private, permit_id=bytes(r.permit_id), requester=PORTAL,
                provider=provider)
            assert header.outcome == "provided" and answer["persons"][0]["records"]
            return r

        ask("SD.1", YOKOHAMA, ["local_tax_info"])  # its row
        for affair, provider, items in (("B2.1", YOKOHAMA, ["local_tax_info"]),  # a 別表第二 row of another type
                                        ("SD.1", YOKOHAMA, ["pension_benefit_info"]),  # no such row
                                        ("B2.74", YOKOHAMA, ["local_tax_info"])):
            with pytest.raises(grpc.RpcError) as e:
                ask(affair, provider, items)
            assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED, (affair, items)
            info = error_info(e.value)
            assert info is not None and info.reason == "ROW_NOT_PERMITTED", (affair, items, info)
    # The answer is sealed to the key of that inquiry: no other key opens it.
    with pytest.raises(ProvisionTamperedError), box.channel(f"agency-{PORTAL}") as ch:
        _private, public = new_recipient_key()
        r = client.LinkageServiceStub(ch).Inquire(lpb.InquireRequest(
            agency_code=code, affair="SD.1", provider_agency_id=YOKOHAMA, information_items=["local_tax_info"],
            terms=lpb.ProvisionTerms(recipient_public_key=public)), timeout=T)
        Platform.open_answer(r.provision.header, r.provision.sealed, r.provision.signature,
                             r.provider_certificate_pem, (box.pki / "ca.pem").read_bytes(), new_recipient_key()[0],
                             permit_id=bytes(r.permit_id), requester=PORTAL, provider=YOKOHAMA)


def _audit(box: RunningBox, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "renkei.cli", "oversight", "audit", "--box",
                           str(box.root.parent / f"{box.root.name}.ready.json"),
                           "--out", str(out), "--fail-on-findings", *extra],
                          capture_output=True, text=True, timeout=120)


def test_the_commissions_audit_accepts_the_portals_records_with_its_table_and_fails_without(
        box: RunningBox, resident: int, tmp_path: Path) -> None:
    v = _logged_in(box, resident)
    r = v.post("/myinfo", {"csrf": _csrf(v.get("/myinfo").text), "a2": "on"})
    assert _states(r.text) == {YOKOHAMA: "provided"}
    for name, extra in (("named", ["--table", "self-disclosure-2024"]), ("shipped", [])):
        # Named, or taken because the records name a version shipped with renkei by its hash.
        ok = _audit(box, tmp_path / name, *extra)
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert "0 violation(s)" in ok.stdout, ok.stdout
        assert "beppyo2-2015+self-disclosure" in json.loads((tmp_path / name / "audit.json").read_text())[
            "tables"].values()
    # An auditor holding only the 2015 table: every permitted record of the portal is a violation.
    bad = _audit(box, tmp_path / "without", "--no-default-table", "--table", "beppyo2-2015")
    assert bad.returncode == 3, bad.stdout + bad.stderr
    assert "table_unknown" in bad.stdout and "violation(s)" in bad.stdout
    found = json.loads((tmp_path / "without" / "audit.json").read_text())
    assert found["findings"] and all(f["requester"] == PORTAL for f in found["findings"]
                                     if f["severity"] == "violation"), found["findings"]


def test_an_app_fetches_anata_no_joho_under_its_own_scope(box: RunningBox, resident: int) -> None:
    from renkei.portal.oauth import s256

    redirect = "http://127.0.0.1:8124/cb"
    out = subprocess.run([sys.executable, "-m", "renkei.cli", "portal", "add-client", "--data-dir",
                          str(box.root / "portal"), "--name", "家計アプリ", "--redirect-uri", redirect],
                         check=True, capture_output=True, text=True).stdout
    client_id = json.loads(out)["client_id"]
    verifier = base64.urlsafe_b64encode(os.urandom(48)).decode().rstrip("=")
    query = urlencode({"response_type": "code", "client_id": client_id, "redirect_uri": redirect,
                       "scope": "myinfo", "state": "s", "code_challenge": s256(verifier),
                       "code_challenge_method": "S256"})
    v = _logged_in(box, resident)
    consent = v.get(f"/oauth/authorize?{query}")
    assert "家計アプリ" in consent.text and "あなたの情報（各機関が保有するあなたの地方税関係情報" in consent.text
    r = v.post("/oauth/authorize", {"csrf": _csrf(consent.text), "request": query, "decision": "allow"})
    code = parse_qs(urlsplit(r.headers["location"]).query)["code"][0]
    app = httpx.Client(base_url=v.base, timeout=T)
    tok = app.post("/oauth/token", data={"grant_type": "authorization_code", "code": code, "client_id": client_id,
                                         "redirect_uri": redirect, "code_verifier": verifier}).json()
    assert tok["scope"] == "myinfo" and 0 < tok["expires_in"] <= 300
    auth = {"Authorization": f"Bearer {tok['access_token']}"}
    assert app.get("/api/v1/records", headers=auth).status_code == 403  # only the consented scope
    before = len(re.findall("マイナポータル（デジタル庁）", v.get("/records").text))
    got = app.get("/api/v1/myinfo", headers=auth)
    assert got.status_code == 200 and got.headers["cache-control"] == "no-store", got.text
    answers = {a["provider"]: a for a in got.json()["answers"]}
    yokohama = answers["横浜市長"]
    assert yokohama["state"] == "provided" and yokohama["status"] == "提供あり"
    assert yokohama["records"][0]["values"]["総所得金額"] == 4_200_000
    assert answers["日本年金機構"]["state"] == "not_holding"
    assert demo_number(box, resident) not in got.text
    # Every fetch is recorded: in 操作履歴 (the app's fetch) and in the ledger (the 照会 and 提供).
    assert "家計アプリ" in v.get("/operations").text
    after = len(re.findall("マイナポータル（デジタル庁）", v.get("/records").text))
    assert after > before
    assert app.get("/api/v1/myinfo").status_code == 401


def test_the_portals_metrics_count_logins_fetches_and_page_times(box: RunningBox, resident: int) -> None:
    v = _logged_in(box, resident)
    v.post("/myinfo", {"csrf": _csrf(v.get("/myinfo").text), "a2": "on"})
    text = httpx.get(f"http://127.0.0.1:{box.metrics_port('portal')}/metrics", timeout=T).text
    logins = re.search(r'renkei_portal_logins_total\{outcome="ok"\} (\d+)', text)
    assert logins and int(logins.group(1)) >= 1, text
    provided = re.search(r'renkei_portal_self_info_fetches_total\{state="provided",via="page"\} (\d+)', text)
    assert provided and int(provided.group(1)) >= 1, text
    count = re.search(r"renkei_portal_request_duration_seconds_count (\d+)", text)
    assert count and int(count.group(1)) >= 3, text
    assert demo_number(box, resident) not in text
    # The portal's code for the person is a holding at the core, like any acquisition's.
    core = httpx.get(f"http://127.0.0.1:{box.metrics_port('core')}/metrics", timeout=T).text
    held = re.search(r'renkei_holdings\{agency_type="information_disclosure_system"\} (\S+)', core)
    assert held and float(held.group(1)) >= 1, core


def test_an_answer_altered_on_the_way_is_never_shown(tmp_path: Path) -> None:
    """A core that alters what it relays (the fault seam of a malicious core): the portal's check
    of the provider's signature catches it and shows 検証失敗, never the data."""
    b = start_box(tmp_path / "box", persons=0, env={"RENKEI_FAULT_TAMPER_RELAY": "1"})
    try:
        register_resident(b, 1)
        v = _logged_in(b, 1)
        r = v.post("/myinfo", {"csrf": _csrf(v.get("/myinfo").text), "a2": "on"})
        assert r.status_code == 200, r.text
        assert _states(r.text) == {YOKOHAMA: "tampered"}
        assert "検証失敗" in r.text and "4200000" not in r.text and "総所得金額" not in r.text
    finally:
        rc, out = b.terminate()
    assert rc == 0, out
