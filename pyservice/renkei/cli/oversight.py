"""``renkei oversight …``: the commission's (個人情報保護委員会) tools.

    renkei oversight audit --box READY --out DIR       audit through OversightService (principal oversight)
    renkei oversight audit --ledger-dir D --agencies F --witness-url URL --log-vkey K --witness-vkey K --out DIR
    renkei oversight agencies --box READY > agencies.json

The audit verifies the cosigned checkpoint (the log's key AND every ``--witness-vkey``), hashes
every record up to its root, re-checks each permitted record against the commission's own table
versions (the bundled 別表第二 plus every ``--table``: a file, or the name of a version shipped with
renkei such as ``self-disclosure-2024``, the portal's 自己情報表示 rows; a version shipped with renkei is
also taken, without ``--table``, when the records name it by hash) in force at its time, and looks for anomalies
per agency. It writes report.md, audit.json and PNG plots to ``--out``. Exit status 0; 3 with
``--fail-on-findings`` when there is a violation; 1 when the checkpoint or the tree does not verify.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from renkei.errors import InvalidArgumentError


def _box(args: argparse.Namespace) -> tuple[str, Path, dict[str, Any]]:
    info = json.loads(Path(args.box).read_text())
    return str(info["services"]["core"]["grpc"]), Path(info["pki"]), info


def _source(args: argparse.Namespace) -> Any:
    from renkei.oversight.sources import OversightSource

    if args.box:
        target, pki, _ = _box(args)
        return OversightSource(target, pki)
    if args.core:
        if not args.pki:
            raise InvalidArgumentError("--core needs --pki (the directory with clients/oversight/)")
        return OversightSource(args.core, args.pki)
    return None


def table_file(name: str) -> Path:
    """A table version's file: a path, or the name of one shipped with renkei (e.g.
    ``self-disclosure-2024``, the portal's 自己情報表示 version: renkei/data/permissions/)."""
    path = Path(name)
    if path.exists():
        return path
    from renkei.permissions.engine import default_table_path

    shipped = default_table_path().parent / f"{name}.json"
    if "/" not in name and shipped.exists():
        return shipped
    raise InvalidArgumentError(f"--table {name!r}: no such file, nor a table version shipped with renkei "
                               f"({', '.join(sorted(p.stem for p in shipped.parent.glob('*.json')))})")


def shipped_tables() -> list[Path]:
    """The table versions shipped with renkei besides the bundled 別表第二 (e.g. the portal's
    自己情報表示 rows): the audit takes one when the ledger's records name it."""
    from renkei.permissions.engine import default_table_path

    bundled = default_table_path()
    return sorted(p for p in bundled.parent.glob("*.json") if p != bundled)


