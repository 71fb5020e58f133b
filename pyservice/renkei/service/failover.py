"""Calls to one of several core front-ends on one store (docs/arch/store.md, "Many front-ends").

A client given several front-ends (the intermediate servers' ``--core A,B,…``, the portal's
``--core`` and ``--linkage``) sends each call to the front-end that last answered and moves on
to the next only when **no connection could be made** to it: such a call never reached a
front-end, so sending it elsewhere cannot do anything twice. A call that reached a front-end and
failed (a front-end killed mid-call, a refusal) is not resent — it may have been recorded — and
its error goes to the caller as from a single front-end. Only the methods a client names as
safe to repeat (reads; writes whose repetition changes nothing, such as a login whose challenge
is single-use) are resent after any UNAVAILABLE: a front-end killed while the call was on its
connection (``Stream removed (recvmsg:Connection reset by peer)``) then costs the caller nothing.
J-LIS's forwards of acquisitions and the commission's PIA decisions are such requests (the same
forward issues the same codes; the core skips decisions it has): their senders
(renkei.service.jlis.core_link, renkei.service.ppc) resend them after any UNAVAILABLE.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import grpc


def never_connected(e: grpc.RpcError) -> bool:
    """The call failed before any front-end received it (no connection could be made)."""
    details = (e.details() or "").lower() if hasattr(e, "details") else ""
    return e.code() == grpc.StatusCode.UNAVAILABLE and ("failed to connect" in details
                                                         or "connection refused" in details)


class FirstAvailable:
    """A gRPC stub over the same service at several front-ends (aio stubs): each call goes to
    the front-end that last answered, and moves on to the next only when no connection to it
    could be made (:func:`never_connected`) — or, for a method of ``resend`` (safe to repeat),
    after any UNAVAILABLE."""

    def __init__(self, stubs: Sequence[Any], resend: Iterable[str] = ()) -> None:
        if not stubs:
            raise ValueError("at least one front-end")
        self._stubs = list(stubs)
        self._resend = frozenset(resend)
        self._current = 0

    @property
    def current(self) -> int:
        """The index of the front-end that answered last (the next call's first try)."""
        return self._current

    def __getattr__(self, method: str) -> Any:
        repeatable = method in self._resend

        async def call(request: Any, **kw: Any) -> Any:
            for i in range(len(self._stubs)):
                k = (self._current + i) % len(self._stubs)
                try:
                    got = await getattr(self._stubs[k], method)(request, **kw)
                except grpc.RpcError as e:
                    if i + 1 < len(self._stubs) and (never_connected(e) or (
                            repeatable and e.code() == grpc.StatusCode.UNAVAILABLE)):
                        continue
                    raise
                self._current = k
                return got
            raise AssertionError("unreachable")
        return call


def split_targets(value: str | Sequence[str]) -> list[str]:
    """``A,B,…`` (or a list of them) as a list of HOST:PORT targets, none empty."""
    items = [value] if isinstance(value, str) else list(value)
    targets = [t.strip() for item in items for t in item.split(",")]
    if not targets or any(not t for t in targets):
        from renkei.errors import InvalidArgumentError

        raise InvalidArgumentError("expected HOST:PORT or a comma list HOST:PORT,HOST:PORT,…")
    return targets


__all__ = ["FirstAvailable", "never_connected", "split_targets"]
