"""Inquiries as a requester's intermediate server makes them: with provision terms (a fresh HPKE
recipient key), and the provider's sealed answer opened and checked (renkei.mid.platform)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from renkei._proto.renkei.v1 import linkage_service_pb2 as lpb
from renkei.mid.platform import Platform
from renkei.mid.sealing import ProvisionHeader, new_recipient_key

#: The last recipient key made by :func:`terms`, to open the answer with (tests are sequential).
_last: list[X25519PrivateKey] = []


def terms(**kw: Any) -> lpb.ProvisionTerms:
    private, public = new_recipient_key()
    _last[:] = [private]
    return lpb.ProvisionTerms(recipient_public_key=public, **kw)


def inquiry(code: bytes, affair: str, provider: int, items: Any, **kw: Any) -> lpb.InquireRequest:
    t = kw.pop("terms", None) or terms()
    return lpb.InquireRequest(agency_code=code, affair=affair, provider_agency_id=provider,
                              information_items=list(items), terms=t, **kw)


def batch_inquiry(codes: bytes, affair: str, provider: int, items: Any, **kw: Any) -> lpb.BatchInquireRequest:
    t = kw.pop("terms", None) or terms()
    return lpb.BatchInquireRequest(agency_codes=codes, affair=affair, provider_agency_id=provider,
                                   information_items=list(items), terms=t, **kw)


def opened(r: lpb.InquireResponse | lpb.BatchInquireResponse, pki: Path, requester: int, provider: int,
           private: X25519PrivateKey | None = None) -> tuple[ProvisionHeader, dict[str, Any]]:
    """The provider's answer, its signature, binding and seal checked, opened."""
    p = r.provision
    return Platform.open_answer(p.header, p.sealed, p.signature, r.provider_certificate_pem,
                                (pki / "ca.pem").read_bytes(), private or _last[0], permit_id=bytes(r.permit_id),
                                requester=requester, provider=provider)
