"""CLI for agencies, PIAs and agency codes (機関別符号), on the linkage core.

While the core runs, these go through its AdminService as ``operator`` (renkei.cli.live):
``agency register|add|list|show|set-status`` and ``codes epochs|rotate-epoch|retire-epoch|stats``
then take effect for the core's next call. With the core stopped they read the registry
read-only (SQLite: no lock, nothing created) or change it directly. An agency's PIA state is
the commission's decision (``renkei ppc …``), never set here: ``agency pias`` shows what the core
holds of those decisions (read-only from the registry file). ``codes
translate|release|holders|checkpoint`` read the holdings themselves and need the core stopped.
Codes are acquired through the running services (J-LIS and the core), never offline
(``renkei.client.acquire_codes``).

    renkei agency register --name NAME --type TYPE [--type ...] --corporate-number N [--municipality-code C]
    renkei agency list [--type TYPE] [--status STATUS] [--json]
    renkei agency show ID
    renkei agency set-status ID {active,suspended,retired}
    renkei agency types                             the agency types of 別表第二
    renkei agency pias ID                           the commission's PIA decisions the core holds
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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC
from typing import TYPE_CHECKING, Any

from renkei._proto.renkei.v1 import admin_service_pb2 as pb
from renkei.cli.common import client_parser, open_data_dir
from renkei.cli.live import Live, ensure_down, need_down, running
from renkei.cli.output import emit, emit_one, jst

if TYPE_CHECKING:
    from renkei.linkage.core import Core
    from renkei.linkage.registry import AgencyRegistry

_PIA_NAMES = {pb.PIA_STATUS_NOT_SUBMITTED: "not_submitted", pb.PIA_STATUS_SUBMITTED: "submitted",
              pb.PIA_STATUS_APPROVED: "approved", pb.PIA_STATUS_REVOKED: "revoked"}
AGENCY_COLUMNS = [("agency_id", "ID"), ("status", "STATUS"), ("pia_status", "PIA"),
                  ("corporate_number", "法人番号"), ("municipality_code", "団体コード"), ("name", "NAME"),
                  ("types", "TYPES")]


@contextmanager
def _registry(args: argparse.Namespace, *, write: bool = False) -> Iterator[AgencyRegistry]:
    from renkei.linkage.registry import AgencyRegistry

    with AgencyRegistry(open_data_dir(args, "core"), read_only=not write) as registry:
        yield registry


def _core(args: argparse.Namespace, what: str) -> Core:
    from renkei.linkage.core import Core

    need_down(args, what)
    return Core(open_data_dir(args, "core"))


def admin(live: Live, method: str, request: Any) -> Any:
    from renkei.client import AdminServiceStub

    return live.call("operator", AdminServiceStub, method, request)


def agency_row(a: pb.Agency) -> dict[str, Any]:
    return {"agency_id": a.agency_id, "status": a.status, "pia_status": _PIA_NAMES.get(a.pia_status, ""),
            "corporate_number": a.corporate_number, "municipality_code": a.local_government_code or None,
            "name": a.name, "types": ",".join(a.type_ids),
            "registered": jst(a.create_time.ToDatetime(tzinfo=UTC)) if a.HasField("create_time") else ""}


def _offline_agency(registry: AgencyRegistry, agency_id: int) -> pb.Agency:
    from renkei.service.core.admin import agency_message

    return agency_message(registry.agency(agency_id), registry.pia_status(agency_id))


def create_agency(args: argparse.Namespace, name: str, types: list[str], corporate: str | None,
                  municipality: str | None) -> pb.Agency:
    """Register an agency (through the running core when it is up). Its PIA is the commission's
    to approve (``renkei ppc submit`` by the agency, ``renkei ppc approve`` by a reviewer)."""
    live = running(args)
    if live is not None:
        a: pb.Agency = admin(live, "CreateAgency", pb.CreateAgencyRequest(
            name=name, type_ids=types, local_government_code=municipality or "", corporate_number=corporate or ""))
        return a
    from renkei.linkage.registry import local_government_corporate_number

    if not corporate:
        from renkei.errors import InvalidArgumentError

        if not municipality:
            raise InvalidArgumentError("--corporate-number is required for an agency that is not a local "
                                       "government; give its 法人番号, or --municipality-code")
        corporate = local_government_corporate_number(municipality)
    with _registry(args, write=True) as registry:
        created = registry.register_agency(name, types, corporate, municipality_code=municipality)
        return _offline_agency(registry, created.agency_id)


def cmd_agency_register(args: argparse.Namespace) -> int:
    a = create_agency(args, args.name, args.type, args.corporate_number, args.municipality_code)
    emit_one(args.json, agency_row(a))
    return 0


def _all_agencies(live: Live) -> list[pb.Agency]:
    out: list[pb.Agency] = []
    token = ""
    while True:
        page = admin(live, "ListAgencies", pb.ListAgenciesRequest(page_size=1000, page_token=token))
        out += list(page.agencies)
        token = page.next_page_token
        if not token:
            return out


def cmd_agency_list(args: argparse.Namespace) -> int:
    live = running(args)
    if live is not None:
        agencies = _all_agencies(live)
    else:
        with _registry(args) as registry:
            agencies = [_offline_agency(registry, a.agency_id) for a in registry.agencies()]
    agencies = [a for a in agencies if (args.type is None or args.type in a.type_ids)
                and (args.status is None or a.status == args.status)]
    emit(args.json, [agency_row(a) for a in agencies], AGENCY_COLUMNS, empty="(no agencies)")
    return 0


def cmd_agency_show(args: argparse.Namespace) -> int:
    live = running(args)
    if live is not None:
        row = agency_row(admin(live, "GetAgency", pb.GetAgencyRequest(agency_id=args.agency)))
    else:
        with _registry(args) as registry:
            row = agency_row(_offline_agency(registry, args.agency))
    with _registry(args) as registry:  # PIAs: read-only from the registry file
        row["pias"] = [f"#{p['pia_id']} {p['status']} {p['level']} until {p['expires_on']}"
                       for p in _pias(registry, args.agency)]
    emit_one(args.json, row)
    return 0


def cmd_agency_status(args: argparse.Namespace) -> int:
    live = running(args)
    if live is not None:
        a = admin(live, "SetAgencyStatus", pb.SetAgencyStatusRequest(agency_id=args.agency, status=args.status))
    else:
        with _registry(args, write=True) as registry:
            registry.set_agency_status(args.agency, args.status)
            a = _offline_agency(registry, args.agency)
    emit_one(args.json, agency_row(a))
    return 0


def cmd_agency_types(args: argparse.Namespace) -> int:
    from renkei.linkage.registry import agency_types

    emit(args.json, [{"type_id": t, "name": n} for t, n in agency_types().items()],
         [("type_id", "TYPE"), ("name", "NAME (別表第二)")])
    return 0


PIA_COLUMNS = [("pia_id", "PIA"), ("agency_id", "AGENCY"), ("status", "STATUS"), ("level", "LEVEL"),
               ("approved_on", "APPROVED"), ("expires_on", "EXPIRES")]


def _pias(registry: AgencyRegistry, agency_id: int) -> list[dict[str, Any]]:
    """The agency's PIAs as the core holds them: the commission's decisions (each re-checked
    against its signed record) in a bound core, else the embedder's own."""
    from datetime import date

    if registry.commission is None:
        return [asdict(p) for p in registry.pias(agency_id)]
    today = date.today().isoformat()
    return [{"pia_id": p.pia_id, "agency_id": p.agency_id, "status": p.state, "level": p.level or "",
             "approved_on": p.approved_on or "", "expires_on": p.expires_on or "",
             "in_force": p.in_force(today) and registry.commission.proven(p), "decision": p.seq}
            for p in registry.commission.pias(agency_id)]


