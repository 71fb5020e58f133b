"""``renkei mid …``: an intermediate server (中間サーバー) hosting one or more agencies.

    renkei mid init --data-dir D --tenant ID:NAME:TYPE[+TYPE…] … [--pki DIR]
        create its data directory; with --pki, copy each tenant's certificate from the PKI
        (``renkei pki issue --role agency --agency-id ID``) into D/tenants/agency-ID/
    renkei mid serve --data-dir D --core HOST:PORT --jlis HOST:PORT …
        IntermediateService for the tenants' business systems (role business) on mutual TLS;
        one attendance stream per tenant to the core's ProvisionService
    renkei mid status --data-dir D
    renkei mid inquire --mid NAME --as AGENCY --atena N --affair A --provider P --item I …
        情報照会 as the agency's business system (role business, through the running
        intermediate server ``<box>/mid-NAME``): the provider's answer, opened and verified
    renkei mid exchanges --mid NAME --as AGENCY
        the agency's 記録管理 at its intermediate server (what it asked and answered)
"""

from __future__ import annotations

import argparse
from typing import Any

from renkei.cli.common import (
    add_serve_arguments,
    open_data_dir,
    run_service,
    service_config,
    service_path,
    setup_logging,
)
from renkei.errors import FailedPreconditionError, InvalidArgumentError


def _tenant(text: str) -> Any:
    from renkei.mid.platform import Tenant

    try:
        agency, name, types = text.split(":", 2)
        return Tenant(int(agency), name, tuple(t for t in types.split("+") if t))
    except ValueError:
        raise InvalidArgumentError(f"--tenant {text!r}: expected AGENCY_ID:NAME:TYPE[+TYPE…]") from None


def cmd_init(args: argparse.Namespace) -> int:
    from renkei.mid.platform import Platform
    from renkei.pki.ca import DevelopmentCA

    tenants = [_tenant(t) for t in args.tenant]
    data_dir = Platform.init(service_path(args, "mid"), tenants)
    if args.pki:
        ca = DevelopmentCA(args.pki)
        for t in tenants:
            ca.export_client(t.principal, data_dir.path / "tenants" / t.principal)
    print(f"intermediate server data directory ready: {data_dir.path.resolve()} "
          f"({len(tenants)} tenants: {', '.join(str(t.agency_id) for t in tenants)})")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from renkei.datadir import DataDir
    from renkei.mid.platform import SERVICE, Platform
    from renkei.service.mid import build

    setup_logging(args)
    data_dir = DataDir(service_path(args, "mid"), SERVICE)
    platform = Platform(data_dir)
    cores = [t.strip() for t in args.core.split(",") if t.strip()]
    if not cores:
        from renkei.errors import InvalidArgumentError

        raise InvalidArgumentError("--core names at least one HOST:PORT")
    process = build(service_config(args, "mid", data_dir), platform, cores, args.jlis)
    return run_service(args, process, [f"tenants {', '.join(str(a) for a in platform.tenants)}",
                                       f"linkage core {args.core}", f"J-LIS {args.jlis}"])


def cmd_status(args: argparse.Namespace) -> int:
    from renkei.mid.platform import SERVICE, Platform

    platform = Platform(open_data_dir(args, SERVICE))
    for t in platform.tenants.values():
        c = platform.store.counts(t.agency_id)
        print(f"{t.agency_id:>6}  {t.name}  addressees {c['addressees']}, codes {c['codes']}, "
              f"副本 {c['duplicates']}")
    platform.close()
    return 0


def _business(args: argparse.Namespace) -> tuple[Any, str]:
    """The running intermediate server ``mid-<name>`` and the business principal of ``--as``."""
    from renkei.cli.live import running

    name = args.mid if args.mid.startswith("mid-") else f"mid-{args.mid}"
    live = running(args, name)
    if live is None:
        raise FailedPreconditionError(f"the intermediate server {name} is not running (start the box: `renkei up`), "
                                      f"or pass --target HOST:PORT")
    return live, f"business-{args.as_agency}"


