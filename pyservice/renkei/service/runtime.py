"""How a servicer's methods become gRPC handlers: the one wrapper every call goes through.

Every method is registered with grpc as a *client-streaming* handler over raw bytes (the wire
format of a unary call is the same), because grpc runs such a handler before it has received
the request's body. So, for each call, before a byte of the body is read:

1. the caller is identified (mutual-TLS port: the certificate, :mod:`renkei.service.auth`) and
   must hold one of the roles the method declares with :func:`rpc` (UNAUTHENTICATED /
   PERMISSION_DENIED otherwise);
2. the caller's calls in progress on the port are counted against ``calls_per_caller``
   (the principal on the mutual-TLS port, the IP address on the public port), and a caller
   that kept sending oversized bodies waits out its penalty;
3. the body is then read under two gates — ``reads_per_caller`` for this caller and
   ``concurrent_reads`` for the port, which with the port's message limit bound the memory
   bodies in flight can take — and must arrive within ``arrival_seconds`` of the call's start;
4. its size is checked against the method's own limit before it is parsed (repeated fields
   are bounded by the bytes before any object is made), and a request that does not parse is
   INVALID_ARGUMENT/``MALFORMED_REQUEST`` rather than grpc's INTERNAL.

Then the wrapper checks the deadline, calls the servicer's ``async def Method(request,
context)`` with the caller in :func:`caller`, records metrics, and maps every exception
through :func:`renkei.service.status.status_for`.

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
import contextvars
import ctypes
import ctypes.util
import logging
import re
import secrets
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from google.protobuf import descriptor, message
from google.protobuf.message_factory import GetMessageClass

from renkei.errors import (
    InvalidArgumentError,
    PermissionDeniedError,
    RateLimitedError,
    RenkeiError,
    RequestTimeoutError,
    RequestTooLargeError,
    TooManyCallsError,
    UnauthenticatedError,
)
from renkei.service.auth import Authenticator, Identity
from renkei.service.limits import KIB, PortLimits
from renkei.service.metrics import Metrics
from renkei.service.status import rich_status, status_for

log = logging.getLogger("renkei.service")
access = logging.getLogger("renkei.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

#: Any authenticated caller, whatever its role (``@rpc(ANY_ROLE)``).
ANY_ROLE = "*"
#: The size limit of a method that declares none: small requests.
DEFAULT_MAX_REQUEST = 64 * KIB
#: Requests at least this large are parsed on a worker thread, not on the event loop.
_PARSE_OFF_LOOP = 256 * KIB


class MalformedRequestError(InvalidArgumentError):
    """The request bytes are not a valid message of the method's request type."""

    reason = "MALFORMED_REQUEST"


@dataclass(frozen=True)
class Rpc:
    """What a servicer method declares: who may call it and how large its request may be."""

    #: None: a public method (no identity, public port only); else the roles that may call
    #: (``ANY_ROLE``: any authenticated caller).
    roles: tuple[str, ...] | None
    max_request_bytes: int


def rpc(*roles: str, max_request: int = DEFAULT_MAX_REQUEST, public: bool = False) -> Callable[[F], F]:
    """Declare a servicer method's callers (``"agency"``, ``"jlis"``, …, or ``ANY_ROLE``; or
    ``public=True``) and its request size limit. Checked before the body is read."""
    if public == bool(roles):
        raise ValueError("a method is either public or names the roles that may call it")

    def mark(fn: F) -> F:
        fn.__renkei_rpc__ = Rpc(None if public else tuple(roles), max_request)  # type: ignore[attr-defined]
        return fn

    return mark


_caller: contextvars.ContextVar[Identity | None] = contextvars.ContextVar("renkei_caller", default=None)


def caller() -> Identity:
    """The verified caller of the current call (set by the wrapper before the servicer runs)."""
    who = _caller.get()
    if who is None:
        raise UnauthenticatedError("a client certificate is required: connect to the mutual-TLS port")
    return who


