"""``renkei up``: start the whole system, every service as its own process (see renkei.service.up).

    renkei up [--dir renkei-data] [--demo [--demo-persons N]] [--base-port 50051] [--host 127.0.0.1]
              [--ready-file F] [--limits F] [--core-store postgresql://…] [--core-frontends N]
"""

from __future__ import annotations

import argparse
from typing import Any

from renkei.datadir import box_root


def cmd_up(args: argparse.Namespace) -> int:
    from renkei.service.up import run

    return run(box_root(args.dir or args.data_dir), demo=args.demo, host=args.host, base_port=args.base_port,
               ready_file=args.ready_file, log=["--log-level", args.log_level, "--log-format", args.log_format],
               limits=args.limits, demo_persons=args.demo_persons, core_store=args.core_store,
               core_frontends=args.core_frontends)


def cmd_status(args: argparse.Namespace) -> int:
    """What each service directory of the box holds, and which services run (read-only; never
    creates anything)."""
    import json

    from renkei.cli.output import emit
    from renkei.datadir import MARKER
    from renkei.errors import NotInitializedError

    root = box_root(args.dir or args.data_dir)
    if not root.is_dir():
        raise NotInitializedError(f"{root} does not exist; `renkei up --dir {root}` creates a box there")
    rows = []
    for service in ("pki", "core", "jlis", "nta", "witness", "jpki", "ppc"):
        folder = root / service
        marker = (folder / "ca.pem") if service == "pki" else (folder / MARKER)
        state = "ready" if marker.exists() else "not initialised"
        endpoint = ""
        ready = root / "run" / f"{service}.json"
        if service != "pki" and ready.is_file():
            try:
                info = json.loads(ready.read_text())
                from renkei.cli.live import alive

                if alive(info.get("pid")):
                    state = f"running (pid {info['pid']})"
                    endpoint = info.get("grpc") or info.get("public_grpc") or ""
            except (OSError, ValueError):
                pass
        rows.append({"service": service, "state": state, "endpoint": endpoint, "directory": str(folder)})
    if not args.json:
        print(f"box {root.resolve()}")
    emit(args.json, rows, [("service", "SERVICE"), ("state", "STATE"), ("endpoint", "ENDPOINT"),
                           ("directory", "DIRECTORY")])
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("up", help="start every service of the box as its own process")
    p.add_argument("--dir", help="the box directory (default $RENKEI_DATA or ./renkei-data)")
    p.add_argument("--demo", action="store_true", help="demo agencies, principals and corporations; test-only calls")
    p.add_argument("--demo-persons", type=int, default=1000,
                   help="with --demo: the population registered through J-LIS and the intermediate servers on the "
                        "first start, with realistic 副本 (0 = agencies only)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--base-port", type=int, default=50051,
                   help="core mTLS = base, core public = base+1, J-LIS = base+2, NTA = base+3, witness HTTP = "
                        "base+4, JPKI HTTP = base+9, the commission's PIA review = base+10 (0 = any free ports)")
    p.add_argument("--ready-file", help="write the endpoints here (JSON) once every service is serving")
    from renkei.cli.common import add_log_arguments

    add_log_arguments(p)
    p.add_argument("--limits", help="TOML file of limits for every service (docs/arch/limits.md)")
    p.add_argument("--core-store", metavar="URL",
                   help="a new box's core keeps its registry and permission versions in this PostgreSQL database "
                        "(default: embedded SQLite; docs/arch/store.md)")
    p.add_argument("--core-frontends", type=int, default=1, metavar="N",
                   help="with --core-store: N core front-end processes on the one store (core, core-2, …; ports "
                        "base+20, +22, …); the intermediate servers attend each (docs/arch/store.md)")
    p.set_defaults(func=cmd_up)
    s = sub.add_parser("status", help="which services of the box are initialised and running")
    s.add_argument("--dir", "--data-dir", dest="dir", help="the box directory (default $RENKEI_DATA or ./renkei-data)")
    s.add_argument("--json", action="store_true", default=None, help="one JSON object a line")
    s.set_defaults(func=cmd_status)
