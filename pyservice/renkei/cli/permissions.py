"""``renkei permissions …`` and ``renkei permit …``.

    renkei permissions check   --requester-type T [...] [--municipality M] --affair A
                               --provider-type P [...] --item I [...] [--at ISO] [--table FILE ...]
    renkei permissions explain (same arguments; prints the rows behind the answer)
    renkei permissions versions          every version; which one is in force now
    renkei permissions diff OLD NEW      rows removed (-) and added (+) between two table files
    renkei permissions install FILE --actor WHO [--note WHY] [--staged]
    renkei permissions activate LABEL --actor WHO [--note WHY]     a staged version into force
    renkei permissions remove LABEL --actor WHO [--note WHY]
    renkei permissions history
    renkei permit verify TOKEN [--public-key HEX] [--now UNIX]
    renkei permit public-key             the core's verification key (hex) from the data dir

The bundled 2015 別表第二 is always loaded, then the versions installed in the data directory
(``permissions.sqlite3``, if there is one); ``--table`` adds or replaces versions. While the core
runs, ``install``, ``activate``, ``remove``, ``versions`` and ``history`` go through its
AdminService (as ``operator``): a change is in force for the next inquiry, and each says which
version is in force afterwards. With the core stopped they change or read the file directly
(see renkei.cli.live). Exit status: 0 allowed / valid, 1 denied / rejected (the message says
why), 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from renkei._proto.renkei.v1 import admin_service_pb2 as pb
from renkei.cli.common import client_parser, open_data_dir, service_path
from renkei.cli.live import Live, ensure_down, running
from renkei.cli.output import emit, jst
from renkei.errors import InvalidArgumentError


def _engine(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The bundled table, the active versions stored in the data directory (read-only: works
    while the core runs), and ``--table`` files."""
    from renkei.permissions.engine import PermissionEngine
    from renkei.permissions.store import PermissionStore

    path = service_path(args, "core")
    if (path / "permissions.sqlite3").exists():
        with PermissionStore(open_data_dir(args, "core"), read_only=True) as store:
            e = store.engine()
    else:
        e = PermissionEngine.with_default()
    for t in args.table or ():
        e.load(_read(t))
    return e


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InvalidArgumentError(f"cannot read {path}: {exc.strerror or exc}; check the path") from None


