"""``renkei up``: start the whole system, every service as its own process (see renkei.service.up).

    renkei up [--dir renkei-data] [--demo] [--base-port 50051] [--host 127.0.0.1] [--ready-file F] [--limits F]
"""

from __future__ import annotations

import argparse
from typing import Any

from renkei.datadir import box_root


def cmd_up(args: argparse.Namespace) -> int:
    from renkei.service.up import run

    return run(box_root(args.dir), demo=args.demo, host=args.host, base_port=args.base_port,
               ready_file=args.ready_file, limits=args.limits)


def cmd_status(args: argparse.Namespace) -> int:
    """What each service directory of the box holds (read-only; never creates anything)."""
    from renkei.datadir import MARKER

    root = box_root(args.dir)
    if not root.is_dir():
        print(f"renkei: {root} does not exist; `renkei up --dir {root}` creates a box there")
        return 1
    print(f"box {root.resolve()}")
    for service in ("pki", "core", "jlis", "nta"):
        folder = root / service
        marker = (folder / "ca.pem") if service == "pki" else (folder / MARKER)
        print(f"  {service:<5} {'ready' if marker.exists() else 'not initialised'}  {folder}")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("up", help="start every service of the box as its own process")
    p.add_argument("--dir", help="the box directory (default $RENKEI_DATA or ./renkei-data)")
    p.add_argument("--demo", action="store_true", help="demo agencies, principals and corporations; test-only calls")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--base-port", type=int, default=50051,
                   help="core mTLS = base, core public = base+1, J-LIS = base+2, NTA = base+3 (0 = any free ports)")
    p.add_argument("--ready-file", help="write the endpoints here (JSON) once every service is serving")
    p.add_argument("--limits", help="TOML file of limits for every service (docs/arch/limits.md)")
    p.set_defaults(func=cmd_up)
    s = sub.add_parser("status", help="which services of the box are initialised")
    s.add_argument("--dir", help="the box directory (default $RENKEI_DATA or ./renkei-data)")
    s.set_defaults(func=cmd_status)
