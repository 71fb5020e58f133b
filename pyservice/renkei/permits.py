"""Provision permits (提供許可): what the core signs for an allowed inquiry and what a
provider's 中間サーバー checks offline before it answers.

A permit is a PASETO v4.public token (Ed25519 over PAE) with one-letter claims
(docs/arch/permissions.md): permit id, requester and provider agency, the provider's
機関別符号 for the person, affair and item codes, the table version hash, the ledger sequence
number, issue time and lifetime. A batch permit signs the RFC 6962 Merkle root of its items
once; every item is checked with its inclusion proof.

    issuer = PermitIssuer.from_datadir(DataDir("renkei-data"))      # keys/permit-signing.key
    token = issuer.issue(requester="…", provider="…", person=code16, affair="B2.1",
                         items=["B2.1.2.1"], table_version=h, ledger_seq=42).token
    PermitVerifier(issuer.public_key).verify(token)                  # raises PermitError

Rejections are distinct exceptions (renkei.errors): PermitMalformedError,
PermitWrongKeyError, PermitTamperedError, PermitExpiredError, PermitReplayedError,
PermitNotInBatchError.
"""

from __future__ import annotations

import base64
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from renkei._core import permits as _pm
from renkei.datadir import DataDir
from renkei.errors import PermitMalformedError

KEY_NAME = "permit-signing"
DEFAULT_LIFETIME_S = 300


@dataclass(frozen=True)
class Permit:
    token: str
    permit_id: bytes
    issued_at: int
    expires_at: int


@dataclass(frozen=True)
class BatchPermit(Permit):
    tree: Any  # renkei._core.permits.BatchTree: root and per-item proofs

    def proof(self, index: int) -> bytes:
        return bytes(self.tree.proof(index))


@dataclass(frozen=True)
class VerifiedPermit:
    """The claims of a permit that passed every check."""

    permit_id: bytes
    requester: str
    provider: str
    affair: str
    table_version: bytes
    ledger_seq: int
    issued_at: int
    expires_at: int
    person: bytes | None = None
    items: tuple[str, ...] = ()
    count: int | None = None
    root: bytes | None = None
    index: int | None = None

    @classmethod
    def _of(cls, d: dict[str, Any]) -> VerifiedPermit:
        return cls(d["permit_id"], d["requester"], d["provider"], d["affair"], d["table_version"],
                   d["ledger_seq"], d["issued_at"], d["expires_at"], d.get("person"),
                   tuple(d.get("items", ())), d.get("count"), d.get("root"), d.get("index"))

    @property
    def person_code_text(self) -> str | None:
        """The 機関別符号 as 26 Crockford base32 characters."""
        return None if self.person is None else str(_pm.crockford(self.person))


class PermitIssuer:
    """The core's side: signs permits with the 32-byte seed ``keys/permit-signing.key``."""

    def __init__(self, seed: bytes) -> None:
        self._signer = _pm.Signer(seed)

    @classmethod
    def from_datadir(cls, datadir: DataDir) -> PermitIssuer:
        return cls(datadir.secret_key(KEY_NAME))

    @property
    def public_key(self) -> bytes:
        return bytes(self._signer.public_key)

    @property
    def key_id(self) -> bytes:
        return bytes(self._signer.key_id)

    def issue(self, *, requester: str, provider: str, person: bytes, affair: str, items: Sequence[str],
              table_version: bytes, ledger_seq: int, lifetime: int = DEFAULT_LIFETIME_S,
              now: int | None = None, permit_id: bytes | None = None) -> Permit:
        iat = int(time.time()) if now is None else now
        token, pid = self._signer.sign(requester, provider, affair, list(items), person, table_version,
                                       ledger_seq, iat, iat + lifetime, permit_id)
        return Permit(token, bytes(pid), iat, iat + lifetime)

    def issue_batch(self, *, requester: str, provider: str, persons: bytes, affair: str,
                    items: Sequence[str], table_version: bytes, ledger_seq: int,
                    lifetime: int = DEFAULT_LIFETIME_S, now: int | None = None,
                    permit_id: bytes | None = None) -> BatchPermit:
        """One signature for len(persons)/16 items (every person asked for ``items``)."""
        tree = _pm.BatchTree(persons, list(items))
        iat = int(time.time()) if now is None else now
        token, pid = self._signer.sign_batch(requester, provider, affair, tree, table_version, ledger_seq,
                                             iat, iat + lifetime, permit_id)
        return BatchPermit(token, bytes(pid), iat, iat + lifetime, tree)


