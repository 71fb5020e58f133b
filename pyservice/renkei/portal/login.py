"""The card login (利用者証明用電子証明書), as the portal runs it.

1. The login page asks the core for a challenge bound to no key (DisclosureService.CreateChallenge
   with an empty id) and shows ``"renkei-disclosure-login\\0" ‖ challenge`` for the card to sign.
2. The card reader answers with the signature and the 利用者証明用 certificate
   (:mod:`renkei.portal.reader`).
3. The portal checks the certificate as a relying party (:class:`renkei.jpki.verify.AuthVerifier`:
   chain to the pinned CA, kind, validity, signature, OCSP with cache and grace).
4. It relays (SHA-256 of the certificate's key, challenge, signature) to the core's Login. The core
   checks its own challenge (HMAC, expiry, single use) and the signature against the key J-LIS
   registered for the person, and answers a session token and the person's pseudonym.

So the portal can read a person's records only with a fresh signature of that person's card —
it cannot impersonate anyone to the core — and neither side ever handles a My Number.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import grpc
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from google.protobuf.timestamp_pb2 import Timestamp
from starlette.concurrency import run_in_threadpool

from renkei import client
from renkei._proto.renkei.v1 import disclosure_service_pb2 as dpb
from renkei._proto.renkei.v1.disclosure_service_pb2_grpc import DisclosureServiceStub
from renkei.errors import (
    CardExpiredError,
    CardRejectedError,
    CardRevokedError,
    CardSignatureError,
    InvalidArgumentError,
    RevocationUnavailableError,
)
from renkei.jpki.verify import AuthVerifier
from renkei.linkage.disclosure import login_message
from renkei.portal import reader
from renkei.service.failover import FirstAvailable, split_targets

CALL_TIMEOUT = 10.0
#: A pasted card answer: two base64 blobs of an RSA-2048 signature and a certificate.
MAX_RESPONSE = 16 * 1024


class LoginRefused(Exception):
    """A refused login, with what the page tells the person (Japanese) and a short token."""

    def __init__(self, reason: str, title: str, advice: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.title = title
        self.advice = advice


@dataclass(frozen=True)
class LoggedIn:
    core_token: str
    pseudonym: bytes
    card_id: str
    revocation_source: str


#: DisclosureService calls safe to send to another front-end after any UNAVAILABLE: the reads,
#: a revocation or a logout (again: no change) and a login (its challenge is single-use: a repeat
#: of one that reached the store is refused, never a second session).
REPEATABLE = ("CreateChallenge", "Login", "ListMyRecords", "ListMyNotices", "ListDelegations", "ListOperations",
              "RevokeDelegation", "Logout")


class CoreDisclosure:
    """The core's DisclosureService on its public port (server-authenticated TLS), at one
    front-end or several (``target`` ``A,B,…``): each call goes to the first that accepts a
    connection (renkei.service.failover) — every front-end on the core's store knows every
    challenge and session (docs/arch/store.md)."""

    def __init__(self, target: str | list[str], ca: str | Path) -> None:
        self.targets = split_targets(target)
        self._ca = ca
        self._channels: list[grpc.aio.Channel] = []
        self._stub: DisclosureServiceStub | None = None

    @property
    def stub(self) -> DisclosureServiceStub:
        """A DisclosureServiceStub (over several front-ends: one that fails over, with the
        same methods)."""
        # Made on first use: an aio channel belongs to the event loop that is running then.
        if self._stub is None:
            self._channels = [client.public_channel(t, ca=self._ca, aio=True) for t in self.targets]
            stubs = [DisclosureServiceStub(ch) for ch in self._channels]
            self._stub = stubs[0] if len(stubs) == 1 else cast(DisclosureServiceStub, FirstAvailable(stubs, REPEATABLE))
        return self._stub

    async def challenge(self) -> bytes:
        r = await self.stub.CreateChallenge(dpb.CreateChallengeRequest(), timeout=CALL_TIMEOUT)
        return bytes(r.challenge)

    async def login(self, card_key_id: bytes, challenge: bytes, signature: bytes) -> dpb.LoginResponse:
        r: dpb.LoginResponse = await self.stub.Login(
            dpb.LoginRequest(card_key_id=card_key_id, challenge=challenge, signature=signature), timeout=CALL_TIMEOUT)
        return r

    async def records(self, core_token: str, page_token: str, page_size: int,
                      delegation_id: int = 0) -> dpb.ListMyRecordsResponse:
        r: dpb.ListMyRecordsResponse = await self.stub.ListMyRecords(
            dpb.ListMyRecordsRequest(page_size=page_size, page_token=page_token, delegation_id=delegation_id),
            timeout=CALL_TIMEOUT, metadata=_bearer(core_token))
        return r

    async def notices(self, core_token: str, page_token: str, page_size: int,
                      delegation_id: int = 0) -> dpb.ListMyNoticesResponse:
        r: dpb.ListMyNoticesResponse = await self.stub.ListMyNotices(
            dpb.ListMyNoticesRequest(page_size=page_size, page_token=page_token, delegation_id=delegation_id),
            timeout=CALL_TIMEOUT, metadata=_bearer(core_token))
        return r

    async def create_delegation(self, core_token: str, label: str, scopes: list[str],
                                valid_until: dt.datetime) -> dpb.CreateDelegationResponse:
        until = Timestamp()
        until.FromDatetime(valid_until)
        r: dpb.CreateDelegationResponse = await self.stub.CreateDelegation(
            dpb.CreateDelegationRequest(label=label, scopes=scopes, valid_until=until), timeout=CALL_TIMEOUT,
            metadata=_bearer(core_token))
        return r

    async def accept_delegation(self, core_token: str, code: str) -> dpb.Delegation:
        r: dpb.Delegation = await self.stub.AcceptDelegation(dpb.AcceptDelegationRequest(offer_code=code),
                                                             timeout=CALL_TIMEOUT, metadata=_bearer(core_token))
        return r

    async def revoke_delegation(self, core_token: str, delegation_id: int) -> dpb.Delegation:
        r: dpb.Delegation = await self.stub.RevokeDelegation(
            dpb.RevokeDelegationRequest(delegation_id=delegation_id), timeout=CALL_TIMEOUT,
            metadata=_bearer(core_token))
        return r

    async def delegations(self, core_token: str) -> dpb.ListDelegationsResponse:
        r: dpb.ListDelegationsResponse = await self.stub.ListDelegations(
            dpb.ListDelegationsRequest(), timeout=CALL_TIMEOUT, metadata=_bearer(core_token))
        return r

    async def operations(self, core_token: str) -> dpb.ListOperationsResponse:
        r: dpb.ListOperationsResponse = await self.stub.ListOperations(
            dpb.ListOperationsRequest(), timeout=CALL_TIMEOUT, metadata=_bearer(core_token))
        return r

    async def logout(self, core_token: str) -> bool:
        """End the person's session at the core (at every front-end at once)."""
        r = await self.stub.Logout(dpb.LogoutRequest(), timeout=CALL_TIMEOUT, metadata=_bearer(core_token))
        return bool(r.ended)

    async def close(self) -> None:
        for ch in self._channels:
            await ch.close()
        self._channels, self._stub = [], None


