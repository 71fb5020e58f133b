"""A client of C2SP tlog-witness written from the specifications alone (signed-note,
tlog-checkpoint, tlog-cosignature, tlog-witness at C2SP/C2SP 5ba5ee8), for testing a witness
from the outside: stdlib HTTP, pyca/cryptography Ed25519 and the slow reference tree of
tests/reference/tlog_ref.py. Nothing here imports renkei."""

from __future__ import annotations

import base64
import hashlib
import http.client
import struct
import time
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.reference import tlog_ref

DASH = "\u2014"


def key_id(name: str, sig_type: int, pub: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([sig_type]) + pub).digest()[:4]


@dataclass
class SpecLog:
    """A log that signs C2SP checkpoints (Ed25519 note signatures, type 0x01, key name = origin)."""

    origin: str
    seed: bytes
    entries: list[bytes] = field(default_factory=list)

    @property
    def _key(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.seed)

    @property
    def public_key(self) -> bytes:
        return self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def vkey(self) -> str:
        kid = key_id(self.origin, 0x01, self.public_key).hex()
        material = base64.b64encode(bytes([0x01]) + self.public_key).decode()
        return f"{self.origin}+{kid}+{material}"

    def append(self, n: int) -> None:
        start = len(self.entries)
        self.entries += [f"entry {i} of {self.origin}".encode() for i in range(start, start + n)]

    def root(self, size: int) -> bytes:
        return tlog_ref.mth(self.entries[:size])

    def proof(self, old: int, new: int) -> list[bytes]:
        return [] if old == 0 else tlog_ref.proof(old, self.entries[:new])

    def text(self, size: int, root: bytes | None = None) -> str:
        r = self.root(size) if root is None else root
        return f"{self.origin}\n{size}\n{base64.b64encode(r).decode()}\n"

    def sign(self, text: str, *, name: str | None = None, key: Ed25519PrivateKey | None = None,
             corrupt: bool = False) -> str:
        k = key or self._key
        pub = k.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        n = name or self.origin
        sig = k.sign(text.encode())
        if corrupt:
            sig = bytes([sig[0] ^ 1]) + sig[1:]
        return f"{DASH} {n} {base64.b64encode(key_id(n, 0x01, pub) + sig).decode()}\n"

    def checkpoint(self, size: int, root: bytes | None = None, extra_sigs: str = "") -> str:
        text = self.text(size, root)
        return text + "\n" + self.sign(text) + extra_sigs


def body(old: int, proof: list[bytes], checkpoint: str) -> bytes:
    lines = [f"old {old}"] + [base64.b64encode(h).decode() for h in proof]
    return ("\n".join(lines) + "\n\n" + checkpoint).encode()


@dataclass
class Answer:
    status: int
    content_type: str
    body: bytes


class WitnessClient:
    """One keep-alive HTTP connection to a witness's submission prefix."""

    def __init__(self, host: str, port: int) -> None:
        self.conn = http.client.HTTPConnection(host, port, timeout=30)

    def add_checkpoint(self, data: bytes) -> Answer:
        self.conn.request("POST", "/add-checkpoint", body=data)
        r = self.conn.getresponse()
        return Answer(r.status, r.getheader("Content-Type", ""), r.read())

    def get(self, path: str) -> Answer:
        self.conn.request("GET", path)
        r = self.conn.getresponse()
        return Answer(r.status, r.getheader("Content-Type", ""), r.read())

    def close(self) -> None:
        self.conn.close()


@dataclass(frozen=True)
class WitnessKey:
    name: str
    public_key: bytes

    @classmethod
    def from_vkey(cls, vkey: str) -> WitnessKey:
        name, kid, b64 = vkey.split("+", 2)
        raw = base64.b64decode(b64)
        assert raw[0] == 0x04 and len(raw) == 33, "a cosignature/v1 vkey has type 0x04 and a 32-byte key"
        assert key_id(name, 0x04, raw[1:]).hex() == kid
        return cls(name, raw[1:])

    def verify_cosignatures(self, response: bytes, text: str, *, now: float | None = None) -> list[int]:
        """Every line is '— name base64'; the lines of this witness must verify as cosignature/v1
        over ``text``; returns their timestamps (there must be at least one)."""
        out = []
        decoded = response.decode()
        assert decoded.endswith("\n")
        for line in decoded[:-1].split("\n"):
            assert line.startswith(DASH + " "), line
            name, b64 = line[2:].split(" ")
            raw = base64.b64decode(b64)
            if name != self.name or raw[:4] != key_id(self.name, 0x04, self.public_key):
                continue
            assert len(raw) == 4 + 8 + 64
            (ts,) = struct.unpack(">Q", raw[4:12])
            assert ts != 0
            if now is not None:
                assert abs(ts - now) < 300
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(
                raw[12:], f"cosignature/v1\ntime {ts}\n".encode() + text.encode())
            out.append(ts)
        assert out, "no cosignature of the witness"
        return out


def now() -> float:
    return time.time()
