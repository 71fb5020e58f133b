"""How a ``renkei`` command reaches a running service, or knows that it is down.

Administration goes through the running services when they are up: the command is then a gRPC
client with a principal's certificate from the PKI directory (``operator`` for AdminService,
``oversight`` for OversightService). Only when the service is down do commands read (read-only:
no lock, nothing created) or change its files directly.

Where the running core is, first match wins:

1. ``--target HOST:PORT`` (its mutual-TLS port);
2. ``--ready-file FILE``: the ready file of ``renkei up`` (``{"services": …, "pki": …}``) or of
   a single ``renkei core serve --ready-file``;
3. ``<box>/run/core.json``, the ready file ``renkei up`` keeps next to the data directory
   (``<box>/core``), when the process it names is alive and serves that directory.

J-LIS (``number assign|change``, as ``jlis``) is found the same way (``run/jlis.json``).

The certificates come from ``--pki`` (default ``<box>/pki``, or the ready file's).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc

from renkei import errors
from renkei.cli.common import service_path

T = TypeVar("T")
TIMEOUT = 30.0

_BY_CODE: dict[grpc.StatusCode, type[errors.RenkeiError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: errors.InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: errors.NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: errors.AlreadyExistsError,
    grpc.StatusCode.FAILED_PRECONDITION: errors.FailedPreconditionError,
    grpc.StatusCode.PERMISSION_DENIED: errors.PermissionDeniedError,
    grpc.StatusCode.UNAUTHENTICATED: errors.UnauthenticatedError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: errors.ResourceExhaustedError,
    grpc.StatusCode.UNAVAILABLE: errors.UnavailableError,
    grpc.StatusCode.DATA_LOSS: errors.StorageError,
}


def alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise errors.NotFoundError(f"ready file {path} does not exist; pass the file `renkei up --ready-file` "
                                   f"wrote, or --target HOST:PORT") from None
    except (OSError, ValueError) as e:
        raise errors.InvalidArgumentError(f"ready file {path} is not JSON ({e}); pass the file "
                                          f"`renkei up --ready-file` wrote") from None
    if not isinstance(data, dict):
        raise errors.InvalidArgumentError(f"ready file {path} is not a renkei ready file")
    return data


@dataclass(frozen=True)
class Live:
    """A running service: where it listens and where the client certificates are."""

    service: str
    target: str
    pki: Path
    pid: int | None = None

    def __str__(self) -> str:
        return f"the running {self.service} at {self.target}" + (f" (pid {self.pid})" if self.pid else "")

    def channel(self, principal: str) -> grpc.Channel:
        from renkei.client import principal_channel

        return principal_channel(principal, self.target, pki=self.pki)

    def call(self, principal: str, stub_of: Callable[[grpc.Channel], Any], method: str, request: Any) -> Any:
        """One unary call as ``principal``; a refusal becomes the matching RenkeiError."""
        with self.channel(principal) as ch:
            try:
                return getattr(stub_of(ch), method)(request, timeout=TIMEOUT)
            except grpc.RpcError as e:
                raise rpc_error(e, self) from None


def rpc_error(e: grpc.RpcError, live: Live | None = None) -> errors.RenkeiError:
    code = e.code()
    details = (e.details() or code.name).replace("\n", " ")
    where = str(live) if live is not None else "the service"
    if code is grpc.StatusCode.UNAVAILABLE and live is not None and "UNAVAILABLE" not in details[:20]:
        return errors.UnavailableError(
            f"{where} does not answer ({details}); check that it runs (`renkei up`), or pass --target HOST:PORT")
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return errors.UnavailableError(f"{where} did not answer within {TIMEOUT:.0f} s; check its log")
    cls = _BY_CODE.get(code, errors.RenkeiError)
    return cls(details)


def _from_ready(info: dict[str, Any], service: str, path: Path) -> Live:
    if "services" in info:  # renkei up's box file
        s = info["services"].get(service) or {}
        pki = Path(info.get("pki") or path.parent / "pki")
    else:  # one service's own ready file
        s, pki = info, path.parent.parent / "pki"
    target = s.get("grpc")
    if not target:
        raise errors.InvalidArgumentError(f"ready file {path} names no mutual-TLS endpoint of the {service}")
    return Live(service, str(target), pki, s.get("pid") if isinstance(s.get("pid"), int) else None)


def running(args: argparse.Namespace, service: str = "core") -> Live | None:
    """The running ``service``, or None when it is down (see the module docstring)."""
    data_dir = service_path(args, service)
    pki_arg = getattr(args, "pki", None)
    default_pki = Path(pki_arg) if pki_arg else data_dir.parent / "pki"
    target = getattr(args, "target", None)
    if target:
        return Live(service, str(target), default_pki)
    ready = getattr(args, "ready_file", None)
    if ready:
        live = _from_ready(_read_json(Path(ready)), service, Path(ready))
        return Live(live.service, live.target, Path(pki_arg) if pki_arg else live.pki, live.pid)
    path = data_dir.parent / "run" / f"{service}.json"
    if not path.is_file():
        return None
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # a ready file being replaced or left damaged by a crash: not a running service
    if not isinstance(info, dict) or not alive(info.get("pid")):
        return None
    served = info.get("data_dir")
    if served and Path(served).resolve() != data_dir.resolve():
        return None
    if not info.get("grpc"):
        return None
    return Live(service, str(info["grpc"]), default_pki, int(info["pid"]))


def ensure_down(args: argparse.Namespace, what: str) -> None:
    """Refuse to change the core's files directly while a core process holds them (its
    holdings lock) but could not be found: the change would not reach the running process."""
    holdings = service_path(args, "core") / "holdings"
    if not (holdings / "LOCK").exists():
        return
    from renkei._core.fs import DirLock

    try:
        DirLock(holdings).release()
    except errors.StorageError:
        raise errors.FailedPreconditionError(
            f"the core serving {holdings.parent} is running but its endpoint is unknown, so {what} would not "
            f"reach it; pass --target HOST:PORT or --ready-file FILE (renkei up's), or stop the core") from None


def need_down(args: argparse.Namespace, what: str) -> None:
    """For commands that work on the core's files only (the holdings): refuse while it runs."""
    live = running(args)
    if live is not None:
        raise errors.FailedPreconditionError(
            f"{what} reads the core's holdings directly and {live} holds them; stop the core first "
            f"(Ctrl-C on `renkei up`)")
    ensure_down(args, what)


__all__ = ["Live", "ensure_down", "need_down", "rpc_error", "running"]
