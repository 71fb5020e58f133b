"""Helpers of the portal tests: a demo person's number (read from their card's 券面事項入力補助AP
as an agency counter would), an agency's inquiry about them, the portal's pages over plain HTTP
(cookies handled here: http.cookiejar never sends a Secure cookie over http)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from renkei import client
from renkei._proto.renkei.v1 import intermediate_service_pb2 as ipb
from renkei._proto.renkei.v1 import linkage_service_pb2 as lpb
from renkei._proto.renkei.v1.intermediate_service_pb2_grpc import IntermediateServiceStub
from renkei.jpki.card import Card
from renkei.jpki.kenmen import KenmenData
from renkei.portal.reader import card_response
from tests.grpc_server import RunningBox
from tests.provision_helpers import inquiry

T = 30
MINISTER, CHIYODA, YOKOHAMA = 4, 1, 2
AFFAIR, ITEM = "B2.1", "B2.1.2.1"  # 別表第二 1の項, 地方税関係情報 (厚生労働大臣 ← 市町村長)
PIN = "1234"


def card_path(box: RunningBox, n: int) -> Path:
    return box.root / "cards" / f"card-demo-{n}.json"


def demo_number(box: RunningBox, n: int) -> str:
    with Card(card_path(box, n), box.root / "jpki") as card:
        return KenmenData.decode(card.read_kenmen(PIN).document).individual_number


def inquire_about(box: RunningBox, number: str, requester: int = MINISTER, provider: int = CHIYODA) -> int:
    """An agency's 照会 about the person (both agencies acquire their codes first, as they do when
    the person registers with them); returns the 照会's sequence."""
    codes = {a: _codes(box, a, number) for a in (provider, requester)}
    with box.channel(f"agency-{requester}") as core:
        r: lpb.InquireResponse = client.LinkageServiceStub(core).Inquire(
            inquiry(codes[requester], AFFAIR, provider, (ITEM,)), timeout=T)
    return int(r.record_sequence)


def send_notice(box: RunningBox, agency: int, number: str, title: str, body: str) -> int:
    """An agency's お知らせ to the person, addressed by its own code."""
    code = _codes(box, agency, number)
    with box.channel(f"agency-{agency}") as core:
        return int(client.LinkageServiceStub(core).SendNotice(
            lpb.SendNoticeRequest(agency_code=code, title=title, body=body), timeout=T).notice_id)


def _codes(box: RunningBox, agency: int, number: str) -> bytes:
    principal = f"agency-{agency}"
    with box.channel(principal) as core, box.channel(principal, "jlis") as jlis:
        codes, status = client.acquire_codes(client.LinkageServiceStub(core), client.NumberServiceStub(jlis),
                                             [number], timeout=T)
    assert (status == 0).all(), status
    return codes[:16]


def municipal_mid(box: RunningBox, agency: int) -> IntermediateServiceStub:
    return IntermediateServiceStub(box.box.mid("municipal", f"business-{agency}"))


def atena(agency: int, n: int) -> str:
    return f"{agency:03d}{n:012d}"


def register_resident(box: RunningBox, n: int) -> None:
    """The person is a resident of 千代田区 who moved from 横浜市: both hold them and their codes,
    横浜市 holds their 令和7年度 地方税 副本."""
    number = demo_number(box, n)
    for agency in (CHIYODA, YOKOHAMA):
        mid = municipal_mid(box, agency)
        mid.RegisterAddressees(ipb.RegisterAddresseesRequest(addressees=[ipb.Addressee(
            integrated_address_number=atena(agency, n), business_ids=[f"J{n}"], individual_number=number)]),
            timeout=T)
        assert mid.AcquireCodes(ipb.MidAcquireCodesRequest(), timeout=60).acquired >= 1
    r = municipal_mid(box, YOKOHAMA).RegisterDuplicates(ipb.RegisterDuplicatesRequest(records=[ipb.DuplicateRecord(
        integrated_address_number=atena(YOKOHAMA, n), item="local_tax_info", dataset="0001", version=1,
        record_key=f"T2025-{n}", valid_from="2025-06-01", fiscal_year=2025, published="2025-06-01",
        payload_json=json.dumps({"課税年度": 2025, "総所得金額": 4_200_000, "市町村民税額": 180_000}))]), timeout=T)
    assert r.registered == 1


def portal_url(box: RunningBox) -> str:
    # "localhost": browsers keep Secure cookies from http://localhost (a secure context), not from an IP.
    return "http://localhost:" + box.info["services"]["portal"]["http"].rsplit(":", 1)[1]


@dataclass
class Visit:
    """A person at the portal over plain HTTP."""

    base: str
    cookies: dict[str, str] = field(default_factory=dict)
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=T, follow_redirects=False))
    last_set_cookies: list[str] = field(default_factory=list)

    def _send(self, method: str, path: str, *, data: dict[str, str] | None = None,
              headers: dict[str, str] | None = None) -> httpx.Response:
        sent = dict(headers or {})
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        r = self.http.request(method, self.base + path, headers=sent, data=data)
        self.last_set_cookies = r.headers.get_list("set-cookie")
        for line in self.last_set_cookies:
            name, _, rest = line.partition("=")
            value = rest.split(";", 1)[0].strip('"')
            if 'expires=Thu, 01 Jan 1970' in line or "Max-Age=0" in line or not value:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return r

    def get(self, path: str) -> httpx.Response:
        return self._send("GET", path)

    def post(self, path: str, data: dict[str, str]) -> httpx.Response:
        return self._send("POST", path, data=data)

    def login_page(self) -> tuple[bytes, str]:
        """The message to sign and the form's CSRF token."""
        return self.login_page_from(self.get("/login").text)

    @staticmethod
    def login_page_from(page: str) -> tuple[bytes, str]:
        message = re.search(r'<pre id="message">([0-9a-f]+)</pre>', page)
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert message and csrf, page
        return bytes.fromhex(message.group(1)), csrf.group(1)

    def login(self, box: RunningBox, n: int, pin: str = PIN) -> httpx.Response:
        message, csrf = self.login_page()
        with Card(card_path(box, n), box.root / "jpki") as card:
            answer = card_response(card, pin, message)
        return self.post("/login", {"csrf": csrf, "response": json.dumps(answer)})


def refusal_reason(r: httpx.Response) -> str:
    m = re.search(r'id="refusal" data-reason="([a-z_]+)"', r.text)
    assert m, r.text
    return m.group(1)
