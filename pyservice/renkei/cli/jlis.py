"""``renkei jlis …`` and ``renkei number …``: J-LIS (地方公共団体情報システム機構).

    renkei jlis init [--data-dir D]         create J-LIS's data directory (keys: jlis-number, jlis-link)
    renkei jlis serve --core HOST:PORT[,…] … NumberService on mutual TLS; forwards link ids to the core
    renkei jlis status                      what the registry holds
    renkei jlis report --resident-code C --event E --effective-on D --name … --birth … --sex … --address …
                       --municipality M     a report of the resident register (本人確認情報)
    renkei jlis entitle --agency N --item facts|number|card --purpose P --basis TEXT --actor A
    renkei jlis entitlements [--agency N]   who may ask J-LIS what, on which legal basis
    renkei jlis revoke-entitlement ID --actor A
    renkei jlis query-log [--first N] [--count C]   J-LIS's query log, verified (checkpoint, proofs)
    renkei jlis notices [--state pending|rendered]  the 個人番号通知書 produced (no number shown)
    renkei jlis kenmen-key                  J-LIS's 券面事項入力補助AP public key (PEM), for counters to pin
    renkei number check N... [--stdin] [--file F]     validate 個人番号 / 法人番号 / 住民票コード (no data directory)
    renkei number assign CODE... [--stdin] [--file F] assign My Numbers to resident codes
    renkei number change N                  designate a new number for a leaked one
"""

from __future__ import annotations

import argparse
import sqlite3
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
from renkei.cli.output import emit
from renkei.errors import FailedPreconditionError, InvalidArgumentError, RenkeiError


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
    process = build(config, authority, args.core, ServiceTls(data_dir.tls), demo=args.demo, jpki_dir=args.jpki_dir,
                    notice_workers=args.notice_workers)
    return run_service(args, process, [f"linkage core {args.core}",
                                       f"JPKI {args.jpki_dir}" if args.jpki_dir else "no JPKI: no card desk"]
                       + (["demo: RegisterTestPopulation on"] if args.demo else []))


def cmd_status(args: argparse.Namespace) -> int:
    from renkei.datadir import connect_sqlite

    data_dir = open_data_dir(args, "jlis")
    db = connect_sqlite(data_dir.file("jlis.sqlite3"), read_only=True)
    try:
        def count(sql: str) -> int:
            try:
                return int(db.execute(sql).fetchone()[0])
            except sqlite3.OperationalError:  # a table an older J-LIS never made
                return 0

        current = count("SELECT count(*) FROM numbers WHERE state = 'current'")
        former = count("SELECT count(*) FROM numbers WHERE state = 'former'")
        facts = count("SELECT count(*) FROM persons")
        cards = count("SELECT count(*) FROM cards WHERE state IN ('active', 'suspended')")
        pending = count("SELECT count(*) FROM notices WHERE state = 'pending'")
        rendered = count("SELECT count(*) FROM notices WHERE state = 'rendered'")
    finally:
        db.close()
    print(f"J-LIS {service_path(args, 'jlis')}: {current} persons, {current} current and {former} former numbers; "
          f"本人確認情報 of {facts} persons; {cards} live cards; notices: {rendered} rendered, {pending} pending")
    return 0


def _live_jlis(args: argparse.Namespace, what: str) -> Live:
    live = running(args, "jlis")
    if live is None:
        raise FailedPreconditionError(f"{what} goes through the running J-LIS: start it (`renkei up`), or pass "
                                      f"--target HOST:PORT / --ready-file FILE")
    return live


def _info_call(live: Live, method: str, request: Any, principal: str = "jlis") -> Any:
    from renkei._proto.renkei.v1.person_info_service_pb2_grpc import PersonInfoServiceStub

    return live.call(principal, PersonInfoServiceStub, method, request)


def cmd_report(args: argparse.Namespace) -> int:
    from renkei._proto.renkei.v1 import person_info_service_pb2 as pb
    from renkei.jpki.profile import BasicFacts

    facts = BasicFacts.parse(args.name, args.birth, args.sex, args.address)
    live = _live_jlis(args, "a report of the resident register")
    r = _info_call(live, "ReportResidentFacts", pb.ReportResidentFactsRequest(
        resident_code=args.resident_code, event=getattr(pb, f"RESIDENT_EVENT_{args.event.upper()}"),
        effective_on=args.effective_on, municipality_code=args.municipality,
        facts=pb.BasicFacts(name=facts.name, birth=facts.birth.isoformat(),
                            sex={"1": pb.SEX_MALE, "2": pb.SEX_FEMALE}.get(facts.sex, pb.SEX_UNKNOWN),
                            address=facts.address)))
    emit(args.json, [{"version": r.version, "changed": ",".join(r.changed) or "-",
                      "certificates_revoked": r.certificates_revoked}],
         [("version", "VERSION"), ("changed", "CHANGED"), ("certificates_revoked", "CERTIFICATES REVOKED")])
    return 0