def cmd_inquire(args: argparse.Namespace) -> int:
    import json

    from renkei._proto.renkei.v1 import intermediate_service_pb2 as pb
    from renkei._proto.renkei.v1 import intermediate_service_pb2_grpc as pbg
    from renkei.cli.output import emit, emit_one

    live, principal = _business(args)
    r = live.call(principal, pbg.IntermediateServiceStub, "Inquire", pb.MidInquireRequest(
        integrated_address_number=args.atena, affair=args.affair, provider_agency_id=args.provider,
        items=args.item, conditions=pb.InquiryConditions(fiscal_year=args.fiscal_year or 0, as_of=args.as_of or ""),
        withheld_until=args.withheld_until or "", delegator_agency_id=args.delegator or 0,
        request_id=args.request_id or ""))
    emit_one(args.json, {"outcome": r.outcome, "照会 record": r.inquiry_record_sequence,
                         "提供 record": r.provision_record_sequence,
                         "提供日時": r.provided_at.ToDatetime().isoformat() + "Z"})
    emit(args.json, [{"item": x.item, "fiscal_year": x.fiscal_year or "", "record_key": x.record_key,
                      "version": x.version, "values": json.dumps(json.loads(x.payload_json or "{}"),
                                                                 ensure_ascii=False)} for x in r.records],
         [("item", "item"), ("fiscal_year", "年度"), ("record_key", "record"), ("version", "版"), ("values", "values")],
         empty="(no 副本 for this person and these items)")
    return 0


def cmd_exchanges(args: argparse.Namespace) -> int:
    from renkei._proto.renkei.v1 import intermediate_service_pb2 as pb
    from renkei._proto.renkei.v1 import intermediate_service_pb2_grpc as pbg
    from renkei.cli.output import emit

    live, principal = _business(args)
    r = live.call(principal, pbg.IntermediateServiceStub, "ListExchanges",
                  pb.ListExchangesRequest(after_sequence=args.after, page_size=args.limit))
    emit(args.json, [{"seq": e.sequence, "time": e.time.ToDatetime().isoformat() + "Z", "role": e.role,
                      "counterpart": e.counterpart_agency_id, "affair": e.affair, "items": ",".join(e.items),
                      "atena": e.integrated_address_number, "persons": e.persons, "outcome": e.outcome,
                      "ledger": e.ledger_sequence} for e in r.records],
         [("seq", "#"), ("time", "time (UTC)"), ("role", "role"), ("counterpart", "other agency"),
          ("affair", "affair"), ("items", "items"), ("atena", "宛名番号"), ("persons", "persons"),
          ("outcome", "outcome"), ("ledger", "core 照会 #")])
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    g = sub.add_parser("mid", help="an intermediate server (中間サーバー)").add_subparsers(dest="sub", required=True)
    i = g.add_parser("init", parents=[common], help="create its data directory with its tenants")
    i.add_argument("--tenant", action="append", required=True, help="AGENCY_ID:NAME:TYPE[+TYPE…] (repeatable)")
    i.add_argument("--pki", help="copy the tenants' certificates from this PKI directory")
    i.set_defaults(func=cmd_init)
    s = g.add_parser("serve", parents=[common], help="serve IntermediateService and attend the core")
    add_serve_arguments(s, port=50060, public_port=None)
    s.add_argument("--core", required=True,
                   help="the linkage core's mutual-TLS endpoint HOST:PORT, or its front-ends HOST:PORT,HOST:PORT,… "
                        "(every tenant attends each; requests go to the first that accepts a connection)")
    s.add_argument("--jlis", required=True, help="J-LIS's mutual-TLS endpoint HOST:PORT")
    s.set_defaults(func=cmd_serve)
    g.add_parser("status", parents=[common], help="tenants and what they hold").set_defaults(func=cmd_status)
    q = g.add_parser("inquire", parents=[common], help="情報照会 as an agency's business system")
    q.add_argument("--mid", required=True, help="the intermediate server (e.g. national for <box>/mid-national)")
    q.add_argument("--as", dest="as_agency", type=int, required=True, help="the requesting agency's id")
    q.add_argument("--atena", required=True, help="団体内統合宛名番号 of the person (15 digits)")
    q.add_argument("--affair", required=True, help="事務: affair id, B2.* code or JT… 事務手続コード")
    q.add_argument("--provider", type=int, required=True, help="the provider agency's id")
    q.add_argument("--item", action="append", required=True, help="特定個人情報: id, code or TM… code (repeatable)")
    q.add_argument("--fiscal-year", type=int, help="照会条件: the 年度 asked about")
    q.add_argument("--as-of", help="照会条件: the data in force on this date (YYYY-MM-DD)")
    q.add_argument("--withheld-until", help="照会側不開示: not shown to the person before this date")
    q.add_argument("--delegator", type=int, help="委任元: the agency this inquiry is made for")
    q.add_argument("--request-id", help="makes a retry of the same inquiry safe")
    q.set_defaults(func=cmd_inquire)
    x = g.add_parser("exchanges", parents=[common], help="the agency's 記録管理 at its intermediate server")
    x.add_argument("--mid", required=True, help="the intermediate server (e.g. municipal)")
    x.add_argument("--as", dest="as_agency", type=int, required=True, help="the agency's id")
    x.add_argument("--after", type=int, default=0, help="only records after this sequence number")
    x.add_argument("--limit", type=int, default=100, help="at most this many records")
    x.set_defaults(func=cmd_exchanges)
