"""An independent PASETO v4.public implementation for renkei permits, written from the PASETO
specification (version 4, public; PAE from Common.md) and docs/arch/permissions.md, with
`cryptography`'s Ed25519. It shares no code with the engine that signs the permits.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

HEADER = b"v4.public."
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class Reject(Exception):
    def __init__(self, defect: str) -> None:
        super().__init__(defect)
        self.defect = defect


def le64(n: int) -> bytes:
    return struct.pack("<Q", n & ((1 << 63) - 1))


def pae(*pieces: bytes) -> bytes:
    return le64(len(pieces)) + b"".join(le64(len(p)) + p for p in pieces)


def b64e(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64d(s: str) -> bytes:
    if "=" in s or not all(c.isalnum() or c in "-_" for c in s):
        raise ValueError("not unpadded base64url")
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def raw_public(pk: Ed25519PublicKey) -> bytes:
    return pk.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(public: bytes) -> bytes:
    return hashlib.sha256(b"renkei-permit-kid\x00" + public).digest()[:6]


def crockford_decode(s: str) -> bytes:
    v = 0
    for c in s:
        v = v * 32 + CROCKFORD.index(c)
    return v.to_bytes(16, "big")


def sign(seed: bytes, claims: dict[str, Any]) -> str:
    """Sign claims (already in wire form) the way the spec says."""
    sk = Ed25519PrivateKey.from_private_bytes(seed)
    kid = key_id(raw_public(sk.public_key()))
    m = json.dumps(claims, separators=(",", ":")).encode()
    sig = sk.sign(pae(HEADER, m, kid, b""))
    return (HEADER + b64e(m + sig).encode() + b"." + b64e(kid).encode()).decode()


def verify(token: str, public: bytes, now: int) -> dict[str, Any]:
    if not token.startswith(HEADER.decode()):
        raise Reject("malformed")
    parts = token[len(HEADER):].split(".")
    if len(parts) != 2:
        raise Reject("malformed")
    try:
        body, footer = b64d(parts[0]), b64d(parts[1])
    except ValueError as e:
        raise Reject("malformed") from e
    if len(body) < 64:
        raise Reject("malformed")
    if footer != key_id(public):
        raise Reject("wrong_key")
    m, sig = body[:-64], body[-64:]
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(sig, pae(HEADER, m, footer, b""))
    except InvalidSignature as e:
        raise Reject("tampered") from e
    claims: dict[str, Any] = json.loads(m)
    if now >= claims["i"] + claims["t"]:
        raise Reject("expired")
    return claims


# --- RFC 6962 / 9162 Merkle, for batch items ----------------------------------------------
def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1 Merkle Tree Hash, recursively."""
    if len(leaves) == 1:
        return leaf_hash(leaves[0])
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def batch_leaf(index: int, person: bytes, items: list[str]) -> bytes:
    return struct.pack(">Q", index) + person + bytes([len(items)]) + b"".join(
        bytes([len(i)]) + i.encode() for i in items)


def verify_inclusion(leaf: bytes, index: int, size: int, proof: bytes, root: bytes) -> bool:
    """RFC 9162 §2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf_hash(leaf)
    for k in range(0, len(proof), 32):
        p = proof[k:k + 32]
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root