def caller_agency() -> int:
    """The agency id of the current caller (a method declared for role ``agency``)."""
    who = caller()
    if who.agency_id is None:
        raise PermissionDeniedError(f"{who.principal} is not an agency")
    return who.agency_id


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


class _Trimmer:
    """Hands freed memory back to the OS after large requests (glibc keeps freed arenas
    otherwise, so one burst of big bodies would keep the process's RSS up for good): at most
    once a second, on a thread of its own."""

    def __init__(self) -> None:
        name = ctypes.util.find_library("c")
        libc = ctypes.CDLL(name) if name else None
        self._trim = getattr(libc, "malloc_trim", None)
        self._last = 0.0
        self._busy = threading.Lock()

    def after(self, nbytes: int) -> None:
        if self._trim is None or nbytes < 1024 * KIB:
            return
        now = time.monotonic()
        if now - self._last < 1.0 or not self._busy.acquire(blocking=False):
            return
        self._last = now

        trim = self._trim

        def run() -> None:
            try:
                time.sleep(0.2)  # let the call's objects go first
                trim(0)
            finally:
                self._busy.release()

        threading.Thread(target=run, name="renkei-trim", daemon=True).start()


_TRIM = _Trimmer()


def peer_address(context: grpc.aio.ServicerContext) -> str:
    """The caller's IP address (without the port) from grpc's peer string."""
    peer = context.peer() or "unknown"
    kind, _, rest = peer.partition(":")
    if kind == "ipv6" and rest.startswith("["):
        return rest[1 : rest.find("]")]
    if kind == "ipv4":
        return rest.rsplit(":", 1)[0]
    return peer


