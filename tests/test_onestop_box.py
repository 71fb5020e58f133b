"""ワンストップ申請 end to end across the real processes of a box: the person applies at the portal
(a form, the document signed with their card's 署名用 key, checked with the JPKI CA and OCSP),
the portal delivers it to 千代田区's intermediate server, the business side reads it (the
applicant identified by the certificate's 基本4情報), fetches 横浜市's 地方税関係情報 through the
normal inquiry path (別表第二 74の項) for the application and decides it; the person sees the status
and the exchange, with its proof checked, in 申請状況. Refusals: a bad or foreign signature, a
revoked 署名用 certificate, a replayed submission, a tampered delivery, the wrong caller."""

from __future__ import annotations

import base64
import html
import json
import re
import subprocess
import sys
from collections.abc import Iterator

import grpc
import pytest
from cryptography import x509

from renkei import client
from renkei._proto.renkei.v1 import intermediate_service_pb2 as ipb
from renkei._proto.renkei.v1.intermediate_service_pb2_grpc import IntermediateServiceStub
from renkei.jpki.card import Card
from renkei.jpki.demo import DEMO_HOLDERS, DEMO_SIGN_PIN
from renkei.jpki.profile import signing_facts
from renkei.portal.reader import sign_response
from tests.grpc_server import RunningBox, start_box
from tests.portal_helpers import (
    CHIYODA,
    YOKOHAMA,
    T,
    Visit,
    atena,
    card_path,
    demo_number,
    municipal_mid,
    portal_url,
    refusal_reason,
    register_resident,
)

FORM = {"procedure": "child-allowance-claim", "municipality": str(CHIYODA), "child_name": "デモ 一郎",
        "child_birth": "2024-05-01", "relationship": "子", "bank_account": "デモ銀行 千代田支店 普通 1234567"}


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBox]:
    b = start_box(tmp_path_factory.mktemp("onestop") / "box", persons=0)
    yield b
    rc, out = b.terminate()
    assert rc == 0, out


