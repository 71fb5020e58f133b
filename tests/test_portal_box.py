"""マイナポータル in a running box, over HTTP as a browser would use it (no JavaScript needed):
card login (JPKI check + the core's own check), refusals with a clear page, sessions and CSRF,
やりとり履歴 with every proof checked by the portal and downloadable."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from renkei.jpki.ca import Jpki
from renkei.jpki.card import Card, issue_demo_card
from renkei.jpki.profile import BasicFacts
from renkei.ledger import opens, verify_inclusion
from renkei.witness.note import SignedNote, Verifier
from tests.grpc_server import RunningBox, start_box
from tests.portal_helpers import (
    PIN,
    Visit,
    card_path,
    demo_number,
    inquire_about,
    portal_url,
    refusal_reason,
)


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBox]:
    b = start_box(tmp_path_factory.mktemp("portal") / "box", persons=0)
    yield b
    rc, out = b.terminate()
    assert rc == 0, out


def _answer(signature: bytes, certificate: bytes) -> str:
    return json.dumps({"result": "0", "signature": base64.b64encode(signature).decode(),
                       "certificate": base64.b64encode(certificate).decode()})


def _visit(box: RunningBox) -> Visit:
    return Visit(portal_url(box))


def test_login_then_the_inquiry_of_seconds_ago_with_its_proof_verified(box: RunningBox) -> None:
    seq = inquire_about(box, demo_number(box, 1))
    v = _visit(box)
    assert v.get("/records").headers["location"] == "/login"
    r = v.login(box, 1)
    assert r.status_code == 303 and r.headers["location"] == "/records", r.text
    cookie = next(c for c in v.last_set_cookies if c.startswith("portal_session="))
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=strict" in cookie, cookie
    page = v.get("/records")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store" and "frame-ancestors 'none'" in page.headers[
        "content-security-policy"]
    row = re.search(rf'<tr data-sequence="{seq}">(.*?)</tr>', page.text, re.S)
    assert row, page.text
    cells = row.group(1)
    # Japanese names from the permission table and the agency directory; the proof verified.
    for want in ("厚生労働大臣", "千代田区長", "別表第二 1の項", "地方税関係情報", "✔ 検証済み"):
        assert want in cells, (want, cells)
    assert "記録簿の署名を確認済み" in page.text and "ppc.renkei.example/witness の副署を確認済み" in page.text
    # The 提供 came back on the same row (提供日時 filled in), with its own proof.
    assert cells.count("/proof") == 2
    # No My Number anywhere on the page.
    assert demo_number(box, 1) not in page.text

    # The raw proof, downloaded, re-checks with nothing from the portal but the document.
    proof = v.get(f"/records/{seq}/proof")
    assert proof.headers["content-disposition"] == f'attachment; filename="renkei-proof-{seq}.json"'
    doc = proof.json()
    leaf = base64.b64decode(doc["leaf_data"])
    assert hashlib.sha256(b"\x00" + leaf).digest() == base64.b64decode(doc["leaf_hash"])
    assert opens(leaf, base64.b64decode(doc["person_opening"]))
    note = SignedNote.parse(doc["checkpoint"].encode())
    keys = [Verifier.parse(box.info["services"]["witness"]["vkey"])]
    assert [v_.name for v_, _ts in note.verify(keys)] == ["ppc.renkei.example/witness"]
    size, root = int(note.text.split("\n")[1]), base64.b64decode(note.text.split("\n")[2])
    verify_inclusion(doc["leaf_index"], size, base64.b64decode(doc["leaf_hash"]),
                     [base64.b64decode(h) for h in doc["audit_path"]], root)


def test_filters_and_paging(box: RunningBox) -> None:
    number = demo_number(box, 1)
    for _ in range(3):
        inquire_about(box, number)
    v = _visit(box)
    assert v.login(box, 1).status_code == 303
    everything = v.get("/records").text
    total = int(re.search(r"<p>(\d+) 件", everything).group(1))  # type: ignore[union-attr]
    assert total >= 4
    seqs = [int(s) for s in re.findall(r'<tr data-sequence="(\d+)">', everything)]
    assert seqs == sorted(seqs, reverse=True)  # newest first
    assert "0 件" in v.get("/records?agency=5").text  # 全国健康保険協会: no exchange with them
    assert f"{total} 件" in v.get("/records?agency=4").text
    assert "0 件" in v.get("/records?from=2000-01-01&to=2000-12-31").text
    assert f"{total} 件" in v.get("/records?from=2000-01-01").text


def test_replay_wrong_card_unregistered_card_and_bad_answers_are_refused(box: RunningBox) -> None:
    v = _visit(box)
    message, csrf = v.login_page()
    with Card(card_path(box, 1), box.root / "jpki") as card:
        signed = card.sign_challenge(PIN, message)
    answer = _answer(signed.signature, signed.certificate_der)
    login_cookie = dict(v.cookies)
    assert v.post("/login", {"csrf": csrf, "response": answer}).status_code == 303
    # Replayed: the same form (cookie, CSRF token, signature) posted again.
    replay = Visit(v.base, dict(login_cookie))
    r = replay.post("/login", {"csrf": csrf, "response": answer})
    assert r.status_code == 400 and refusal_reason(r) == "replayed"
    # The old signature on a new login page: its challenge is another.
    w = _visit(box)
    _message, csrf2 = w.login_page()
    r = w.post("/login", {"csrf": csrf2, "response": answer})
    assert r.status_code == 401 and refusal_reason(r) == "bad_signature" and "portal_session" not in w.cookies
    # The wrong card: card 2 signs, card 1's certificate is sent.
    w = _visit(box)
    message, csrf3 = w.login_page()
    with Card(card_path(box, 2), box.root / "jpki") as other:
        sig2 = other.sign_challenge(PIN, message).signature
    r = w.post("/login", {"csrf": csrf3, "response": _answer(sig2, signed.certificate_der)})
    assert refusal_reason(r) == "bad_signature" and "このカードでは" not in r.text
    # No CSRF token.
    w = _visit(box)
    w.login_page()
    assert refusal_reason(w.post("/login", {"response": answer})) == "replayed"
    # Garbage.
    w = _visit(box)
    _m, c4 = w.login_page()
    assert refusal_reason(w.post("/login", {"csrf": c4, "response": "not json"})) == "malformed"
    # A genuine JPKI card J-LIS never registered for a resident (issued outside the card office):
    # the JPKI check passes, the core refuses.
    with Jpki(box.root / "jpki") as jpki:
        facts = BasicFacts("外部 太郎", dt.date(1980, 1, 2), "1", "東京都千代田区千代田1-1")
        stray = issue_demo_card(jpki, box.root / "stray-cards", facts, auth_pin=PIN, sign_pin="ABC123")
    w = _visit(box)
    message, c5 = w.login_page()
    with Card(stray, box.root / "jpki") as card:
        s5 = card.sign_challenge(PIN, message)
    r = w.post("/login", {"csrf": c5, "response": _answer(s5.signature, s5.certificate_der)})
    assert r.status_code == 401 and refusal_reason(r) == "core_refused"


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, html
    return m.group(1)


def _delegate(v: Visit, label: str, scopes: tuple[str, ...] = ("records",)) -> tuple[int, str]:
    until = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    form = {"csrf": _csrf(v.get("/delegation").text), "label": label, "valid_until": until,
            **{f"scope_{x}": "on" for x in scopes}}
    page = v.post("/delegation", form).text
    code = re.search(r'<pre id="offer-code">([^<]+)</pre>', page)
    ids = re.findall(r'<tr data-delegation="(\d+)">', page)
    assert code and ids, page
    return int(ids[0]), code.group(1)


def test_delegate_view_as_agent_and_revoke_with_an_operations_log(box: RunningBox) -> None:
    import grpc

    from renkei import client
    from renkei._proto.renkei.v1 import linkage_service_pb2 as lpb
    from tests.portal_helpers import _codes

    seq = inquire_about(box, demo_number(box, 1))
    principal, agent = _visit(box), _visit(box)
    assert principal.login(box, 1).status_code == 303 and agent.login(box, 2).status_code == 303
    did, code = _delegate(principal, "母")
    assert agent.get(f"/delegation/{did}/records").status_code == 403  # not accepted yet
    # The principal cannot be their own agent; a wrong code is refused.
    r = principal.post("/delegation/accept", {"csrf": _csrf(principal.get("/delegation").text), "code": code})
    assert refusal_reason(r) == "invalid_argument"
    r = agent.post("/delegation/accept", {"csrf": _csrf(agent.get("/delegation").text), "code": "nope"})
    assert refusal_reason(r) == "not_found"
    assert agent.post("/delegation/accept", {"csrf": _csrf(agent.get("/delegation").text), "code": code}
                      ).status_code == 303
    page = agent.get("/delegation").text
    assert f'href="/delegation/{did}/records"' in page and "母" in page
    assert f'href="/delegation/{did}/notices"' not in page  # out of scope
    view = agent.get(f"/delegation/{did}/records")
    assert view.status_code == 200 and "代理人として閲覧しています" in view.text
    row = re.search(rf'<tr data-sequence="{seq}">(.*?)</tr>', view.text, re.S)
    assert row and "✔ 検証済み" in row.group(1), view.text
    assert agent.get(f"/delegation/{did}/records/{seq}/proof").json()["verified_by_portal"] is True
    assert agent.get(f"/delegation/{did}/notices").status_code == 403
    # A code is used once.
    r = agent.post("/delegation/accept", {"csrf": _csrf(agent.get("/delegation").text), "code": code})
    assert refusal_reason(r) == "not_found"
    # The agent cannot revoke; the principal can, alone, at once.
    r = agent.post(f"/delegation/{did}/revoke", {"csrf": _csrf(agent.get("/delegation").text)})
    assert refusal_reason(r) == "not_found"
    assert agent.get(f"/delegation/{did}/records").status_code == 200
    assert principal.post(f"/delegation/{did}/revoke", {"csrf": _csrf(principal.get("/delegation").text)}
                          ).status_code == 303
    assert agent.get(f"/delegation/{did}/records").status_code == 403
    assert "取消済み" in principal.get("/delegation").text
    # 操作履歴: the principal sees every step, the agent's view included.
    ops = re.findall(r'data-action="([a-z_]+)"', principal.get("/operations").text)
    assert ops[:5] == ["revoke", "view_records", "view_records", "accept", "delegate"], ops  # refusals are not views
    assert "代理人" in principal.get("/operations").text

    # 支援措置: the municipality flags the principal; delegations stop and none can be made.
    did2, code2 = _delegate(principal, "税理士", ("records", "notices"))
    assert agent.post("/delegation/accept", {"csrf": _csrf(agent.get("/delegation").text), "code": code2}
                      ).status_code == 303
    assert agent.get(f"/delegation/{did2}/notices").status_code == 200
    number = demo_number(box, 1)

    def flag(agency: int, on: bool) -> None:
        code = _codes(box, agency, number)
        with box.channel(f"agency-{agency}") as ch:
            client.LinkageServiceStub(ch).SetSupportMeasure(
                lpb.SetSupportMeasureRequest(agency_code=code, supported=on), timeout=30)

    with pytest.raises(grpc.RpcError) as e:
        flag(4, True)  # 厚生労働大臣 is no municipality
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    flag(1, True)
    try:
        assert agent.get(f"/delegation/{did2}/records").status_code == 403
        assert agent.get(f"/delegation/{did2}/notices").status_code == 403
        r = principal.post("/delegation", {"csrf": _csrf(principal.get("/delegation").text), "label": "x",
                                           "scope_records": "on",
                                           "valid_until": (dt.date.today() + dt.timedelta(days=3)).isoformat()})
        assert refusal_reason(r) == "failed_precondition" and "支援措置" in r.text
    finally:
        flag(1, False)
    assert agent.get(f"/delegation/{did2}/records").status_code == 200


def _add_app(box: RunningBox, name: str, redirect: str) -> str:
    out = subprocess.run([sys.executable, "-m", "renkei.cli", "portal", "add-client", "--data-dir",
                          str(box.root / "portal"), "--name", name, "--redirect-uri", redirect],
                         check=True, capture_output=True, text=True).stdout
    return str(json.loads(out)["client_id"])


def test_an_app_fetches_with_oauth_pkce_after_consent_and_every_fetch_is_recorded(box: RunningBox) -> None:
    from urllib.parse import parse_qs, urlencode, urlsplit

    from renkei.portal.oauth import s256

    redirect = "http://127.0.0.1:8123/callback"
    client_id = _add_app(box, "家計簿アプリ", redirect)
    seq = inquire_about(box, demo_number(box, 1))
    verifier = base64.urlsafe_b64encode(os.urandom(48)).decode().rstrip("=")
    query = urlencode({"response_type": "code", "client_id": client_id, "redirect_uri": redirect,
                       "scope": "records", "state": "st-1", "code_challenge": s256(verifier),
                       "code_challenge_method": "S256"})
    v = _visit(box)
    # Not logged in: to the login page, and back to the request after the login.
    r = v.get(f"/oauth/authorize?{query}")
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    message, csrf = v.login_page_from(v.get(r.headers["location"]).text)
    from renkei.portal.reader import card_response

    with Card(card_path(box, 1), box.root / "jpki") as card:
        answer = json.dumps(card_response(card, PIN, message))
    r = v.post("/login", {"csrf": csrf, "response": answer})
    assert r.headers["location"] == f"/oauth/authorize?{query}"
    consent = v.get(r.headers["location"])
    assert "家計簿アプリ" in consent.text and "やりとり履歴（情報提供等記録）" in consent.text
    assert "form-action 'self' http://127.0.0.1:8123" in consent.headers["content-security-policy"]
    # An unregistered redirect URI is never redirected to.
    bad = v.get("/oauth/authorize?" + query.replace("8123", "9999"))
    assert bad.status_code == 400 and refusal_reason(bad) == "invalid_redirect_uri"
    # Denied: the app is told so.
    r = v.post("/oauth/authorize", {"csrf": _csrf(consent.text), "request": query, "decision": "deny"})
    assert parse_qs(urlsplit(r.headers["location"]).query) == {"error": ["access_denied"], "state": ["st-1"]}
    # Allowed: a code, exchanged with the verifier for a short-lived token.
    r = v.post("/oauth/authorize", {"csrf": _csrf(consent.text), "request": query, "decision": "allow"})
    back = urlsplit(r.headers["location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == redirect
    got = parse_qs(back.query)
    assert got["state"] == ["st-1"]
    app = httpx.Client(base_url=v.base, timeout=30)
    exchange = {"grant_type": "authorization_code", "code": got["code"][0], "client_id": client_id,
                "redirect_uri": redirect}
    assert app.post("/oauth/token", data={**exchange, "code_verifier": "x" * 43}).json()["error"] == "invalid_grant"
    # (the failed attempt used the code up: a fresh consent gives a fresh code)
    r = v.post("/oauth/authorize", {"csrf": _csrf(consent.text), "request": query, "decision": "allow"})
    exchange["code"] = parse_qs(urlsplit(r.headers["location"]).query)["code"][0]
    tok = app.post("/oauth/token", data={**exchange, "code_verifier": verifier})
    assert tok.status_code == 200 and tok.headers["cache-control"] == "no-store", tok.text
    body = tok.json()
    assert body["token_type"] == "Bearer" and 0 < body["expires_in"] <= 300 and body["scope"] == "records"
    auth = {"Authorization": f"Bearer {body['access_token']}"}
    data = app.get("/api/v1/records", headers=auth).json()["records"]
    mine = next(x for x in data if seq in x["sequences"])
    assert mine["requester"] == "厚生労働大臣" and mine["information"] == ["地方税関係情報"] and mine["proof_verified"]
    assert app.get("/api/v1/notices", headers=auth).status_code == 403  # not consented
    assert app.get("/api/v1/records").status_code == 401
    assert app.get("/api/v1/records", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert demo_number(box, 1) not in json.dumps(data, ensure_ascii=False)
    # Every fetch is in the person's 操作履歴.
    ops = v.get("/operations").text
    assert ops.count('<tr class="fetch">') == 1 and "家計簿アプリ" in ops
    # Logging out ends the app's access too.
    v.post("/logout", {"csrf": _csrf(ops)})
    assert app.get("/api/v1/records", headers=auth).status_code == 401


def test_locked_pin_and_revoked_card_are_refused_with_a_clear_page(box: RunningBox) -> None:
    v = _visit(box)
    r = v.login(box, 2, pin="9999")
    assert refusal_reason(r) == "wrong_pin" and "残り 2 回" in r.text
    for _ in range(2):
        r = _visit(box).login(box, 2, pin="9999")
    r = _visit(box).login(box, 2, pin=PIN)  # the right PIN, but the card is locked now
    assert r.status_code == 401 and refusal_reason(r) == "pin_locked"
    assert "暗証番号がロックされています" in r.text and "市区町村の窓口" in r.text

    with Card(card_path(box, 3), box.root / "jpki") as card:
        card_id = card.card_id
    subprocess.run([sys.executable, "-m", "renkei.cli", "jpki", "revoke", "--data-dir", str(box.root / "jpki"),
                    "--card-id", card_id, "--reason", "keyCompromise"], check=True, capture_output=True)
    r = _visit(box).login(box, 3)
    assert r.status_code == 401 and refusal_reason(r) == "revoked"
    assert "失効しています" in r.text and "紛失・盗難" in r.text


def test_logout_needs_the_csrf_token(box: RunningBox) -> None:
    v = _visit(box)
    assert v.login(box, 1).status_code == 303
    page = v.get("/records").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    session = dict(v.cookies)
    # A forged logout (no token, or from another origin) does not end the session, nor touch the cookie.
    r = v.post("/logout", {})
    assert refusal_reason(r) == "csrf" and v.cookies == session
    again = Visit(v.base, dict(session))
    assert again.get("/records").status_code == 200
    r = again._send("POST", "/logout", data={"csrf": csrf}, headers={"Origin": "http://evil.example"})
    assert refusal_reason(r) == "csrf"
    assert Visit(v.base, dict(session)).get("/records").status_code == 200
    again = Visit(v.base, dict(session))
    assert again.post("/logout", {"csrf": csrf}).status_code == 303
    assert Visit(v.base, dict(session)).get("/records").headers["location"] == "/login"


def test_the_portal_checker_catches_what_a_lying_core_would_send(box: RunningBox) -> None:
    """The same page the portal gets, altered: a changed record, another person's record, a
    checkpoint under another key are never shown as verified."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from renkei import client
    from renkei._proto.renkei.v1 import disclosure_service_pb2 as dpb
    from renkei.errors import NoteError
    from renkei.linkage.disclosure import login_message
    from renkei.portal.config import PortalConfig
    from renkei.portal.history import Checker

    inquire_about(box, demo_number(box, 1))
    with client.public_channel(box.info["services"]["core"]["public_grpc"], ca=box.pki / "ca.pem") as ch:
        stub = client.DisclosureServiceStub(ch)
        challenge = stub.CreateChallenge(dpb.CreateChallengeRequest(), timeout=30).challenge
        with Card(card_path(box, 1), box.root / "jpki") as card:
            signed = card.sign_challenge(PIN, login_message(challenge))
        spki = x509.load_der_x509_certificate(signed.certificate_der).public_key().public_bytes(
            Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        login = stub.Login(dpb.LoginRequest(card_key_id=hashlib.sha256(spki).digest(), challenge=challenge,
                                            signature=signed.signature), timeout=30)
        page = stub.ListMyRecords(dpb.ListMyRecordsRequest(page_size=10), timeout=30,
                                  metadata=[("authorization", f"Bearer {login.session_token}")])
    checker = Checker(PortalConfig.open(box.root / "portal").ledger_vkey, [box.info["services"]["witness"]["vkey"]])
    cp = checker.checkpoint(page.checkpoint)
    assert cp.witnesses == ("ppc.renkei.example/witness",)
    good = page.records[0]
    assert checker.record(good, cp, bytes(login.person_pseudonym)).verified
    changed = dpb.DisclosedRecord()
    changed.CopyFrom(good)
    changed.record.leaf_data = good.record.leaf_data[:-1] + bytes([good.record.leaf_data[-1] ^ 1])
    assert not checker.record(changed, cp, bytes(login.person_pseudonym)).verified
    assert not checker.record(good, cp, b"\0" * 32).verified  # someone else's
    moved = dpb.DisclosedRecord()
    moved.CopyFrom(good)
    moved.inclusion_proof.hashes[0] = b"\1" * 32 if moved.inclusion_proof.hashes else b""
    if good.inclusion_proof.hashes:
        assert not checker.record(moved, cp, bytes(login.person_pseudonym)).verified
    # A checkpoint the pinned key did not sign (same log name, another key) fails outright.
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from renkei.witness.note import key_id

    name = PortalConfig.open(box.root / "portal").ledger_vkey.split("+")[0]
    pub = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    impostor = f"{name}+{key_id(name, 1, pub):08x}+{base64.b64encode(bytes([1]) + pub).decode()}"
    with pytest.raises(NoteError):
        Checker(impostor).checkpoint(page.checkpoint)


def test_notices_reach_only_their_person_and_are_marked_read(box: RunningBox) -> None:
    import grpc

    from renkei import client
    from renkei._proto.renkei.v1 import linkage_service_pb2 as lpb
    from tests.portal_helpers import send_notice

    mine = send_notice(box, 1, demo_number(box, 1), "住民税の通知書を発送しました",
                       "令和8年度の住民税（特別徴収）の税額決定通知書を発送しました。\nご不明な点は税務課まで。")
    other = send_notice(box, 2, demo_number(box, 3), "横浜市からのお知らせ", "ほかの人あての内容")
    v = _visit(box)
    assert v.login(box, 1).status_code == 303
    page = v.get("/notices").text
    assert f'data-notice="{mine}" class="unread"' in page and f'data-notice="{other}"' not in page
    assert "千代田区長" in page and "住民税の通知書を発送しました" in page and "未読 1 件" in page
    one = v.get(f"/notices/{mine}").text
    assert "税額決定通知書を発送しました" in one and "千代田区長" in one
    assert f'data-notice="{mine}" class="read"' in v.get("/notices").text
    assert v.get(f"/notices/{other}").status_code == 404  # another person's notice, by guessing its id
    assert demo_number(box, 1) not in page + one

    # A My Number in the text, another agency's code, an empty title: refused by the core.
    number = demo_number(box, 1)
    with pytest.raises(grpc.RpcError) as e:
        send_notice(box, 1, number, "番号のお知らせ", f"あなたの個人番号は {number} です")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as e:
        send_notice(box, 1, number, "", "本文")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    from tests.portal_helpers import _codes

    theirs = _codes(box, 2, number)
    with box.channel("agency-1") as ch, pytest.raises(grpc.RpcError) as e:
        client.LinkageServiceStub(ch).SendNotice(lpb.SendNoticeRequest(agency_code=theirs, title="t", body="b"),
                                                 timeout=30)
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_junk_never_breaks_the_portal(box: RunningBox) -> None:
    """Malformed forms, query strings, paths and bodies, logged in or not: a page or a clear
    4xx, never a server error."""
    import random

    rng = random.Random(20261201)
    junk = ["", "0", "-1", "99999999999999999999", "abc", "%00", "<script>", "2026-13-45", "x" * 5000, "💥",
            "../../etc/passwd", "' OR 1=1 --", "{", "[]", "null"]
    v = _visit(box)
    assert v.login(box, 1).status_code == 303
    anon = _visit(box)
    gets = ["/records?from={}&to={}&agency={}&page={}", "/records/{}/proof", "/notices/{}", "/delegation/{}/records",
            "/delegation/{}/notices", "/oauth/authorize?client_id={}&redirect_uri={}&scope={}&code_challenge={}",
            "/api/v1/records?x={}", "/login?next={}"]
    posts = ["/login", "/logout", "/delegation", "/delegation/accept", "/delegation/{}/revoke", "/oauth/authorize",
             "/oauth/token"]
    fields = ["csrf", "response", "label", "valid_until", "scope_records", "code", "request", "decision",
              "grant_type", "client_id", "redirect_uri", "code_verifier"]
    statuses: dict[int, int] = {}
    for _ in range(300):
        who = rng.choice([v, anon])
        if rng.random() < 0.5:
            path = rng.choice(gets)
            r = who.get(path.format(*[httpx.QueryParams({"v": rng.choice(junk)})["v"] for _ in range(4)]))
        else:
            path = rng.choice(posts).format(rng.choice(junk)[:50])
            data = {f: rng.choice(junk) for f in rng.sample(fields, rng.randrange(0, 6))}
            r = who.post(path, data)
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        assert r.status_code < 500, (path, r.status_code, r.text[:500])
    assert v.get("/records").status_code == 200  # the person's session survived it all
    assert sum(statuses.values()) == 300
