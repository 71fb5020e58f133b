"""Slow pure-Python reference of a holdings snapshot range (core_rs/src/holdings/index.rs):
the link ids of 65,536 person indices and every agency's chunk of them — a sorted array of
``u16`` low halves up to 4,096 members, an 8 KiB bitmap beyond — closed by a CRC-32."""

from __future__ import annotations

import struct
import zlib

RANGE = 1 << 16
ARRAY_MAX = 4096


def encode(hi: int, links: list[bytes], sets: dict[int, set[int]]) -> bytes:
    """Range ``hi``: ``links`` are the link ids of every person index assigned (all of them,
    in index order); ``sets`` agency → person indices held. The chunk kind is the one a set
    built by inserts has: an array while it has ≤ 4,096 members, a bitmap beyond."""
    base = hi * RANGE
    mine = links[base:base + RANGE]
    out = bytearray(b"RKR1" + struct.pack("<II", hi, len(mine)))
    for link in mine:
        out += link
    chunks = []
    for agency in sorted(sets):
        lows = sorted(p - base for p in sets[agency] if base <= p < base + RANGE)
        if lows:
            chunks.append((agency, lows))
    out += struct.pack("<I", len(chunks))
    for agency, lows in chunks:
        if len(lows) <= ARRAY_MAX:
            out += struct.pack("<IBI", agency, 0, len(lows)) + b"".join(struct.pack("<H", x) for x in lows)
        else:
            words = [0] * 1024
            for x in lows:
                words[x >> 6] |= 1 << (x & 63)
            out += struct.pack("<IBI", agency, 1, len(lows)) + struct.pack("<1024Q", *words)
    return bytes(out) + struct.pack("<I", zlib.crc32(out))


def decode(data: bytes) -> tuple[int, list[bytes], dict[int, list[int]]]:
    """(hi, the range's link ids, agency → person indices held in the range)."""
    body, (crc,) = data[:-4], struct.unpack("<I", data[-4:])
    if zlib.crc32(body) != crc:
        raise ValueError("checksum mismatch")
    if body[:4] != b"RKR1":
        raise ValueError("wrong magic")
    hi, n = struct.unpack_from("<II", body, 4)
    at = 12
    links = [body[at + 16 * i:at + 16 * (i + 1)] for i in range(n)]
    at += 16 * n
    (agencies,) = struct.unpack_from("<I", body, at)
    at += 4
    sets: dict[int, list[int]] = {}
    for _ in range(agencies):
        agency, kind, count = struct.unpack_from("<IBI", body, at)
        at += 9
        if kind == 0:
            lows = list(struct.unpack_from(f"<{count}H", body, at))
            at += 2 * count
        else:
            words = struct.unpack_from("<1024Q", body, at)
            at += 8192
            lows = [w * 64 + b for w, word in enumerate(words) for b in range(64) if word >> b & 1]
        sets[agency] = [hi * RANGE + x for x in lows]
    if at != len(body):
        raise ValueError("trailing bytes")
    return hi, links, sets


def ranges(links: list[bytes], sets: dict[int, set[int]]) -> int:
    """How many ranges the state spans: every assigned and every held person index."""
    top = max((max(s) + 1 for s in sets.values() if s), default=0)
    return max(-(-len(links) // RANGE), -(-top // RANGE))