def _csrf(page: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', page)
    assert m, page
    return m.group(1)


def _document(v: Visit, form: dict[str, str] = FORM) -> tuple[bytes, str]:
    """The application document the portal shows to be signed, and the CSRF token."""
    page = v.get("/apply").text
    r = v.post("/apply", {**form, "csrf": _csrf(page)})
    assert r.status_code == 200, r.text
    m = re.search(r'<pre id="document">(.*?)</pre>', r.text, re.S)
    assert m, r.text
    return html.unescape(m.group(1)).encode(), _csrf(r.text)


def _sign(box: RunningBox, n: int, document: bytes) -> str:
    with Card(card_path(box, n), box.root / "jpki") as card:
        return json.dumps(sign_response(card, DEMO_SIGN_PIN, document))


def _logged_in(box: RunningBox, n: int) -> Visit:
    v = Visit(portal_url(box))
    assert v.login(box, n).status_code == 303
    return v


def test_apply_fetch_through_the_inquiry_path_decide_and_the_person_sees_it(box: RunningBox) -> None:
    register_resident(box, 1)
    v = _logged_in(box, 1)
    page = v.get("/apply").text
    for label in ("申請先の市区町村", "児童の氏名", "児童の生年月日", "振込先口座"):
        assert label in page
    assert "千代田区長" in page and "児童手当" in page
    document, csrf = _document(v)
    doc = json.loads(document)
    assert doc["fields"]["child_name"] == "デモ 一郎" and doc["municipality"] == CHIYODA
    assert demo_number(box, 1) not in document.decode()
    saved = v.get("/apply/document")  # the file the card reader signs: the same bytes
    assert saved.content == document and "attachment" in saved.headers["content-disposition"]
    # The card reader as a person runs it: the PIN stays on their machine.
    path = box.root / "application.json"
    path.write_bytes(saved.content)
    answer = subprocess.run([sys.executable, "-m", "renkei.cli", "card", "sign", "--portal", "--card",
                             str(card_path(box, 1)), "--pin", DEMO_SIGN_PIN, "--data-file", str(path)],
                            check=True, capture_output=True, text=True).stdout
    r = v.post("/apply/submit", {"csrf": csrf, "response": answer})
    assert r.status_code == 303, r.text
    m = re.fullmatch(r"/applications\?submitted=1-(\d+)", r.headers["location"])
    assert m, r.headers["location"]
    app_id = int(m.group(1))
    page = v.get(r.headers["location"]).text
    assert f"受付番号 {app_id}" in page and 'data-status="受付"' in page

    # The municipality's business side: the application as signed, the applicant by the 基本4情報.
    mid = municipal_mid(box, CHIYODA)
    got = [a for a in mid.ListApplications(ipb.ListApplicationsRequest(), timeout=T).applications
           if a.application_id == app_id]
    assert len(got) == 1 and got[0].document == document and got[0].status == "受付"
    facts = signing_facts(x509.load_der_x509_certificate(got[0].certificate))
    assert (facts.name, facts.address) == (DEMO_HOLDERS[0][1].name, DEMO_HOLDERS[0][1].address)
    assert municipal_mid(box, YOKOHAMA).ListApplications(ipb.ListApplicationsRequest(), timeout=T).applications == []

    # It fetches the income itself (no 課税証明書 attached), for this application.
    ans = mid.Inquire(ipb.MidInquireRequest(
        integrated_address_number=atena(CHIYODA, 1), affair="B2.74", provider_agency_id=YOKOHAMA,
        items=["local_tax_info"], conditions=ipb.InquiryConditions(fiscal_year=2025), application_id=app_id),
        timeout=T)
    assert ans.outcome == "provided" and json.loads(ans.records[0].payload_json)["総所得金額"] == 4_200_000
    page = v.get("/applications").text
    assert 'data-status="情報照会済"' in page
    done = mid.UpdateApplication(ipb.UpdateApplicationRequest(
        application_id=app_id, status="決定", note="令和8年2月分から支給します。"), timeout=T)
    assert done.status == "決定" and [e.inquiry_record_sequence for e in done.exchanges] == [
        ans.inquiry_record_sequence]

    page = v.get("/applications").text
    section = re.search(rf'<section class="box application" data-id="1-{app_id}".*?</section>', page, re.S)
    assert section, page
    s = section.group(0)
    assert 'data-status="決定"' in s and "令和8年2月分から支給します。" in s
    assert f'data-seq="{ans.inquiry_record_sequence}"' in s
    assert "横浜市長" in s and "地方税関係情報" in s and "✔ 検証済み" in s
    # The same exchange is in the person's やりとり履歴.
    assert "横浜市長" in v.get("/records").text

    # A decided application takes no more inquiries; another tenant's id is not found.
    with pytest.raises(grpc.RpcError) as e:
        mid.Inquire(ipb.MidInquireRequest(
            integrated_address_number=atena(CHIYODA, 1), affair="B2.74", provider_agency_id=YOKOHAMA,
            items=["local_tax_info"], application_id=app_id), timeout=T)
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.RpcError) as e:
        municipal_mid(box, YOKOHAMA).UpdateApplication(ipb.UpdateApplicationRequest(
            application_id=app_id, status="却下"), timeout=T)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_bad_foreign_and_replayed_signatures_are_refused_and_nothing_is_delivered(box: RunningBox) -> None:
    before = len(municipal_mid(box, CHIYODA).ListApplications(ipb.ListApplicationsRequest(), timeout=T).applications)
    v = _logged_in(box, 1)
    document, csrf = _document(v)
    answer = json.loads(_sign(box, 1, document))
    answer["signature"] = base64.b64encode(b"\x00" * 256).decode()
    r = v.post("/apply/submit", {"csrf": csrf, "response": json.dumps(answer)})
    assert r.status_code == 401 and refusal_reason(r) == "bad_signature"
    # A signature over another document (what a page altered after display would get).
    document, csrf = _document(v)
    r = v.post("/apply/submit", {"csrf": csrf, "response": _sign(box, 1, document.replace(
        "デモ 一郎".encode(), "デモ 二郎".encode()))})
    assert refusal_reason(r) == "bad_signature"
    # The document is used once: posting again finds none.
    r = v.post("/apply/submit", {"csrf": csrf, "response": _sign(box, 1, document)})
    assert r.status_code == 400 and refusal_reason(r) == "replayed"
    # A 利用者証明用 (login) signature is not a 署名用 one.
    document, csrf = _document(v)
    with Card(card_path(box, 1), box.root / "jpki") as card:
        auth = card.sign_challenge("1234", document[:64])
    r = v.post("/apply/submit", {"csrf": csrf, "response": json.dumps({
        "signature": base64.b64encode(auth.signature).decode(),
        "certificate": base64.b64encode(auth.certificate_der).decode()})})
    assert refusal_reason(r) == "untrusted"
    # A form carrying a My Number is refused before anything is signed.
    page = v.get("/apply").text
    r = v.post("/apply", {**FORM, "relationship": f"子 {demo_number(box, 1)}", "csrf": _csrf(page)})
    assert r.status_code == 400 and "個人番号を書かないでください" in r.text
    after = len(municipal_mid(box, CHIYODA).ListApplications(ipb.ListApplicationsRequest(), timeout=T).applications)
    assert after == before


