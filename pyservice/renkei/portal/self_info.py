"""あなたの情報 (自己情報表示): the person's own data, fetched by the portal as a requester.

マイナポータル is an agency of the core's registry (type ``information_disclosure_system``,
番号法 附則第6条; its rows are the table version ``beppyo2-2015+self-disclosure``,
:mod:`renkei.permissions.self_disclosure`). For a logged-in person it

1. asks the core for *its own* 機関別符号 of the person (``LinkageService.IssueSessionCode``
   with the person's session, over mutual TLS as its agency; the holding is recorded like any
   acquisition) — the portal never sees a My Number, and no provider's code reaches it;
2. inquires (``LinkageService.Inquire``, the requesters' path) of each agency the person chose,
   with a fresh X25519 recipient key per inquiry, so that the provider's intermediate server
   seals the answer to the portal; the core records the 照会 and the 提供 in the ledger (the
   person then sees them in やりとり履歴) and relays the answer unopened;
3. verifies the provider's signature (its certificate from the box CA, naming that agency) and
   the binding to the permit, opens the answer, and hands it to the page.

Nothing fetched is stored by the portal: the answer lives in the response being rendered (or
the API's JSON) and is dropped after it; the session keeps only the portal's code for the person.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import grpc
from cryptography import x509

from renkei._proto.renkei.v1 import linkage_service_pb2 as lpb
from renkei._proto.renkei.v1.linkage_service_pb2_grpc import LinkageServiceStub
from renkei.errors import InvalidArgumentError, ProvisionTamperedError
from renkei.mid.platform import Platform
from renkei.mid.sealing import new_recipient_key
from renkei.permissions.self_disclosure import AFFAIR_CODE, entitlements
from renkei.pki.ca import AGENCY_URI
from renkei.service.failover import FirstAvailable, split_targets
from renkei.service.status import error_from_rpc

#: How long one fetch may take (the core waits at most 10 s for a provider).
FETCH_TIMEOUT = 15.0
#: States of one agency's answer, as the page and the API name them.
PROVIDED = "provided"  # 提供あり
NO_DATA = "no_data"  # 提供なし: the agency holds the person but has no such record
NOT_HOLDING = "not_holding"  # 提供元不在: the agency does not hold the person
UNAVAILABLE = "unavailable"  # 提供元に接続できません: offline, timed out, or the core unreachable
REFUSED = "refused"  # 拒否: the core or the provider refused (not permitted, permit refused)
TAMPERED = "tampered"  # 検証失敗: the answer's signature or seal did not verify (never shown as data)
STATES = (PROVIDED, NO_DATA, NOT_HOLDING, UNAVAILABLE, REFUSED, TAMPERED)
STATE_LABELS = {PROVIDED: "提供あり", NO_DATA: "提供なし", NOT_HOLDING: "提供元不在",
                UNAVAILABLE: "提供元に接続できません", REFUSED: "拒否", TAMPERED: "検証失敗"}
_UNAVAILABLE = {"PROVIDER_OFFLINE", "PROVIDER_UNAVAILABLE", "PROVIDER_TIMED_OUT", "UNAVAILABLE", "RATE_LIMITED"}


@dataclass(frozen=True)
class Source:
    """What the person may ask one agency for: the items the table lets the portal fetch from
    an agency of its types."""

    provider: int
    items: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"a{self.provider}"


def sources(agency_types: dict[int, tuple[str, ...]], doc: dict[str, Any] | None = None) -> list[Source]:
    """The agencies あなたの情報 can ask and for what, from the portal's entitlement rows."""
    rows = entitlements(doc)
    out = []
    for agency, types in sorted(agency_types.items()):
        items = [item for _affair, providers, item in rows if set(providers) & set(types)]
        if items:
            out.append(Source(agency, tuple(dict.fromkeys(items))))
    return out


@dataclass
class Fetched:
    """One agency's answer (never stored: rendered and dropped)."""

    provider: int
    items: tuple[str, ...]
    state: str
    records: list[dict[str, Any]] = field(default_factory=list)
    inquiry_sequence: int | None = None
    provision_sequence: int | None = None
    detail: str = ""

    @property
    def label(self) -> str:
        return STATE_LABELS[self.state]


