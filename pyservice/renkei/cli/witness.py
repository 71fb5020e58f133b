"""``renkei witness …``: the commission's C2SP witness (証人) over the provision ledger.

    renkei witness init --name NAME        create the data directory (key, name)
    renkei witness vkey                    print its verifier key (cosignature/v1, type 0x04)
    renkei witness serve --log ORIGIN=VKEY [--logs-file F] [--port P] [--ready-file F]
                                           serve POST /add-checkpoint (plain HTTP, loopback default)
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from renkei.cli.common import add_log_arguments, open_data_dir, service_path, setup_logging


def cmd_init(args: argparse.Namespace) -> int:
    from renkei.service.witness import init_data_dir, open_key

    d = init_data_dir(service_path(args, "witness"), args.name)
    print(f"witness data directory ready: {d.path.resolve()}")
    print(f"verifier key: {open_key(d).vkey}")
    return 0


def cmd_vkey(args: argparse.Namespace) -> int:
    from renkei.service.witness import open_key

    print(open_key(open_data_dir(args, "witness")).vkey)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import asyncio
    import sys

    from renkei.errors import InvalidArgumentError
    from renkei.service.server import write_ready_file
    from renkei.service.witness import parse_log_option, read_logs_file, serve, trusted_logs, witness_name

    setup_logging(args, "witness")
    data_dir = open_data_dir(args, "witness")
    if args.name is not None and args.name != witness_name(data_dir):
        raise InvalidArgumentError(f"this witness is named {witness_name(data_dir)!r}, not {args.name!r}")
    pairs = [parse_log_option(v) for v in args.log or []]
    for f in args.logs_file or []:
        pairs += read_logs_file(Path(f))
    logs = trusted_logs(pairs)

    def ready(info: dict[str, object]) -> None:
        print(f"renkei witness {info['name']} serving http://{info['http']} (pid {info['pid']})")
        print(f"  verifier key {info['vkey']}")
        for origin in logs:
            print(f"  trusts log   {origin.origin}")
        sys.stdout.flush()
        if args.ready_file:
            write_ready_file(args.ready_file, info)

    asyncio.run(serve(data_dir, logs, args.host, args.port, ready, workers=args.workers))
    print("renkei witness stopped", flush=True)
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    g = sub.add_parser("witness", help="the commission's C2SP witness").add_subparsers(dest="sub", required=True)
    i = g.add_parser("init", parents=[common], help="create the witness's data directory and key")
    i.add_argument("--name", required=True, help="the witness's key name, a schema-less URL (e.g. ppc.example/w1)")
    i.set_defaults(func=cmd_init)
    g.add_parser("vkey", parents=[common], help="print the witness's verifier key").set_defaults(func=cmd_vkey)
    s = g.add_parser("serve", parents=[common], help="serve the C2SP tlog-witness HTTP API")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=50055, help="HTTP port (default 50055; 0 = any free)")
    s.add_argument("--name", help="must match the name given at init (a check)")
    s.add_argument("--log", action="append", metavar="ORIGIN=VKEY", help="a log to witness (repeatable)")
    s.add_argument("--logs-file", action="append", help="a file of 'ORIGIN VKEY' lines (repeatable)")
    s.add_argument("--ready-file", help="write JSON (pid, http, vkey) here once serving")
    s.add_argument("--workers", type=int, default=4, help="threads checking and cosigning")
    add_log_arguments(s)
    s.set_defaults(func=cmd_serve)
