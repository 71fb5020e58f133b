"""The limits a service process enforces, and where an operator changes them.

Every number here has a default that fits the box on one machine; an operator overrides any of
them in a TOML file passed as ``--limits FILE`` (to ``renkei up`` for every service, or to one
``renkei <service> serve``). The file's tables:

* ``[mtls]`` and ``[public]``: the two ports of every service (:class:`PortLimits`);
* ``[<service>.mtls]`` / ``[<service>.public]``: the same for one service only (core, jlis, nta, ppc);
* ``[core]``: the linkage core's per-agency budgets and retry window (:class:`CoreLimits`);
* ``[nta]``: the corporate registry's readers and query bound (:class:`NtaLimits`).

Unknown tables or keys are refused with their name (a typo must not silently keep a default).
docs/arch/limits.md says what each limit protects and how it was sized.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from renkei.errors import InvalidArgumentError

T = TypeVar("T")
KIB = 1024
MIB = 1024 * KIB
#: The gRPC service processes, each of which may have its own ``[<service>.mtls|public]`` tables.
SERVICES = ("core", "jlis", "nta", "ppc")


@dataclass(frozen=True)
class PortLimits:
    """What one port (one grpc server) admits."""

    #: grpc's own cap on calls in progress on the port (RESOURCE_EXHAUSTED beyond): a backstop.
    max_concurrent_rpcs: int
    #: The largest request grpc accepts on the port, checked on the message's length prefix
    #: before the body is buffered. Each method has its own, smaller limit on top (checked on
    #: the received bytes before they are parsed).
    max_request_bytes: int
    #: HTTP/2 streams one connection may have open (``grpc.max_concurrent_streams``).
    streams_per_connection: int
    #: Calls one caller may have in progress on the port: a certificate's principal on the
    #: mutual-TLS port, an IP address on the public port. Checked before the body is read.
    calls_per_caller: int
    #: Request bodies of one caller being received at once (the rest wait their turn).
    reads_per_caller: int
    #: Request bodies being received at once on the port: with ``max_request_bytes`` this
    #: bounds the memory requests in flight can take.
    concurrent_reads: int
    #: A call's body must have arrived this long after the call began, else DEADLINE_EXCEEDED
    #: (REQUEST_TIMEOUT): an unsent body never holds a slot for longer.
    arrival_seconds: float
    #: A TLS handshake must finish within this (``grpc.server_handshake_timeout_ms``).
    handshake_seconds: float
    #: Connections without calls for this long are closed (0 = never;
    #: ``grpc.max_connection_idle_ms``).
    idle_connection_seconds: float
    #: Connections are closed (after a grace period for their calls) at this age (0 = never;
    #: ``grpc.max_connection_age_ms``).
    connection_age_seconds: float
    #: A caller whose requests were this many times larger than their method accepts within
    #: ``penalty_seconds`` ...
    oversize_strikes: int = 4
    #: ... has its calls refused before their body is read (RATE_LIMITED) for this long.
    penalty_seconds: float = 10.0

    def grpc_options(self) -> list[tuple[str, int]]:
        opts = [
            ("grpc.max_receive_message_length", self.max_request_bytes),
            ("grpc.max_concurrent_streams", self.streams_per_connection),
            ("grpc.server_handshake_timeout_ms", int(self.handshake_seconds * 1000)),
        ]
        if self.idle_connection_seconds:
            opts.append(("grpc.max_connection_idle_ms", int(self.idle_connection_seconds * 1000)))
        if self.connection_age_seconds:
            opts.append(("grpc.max_connection_age_ms", int(self.connection_age_seconds * 1000)))
            opts.append(("grpc.max_connection_age_grace_ms", 30_000))
        return opts


#: Agencies, J-LIS, the commission and operators: few, identified callers with big batches.
MTLS_DEFAULTS = PortLimits(
    max_concurrent_rpcs=4096,
    max_request_bytes=16 * MIB,
    streams_per_connection=1024,
    calls_per_caller=1024,
    reads_per_caller=8,
    concurrent_reads=32,
    arrival_seconds=30.0,
    handshake_seconds=20.0,
    idle_connection_seconds=0,
    connection_age_seconds=0,
)

#: Anyone: small requests (a login, a corporate-number search), many anonymous callers.
PUBLIC_DEFAULTS = PortLimits(
    max_concurrent_rpcs=512,
    max_request_bytes=64 * KIB,
    streams_per_connection=16,
    calls_per_caller=32,
    reads_per_caller=32,
    concurrent_reads=512,
    arrival_seconds=5.0,
    handshake_seconds=10.0,
    idle_connection_seconds=300.0,
    connection_age_seconds=3600.0,
)


@dataclass(frozen=True)
class CoreLimits:
    """The linkage core's per-agency budgets (token buckets: a burst, refilled at a rate)."""

    #: Inquiry items (records) an agency may have decided per second, sustained.
    inquiry_items_per_second: float = 200_000.0
    #: … and at once (the bucket's size; at least one full batch of 100,000).
    inquiry_item_burst: int = 2_000_000
    #: Denied items (records of refused inquiries) an agency may cause per second, sustained.
    denials_per_second: float = 50.0
    #: … and at once. A batch that would deny more than what is left is refused whole.
    denial_burst: int = 20_000
    #: An identical request with the same request id within this many seconds is a retry and
    #: gets the first answer (if its facts still hold); another request with that id is refused.
    request_id_window_seconds: float = 300.0
    #: Threads for the public port's work (disclosure), apart from the agencies' engine threads.
    public_workers: int = 8


