"""C2SP signed notes (署名付きノート) as witnesses and their clients read them.

A note is UTF-8 text ending in a newline, a blank line, then one or more signature lines
``— <key name> base64(key id[4] ‖ signature)``. The text is separated from the signatures by
the *last* blank line. Verifier keys (vkeys) are ``name+hex(key id)+base64(type ‖ public key)``
with key id = SHA-256(name ‖ 0x0A ‖ type ‖ public key)[:4] (c2sp.org/signed-note).

Two signature types are understood here:

* ``0x01`` Ed25519 over the note text — a log's checkpoint signature;
* ``0x04`` cosignature/v1 (c2sp.org/tlog-cosignature) — a witness's timestamped Ed25519
  signature over ``"cosignature/v1\\ntime <t>\\n" ‖ text``; the signature bytes are
  u64-BE timestamp ‖ 64-byte signature.

The ledger's own notes are made and opened by the engine (``renkei.ledger.open_note``), which
knows type 0x01 only; the witness needs both types and the exact failure (malformed → 400,
bad signature → 403), so it parses notes here with pyca/cryptography's Ed25519.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from renkei.errors import InvalidArgumentError, NoteError

EM_DASH = "\u2014"
ED25519 = 0x01
COSIGNATURE_V1 = 0x04
#: Verifiers must accept at least 16 signatures; Go's note package stops at 100, so do we.
MAX_SIGNATURES = 100
EMPTY_ROOT = hashlib.sha256(b"").digest()


def key_id(name: str, sig_type: int, public_key: bytes) -> int:
    """SHA-256(name ‖ 0x0A ‖ type ‖ public key)[:4] as a big-endian u32."""
    d = hashlib.sha256(name.encode() + b"\n" + bytes([sig_type]) + public_key).digest()
    return int.from_bytes(d[:4], "big")


def check_key_name(name: str) -> str:
    if not name or any(c.isspace() or c == "+" for c in name) or any(ord(c) < 0x20 for c in name):
        raise NoteError(f"invalid key name {name!r}: non-empty, no spaces, no '+'")
    return name


def decode_base64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise InvalidArgumentError(f"{what} is not valid base64") from None


@dataclass(frozen=True)
class Verifier:
    """A note verifier key of type 0x01 (Ed25519) or 0x04 (cosignature/v1)."""

    name: str
    key_id: int
    sig_type: int
    public_key: bytes

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        """``name+hexid+base64(type ‖ key)``; raises :class:`NoteError`."""
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3:
            raise NoteError("a verifier key is name+keyid+key")
        name, hex_id, b64 = parts
        check_key_name(name)
        if len(hex_id) != 8 or any(c not in "0123456789abcdef" for c in hex_id):
            raise NoteError("a verifier key id is 8 lower-case hex digits")
        try:
            raw = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raise NoteError("a verifier key is not valid base64") from None
        if len(raw) != 33 or raw[0] not in (ED25519, COSIGNATURE_V1):
            raise NoteError("only Ed25519 (0x01) and cosignature/v1 (0x04) verifier keys are supported")
        kid = int(hex_id, 16)
        if key_id(name, raw[0], raw[1:]) != kid:
            raise NoteError("the verifier key id does not match the key")
        try:
            Ed25519PublicKey.from_public_bytes(raw[1:])
        except ValueError:
            raise NoteError("the verifier key is not an Ed25519 public key") from None
        return cls(name, kid, raw[0], raw[1:])

    def __str__(self) -> str:
        return f"{self.name}+{self.key_id:08x}+{base64.b64encode(bytes([self.sig_type]) + self.public_key).decode()}"

    def verify(self, text: str, sig: bytes) -> int | None:
        """Check ``sig`` (the bytes after the key id) on note ``text``; returns the cosignature's
        timestamp for type 0x04 (None for 0x01). Raises :class:`NoteError` when it fails."""
        key = Ed25519PublicKey.from_public_bytes(self.public_key)
        try:
            if self.sig_type == ED25519:
                if len(sig) != 64:
                    raise InvalidSignature
                key.verify(sig, text.encode())
                return None
            if len(sig) != 72:
                raise InvalidSignature
            (ts,) = struct.unpack(">Q", sig[:8])
            if ts == 0 or ts >= 1 << 63:
                raise InvalidSignature
            key.verify(sig[8:], cosigned_message(text, ts))
            return int(ts)
        except InvalidSignature:
            raise NoteError(f"the signature of {self.name}+{self.key_id:08x} does not verify") from None


def cosigned_message(text: str, timestamp: int) -> bytes:
    """What a cosignature/v1 signs: two header lines, then the checkpoint's whole note text."""
    return f"cosignature/v1\ntime {timestamp}\n".encode() + text.encode()


