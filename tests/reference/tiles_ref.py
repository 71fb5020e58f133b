"""A slow, independent reader of a C2SP tlog-tiles directory, written from the spec text:
checkpoint body, `tile/<L>/<N>[.p/<W>]` hash tiles, `tile/entries/<N>[.p/<W>]` bundles of
uint16-BE length-prefixed entries. Used to show the ledger's files are readable by a tool
that shares no code with it."""

from __future__ import annotations

import base64
from pathlib import Path

from tests.reference import tlog_ref


def index_path(n: int) -> str:
    parts = [f"{n % 1000:03d}"]
    n //= 1000
    while n:
        parts.append(f"x{n % 1000:03d}")
        n //= 1000
    return "/".join(reversed(parts))


def tile_file(root: Path, level: int | str, n: int, width: int) -> Path:
    p = f"tile/{level}/{index_path(n)}"
    return root / (p if width == 256 else f"{p}.p/{width}")


def read_log(root: Path) -> tuple[str, int, bytes, list[bytes]]:
    """(origin, size, root hash, entries) after checking every tile against the entries."""
    body = (root / "checkpoint").read_text().split("\n\n")[0].split("\n")
    origin, size, root_hash = body[0], int(body[1]), base64.b64decode(body[2])
    entries: list[bytes] = []
    for n in range((size + 255) // 256):
        width = min(256, size - n * 256)
        data = tile_file(root, "entries", n, width).read_bytes()
        at = 0
        while at < len(data):
            ln = int.from_bytes(data[at : at + 2], "big")
            entries.append(data[at + 2 : at + 2 + ln])
            at += 2 + ln
    assert len(entries) == size
    level_hashes = [tlog_ref.leaf_hash(e) for e in entries]
    level = 0
    while level_hashes:
        for n in range((len(level_hashes) + 255) // 256):
            chunk = level_hashes[n * 256 : n * 256 + 256]
            assert tile_file(root, level, n, len(chunk)).read_bytes() == b"".join(chunk), (level, n)
        # One tile level up = the roots of the full 256-hash subtrees.
        full = len(level_hashes) // 256
        level_hashes = [_subtree(level_hashes[i * 256 : i * 256 + 256]) for i in range(full)]
        level += 1
    return origin, size, root_hash, entries


def _subtree(hashes: list[bytes]) -> bytes:
    while len(hashes) > 1:
        hashes = [tlog_ref.node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
    return hashes[0]
