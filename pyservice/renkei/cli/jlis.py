"""``renkei jlis …`` and ``renkei number …``: J-LIS (地方公共団体情報システム機構).

    renkei jlis init [--data-dir D]         create J-LIS's data directory (keys: jlis-number, jlis-link)
    renkei jlis serve --core HOST:PORT …    NumberService on mutual TLS; forwards link ids to the core
    renkei jlis status                      what the registry holds
    renkei number check N... [--stdin] [--file F]     validate 個人番号 / 法人番号 / 住民票コード (no data directory)
    renkei number assign CODE... [--stdin] [--file F] assign My Numbers to resident codes
    renkei number change N                  designate a new number for a leaked one
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from renkei.cli.common import (
    add_serve_arguments,
    client_parser,
    open_data_dir,
    run_service,
    service_config,
    service_path,
    setup_logging,
)
from renkei.cli.live import Live, running
from renkei.errors import InvalidArgumentError, RenkeiError


def cmd_init(args: argparse.Namespace) -> int:
    from renkei.jlis.authority import NumberAuthority

    with NumberAuthority.init(service_path(args, "jlis")) as jlis:
        print(f"J-LIS data directory ready: {jlis.data_dir.path.resolve()}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from renkei.jlis.authority import NumberAuthority
    from renkei.pki.ca import ServiceTls
    from renkei.service.jlis import build

    setup_logging(args, "jlis")
    data_dir = open_data_dir(args, "jlis")
    authority = NumberAuthority(data_dir)
    config = service_config(args, "jlis", data_dir)
    process = build(config, authority, args.core, ServiceTls(data_dir.tls), demo=args.demo)
    return run_service(args, process, [f"linkage core {args.core}"] + (["demo: RegisterTestPopulation on"]
                                                                        if args.demo else []))


def cmd_status(args: argparse.Namespace) -> int:
    from renkei.jlis.authority import NumberAuthority

    with NumberAuthority(open_data_dir(args, "jlis")) as jlis:
        c = jlis.counts()
    print(f"J-LIS {service_path(args, 'jlis')}: {c['persons']} persons, {c['current']} current and "
          f"{c['former']} former numbers")
    return 0


def _classify(text: str) -> tuple[bool, str]:
    """(valid, explanation) for one number of whatever kind its digit count says."""
    from renkei._core import numbers as _n
    from renkei.numbers import NumberKind

    digits = sum(ch.isdigit() for ch in text)
    kinds: dict[int, NumberKind] = {12: "individual", 13: "corporate", 11: "resident_code"}
    kind = kinds.get(digits)
    label = {"individual": "個人番号", "corporate": "法人番号", "resident_code": "住民票コード"}
    if kind is None:
        return False, f"has {digits} digits: not a 個人番号 (12), 法人番号 (13) or 住民票コード (11)"
    try:
        _n.parse_valid(kind, text)
    except RenkeiError as e:
        return False, str(e)
    return True, f"valid {label[kind]}"


def _inputs(args: argparse.Namespace, name: str) -> list[str]:
    """The numbers of the command line, then of ``--file`` and of stdin (one a line): the last two
    keep them out of the shell's history and the process list."""
    values = list(getattr(args, name))
    for path in getattr(args, "file", None) or ():
        try:
            text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        except OSError as e:
            raise InvalidArgumentError(f"cannot read {path}: {e.strerror or e}; check the path") from None
        values += [line.strip() for line in text.splitlines() if line.strip()]
    if getattr(args, "stdin", False):
        values += [line.strip() for line in sys.stdin if line.strip()]
    return values


def cmd_number_check(args: argparse.Namespace) -> int:
    ok_all = True
    for i, text in enumerate(_inputs(args, "numbers"), 1):
        ok, why = _classify(text)
        ok_all &= ok
        # The number itself is not echoed: it may be a real My Number.
        print(f"#{i}: {'OK ' if ok else 'BAD'} {why}")
    return 0 if ok_all else 1


def _number_service(live: Live, method: str, request: Any) -> Any:
    from renkei.client import NumberServiceStub

    return live.call("jlis", NumberServiceStub, method, request)


def cmd_number_assign(args: argparse.Namespace) -> int:
    """Through the running J-LIS (NumberService, as its operator ``jlis``) when it is up, else on
    its registry directly."""
    from renkei._proto.renkei.v1 import number_service_pb2 as pb
    from renkei.jlis.authority import NumberAuthority

    codes = _inputs(args, "codes")
    live = running(args, "jlis")
    if live is not None:
        for code in codes:
            print(_number_service(live, "AssignNumber", pb.AssignNumberRequest(resident_code=code)).individual_number)
        return 0
    with NumberAuthority(open_data_dir(args, "jlis")) as jlis:
        for code in codes:
            print(jlis.assign(code))
    return 0


def cmd_number_change(args: argparse.Namespace) -> int:
    from renkei._proto.renkei.v1 import number_service_pb2 as pb
    from renkei.jlis.authority import NumberAuthority

    live = running(args, "jlis")
    if live is not None:
        print(_number_service(live, "ChangeNumber", pb.ChangeNumberRequest(individual_number=args.number))
              .individual_number)
        return 0
    with NumberAuthority(open_data_dir(args, "jlis")) as jlis:
        print(jlis.change(args.number))
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    g = sub.add_parser("jlis", help="J-LIS: the number authority's service").add_subparsers(dest="sub", required=True)
    g.add_parser("init", parents=[common], help="create J-LIS's data directory and keys").set_defaults(func=cmd_init)
    s = g.add_parser("serve", parents=[common], help="serve NumberService (mutual TLS)")
    add_serve_arguments(s, port=50053, public_port=None)
    s.add_argument("--core", required=True, help="the linkage core's mutual-TLS endpoint HOST:PORT")
    s.add_argument("--demo", action="store_true", help="offer the test-only RegisterTestPopulation")
    s.set_defaults(func=cmd_serve)
    g.add_parser("status", parents=[common], help="what the registry holds").set_defaults(func=cmd_status)

    num = sub.add_parser("number", help="個人番号 / 法人番号 / 住民票コード").add_subparsers(dest="sub", required=True)
    c = num.add_parser("check", help="validate numbers (kind from the digit count)")
    c.add_argument("numbers", nargs="*")
    c.add_argument("--stdin", action="store_true", help="also read numbers from stdin, one a line")
    c.add_argument("--file", action="append", help="also read numbers from this file, one a line (repeatable)")
    c.set_defaults(func=cmd_number_check)
    a = num.add_parser("assign", parents=[common, client_parser()], help="J-LIS: My Numbers for resident codes")
    a.add_argument("codes", nargs="*")
    a.add_argument("--stdin", action="store_true", help="also read resident codes from stdin, one a line")
    a.add_argument("--file", action="append", help="also read resident codes from this file, one a line")
    a.set_defaults(func=cmd_number_assign)
    ch = num.add_parser("change", parents=[common, client_parser()], help="J-LIS: a new number for a leaked one")
    ch.add_argument("number")
    ch.set_defaults(func=cmd_number_change)
