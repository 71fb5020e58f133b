"""The renkei gRPC server (grpc.aio): two ports, one set of services.

* the **mutual-TLS port** (default 50051) verifies client certificates of the development CA
  during the handshake; agencies, J-LIS, the commission and operators call here;
* the **public port** (default 50052) is server-only TLS: the public corporate-number look-ups
  (and, when wired, the person's own disclosure, which logs in with a card-key signature).

Both ports serve the same services; a method that needs a caller identity answers
UNAUTHENTICATED on the public port because no certificate was presented there. Health checking
(``grpc.health.v1.Health``) and reflection are on, and per-method metrics are served in the
Prometheus text format on a local HTTP port.

On SIGTERM/SIGINT :meth:`RenkeiServer.serve` marks every service NOT_SERVING, stops taking new
calls, lets in-flight calls finish (``grace`` seconds), then runs the shutdown hooks (the
ledger's flush) and closes the engines.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from renkei._proto.renkei.v1 import (
    admin_service_pb2,
    corporate_number_service_pb2,
    disclosure_service_pb2,
    linkage_service_pb2,
    number_service_pb2,
    oversight_service_pb2,
)
from renkei.datadir import DataDir
from renkei.jlis.authority import NumberAuthority
from renkei.nta.registry import CorporateNumberRegistry
from renkei.pki.ca import DevelopmentCA
from renkei.service.auth import Authenticator
from renkei.service.core.admin import AdminServicer
from renkei.service.core.disclosure import DisclosureServicer
from renkei.service.core.linkage import LinkageServicer
from renkei.service.core.oversight import OversightServicer
from renkei.service.engines import (
    AgencyRegistry,
    DisclosureEngine,
    LinkageEngine,
    OversightEngine,
    PermissionTables,
)
from renkei.service.jlis.numbers import NumberServicer
from renkei.service.metrics import Metrics, MetricsHTTPServer
from renkei.service.nta.corporate import CorporateNumberServicer
from renkei.service.runtime import Offload, method_handlers

log = logging.getLogger("renkei.service")

# Large enough for the biggest documented batch (100,000 × 16-byte codes) with room to spare.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


@dataclass
class ServerConfig:
    data_dir: DataDir
    host: str = "127.0.0.1"
    port: int = 50051
    public_port: int = 50052
    metrics_port: int = 9464
    #: Beyond this many concurrent calls grpc answers RESOURCE_EXHAUSTED (back-pressure).
    max_concurrent_rpcs: int = 1000
    grace_seconds: float = 10.0
    #: Threads for engine calls (the Rust engine releases the GIL, so these run in parallel).
    #: An inquiry spends most of its time waiting, GIL released, for the ledger's group commit
    #: (one syncfs per commit); the more calls wait together, the more records share a commit,
    #: so there are many more threads than CPUs.
    engine_workers: int = 64
    extra_options: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class Service:
    """A servicer with its descriptor, registered on the server."""

    descriptor: object
    servicer: object


class RenkeiServer:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.ca = DevelopmentCA(config.data_dir)
        self.auth = Authenticator(self.ca)
        self.metrics = Metrics()
        self.offload = Offload(config.engine_workers, "engine")
        self.services: list[Service] = []
        self._shutdown_hooks: list[Callable[[], None]] = []
        self._closers: list[Callable[[], None]] = []
        self._server: grpc.aio.Server | None = None
        self._health: health.aio.HealthServicer | None = None
        self._metrics_http: MetricsHTTPServer | None = None
        self.bound_port = 0
        self.bound_public_port = 0
        # The engines, when wired by build_server.
        self.core: Any = None
        self.linkage: Any = None
        self.ledger: Any = None

    # -- wiring -------------------------------------------------------------------------------

    def add_service(self, descriptor: object, servicer: object) -> None:
        """Register a servicer for a service descriptor (before :meth:`start`)."""
        self.services.append(Service(descriptor, servicer))
        close = getattr(servicer, "close", None)
        if close is not None:
            self._closers.append(close)

    def add_shutdown_hook(self, hook: Callable[[], None]) -> None:
        """Called (on a worker thread) after in-flight calls finished, e.g. the ledger's flush."""
        self._shutdown_hooks.append(hook)

    def add_number_authority(self, authority: NumberAuthority) -> None:
        self.add_service(
            number_service_pb2.DESCRIPTOR.services_by_name["NumberService"],
            NumberServicer(authority, self.auth),
        )
        self._closers.append(authority.close)

    def add_corporate_registry(self, registry: CorporateNumberRegistry) -> None:
        self.add_service(
            corporate_number_service_pb2.DESCRIPTOR.services_by_name["CorporateNumberService"],
            CorporateNumberServicer(registry),
        )
        self._closers.append(registry.close)

    def add_linkage(self, engine: LinkageEngine) -> None:
        self.add_service(
            linkage_service_pb2.DESCRIPTOR.services_by_name["LinkageService"],
            LinkageServicer(engine, self.auth, self.offload),
        )

    def add_oversight(self, engine: OversightEngine) -> None:
        self.add_service(
            oversight_service_pb2.DESCRIPTOR.services_by_name["OversightService"],
            OversightServicer(engine, self.auth, self.offload),
        )

    def add_admin(self, agencies: AgencyRegistry, tables: PermissionTables) -> None:
        self.add_service(
            admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"],
            AdminServicer(agencies, tables, self.ca, self.auth, self.offload),
        )

    def add_disclosure(self, engine: DisclosureEngine) -> None:
        self.add_service(
            disclosure_service_pb2.DESCRIPTOR.services_by_name["DisclosureService"],
            DisclosureServicer(engine, self.offload),
        )

    # -- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        cfg = self.config
        options = [
            ("grpc.so_reuseport", 0),  # a second server on the same port must fail, not steal calls
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.keepalive_permit_without_calls", 1),
            *cfg.extra_options,
        ]
        server = grpc.aio.server(options=options, maximum_concurrent_rpcs=cfg.max_concurrent_rpcs)
        names = []
        for svc in self.services:
            server.add_generic_rpc_handlers([method_handlers(svc.descriptor, svc.servicer, self.metrics)])  # type: ignore[arg-type]
            names.append(svc.descriptor.full_name)  # type: ignore[attr-defined]
        self._health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
        key, chain = self.ca.server_key_path.read_bytes(), self.ca.server_cert_path.read_bytes()
        ca_pem = self.ca.ca_cert_path.read_bytes()
        mtls = grpc.ssl_server_credentials([(key, chain)], root_certificates=ca_pem, require_client_auth=True)
        public = grpc.ssl_server_credentials([(key, chain)])
        self.bound_port = server.add_secure_port(f"{cfg.host}:{cfg.port}", mtls)
        self.bound_public_port = server.add_secure_port(f"{cfg.host}:{cfg.public_port}", public)
        if not self.bound_port or not self.bound_public_port:
            raise OSError(f"cannot bind {cfg.host}:{cfg.port} / {cfg.public_port}")
        await server.start()
        self._server = server
        for name in ["", *names]:
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self._metrics_http = MetricsHTTPServer(self.metrics, cfg.host, cfg.metrics_port)
        self._metrics_http.start()

    async def stop(self) -> None:
        """Graceful stop: NOT_SERVING, finish in-flight calls, flush, close."""
        if self._server is None:
            return
        if self._health is not None:
            await self._health.enter_graceful_shutdown()
        await self._server.stop(self.config.grace_seconds)
        loop = asyncio.get_running_loop()
        for hook in self._shutdown_hooks:
            await loop.run_in_executor(None, hook)
        for close in self._closers:
            close()
        self.offload.shutdown()
        if self._metrics_http is not None:
            self._metrics_http.stop()
        self._server = None

    async def serve(self, ready: Callable[[RenkeiServer], None] | None = None) -> None:
        """Start, then run until SIGTERM or SIGINT, then stop gracefully."""
        await self.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if ready is not None:
            ready(self)
        await stop.wait()
        log.info("shutting down (pid %d)", os.getpid())
        await self.stop()

    @property
    def metrics_port(self) -> int:
        return self._metrics_http.port if self._metrics_http else 0