def agency_of_certificate(pem: bytes) -> int:
    """The agency id a certificate names (its ``urn:renkei:agency:N`` URI)."""
    cert = x509.load_pem_x509_certificate(pem)
    uris = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.UniformResourceIdentifier)
    ids = [u[len(AGENCY_URI):] for u in uris if u.startswith(AGENCY_URI)]
    if len(ids) != 1 or not ids[0].isdigit():
        raise InvalidArgumentError("the portal's agency certificate names no agency (urn:renkei:agency:N)")
    return int(ids[0])


def _state_of(reason: str, code: grpc.StatusCode | None) -> str:
    if reason == "PROVIDER_NOT_HOLDING":
        return NOT_HOLDING
    if reason in _UNAVAILABLE or code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return UNAVAILABLE
    return REFUSED


class SelfInfo:
    """The portal as the requester of 自己情報表示 toward the core's LinkageService."""

    def __init__(self, core: str | list[str], agency_dir: Path) -> None:
        self.targets = split_targets(core)
        self._cert = (agency_dir / "cert.pem").read_bytes()
        self._key = (agency_dir / "key.pem").read_bytes()
        self._ca = (agency_dir / "ca.pem").read_bytes()
        self.agency_id = agency_of_certificate(self._cert)
        self._channels: list[grpc.aio.Channel] = []
        self._stub: LinkageServiceStub | None = None

    @property
    def stub(self) -> LinkageServiceStub:
        """A LinkageServiceStub (over several core front-ends: one that fails over,
        renkei.service.failover)."""
        # Made on first use: an aio channel belongs to the event loop running then.
        if self._stub is None:
            creds = grpc.ssl_channel_credentials(self._ca, self._key, self._cert)
            self._channels = [grpc.aio.secure_channel(t, creds) for t in self.targets]
            stubs = [LinkageServiceStub(ch) for ch in self._channels]
            # The session code again is the same code (a holding again changes nothing); an
            # inquiry is recorded, so it is never resent once a front-end may have received it.
            self._stub = stubs[0] if len(stubs) == 1 else cast(LinkageServiceStub,
                                                                  FirstAvailable(stubs, ("IssueSessionCode",)))
        return self._stub

    async def close(self) -> None:
        for ch in self._channels:
            await ch.close()
        self._channels, self._stub = [], None

    async def code(self, core_token: str) -> bytes:
        """The portal's code for the session's person (raises grpc.RpcError; UNAUTHENTICATED
        when the core's session has ended)."""
        r = await self.stub.IssueSessionCode(lpb.IssueSessionCodeRequest(session_token=core_token),
                                             timeout=FETCH_TIMEOUT)
        return bytes(r.agency_code)

    async def fetch(self, code: bytes, source: Source, items: tuple[str, ...] | None = None) -> Fetched:
        """Inquire ``source`` for ``items`` (default: all it offers); never raises for the
        provider's or the core's refusal — that is a state of the answer."""
        wanted = tuple(items or source.items)
        private, public = new_recipient_key()
        try:
            r = await self.stub.Inquire(lpb.InquireRequest(
                agency_code=code, affair=AFFAIR_CODE, provider_agency_id=source.provider,
                information_items=list(wanted), request_id=secrets.token_hex(12),
                terms=lpb.ProvisionTerms(recipient_public_key=public)), timeout=FETCH_TIMEOUT)
        except grpc.RpcError as e:
            err = error_from_rpc(e, "the linkage core")
            return Fetched(source.provider, wanted, _state_of(err.reason, e.code()), detail=err.reason)
        p = r.provision
        try:
            header, answer = await asyncio.to_thread(
                Platform.open_answer, p.header, p.sealed, p.signature, r.provider_certificate_pem, self._ca,
                private, permit_id=bytes(r.permit_id), requester=self.agency_id, provider=source.provider)
        except ProvisionTamperedError as e:
            return Fetched(source.provider, wanted, TAMPERED, inquiry_sequence=r.record_sequence,
                           provision_sequence=r.provision_record_sequence, detail=str(e))
        records = [dict(x) for person in answer.get("persons", []) for x in person.get("records", [])]
        return Fetched(source.provider, wanted, PROVIDED if header.outcome == "provided" and records else NO_DATA,
                       records, r.record_sequence, r.provision_record_sequence)


__all__ = ["NOT_HOLDING", "NO_DATA", "PROVIDED", "REFUSED", "STATES", "STATE_LABELS", "TAMPERED", "UNAVAILABLE",
           "Fetched", "SelfInfo", "Source", "agency_of_certificate", "sources"]