_ENTITLEMENT_COLUMNS = [("entitlement_id", "ID"), ("agency_id", "AGENCY"), ("item", "ITEM"), ("purpose", "PURPOSE"),
                        ("legal_basis", "LEGAL BASIS"), ("granted", "GRANTED"), ("revoked", "REVOKED")]


def _entitlement_row(e: Any) -> dict[str, Any]:
    from renkei._proto.renkei.v1 import person_info_service_pb2 as pb

    item = pb.EntitlementItem.Name(e.item).removeprefix("ENTITLEMENT_ITEM_").lower()
    return {"entitlement_id": e.entitlement_id, "agency_id": e.agency_id, "item": item, "purpose": e.purpose,
            "legal_basis": e.legal_basis, "granted": f"{e.granted_at} {e.granted_by}",
            "revoked": f"{e.revoked_at} {e.revoked_by}" if e.revoked_at else "-"}


def cmd_entitle(args: argparse.Namespace) -> int:
    from renkei._proto.renkei.v1 import person_info_service_pb2 as pb

    live = _live_jlis(args, "granting an entitlement")
    e = _info_call(live, "GrantEntitlement", pb.GrantEntitlementRequest(
        agency_id=args.agency, item=getattr(pb, f"ENTITLEMENT_ITEM_{args.item.upper()}"), purpose=args.purpose,
        legal_basis=args.basis, actor=args.actor))
    emit(args.json, [_entitlement_row(e)], _ENTITLEMENT_COLUMNS)
    return 0


def cmd_entitlements(args: argparse.Namespace) -> int:
    from renkei._proto.renkei.v1 import person_info_service_pb2 as pb

    live = _live_jlis(args, "listing entitlements")
    r = _info_call(live, "ListEntitlements", pb.ListEntitlementsRequest(agency_id=args.agency or 0,
                                                                        live_only=args.live))
    emit(args.json, [_entitlement_row(e) for e in r.entitlements], _ENTITLEMENT_COLUMNS, empty="(no entitlements)")
    return 0


def cmd_revoke_entitlement(args: argparse.Namespace) -> int:
    from renkei._proto.renkei.v1 import person_info_service_pb2 as pb

    live = _live_jlis(args, "revoking an entitlement")
    e = _info_call(live, "RevokeEntitlement", pb.RevokeEntitlementRequest(entitlement_id=args.entitlement,
                                                                          actor=args.actor))
    emit(args.json, [_entitlement_row(e)], _ENTITLEMENT_COLUMNS)
    return 0


def cmd_query_log(args: argparse.Namespace) -> int:
    """The records, each checked against the log's signed checkpoint (signature and inclusion)."""
    import hashlib

    from renkei._proto.renkei.v1 import person_info_service_pb2 as pb
    from renkei.errors import ProofError
    from renkei.ledger import LedgerRecord, verify_checkpoint, verify_inclusion

    live = _live_jlis(args, "reading the query log")
    r = _info_call(live, "ListQueryRecords", pb.ListQueryRecordsRequest(first=args.first, count=args.count))
    cp = verify_checkpoint(r.checkpoint, r.vkey)
    rows = []
    for q in r.records:
        verify_inclusion(q.sequence, cp.size, hashlib.sha256(b"\x00" + q.entry).digest(), list(q.inclusion_proof),
                         cp.root)
        # What is shown is what the proven leaf says, not only what the answer's fields say.
        leaf, _commitment = LedgerRecord.decode_public(q.entry)
        if (leaf.seq, leaf.requester, leaf.affair, list(leaf.items)) != (q.sequence, q.requester, q.purpose,
                                                                          list(q.items)):
            raise ProofError(f"query record {q.sequence}: the answer's fields differ from its proven leaf")
        rows.append({"sequence": q.sequence, "time": q.time, "requester": q.requester or "J-LIS",
                     "purpose": q.purpose, "items": ",".join(q.items), "outcome": q.outcome})
    if not args.json:
        print(f"J-LIS query log {cp.origin}: {cp.size} records; checkpoint signature and every inclusion proof "
              f"verified")
    emit(args.json, rows, [("sequence", "SEQ"), ("time", "TIME (UTC)"), ("requester", "REQUESTER"),
                           ("purpose", "PURPOSE"), ("items", "ITEMS"), ("outcome", "OUTCOME")], empty="(no records)")
    return 0


