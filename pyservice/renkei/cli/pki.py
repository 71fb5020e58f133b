"""``renkei pki …``: the development CA, in its own directory (default ./renkei-data/pki).

    renkei pki init [--dir D]                                   create the CA
    renkei pki issue --role R --name N [--agency-id ID] [--dir D]   a client certificate (clients/<principal>/)
    renkei pki issue-service SERVICE --data-dir SVC [--client-role R] [--dir D]
                                                                a service's tls/ (server cert, key, CA)
    renkei pki revoke PRINCIPAL [--dir D]                        revoke (crl.pem)
    renkei pki list [--dir D]
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from renkei.datadir import box_root


def _dir(args: argparse.Namespace) -> str:
    return str(args.dir) if args.dir else str(box_root() / "pki")


def cmd_init(args: argparse.Namespace) -> int:
    from renkei.pki.ca import DevelopmentCA

    ca = DevelopmentCA.init(_dir(args))
    print(f"development CA ready: {ca.ca_cert_path} (key {ca.ca_key_path}, 0600)")
    return 0


def cmd_issue(args: argparse.Namespace) -> int:
    from renkei.pki.ca import DevelopmentCA

    paths = DevelopmentCA(_dir(args)).issue_client_certificate(args.role, args.name, args.agency_id)
    print(json.dumps(paths.to_json(), ensure_ascii=False))
    return 0


def cmd_issue_service(args: argparse.Namespace) -> int:
    from renkei.pki.ca import DevelopmentCA

    tls = DevelopmentCA(_dir(args)).issue_service(args.service, args.data_dir, client_role=args.client_role)
    print(f"{args.service}: {tls.server_cert}, {tls.server_key}, {tls.ca}"
          + (f"; client {tls.client_cert}" if args.client_role else ""))
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    from renkei.pki.ca import DevelopmentCA

    ca = DevelopmentCA(_dir(args))
    paths = ca.revoke(args.principal)
    print(f"revoked {paths.principal} (serial {paths.serial}); {ca.crl_path} updated")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from renkei.pki.ca import DevelopmentCA

    ca = DevelopmentCA(_dir(args))
    print(f"CA {ca.ca_cert_path}")
    for c in sorted(ca.issued(), key=lambda c: c.principal):
        print(f"{c.principal:<16} {c.role:<10} {c.name}: {c.certificate}")
    return 0


def register(sub: Any) -> None:
    pki = sub.add_parser("pki", help="the development CA and certificates").add_subparsers(dest="sub", required=True)
    d = argparse.ArgumentParser(add_help=False)
    d.add_argument("--dir", help="the PKI directory (default $RENKEI_DATA/pki, i.e. ./renkei-data/pki)")
    pki.add_parser("init", parents=[d], help="create the development CA").set_defaults(func=cmd_init)
    i = pki.add_parser("issue", parents=[d], help="issue (or replace) a client certificate")
    i.add_argument("--role", choices=["agency", "business", "jlis", "oversight", "operator", "commission"],
                   default="agency")
    i.add_argument("--agency-id", type=int, help="required for --role agency and business")
    i.add_argument("--name", required=True)
    i.set_defaults(func=cmd_issue)
    s = pki.add_parser("issue-service", parents=[d], help="a service's certificate, key and CA into its tls/")
    s.add_argument("service", help="service name (jlis, nta, core, …)")
    s.add_argument("--data-dir", required=True, help="the service's data directory")
    s.add_argument("--client-role", help="also a client certificate of this role (J-LIS: jlis)")
    s.set_defaults(func=cmd_issue_service)
    r = pki.add_parser("revoke", parents=[d], help="revoke a principal's certificate")
    r.add_argument("principal", help="e.g. agency-7, operator")
    r.set_defaults(func=cmd_revoke)
    pki.add_parser("list", parents=[d], help="current certificates").set_defaults(func=cmd_list)
