"""The ``renkei`` command line.

    renkei init                         create the data directory (keys, registries)
    renkei status                       what the data directory holds
    renkei number check N...            validate 個人番号 / 法人番号 / 住民票コード
    renkei number assign CODE...        J-LIS: assign My Numbers to resident codes
    renkei number change N              J-LIS: designate a new number for a leaked one
    renkei corp get N... [--history]    NTA: look up corporate numbers
    renkei corp search NAME [...]       NTA: search by name
    renkei corp changes FROM TO [...]   NTA: records updated in a date range
    renkei corp assign --name ... --kind ... [--base ...]
    renkei serve                        run the gRPC server (creates the development CA on first start)
    renkei pki issue|list               client certificates of the development CA
    renkei permissions check|explain|versions|diff   番号法 別表第二 permission tables
    renkei permit verify TOKEN | public-key         provision permits

Every command takes ``--data-dir`` (default ``$RENKEI_DATA`` or ``./renkei-data``). Exit status
0 means success, 1 a refused input (the message says why), 2 a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from renkei import numbers
from renkei.cli import agency as cli_codes
from renkei.cli import ledger as cli_ledger
from renkei.cli import permissions as cli_permissions
from renkei.cli import serve as cli_serve
from renkei.errors import RenkeiError


def _data_dir(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from renkei.datadir import DataDir

    return DataDir(args.data_dir)


def cmd_init(args: argparse.Namespace) -> int:
    from renkei.jlis.authority import NumberAuthority
    from renkei.nta.registry import CorporateNumberRegistry

    d = _data_dir(args)
    NumberAuthority(d).close()
    CorporateNumberRegistry(d).close()
    print(f"data directory ready: {d.path.resolve()}")
    return cmd_status(args)


def cmd_status(args: argparse.Namespace) -> int:
    from renkei.jlis.authority import NumberAuthority
    from renkei.nta.registry import CorporateNumberRegistry

    d = _data_dir(args)
    with NumberAuthority(d) as jlis, CorporateNumberRegistry(d) as nta:
        counts = jlis.counts()
        page = nta.changes("0001-01-01", "9999-12-31")
    print(f"data directory: {d.path.resolve()}")
    print(f"  keys:             {', '.join(sorted(p.name for p in d.keys.glob('*.key'))) or '(none)'}")
    print(f"  J-LIS:            {counts['persons']} persons, {counts['current']} current and "
          f"{counts['former']} former numbers")
    print(f"  NTA:              {page.count} corporate-number records")
    return 0


def _classify(text: str) -> tuple[bool, str]:
    """(valid, explanation) for one number of whatever kind its digit count says."""
    from renkei._core import numbers as _n

    digits = sum(ch.isdigit() for ch in text)
    kind = {12: "individual", 13: "corporate", 11: "resident_code"}.get(digits)
    label = {"individual": "個人番号", "corporate": "法人番号", "resident_code": "住民票コード"}
    if kind is None:
        return False, f"has {digits} digits: not a 個人番号 (12), 法人番号 (13) or 住民票コード (11)"
    try:
        _n.parse_valid(kind, text)
    except RenkeiError as e:
        return False, str(e)
    return True, f"valid {label[kind]}"


def cmd_number_check(args: argparse.Namespace) -> int:
    ok_all = True
    for i, text in enumerate(args.numbers, 1):
        ok, why = _classify(text)
        ok_all &= ok
        # The number itself is not echoed: it may be a real My Number.
        print(f"#{i}: {'OK ' if ok else 'BAD'} {why}")
    return 0 if ok_all else 1


def cmd_number_assign(args: argparse.Namespace) -> int:
    from renkei.jlis.authority import NumberAuthority

    with NumberAuthority(_data_dir(args)) as jlis:
        for code in args.codes:
            print(jlis.assign(code))
    return 0


def cmd_number_change(args: argparse.Namespace) -> int:
    from renkei.jlis.authority import NumberAuthority

    with NumberAuthority(_data_dir(args)) as jlis:
        print(jlis.change(args.number))
    return 0


def _print_records(records: Sequence[object], as_json: bool) -> None:
    for r in records:
        d = r.to_dict()  # type: ignore[attr-defined]
        if as_json:
            print(json.dumps(d, ensure_ascii=False))
        else:
            closed = f" closed {d['close_date']}" if d["close_date"] else ""
            print(f"{d['corporate_number']} [{d['process']}] {d['name']} ({d['kind']}) "
                  f"{d['prefecture_name']}{d['city_name']}{d['street_number']}{closed}")


def cmd_corp_get(args: argparse.Namespace) -> int:
    from renkei.nta.registry import CorporateNumberRegistry

    with CorporateNumberRegistry(_data_dir(args)) as nta:
        records = nta.get(args.numbers, history=args.history)
    _print_records(records, args.json)
    found = {r.corporate_number for r in records}
    asked = [numbers.format_corporate_number(numbers.parse_corporate_number(n)) for n in args.numbers]
    missing = [n for n in asked if n not in found]
    for n in missing:
        print(f"{n}: not found", file=sys.stderr)
    return 1 if missing else 0


def cmd_corp_search(args: argparse.Namespace) -> int:
    from renkei.nta.registry import CorporateNumberRegistry

    with CorporateNumberRegistry(_data_dir(args)) as nta:
        page = nta.search(args.name, mode=args.mode, target=args.target, prefecture=args.prefecture,
                          kinds=args.kind, include_closed=not args.exclude_closed,
                          include_former_names=args.former_names, page=args.page)
    _print_records(page.corporations, args.json)
    print(f"{page.count} found, page {page.divide_number}/{page.divide_size}", file=sys.stderr)
    return 0


def cmd_corp_changes(args: argparse.Namespace) -> int:
    from renkei.nta.registry import CorporateNumberRegistry

    with CorporateNumberRegistry(_data_dir(args)) as nta:
        page = nta.changes(args.date_from, args.date_to, prefecture=args.prefecture, kinds=args.kind, page=args.page)
    _print_records(page.corporations, args.json)
    print(f"{page.count} records, page {page.divide_number}/{page.divide_size}", file=sys.stderr)
    return 0


def cmd_corp_assign(args: argparse.Namespace) -> int:
    from renkei.nta.registry import CorporateNumberRegistry

    details = {k: v for k, v in {
        "furigana": args.furigana, "en_name": args.en_name, "prefecture_name": args.prefecture_name,
        "city_name": args.city_name, "street_number": args.street_number,
        "prefecture_code": args.prefecture_code, "city_code": args.city_code, "post_code": args.post_code,
    }.items() if v}
    with CorporateNumberRegistry(_data_dir(args)) as nta:
        record = nta.assign(name=args.name, kind=args.kind, base=args.base, assignment_date=args.date, **details)
    print(record.corporate_number)
    return 0


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", default=None, help="data directory (default $RENKEI_DATA or ./renkei-data)")
    p = argparse.ArgumentParser(prog="renkei", description="renkei: the My Number information-linkage core")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("init", parents=[common], help="create the data directory").set_defaults(func=cmd_init)
    sub.add_parser("status", parents=[common], help="what the data directory holds").set_defaults(func=cmd_status)

    num = sub.add_parser("number", help="個人番号 / 法人番号 / 住民票コード").add_subparsers(dest="sub", required=True)
    c = num.add_parser("check", parents=[common], help="validate numbers (kind from the digit count)")
    c.add_argument("numbers", nargs="+")
    c.set_defaults(func=cmd_number_check)
    a = num.add_parser("assign", parents=[common], help="J-LIS: My Numbers for resident codes")
    a.add_argument("codes", nargs="+")
    a.set_defaults(func=cmd_number_assign)
    ch = num.add_parser("change", parents=[common], help="J-LIS: a new number for a leaked one")
    ch.add_argument("number")
    ch.set_defaults(func=cmd_number_change)

    corp = sub.add_parser("corp", help="法人番号 registry (NTA)").add_subparsers(dest="sub", required=True)
    g = corp.add_parser("get", parents=[common], help="look up up to 10 corporate numbers")
    g.add_argument("numbers", nargs="+")
    g.add_argument("--history", action="store_true")
    g.add_argument("--json", action="store_true")
    g.set_defaults(func=cmd_corp_get)
    s = corp.add_parser("search", parents=[common], help="search by name")
    s.add_argument("name")
    s.add_argument("--mode", choices=["prefix", "partial"], default="prefix")
    s.add_argument("--target", choices=["fuzzy", "exact", "english"], default="fuzzy")
    s.add_argument("--prefecture")
    s.add_argument("--kind", action="append")
    s.add_argument("--exclude-closed", action="store_true")
    s.add_argument("--former-names", action="store_true")
    s.add_argument("--page", type=int, default=1)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_corp_search)
    d = corp.add_parser("changes", parents=[common], help="records updated in a date range")
    d.add_argument("date_from", metavar="FROM")
    d.add_argument("date_to", metavar="TO")
    d.add_argument("--prefecture")
    d.add_argument("--kind", action="append")
    d.add_argument("--page", type=int, default=1)
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=cmd_corp_changes)
    n = corp.add_parser("assign", parents=[common], help="assign a corporate number")
    n.add_argument("--name", required=True)
    n.add_argument("--kind", required=True)
    n.add_argument("--base")
    n.add_argument("--date")
    for f in ("furigana", "en-name", "prefecture-name", "city-name", "street-number", "prefecture-code",
              "city-code", "post-code"):
        n.add_argument(f"--{f}")
    n.set_defaults(func=cmd_corp_assign)
    cli_serve.register(sub, common)
    cli_ledger.register(sub, common)
    cli_permissions.register(sub, common)
    cli_codes.register(sub, common)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except RenkeiError as e:
        print(f"renkei: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
