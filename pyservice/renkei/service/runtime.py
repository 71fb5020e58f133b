"""How a servicer's methods become gRPC handlers: the one wrapper every call goes through.

For each method of a service descriptor, :func:`method_handlers` registers a handler that
takes the raw request bytes, so that a request that does not even parse is answered
INVALID_ARGUMENT (reason ``MALFORMED_REQUEST``) rather than grpc's INTERNAL. The wrapper then
checks the deadline, calls the servicer's ``async def Method(request, context)``, records
metrics, and maps every exception through :func:`renkei.service.status.status_for`.

Each call has a request id (the caller's ``x-request-id`` metadata when it is a short token,
else a fresh one). The call's log line (logger ``renkei.access``, at DEBUG: no line per call at
INFO) carries the request id, method, agency id (or role), status and latency, never anything
from the request itself; an internal error is logged at ERROR with the same fields.

Engine calls are made with :meth:`Offload.call`, which runs them on a bounded thread pool:
never on the event-loop thread. Engines that are not safe for concurrent use (the SQLite
registries) get a pool of one thread of their own.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import grpc
from google.protobuf import descriptor, message
from google.protobuf.message_factory import GetMessageClass

from renkei.errors import InvalidArgumentError, RenkeiError
from renkei.service.auth import current_identity
from renkei.service.metrics import Metrics
from renkei.service.status import rich_status, status_for

log = logging.getLogger("renkei.service")
access = logging.getLogger("renkei.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
T = TypeVar("T")


class MalformedRequestError(InvalidArgumentError):
    """The request bytes are not a valid message of the method's request type."""

    reason = "MALFORMED_REQUEST"


class Offload:
    """A bounded thread pool for engine calls (the GIL is released inside the Rust engine)."""

    def __init__(self, workers: int, name: str) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, lambda: fn(*args))

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)


class Coalescer:
    """Coalesces concurrent calls into one engine call over many items, on the offload pool.

    While one group runs, new arrivals queue; when it finishes the queue goes as the next
    group (at most ``max_group`` items). For calls that end in a durable commit (an inquiry)
    this turns N thread hops and N commits into one of each. ``fn`` takes a list of items and
    returns one answer per item, an exception instance for an item that failed.
    """

    def __init__(self, fn: Callable[[list[Any]], list[Any]], offload: Offload, max_group: int = 1024) -> None:
        self._fn = fn
        self._offload = offload
        self._max = max_group
        self._pending: list[tuple[Any, asyncio.Future[Any]]] = []
        self._running = False

    async def submit(self, item: Any) -> Any:
        """The answer for ``item``; raises the item's exception."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((item, fut))
        if not self._running:
            self._running = True
            asyncio.get_running_loop().create_task(self._drain())
        answer = await fut
        if isinstance(answer, BaseException):
            raise answer
        return answer

    async def _drain(self) -> None:
        try:
            while self._pending:
                group, self._pending = self._pending[: self._max], self._pending[self._max :]
                try:
                    answers = await self._offload.call(self._fn, [item for item, _ in group])
                except BaseException as exc:
                    answers = [exc] * len(group)
                for (_, fut), answer in zip(group, answers, strict=True):
                    if not fut.done():
                        fut.set_result(answer)
        finally:
            self._running = False


Handler = Callable[[Any, grpc.aio.ServicerContext], Awaitable[message.Message]]


def request_id(context: grpc.aio.ServicerContext) -> str:
    """The caller's ``x-request-id`` when it is a short plain token, else a fresh one."""
    for key, value in context.invocation_metadata() or ():
        if key == "x-request-id" and isinstance(value, str) and _REQUEST_ID.match(value):
            return value
    return secrets.token_hex(8)


def _caller() -> str:
    who = current_identity.get()
    if who is None:
        return ""
    return str(who.agency_id) if who.agency_id is not None else who.role