def cmd_audit(args: argparse.Namespace) -> int:
    from renkei.errors import InvalidArgumentError, NoteError
    from renkei.oversight import anomalies, audit, report, sources
    from renkei.permissions.engine import PermissionEngine
    from renkei.witness.note import Verifier

    engine = PermissionEngine() if args.no_default_table else PermissionEngine.with_default()
    for t in args.table or []:
        engine.load(table_file(t))
    log_vkey, witness_vkeys = args.log_vkey, list(args.witness_vkey or [])
    if args.box:
        _, pki, info = _box(args)
        if log_vkey is None:  # the box publishes its ledger's verifier key next to the ledger
            log_vkey = (pki.parent / "core" / "ledger" / "vkey").read_text().strip()
        if not witness_vkeys and info["services"].get("witness", {}).get("vkey"):
            witness_vkeys = [info["services"]["witness"]["vkey"]]
    if not log_vkey:
        raise InvalidArgumentError("--log-vkey is required (the ledger's note verifier key)")
    if not witness_vkeys:
        raise InvalidArgumentError("--witness-vkey is required: the audit trusts only a cosigned checkpoint")
    src = _source(args)
    try:
        if src is not None:
            note, agencies, name = src.checkpoint(), src.agencies(), src.name
        else:
            if not args.ledger_dir or not args.agencies:
                raise InvalidArgumentError("give --box, --core or --ledger-dir with --agencies")
            origin = Verifier.parse(log_vkey).name
            if args.checkpoint:
                note = Path(args.checkpoint).read_bytes()
            elif args.witness_url:
                note = sources.witness_checkpoint(args.witness_url, origin)
            else:
                raise InvalidArgumentError("--ledger-dir needs --checkpoint or --witness-url")
            agencies, name = sources.agencies_file(Path(args.agencies)), f"tiles in {args.ledger_dir}"
        try:
            cc = audit.check_checkpoint(note, log_vkey, witness_vkeys)
            entries = src.entries(cc.checkpoint.size) if src is not None else \
                sources.directory_entries(Path(args.ledger_dir), cc.checkpoint.size)
            result = audit.audit(note, log_vkey, witness_vkeys, entries, agencies, engine,
                                 shipped=[] if args.no_default_table else shipped_tables())
        except NoteError as e:
            print(f"renkei: AUDIT FAILED: {e}")
            return 1
    finally:
        if src is not None:
            src.close()
    profiles, found = anomalies.detect(result.records)
    rep = report.write(Path(args.out), result, profiles, found, agencies, name)
    v = result.violations
    print(f"audited {len(result.records)} records up to the cosigned checkpoint of size "
          f"{result.checkpoint.checkpoint.size} ({', '.join(w.name for w in result.checkpoint.witnesses)})")
    print(f"findings: {len(v)} violation(s), {len(result.findings) - len(v)} note(s); anomalies: {len(found)}")
    for f in v:
        print(f"  record {f.seq}: {f.kind}: {f.detail}")
    print(f"report: {rep.markdown}  data: {rep.json}")
    return 3 if v and args.fail_on_findings else 0


def cmd_agencies(args: argparse.Namespace) -> int:
    from renkei.oversight.sources import agencies_json

    src = _source(args)
    if src is None:
        raise InvalidArgumentError("give --box (a running box's directory) or --core with --pki")
    try:
        print(agencies_json(src.agencies()))
    finally:
        src.close()
    return 0


def _where(p: argparse.ArgumentParser) -> None:
    p.add_argument("--box", help="the ready file of `renkei up` (core endpoint, PKI, witness key)")
    p.add_argument("--core", help="the core's mutual-TLS endpoint host:port")
    p.add_argument("--pki", help="the PKI directory with the oversight client certificate")


def register(sub: Any) -> None:
    g = sub.add_parser("oversight", help="the commission's audit of the ledger").add_subparsers(dest="sub",
                                                                                              required=True)
    a = g.add_parser("audit", help="verify the cosigned ledger and re-check every record against the law")
    _where(a)
    a.add_argument("--ledger-dir", help="read entry bundles (tlog-tiles) from this directory instead")
    a.add_argument("--agencies", help="with --ledger-dir: agencies JSON (renkei oversight agencies)")
    a.add_argument("--checkpoint", help="with --ledger-dir: a file with the cosigned checkpoint")
    a.add_argument("--witness-url", help="with --ledger-dir: fetch the cosigned checkpoint from this witness")
    a.add_argument("--log-vkey", help="the ledger's note verifier key (default with --box: the box's)")
    a.add_argument("--witness-vkey", action="append", help="a witness whose cosignature is required (repeatable)")
    a.add_argument("--table", action="append",
                   help="a permission table version (renkei-permissions/1 JSON), or the name of one shipped with "
                        "renkei: self-disclosure-2024 = the portal's 自己情報表示 version (repeatable)")
    a.add_argument("--no-default-table", action="store_true",
                   help="do not load the bundled 別表第二, nor the versions shipped with renkei that the records name")
    a.add_argument("--out", required=True, help="directory for report.md, audit.json and the plots")
    a.add_argument("--fail-on-findings", action="store_true", help="exit 3 when a violation is found")
    a.set_defaults(func=cmd_audit)
    ag = g.add_parser("agencies", help="the agencies' facts as JSON (for --ledger-dir audits)")
    _where(ag)
    ag.set_defaults(func=cmd_agencies)