class PortGate:
    """Per port: calls in progress per caller, and the gates a request body is read under.
    Lives on the event loop (no locks needed)."""

    def __init__(self, name: str, limits: PortLimits, metrics: Metrics) -> None:
        self.name = name
        self.limits = limits
        self._metrics = metrics
        self._calls: dict[str, int] = {}
        self._reads: asyncio.Semaphore | None = None
        self._caller_reads: dict[str, asyncio.Semaphore] = {}
        # Callers that sent oversized bodies: when each strike was, and until when they wait.
        self._strikes: dict[str, list[float]] = {}
        self._benched: dict[str, float] = {}
        self._refused = metrics.counter(
            "renkei_refused_total",
            "Calls refused by a limit of the port before their body was parsed, by port and reason.",
            ("port", "reason"))
        self._in_progress = 0
        # Read when the metrics are rendered: a call pays no metrics lock for them.
        metrics.labeled_gauge("renkei_port_calls", "Calls in progress on the port (all callers).",
                              ("port",)).source((name,), lambda: self._in_progress)
        metrics.labeled_gauge("renkei_port_callers", "Callers with calls in progress on the port.",
                              ("port",)).source((name,), lambda: len(self._calls))

    def refused(self, reason: str) -> None:
        self._refused.inc(self.name, reason)

    def strike(self, key: str) -> None:
        """``key`` sent a body larger than its method accepts. After ``oversize_strikes`` within
        ``penalty_seconds`` its calls are refused before their body is read for
        ``penalty_seconds``: a caller streaming junk must not keep the port decrypting it."""
        now = time.monotonic()
        window = self.limits.penalty_seconds
        recent = [t for t in self._strikes.get(key, []) if now - t < window]
        recent.append(now)
        if len(recent) >= self.limits.oversize_strikes:
            self._benched[key] = now + window
            self._strikes.pop(key, None)
            self.refused("PENALIZED")
        else:
            self._strikes[key] = recent
        if len(self._strikes) > 100_000:  # many addresses on the public port: forget the oldest
            for k in list(self._strikes)[: len(self._strikes) // 2]:
                del self._strikes[k]

    def enter(self, key: str, who: str) -> None:
        until = self._benched.get(key)
        if until is not None:
            if time.monotonic() < until:
                self.refused("PENALIZED")
                raise RateLimitedError(
                    f"{who} sent {self.limits.oversize_strikes} requests larger than their methods accept within "
                    f"{self.limits.penalty_seconds:g} s; its calls are refused until {until - time.monotonic():.0f} s "
                    f"from now"
                )
            del self._benched[key]
        n = self._calls.get(key, 0)
        if n >= self.limits.calls_per_caller:
            self.refused("TOO_MANY_CALLS")
            raise TooManyCallsError(
                f"{who} has {n} calls in progress on this port, the most it may; retry when one finishes"
            )
        self._calls[key] = n + 1
        self._in_progress += 1

    def leave(self, key: str) -> None:
        n = self._calls.get(key, 1) - 1
        if n:
            self._calls[key] = n
        else:
            self._calls.pop(key, None)
        self._in_progress -= 1

    async def read(self, context: grpc.aio.ServicerContext, key: str, started: float) -> bytes | None:
        """The request body, read under the gates, within the arrival bound (or the caller's
        deadline, if sooner)."""
        budget = self.limits.arrival_seconds - (time.monotonic() - started)
        remaining = context.time_remaining()
        if remaining is not None:
            budget = min(budget, remaining)
        if self._reads is None:
            self._reads = asyncio.Semaphore(self.limits.concurrent_reads)
        mine = self._caller_reads.get(key)
        if mine is None:
            mine = self._caller_reads[key] = asyncio.Semaphore(self.limits.reads_per_caller)
        try:
            async with asyncio.timeout(max(budget, 0.0)):
                async with mine, self._reads:
                    raw = await context.read()
        except TimeoutError:
            self.refused("REQUEST_TIMEOUT")
            raise RequestTimeoutError(
                f"the request did not arrive within {self.limits.arrival_seconds:g} s of the call's start"
            ) from None
        finally:
            # The last call of this caller: its semaphore goes (callers come and go).
            last = key not in self._calls or self._calls[key] <= 1
            if last and not mine.locked() and self._caller_reads.get(key) is mine:
                self._caller_reads.pop(key, None)
        if raw is grpc.aio.EOF:
            return None
        return bytes(raw)


Handler = Callable[[Any, grpc.aio.ServicerContext], Awaitable[message.Message]]


def request_id(context: grpc.aio.ServicerContext) -> str:
    """The caller's ``x-request-id`` when it is a short plain token, else a fresh one."""
    for key, value in context.invocation_metadata() or ():
        if key == "x-request-id" and isinstance(value, str) and _REQUEST_ID.match(value):
            return value
    return secrets.token_hex(8)


def _caller_label() -> str:
    """The caller as a log line names it: the agency id, else the role ("" before identification)."""
    who = _caller.get()
    if who is None:
        return ""
    return str(who.agency_id) if who.agency_id is not None else who.role


def _wrap(
    full_name: str,
    request_cls: type[message.Message],
    fn: Handler,
    spec: Rpc,
    gate: PortGate,
    auth: Authenticator | None,
    metrics: Metrics,
    offload: Offload | None,
) -> Callable[[Any, grpc.aio.ServicerContext], Awaitable[bytes]]:
    max_bytes = min(spec.max_request_bytes, gate.limits.max_request_bytes)

    async def handle(_requests: Any, context: grpc.aio.ServicerContext) -> bytes:
        start = time.perf_counter()
        started = time.monotonic()
        metrics.in_flight += 1
        code = "OK"
        rid = request_id(context)
        _caller.set(None)
        key: str | None = None
        size = 0
        raw: bytes | None = None
        request: message.Message | None = None
        try:
            # Who is calling, before a byte of the body is read.
            identity: Identity | None = None
            if spec.roles is None:
                who = f"address {peer_address(context)}"
            else:
                if auth is None:
                    raise UnauthenticatedError("a client certificate is required: connect to the mutual-TLS port")
                try:
                    identity = auth.identify(context)
                except UnauthenticatedError:
                    gate.refused("UNAUTHENTICATED")
                    raise
                if ANY_ROLE not in spec.roles and identity.role not in spec.roles:
                    gate.refused("PERMISSION_DENIED")
                    raise PermissionDeniedError(
                        f"{identity.principal} may not call this method (needs role {' or '.join(spec.roles)})"
                    )
                who = identity.principal
            gate.enter(who, who)
            key = who
            raw = await gate.read(context, key, started)
            if raw is None:
                raise MalformedRequestError("the call ended without a request message")
            size = len(raw)
            if size > max_bytes:
                raw = None
                gate.refused("REQUEST_TOO_LARGE")
                gate.strike(key)
                raise RequestTooLargeError(
                    f"the request has {size} bytes; {full_name.rsplit('/', 1)[-1]} accepts at most {max_bytes}"
                )
            try:
                if size >= _PARSE_OFF_LOOP and offload is not None:
                    request = await offload.call(request_cls.FromString, raw)
                else:
                    request = request_cls.FromString(raw)
            except (message.DecodeError, RuntimeError, ValueError) as e:
                raise MalformedRequestError(
                    f"the request is not a valid {request_cls.DESCRIPTOR.full_name}"
                ) from e
            raw = None
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
            _caller.set(identity)
            response = await fn(request, context)
            request = None
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
            # The abort's traceback keeps frames alive until the call object is collected:
            # drop what may be large (the body, the parsed request) first.
            raw = request = None
            traceback.clear_frames(exc.__traceback__)
            await context.abort_with_status(status)
            raise AssertionError("unreachable") from None  # abort_with_status always raises
        finally:
            if key is not None:
                gate.leave(key)
            metrics.in_flight -= 1
            elapsed = time.perf_counter() - start
            metrics.observe(full_name, code, elapsed)
            if access.isEnabledFor(logging.DEBUG):
                access.debug("%s %s %.1f ms", full_name, code, elapsed * 1000,
                             extra=_fields(rid, full_name, code, start))
            _TRIM.after(size)

    return handle


def _fields(rid: str, method: str, code: str, start: float) -> dict[str, Any]:
    """The structured fields of a call's log line (see renkei.cli.common.JsonFormatter)."""
    return {"request_id": rid, "method": method, "agency": _caller_label(), "status": code,
            "latency_ms": round((time.perf_counter() - start) * 1000, 3)}


def method_handlers(
    service: descriptor.ServiceDescriptor,
    servicer: object,
    metrics: Metrics,
    gate: PortGate,
    auth: Authenticator | None,
    offload: Offload | None = None,
) -> grpc.GenericRpcHandler:
    """The generic handler of one service on one port, dispatching to ``servicer``'s methods
    (each must be declared with :func:`rpc`; a public method only on the public port, with
    ``auth`` None, and the others only where ``auth`` identifies callers)."""
    handlers = {}
    for method in service.methods:
        fn = getattr(servicer, method.name)
        spec: Rpc | None = getattr(fn, "__renkei_rpc__", None)
        if spec is None:
            raise TypeError(f"{service.full_name}/{method.name} does not declare its callers with @rpc")
        if (spec.roles is None) != (auth is None):
            raise TypeError(f"{service.full_name}/{method.name} is served on the wrong port for its callers")
        request_cls = GetMessageClass(method.input_type)
        full_name = f"/{service.full_name}/{method.name}"
        handlers[method.name] = grpc.stream_unary_rpc_method_handler(
            _wrap(full_name, request_cls, fn, spec, gate, auth, metrics, offload),
            request_deserializer=None,
            response_serializer=None,
        )
    return grpc.method_handlers_generic_handler(service.full_name, handlers)


__all__ = [
    "ANY_ROLE",
    "DEFAULT_MAX_REQUEST",
    "Coalescer",
    "MalformedRequestError",
    "Offload",
    "PortGate",
    "Rpc",
    "caller",
    "caller_agency",
    "method_handlers",
    "peer_address",
    "request_id",
    "rpc",
]
