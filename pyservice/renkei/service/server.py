"""One renkei service process (J-LIS, NTA, the core, …) serving gRPC (grpc.aio).

A process has up to two ports, each its own grpc server with its own concurrency limit:

* the **mutual-TLS port** verifies client certificates against the CA during the handshake;
  agencies, J-LIS, the commission and operators call here;
* the **public port** is server-only TLS, for what anyone may call (corporate numbers, a
  person's own disclosure with a card-key login).

Each port has its own limits (:mod:`renkei.service.limits`): grpc's message size and stream
caps, and the per-caller, read and arrival gates of :mod:`renkei.service.runtime`, so the
public port can never use up what agencies need. Each port serves only its own services, and
reflection lists only those. Health checking
(``grpc.health.v1.Health``) is on both ports; per-method metrics are served in the Prometheus
text format on a local HTTP port. TLS material comes from the service's ``tls/`` folder (see
:class:`renkei.pki.ca.ServiceTls`) or from operator-given paths.

On SIGTERM/SIGINT :meth:`ServiceProcess.serve` marks every service NOT_SERVING, stops taking new
calls, lets in-flight calls finish (``grace`` seconds), then runs the shutdown hooks (the
ledger's flush, the holdings checkpoint) and closes the engines.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from renkei.datadir import write_atomic
from renkei.errors import FailedPreconditionError
from renkei.pki.ca import ServiceTls
from renkei.service.auth import Authenticator
from renkei.service.limits import Limits
from renkei.service.metrics import Metrics, MetricsHTTPServer
from renkei.service.runtime import Offload, PortGate, method_handlers

log = logging.getLogger("renkei.service")

# Large enough for the biggest documented batch (100,000 × 16-byte codes) with room to spare:
# the mutual-TLS port's default limit (limits.MTLS_DEFAULTS.max_request_bytes).
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
# Responses are never larger than the biggest request's answer.
MAX_RESPONSE_BYTES = 16 * 1024 * 1024

MTLS = "mtls"
PUBLIC = "public"


@dataclass
class TlsPaths:
    """The certificate, key and CA a process serves with; the CRL it checks clients against."""

    cert: Path
    key: Path
    ca: Path
    crl: Path | None = None

    @classmethod
    def of(cls, tls: ServiceTls, crl: Path | None = None) -> TlsPaths:
        return cls(tls.server_cert, tls.server_key, tls.ca, crl)

    def check(self) -> None:
        for what, path in (("certificate", self.cert), ("key", self.key), ("CA certificate", self.ca)):
            if not path.exists():
                raise FailedPreconditionError(
                    f"TLS {what} {path} is missing: issue it with `renkei pki issue` or pass its path"
                )


@dataclass
class ServiceConfig:
    name: str
    tls: TlsPaths
    host: str = "127.0.0.1"
    #: Mutual-TLS port (None: not served); 0 = any free port.
    port: int | None = 50051
    #: Public server-TLS port (None: not served); 0 = any free port.
    public_port: int | None = None
    #: Prometheus metrics HTTP port on ``metrics_host`` (None: none); 0 = any free port.
    metrics_port: int | None = 0
    metrics_host: str = "127.0.0.1"
    #: Every limit of both ports and of the service (``--limits FILE``).
    limits: Limits = field(default_factory=Limits)
    grace_seconds: float = 10.0
    #: Threads for engine calls (the Rust engine releases the GIL, so these run in parallel).
    #: An inquiry spends most of its time waiting, GIL released, for the ledger's group commit;
    #: the more calls wait together, the more records share a commit, so there are many more
    #: threads than CPUs.
    engine_workers: int = 64
    data_dir: Path | None = None
    extra_options: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class Service:
    """A servicer with its descriptor, and the port it is served on."""

    descriptor: Any
    servicer: object
    port: str


Hook = Callable[[], None] | Callable[[], Awaitable[None]]


#: The shortest interval between a client's keepalive pings the servers accept (below the
#: intermediate servers' KEEPALIVE_MS; measured: with grpc's default, 5 minutes, every attendance
#: stream was cut by GOAWAY too_many_pings about 140 s after it opened).
MIN_PING_INTERVAL_MS = 10_000


class ServiceProcess:
    def __init__(self, config: ServiceConfig) -> None:
        config.tls.check()
        self.config = config
        self.auth = Authenticator(config.tls.crl)
        self.metrics = Metrics()
        self.offload = Offload(config.engine_workers, "engine")
        #: Work for the public port runs here, never on the agencies' engine threads.
        self.public_offload = Offload(config.limits.core.public_workers, "public")
        self.gates = {MTLS: PortGate(MTLS, config.limits.mtls, self.metrics),
                      PUBLIC: PortGate(PUBLIC, config.limits.public, self.metrics)}
        limit = self.metrics.labeled_gauge("renkei_limit", "The limits this process enforces (docs/arch/limits.md).",
                                           ("name",))
        for name, value in config.limits.describe().items():
            limit.set((name,), value)
        self.services: list[Service] = []
        self._shutdown_hooks: list[Hook] = []
        self._closers: list[Hook] = []
        self._background: list[Callable[[], Coroutine[Any, Any, None]]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._servers: dict[str, grpc.aio.Server] = {}
        self._health: dict[str, health.aio.HealthServicer] = {}
        self._metrics_http: MetricsHTTPServer | None = None
        self.bound: dict[str, int] = {}

    # -- wiring -------------------------------------------------------------------------------

    def add_service(self, descriptor: Any, servicer: object, port: str = MTLS) -> None:
        """Serve ``servicer`` for ``descriptor`` on the mTLS or the public port (before :meth:`start`)."""
        self.services.append(Service(descriptor, servicer, port))
        close = getattr(servicer, "close", None)
        if close is not None:
            self._closers.append(close)

    def add_shutdown_hook(self, hook: Hook) -> None:
        """Called after in-flight calls finished (a plain function runs on a worker thread)."""
        self._shutdown_hooks.append(hook)

    def add_closer(self, close: Hook) -> None:
        self._closers.append(close)

    def add_background(self, run: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """A task started once the ports serve and cancelled when the calls have finished."""
        self._background.append(run)

    # -- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        cfg = self.config
        common = [
            ("grpc.so_reuseport", 0),  # a second server on the same port must fail, not steal calls
            ("grpc.max_send_message_length", MAX_RESPONSE_BYTES),
            ("grpc.keepalive_permit_without_calls", 1),
            # Intermediate servers keep their attendance streams alive with a ping every 20 s; the
            # default floor (5 min) answered those with GOAWAY too_many_pings and broke the streams.
            ("grpc.http2.min_ping_interval_without_data_ms", MIN_PING_INTERVAL_MS),
            # Without BDP probing a stream's flow-control window stays small until its handler
            # reads: a body nobody has asked for yet is not buffered (measured: 16 held 16 MB
            # bodies took 260 MB with probing, nothing without).
            ("grpc.http2.bdp_probe", 0),
        ]
        key, chain, ca = cfg.tls.key.read_bytes(), cfg.tls.cert.read_bytes(), cfg.tls.ca.read_bytes()
        ports = {MTLS: cfg.port, PUBLIC: cfg.public_port}
        for kind, number in ports.items():
            if number is None:
                continue
            services = [s for s in self.services if s.port == kind]
            limits = cfg.limits.mtls if kind == MTLS else cfg.limits.public
            options = [*common, *limits.grpc_options(), *cfg.extra_options]
            server = grpc.aio.server(options=options, maximum_concurrent_rpcs=limits.max_concurrent_rpcs)
            names = []
            auth = self.auth if kind == MTLS else None
            offload = self.offload if kind == MTLS else self.public_offload
            for svc in services:
                server.add_generic_rpc_handlers(
                    [method_handlers(svc.descriptor, svc.servicer, self.metrics, self.gates[kind], auth, offload)]
                )
                names.append(svc.descriptor.full_name)
            hs = health.aio.HealthServicer()
            health_pb2_grpc.add_HealthServicer_to_server(hs, server)
            reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
            creds = (grpc.ssl_server_credentials([(key, chain)], root_certificates=ca, require_client_auth=True)
                     if kind == MTLS else grpc.ssl_server_credentials([(key, chain)]))
            try:
                bound = server.add_secure_port(f"{cfg.host}:{number}", creds)
            except RuntimeError:
                bound = 0
            if not bound:
                await self._stop_servers(0)
                raise FailedPreconditionError(
                    f"cannot listen on {cfg.host}:{number} ({kind} port of {cfg.name}): is it in use? "
                    f"Choose another port (0 = any free port)"
                )
            await server.start()
            self._servers[kind], self._health[kind], self.bound[kind] = server, hs, bound
            for name in ["", *names]:
                await hs.set(name, health_pb2.HealthCheckResponse.SERVING)
        if cfg.metrics_port is not None:
            self._metrics_http = MetricsHTTPServer(self.metrics, cfg.metrics_host, cfg.metrics_port)
            self._metrics_http.start()
        self._tasks = [asyncio.create_task(run()) for run in self._background]

    async def _stop_servers(self, grace: float) -> None:
        for hs in self._health.values():
            await hs.enter_graceful_shutdown()
        await asyncio.gather(*(s.stop(grace) for s in self._servers.values()))
        self._servers.clear()

    async def stop(self) -> None:
        """Graceful stop: NOT_SERVING, finish in-flight calls, flush, close."""
        if not self._servers:
            return
        await self._stop_servers(self.config.grace_seconds)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        loop = asyncio.get_running_loop()
        for hook in [*self._shutdown_hooks, *self._closers]:
            if inspect.iscoroutinefunction(hook):
                await hook()
            else:
                await loop.run_in_executor(None, hook)
        self.offload.shutdown()
        self.public_offload.shutdown()
        if self._metrics_http is not None:
            self._metrics_http.stop()

    async def serve(self, ready: Callable[[ServiceProcess], None] | None = None) -> None:
        """Start, then run until SIGTERM or SIGINT, then stop gracefully."""
        await self.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if ready is not None:
            ready(self)
        await stop.wait()
        log.info("%s shutting down (pid %d)", self.config.name, os.getpid())
        await self.stop()

    @property
    def metrics_port(self) -> int:
        return self._metrics_http.port if self._metrics_http else 0

    def endpoints(self) -> dict[str, Any]:
        """What the ready file says: pid, data dir and each bound endpoint (host:port or None)."""
        host = self.config.host

        def at(port: int | None) -> str | None:
            return None if not port else f"{host}:{port}"

        return {
            "pid": os.getpid(),
            "data_dir": str(self.config.data_dir.resolve()) if self.config.data_dir else None,
            "grpc": at(self.bound.get(MTLS)),
            "public_grpc": at(self.bound.get(PUBLIC)),
            "http": None,
            "metrics": None if not self.metrics_port else f"{self.config.metrics_host}:{self.metrics_port}",
        }


def write_ready_file(path: str | os.PathLike[str], info: dict[str, Any]) -> None:
    """The ready file (JSON), written atomically once serving."""
    write_atomic(Path(path), json.dumps(info, ensure_ascii=False).encode(), 0o600)


__all__ = [
    "MAX_MESSAGE_BYTES",
    "MAX_RESPONSE_BYTES",
    "MTLS",
    "PUBLIC",
    "ServiceConfig",
    "ServiceProcess",
    "TlsPaths",
    "write_ready_file",
]