@dataclass(frozen=True)
class NtaLimits:
    """The corporate-number registry's read side."""

    #: Read connections (threads) serving look-ups in parallel.
    readers: int = 4
    #: A single look-up that runs longer than this is stopped (QUERY_TOO_COSTLY).
    query_seconds: float = 2.0


@dataclass(frozen=True)
class Limits:
    mtls: PortLimits = MTLS_DEFAULTS
    public: PortLimits = PUBLIC_DEFAULTS
    core: CoreLimits = field(default_factory=CoreLimits)
    nta: NtaLimits = field(default_factory=NtaLimits)

    @classmethod
    def load(cls, path: str | Path | None, service: str) -> Limits:
        """The limits of ``service`` from the TOML file at ``path`` (defaults without one)."""
        if path is None:
            return cls()
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise InvalidArgumentError(f"limits file {path}: {e}") from None
        return cls.from_dict(data, service, str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], service: str, where: str = "limits") -> Limits:
        services = SERVICES
        known = {"mtls", "public", "core", "nta", *services}
        unknown = set(data) - known
        if unknown:
            raise InvalidArgumentError(f"{where}: unknown table(s) {sorted(unknown)}; known: {sorted(known)}")

        def table(value: Any, name: str) -> dict[str, Any]:
            if not isinstance(value, dict):
                raise InvalidArgumentError(f"{where}: [{name}] must be a table")
            return value

        mtls = _override(MTLS_DEFAULTS, table(data.get("mtls", {}), "mtls"), f"{where} [mtls]")
        public = _override(PUBLIC_DEFAULTS, table(data.get("public", {}), "public"), f"{where} [public]")
        for name in services:
            own = table(data.get(name, {}), name)
            extra = set(own) - {"mtls", "public"} - ({f.name for f in dataclasses.fields(CoreLimits)} if name == "core"
                                                     else {f.name for f in dataclasses.fields(NtaLimits)}
                                                     if name == "nta" else set())
            if extra:
                raise InvalidArgumentError(f"{where}: unknown key(s) {sorted(extra)} in [{name}]")
            if name == service:
                mtls = _override(mtls, table(own.get("mtls", {}), f"{name}.mtls"), f"{where} [{name}.mtls]")
                public = _override(public, table(own.get("public", {}), f"{name}.public"), f"{where} [{name}.public]")
        core_keys = {k: v for k, v in table(data.get("core", {}), "core").items() if k not in ("mtls", "public")}
        nta_keys = {k: v for k, v in table(data.get("nta", {}), "nta").items() if k not in ("mtls", "public")}
        return cls(mtls=mtls, public=public, core=_override(CoreLimits(), core_keys, f"{where} [core]"),
                   nta=_override(NtaLimits(), nta_keys, f"{where} [nta]"))

    def describe(self) -> dict[str, float]:
        """Every limit as a flat name → number map (for the metrics endpoint)."""
        out: dict[str, float] = {}
        for prefix, part in (("mtls", self.mtls), ("public", self.public), ("core", self.core), ("nta", self.nta)):
            for f in dataclasses.fields(part):
                out[f"{prefix}.{f.name}"] = float(getattr(part, f.name))
        return out


def _override(base: T, values: dict[str, Any], where: str) -> T:
    fields = {f.name: f for f in dataclasses.fields(base)}  # type: ignore[arg-type]
    changes: dict[str, Any] = {}
    for key, value in values.items():
        if key not in fields:
            raise InvalidArgumentError(f"{where}: unknown key {key!r}; known: {sorted(fields)}")
        current = getattr(base, key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidArgumentError(f"{where}: {key} must be a number")
        if isinstance(current, int) and not isinstance(value, int):
            raise InvalidArgumentError(f"{where}: {key} must be a whole number")
        if value < 0 or (value == 0 and key not in ("idle_connection_seconds", "connection_age_seconds")):
            raise InvalidArgumentError(f"{where}: {key} must be positive")
        changes[key] = type(current)(value)
    return dataclasses.replace(base, **changes)  # type: ignore[type-var]


__all__ = ["KIB", "MIB", "MTLS_DEFAULTS", "PUBLIC_DEFAULTS", "SERVICES", "CoreLimits", "Limits", "NtaLimits",
           "PortLimits"]