def _at(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidArgumentError(f"--at {text!r} is not an ISO 8601 instant") from exc
    if at.tzinfo is None:
        raise InvalidArgumentError("--at needs a UTC offset, e.g. 2020-04-01T09:00:00+09:00")
    return at


def _check(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from renkei.permissions.engine import AgencyFacts

    e = _engine(args)
    return e.check(AgencyFacts(args.requester_type, args.municipality), args.affair,
                   AgencyFacts(args.provider_type), args.item, _at(args.at))


def _result_json(r: Any) -> dict[str, Any]:
    def row(x: Any) -> dict[str, Any] | None:
        return None if x is None else {"ref": x.ref, "ko": x.ko, "municipality": x.municipality}

    return {
        "allowed": r.allowed, "outcome": r.outcome, "failed_item": r.failed_item,
        "matched_rows": [row(x) for x in r.matched_rows], "nearest_row": row(r.nearest_row),
        "version": r.version_label, "version_hash": r.version_hash.hex() if r.version_hash else None,
        "at": r.at.isoformat(),
    }


def cmd_check(args: argparse.Namespace) -> int:
    r = _check(args)
    if args.json:
        print(json.dumps(_result_json(r), ensure_ascii=False))
    elif r.allowed:
        print(f"ALLOW {', '.join(x.legal_reference for x in r.matched_rows)} (table {r.version_label})")
    else:
        near = f"; nearest {r.nearest_row.legal_reference}" if r.nearest_row else ""
        item = f" item {r.failed_item}" if r.failed_item else ""
        print(f"DENY {r.outcome}{item}{near}")
    return 0 if r.allowed else 1


def cmd_explain(args: argparse.Namespace) -> int:
    r = _check(args)
    print(r.explain())
    return 0 if r.allowed else 1


_VERSION_COLUMNS = [("label", "LABEL"), ("state", "STATE"), ("from", "FROM"), ("until", "UNTIL"),
                    ("rows", "ROWS"), ("sha256", "SHA-256")]


def _version_row(v: Any) -> dict[str, Any]:
    """A PermissionTableVersion (from the running core or the files) for output."""
    def at(field: str) -> Any:
        return v.__getattribute__(field).ToDatetime(tzinfo=UTC) if v.HasField(field) else None

    state = "in force" if v.in_force else ("active" if v.active else "staged")
    return {"label": v.label, "state": state, "from": jst(at("effective_from_time")),
            "until": jst(at("effective_to_time")) or "(open)", "rows": v.row_count, "sha256": v.version_hash,
            "description": v.description}


def _tables(args: argparse.Namespace, *, write: bool) -> Any:
    from renkei.permissions.tables import PermissionTables

    if write:
        ensure_down(args, "a table change")
    return PermissionTables.open(open_data_dir(args, "core"), read_only=not write)


def _admin(live: Live, method: str, request: Any) -> Any:
    from renkei.client import AdminServiceStub

    return live.call("operator", AdminServiceStub, method, request)


def _say_in_force(args: argparse.Namespace, current: Any, where: str) -> None:
    if args.json:
        return
    if current is None:
        print(f"in force now ({where}): no table version; every inquiry is refused")
    else:
        r = _version_row(current)
        print(f"in force now ({where}): {r['label']} from {r['from']} sha256:{r['sha256']}")


def _versions(args: argparse.Namespace) -> tuple[list[Any], str]:
    from renkei.service.core.admin import version_message

    live = None if args.table else running(args)
    if live is not None:
        return list(_admin(live, "ListPermissionTables", pb.ListPermissionTablesRequest()).versions), str(live)
    from renkei.permissions.tables import PermissionTables

    no_store = args.table and not (service_path(args, "core") / "permissions.sqlite3").exists()
    t = PermissionTables.bundled() if no_store else _tables(args, write=False)
    try:
        for f in args.table or ():
            try:
                t.add_file_version(json.loads(_read(f)), f"--table {f}")
            except ValueError as exc:
                raise InvalidArgumentError(f"{f} is not a table version ({exc}); pass a renkei-permissions/1 "
                                           f"file") from None
        return [version_message(v) for v in t.versions()], "files, core stopped"
    finally:
        t.close()


def cmd_versions(args: argparse.Namespace) -> int:
    versions, where = _versions(args)
    emit(args.json, [_version_row(v) for v in versions], _VERSION_COLUMNS)
    _say_in_force(args, next((v for v in versions if v.in_force), None), where)
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from renkei.permissions.engine import diff

    try:
        old, new = json.loads(_read(args.old)), json.loads(_read(args.new))
    except ValueError as exc:
        raise InvalidArgumentError(f"a table file is not JSON ({exc}); pass renkei-permissions/1 files") from None
    removed, added = diff(old, new)
    for sign, rows in (("-", removed), ("+", added)):
        for r in rows:
            muni = f" municipality={r['municipality']}" if r.get("municipality") else ""
            print(f"{sign} {r['ref']} affair={r['affair']} requesters={','.join(r['requesters'])} "
                  f"providers={','.join(r['providers'])} items={','.join(r['items'])}{muni}")
    print(f"{len(removed)} removed, {len(added)} added", file=sys.stderr)
    return 0


def _changed(args: argparse.Namespace, verb: str, v: Any, current: Any, where: str) -> None:
    r = _version_row(v) if v is not None else None
    if args.json:
        out: dict[str, Any] = {"action": verb, "version": r,
                               "in_force": _version_row(current) if current is not None else None}
        print(json.dumps(out, ensure_ascii=False))
        return
    if r is not None:
        print(f"{verb} {r['label']} sha256:{r['sha256']} ({r['state']}, from {r['from']}, {r['rows']} rows)")
    _say_in_force(args, current, where)


def _current_from(versions: list[Any]) -> Any:
    return next((v for v in versions if v.in_force), None)


def cmd_install(args: argparse.Namespace) -> int:
    from renkei.service.core.admin import version_message

    data = _read(args.file)
    live = running(args)
    if live is not None:
        v = _admin(live, "LoadPermissionTable", pb.LoadPermissionTableRequest(
            table_json=data, actor=args.actor, note=args.note or "", staged=args.staged))
        versions = list(_admin(live, "ListPermissionTables", pb.ListPermissionTablesRequest()).versions)
        _changed(args, "staged" if args.staged else "installed", v, _current_from(versions), str(live))
        return 0
    t = _tables(args, write=True)
    try:
        rec = t.load(data, "", "", "", actor=args.actor, note=args.note, staged=args.staged)
        current = t.in_force()
    finally:
        t.close()
    _changed(args, "staged" if args.staged else "installed", version_message(rec),
             None if current is None else version_message(current), "files, core stopped")
    return 0


def cmd_activate(args: argparse.Namespace) -> int:
    from renkei.service.core.admin import version_message

    live = running(args)
    if live is not None:
        v = _admin(live, "ActivatePermissionTable",
                   pb.ActivatePermissionTableRequest(label=args.label, actor=args.actor, note=args.note or ""))
        versions = list(_admin(live, "ListPermissionTables", pb.ListPermissionTablesRequest()).versions)
        _changed(args, "activated", v, _current_from(versions), str(live))
        return 0
    t = _tables(args, write=True)
    try:
        rec = t.activate(args.label, actor=args.actor, note=args.note)
        current = t.in_force()
    finally:
        t.close()
    _changed(args, "activated", version_message(rec), None if current is None else version_message(current),
             "files, core stopped")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from renkei.service.core.admin import version_message

    live = running(args)
    if live is not None:
        r = _admin(live, "RemovePermissionTable",
                   pb.RemovePermissionTableRequest(label=args.label, actor=args.actor, note=args.note or ""))
        if not args.json:
            print(f"removed {args.label}")
        _changed(args, "removed", None, r.in_force if r.HasField("in_force") else None, str(live))
        return 0
    t = _tables(args, write=True)
    try:
        current = t.remove(args.label, actor=args.actor, note=args.note)
    finally:
        t.close()
    if not args.json:
        print(f"removed {args.label}")
    _changed(args, "removed", None, None if current is None else version_message(current), "files, core stopped")
    return 0


_HISTORY_COLUMNS = [("seq", "#"), ("time", "TIME"), ("action", "ACTION"), ("label", "LABEL"),
                    ("sha256", "SHA-256"), ("actor", "BY"), ("note", "NOTE")]


def cmd_history(args: argparse.Namespace) -> int:
    from renkei.service.core.admin import change_message

    live = running(args)
    if live is not None:
        changes = list(_admin(live, "ListPermissionTableHistory", pb.ListPermissionTableHistoryRequest()).changes)
    else:
        from renkei.permissions.store import PermissionStore

        with PermissionStore(open_data_dir(args, "core"), read_only=True) as store:
            changes = [change_message(h) for h in store.history()]
    rows = [{"seq": c.sequence, "time": jst(c.time.ToDatetime(tzinfo=UTC), seconds=True), "action": c.action,
             "label": c.label, "sha256": c.version_hash[:16], "actor": c.actor, "note": c.note} for c in changes]
    if args.json:
        for c, r in zip(changes, rows, strict=True):
            print(json.dumps({**r, "sha256": c.version_hash}, ensure_ascii=False))
    else:
        emit(False, rows, _HISTORY_COLUMNS, empty="(no table changes)")
    return 0


def cmd_permit_verify(args: argparse.Namespace) -> int:
    from renkei.permits import public_key_of, verify_permit

    if args.public_key:
        try:
            pk = bytes.fromhex(args.public_key)
        except ValueError as exc:
            raise InvalidArgumentError("--public-key must be 64 hex digits") from exc
    else:
        pk = public_key_of(open_data_dir(args, "core"))
    token = sys.stdin.read().strip() if args.token == "-" else args.token
    p = verify_permit(token, pk, args.now)
    out = {
        "valid": True, "permit_id": p.permit_id.hex(), "requester": p.requester, "provider": p.provider,
        "person": p.person_code_text, "affair": p.affair, "items": list(p.items),
        "table_version": p.table_version.hex(), "ledger_seq": p.ledger_seq,
        "issued_at": p.issued_at, "expires_at": p.expires_at,
    }
    print(json.dumps(out, ensure_ascii=False))
    return 0


def cmd_permit_public_key(args: argparse.Namespace) -> int:
    from renkei.permits import public_key_of

    print(public_key_of(open_data_dir(args, "core")).hex())
    return 0


def _check_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--requester-type", action="append", required=True, help="agency type id (repeatable)")
    p.add_argument("--municipality", help="requester's 6-digit 全国地方公共団体コード (ordinance rows)")
    p.add_argument("--affair", required=True, help="affair id, permit code or 事務手続コード")
    p.add_argument("--provider-type", action="append", required=True, help="agency type id (repeatable)")
    p.add_argument("--item", action="append", required=True, help="item id, code or 特定個人情報名コード")
    p.add_argument("--at", help="instant (ISO 8601 with offset; default now)")
    p.add_argument("--table", action="append", help="extra table version file (repeatable)")


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    top = sub.add_parser("permissions", help="番号法 別表第二 permission tables")
    perm = top.add_subparsers(dest="sub", required=True)
    c = perm.add_parser("check", parents=[common], help="allow or deny one inquiry")
    _check_args(c)
    c.set_defaults(func=cmd_check)
    x = perm.add_parser("explain", parents=[common], help="why an inquiry is allowed or denied")
    _check_args(x)
    x.set_defaults(func=cmd_explain)
    client = client_parser()
    v = perm.add_parser("versions", parents=[common, client], help="table versions; which one is in force")
    v.add_argument("--table", action="append", help="also this table file (read from the files, not the core)")
    v.set_defaults(func=cmd_versions)
    d = perm.add_parser("diff", parents=[common], help="rows removed and added between two tables")
    d.add_argument("old")
    d.add_argument("new")
    d.set_defaults(func=cmd_diff)
    i = perm.add_parser("install", parents=[common, client],
                        help="install a table version (in force from its start, live if the core runs)")
    i.add_argument("file")
    i.add_argument("--actor", required=True, help="who installs it (recorded in the history)")
    i.add_argument("--note", help="legal basis or reason, recorded in the history")
    i.add_argument("--staged", action="store_true", help="store only; `permissions activate` puts it into force")
    i.set_defaults(func=cmd_install)
    a = perm.add_parser("activate", parents=[common, client], help="put a staged table version into force")
    a.add_argument("label")
    a.add_argument("--actor", required=True)
    a.add_argument("--note")
    a.set_defaults(func=cmd_activate)
    rm = perm.add_parser("remove", parents=[common, client], help="take an installed table version out of force")
    rm.add_argument("label")
    rm.add_argument("--actor", required=True)
    rm.add_argument("--note")
    rm.set_defaults(func=cmd_remove)
    hi = perm.add_parser("history", parents=[common, client], help="installs, activations and removals")
    hi.set_defaults(func=cmd_history)

    pm = sub.add_parser("permit", help="provision permits").add_subparsers(dest="sub", required=True)
    pv = pm.add_parser("verify", parents=[common], help="verify a permit offline ('-' reads stdin)")
    pv.add_argument("token")
    pv.add_argument("--public-key", help="core public key, hex (default: from the data directory)")
    pv.add_argument("--now", type=int, default=None, help="Unix seconds (default now)")
    pv.set_defaults(func=cmd_permit_verify)
    pk = pm.add_parser("public-key", parents=[common], help="the core's permit-verification key (hex)")
    pk.set_defaults(func=cmd_permit_public_key)