def cmd_notices(args: argparse.Namespace) -> int:
    from renkei._proto.renkei.v1 import number_service_pb2 as pb

    live = _live_jlis(args, "listing notices")
    r = _number_service(live, "ListNotices", pb.ListNoticesRequest(state=args.state or "", limit=args.limit))
    if not args.json:
        print(f"notices: {r.rendered} rendered, {r.pending} pending ({r.waiting_for_facts} waiting for the "
              f"person's 4情報)")
    emit(args.json, [{"notice_id": n.notice_id, "event": n.event, "created_at": n.created_at, "state": n.state,
                      "file": n.file or "-"} for n in r.notices],
         [("notice_id", "NOTICE"), ("event", "EVENT"), ("created_at", "CREATED (UTC)"), ("state", "STATE"),
          ("file", "FILE")], empty="(no notices)")
    return 0


def cmd_kenmen_key(args: argparse.Namespace) -> int:
    from renkei.jlis.authority import KENMEN_KEY_FILE

    path = open_data_dir(args, "jlis").file(KENMEN_KEY_FILE)
    if not path.exists():
        raise FailedPreconditionError(f"{path} is missing: run `renkei jlis init` on this directory (it publishes "
                                      f"the key once)")
    sys.stdout.write(path.read_text())
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
    s.add_argument("--core", required=True,
                   help="the linkage core's mutual-TLS endpoint HOST:PORT, or several front-ends A,B,… on one store "
                        "(forwards go to the first that answers)")
    s.add_argument("--demo", action="store_true", help="offer the test-only RegisterTestPopulation")
    s.add_argument("--jpki-dir", help="J-LIS's JPKI data directory: the card desk issues and revokes through it")
    s.add_argument("--notice-workers", type=int, default=0,
                   help="worker processes rendering 個人番号通知書 (0: a thread of this process)")
    s.set_defaults(func=cmd_serve)
    g.add_parser("status", parents=[common], help="what the registry holds").set_defaults(func=cmd_status)
    client = client_parser()
    r = g.add_parser("report", parents=[common, client], help="a report of the resident register (本人確認情報)")
    r.add_argument("--resident-code", required=True, help="住民票コード (lands in the shell history: demo use)")
    r.add_argument("--event", required=True, choices=["registration", "birth", "move_in", "move", "name_change",
                                                      "correction", "death"])
    r.add_argument("--effective-on", required=True, help="YYYY-MM-DD")
    r.add_argument("--name", required=True)
    r.add_argument("--birth", required=True, help="YYYY-MM-DD")
    r.add_argument("--sex", required=True, help="1 (男), 2 (女), 3 (不明); M/F accepted")
    r.add_argument("--address", required=True)
    r.add_argument("--municipality", required=True, help="全国地方公共団体コード of the reporting municipality")
    r.set_defaults(func=cmd_report)
    e = g.add_parser("entitle", parents=[common, client], help="entitle an agency to ask J-LIS (個人番号等照会)")
    e.add_argument("--agency", type=int, required=True)
    e.add_argument("--item", required=True, choices=["facts", "number", "card"])
    e.add_argument("--purpose", required=True, help="the affair's token (ASCII), e.g. JT01010000000214")
    e.add_argument("--basis", required=True, help="the legal basis, e.g. 番号法 第14条第2項")
    e.add_argument("--actor", required=True, help="who grants it")
    e.set_defaults(func=cmd_entitle)
    el = g.add_parser("entitlements", parents=[common, client], help="who may ask J-LIS what")
    el.add_argument("--agency", type=int)
    el.add_argument("--live", action="store_true", help="only those in force")
    el.set_defaults(func=cmd_entitlements)
    re_ = g.add_parser("revoke-entitlement", parents=[common, client], help="revoke an entitlement")
    re_.add_argument("entitlement", type=int)
    re_.add_argument("--actor", required=True)
    re_.set_defaults(func=cmd_revoke_entitlement)
    ql = g.add_parser("query-log", parents=[common, client], help="J-LIS's query log, verified")
    ql.add_argument("--first", type=int, default=0)
    ql.add_argument("--count", type=int, default=100)
    ql.set_defaults(func=cmd_query_log)
    no = g.add_parser("notices", parents=[common, client], help="the 個人番号通知書 produced")
    no.add_argument("--state", choices=["pending", "rendered"])
    no.add_argument("--limit", type=int, default=100)
    no.set_defaults(func=cmd_notices)
    g.add_parser("kenmen-key", parents=[common], help="J-LIS's 券面事項入力補助AP public key (PEM)").set_defaults(
        func=cmd_kenmen_key)

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