def build_server(config: ServerConfig) -> RenkeiServer:
    """The server with every service on the engines of ``config.data_dir``: J-LIS, corporate
    numbers, the linkage core (codes, permission tables, permits, the provision ledger),
    oversight, administration and disclosure. The shutdown hook (after in-flight calls have
    finished) checkpoints the holdings and closes the ledger; the next start reopens both."""
    from renkei.ledger import Ledger
    from renkei.linkage.registry import Core
    from renkei.linkage.services import Disclosure, Linkage, Oversight, Registry
    from renkei.permissions.tables import PermissionTables as Tables
    from renkei.permits import PermitIssuer

    server = RenkeiServer(config)
    jlis = NumberAuthority(config.data_dir)
    server.add_number_authority(jlis)
    server.add_corporate_registry(CorporateNumberRegistry(config.data_dir))
    core = Core(config.data_dir, jlis=NumberAuthority(config.data_dir))
    tables = Tables.open(config.data_dir)
    ledger = Ledger(config.data_dir)
    linkage = Linkage(core, tables.engine, PermitIssuer.from_datadir(config.data_dir), ledger)
    server.core, server.linkage, server.ledger = core, linkage, ledger
    server.add_linkage(linkage)
    server.add_oversight(Oversight(ledger))
    server.add_admin(Registry(core, linkage), tables)
    server.add_disclosure(Disclosure(jlis, ledger, config.data_dir))

    def close_engines() -> None:
        ledger.close()
        core.checkpoint()
        core.close()

    server.add_shutdown_hook(close_engines)
    return server


__all__ = ["MAX_MESSAGE_BYTES", "RenkeiServer", "ServerConfig", "build_server"]