def cmd_pias(args: argparse.Namespace) -> int:
    with _registry(args) as registry:
        pias = _pias(registry, args.agency)
    emit(args.json, pias, PIA_COLUMNS, empty="(no PIAs)")
    return 0


def cmd_codes_translate(args: argparse.Namespace) -> int:
    with _core(args, "`codes translate`") as core:
        print(core.translate(args.from_agency, args.code, args.to_agency))
    return 0


def cmd_codes_release(args: argparse.Namespace) -> int:
    with _core(args, "`codes release`") as core:
        core.release(args.agency, args.code)
    print("released")
    return 0


def cmd_codes_holders(args: argparse.Namespace) -> int:
    with _core(args, "`codes holders`") as core:
        holders = core.codes.holders_of(args.agency, args.code)
    emit(args.json, [{"agency_id": a} for a in holders], [("agency_id", "HOLDER")])
    return 0


def cmd_codes_stats(args: argparse.Namespace) -> int:
    live = running(args)
    if live is not None:
        s = admin(live, "GetHoldingsStatistics", pb.GetHoldingsStatisticsRequest())
        counts, persons = dict(s.holdings_by_agency), int(s.persons)
    else:
        with _core(args, "`codes stats`") as core:
            counts, persons = core.codes.holdings_counts(), core.codes.person_count()
    rows = [{"agency_id": a, "holdings": n} for a, n in sorted(counts.items())]
    emit(args.json, rows, [("agency_id", "AGENCY"), ("holdings", "HOLDINGS")], empty="(no holdings)")
    if not args.json:
        print(f"total {sum(counts.values())} holdings of {persons} persons")
    return 0


