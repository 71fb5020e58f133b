"""``renkei nta …`` and ``renkei corp …``: the National Tax Agency's corporate numbers (法人番号).

    renkei nta init [--demo]                create NTA's data directory (--demo: a few public bodies)
    renkei nta serve …                      CorporateNumberService on the public port (no client certificate)
    renkei corp get N... [--history]        look up corporate numbers
    renkei corp search NAME [...]           search by name
    renkei corp changes FROM TO [...]       records updated in a date range
    renkei corp assign --name ... --kind ... [--base ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from renkei import numbers
from renkei.cli.common import (
    add_serve_arguments,
    open_data_dir,
    run_service,
    service_config,
    service_path,
    setup_logging,
)
from renkei.cli.output import emit


def cmd_init(args: argparse.Namespace) -> int:
    from renkei.nta.registry import CorporateNumberRegistry
    from renkei.service.nta import seed_demo

    with CorporateNumberRegistry.init(service_path(args, "nta")) as nta:
        if args.demo:
            seed_demo(nta)
        print(f"NTA data directory ready: {nta.data_dir.path.resolve()}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from renkei.nta.registry import CorporateNumberRegistry
    from renkei.service.nta import build

    setup_logging(args, "nta")
    data_dir = open_data_dir(args, "nta")
    process = build(service_config(args, "nta", data_dir), CorporateNumberRegistry(data_dir))
    return run_service(args, process, [])


CORP_COLUMNS = [("corporate_number", "法人番号"), ("name", "商号又は名称 (name)"), ("kind", "種別 (kind)"),
                ("address", "所在地 (address)"), ("process", "最終更新 (last change)"), ("closed", "閉鎖 (closed)")]
LEGEND = ("columns: 法人番号 = corporate number (13 digits, check digit first); 種別 = kind "
          "(101 国の機関, 201 地方公共団体, 301 株式会社, 302 有限会社, 303 合名会社, 304 合資会社, 305 合同会社, "
          "399 その他の設立登記法人, 401 外国会社等, 499 その他); 最終更新 = the last change recorded (NTA Web-API "
          "process code and name, with its date); 閉鎖 = the date the corporation closed, if it did")


def _print_records(records: Sequence[object], as_json: bool) -> None:
    from renkei.nta.registry import KINDS, PROCESSES

    rows = []
    for r in records:
        d = r.to_dict()  # type: ignore[attr-defined]
        if as_json:
            print(json.dumps(d, ensure_ascii=False))
            continue
        rows.append({
            "corporate_number": d["corporate_number"], "name": d["name"],
            "kind": f"{d['kind']} {KINDS.get(d['kind'], '')}".strip(),
            "address": f"{d['prefecture_name']}{d['city_name']}{d['street_number']}",
            "process": f"{d['process']} {PROCESSES.get(d['process'], '')} {d.get('change_date') or ''}".strip(),
            "closed": d["close_date"] or "",
        })
    if not as_json:
        emit(False, rows, CORP_COLUMNS, empty="(none)")


def cmd_corp_get(args: argparse.Namespace) -> int:
    from renkei.nta.registry import CorporateNumberRegistry

    with CorporateNumberRegistry(open_data_dir(args, "nta")) as nta:
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

    with CorporateNumberRegistry(open_data_dir(args, "nta")) as nta:
        page = nta.search(args.name, mode=args.mode, target=args.target, prefecture=args.prefecture,
                          kinds=args.kind, include_closed=not args.exclude_closed,
                          include_former_names=args.former_names, page=args.page)
    _print_records(page.corporations, args.json)
    print(f"{page.count} found, page {page.divide_number}/{page.divide_size}", file=sys.stderr)
    if not args.json and page.corporations:
        print(LEGEND, file=sys.stderr)
    return 0


def cmd_corp_changes(args: argparse.Namespace) -> int:
    from renkei.nta.registry import CorporateNumberRegistry

    with CorporateNumberRegistry(open_data_dir(args, "nta")) as nta:
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
    with CorporateNumberRegistry(open_data_dir(args, "nta")) as nta:
        record = nta.assign(name=args.name, kind=args.kind, base=args.base, assignment_date=args.date, **details)
    print(record.corporate_number)
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    g = sub.add_parser("nta", help="NTA: the corporate-number service").add_subparsers(dest="sub", required=True)
    i = g.add_parser("init", parents=[common], help="create NTA's data directory")
    i.add_argument("--demo", action="store_true", help="register a few public bodies to search for")
    i.set_defaults(func=cmd_init)
    s = g.add_parser("serve", parents=[common], help="serve CorporateNumberService (public TLS)")
    add_serve_arguments(s, port=None, public_port=50054)
    s.set_defaults(func=cmd_serve)

    corp = sub.add_parser("corp", help="法人番号 registry (NTA)").add_subparsers(dest="sub", required=True)
    g = corp.add_parser("get", parents=[common], help="look up up to 10 corporate numbers")
    g.add_argument("numbers", nargs="+")
    g.add_argument("--history", action="store_true")
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
    s.set_defaults(func=cmd_corp_search)
    d = corp.add_parser("changes", parents=[common], help="records updated in a date range")
    d.add_argument("date_from", metavar="FROM")
    d.add_argument("date_to", metavar="TO")
    d.add_argument("--prefecture")
    d.add_argument("--kind", action="append")
    d.add_argument("--page", type=int, default=1)
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