def test_a_revoked_signature_certificate_is_refused(box: RunningBox) -> None:
    v = _logged_in(box, 2)  # logged in with the 利用者証明用 certificate, still valid
    with Card(card_path(box, 2), box.root / "jpki") as card:
        card_id = card.card_id
    subprocess.run([sys.executable, "-m", "renkei.cli", "jpki", "revoke", "--data-dir", str(box.root / "jpki"),
                    "--card-id", card_id, "--kind", "sign", "--reason", "keyCompromise"], check=True,
                   capture_output=True)
    document, csrf = _document(v)
    r = v.post("/apply/submit", {"csrf": csrf, "response": _sign(box, 2, document)})
    assert r.status_code == 401 and refusal_reason(r) == "revoked" and "署名用電子証明書は失効" in r.text


def test_the_mid_takes_deliveries_only_from_the_portal_and_only_as_signed(box: RunningBox) -> None:
    v = _logged_in(box, 1)
    document, _csrf_token = _document(v)
    answer = json.loads(_sign(box, 1, document))
    sig, cert = base64.b64decode(answer["signature"]), base64.b64decode(answer["certificate"])
    tls = box.root / "portal" / "mid-client"
    target = box.target("mid-municipal")
    with client.mtls_channel(target, certificate=tls / "cert.pem", private_key=tls / "key.pem",
                             ca=tls / "ca.pem") as ch:
        portal = IntermediateServiceStub(ch)
        tampered = document.replace("デモ銀行".encode(), "悪い銀行".encode())
        for req, code in (
                (ipb.DeliverApplicationRequest(agency_id=CHIYODA, document=tampered, signature=sig, certificate=cert),
                 grpc.StatusCode.INVALID_ARGUMENT),
                (ipb.DeliverApplicationRequest(agency_id=6, document=document, signature=sig, certificate=cert),
                 grpc.StatusCode.INVALID_ARGUMENT),  # 東京都: not a municipality
                (ipb.DeliverApplicationRequest(agency_id=YOKOHAMA, document=document, signature=sig,
                                               certificate=cert), grpc.StatusCode.INVALID_ARGUMENT)):
            with pytest.raises(grpc.RpcError) as e:
                portal.DeliverApplication(req, timeout=T)
            assert e.value.code() == code, req.agency_id
        with pytest.raises(grpc.RpcError) as e:
            portal.ListApplications(ipb.ListApplicationsRequest(), timeout=T)
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as e:
        municipal_mid(box, CHIYODA).DeliverApplication(ipb.DeliverApplicationRequest(
            agency_id=CHIYODA, document=document, signature=sig, certificate=cert), timeout=T)
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