@dataclass(frozen=True)
class Signature:
    name: str
    key_id: int
    sig: bytes  # the signature bytes after the 4-byte key id
    line: str  # the whole line, newline included

    @classmethod
    def parse_line(cls, line: str) -> Signature:
        """One ``— name base64`` line (without its newline)."""
        if not line.startswith(EM_DASH + " "):
            raise InvalidArgumentError("a signature line starts with '— '")
        name, sep, b64 = line[2:].partition(" ")
        if not sep or " " in b64:
            raise InvalidArgumentError("a signature line is '— <name> <base64>'")
        try:
            check_key_name(name)
        except NoteError as e:
            raise InvalidArgumentError(str(e)) from None
        raw = decode_base64(b64, "a signature")
        if len(raw) < 5:
            raise InvalidArgumentError("a signature is a key id and at least one byte")
        return cls(name, int.from_bytes(raw[:4], "big"), raw[4:], line + "\n")


@dataclass(frozen=True)
class SignedNote:
    """A parsed signed note: its text (final newline included) and its signature lines."""

    text: str
    signatures: tuple[Signature, ...]

    @classmethod
    def parse(cls, data: bytes) -> SignedNote:
        """Raises :class:`InvalidArgumentError` for anything that is not a well-formed note."""
        try:
            note = data.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidArgumentError("a note is UTF-8") from None
        if any(ord(c) < 0x20 and c != "\n" for c in note):
            raise InvalidArgumentError("a note has no control characters but newlines")
        split = note.rfind("\n\n")
        if split < 0:
            raise InvalidArgumentError("a note is text, a blank line and signature lines")
        text, sigs = note[: split + 1], note[split + 2 :]
        if not sigs.endswith("\n"):
            raise InvalidArgumentError("the signature lines must end in a newline")
        lines = sigs[:-1].split("\n")
        if len(lines) > MAX_SIGNATURES:
            raise InvalidArgumentError(f"more than {MAX_SIGNATURES} signatures")
        return cls(text, tuple(Signature.parse_line(x) for x in lines))

    def verify(self, verifiers: list[Verifier]) -> list[tuple[Verifier, int | None]]:
        """Every signature of a known key (name and key id both match), verified: a failing one
        raises :class:`NoteError` (the note is malformed); unknown keys are ignored. Returns the
        (verifier, timestamp) pairs that verified — possibly none."""
        known = {(v.name, v.key_id): v for v in verifiers}
        out: list[tuple[Verifier, int | None]] = []
        for s in self.signatures:
            v = known.get((s.name, s.key_id))
            if v is not None:
                out.append((v, v.verify(self.text, s.sig)))
        return out

    def render(self, extra: str = "") -> str:
        """The note again, with ``extra`` signature lines appended."""
        return self.text + "\n" + "".join(s.line for s in self.signatures) + extra


@dataclass(frozen=True)
class CheckpointBody:
    """A C2SP tlog-checkpoint note text: origin, size, root (extension lines kept in the text)."""

    origin: str
    size: int
    root: bytes

    @classmethod
    def parse(cls, text: str) -> CheckpointBody:
        lines = text[:-1].split("\n") if text.endswith("\n") else []
        if len(lines) < 3 or not lines[0] or any(not x for x in lines[3:]):
            raise InvalidArgumentError("a checkpoint is origin, size and root lines (then non-empty extensions)")
        size = lines[1]
        if not size.isascii() or not size.isdigit() or (len(size) > 1 and size[0] == "0") or int(size) >= 1 << 64:
            raise InvalidArgumentError("a checkpoint size is a decimal without leading zeros")
        root = decode_base64(lines[2], "the checkpoint root")
        if len(root) != 32:
            raise InvalidArgumentError("a checkpoint root is 32 bytes")
        return cls(lines[0], int(size), root)


__all__ = [
    "COSIGNATURE_V1",
    "ED25519",
    "EMPTY_ROOT",
    "CheckpointBody",
    "Signature",
    "SignedNote",
    "Verifier",
    "cosigned_message",
    "decode_base64",
    "key_id",
]
