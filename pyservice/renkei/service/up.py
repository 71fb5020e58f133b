"""``renkei up``: the whole country in a box — every service as its own OS process.

Under one directory (default ./renkei-data)::

    pki/      the development CA (its key never leaves this folder)
    mid-*/    intermediate servers (demo: mid-municipal, mid-national), each hosting agencies
    core/     the linkage core's data directory (its own keys, tls/, registry, holdings, ledger)
    jlis/     J-LIS's data directory (its own keys, tls/ with a client certificate for the core)
    nta/      the NTA's data directory
    witness/  the commission's C2SP witness (its key, its state)
    ppc/      the commission's PIA review (its decision log; delivers decisions to the core)
    jpki/     J-LIS's JPKI (公的個人認証): both CAs, the registry, CRLs; its responder serves HTTP
    cards/    (demo) software-token cards of the demo holders
    portal/   マイナポータル: the pinned JPKI CA and ledger key, agency names, (demo) its agency
              certificate (agency 7, あなたの情報) (HTTP on base + 7, metrics on 9475)
    run/      each service's ready file while the box runs

A fresh directory is initialised first (each service's ``init``, certificates from the CA).
Services start in dependency order (the witness, trusted for the core's ledger; the core,
pointed at the witness; the commission's PIA review, which delivers its decisions to the core
before it reports ready; J-LIS, which calls the core; then NTA), each
health-checked through its ready file; Ctrl-C / SIGTERM stops them together, in reverse order,
letting in-flight calls finish. A service that dies is reported and not restarted; the others
keep serving (inquiries go on without J-LIS; acquisitions then fail with UNAVAILABLE).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from renkei.datadir import MARKER, DataDir, make_private_dir, write_atomic
from renkei.errors import FailedPreconditionError, InvalidArgumentError
from renkei.pki.ca import DevelopmentCA
from renkei.portal.config import AGENCY_CLIENT

START_TIMEOUT = 120.0
#: The key name of the box's witness (the commission's, 個人情報保護委員会).
WITNESS_NAME = "ppc.renkei.example/witness"
STOP_TIMEOUT = 30.0


@dataclass
class Member:
    """One service of the box."""

    name: str
    data_dir: Path
    args: list[str]
    proc: subprocess.Popen[bytes] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def ready_file(self) -> Path:
        return self.data_dir.parent / "run" / f"{self.name}.json"


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _pump(name: str, stream: Any, out: TextIO) -> None:
    """Copy a child's output line by line, prefixed with its name (JSON log lines, which name
    their service, unchanged)."""
    for raw in iter(stream.readline, b""):
        line = raw.decode(errors="replace")
        out.write(line if line.startswith("{") else f"[{name}] {line}")
        out.flush()


def prepare(root: Path, *, demo: bool, core_store: str | None = None) -> DevelopmentCA:
    """Initialise what is missing: the CA, each service's data directory and TLS material, and
    (demo) the client certificates of the demo principals and agencies. ``core_store`` (a
    PostgreSQL URL) binds a new core data directory to that store (docs/arch/store.md)."""
    from renkei.jlis.authority import NumberAuthority
    from renkei.jpki.ca import Jpki
    from renkei.ledger import ledger_vkey
    from renkei.linkage.commission import bind, bound_vkey
    from renkei.nta.registry import CorporateNumberRegistry
    from renkei.ppc.review import LOG_DIR, LOG_KEY
    from renkei.ppc.review import init_data_dir as init_ppc
    from renkei.service.core import init_data_dir
    from renkei.service.nta import seed_demo
    from renkei.service.witness import init_data_dir as init_witness
    from renkei.store import require_store

    make_private_dir(root)
    make_private_dir(root / "run")
    ca = DevelopmentCA.init(root / "pki")
    # The commission's PIA review first: the core is bound to its decision log at init.
    ppc_dir = DataDir(root / "ppc", "ppc") if (root / "ppc" / MARKER).exists() else init_ppc(root / "ppc")
    _log, commission_vkey = ledger_vkey(ppc_dir, key_name=LOG_KEY, subdir=LOG_DIR)
    if not (root / "core" / MARKER).exists():
        init_data_dir(root / "core", demo=demo, commission_vkey=commission_vkey, store=core_store)
    else:
        require_store(DataDir(root / "core", "core"), core_store)
        if bound_vkey(DataDir(root / "core", "core")) is None:
            bind(DataDir(root / "core", "core"), commission_vkey)  # a box from before the commission's review
    if demo:
        from renkei.service.demo import install_self_disclosure

        # マイナポータル as agency 7 and its 自己情報表示 table version, installed and active.
        install_self_disclosure(DataDir(root / "core", "core"))
    # Always: init completes an older J-LIS directory with the keys added since (never replaces one).
    NumberAuthority.init(root / "jlis").close()
    if not (root / "witness" / MARKER).exists():
        init_witness(root / "witness", WITNESS_NAME)
    if not (root / "jpki" / MARKER).exists():
        Jpki.init(root / "jpki").close()
    if not (root / "nta" / MARKER).exists():
        with CorporateNumberRegistry.init(root / "nta") as nta:
            if demo:
                seed_demo(nta)
    for service, client_role in (("core", None), ("jlis", "jlis"), ("nta", None), ("ppc", "commission")):
        if not (root / service / "tls" / "server.pem").exists():
            ca.issue_service(service, root / service, client_role=client_role)
    if demo:
        from renkei.mid.platform import Platform
        from renkei.service.demo import DEMO_AGENCIES, DEMO_MIDS, PORTAL_AGENCY, SYSTEM_PRINCIPALS, demo_tenants

        have = {c.principal for c in ca.issued() if c.certificate.parent.parent == ca.clients_dir}
        for role, name in SYSTEM_PRINCIPALS:
            if role not in have:
                ca.issue_client_certificate(role, name)
        for agency_id, name, *_ in DEMO_AGENCIES:
            if f"agency-{agency_id}" not in have:
                ca.issue_agency_certificate(agency_id, name)
            if f"business-{agency_id}" not in have and agency_id != PORTAL_AGENCY:
                ca.issue_client_certificate("business", f"{name} 業務システム", agency_id)
        for mid_name, agencies in DEMO_MIDS:
            folder = root / f"mid-{mid_name}"
            if not (folder / MARKER).exists():
                tenants = demo_tenants(agencies)
                data_dir = Platform.init(folder, tenants)
                for t in tenants:
                    ca.export_client(t.principal, data_dir.path / "tenants" / t.principal)
            if not (folder / "tls" / "server.pem").exists():
                ca.issue_service(f"mid-{mid_name}", folder)
        from renkei.jlis.demo import seed_demo as seed_jlis_demo
        from renkei.service.demo import seed_demo_pias

        seed_jlis_demo(root / "jlis", root / "jpki", root / "cards")
        seed_demo_pias(root / "ppc")
    from renkei.portal.config import MID_CLIENT, SIGN_CA_FILE

    if not (root / "portal" / MARKER).exists() or not (root / "portal" / SIGN_CA_FILE).exists():
        from renkei.portal.config import init_data_dir as init_portal
        from renkei.service.demo import DEMO_AGENCIES

        with Jpki(root / "jpki") as jpki_ca:
            auth_ca, sign_ca = jpki_ca.ca_pem("auth"), jpki_ca.ca_pem("sign")
        # Also completes a portal directory from before ワンストップ申請 with the 署名用 CA.
        init_portal(root / "portal", auth_ca_pem=auth_ca, sign_ca_pem=sign_ca,
                    ledger_vkey=ledger_vkey(DataDir(root / "core", "core"))[1],
                    agencies={a: name for a, name, _t, _c, _k in DEMO_AGENCIES} if demo else {})
    if demo:
        from renkei.portal.config import add_agencies
        from renkei.service.demo import DEMO_AGENCIES, PORTAL_AGENCY

        add_agencies(root / "portal", {a: (name, types) for a, name, types, _c, _k in DEMO_AGENCIES})
        if not (root / "portal" / AGENCY_CLIENT / "cert.pem").exists():
            # マイナポータル's own agency certificate (agency 7): it inquires for あなたの情報.
            ca.export_client(f"agency-{PORTAL_AGENCY}", root / "portal" / AGENCY_CLIENT)
    if demo and not (root / "portal" / MID_CLIENT / "cert.pem").exists():
        # The portal's client certificate toward the municipalities' intermediate servers (role
        # portal), exported into its directory as the tenants' are into theirs.
        if "portal" not in {c.principal for c in ca.issued()}:
            ca.issue_client_certificate("portal", "マイナポータル")
        ca.export_client("portal", root / "portal" / MID_CLIENT)
    return ca


def members(root: Path, *, host: str, base_port: int, demo: bool, log: list[str] | None = None,
            limits: str | None = None, core_frontends: int = 1) -> list[Member]:
    """The services in start order, with their command lines (``log``: log options for every
    service; ``limits``: a TOML file of limits every service reads, see docs/arch/limits.md)."""
    def port(offset: int) -> str:
        return str(base_port + offset if base_port else 0)

    def metrics(offset: int) -> str:
        return str(9464 + offset if base_port else 0)

    from renkei.ledger import ledger_vkey

    crl = str(root / "pki" / "crl.pem")
    common = ["--host", host, "--crl", crl, *(log or []),
              *(["--limits", str(Path(limits).resolve())] if limits else [])]
    _path, log_vkey = ledger_vkey(DataDir(root / "core", "core"))
    origin = (root / "core" / "ledger" / "origin").read_text().strip()
    witness = Member("witness", root / "witness", ["witness", "serve", "--host", host, "--port", port(4),
                                                   "--log", f"{origin}={log_vkey}", *(log or [])])
    core = Member("core", root / "core", ["core", "serve", "--port", port(0), "--public-port", port(1),
                                         "--metrics-port", metrics(0), *common])
    # More front-ends of the core on the same data directory and store (PostgreSQL only,
    # docs/arch/store.md): core-2, core-3, … on ports base + 20, 22, …
    extra_cores = [Member(f"core-{k}", root / "core",
                          ["core", "serve", "--port", port(20 + 2 * (k - 2)), "--public-port", port(21 + 2 * (k - 2)),
                           "--metrics-port", metrics(20 + k), *common])
                   for k in range(2, core_frontends + 1)]
    jlis = Member("jlis", root / "jlis", ["jlis", "serve", "--port", port(2), "--metrics-port", metrics(1), *common,
                                         "--jpki-dir", str(root / "jpki"), *(["--demo"] if demo else [])])
    nta = Member("nta", root / "nta", ["nta", "serve", "--port", port(3), "--metrics-port", metrics(2), *common])
    jpki = Member("jpki", root / "jpki", ["jpki", "serve", "--port", port(9), "--host", host])
    mids = []
    if demo:
        from renkei.service.demo import DEMO_MIDS

        for k, (mid_name, _agencies) in enumerate(DEMO_MIDS):
            mids.append(Member(f"mid-{mid_name}", root / f"mid-{mid_name}",
                               ["mid", "serve", "--port", port(5 + k), "--metrics-port", metrics(3 + k), *common]))
    ppc = Member("ppc", root / "ppc", ["ppc", "serve", "--port", port(10), "--metrics-port", metrics(10), *common])
    # マイナポータル: plain HTTP on the host (put a TLS proxy in front of it to publish it).
    portal = Member("portal", root / "portal", ["portal", "serve", "--host", host, "--port", port(7),
                                               "--metrics-port", metrics(11),
                                               "--ca", str(root / "pki" / "ca.pem"), *(log or [])])
    return [witness, core, *extra_cores, ppc, jlis, nta, jpki, *mids, portal]


class Box:
    """The running box: start, watch, stop."""

    def __init__(self, root: Path, members: list[Member], out: TextIO = sys.stdout) -> None:
        self.root = root
        self.members = members
        self.out = out
        self._stopping = False

    def _spawn(self, m: Member, extra: list[str]) -> None:
        m.ready_file.unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "renkei.cli", *m.args, *extra, "--data-dir", str(m.data_dir),
               "--ready-file", str(m.ready_file)]
        m.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  preexec_fn=_die_with_parent, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        threading.Thread(target=_pump, args=(m.name, m.proc.stdout, self.out), daemon=True).start()

    def _await_ready(self, m: Member) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        assert m.proc is not None
        while not m.ready_file.exists():
            if m.proc.poll() is not None:
                raise FailedPreconditionError(f"{m.name} exited with code {m.proc.returncode} while starting "
                                              f"(its output is above)")
            if time.monotonic() > deadline:
                raise FailedPreconditionError(f"{m.name} did not become ready within {START_TIMEOUT:.0f} s")
            time.sleep(0.05)
        m.info = json.loads(m.ready_file.read_text())

    def start(self) -> None:
        try:
            for m in self.members:
                extra: list[str] = []
                # Every core front-end (core, core-2, …: started before those that call the core).
                cores = [x for x in self.members if x.name == "core" or x.name.startswith("core-")]
                fronts = [str(x.info.get("grpc")) for x in cores]
                if m.name in ("jlis", "ppc"):
                    extra = ["--core", ",".join(fronts)]
                elif m.name.startswith("mid-"):
                    jlis = next(x for x in self.members if x.name == "jlis")
                    extra = ["--core", ",".join(fronts), "--jlis", str(jlis.info["grpc"])]
                elif m.name == "portal":
                    jpki = next(x for x in self.members if x.name == "jpki")
                    extra = ["--core", ",".join(str(x.info["public_grpc"]) for x in cores),
                             "--ocsp", f"http://{jpki.info['http']}/ocsp/auth",
                             *(["--linkage", ",".join(str(x.info["grpc"]) for x in cores)]
                               if (m.data_dir / AGENCY_CLIENT / "cert.pem").exists() else []),
                             "--sign-ocsp", f"http://{jpki.info['http']}/ocsp/sign", *self._municipal_mids(),
                             *[arg for w in self.members if w.name == "witness"
                               for arg in ("--witness-vkey", str(w.info["vkey"]))]]
                elif m.name == "core" or m.name.startswith("core-"):
                    extra = [arg for w in self.members if w.name == "witness"
                             for arg in ("--witness", f"http://{w.info['http']}={w.info['vkey']}")]
                self._spawn(m, extra)
                self._await_ready(m)
        except BaseException:
            self.stop()
            raise

    def _municipal_mids(self) -> list[str]:
        """``--mid AGENCY=HOST:PORT`` for each demo municipality: where the portal delivers applications."""
        from renkei.service.demo import DEMO_AGENCIES, DEMO_MIDS

        municipal = {a for a, _n, types, _c, _k in DEMO_AGENCIES if "municipal_mayor" in types}
        return [arg for m in self.members if m.name.startswith("mid-") and m.info.get("grpc")
                for mid_name, agencies in DEMO_MIDS if m.name == f"mid-{mid_name}"
                for a in agencies if a in municipal for arg in ("--mid", f"{a}={m.info['grpc']}")]

    def ready_info(self) -> dict[str, Any]:
        return {
            "services": {m.name: {k: m.info.get(k) for k in ("pid", "data_dir", "grpc", "http", "public_grpc",
                                                              "metrics", "vkey")}
                         for m in self.members},
            "pki": str((self.root / "pki").resolve()),
        }

    def stop(self) -> None:
        """SIGTERM to every running service in reverse start order; each lets its calls finish."""
        self._stopping = True
        for m in reversed(self.members):
            if m.proc is not None and m.proc.poll() is None:
                m.proc.send_signal(signal.SIGTERM)
                try:
                    m.proc.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    m.proc.kill()
                    m.proc.wait()
            m.ready_file.unlink(missing_ok=True)

    def watch(self, stop: threading.Event, on_exit: Callable[[Member], None]) -> None:
        """Until ``stop`` is set: report services that exit (they are not restarted)."""
        reported: set[str] = set()
        while not stop.wait(0.2):
            for m in self.members:
                if m.proc is not None and m.proc.poll() is not None and m.name not in reported:
                    reported.add(m.name)
                    on_exit(m)


def run(root: Path, *, demo: bool, host: str, base_port: int, ready_file: str | None,
        log: list[str] | None = None, limits: str | None = None, demo_persons: int = 1000,
        core_store: str | None = None, core_frontends: int = 1) -> int:
    if limits is not None:
        from renkei.service.limits import SERVICES, Limits

        for service in SERVICES:
            Limits.load(limits, service)  # refuse a bad file before anything starts
    from renkei.store import store_conninfo

    if core_frontends > 1 and core_store is None and (
            not (root / "core" / MARKER).exists() or store_conninfo(DataDir(root / "core", "core")) is None):
        raise FailedPreconditionError("several core front-ends share a PostgreSQL store (--core-store "
                                      "postgresql://…); an embedded core is one process on its files")
    if not 1 <= core_frontends <= 8:
        raise InvalidArgumentError("--core-frontends is 1 to 8")
    prepare(root, demo=demo, core_store=core_store)
    box = Box(root, members(root, host=host, base_port=base_port, demo=demo, log=log, limits=limits,
                            core_frontends=core_frontends))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    box.start()
    info = box.ready_info()
    marker = root / "demo-country.json"
    if demo and demo_persons > 0 and not marker.exists():
        from renkei.service.demo import seed_country

        try:
            summary = seed_country(info["services"], root / "pki", demo_persons)
        except BaseException:
            box.stop()
            raise
        write_atomic(marker, json.dumps(summary).encode(), 0o600)
        print(f"renkei up: demo country seeded ({summary['persons']} persons, 副本 at the intermediate servers)")
    print(f"renkei up: {len(box.members)} services from {root.resolve()}"
          + (" (demo country)" if demo else ""))
    for name, s in info["services"].items():
        ends = ", ".join(f"{k} {v}" for k, v in s.items() if k in ("grpc", "public_grpc", "http", "metrics") and v)
        print(f"  {name:<7} pid {s['pid']:<7} {ends}")
    print(f"  CA     {info['pki']}/ca.pem; client certificates in {info['pki']}/clients/")
    if demo:
        print(f"  cards  {(root / 'cards').resolve()} (demo PINs: docs/arch/jpki.md)")
    sys.stdout.flush()
    if ready_file:
        write_atomic(Path(ready_file), json.dumps(info, ensure_ascii=False).encode(), 0o600)

    def exited(m: Member) -> None:
        assert m.proc is not None
        print(f"renkei up: {m.name} exited with code {m.proc.returncode}; the other services keep running",
              flush=True)

    try:
        box.watch(stop, exited)
    finally:
        print("renkei up: stopping", flush=True)
        box.stop()
        if ready_file:
            Path(ready_file).unlink(missing_ok=True)
    print("renkei up: stopped", flush=True)
    return 0


__all__ = ["Box", "members", "prepare", "run"]
