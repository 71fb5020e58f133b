"""A slow, independent writer of C2SP tlog-tiles logs, written from the specs (tlog-tiles,
tlog-checkpoint, signed-note) with hashlib and `cryptography`'s Ed25519: it shares no code with
renkei's ledger. Used to make third-party logs whose entries are not renkei records."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.reference import tlog_ref
from tests.reference.tiles_ref import tile_file


def _key_id(name: str, pub: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n\x01" + pub).digest()[:4]


def vkey(name: str, key: Ed25519PrivateKey) -> str:
    pub = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    key_b64 = base64.b64encode(b"\x01" + pub).decode()
    return f"{name}+{_key_id(name, pub).hex()}+{key_b64}"


def sign_line(name: str, key: Ed25519PrivateKey, text: str) -> str:
    pub = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    sig = key.sign(text.encode())
    return f"— {name} {base64.b64encode(_key_id(name, pub) + sig).decode()}\n"


def _subtree(hashes: list[bytes]) -> bytes:
    while len(hashes) > 1:
        hashes = [tlog_ref.node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
    return hashes[0]


def write_log(root: Path, entries: list[bytes], origin: str, signers: list[tuple[str, Ed25519PrivateKey]],
              keep_partials: bool = True) -> str:
    """Write `entries` as a tlog-tiles log under `root`: every entry bundle and hash tile (full
    and the right-edge partials; with `keep_partials` also the partials of the earlier sizes
    0..n at level 0, as Tessera leaves them), and a checkpoint signed by every signer. Returns
    the checkpoint note."""
    n = len(entries)
    for b in range((n + 255) // 256):
        chunk = entries[b * 256 : b * 256 + 256]
        p = tile_file(root, "entries", b, len(chunk))
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"".join(len(e).to_bytes(2, "big") + e for e in chunk))
    hashes = [tlog_ref.leaf_hash(e) for e in entries]
    level = 0
    while hashes:
        for t in range((len(hashes) + 255) // 256):
            chunk = hashes[t * 256 : t * 256 + 256]
            p = tile_file(root, level, t, len(chunk))
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(b"".join(chunk))
            if keep_partials and level == 0 and len(chunk) == 256:
                for w in (1, 100, 255):  # superseded partials a log may leave behind
                    q = tile_file(root, 0, t, w)
                    q.parent.mkdir(parents=True, exist_ok=True)
                    q.write_bytes(b"".join(chunk[:w]))
        hashes = [_subtree(hashes[i * 256 : i * 256 + 256]) for i in range(len(hashes) // 256)]
        level += 1
    body = f"{origin}\n{n}\n{base64.b64encode(tlog_ref.mth(entries)).decode()}\n"
    note = body + "\n" + "".join(sign_line(name, key, body) for name, key in signers)
    (root / "checkpoint").write_text(note)
    return note
