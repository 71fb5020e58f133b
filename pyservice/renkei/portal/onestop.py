"""ワンストップ申請 at the portal (docs/arch/onestop.md): the signed application checked with the
JPKI 署名用 CA (chain, validity, signature, OCSP) and delivered to the municipality's
intermediate server over mutual TLS as the portal (role ``portal``)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import grpc
from starlette.concurrency import run_in_threadpool

from renkei import client
from renkei._proto.renkei.v1 import intermediate_service_pb2 as ipb
from renkei._proto.renkei.v1.intermediate_service_pb2_grpc import IntermediateServiceStub
from renkei.errors import (
    CardExpiredError,
    CardRejectedError,
    CardRevokedError,
    CardSignatureError,
    InvalidArgumentError,
    RevocationUnavailableError,
)
from renkei.jpki.verify import SignVerifier
from renkei.portal.login import LoginRefused, parse_card_response

CALL_TIMEOUT = 10.0


@dataclass(frozen=True)
class MidClientTls:
    """The portal's client certificate toward intermediate servers (role ``portal``)."""

    certificate: Path
    private_key: Path
    ca: Path


class Municipalities:
    """The intermediate servers of the municipalities that take applications (agency → endpoint)."""

    def __init__(self, endpoints: dict[int, str], tls: MidClientTls | None) -> None:
        self.endpoints = dict(endpoints) if tls is not None else {}
        self._tls = tls
        self._stubs: dict[str, tuple[grpc.aio.Channel, IntermediateServiceStub]] = {}

    def stub(self, agency_id: int) -> IntermediateServiceStub:
        target = self.endpoints[agency_id]
        if target not in self._stubs:  # made on first use: an aio channel belongs to the running loop
            assert self._tls is not None
            ch = client.mtls_channel(target, certificate=self._tls.certificate, private_key=self._tls.private_key,
                                     ca=self._tls.ca, aio=True)
            self._stubs[target] = (ch, IntermediateServiceStub(ch))
        return self._stubs[target][1]

    async def deliver(self, agency_id: int, document: bytes, signature: bytes, certificate: bytes) -> int:
        r = await self.stub(agency_id).DeliverApplication(ipb.DeliverApplicationRequest(
            agency_id=agency_id, document=document, signature=signature, certificate=certificate),
            timeout=CALL_TIMEOUT)
        return int(r.application_id)

    async def status(self, agency_id: int, ids: list[int]) -> list[ipb.Application]:
        r = await self.stub(agency_id).GetApplications(ipb.GetApplicationsRequest(
            agency_id=agency_id, application_ids=ids), timeout=CALL_TIMEOUT)
        return list(r.applications)

    async def close(self) -> None:
        for ch, _stub in self._stubs.values():
            await ch.close()


def digest(document: bytes) -> str:
    """SHA-256 of the document, shown next to it so the person can compare with what they sign."""
    return hashlib.sha256(document).hexdigest()


def refusal(e: Exception) -> LoginRefused:
    if isinstance(e, CardRevokedError):
        return LoginRefused("revoked", "このカードの署名用電子証明書は失効しています",
                            "住所・氏名などの変更や紛失の届出で失効します。市区町村の窓口で署名用電子証明書の"
                            "再発行を申請してください。")
    if isinstance(e, CardExpiredError):
        return LoginRefused("expired", "署名用電子証明書の有効期限が切れています",
                            "市区町村の窓口で電子証明書の更新を申請してください。")
    if isinstance(e, CardSignatureError):
        return LoginRefused("bad_signature", "署名を確認できませんでした",
                            "この画面に表示された申請書に、署名用電子証明書で署名し直してください。")
    if isinstance(e, RevocationUnavailableError):
        return LoginRefused("revocation_unavailable", "証明書の有効性を確認できません",
                            "失効情報の確認先（J-LIS）に接続できません。しばらくしてからやり直してください。")
    if isinstance(e, CardRejectedError):
        return LoginRefused("untrusted", "この証明書では申請できません",
                            "公的個人認証サービスの署名用電子証明書で署名してください。")
    return LoginRefused("malformed", "署名を読み取れません", "カードリーダーの応答をそのまま貼り付けてください。")


async def verify(verifier: SignVerifier, document: bytes, response_text: str) -> tuple[bytes, bytes]:
    """(signature, certificate) once the card's answer verifies over exactly this document."""
    signature, certificate = parse_card_response(response_text)
    try:
        await run_in_threadpool(verifier.verify_signature, document, signature, certificate)
    except (CardRejectedError, RevocationUnavailableError, InvalidArgumentError) as e:
        raise refusal(e) from None
    return signature, certificate


__all__ = ["MidClientTls", "Municipalities", "digest", "refusal", "verify"]
