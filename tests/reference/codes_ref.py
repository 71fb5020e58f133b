"""A slow, obviously-correct reference of agency codes (機関別符号), translation and holdings.

Mirrors ``core_rs/src/codes`` and ``core_rs/src/holdings`` with the ``cryptography`` package's
AES-256 (OpenSSL) one block at a time and Python sets.
"""

from __future__ import annotations

import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

TAG = b"RKC1"
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _ecb(key: bytes):  # type: ignore[no-untyped-def]
    return Cipher(algorithms.AES(key), modes.ECB())


def encode(key: bytes, person: int, agency: int, epoch: int) -> bytes:
    plain = struct.pack("<III", person, agency, epoch) + TAG
    enc = _ecb(key).encryptor()
    return enc.update(plain) + enc.finalize()


def decode(key: bytes, code: bytes) -> tuple[int, int, int] | None:
    dec = _ecb(key).decryptor()
    plain = dec.update(code) + dec.finalize()
    if plain[12:] != TAG:
        return None
    person, agency, epoch = struct.unpack("<III", plain[:12])
    return person, agency, epoch


def to_text(code: bytes) -> str:
    v = int.from_bytes(code, "big")
    return "".join(ALPHABET[(v >> (5 * (25 - i))) & 31] for i in range(26))


def from_text(text: str) -> bytes:
    s = text.replace("-", "").upper().replace("O", "0").replace("I", "1").replace("L", "1")
    if len(s) != 26 or any(c not in ALPHABET for c in s) or ALPHABET.index(s[0]) > 7:
        raise ValueError("not an agency code")
    v = 0
    for c in s:
        v = v * 32 + ALPHABET.index(c)
    return v.to_bytes(16, "big")


class ReferenceCore:
    """Holdings as a set of (agency, person); epochs as (current, live set)."""

    def __init__(self, key: bytes) -> None:
        self.key = key
        self.held: set[tuple[int, int]] = set()
        self.current = 1
        self.live = {1}

    def acquire(self, agency: int, persons: list[int]) -> list[bytes]:
        self.held.update((agency, p) for p in persons)
        return [encode(self.key, p, agency, self.current) for p in persons]

    def _person(self, agency: int, code: bytes) -> int | None:
        d = decode(self.key, code)
        if d is None or d[1] != agency or d[2] not in self.live or (agency, d[0]) not in self.held:
            return None
        return d[0]

    def release(self, agency: int, codes: list[bytes]) -> list[int]:
        """Each code is judged against the holdings as they were when the call began."""
        persons = [self._person(agency, c) for c in codes]
        for p in persons:
            if p is not None:
                self.held.discard((agency, p))
        return [1 if p is None else 0 for p in persons]

    def translate(self, a: int, codes: list[bytes], b: int) -> tuple[list[bytes], list[int]]:
        out, status = [], []
        for c in codes:
            p = self._person(a, c)
            if p is None or (b, p) not in self.held:
                out.append(bytes(16))
                status.append(1)
            else:
                out.append(encode(self.key, p, b, self.current))
                status.append(0)
        return out, status

    def holders_of(self, person: int) -> list[int]:
        return sorted(a for a, p in self.held if p == person)
