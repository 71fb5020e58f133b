"""J-LIS's 本人確認情報 and card desk end to end across the real processes of ``renkei up --demo``:
reports of the resident register, 個人番号等照会 by entitled agencies with J-LIS's own query log,
a card issued by a municipality's desk that logs in and passes an agency's counter 本人確認 in one
flow, suspension effective at once at the OCSP responder, automatic revocation on a move,
re-issue, expiry, and the 個人番号通知書 read back from its PDF."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from pypdf import PdfReader

from renkei._proto.renkei.v1 import card_service_pb2 as C
from renkei._proto.renkei.v1 import number_service_pb2 as N
from renkei._proto.renkei.v1 import person_info_service_pb2 as P
from renkei._proto.renkei.v1.card_service_pb2_grpc import CardServiceStub
from renkei._proto.renkei.v1.number_service_pb2_grpc import NumberServiceStub
from renkei._proto.renkei.v1.person_info_service_pb2_grpc import PersonInfoServiceStub
from renkei.errors import CardRevokedError
from renkei.jlis.demo import DEMO_KENMEN_PIN
from renkei.jlis.notices import grouped
from renkei.jpki.ca import Jpki
from renkei.jpki.card import Card
from renkei.jpki.demo import DEMO_AUTH_PIN, DEMO_HOLDERS, DEMO_SIGN_PIN
from renkei.jpki.kenmen import CounterVerifier
from renkei.jpki.profile import AUTH, SIGN
from renkei.jpki.verify import AuthVerifier, SignVerifier, new_challenge
from renkei.ledger import verify_checkpoint, verify_inclusion
from renkei.numbers import resident_check_digit
from renkei.ppc.review import leaf_hash
from renkei.service.status import error_info
from tests.grpc_server import RunningBox, start_box

T = 30
CHIYODA, YOKOHAMA, PENSION, MINISTER, KYOKAI = 1, 2, 3, 4, 5  # demo agencies
PIN, SIGN_PIN, AP_PIN = "2580", "XYZ789", "1470"


def resident(i: int) -> str:
    body = f"{7100000000 + i:010d}"
    return f"{body}{resident_check_digit(body)}"


def facts(name: str, birth: str, sex: int, address: str) -> P.BasicFacts:
    return P.BasicFacts(name=name, birth=birth, sex=sex, address=address)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBox]:
    b = start_box(tmp_path_factory.mktemp("jlisbox") / "box")
    yield b
    code, out = b.terminate()
    assert code == 0, out


def call(box: RunningBox, principal: str, stub: Any, method: str, request: Any) -> Any:
    with box.channel(principal, "jlis") as ch:
        return getattr(stub(ch), method)(request, timeout=T)


def refused(box: RunningBox, principal: str, stub: Any, method: str, request: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as e:
        call(box, principal, stub, method, request)
    info = error_info(e.value)
    return e.value.code(), info.reason if info else ""


def register(box: RunningBox, i: int, person: P.BasicFacts) -> str:
    number: str = call(box, "jlis", NumberServiceStub, "AssignNumber",
                       N.AssignNumberRequest(resident_code=resident(i))).individual_number
    call(box, "jlis", PersonInfoServiceStub, "ReportResidentFacts", P.ReportResidentFactsRequest(
        resident_code=resident(i), event=P.RESIDENT_EVENT_REGISTRATION, effective_on="2020-04-01", facts=person,
        municipality_code="131016"))
    return number


def verifiers(box: RunningBox) -> tuple[AuthVerifier, SignVerifier, CounterVerifier]:
    with Jpki(box.root / "jpki") as j:
        auth_ca, sign_ca = j.ca_pem(AUTH), j.ca_pem(SIGN)
    http = box.service("jpki")["http"]
    key = call(box, f"agency-{PENSION}", CardServiceStub, "GetKenmenKey", C.GetKenmenKeyRequest()).public_key_pem
    login = AuthVerifier(auth_ca, f"http://{http}/ocsp/auth", cache_seconds=0)
    return login, SignVerifier(sign_ca, f"http://{http}/ocsp/sign", cache_seconds=0), CounterVerifier(login, key)


def identify(counter: CounterVerifier, card: Card, pin: str = PIN, ap_pin: str = AP_PIN) -> Any:
    challenge = new_challenge()
    login = card.sign_challenge(pin, challenge)
    return counter.identify(challenge, login.signature, login.certificate_der, card.read_kenmen(ap_pin))


def test_queries_are_entitled_answered_and_logged_without_the_answer(box: RunningBox) -> None:
    person = facts("高橋 健一", "1975-06-30", P.SEX_MALE, "東京都千代田区永田町一丁目7番1号")
    number = register(box, 1, person)
    grant = P.GrantEntitlementRequest(agency_id=MINISTER, item=P.ENTITLEMENT_ITEM_FACTS, purpose="JT04010000000007",
                                      legal_basis="番号法 第14条第2項", actor="J-LIS 担当 佐藤")
    e = call(box, "jlis", PersonInfoServiceStub, "GrantEntitlement", grant)
    assert e.entitlement_id and not e.revoked_at
    assert refused(box, f"agency-{MINISTER}", PersonInfoServiceStub, "GrantEntitlement", grant)[0] is \
        grpc.StatusCode.PERMISSION_DENIED  # only J-LIS's operator grants
    got = call(box, f"agency-{MINISTER}", PersonInfoServiceStub, "QueryPersonFacts", P.QueryPersonFactsRequest(
        purpose="JT04010000000007", individual_number=number))
    assert got.facts == person and got.version == 1 and not got.deceased_on
    # Entitled per agency, item and purpose.
    assert refused(box, f"agency-{KYOKAI}", PersonInfoServiceStub, "QueryPersonFacts", P.QueryPersonFactsRequest(
        purpose="JT04010000000007", individual_number=number)) == (grpc.StatusCode.PERMISSION_DENIED, "NOT_ENTITLED")
    search = P.FactsSearch(name="高橋　健一", birth="1975-06-30", sex=P.SEX_MALE)
    assert refused(box, f"agency-{MINISTER}", PersonInfoServiceStub, "QueryIndividualNumber",
                   P.QueryIndividualNumberRequest(purpose="JT04010000000007", facts=search))[1] == "NOT_ENTITLED"
    found = call(box, f"agency-{PENSION}", PersonInfoServiceStub, "QueryIndividualNumber",
                 P.QueryIndividualNumberRequest(purpose="JT03010000000001", facts=search))
    assert found.individual_number == number
    assert refused(box, "jlis", PersonInfoServiceStub, "QueryPersonFacts", P.QueryPersonFactsRequest(
        purpose="x", individual_number=number))[0] is grpc.StatusCode.PERMISSION_DENIED  # agencies ask
    mine = call(box, f"agency-{MINISTER}", PersonInfoServiceStub, "ListEntitlements", P.ListEntitlementsRequest())
    assert {x.agency_id for x in mine.entitlements} == {MINISTER}
    # The commission reads J-LIS's log: every query, refused ones too, verified; never an answer.
    log = call(box, "oversight", PersonInfoServiceStub, "ListQueryRecords", P.ListQueryRecordsRequest(count=1000))
    cp = verify_checkpoint(log.checkpoint, log.vkey, "jlis.renkei.example/queries")
    records = {r.sequence: r for r in log.records}
    for r in log.records:
        verify_inclusion(r.sequence, cp.size, leaf_hash(r.entry), list(r.inclusion_proof), cp.root)
        for secret in (number, person.name, person.address, resident(1)):
            assert secret.encode() not in r.entry
    outcomes = [(r.requester, r.purpose, r.items[0], r.outcome) for r in records.values()]
    assert (MINISTER, "JT04010000000007", "basic-facts", "permitted") in outcomes
    assert (KYOKAI, "JT04010000000007", "basic-facts", "NOT_ENTITLED") in outcomes
    assert (PENSION, "JT03010000000001", "individual-number", "permitted") in outcomes
    assert got.record_sequence in records and records[got.record_sequence].basis_hash != bytes(32)
    assert refused(box, f"agency-{MINISTER}", PersonInfoServiceStub, "ListQueryRecords",
                   P.ListQueryRecordsRequest())[0] is grpc.StatusCode.PERMISSION_DENIED
    assert number not in box.output() and resident(1) not in box.output()


def test_the_demo_card_identifies_at_a_counter_through_the_cli(box: RunningBox, tmp_path: Path) -> None:
    env = {**os.environ, "RENKEI_DATA": str(box.root)}

    def cli(*argv: str) -> str:
        r = subprocess.run([sys.executable, "-m", "renkei.cli", *argv], capture_output=True, text=True, env=env,
                           timeout=60, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, r.stderr
        return r.stdout

    (tmp_path / "ca.pem").write_text(cli("jpki", "ca-cert", "--kind", "auth"))
    (tmp_path / "ap.pem").write_text(cli("jlis", "kenmen-key"))
    (tmp_path / "pin").write_text(DEMO_AUTH_PIN + "\n")
    assert DEMO_KENMEN_PIN == DEMO_AUTH_PIN  # the demo card: one 4-digit PIN for both
    name, holder = DEMO_HOLDERS[0]
    who = json.loads(cli("card", "identify", "--card", str(box.root / "cards" / name), "--pin-file",
                         str(tmp_path / "pin"), "--ca", str(tmp_path / "ca.pem"), "--ocsp",
                         f"http://{box.service('jpki')['http']}/ocsp/auth", "--kenmen-key", str(tmp_path / "ap.pem")))
    assert (who["name"], who["address"], who["birth"]) == (holder.name, holder.address, holder.birth.isoformat())
    assert len(who["individual_number"]) == 12 and who["revocation"] == "ocsp"
    # The same demo card logs in and signs (the portal's login uses exactly this).
    login, signer, _ = verifiers(box)
    with Card(box.root / "cards" / name) as card:
        challenge = new_challenge()
        s = card.sign_challenge(DEMO_AUTH_PIN, challenge)
        assert login.verify_login(challenge, s.signature, s.certificate_der).card_id == card.card_id
        d = card.sign(DEMO_SIGN_PIN, b"demo")
        assert signer.verify_signature(b"demo", d.signature, d.certificate_der).facts == holder
    assert "card-demo" in cli("jlis", "notices") or "rendered" in cli("jlis", "notices")


def test_a_card_made_with_renkei_card_logs_in_and_identifies_in_one_flow(box: RunningBox, tmp_path: Path) -> None:
    """`renkei card apply` + `renkei card issue --application` through the running J-LIS (as a
    municipality's card desk), then the same card at a counter and for a login."""
    person = facts("小林 直子", "1985-12-24", P.SEX_FEMALE, "東京都千代田区九段南一丁目2番1号")
    number = register(box, 4, person)
    env = {**os.environ, "RENKEI_DATA": str(box.root)}

    def cli(*argv: str) -> str:
        r = subprocess.run([sys.executable, "-m", "renkei.cli", *argv], capture_output=True, text=True, env=env,
                           timeout=60, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, r.stderr
        return r.stdout

    (tmp_path / "number").write_text(number + "\n")
    desk = ["--agency", str(CHIYODA), "--purpose", "card-desk"]
    out = cli("card", "apply", "--number-file", str(tmp_path / "number"), "--face-photo", "sha256:" + "c3" * 32, *desk)
    application = out.split()[1]
    card_file = tmp_path / "naoko.json"
    out = cli("card", "issue", "--application", application, "--out", str(card_file), "--auth-pin", PIN,
              "--sign-pin", SIGN_PIN, "--kenmen-pin", AP_PIN, *desk)
    assert "issued" in out and number not in out and card_file.stat().st_mode & 0o777 == 0o600
    (tmp_path / "ca.pem").write_text(cli("jpki", "ca-cert", "--kind", "auth"))
    (tmp_path / "ap.pem").write_text(cli("jlis", "kenmen-key"))
    ocsp = f"http://{box.service('jpki')['http']}/ocsp/auth"
    who = json.loads(cli("card", "identify", "--card", str(card_file), "--pin", PIN, "--kenmen-pin", AP_PIN,
                         "--ca", str(tmp_path / "ca.pem"), "--ocsp", ocsp, "--kenmen-key", str(tmp_path / "ap.pem")))
    assert (who["individual_number"], who["name"], who["address"]) == (number, person.name, person.address)
    challenge = new_challenge().hex()
    signed = json.loads(cli("card", "sign-challenge", "--card", str(card_file), "--pin", PIN, "--challenge",
                            challenge))
    login = json.loads(cli("card", "verify-login", "--ca", str(tmp_path / "ca.pem"), "--ocsp", ocsp, "--challenge",
                           challenge, "--signature", signed["signature"], "--certificate", signed["certificate"]))
    assert login["card_id"] == who["card_id"]
    assert who["card_id"] in cli("card", "show", "--card-id", who["card_id"])


def test_a_municipality_issues_a_card_that_logs_in_and_identifies_at_a_counter_in_one_flow(
        box: RunningBox, tmp_path: Path) -> None:
    person = facts("伊藤 美咲", "1990-09-09", P.SEX_FEMALE, "神奈川県横浜市中区港町1丁目1番地")
    number = register(box, 2, person)
    desk = f"agency-{YOKOHAMA}"
    apply = C.ApplyForCardRequest(individual_number=number, reason=C.CARD_REASON_NEW,
                                  face_photo="sha256:" + "5a" * 32, purpose="card-desk")
    assert refused(box, f"agency-{PENSION}", CardServiceStub, "ApplyForCard", apply)[1] == "NOT_ENTITLED"
    app = call(box, desk, CardServiceStub, "ApplyForCard", apply)
    issued = call(box, desk, CardServiceStub, "IssueCard", C.IssueCardRequest(
        application_id=app.application_id, auth_pin=PIN, sign_pin=SIGN_PIN, kenmen_pin=AP_PIN, purpose="card-desk"))
    assert issued.card.state == C.CARD_STATE_ACTIVE and {c.kind for c in issued.card.certificates} == {"auth", "sign"}
    assert number.encode() not in issued.token and SIGN_PIN.encode() not in issued.token
    path = tmp_path / "card.json"
    path.write_bytes(issued.token)
    _login, signer, counter = verifiers(box)
    with Card(path) as card:
        who = identify(counter, card)  # 番号確認 + 身元確認: the AP's data, from the card that just signed in
        assert (who.individual_number, who.facts.name, who.facts.address) == (number, person.name, person.address)
        assert who.card_id == card.card_id and who.revocation_source == "ocsp"
        s = card.sign(SIGN_PIN, b"application form")
        assert signer.verify_signature(b"application form", s.signature, s.certificate_der).facts.name == person.name
        # Lost: one call to the call centre suspends it at once (OCSP revoked, certificateHold).
        st = call(box, "jlis", CardServiceStub, "SuspendCard", C.SuspendCardRequest(card_id=card.card_id))
        assert st.state == C.CARD_STATE_SUSPENDED and {c.status for c in st.certificates} == {"hold"}
        with pytest.raises(CardRevokedError) as e:
            identify(counter, card)
        assert e.value.revocation_reason == "certificateHold"  # type: ignore[attr-defined]
        s = card.sign(SIGN_PIN, b"x")
        with pytest.raises(CardRevokedError):
            signer.verify_signature(b"x", s.signature, s.certificate_der)
        # Found again.
        call(box, desk, CardServiceStub, "ResumeCard", C.ResumeCardRequest(card_id=card.card_id, purpose="card-desk"))
        assert identify(counter, card).individual_number == number
        # A move reported by the register revokes the 署名用 certificate at once; the login key stays good.
        moved = facts(person.name, person.birth, P.SEX_FEMALE, "神奈川県川崎市川崎区宮本町1番地")
        r = call(box, "jlis", PersonInfoServiceStub, "ReportResidentFacts", P.ReportResidentFactsRequest(
            resident_code=resident(2), event=P.RESIDENT_EVENT_MOVE_IN, effective_on=dt.date.today().isoformat(),
            facts=moved, municipality_code="141305"))
        assert list(r.changed) == ["address"] and r.certificates_revoked == 1
        s = card.sign(SIGN_PIN, b"y")
        with pytest.raises(CardRevokedError) as e:
            signer.verify_signature(b"y", s.signature, s.certificate_der)
        assert e.value.revocation_reason == "affiliationChanged"  # type: ignore[attr-defined]
        assert identify(counter, card).facts.address == person.address  # the AP as written (rewritten at the desk)
        old_id = card.card_id
    # Lost for good: a new card; the old one is revoked as compromised.
    app = call(box, desk, CardServiceStub, "ApplyForCard", C.ApplyForCardRequest(
        individual_number=number, reason=C.CARD_REASON_LOST, face_photo="sha256:" + "5b" * 32, purpose="card-desk"))
    new = call(box, desk, CardServiceStub, "IssueCard", C.IssueCardRequest(
        application_id=app.application_id, auth_pin=PIN, sign_pin=SIGN_PIN, kenmen_pin=AP_PIN, purpose="card-desk"))
    old = call(box, "jlis", CardServiceStub, "GetCard", C.GetCardRequest(card_id=old_id))
    assert old.state == C.CARD_STATE_REPLACED
    assert {(c.kind, c.status, c.reason) for c in old.certificates} == {("auth", "revoked", "keyCompromise"),
                                                                         ("sign", "revoked", "affiliationChanged")}
    (tmp_path / "new.json").write_bytes(new.token)
    with Card(tmp_path / "new.json") as card:
        assert identify(counter, card).facts.address == moved.address
    # Expiry: a sweep on a day after the card's validity revokes what is left (every card of this box:
    # the module's last card test).
    gone = call(box, "jlis", CardServiceStub, "ExpireCards", C.ExpireCardsRequest(today="2099-01-01"))
    assert new.card.card_id in gone.card_ids
    with Card(tmp_path / "new.json") as card, pytest.raises(CardRevokedError):
        identify(counter, card)


def test_a_new_number_gets_its_notice_rendered_to_a_pdf(box: RunningBox) -> None:
    person = facts("中村 翔太", "2001-01-15", P.SEX_MALE, "東京都千代田区丸の内一丁目9番1号")
    number = register(box, 3, person)
    deadline = time.monotonic() + 30
    while True:
        listed = call(box, "jlis", NumberServiceStub, "ListNotices", N.ListNoticesRequest(state="rendered", limit=1000))
        texts = {n.notice_id: n for n in listed.notices}
        found = [n for n in texts.values()
                 if grouped(number) in PdfReader(box.root / "jlis" / n.file).pages[0].extract_text()]
        if found:
            break
        assert time.monotonic() < deadline, "the notice was never rendered"
        time.sleep(0.3)
    (notice,) = found
    path = box.root / "jlis" / notice.file
    assert notice.event == "assigned" and path.stat().st_mode & 0o777 == 0o600
    text = PdfReader(path).pages[0].extract_text()
    for want in ("個人番号通知書", person.name, person.address, "平成13年1月15日", "男"):
        assert want in text
    assert number not in str(listed) and number not in box.output()
    assert refused(box, f"agency-{CHIYODA}", NumberServiceStub, "ListNotices", N.ListNoticesRequest())[0] is \
        grpc.StatusCode.PERMISSION_DENIED