def _bearer(core_token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {core_token}")]


def parse_card_response(text: str) -> tuple[bytes, bytes]:
    """(signature, certificate DER) from the card reader's answer; a PIN problem the reader
    reported, or anything malformed, is a :class:`LoginRefused`."""
    if len(text) > MAX_RESPONSE:
        raise LoginRefused("malformed", "カードの応答が長すぎます",
                           "カードリーダーの応答をそのまま貼り付けてください。")
    try:
        doc = json.loads(text)
    except ValueError:
        raise LoginRefused("malformed", "カードの応答を読み取れません",
                           "カードリーダーが表示した応答（JSON）をそのまま貼り付けてください。") from None
    if not isinstance(doc, dict):
        raise LoginRefused("malformed", "カードの応答を読み取れません",
                           "カードリーダーの応答をそのまま貼り付けてください。")
    result = doc.get("result", reader.OK)
    if result == reader.PIN_LOCKED:
        raise LoginRefused("pin_locked", "利用者証明用電子証明書の暗証番号がロックされています",
                           "暗証番号を3回続けて間違えたため、カードがロックされました。お住まいの市区町村の窓口で"
                           "暗証番号の初期化（再設定）を行ってください。本人確認書類とカードをお持ちください。")
    if result == reader.WRONG_PIN:
        left = str(doc.get("remaining", ""))
        raise LoginRefused("wrong_pin", "暗証番号が違います",
                           f"残り {left} 回間違えるとロックされます。数字4桁の暗証番号を確認してください。"
                           if left.isdigit() else "数字4桁の暗証番号を確認してください。")
    if result != reader.OK:
        raise LoginRefused("reader_error", "カードを読み取れませんでした",
                           "カードリーダーとカードを確認してやり直してください。")
    try:
        signature = base64.b64decode(str(doc["signature"]), validate=True)
        certificate = base64.b64decode(str(doc["certificate"]), validate=True)
    except (KeyError, binascii.Error, ValueError):
        raise LoginRefused("malformed", "カードの応答を読み取れません",
                           "署名と証明書を含む応答をそのまま貼り付けてください。") from None
    if not signature or not certificate:
        raise LoginRefused("malformed", "カードの応答を読み取れません",
                           "署名と証明書を含む応答をそのまま貼り付けてください。")
    return signature, certificate


_REVOKED_ADVICE = {
    "certificateHold": "カードは一時停止されています。カードが見つかった場合は、一時停止の解除を申請してください。",
    "keyCompromise": "紛失・盗難の届出により失効しています。市区町村の窓口でカードの再交付を申請してください。",
}


def refusal_for(error: CardRejectedError | RevocationUnavailableError | InvalidArgumentError) -> LoginRefused:
    """What the person is told for a JPKI refusal."""
    if isinstance(error, CardRevokedError):
        advice = _REVOKED_ADVICE.get(error.revocation_reason or "",
                                     "この証明書は使えません。市区町村の窓口で証明書の再発行を申請してください。")
        return LoginRefused("revoked", "このカードの利用者証明用電子証明書は失効しています", advice)
    if isinstance(error, CardExpiredError):
        return LoginRefused("expired", "利用者証明用電子証明書の有効期限が切れています",
                            "市区町村の窓口で電子証明書の更新を申請してください。")
    if isinstance(error, CardSignatureError):
        return LoginRefused("bad_signature", "署名を確認できませんでした",
                            "別のカードで署名したか、別のログイン画面の値に署名した可能性があります。"
                            "この画面に表示された値に、同じカードで署名し直してください。")
    if isinstance(error, RevocationUnavailableError):
        return LoginRefused("revocation_unavailable", "証明書の有効性を確認できません",
                            "失効情報の確認先（J-LIS）に接続できません。しばらくしてからやり直してください。")
    if isinstance(error, CardRejectedError):
        return LoginRefused("untrusted", "このカードは利用できません",
                            "公的個人認証サービスの利用者証明用電子証明書ではないか、確認できない証明書です。")
    return LoginRefused("malformed", "カードの応答を読み取れません", "この画面の値に署名し直してください。")


class LoginDesk:
    def __init__(self, core: CoreDisclosure, verifier: AuthVerifier) -> None:
        self.core = core
        self.verifier = verifier

    async def challenge(self) -> bytes:
        """A fresh challenge of the core; the card signs ``login_message(challenge)``."""
        return await self.core.challenge()

    async def finish(self, challenge: bytes, response_text: str) -> LoggedIn:
        signature, certificate = parse_card_response(response_text)
        message = login_message(challenge)
        try:
            who = await run_in_threadpool(self.verifier.verify_login, message, signature, certificate)
        except (CardRejectedError, RevocationUnavailableError, InvalidArgumentError) as e:
            raise refusal_for(e) from None
        spki = x509.load_der_x509_certificate(certificate).public_key().public_bytes(
            Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        try:
            r = await self.core.login(hashlib.sha256(spki).digest(), challenge, signature)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.UNAUTHENTICATED:
                raise LoginRefused("core_refused", "このカードではログインできません",
                                   "マイナポータルに登録されていないカードか、この画面が古くなっています（ログイン要求は"
                                   "1回限り、2分間有効です）。ログイン画面を開き直してください。") from None
            raise
        return LoggedIn(r.session_token, bytes(r.person_pseudonym), who.card_id, who.revocation.source)


__all__ = ["CoreDisclosure", "LoggedIn", "LoginDesk", "LoginRefused", "parse_card_response", "refusal_for"]
