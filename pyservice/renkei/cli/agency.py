"""CLI for agencies, PIAs and agency codes (機関別符号), on the core's data directory.

The agency commands read only the registry (SQLite), so they work while the core runs; the
``codes`` commands open the holdings and need the core stopped. Codes are acquired through the
running services (J-LIS and the core), never offline: see ``renkei.client.acquire_codes``.

    renkei agency register --name NAME --type TYPE [--type ...] --corporate-number N [--municipality-code C]
    renkei agency list [--type TYPE] [--status STATUS] [--json]
    renkei agency show ID
    renkei agency set-status ID {active,suspended,retired}
    renkei agency types                             the agency types of 別表第二
    renkei agency pia-add ID --title T --expires-on DATE [--approved-on DATE] [--level L]
    renkei agency pia-approve PIA_ID --approved-on DATE
    renkei agency pia-revoke PIA_ID
    renkei agency pias ID
    renkei codes translate FROM CODE TO
    renkei codes release AGENCY CODE
    renkei codes holders AGENCY CODE
    renkei codes stats                              holdings per agency
    renkei codes epochs | rotate-epoch | retire-epoch N | checkpoint
    renkei codes verify                             check holdings/ without changing it
    renkei codes repair [--apply]                   salvage every readable record of a damaged holdings/
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from renkei.cli.common import open_data_dir

if TYPE_CHECKING:
    from renkei.linkage.core import Core
    from renkei.linkage.registry import AgencyRegistry


def _registry(args: argparse.Namespace) -> AgencyRegistry:
    from renkei.linkage.registry import AgencyRegistry

    return AgencyRegistry(open_data_dir(args, "core"))


def _core(args: argparse.Namespace) -> Core:
    from renkei.linkage.core import Core

    return Core(open_data_dir(args, "core"))


def cmd_agency_register(args: argparse.Namespace) -> int:
    with _registry(args) as core:
        a = core.register_agency(args.name, args.type, args.corporate_number,
                                 municipality_code=args.municipality_code)
    print(json.dumps(asdict(a), ensure_ascii=False))
    return 0


def cmd_agency_list(args: argparse.Namespace) -> int:
    with _registry(args) as core:
        agencies = core.agencies(type_id=args.type, status=args.status)
    for a in agencies:
        if args.json:
            print(json.dumps(asdict(a), ensure_ascii=False))
        else:
            muni = f" {a.municipality_code}" if a.municipality_code else ""
            print(f"{a.agency_id}\t{a.status}\t{a.corporate_number}{muni}\t{a.name}\t{','.join(a.types)}")
    return 0


def cmd_agency_show(args: argparse.Namespace) -> int:
    with _registry(args) as registry:
        a = registry.agency(args.agency)
        pias = registry.pias(args.agency)
    out: dict[str, Any] = asdict(a) | {"pia_status": registry_status(args, a.agency_id),
                                       "pias": [asdict(p) for p in pias]}
    print(json.dumps(out, ensure_ascii=False, indent=1))
    return 0


def registry_status(args: argparse.Namespace, agency_id: int) -> str:
    with _registry(args) as registry:
        return registry.pia_status(agency_id)


def cmd_agency_status(args: argparse.Namespace) -> int:
    with _registry(args) as core:
        a = core.set_agency_status(args.agency, args.status)
    print(f"agency {a.agency_id}: {a.status}")
    return 0


def cmd_agency_types(args: argparse.Namespace) -> int:
    from renkei.linkage.registry import agency_types

    for type_id, name in agency_types().items():
        print(f"{type_id}\t{name}")
    return 0


def cmd_pia_add(args: argparse.Namespace) -> int:
    with _registry(args) as core:
        p = core.add_pia(args.agency, args.title, level=args.level, expires_on=args.expires_on,
                         approved_on=args.approved_on)
    print(json.dumps(asdict(p), ensure_ascii=False))
    return 0


def cmd_pia_approve(args: argparse.Namespace) -> int:
    with _registry(args) as core:
        p = core.approve_pia(args.pia, args.approved_on)
    print(json.dumps(asdict(p), ensure_ascii=False))
    return 0


def cmd_pia_revoke(args: argparse.Namespace) -> int:
    with _registry(args) as core:
        p = core.revoke_pia(args.pia)
    print(json.dumps(asdict(p), ensure_ascii=False))
    return 0


def cmd_pias(args: argparse.Namespace) -> int:
    with _registry(args) as core:
        for p in core.pias(args.agency):
            print(json.dumps(asdict(p), ensure_ascii=False))
    return 0


def cmd_codes_translate(args: argparse.Namespace) -> int:
    with _core(args) as core:
        print(core.translate(args.from_agency, args.code, args.to_agency))
    return 0


def cmd_codes_release(args: argparse.Namespace) -> int:
    with _core(args) as core:
        core.release(args.agency, args.code)
    print("released")
    return 0


def cmd_codes_holders(args: argparse.Namespace) -> int:
    with _core(args) as core:
        for a in core.codes.holders_of(args.agency, args.code):
            print(a)
    return 0


def cmd_codes_stats(args: argparse.Namespace) -> int:
    with _core(args) as core:
        counts = core.codes.holdings_counts()
    for agency, n in counts.items():
        print(f"{agency}\t{n}")
    print(f"total\t{sum(counts.values())}", file=sys.stderr)
    return 0


def cmd_codes_epochs(args: argparse.Namespace) -> int:
    with _registry(args) as registry:
        current = registry.current_epoch()
        for e in registry.epochs():
            state = "current" if e.epoch == current else ("retired " + e.retired_at if e.retired_at else "live")
            print(f"{e.epoch}\t{state}\tcreated {e.created_at}")
    return 0


def cmd_codes_rotate(args: argparse.Namespace) -> int:
    with _core(args) as core:
        print(f"key epoch {core.rotate_epoch()} is now current")
    return 0


def cmd_codes_retire(args: argparse.Namespace) -> int:
    with _core(args) as core:
        core.retire_epoch(args.epoch)
    print(f"key epoch {args.epoch} retired: its codes are refused from now on")
    return 0


def cmd_codes_checkpoint(args: argparse.Namespace) -> int:
    with _core(args) as core:
        core.checkpoint()
    print("holdings snapshot written")
    return 0


def cmd_codes_verify(args: argparse.Namespace) -> int:
    from renkei._core import codes as _codes

    r = _codes.verify_holdings(str(open_data_dir(args, "core").file("holdings")))
    print(f"holdings clean: {r['persons']} persons, {r['holdings']} holdings of {r['agencies']} agencies "
          f"(snapshot={r['snapshot_loaded']}, {r['records']} journal records"
          + (f", an unacknowledged tail of {r['torn_tail_bytes']} bytes" if r["torn_tail_bytes"] else "") + ")")
    return 0


def cmd_codes_repair(args: argparse.Namespace) -> int:
    """Salvage a damaged holdings/ (the core stopped): report first; with --apply write it."""
    import datetime as dt

    from renkei._core import codes as _codes

    holdings = open_data_dir(args, "core").file("holdings")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    r = _codes.repair_holdings(str(holdings), stamp, dry_run=not args.apply)
    if not r["needed"]:
        print(f"{holdings}: nothing to repair ({r['persons']} persons, {r['holdings']} holdings)")
        return 0
    if r["snapshot_problem"]:
        print(f"snapshot: {r['snapshot_problem']} (the holdings it held are lost)")
    for j in r["journals"]:
        print(f"{j['file']}: {j['records']} readable records")
        for offset, size, why in j["damaged"]:
            print(f"  damaged: {size} bytes at byte {offset} ({why}): records there are lost")
        if j["torn_tail_bytes"]:
            print(f"  an unacknowledged tail of {j['torn_tail_bytes']} bytes is dropped")
    for file, offset, why in r["skipped"]:
        print(f"{file}: the record at byte {offset} is skipped: {why}")
    print(f"salvaged {r['records_salvaged']} records: {r['persons']} persons ({r['persons_reserved']} person "
          f"indices reserved whose link ids were lost: those persons get new codes when acquired again), "
          f"{r['holdings']} holdings")
    if not args.apply:
        print("dry run: nothing changed; run again with --apply to write the repaired holdings "
              "(the damaged files are kept in holdings/damaged-<time>/)")
        return 1
    print(f"repaired: new snapshot generation {r['generation']}; the original files are kept in {r['kept_in']}")
    print("agencies re-acquire the codes of holdings that were lost (codes are deterministic)")
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``agency`` and ``codes`` command groups to the ``renkei`` parser."""
    ag = sub.add_parser("agency", help="agency and PIA registry").add_subparsers(dest="sub", required=True)
    r = ag.add_parser("register", parents=[common], help="register an agency")
    r.add_argument("--name", required=True)
    r.add_argument("--type", action="append", required=True, help="a 別表第二 agency type id (repeatable)")
    r.add_argument("--corporate-number", required=True, help="the agency's own 法人番号")
    r.add_argument("--municipality-code", help="全国地方公共団体コード (local governments)")
    r.set_defaults(func=cmd_agency_register)
    from renkei.cli.core import register_agency_add

    register_agency_add(ag, common)
    ls = ag.add_parser("list", parents=[common], help="list agencies")
    ls.add_argument("--type")
    ls.add_argument("--status")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_agency_list)
    s = ag.add_parser("show", parents=[common], help="one agency with its PIAs")
    s.add_argument("agency", type=int)
    s.set_defaults(func=cmd_agency_show)
    st = ag.add_parser("set-status", parents=[common], help="activate, suspend or retire an agency")
    st.add_argument("agency", type=int)
    st.add_argument("status", choices=["active", "suspended", "retired"])
    st.set_defaults(func=cmd_agency_status)
    ag.add_parser("types", parents=[common], help="agency types of 別表第二").set_defaults(func=cmd_agency_types)
    pa = ag.add_parser("pia-add", parents=[common], help="file a 特定個人情報保護評価 (PIA)")
    pa.add_argument("agency", type=int)
    pa.add_argument("--title", required=True)
    pa.add_argument("--level", default="全項目評価", choices=["基礎項目評価", "重点項目評価", "全項目評価"])
    pa.add_argument("--approved-on")
    pa.add_argument("--expires-on", required=True)
    pa.set_defaults(func=cmd_pia_add)
    pp = ag.add_parser("pia-approve", parents=[common], help="approve a filed PIA")
    pp.add_argument("pia", type=int)
    pp.add_argument("--approved-on", required=True)
    pp.set_defaults(func=cmd_pia_approve)
    pr = ag.add_parser("pia-revoke", parents=[common], help="revoke a PIA")
    pr.add_argument("pia", type=int)
    pr.set_defaults(func=cmd_pia_revoke)
    pl = ag.add_parser("pias", parents=[common], help="an agency's PIAs")
    pl.add_argument("agency", type=int)
    pl.set_defaults(func=cmd_pias)

    co = sub.add_parser("codes", help="agency codes (機関別符号) and holdings")
    co = co.add_subparsers(dest="sub", required=True)
    t = co.add_parser("translate", parents=[common], help="translate a code to another agency's")
    t.add_argument("from_agency", type=int)
    t.add_argument("code")
    t.add_argument("to_agency", type=int)
    t.set_defaults(func=cmd_codes_translate)
    rl = co.add_parser("release", parents=[common], help="release a holding")
    rl.add_argument("agency", type=int)
    rl.add_argument("code")
    rl.set_defaults(func=cmd_codes_release)
    h = co.add_parser("holders", parents=[common], help="agencies holding the person behind a code")
    h.add_argument("agency", type=int)
    h.add_argument("code")
    h.set_defaults(func=cmd_codes_holders)
    co.add_parser("stats", parents=[common], help="holdings per agency").set_defaults(func=cmd_codes_stats)
    co.add_parser("epochs", parents=[common], help="key epochs").set_defaults(func=cmd_codes_epochs)
    co.add_parser("rotate-epoch", parents=[common], help="start a new key epoch").set_defaults(func=cmd_codes_rotate)
    re_ = co.add_parser("retire-epoch", parents=[common], help="refuse all codes of an epoch")
    re_.add_argument("epoch", type=int)
    re_.set_defaults(func=cmd_codes_retire)
    co.add_parser("checkpoint", parents=[common], help="snapshot the holdings").set_defaults(func=cmd_codes_checkpoint)
    co.add_parser("verify", parents=[common], help="check holdings/ without changing it (works while the core runs)"
                  ).set_defaults(func=cmd_codes_verify)
    rp = co.add_parser("repair", parents=[common],
                       help="salvage every readable record of a damaged holdings/ (the core stopped)")
    rp.add_argument("--apply", action="store_true",
                    help="write the repaired holdings (without it: report only); the originals are kept aside")
    rp.set_defaults(func=cmd_codes_repair)
