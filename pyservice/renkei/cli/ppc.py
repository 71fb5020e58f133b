"""``renkei ppc …``: the commission's (個人情報保護委員会) PIA review — 特定個人情報保護評価.

    renkei ppc init [--data-dir D]            the commission's PIA data directory (decision-log key)
    renkei ppc serve --core HOST:PORT …       PiaReviewService (mutual TLS); delivers decisions to the core
    renkei ppc vkey                           the decision log's verifier key (what a core is bound to)
    renkei ppc submit --agency N --level full --title T --file F… [--linked D…] --document PATH [--revises ID]
                                              an agency submits its evaluation (as agency-N)
    renkei ppc list [--agency N]              PIAs (as the commission's reviewer, or --as-agency N)
    renkei ppc show ID
    renkei ppc approve ID --expires-on DATE [--approved-on DATE]     a reviewer's decisions (role oversight)
    renkei ppc return ID --reason TEXT
    renkei ppc revoke ID --reason TEXT
    renkei ppc decisions [--agency N]         every decision, each verified against the log's signed checkpoint

Everything but init, serve and vkey goes through the running service (``<box>/run/ppc.json``).
"""

from __future__ import annotations

import argparse
import hashlib
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
from renkei.cli.output import emit, emit_one
from renkei.errors import FailedPreconditionError, InvalidArgumentError

PIA_COLUMNS = [("pia_id", "PIA"), ("agency_id", "AGENCY"), ("state", "STATE"), ("level", "LEVEL"),
               ("approved_on", "APPROVED"), ("expires_on", "EXPIRES"), ("title", "TITLE")]


def cmd_init(args: argparse.Namespace) -> int:
    from renkei.ppc.review import PiaReview, init_data_dir

    d = init_data_dir(service_path(args, "ppc"))
    with PiaReview(d) as review:
        print(f"commission PIA data directory ready: {d.path.resolve()}")
        print(f"  decision log {review.vkey}")
    return 0


def cmd_vkey(args: argparse.Namespace) -> int:
    from renkei.ledger import ledger_vkey
    from renkei.ppc.review import LOG_DIR, LOG_KEY

    _path, vkey = ledger_vkey(open_data_dir(args, "ppc"), key_name=LOG_KEY, subdir=LOG_DIR)
    print(vkey)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import logging

    from renkei.errors import RenkeiError
    from renkei.pki.ca import ServiceTls
    from renkei.ppc.review import PiaReview
    from renkei.service.ppc import CoreDelivery, build

    setup_logging(args, "ppc")
    data_dir = open_data_dir(args, "ppc")
    review = PiaReview(data_dir)
    delivery = None
    if args.core:
        delivery = CoreDelivery(review, args.core, ServiceTls(data_dir.tls))
        try:  # before it reports ready: a box comes up with the decisions applied
            applied = delivery.deliver()
            if applied:
                print(f"the core applied {applied} PIA decisions", flush=True)
        except RenkeiError as e:
            logging.getLogger("renkei.ppc").warning("%s; the decisions wait in the log", e)
    process = build(service_config(args, "ppc", data_dir), review, delivery=delivery)
    return run_service(args, process, [f"decision log {review.vkey}",
                                       f"linkage core {args.core}" if args.core else "no core: decisions wait"])


def _live(args: argparse.Namespace) -> Live:
    live = running(args, "ppc")
    if live is None:
        raise FailedPreconditionError("the PIA review goes through the commission's running service: start it "
                                      "(`renkei up`), or pass --target HOST:PORT / --ready-file FILE")
    return live


def _call(args: argparse.Namespace, method: str, request: Any, principal: str) -> Any:
    from renkei._proto.renkei.v1.pia_review_service_pb2_grpc import PiaReviewServiceStub

    return _live(args).call(principal, PiaReviewServiceStub, method, request)


def _reviewer(args: argparse.Namespace) -> str:
    return f"agency-{args.as_agency}" if getattr(args, "as_agency", None) else "oversight"


def _row(p: Any) -> dict[str, Any]:
    from renkei._proto.renkei.v1 import pia_review_service_pb2 as pb

    return {"pia_id": p.pia_id, "agency_id": p.agency_id,
            "state": pb.PiaState.Name(p.state).removeprefix("PIA_STATE_").lower(),
            "level": pb.PiaLevel.Name(p.level).removeprefix("PIA_LEVEL_").lower(), "approved_on": p.approved_on or "-",
            "expires_on": p.expires_on or "-", "title": p.title, "files": list(p.files),
            "linked_data": list(p.linked_data), "decided_at": p.decided_at, "reason": p.reason,
            "revises": p.revises}


def cmd_submit(args: argparse.Namespace) -> int:
    from renkei._proto.renkei.v1 import pia_review_service_pb2 as pb

    try:
        document = Path(args.document).read_bytes()
    except OSError as e:
        raise InvalidArgumentError(f"cannot read the evaluation document {args.document}: {e.strerror}") from None
    p = _call(args, "SubmitPia", pb.SubmitPiaRequest(
        level=getattr(pb, f"PIA_LEVEL_{args.level.upper()}"), title=args.title, files=args.file,
        linked_data=args.linked or [], document_sha256=hashlib.sha256(document).digest(), revises=args.revises),
        f"agency-{args.agency}")
    emit_one(args.json, _row(p))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from renkei._proto.renkei.v1 import pia_review_service_pb2 as pb

    r = _call(args, "ListPias", pb.ListPiasRequest(agency_id=args.agency or 0), _reviewer(args))
    emit(args.json, [_row(p) for p in r.pias], PIA_COLUMNS, empty="(no PIAs)")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from renkei._proto.renkei.v1 import pia_review_service_pb2 as pb

    emit_one(args.json, _row(_call(args, "GetPia", pb.GetPiaRequest(pia_id=args.pia), _reviewer(args))))
    return 0


