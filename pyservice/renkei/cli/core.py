"""``renkei core …``: the linkage core's service (情報提供ネットワークシステム).

    renkei core init [--demo] [--commission-vkey VKEY] [--store URL]   create the core's data directory
                                          (keys, registry, ledger), bound to the commission's PIA decision
                                          log; --store postgresql://… keeps the registry and permission
                                          versions there (docs/arch/store.md); --demo registers the demo
                                          agencies (their PIAs: the commission's); --tiles s3://…
                                          --tiles-credentials FILE puts the ledger's tiles in an object store
    renkei core serve [--store URL] …     Linkage/Oversight/Admin/PersonLink on mutual TLS, Disclosure public
    renkei core status                    agencies, ledger size (reads files; works while it runs)
    renkei core migrate-store --store URL [--tiles S3_URL --tiles-credentials FILE]
                                          move a stopped embedded core onto PostgreSQL (every component,
                                          the holdings, the ledger's same tree), then bind it; progress on stderr
    renkei agency add --name … --type …   register an agency and issue its certificate from the PKI
                                          directory (its PIA: renkei ppc submit / approve)
"""

from __future__ import annotations

import argparse
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
from renkei.cli.live import running
from renkei.cli.output import emit_one


def cmd_init(args: argparse.Namespace) -> int:
    from renkei.service.core import init_data_dir

    d = init_data_dir(service_path(args, "core"), demo=args.demo, commission_vkey=args.commission_vkey,
                      store=args.store, tiles=args.tiles, tiles_credentials=args.tiles_credentials)
    print(f"core data directory ready: {d.path.resolve()}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from renkei.errors import FailedPreconditionError
    from renkei.linkage.commission import bound_vkey
    from renkei.service.core import build
    from renkei.store import require_store
    from renkei.witness.client import WitnessEndpoint

    setup_logging(args, "core")
    data_dir = open_data_dir(args, "core")
    require_store(data_dir, args.store)
    if bound_vkey(data_dir) is None:
        raise FailedPreconditionError(
            f"{data_dir.path} is bound to no commission: agencies need PIAs the commission approved; run `renkei core "
            f"init --data-dir {data_dir.path} --commission-vkey VKEY` with the key `renkei ppc vkey` prints")
    witnesses = [WitnessEndpoint.parse(w) for w in args.witness or []]
    process = build(service_config(args, "core", data_dir), data_dir, witnesses,
                    witness_quorum=args.witness_quorum, witness_interval=args.witness_interval)
    return run_service(args, process, [f"witness    {w.url} ({w.name})" for w in witnesses])


def cmd_status(args: argparse.Namespace) -> int:
    """Read-only (no lock, nothing created): works while the core runs."""
    from renkei.ledger import ledger_vkey, verify_checkpoint
    from renkei.linkage.registry import AgencyRegistry
    from renkei.store import describe_store, store_conninfo

    data_dir = open_data_dir(args, "core")
    with AgencyRegistry(data_dir, read_only=True) as registry:
        agencies = registry.agencies()
        epoch = registry.current_epoch()
    path, vkey = ledger_vkey(data_dir)
    conninfo = store_conninfo(data_dir)
    if conninfo is not None:  # the ledger is in the database (read-only there too)
        from renkei.store.pgledger import stored_checkpoint

        note = stored_checkpoint(conninfo)
        size = 0 if note is None else verify_checkpoint(note, vkey).size
    else:
        size = verify_checkpoint((path / "checkpoint").read_bytes(), vkey).size if (path / "checkpoint").exists() else 0
    live = running(args)
    emit_one(args.json, {"core": str(data_dir.path.resolve()), "store": describe_store(data_dir),
                         "running": str(live) if live else "no",
                         "agencies": len(agencies), "key_epoch": epoch, "ledger_records": size})
    return 0


def cmd_migrate_store(args: argparse.Namespace) -> int:
    """Move the stopped embedded core onto PostgreSQL (renkei.store.migrate); progress lines on
    stderr, the summary on stdout."""
    import sys

    from renkei.store.migrate import migrate_store

    def progress(line: str) -> None:
        print(f"renkei: migrate-store: {line}", file=sys.stderr, flush=True)

    report = migrate_store(service_path(args, "core"), args.store, tiles=args.tiles,
                           tiles_credentials=args.tiles_credentials, progress=progress)
    out = report.to_json()
    if not args.json:
        out = {k: v for k, v in out.items() if k not in ("components", "seconds")} | {
            "component_rows": sum(sum(t.values()) for t in report.components.values()),
            "seconds": round(report.seconds.get("total", 0.0), 1)}
    emit_one(args.json, out)
    return 0


def cmd_agency_add(args: argparse.Namespace) -> int:
    """Register an agency (through the running core when it is up) and issue its client
    certificate from the PKI directory (its PIA: the commission's, renkei ppc)."""
    from renkei.cli.agency import agency_row, create_agency
    from renkei.pki.ca import DevelopmentCA

    ca = DevelopmentCA(args.pki or service_path(args, "core").parent / "pki")
    a = create_agency(args, args.name, args.type, args.corporate_number, args.municipality_code)
    paths = ca.issue_agency_certificate(a.agency_id, a.name)
    emit_one(args.json, {**agency_row(a), **paths.to_json()})
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    g = sub.add_parser("core", help="the linkage core's service").add_subparsers(dest="sub", required=True)
    i = g.add_parser("init", parents=[common], help="create the core's data directory and keys")
    i.add_argument("--demo", action="store_true", help="register the demo agencies")
    i.add_argument("--commission-vkey", help="bind to the commission's PIA decision log (its verifier key, "
                                             "`renkei ppc vkey`); fixed once set")
    i.add_argument("--store", metavar="URL",
                   help="'embedded' (default: SQLite in the data directory) or postgresql://… (libpq URL; may name "
                        "a primary and its standby with target_session_attrs=read-write): where the registry and "
                        "the permission versions live; fixed once set (docs/arch/store.md)")
    i.add_argument("--tiles", metavar="S3_URL",
                   help="with --store postgresql://…: write the ledger's tiles and bundles to this S3-compatible "
                        "object store (s3://bucket/prefix?endpoint=https://…&region=…) instead of PostgreSQL; "
                        "fixed once set")
    i.add_argument("--tiles-credentials", metavar="FILE",
                   help="the object store's key: a JSON file {access_key_id, secret_access_key}, mode 0600 "
                        "(copied into the data directory)")
    i.set_defaults(func=cmd_init)
    s = g.add_parser("serve", parents=[common], help="serve the core (mutual TLS + public port)")
    add_serve_arguments(s, port=50051, public_port=50052)
    s.add_argument("--witness", action="append", metavar="URL=VKEY",
                   help="a C2SP witness to submit checkpoints to: its URL prefix and cosignature/v1 verifier key "
                        "(repeatable)")
    s.add_argument("--witness-quorum", type=int, default=1,
                   help="cosignatures a checkpoint needs before readers are given it (default 1)")
    s.add_argument("--witness-interval", type=float, default=1.0,
                   help="seconds between submissions of a growing ledger (sooner when a reader waits)")
    s.add_argument("--store", metavar="URL",
                   help="the store the data directory must be bound to ('embedded' or postgresql://…; "
                        "default: whatever `core init --store` bound it to)")
    s.set_defaults(func=cmd_serve)
    g.add_parser("status", parents=[common, client_parser()], help="agencies and ledger size").set_defaults(
        func=cmd_status)
    m = g.add_parser("migrate-store", parents=[common],
                     help="move a stopped embedded core onto PostgreSQL (docs/OPERATIONS.md)")
    m.add_argument("--store", metavar="URL", required=True,
                   help="the PostgreSQL database to move the core to (postgresql://…; empty: no core's schemas)")
    m.add_argument("--tiles", metavar="S3_URL",
                   help="put the ledger's tiles and bundles in this S3-compatible object store instead of PostgreSQL")
    m.add_argument("--tiles-credentials", metavar="FILE",
                   help="the object store's key: a JSON file {access_key_id, secret_access_key}, mode 0600")
    m.set_defaults(func=cmd_migrate_store)


def register_agency_add(agency_group: Any, parents: list[argparse.ArgumentParser]) -> None:
    """``renkei agency add`` (added to the ``agency`` group)."""
    p = agency_group.add_parser("add", parents=parents, help="register an agency and issue its certificate")
    p.add_argument("--name", required=True)
    p.add_argument("--type", action="append", required=True, help="a 別表第二 agency type id (repeatable)")
    p.add_argument("--corporate-number", help="法人番号 (derived for local governments when omitted)")
    p.add_argument("--municipality-code", help="全国地方公共団体コード (local governments)")
    p.set_defaults(func=cmd_agency_add)
