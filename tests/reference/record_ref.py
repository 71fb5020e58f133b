"""A slow, obviously-correct encoder of the ledger record (docs/arch/ledger.md, record layout 1
with 提供 records and 委任元), to check the engine's (core_rs/src/ledger/record.rs) against."""

from __future__ import annotations

import struct


def encode(*, seq: int, time_us: int, requester: int, provider: int, affair: str, items: list[str],
           table_hash: bytes, denied_code: int, reason: str, permit_id: bytes, pseudonym: bytes, withheld: bool,
           disclose_after: int | None, delegator: int | None = None,
           provision: tuple[int, int, bytes] | None = None) -> bytes:
    """One record. ``provision``: (outcome code, the 照会's sequence, ciphertext SHA-256) makes it a
    提供 record (kind 2: the code field holds its outcome, the reason its detail)."""
    if provision is not None:
        kind, code = 2, provision[0]
    elif denied_code:
        kind, code = 1, denied_code
    else:
        kind, code = 0, 0
    flags = (1 if withheld else 0) | (2 if disclose_after is not None else 0) | (4 if delegator is not None else 0)
    out = bytes([1])
    out += struct.pack(">Q", seq)
    out += struct.pack(">q", time_us)
    out += struct.pack(">I", requester)
    out += struct.pack(">I", provider)
    out += bytes([kind])
    out += struct.pack(">H", code)
    out += bytes([flags])
    out += struct.pack(">I", disclose_after or 0)
    out += table_hash
    out += permit_id
    out += pseudonym
    out += bytes([len(affair)]) + affair.encode()
    out += bytes([len(items)]) + b"".join(bytes([len(i)]) + i.encode() for i in items)
    text = reason.encode()
    out += struct.pack(">H", len(text)) + text
    if provision is not None:
        out += struct.pack(">Q", provision[1]) + provision[2]
    if delegator is not None:
        out += struct.pack(">I", delegator)
    return out


def provision_of(inquiry: dict[str, object], inquiry_seq: int, time_us: int, code: int, detail: str,
                 digest: bytes) -> dict[str, object]:
    """The 提供 record's fields answering a permitted 照会's fields."""
    return {**inquiry, "seq": 0, "time_us": time_us, "reason": detail, "denied_code": 0,
            "provision": (code, inquiry_seq, digest)}