def _decide(args: argparse.Namespace, kind: str) -> int:
    from renkei._proto.renkei.v1 import pia_review_service_pb2 as pb

    p = _call(args, "DecidePia", pb.DecidePiaRequest(
        pia_id=args.pia, kind=getattr(pb, f"PIA_DECISION_KIND_{kind}"), reason=getattr(args, "reason", "") or "",
        approved_on=getattr(args, "approved_on", "") or "", expires_on=getattr(args, "expires_on", "") or ""),
        "oversight")
    emit_one(args.json, _row(p))
    return 0


def cmd_decisions(args: argparse.Namespace) -> int:
    from renkei._proto.renkei.v1 import pia_review_service_pb2 as pb
    from renkei.ledger import verify_checkpoint, verify_inclusion
    from renkei.ppc.review import leaf_hash

    r = _call(args, "ListPiaDecisions", pb.ListPiaDecisionsRequest(agency_id=args.agency or 0), _reviewer(args))
    cp = verify_checkpoint(r.checkpoint, r.vkey)
    rows = []
    for d in r.decisions:
        verify_inclusion(d.sequence, cp.size, leaf_hash(d.entry), list(d.inclusion_proof), cp.root)
        rows.append({"sequence": d.sequence, "time": d.time, "agency_id": d.agency_id, "pia_id": d.pia_id,
                     "kind": pb.PiaDecisionKind.Name(d.kind).removeprefix("PIA_DECISION_KIND_").lower(),
                     "period": f"{d.approved_on}..{d.expires_on}" if d.approved_on else "-", "reason": d.reason or "-"})
    if not args.json:
        print(f"decision log {cp.origin}: {cp.size} records; checkpoint signature and every inclusion proof verified",
              file=sys.stdout)
    emit(args.json, rows, [("sequence", "SEQ"), ("time", "TIME (UTC)"), ("agency_id", "AGENCY"), ("pia_id", "PIA"),
                           ("kind", "DECISION"), ("period", "PERIOD"), ("reason", "REASON")], empty="(no decisions)")
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    g = sub.add_parser("ppc", help="the commission's PIA review (特定個人情報保護評価)").add_subparsers(
        dest="sub", required=True)
    g.add_parser("init", parents=[common], help="create the commission's PIA data directory").set_defaults(
        func=cmd_init)
    s = g.add_parser("serve", parents=[common], help="serve PiaReviewService (mutual TLS); deliver to the core")
    add_serve_arguments(s, port=50061, public_port=None)
    s.add_argument("--core", help="the linkage core's mutual-TLS endpoint HOST:PORT (decisions are delivered there), "
                                   "or several front-ends A,B,… on one store")
    s.set_defaults(func=cmd_serve)
    g.add_parser("vkey", parents=[common], help="the decision log's verifier key").set_defaults(func=cmd_vkey)
    client = client_parser()
    sb = g.add_parser("submit", parents=[common, client], help="an agency submits its PIA")
    sb.add_argument("--agency", type=int, required=True, help="the submitting agency (its client certificate)")
    sb.add_argument("--level", required=True, choices=["basic", "priority", "full"])
    sb.add_argument("--title", required=True)
    sb.add_argument("--file", action="append", required=True, help="a 特定個人情報ファイル it covers (repeatable)")
    sb.add_argument("--linked", action="append", help="data it links through the network (repeatable)")
    sb.add_argument("--document", required=True, help="the evaluation document (its SHA-256 is recorded)")
    sb.add_argument("--revises", type=int, default=0, help="the returned PIA this revises")
    sb.set_defaults(func=cmd_submit)
    for name, help, func in (("list", "PIAs", cmd_list), ("decisions", "decisions, verified", cmd_decisions)):
        p = g.add_parser(name, parents=[common, client], help=help)
        p.add_argument("--agency", type=int, help="one agency's (reviewers)")
        p.add_argument("--as-agency", type=int, help="ask as this agency (its own only) instead of as a reviewer")
        p.set_defaults(func=func)
    sh = g.add_parser("show", parents=[common, client], help="one PIA")
    sh.add_argument("pia", type=int)
    sh.add_argument("--as-agency", type=int)
    sh.set_defaults(func=cmd_show)
    ap = g.add_parser("approve", parents=[common, client], help="approve a submitted PIA (reviewer)")
    ap.add_argument("pia", type=int)
    ap.add_argument("--approved-on", help="YYYY-MM-DD (default today)")
    ap.add_argument("--expires-on", required=True, help="YYYY-MM-DD, at most five years on")
    ap.set_defaults(func=lambda a: _decide(a, "APPROVED"))
    for name, kind, help in (("return", "RETURNED", "return a submitted PIA with the reason (reviewer)"),
                             ("revoke", "REVOKED", "revoke an approval with the reason (reviewer)")):
        d = g.add_parser(name, parents=[common, client], help=help)
        d.add_argument("pia", type=int)
        d.add_argument("--reason", required=True)
        d.set_defaults(func=lambda a, k=kind: _decide(a, k))
