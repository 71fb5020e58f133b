"""``renkei mid …``: an intermediate server (中間サーバー) hosting one or more agencies.

    renkei mid init --data-dir D --tenant ID:NAME:TYPE[+TYPE…] … [--pki DIR]
        create its data directory; with --pki, copy each tenant's certificate from the PKI
        (``renkei pki issue --role agency --agency-id ID``) into D/tenants/agency-ID/
    renkei mid serve --data-dir D --core HOST:PORT --jlis HOST:PORT …
        IntermediateService for the tenants' business systems (role business) on mutual TLS;
        one attendance stream per tenant to the core's ProvisionService
    renkei mid status --data-dir D
"""

from __future__ import annotations

import argparse
from typing import Any

from renkei.cli.common import (
    add_serve_arguments,
    open_data_dir,
    run_service,
    service_config,
    service_path,
    setup_logging,
)
from renkei.errors import InvalidArgumentError


def _tenant(text: str) -> Any:
    from renkei.mid.platform import Tenant

    try:
        agency, name, types = text.split(":", 2)
        return Tenant(int(agency), name, tuple(t for t in types.split("+") if t))
    except ValueError:
        raise InvalidArgumentError(f"--tenant {text!r}: expected AGENCY_ID:NAME:TYPE[+TYPE…]") from None


def cmd_init(args: argparse.Namespace) -> int:
    from renkei.mid.platform import Platform
    from renkei.pki.ca import DevelopmentCA

    tenants = [_tenant(t) for t in args.tenant]
    data_dir = Platform.init(service_path(args, "mid"), tenants)
    if args.pki:
        ca = DevelopmentCA(args.pki)
        for t in tenants:
            ca.export_client(t.principal, data_dir.path / "tenants" / t.principal)
    print(f"intermediate server data directory ready: {data_dir.path.resolve()} "
          f"({len(tenants)} tenants: {', '.join(str(t.agency_id) for t in tenants)})")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from renkei.datadir import DataDir
    from renkei.mid.platform import SERVICE, Platform
    from renkei.service.mid import build

    setup_logging(args)
    data_dir = DataDir(service_path(args, "mid"), SERVICE)
    platform = Platform(data_dir)
    process = build(service_config(args, "mid", data_dir), platform, args.core, args.jlis)
    return run_service(args, process, [f"tenants {', '.join(str(a) for a in platform.tenants)}",
                                       f"linkage core {args.core}", f"J-LIS {args.jlis}"])


def cmd_status(args: argparse.Namespace) -> int:
    from renkei.mid.platform import SERVICE, Platform

    platform = Platform(open_data_dir(args, SERVICE))
    for t in platform.tenants.values():
        c = platform.store.counts(t.agency_id)
        print(f"{t.agency_id:>6}  {t.name}  addressees {c['addressees']}, codes {c['codes']}, "
              f"副本 {c['duplicates']}")
    platform.close()
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    g = sub.add_parser("mid", help="an intermediate server (中間サーバー)").add_subparsers(dest="sub", required=True)
    i = g.add_parser("init", parents=[common], help="create its data directory with its tenants")
    i.add_argument("--tenant", action="append", required=True, help="AGENCY_ID:NAME:TYPE[+TYPE…] (repeatable)")
    i.add_argument("--pki", help="copy the tenants' certificates from this PKI directory")
    i.set_defaults(func=cmd_init)
    s = g.add_parser("serve", parents=[common], help="serve IntermediateService and attend the core")
    add_serve_arguments(s, port=50060, public_port=None)
    s.add_argument("--core", required=True, help="the linkage core's mutual-TLS endpoint HOST:PORT")
    s.add_argument("--jlis", required=True, help="J-LIS's mutual-TLS endpoint HOST:PORT")
    s.set_defaults(func=cmd_serve)
    g.add_parser("status", parents=[common], help="tenants and what they hold").set_defaults(func=cmd_status)