def _epoch_row(e: pb.KeyEpoch) -> dict[str, Any]:
    state = "current" if e.current else ("retired" if e.HasField("retire_time") else "live")
    return {"epoch": e.epoch, "state": state, "created": jst(e.create_time.ToDatetime(tzinfo=UTC)),
            "retired": jst(e.retire_time.ToDatetime(tzinfo=UTC)) if e.HasField("retire_time") else ""}


def _offline_epochs(registry: AgencyRegistry) -> list[pb.KeyEpoch]:
    from renkei.service.core.admin import epoch_message

    current = registry.current_epoch()
    return [epoch_message(e, current) for e in registry.epochs()]


def cmd_codes_epochs(args: argparse.Namespace) -> int:
    live = running(args)
    if live is not None:
        epochs = list(admin(live, "ListKeyEpochs", pb.ListKeyEpochsRequest()).epochs)
    else:
        with _registry(args) as registry:
            epochs = _offline_epochs(registry)
    emit(args.json, [_epoch_row(e) for e in epochs],
         [("epoch", "EPOCH"), ("state", "STATE"), ("created", "CREATED"), ("retired", "RETIRED")])
    return 0


def cmd_codes_rotate(args: argparse.Namespace) -> int:
    live = running(args)
    if live is not None:
        epoch = admin(live, "RotateKeyEpoch", pb.RotateKeyEpochRequest()).epoch
    else:
        ensure_down(args, "an epoch rotation")
        with _registry(args, write=True) as registry:
            epoch = registry.rotate_epoch()
    print(f"key epoch {epoch} is now current: new codes are issued in it; older live epochs still decode")
    return 0


def cmd_codes_retire(args: argparse.Namespace) -> int:
    live = running(args)
    if live is not None:
        admin(live, "RetireKeyEpoch", pb.RetireKeyEpochRequest(epoch=args.epoch))
    else:
        ensure_down(args, "an epoch retirement")
        with _registry(args, write=True) as registry:
            registry.retire_epoch(args.epoch)
    print(f"key epoch {args.epoch} retired: its codes are refused from now on")
    return 0


def cmd_codes_checkpoint(args: argparse.Namespace) -> int:
    with _core(args, "`codes checkpoint`") as core:
        core.checkpoint()
    print("holdings snapshot written")
    return 0


def cmd_codes_verify(args: argparse.Namespace) -> int:
    from renkei._core import codes as _codes
    from renkei.linkage.core import Core
    from renkei.store import describe_store, store_conninfo

    data_dir = open_data_dir(args, "core")
    if store_conninfo(data_dir) is not None:
        # Loading checks every snapshot range's checksum and the log's dense person numbers.
        with Core(data_dir) as core:
            counts = core.codes.holdings_counts()
            store = core.codes.store
            loaded = store.loaded_from if store is not None else {}
            print(f"holdings on {describe_store(data_dir)} clean: {core.codes.person_count()} persons, "
                  f"{sum(counts.values())} holdings of {len(counts)} agencies ({loaded.get('snapshot_ranges', 0)} "
                  f"snapshot ranges, {loaded.get('events_replayed', 0)} event rows)")
        return 0
    r = _codes.verify_holdings(str(data_dir.file("holdings")))
    print(f"holdings clean: {r['persons']} persons, {r['holdings']} holdings of {r['agencies']} agencies "
          f"(snapshot={r['snapshot_loaded']}, {r['records']} journal records"
          + (f", an unacknowledged tail of {r['torn_tail_bytes']} bytes" if r["torn_tail_bytes"] else "") + ")")
    return 0


