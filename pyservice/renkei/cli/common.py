"""What every command group shares: where the box and each service's data directory are."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


DATA_DIR_HELP = "the service's data directory (default $RENKEI_DATA/<service>, i.e. ./renkei-data/<service>)"
#: Options every command also takes before its group (``renkei --json agency list``): the
#: value given after the command wins.
GLOBAL_OPTIONS = ("data_dir", "json", "target", "ready_file", "pki")


def common_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    common.add_argument("--json", action="store_true", default=None,
                        help="machine-readable output: one JSON object a line")
    return common


def client_parser() -> argparse.ArgumentParser:
    """Where a running service is (see renkei.cli.live): for commands that go through it."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--target", help="the running core's mutual-TLS endpoint HOST:PORT (default: from the ready "
                                    "file renkei up keeps in <box>/run/)")
    p.add_argument("--ready-file", help="the ready file of `renkei up` (or of `renkei core serve`)")
    p.add_argument("--pki", help="the PKI directory with clients/operator/ (default <box>/pki)")
    return p


def add_global_options(p: argparse.ArgumentParser) -> None:
    """The options accepted before the command group too (stored apart, merged by
    :func:`merge_global_options`)."""
    p.add_argument("--data-dir", dest="global_data_dir", metavar="DIR", help=DATA_DIR_HELP)
    p.add_argument("--json", dest="global_json", action="store_true", default=None,
                   help="machine-readable output: one JSON object a line")
    p.add_argument("--target", dest="global_target", metavar="HOST:PORT", help="the running core's endpoint")
    p.add_argument("--ready-file", dest="global_ready_file", metavar="FILE", help="the ready file of `renkei up`")
    p.add_argument("--pki", dest="global_pki", metavar="DIR", help="the PKI directory (default <box>/pki)")


def merge_global_options(args: argparse.Namespace) -> argparse.Namespace:
    for name in GLOBAL_OPTIONS:
        given = getattr(args, f"global_{name}", None)
        if given is not None and getattr(args, name, None) in (None, False):
            setattr(args, name, given)
        if not hasattr(args, name):
            setattr(args, name, None)
    args.json = bool(args.json)
    return args



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
    add_log_arguments(p)


def add_log_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                   help="INFO: start, stop and changes; DEBUG adds one line per call")
    p.add_argument("--log-format", default="text", choices=["text", "json"],
                   help="json: one object a line (time, level, service, message; per call: request_id, method, "
                        "agency, status, latency_ms)")


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


def check_ports_free(host: str, ports: dict[str, int | None]) -> None:
    """Refuse a port another process listens on, before grpc tries (and logs its own lines)."""
    import socket

    from renkei.errors import FailedPreconditionError

    for what, port in ports.items():
        if not port:
            continue
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError as e:
                raise FailedPreconditionError(
                    f"{host}:{port} ({what}) is in use or not available ({e.strerror}); choose another port "
                    f"(0 = any free port) or stop what listens there") from None


def run_service(args: argparse.Namespace, process: ServiceProcess, banner: list[str]) -> int:
    """Serve until SIGTERM/SIGINT; print where, and write the ready file once serving."""
    import asyncio
    import sys

    from renkei.service.server import write_ready_file

    cfg = process.config
    check_ports_free(cfg.host, {f"mutual-TLS port of {cfg.name}": cfg.port,
                                f"public port of {cfg.name}": cfg.public_port})
    check_ports_free(cfg.metrics_host, {f"metrics port of {cfg.name}": cfg.metrics_port})

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


#: The structured fields a log record may carry (renkei.service.runtime sets them per call).
LOG_FIELDS = ("request_id", "method", "agency", "status", "latency_ms")


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, service, logger, message and the
    call fields present. Messages never contain a number or a code (renkei's rule for every
    message); exceptions are reduced to their type and message."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        import json
        from datetime import UTC, datetime

        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "service": self.service, "logger": record.name,
            "message": record.getMessage(),
        }
        for key in LOG_FIELDS:
            if hasattr(record, key):
                out[key] = getattr(record, key)
        if record.exc_info and record.exc_info[1] is not None:
            out["error"] = type(record.exc_info[1]).__name__
        return json.dumps(out, ensure_ascii=False)


def setup_logging(args: argparse.Namespace, service: str = "renkei") -> None:
    handler = logging.StreamHandler()
    if getattr(args, "log_format", "text") == "json":
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, getattr(args, "log_level", "INFO")))