def _wrap(
    full_name: str, request_cls: type[message.Message], fn: Handler, metrics: Metrics
) -> Callable[[bytes, grpc.aio.ServicerContext], Awaitable[bytes]]:
    async def handle(raw: bytes, context: grpc.aio.ServicerContext) -> bytes:
        start = time.perf_counter()
        metrics.in_flight += 1
        code = "OK"
        rid = request_id(context)
        current_identity.set(None)
        try:
            try:
                request = request_cls.FromString(raw)
            except (message.DecodeError, RuntimeError, ValueError) as e:
                raise MalformedRequestError(
                    f"the request is not a valid {request_cls.DESCRIPTOR.full_name}"
                ) from e
            remaining = context.time_remaining()
            if remaining is not None and remaining <= 0:
                code = "DEADLINE_EXCEEDED"
                await context.abort_with_status(
                    rich_status(
                        grpc.StatusCode.DEADLINE_EXCEEDED,
                        "DEADLINE_EXCEEDED",
                        "the deadline passed before the call began",
                    )
                )
            response = await fn(request, context)
            data: bytes = response.SerializeToString()
            return data
        except asyncio.CancelledError:
            code = "CANCELLED"
            raise
        except grpc.aio.AbortError:
            if code == "OK":
                code = (context.code() or grpc.StatusCode.UNKNOWN).name
            raise
        except Exception as exc:
            status = status_for(exc)
            code = status.code.name
            if status.code is grpc.StatusCode.INTERNAL:
                log.exception("internal error in %s", full_name, extra=_fields(rid, full_name, code, start))
            elif status.code is grpc.StatusCode.RESOURCE_EXHAUSTED:
                metrics.limits_hit.inc(exc.reason if isinstance(exc, RenkeiError) else "RESOURCE_EXHAUSTED")
            await context.abort_with_status(status)
            raise AssertionError("unreachable") from None  # abort_with_status always raises
        finally:
            metrics.in_flight -= 1
            elapsed = time.perf_counter() - start
            metrics.observe(full_name, code, elapsed)
            if access.isEnabledFor(logging.DEBUG):
                access.debug("%s %s %.1f ms", full_name, code, elapsed * 1000,
                             extra=_fields(rid, full_name, code, start))

    return handle


def _serialize(m: message.Message) -> bytes:
    data: bytes = m.SerializeToString()
    return data


def _wrap_stream(full_name: str, fn: Any, metrics: Metrics) -> Any:
    """A bidirectional stream (an attendance): errors map to a status like unary calls."""

    async def handle(requests: Any, context: grpc.aio.ServicerContext) -> Any:
        start = time.perf_counter()
        metrics.in_flight += 1
        code = "OK"
        try:
            async for response in fn(requests, context):
                yield response
        except asyncio.CancelledError:
            code = "CANCELLED"
            raise
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            status = status_for(exc)
            code = status.code.name
            if status.code is grpc.StatusCode.INTERNAL:
                log.exception("internal error in %s", full_name)
            await context.abort_with_status(status)
        finally:
            metrics.in_flight -= 1
            metrics.observe(full_name, code, time.perf_counter() - start)

    return handle
def _fields(rid: str, method: str, code: str, start: float) -> dict[str, Any]:
    """The structured fields of a call's log line (see renkei.cli.common.JsonFormatter)."""
    return {"request_id": rid, "method": method, "agency": _caller(), "status": code,
            "latency_ms": round((time.perf_counter() - start) * 1000, 3)}


def method_handlers(
    service: descriptor.ServiceDescriptor, servicer: object, metrics: Metrics
) -> grpc.GenericRpcHandler:
    """The generic handler of one service, dispatching to ``servicer``'s methods by name."""
    handlers = {}
    for method in service.methods:
        fn = getattr(servicer, method.name)
        request_cls = GetMessageClass(method.input_type)
        full_name = f"/{service.full_name}/{method.name}"
        if method.client_streaming and method.server_streaming:
            handlers[method.name] = grpc.stream_stream_rpc_method_handler(
                _wrap_stream(full_name, fn, metrics), request_deserializer=request_cls.FromString,
                response_serializer=_serialize,
            )
            continue
        handlers[method.name] = grpc.unary_unary_rpc_method_handler(
            _wrap(full_name, request_cls, fn, metrics), request_deserializer=None, response_serializer=None
        )
    return grpc.method_handlers_generic_handler(service.full_name, handlers)


__all__ = ["MalformedRequestError", "Offload", "method_handlers", "request_id"]
