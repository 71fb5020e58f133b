"""renkei.service.failover: a call goes to the first front-end that accepts a connection and is
never resent once one received it (docs/arch/store.md, "Many front-ends")."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from grpc.aio import AioRpcError, Metadata

from renkei.errors import InvalidArgumentError
from renkei.service.failover import FirstAvailable, never_connected, split_targets


def _error(code: grpc.StatusCode, details: str) -> AioRpcError:
    return AioRpcError(code, Metadata(), Metadata(), details)


class Stub:
    def __init__(self, name: str) -> None:
        self.name = name
        self.fail: AioRpcError | None = None
        self.calls: list[Any] = []

    async def Read(self, request: Any, **kw: Any) -> str:
        self.calls.append((request, kw))
        if self.fail is not None:
            raise self.fail
        return self.name

    Write = Read


REFUSED = _error(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses; last error: "
                 "UNKNOWN: ipv4:127.0.0.1:9: Failed to connect to remote host: Connection refused")


def test_never_connected_is_only_a_refused_connection() -> None:
    assert never_connected(REFUSED)
    assert not never_connected(_error(grpc.StatusCode.UNAVAILABLE, "Socket closed"))
    assert not never_connected(_error(grpc.StatusCode.UNAUTHENTICATED, "failed to connect"))


def test_calls_move_on_only_when_no_connection_was_made() -> None:
    a, b = Stub("a"), Stub("b")
    s = FirstAvailable([a, b])

    async def run() -> None:
        assert await s.Read(1, timeout=5) == "a" and s.current == 0
        a.fail = REFUSED
        assert await s.Read(2, timeout=5) == "b" and s.current == 1
        assert b.calls[-1] == (2, {"timeout": 5})
        a.fail = None
        assert await s.Read(3) == "b" and len(a.calls) == 2  # stays with the one that answered
        b.fail = _error(grpc.StatusCode.UNAVAILABLE, "Socket closed")  # it received the call: not resent
        with pytest.raises(AioRpcError, match="Socket closed"):
            await s.Read(4)
        assert len(a.calls) == 2
        b.fail = REFUSED
        assert await s.Read(5) == "a" and s.current == 0
        a.fail = REFUSED
        with pytest.raises(AioRpcError):  # none reachable: the last one's error
            await s.Read(6)

    asyncio.run(run())


def test_a_repeatable_method_moves_on_after_any_unavailable() -> None:
    a, b = Stub("a"), Stub("b")
    s = FirstAvailable([a, b], resend=("Read",))
    reset = _error(grpc.StatusCode.UNAVAILABLE, "Stream removed (recvmsg:Connection reset by peer (104))")

    async def run() -> None:
        a.fail = reset  # a front-end killed while the call was on its connection
        assert await s.Read(1) == "b" and s.current == 1
        b.fail, a.fail = reset, None
        with pytest.raises(AioRpcError, match="Stream removed"):
            await s.Write(2)  # not repeatable: it may have been recorded
        assert len(a.calls) == 1
        b.fail = _error(grpc.StatusCode.UNAUTHENTICATED, "no such session")
        with pytest.raises(AioRpcError, match="no such session"):
            await s.Read(3)  # an answer, not a lost front-end: never sent elsewhere
        assert len(a.calls) == 1

    asyncio.run(run())


def test_targets_are_a_comma_list() -> None:
    assert split_targets("h1:1, h2:2") == ["h1:1", "h2:2"]
    assert split_targets(["h1:1", "h2:2,h3:3"]) == ["h1:1", "h2:2", "h3:3"]
    for bad in ("", "h1:1,", ",h2:2"):
        with pytest.raises(InvalidArgumentError, match="comma list"):
            split_targets(bad)
    with pytest.raises(ValueError):
        FirstAvailable([])
