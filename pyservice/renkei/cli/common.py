"""What every command group shares: where the box and each service's data directory are."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from renkei.datadir import DataDir, box_root

if TYPE_CHECKING:
    from renkei.service.server import ServiceConfig, ServiceProcess

def service_path(args: argparse.Namespace, service: str) -> Path:
    """A service's data directory: ``--data-dir``, else ``<box>/<service>``."""
    given = getattr(args, "data_dir", None)
    return Path(given) if given else box_root() / service


def open_data_dir(args: argparse.Namespace, service: str) -> DataDir:
    """The service's existing data directory (never created here)."""
    return DataDir(service_path(args, service), service)


def common_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir", default=None,
        help="the service's data directory (default $RENKEI_DATA/<service>, i.e. ./renkei-data/<service>)",
    )
    return common




def add_serve_arguments(p: argparse.ArgumentParser, *, port: int | None, public_port: int | None) -> None:
    """The options every ``… serve`` takes."""
    p.add_argument("--host", default="127.0.0.1")
    if port is not None:
        p.add_argument("--port", type=int, default=port, help=f"mutual-TLS port (default {port}; 0 = any free)")
    if public_port is not None:
        flag = "--public-port" if port is not None else "--port"
        p.add_argument(flag, dest="public_port", type=int, default=public_port,
                       help=f"public server-TLS port (default {public_port}; 0 = any free)")
    p.add_argument("--metrics-port", type=int, default=0, help="Prometheus metrics port (0 = any free)")
    p.add_argument("--metrics-host", default="127.0.0.1",
                   help="address the metrics endpoint binds (default loopback only; it is not authenticated)")
    p.add_argument("--limits", help="TOML file of limits overriding the defaults (docs/arch/limits.md)")
    p.add_argument("--grace", type=float, default=10.0, help="seconds in-flight calls get on shutdown")
    p.add_argument("--ready-file", help="write JSON with the pid and bound endpoints here once serving")
    p.add_argument("--tls-cert", help="server certificate (default <data-dir>/tls/server.pem)")
    p.add_argument("--tls-key", help="server key (default <data-dir>/tls/server.key)")
    p.add_argument("--tls-ca", help="CA certificate clients are verified against (default <data-dir>/tls/ca.pem)")
    p.add_argument("--crl", help="the CA's revocation list, re-read when it changes (optional)")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def service_config(args: argparse.Namespace, name: str, data_dir: DataDir) -> ServiceConfig:
    """The ServiceConfig of a ``… serve`` command's arguments."""
    from renkei.pki.ca import ServiceTls
    from renkei.service.limits import Limits
    from renkei.service.server import ServiceConfig, TlsPaths

    tls = ServiceTls(data_dir.tls)
    paths = TlsPaths(
        Path(args.tls_cert) if args.tls_cert else tls.server_cert,
        Path(args.tls_key) if args.tls_key else tls.server_key,
        Path(args.tls_ca) if args.tls_ca else tls.ca,
        Path(args.crl) if args.crl else None,
    )
    return ServiceConfig(
        name=name, tls=paths, host=args.host, port=getattr(args, "port", None),
        public_port=getattr(args, "public_port", None), metrics_port=args.metrics_port,
        metrics_host=args.metrics_host, limits=Limits.load(args.limits, name), grace_seconds=args.grace,
        data_dir=data_dir.path,
    )


def run_service(args: argparse.Namespace, process: ServiceProcess, banner: list[str]) -> int:
    """Serve until SIGTERM/SIGINT; print where, and write the ready file once serving."""
    import asyncio
    import sys

    from renkei.service.server import write_ready_file

    def ready(p: ServiceProcess) -> None:
        info = p.endpoints()
        print(f"renkei {p.config.name} serving {p.config.data_dir} (pid {info['pid']})")
        for label, key in (("mutual TLS", "grpc"), ("public TLS", "public_grpc"), ("metrics", "metrics")):
            if info[key]:
                print(f"  {label:<11} {info[key]}")
        for line in banner:
            print(f"  {line}")
        sys.stdout.flush()
        if args.ready_file:
            write_ready_file(args.ready_file, info)

    asyncio.run(process.serve(ready))
    print(f"renkei {process.config.name} stopped", flush=True)
    return 0


def setup_logging(args: argparse.Namespace) -> None:
    import logging

    logging.basicConfig(level=getattr(logging, getattr(args, "log_level", "INFO")),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
