"""Clients of a core that runs as several front-ends on one store (docs/arch/store.md).

A call that never reached a front-end (no connection could be made) is safe to send to the next
one; a call that reached one and failed may have been recorded there, so only callers whose
request is idempotent resend it on any UNAVAILABLE."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from renkei.errors import InvalidArgumentError


def targets(value: str | Sequence[str]) -> list[str]:
    """``HOST:PORT[,HOST:PORT…]`` (or a list) as a list of front-ends, in order of preference."""
    got = [t.strip() for t in (value.split(",") if isinstance(value, str) else value) if t.strip()]
    if not got:
        raise InvalidArgumentError("name at least one core front-end HOST:PORT")
    return got


def never_connected(e: grpc.RpcError) -> bool:
    """The call failed before any front-end received it (no connection could be made)."""
    details = (e.details() or "").lower() if hasattr(e, "details") else ""
    return e.code() == grpc.StatusCode.UNAVAILABLE and ("failed to connect" in details
                                                         or "connection refused" in details)


__all__ = ["never_connected", "targets"]
