"""``renkei serve``: run the gRPC server on a data directory.

On a fresh directory it creates the keys, the development CA, the server certificate and
client certificates for J-LIS, the commission (oversight), an operator and a set of demo
agencies of several 別表第二 types — registered in the core's agency registry with approved
PIAs, each certificate naming the registry's agency id — installs the bundled permission table
(番号法 別表第二), opens the provision ledger, prints where everything is, then serves until
SIGTERM/SIGINT (then in-flight calls finish and the ledger is closed).

``renkei agency add`` registers an agency (optionally approving its PIA) and issues its
certificate; run it while the server is stopped (the server owns the registry while it runs;
use AdminService.CreateAgency then).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

#: Demo agencies: (agency id on a fresh registry, name, 別表第二 agency type ids,
#: 全国地方公共団体コード, 法人番号). Local governments' and the ministry's corporate numbers follow
#: the NTA rule (000020 + 団体コード, 000012 + 省庁コード); the two corporations' are demo values
#: with valid check digits.
DEMO_AGENCIES: list[tuple[int, str, tuple[str, ...], str, str]] = [
    (1, "千代田区長", ("municipal_mayor",), "131016", "8000020131016"),
    (2, "横浜市長", ("municipal_mayor",), "141003", "3000020141003"),
    (3, "日本年金機構", ("japan_pension_service",), "", ""),
    (4, "厚生労働大臣", ("mhlw_minister",), "", "6000012070001"),
    (5, "全国健康保険協会", ("japan_health_insurance_association", "medical_insurers"), "", ""),
    (6, "東京都知事", ("prefectural_governor", "prefectural_governor_etc"), "130001", "8000020130001"),
]


def _demo_corporate_number(agency_id: int) -> str:
    from renkei.numbers import corporate_check_digit, format_corporate_number

    base = f"0000990{agency_id:05d}"
    return format_corporate_number(int(f"{corporate_check_digit(base)}{base}"))


def register_demo_agencies(core: Any) -> None:
    """On an empty registry: the demo agencies, each with an approved PIA (5 years)."""
    import datetime as dt

    if core.agencies():
        return
    today = dt.date.today()
    for agency_id, name, types, code, corp in DEMO_AGENCIES:
        a = core.register_agency(name, list(types), corp or _demo_corporate_number(agency_id),
                                 municipality_code=code or None)
        if a.agency_id != agency_id:
            raise RuntimeError(f"demo agency {name} got id {a.agency_id}, expected {agency_id}")
        core.add_pia(a.agency_id, f"{name} 特定個人情報保護評価書（全項目評価）", approved_on=today,
                     expires_on=today.replace(year=today.year + 5))
SYSTEM_PRINCIPALS = [
    ("jlis", "地方公共団体情報システム機構"),
    ("oversight", "個人情報保護委員会"),
    ("operator", "renkei operator"),
]


def provision_demo(data_dir: object) -> list[object]:
    """Create the demo certificates that do not exist yet; returns every issued one."""
    from renkei.pki.ca import DevelopmentCA

    ca = DevelopmentCA(data_dir)  # type: ignore[arg-type]
    have = {c.principal for c in ca.issued()}
    for role, name in SYSTEM_PRINCIPALS:
        if role not in have:
            ca.issue_client_certificate(role, name)
    for agency_id, name, _types, _code, _corp in DEMO_AGENCIES:
        if f"agency-{agency_id}" not in have:
            ca.issue_agency_certificate(agency_id, name)
    return list(ca.issued())


def cmd_serve(args: argparse.Namespace) -> int:
    from renkei.datadir import DataDir
    from renkei.service.server import RenkeiServer, ServerConfig, build_server

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    data_dir = DataDir(args.data_dir)
    config = ServerConfig(
        data_dir=data_dir,
        host=args.host,
        port=args.port,
        public_port=args.public_port,
        metrics_port=args.metrics_port,
        max_concurrent_rpcs=args.max_concurrent_rpcs,
        grace_seconds=args.grace,
    )
    server = build_server(config)
    register_demo_agencies(server.core)
    issued = provision_demo(data_dir)
    types = {f"agency-{a}": list(t) for a, _n, t, _c, _k in DEMO_AGENCIES}

    def ready(s: RenkeiServer) -> None:
        pki = s.ca.root.resolve()
        print(f"renkei serving data directory {data_dir.path.resolve()}")
        print(f"  mutual TLS  {args.host}:{s.bound_port}   (agencies, J-LIS, oversight, operator)")
        print(f"  public TLS  {args.host}:{s.bound_public_port}   (corporate numbers; no client certificate)")
        print(f"  metrics     http://{args.host}:{s.metrics_port}/metrics")
        print(f"  services    {', '.join(svc.descriptor.full_name for svc in s.services)}")  # type: ignore[attr-defined]
        print(f"  CA          {pki / 'ca.pem'}")
        print("  client certificates:")
        for c in issued:
            extra = f" types {','.join(types[c.principal])}" if c.principal in types else ""  # type: ignore[attr-defined]
            print(f"    {c.principal:<10} {c.name}{extra}: {c.certificate}")  # type: ignore[attr-defined]
        sys.stdout.flush()
        if args.ready_file:
            info = {
                "pid": os.getpid(),
                "port": s.bound_port,
                "public_port": s.bound_public_port,
                "metrics_port": s.metrics_port,
                "ca": str(pki / "ca.pem"),
            }
            tmp = Path(args.ready_file + ".tmp")
            tmp.write_text(json.dumps(info))
            tmp.replace(args.ready_file)

    asyncio.run(server.serve(ready))
    print("renkei stopped", flush=True)
    return 0


def cmd_pki_issue(args: argparse.Namespace) -> int:
    from renkei.pki.ca import DevelopmentCA

    ca = DevelopmentCA(args.data_dir)
    paths = ca.issue_client_certificate(args.role, args.name, args.agency_id)
    print(
        f"{paths.principal}: certificate {paths.certificate}, key {paths.private_key}, CA {ca.ca_cert_path}"
    )
    return 0


def cmd_pki_list(args: argparse.Namespace) -> int:
    from renkei.pki.ca import DevelopmentCA

    ca = DevelopmentCA(args.data_dir)
    print(f"CA {ca.ca_cert_path}")
    for c in ca.issued():
        print(f"{c.principal:<14} {c.role:<10} {c.name}: {c.certificate}")
    return 0


def cmd_agency_add(args: argparse.Namespace) -> int:
    import datetime as dt

    from renkei.linkage.registry import Core
    from renkei.linkage.services import local_government_corporate_number
    from renkei.pki.ca import DevelopmentCA

    corp = args.corporate_number
    if not corp:
        if not args.municipality_code:
            print("renkei: --corporate-number is required for an agency that is not a local government",
                  file=sys.stderr)
            return 2
        corp = local_government_corporate_number(args.municipality_code)
    with Core(args.data_dir) as core:
        a = core.register_agency(args.name, args.type, corp, municipality_code=args.municipality_code)
        if args.approve_pia:
            today = dt.date.today()
            core.add_pia(a.agency_id, f"{a.name} 特定個人情報保護評価書", approved_on=today,
                         expires_on=today.replace(year=today.year + 5))
    paths = DevelopmentCA(args.data_dir).issue_agency_certificate(a.agency_id, a.name)
    print(json.dumps({"agency_id": a.agency_id, "name": a.name, "types": list(a.types),
                      "pia_approved": bool(args.approve_pia), **paths.to_json()}, ensure_ascii=False))
    return 0


def register_agency_add(agency_group: Any, common: argparse.ArgumentParser) -> None:
    """``renkei agency add`` (added to the ``agency`` group of cli_codes)."""
    p = agency_group.add_parser("add", parents=[common], help="register an agency and issue its certificate")
    p.add_argument("--name", required=True)
    p.add_argument("--type", action="append", required=True, help="a 別表第二 agency type id (repeatable)")
    p.add_argument("--corporate-number", help="法人番号 (derived for local governments when omitted)")
    p.add_argument("--municipality-code", help="全国地方公共団体コード (local governments)")
    p.add_argument("--approve-pia", action="store_true", help="file and approve a PIA today (demo)")
    p.set_defaults(func=cmd_agency_add)


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "serve", parents=[common], help="run the gRPC server (mutual TLS + public port)"
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=50051, help="mutual-TLS port (0: any free port)")
    p.add_argument("--public-port", type=int, default=50052, help="public server-TLS port (0: any free port)")
    p.add_argument("--metrics-port", type=int, default=9464, help="Prometheus metrics HTTP port (0: any)")
    p.add_argument("--max-concurrent-rpcs", type=int, default=1000)
    p.add_argument("--grace", type=float, default=10.0, help="seconds in-flight calls get on shutdown")
    p.add_argument("--ready-file", help="write the bound ports here (JSON) once serving")
    p.set_defaults(func=cmd_serve)

    pki = subparsers.add_parser("pki", help="the development CA and client certificates").add_subparsers(
        dest="sub", required=True
    )
    issue = pki.add_parser("issue", parents=[common], help="issue (or replace) a client certificate")
    issue.add_argument("--role", choices=["agency", "jlis", "oversight", "operator"], default="agency")
    issue.add_argument("--agency-id", type=int, help="required for --role agency")
    issue.add_argument("--name", required=True)
    issue.set_defaults(func=cmd_pki_issue)
    pki.add_parser("list", parents=[common], help="issued client certificates").set_defaults(
        func=cmd_pki_list
    )
