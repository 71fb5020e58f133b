"""Small conversions shared by the servicers: timestamps, page tokens, ids."""

from __future__ import annotations

import base64
import hashlib
import struct
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt
from google.protobuf import timestamp_pb2

from renkei.errors import InvalidArgumentError, ResourceExhaustedError

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100


def timestamp(when: datetime | None) -> timestamp_pb2.Timestamp | None:
    if when is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(when.astimezone(UTC))
    return ts


def optional_time(message: object, name: str) -> datetime | None:
    """The Timestamp field ``name`` of ``message`` as an aware datetime, or None when unset."""
    if not message.HasField(name):  # type: ignore[attr-defined]
        return None
    ts: timestamp_pb2.Timestamp = getattr(message, name)
    if not 0 <= ts.nanos < 1_000_000_000 or not -62135596800 <= ts.seconds <= 253402300799:
        raise InvalidArgumentError(f"{name} is not a valid timestamp")
    when: datetime = ts.ToDatetime(tzinfo=UTC)
    return when


def page_size(requested: int) -> int:
    if requested == 0:
        return DEFAULT_PAGE_SIZE
    if requested > MAX_PAGE_SIZE:
        raise InvalidArgumentError(f"page_size must be at most {MAX_PAGE_SIZE}")
    return requested


def _fingerprint(query: bytes) -> bytes:
    return hashlib.sha256(query).digest()[:8]


def encode_page_token(position: int, query: bytes) -> str:
    """An opaque token for "continue after ``position``" that is valid only for the same query (AIP-158)."""
    return base64.urlsafe_b64encode(struct.pack(">q", position) + _fingerprint(query)).decode().rstrip("=")


def decode_page_token(token: str, query: bytes) -> int | None:
    """The position in ``token``, or None for an empty token (the first page)."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, TypeError):
        raw = b""
    if len(raw) != 16 or raw[8:] != _fingerprint(query):
        raise InvalidArgumentError("page_token is not a token of this query")
    position = int(struct.unpack(">q", raw[:8])[0])
    if position < 0:
        # Every position a token is made of is a record sequence or an id, never negative.
        raise InvalidArgumentError("page_token is not a token of this query")
    return position


def agency_id(value: int, what: str = "agency_id") -> int:
    if value == 0:
        raise InvalidArgumentError(f"{what} is required")
    return value


class BatchTooLargeError(ResourceExhaustedError):
    reason = "BATCH_TOO_LARGE"


def unpack_u64(data: bytes, what: str, limit: int) -> npt.NDArray[np.uint64]:
    """Little-endian uint64 values packed in ``data`` (8 bytes each)."""
    if len(data) % 8:
        raise InvalidArgumentError(f"{what} must be a multiple of 8 bytes (little-endian uint64 values)")
    count = len(data) // 8
    if count == 0:
        raise InvalidArgumentError(f"{what} is empty")
    if count > limit:
        raise BatchTooLargeError(f"{what}: {count} values, at most {limit} a call")
    return np.frombuffer(data, dtype="<u8").astype(np.uint64)
