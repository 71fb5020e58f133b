"""Slow pure-Python reference of a holdings snapshot range (core_rs/src/holdings/index.rs):
the link ids of 65,536 person indices and every agency's chunk of them — a sorted array of
``u16`` low halves up to 4,096 members, an 8 KiB bitmap beyond — closed by a CRC-32; and of a
range's patch (its delta row: link ids from one person on, the value now of each (agency,
person) pair named), how a patch folds earlier ones in, and how base + patches load."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

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


def encode_patch(hi: int, first: int, links: list[bytes], sets: dict[int, set[int]],
                 touched: set[tuple[int, int]], previous: Sequence[bytes] = ()) -> bytes:
    """The patch of range ``hi`` of the state (``links``, ``sets``): link ids from person
    ``first`` on (clamped to the range), and for each (agency, person) of ``touched`` — plus the
    pairs of the ``previous`` patches folded in, whose smallest ``first`` then applies — whether
    the agency holds the person."""
    base = hi * RANGE
    if any(not base <= p < base + RANGE for _, p in touched):
        raise ValueError("a person outside the range")
    pairs = set(touched)
    first = min(max(first, base), base + RANGE)
    for data in previous:
        old_hi, old_first, _, agencies = decode_patch(data)
        if old_hi != hi:
            raise ValueError("another range's patch")
        first = min(first, old_first)
        pairs |= {(a, p) for a, (held, cleared) in agencies.items() for p in held + cleared}
    end = min(max(len(links), first), base + RANGE)
    out = bytearray(b"RKP1" + struct.pack("<III", hi, first, end - first))
    for link in links[first:end]:
        out += link
    by_agency: dict[int, list[int]] = {}
    for agency, person in sorted(pairs):
        by_agency.setdefault(agency, []).append(person)
    out += struct.pack("<I", len(by_agency))
    for agency, persons in by_agency.items():
        held = [p - base for p in persons if p in sets.get(agency, set())]
        cleared = [p - base for p in persons if p not in sets.get(agency, set())]
        out += struct.pack("<I", agency)
        for lows in (held, cleared):
            out += struct.pack("<I", len(lows)) + b"".join(struct.pack("<H", x) for x in lows)
    return bytes(out) + struct.pack("<I", zlib.crc32(out))


def decode_patch(data: bytes) -> tuple[int, int, list[bytes], dict[int, tuple[list[int], list[int]]]]:
    """(hi, first, the link ids from ``first``, agency → (persons held, persons not held))."""
    body, (crc,) = data[:-4], struct.unpack("<I", data[-4:])
    if zlib.crc32(body) != crc:
        raise ValueError("checksum mismatch")
    if body[:4] != b"RKP1":
        raise ValueError("wrong magic")
    hi, first, n = struct.unpack_from("<III", body, 4)
    at = 16
    links = [body[at + 16 * i:at + 16 * (i + 1)] for i in range(n)]
    at += 16 * n
    (count,) = struct.unpack_from("<I", body, at)
    at += 4
    agencies: dict[int, tuple[list[int], list[int]]] = {}
    for _ in range(count):
        (agency,) = struct.unpack_from("<I", body, at)
        at += 4
        lists = []
        for _ in range(2):
            (k,) = struct.unpack_from("<I", body, at)
            lists.append([hi * RANGE + x for x in struct.unpack_from(f"<{k}H", body, at + 4)])
            at += 4 + 2 * k
        agencies[agency] = (lists[0], lists[1])
    if at != len(body):
        raise ValueError("trailing bytes")
    return hi, first, links, agencies


def load(rows: list[bytes]) -> tuple[list[bytes], dict[int, set[int]]]:
    """The state a driver's rows give: each range's base followed by its patches, in order."""
    links: list[bytes] = []
    sets: dict[int, set[int]] = {}
    for data in rows:
        if data[:4] == b"RKR1":
            hi, range_links, range_sets = decode(data)
            if range_links and len(links) != hi * RANGE:
                raise ValueError("range out of order")
            links += range_links
            for agency, persons in range_sets.items():
                sets.setdefault(agency, set()).update(persons)
            continue
        _, first, patch_links, agencies = decode_patch(data)
        if patch_links:
            if first > len(links):
                raise ValueError("a gap before the patch's link ids")
            if links[first:first + len(patch_links)] != patch_links[:len(links) - first]:
                raise ValueError("another link id for an assigned person")
            links += patch_links[len(links) - first:]
        for agency, (held, cleared) in agencies.items():
            sets.setdefault(agency, set()).update(held)
            sets[agency].difference_update(cleared)
    return links, {a: s for a, s in sets.items() if s}
