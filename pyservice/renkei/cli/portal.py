"""``renkei portal``: マイナポータル, the person's window (docs/arch/portal.md).

    renkei portal init --auth-ca auth-ca.pem --ledger-vkey VKEY [--agencies names.json | --demo]
    renkei portal serve --core HOST:PORT[,HOST:PORT…] --ca ca.pem --ocsp URL [--witness-vkey VKEY]… [--port 50058]
                        [--mid AGENCY=HOST:PORT… --sign-ocsp URL]      ワンストップ申請 (docs/arch/onestop.md)
                        [--linkage HOST:PORT[,HOST:PORT…]]             あなたの情報 (自己情報表示)
                        [--metrics-port N]                             Prometheus /metrics
    renkei portal add-client --name NAME --redirect-uri URI…     an app of the 自己情報取得API

``init`` pins the JPKI 利用者証明用 CA and the core ledger's verifier key; ``serve`` talks to the
core's public port (DisclosureService) and checks logins with the JPKI responder (``--ocsp``).
``--core`` and ``--linkage`` may list every front-end of a core on one store: each call goes to
the first that accepts a connection (docs/arch/store.md, "Many front-ends").
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from renkei.cli.common import add_log_arguments, service_path, setup_logging

DEFAULT_PORT = 50058


def cmd_init(args: argparse.Namespace) -> int:
    from renkei.errors import InvalidArgumentError
    from renkei.portal.config import init_data_dir

    agencies: dict[int, str] = {}
    if args.demo:
        from renkei.service.demo import DEMO_AGENCIES

        agencies = {a: name for a, name, _t, _c, _k in DEMO_AGENCIES}
    elif args.agencies:
        doc = json.loads(Path(args.agencies).read_text(encoding="utf-8"))
        if not isinstance(doc, dict):
            raise InvalidArgumentError("--agencies is a JSON object of agency id → name")
        agencies = {int(k): str(v) for k, v in doc.items()}
    cfg = init_data_dir(service_path(args, "portal"), auth_ca_pem=Path(args.auth_ca).read_bytes(),
                        ledger_vkey=args.ledger_vkey, agencies=agencies,
                        sign_ca_pem=Path(args.sign_ca).read_bytes() if args.sign_ca else None)
    if args.demo:  # the demo agencies' types too: which of them あなたの情報 may ask
        from renkei.portal.config import add_agencies
        from renkei.service.demo import DEMO_AGENCIES

        add_agencies(cfg.data_dir.path, {a: (name, types) for a, name, types, _c, _k in DEMO_AGENCIES})
    print(f"portal data directory ready: {cfg.data_dir.path.resolve()} ({len(cfg.agencies)} agency names)")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import asyncio

    from renkei.service.portal import PortalServer, open_portal
    from renkei.service.server import write_ready_file

    setup_logging(args, "portal")
    from renkei.errors import InvalidArgumentError

    mids: dict[int, str] = {}
    for spec in args.mid or []:
        agency, _, target = spec.partition("=")
        if not agency.isdigit() or not target:
            raise InvalidArgumentError(f"--mid {spec!r}: expected AGENCY=HOST:PORT")
        mids[int(agency)] = target
    portal = open_portal(service_path(args, "portal"), core=args.core, ca=args.ca, ocsp=args.ocsp,
                         witness_vkeys=args.witness_vkey or [], secure_cookies=not args.insecure_cookies,
                         sign_ocsp=args.sign_ocsp, mids=mids, linkage=args.linkage)
    server = PortalServer(portal, args.host, args.port, metrics_port=args.metrics_port,
                          metrics_host=args.metrics_host)

    def ready(s: PortalServer) -> None:
        info = s.endpoints()
        print(f"renkei portal serving http://{info['http']}/ (pid {info['pid']})")
        sys.stdout.flush()
        if args.ready_file:
            write_ready_file(args.ready_file, info)

    asyncio.run(server.serve(ready))
    print("renkei portal stopped", flush=True)
    return 0


def cmd_add_client(args: argparse.Namespace) -> int:
    from renkei.datadir import DataDir
    from renkei.portal.store import PortalStore

    store = PortalStore(DataDir(service_path(args, "portal"), "portal"))
    try:
        client = store.add_client(args.name, args.redirect_uri)
    finally:
        store.close()
    print(json.dumps({"client_id": client.client_id, "name": client.name, "redirect_uris": list(client.redirect_uris)},
                     ensure_ascii=False))
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    g = sub.add_parser("portal", help="マイナポータル: やりとり履歴 with checked proofs, card login"
                       ).add_subparsers(dest="sub", required=True)
    i = g.add_parser("init", parents=[common], help="create the portal's data directory (pins the JPKI CA)")
    i.add_argument("--auth-ca", required=True, help="PEM of the JPKI 利用者証明用 CA(s) (renkei jpki ca-cert)")
    i.add_argument("--sign-ca", help="PEM of the JPKI 署名用 CA(s), for signed applications (ワンストップ申請)")
    i.add_argument("--ledger-vkey", required=True, help="the core ledger's note verifier key")
    names = i.add_mutually_exclusive_group()
    names.add_argument("--agencies", help="JSON object: agency id → name (as shown to persons)")
    names.add_argument("--demo", action="store_true", help="the demo agencies' names and types")
    i.set_defaults(func=cmd_init)
    a = g.add_parser("add-client", parents=[common], help="register an app of the 自己情報取得API (OAuth + PKCE)")
    a.add_argument("--name", required=True, help="the app's name, shown on the consent screen")
    a.add_argument("--redirect-uri", action="append", required=True,
                   help="an exact redirect URI: https, or http on loopback (repeatable)")
    a.set_defaults(func=cmd_add_client)
    s = g.add_parser("serve", parents=[common], help="serve the portal over HTTP")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"HTTP port (default {DEFAULT_PORT}; 0 = any free)")
    s.add_argument("--core", required=True, metavar="HOST:PORT[,HOST:PORT…]",
                   help="the core's public gRPC endpoint (DisclosureService); several front-ends of one core as a "
                        "comma list: each call goes to the first that accepts a connection")
    s.add_argument("--ca", required=True, help="CA certificate of the core's TLS (the box's pki/ca.pem)")
    s.add_argument("--ocsp", required=True, help="the JPKI responder's 利用者証明用 OCSP URL")
    s.add_argument("--witness-vkey", action="append", help="a witness whose cosignatures to check (repeatable)")
    s.add_argument("--mid", action="append", metavar="AGENCY=HOST:PORT",
                   help="ワンストップ申請: a municipality and its intermediate server (repeatable)")
    s.add_argument("--sign-ocsp", help="the JPKI responder's 署名用 OCSP URL (for signed applications)")
    s.add_argument("--linkage", metavar="HOST:PORT[,HOST:PORT…]",
                   help="あなたの情報: the core's mutual-TLS endpoint (LinkageService; several front-ends as a comma "
                        "list); the portal inquires as its own agency (certificate in <data-dir>/agency/)")
    s.add_argument("--metrics-port", type=int, default=None,
                   help="Prometheus metrics port (GET /metrics; 0 = any free; default none)")
    s.add_argument("--metrics-host", default="127.0.0.1",
                   help="address the metrics endpoint binds (default loopback only; it is not authenticated)")
    s.add_argument("--insecure-cookies", action="store_true",
                   help="omit the cookies' Secure attribute (only behind a TLS-terminating proxy that strips it)")
    s.add_argument("--ready-file", help="write JSON (pid, http, data_dir, metrics) here once serving")
    add_log_arguments(s)
    s.set_defaults(func=cmd_serve)