class PermitVerifier:
    """The provider's side: offline verification with the core's public key. With
    ``replay_cache`` (default) a permit (or batch item) is honoured once until it expires."""

    def __init__(self, public_key: bytes, *, replay_cache: bool = True) -> None:
        self._v = _pm.Verifier(public_key, replay_cache)

    def verify(self, token: str, now: int | None = None) -> VerifiedPermit:
        return VerifiedPermit._of(self._v.verify(token, int(time.time()) if now is None else now))

    def verify_batch_item(self, token: str, index: int, person: bytes, items: Sequence[str], proof: bytes,
                          now: int | None = None) -> VerifiedPermit:
        t = int(time.time()) if now is None else now
        return VerifiedPermit._of(self._v.verify_batch_item(token, t, index, person, list(items), proof))

    @property
    def remembered(self) -> int:
        return int(self._v.remembered())


def verify_permit(token: str, public_key: bytes, now: int | None = None) -> VerifiedPermit:
    """One-off verification (no replay memory)."""
    return PermitVerifier(public_key, replay_cache=False).verify(token, now)


def public_key_of(datadir: DataDir) -> bytes:
    """The core's permit-verification key, derived from the signing seed in ``datadir``."""
    return PermitIssuer.from_datadir(datadir).public_key


_HEADER = b"v4.public."


def _b64d(s: str) -> bytes:
    if "=" in s or not all(c.isascii() and (c.isalnum() or c in "-_") for c in s):
        raise PermitMalformedError("permit rejected: malformed: not unpadded base64url")
    try:
        return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
    except ValueError as e:
        raise PermitMalformedError("permit rejected: malformed: bad base64url") from e


def _b64e(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def _pae(*pieces: bytes) -> bytes:
    return struct.pack("<Q", len(pieces)) + b"".join(struct.pack("<Q", len(p)) + p for p in pieces)


class WirePermit(NamedTuple):
    """A permit as the gRPC ``Permit`` message carries it (see :func:`to_wire`)."""

    body: bytes
    signature: bytes
    key_id: str


def to_wire(token: str) -> WirePermit:
    """The gRPC ``Permit`` form of a token: ``body`` = the exact bytes signed, PAE("v4.public.",
    claims, key id, ""), ``signature`` = the Ed25519 signature over ``body``, ``key_id`` = the
    base64url key id. A provider may check the signature over ``body`` directly, or rebuild the
    token with :func:`from_wire` and use :class:`PermitVerifier`."""
    if not token.startswith(_HEADER.decode()) or token.count(".") != 3:
        raise PermitMalformedError("permit rejected: malformed: not a v4.public token with a footer")
    payload, footer = token[len(_HEADER):].split(".")
    raw, kid = _b64d(payload), _b64d(footer)
    if len(raw) <= 64:
        raise PermitMalformedError("permit rejected: malformed: too short")
    return WirePermit(_pae(_HEADER, raw[:-64], kid, b""), raw[-64:], _b64e(kid))


def from_wire(body: bytes, signature: bytes, key_id: str) -> str:
    """The token of a gRPC ``Permit`` (inverse of :func:`to_wire`)."""
    bad = PermitMalformedError("permit rejected: malformed: body is not PAE(v4.public., claims, kid, '')")
    pieces: list[bytes] = []
    try:
        (count,) = struct.unpack_from("<Q", body, 0)
        pos = 8
        for _ in range(count):
            (n,) = struct.unpack_from("<Q", body, pos)
            pos += 8
            if pos + n > len(body):
                raise bad
            pieces.append(body[pos:pos + n])
            pos += n
    except struct.error as e:
        raise bad from e
    if count != 4 or pos != len(body) or pieces[0] != _HEADER or pieces[3] != b"" or len(signature) != 64:
        raise bad
    if _b64e(pieces[2]) != key_id:
        raise PermitMalformedError("permit rejected: malformed: key_id does not match the signed key id")
    return f"{_HEADER.decode()}{_b64e(pieces[1] + signature)}.{key_id}"
