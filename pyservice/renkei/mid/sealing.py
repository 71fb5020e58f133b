"""End-to-end sealing of a provision (情報提供): only the requester's intermediate server can open it.

The requester's mid makes a fresh X25519 key per inquiry and sends the public half with the
inquiry. The provider's mid seals its answer to it with HPKE (RFC 9180, base mode,
DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / AES-128-GCM, from ``cryptography``) and signs the
result with its tenant's certificate key (ECDSA P-256, the key of the certificate the CA issued
to that agency). The core relays the sealed bytes and records their SHA-256; it holds no key
that opens them.

What is bound: the :class:`ProvisionHeader` (permit id, both agencies, affair, items, number of
persons, outcome) travels in clear beside the ciphertext — nothing personal, the core knows it
anyway — and is the HPKE ``info``, so a ciphertext cannot be replayed under another permit,
another pair of agencies or other items; the signature covers header and ciphertext, so the
requester knows which agency answered (its certificate, checked against the CA) and that the
bytes were not changed on the way.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, hpke, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from renkei.errors import InvalidArgumentError, ProvisionTamperedError
from renkei.pki.ca import AGENCY_URI

SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_128_GCM)
PUBLIC_KEY_LEN = 32
_INFO = b"renkei/v1/provision\0"
_SIGNED = b"renkei/v1/provision-signature\0"


@dataclass(frozen=True)
class ProvisionHeader:
    """What a provision says in clear, and binds its ciphertext to."""

    permit_id: bytes
    requester: int
    provider: int
    affair: str
    items: tuple[str, ...]
    persons: int
    outcome: str  # "provided" or "no data"

    def encode(self) -> bytes:
        d = asdict(self)
        d["permit_id"] = self.permit_id.hex()
        d["items"] = list(self.items)
        return json.dumps(d, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def decode(cls, data: bytes) -> ProvisionHeader:
        try:
            d = json.loads(data)
            return cls(bytes.fromhex(d["permit_id"]), int(d["requester"]), int(d["provider"]), str(d["affair"]),
                       tuple(str(i) for i in d["items"]), int(d["persons"]), str(d["outcome"]))
        except (ValueError, KeyError, TypeError):
            raise InvalidArgumentError("malformed provision header") from None

    def info(self) -> bytes:
        return _INFO + self.encode()


def new_recipient_key() -> tuple[X25519PrivateKey, bytes]:
    """A fresh key pair for one inquiry: (private key, 32-byte public key to send)."""
    private = X25519PrivateKey.generate()
    return private, private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def seal(header: ProvisionHeader, plaintext: bytes, recipient_public_key: bytes) -> bytes:
    """HPKE-seal ``plaintext`` to the requester's key with the header as ``info``."""
    if len(recipient_public_key) != PUBLIC_KEY_LEN:
        raise InvalidArgumentError("the recipient key is a 32-byte X25519 public key")
    public = X25519PublicKey.from_public_bytes(recipient_public_key)
    return bytes(SUITE.encrypt(plaintext, public, info=header.info()))


def open_sealed(header: ProvisionHeader, sealed: bytes, recipient: X25519PrivateKey) -> bytes:
    """The plaintext, or :class:`ProvisionTamperedError` when the bytes or the header changed."""
    try:
        return bytes(SUITE.decrypt(sealed, recipient, info=header.info()))
    except (InvalidTag, ValueError):
        raise ProvisionTamperedError("the sealed provision does not open: changed in transit or "
                                     "not sealed for this inquiry") from None


def _digest(header: ProvisionHeader, sealed: bytes) -> bytes:
    return _SIGNED + hashlib.sha256(header.encode() + b"\0" + sealed).digest()


def sign(header: ProvisionHeader, sealed: bytes, key: ec.EllipticCurvePrivateKey) -> bytes:
    """The provider's signature (ECDSA P-256 / SHA-256, DER) over header and ciphertext."""
    return bytes(key.sign(_digest(header, sealed), ec.ECDSA(hashes.SHA256())))


def verify(header: ProvisionHeader, sealed: bytes, signature: bytes, certificate_pem: bytes, ca_pem: bytes) -> None:
    """Check that the agency the header names as provider signed exactly these bytes: its
    certificate was issued by the CA, is in its validity period and names that agency."""
    try:
        cert = x509.load_pem_x509_certificate(certificate_pem)
        ca = x509.load_pem_x509_certificate(ca_pem)
        cert.verify_directly_issued_by(ca)
        now = dt.datetime.now(dt.UTC)
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise ValueError("outside its validity period")
        uris = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.UniformResourceIdentifier)
        if f"{AGENCY_URI}{header.provider}" not in uris:
            raise ValueError("the certificate names another agency")
        public = cert.public_key()
        if not isinstance(public, ec.EllipticCurvePublicKey):
            raise ValueError("not an EC key")
        public.verify(signature, _digest(header, sealed), ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError, TypeError, x509.ExtensionNotFound) as e:
        raise ProvisionTamperedError(f"the provision's signature does not verify: {e}") from None


__all__ = ["ProvisionHeader", "ProvisionTamperedError", "new_recipient_key", "open_sealed", "seal", "sign", "verify"]