def cmd_codes_repair(args: argparse.Namespace) -> int:
    """Salvage a damaged holdings/ (the core stopped): report first; with --apply write it."""
    import datetime as dt

    from renkei._core import codes as _codes
    from renkei.errors import FailedPreconditionError
    from renkei.store import store_conninfo

    data_dir = open_data_dir(args, "core")
    if store_conninfo(data_dir) is not None:
        raise FailedPreconditionError("the holdings of this core are on PostgreSQL: there is no holdings/ to "
                                      "repair (the database's standby and backups are its recovery)")
    holdings = data_dir.file("holdings")
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
    client = client_parser()
    both = [common, client]
    ag = sub.add_parser("agency", help="agency and PIA registry").add_subparsers(dest="sub", required=True)
    r = ag.add_parser("register", parents=both, help="register an agency")
    r.add_argument("--name", required=True)
    r.add_argument("--type", action="append", required=True, help="a 別表第二 agency type id (repeatable)")
    r.add_argument("--corporate-number", required=True, help="the agency's own 法人番号")
    r.add_argument("--municipality-code", help="全国地方公共団体コード (local governments)")
    r.set_defaults(func=cmd_agency_register)
    from renkei.cli.core import register_agency_add

    register_agency_add(ag, both)
    ls = ag.add_parser("list", parents=both, help="list agencies")
    ls.add_argument("--type")
    ls.add_argument("--status")
    ls.set_defaults(func=cmd_agency_list)
    s = ag.add_parser("show", parents=both, help="one agency with its PIAs")
    s.add_argument("agency", type=int)
    s.set_defaults(func=cmd_agency_show)
    st = ag.add_parser("set-status", parents=both, help="activate, suspend or retire an agency")
    st.add_argument("agency", type=int)
    st.add_argument("status", choices=["active", "suspended", "retired"])
    st.set_defaults(func=cmd_agency_status)
    ag.add_parser("types", parents=[common], help="agency types of 別表第二").set_defaults(func=cmd_agency_types)
    pl = ag.add_parser("pias", parents=[common], help="an agency's PIAs: the commission's decisions the core holds")
    pl.add_argument("agency", type=int)
    pl.set_defaults(func=cmd_pias)

    co = sub.add_parser("codes", help="agency codes (機関別符号) and holdings")
    co = co.add_subparsers(dest="sub", required=True)
    t = co.add_parser("translate", parents=both, help="translate a code to another agency's (core stopped)")
    t.add_argument("from_agency", type=int)
    t.add_argument("code")
    t.add_argument("to_agency", type=int)
    t.set_defaults(func=cmd_codes_translate)
    rl = co.add_parser("release", parents=both, help="release a holding (core stopped)")
    rl.add_argument("agency", type=int)
    rl.add_argument("code")
    rl.set_defaults(func=cmd_codes_release)
    h = co.add_parser("holders", parents=both, help="agencies holding the person behind a code (core stopped)")
    h.add_argument("agency", type=int)
    h.add_argument("code")
    h.set_defaults(func=cmd_codes_holders)
    co.add_parser("stats", parents=both, help="holdings per agency").set_defaults(func=cmd_codes_stats)
    co.add_parser("epochs", parents=both, help="key epochs").set_defaults(func=cmd_codes_epochs)
    co.add_parser("rotate-epoch", parents=both, help="start a new key epoch").set_defaults(func=cmd_codes_rotate)
    re_ = co.add_parser("retire-epoch", parents=both, help="refuse all codes of an epoch")
    re_.add_argument("epoch", type=int)
    re_.set_defaults(func=cmd_codes_retire)
    co.add_parser("checkpoint", parents=both, help="snapshot the holdings (core stopped)").set_defaults(
        func=cmd_codes_checkpoint)
    co.add_parser("verify", parents=[common], help="check holdings/ without changing it (works while the core runs)"
                  ).set_defaults(func=cmd_codes_verify)
    rp = co.add_parser("repair", parents=[common],
                       help="salvage every readable record of a damaged holdings/ (the core stopped)")
    rp.add_argument("--apply", action="store_true",
                    help="write the repaired holdings (without it: report only); the originals are kept aside")
    rp.set_defaults(func=cmd_codes_repair)
