"""The witness's key and its cosignatures (連署), C2SP tlog-cosignature ``cosignature/v1``.

The key is an Ed25519 seed (``keys/witness-key.key`` in the witness's data directory, 32 random
bytes, 0600). A cosignature line is ``— <name> base64(key id ‖ u64-BE time ‖ Ed25519 sig)``,
key id = SHA-256(name ‖ 0x0A ‖ 0x04 ‖ public key)[:4], signing
``"cosignature/v1\\ntime <time>\\n" ‖ checkpoint note text``. It states: as of ``time``, this is
the largest tree consistent with everything the witness saw of that log.
"""

from __future__ import annotations

import base64
import struct

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from renkei.errors import InvalidArgumentError
from renkei.witness.note import COSIGNATURE_V1, EM_DASH, Verifier, check_key_name, cosigned_message, key_id


class CosignatureKey:
    """A witness's signing key under its name."""

    def __init__(self, name: str, seed: bytes) -> None:
        check_key_name(name)
        if len(seed) != 32:
            raise InvalidArgumentError("an Ed25519 seed is 32 bytes")
        self.name = name
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        self.public_key = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.key_id = key_id(name, COSIGNATURE_V1, self.public_key)
        self.verifier = Verifier(name, self.key_id, COSIGNATURE_V1, self.public_key)

    def __repr__(self) -> str:
        return f"CosignatureKey({self.name!r}, key hidden)"

    @property
    def vkey(self) -> str:
        """The C2SP verifier key: ``name+hex(key id)+base64(0x04 ‖ public key)``."""
        return str(self.verifier)

    def cosign(self, text: str, timestamp: int) -> str:
        """The cosignature line (newline included) over checkpoint note ``text`` at ``timestamp``
        (POSIX seconds, never zero)."""
        if not 0 < timestamp < 1 << 63:
            raise InvalidArgumentError("a cosignature timestamp is positive and below 2^63")
        sig = self._key.sign(cosigned_message(text, timestamp))
        raw = struct.pack(">IQ", self.key_id, timestamp) + sig
        return f"{EM_DASH} {self.name} {base64.b64encode(raw).decode()}\n"


__all__ = ["CosignatureKey"]
