"""``renkei permissions …`` and ``renkei permit …``.

    renkei permissions check   --requester-type T [...] [--municipality M] --affair A
                               --provider-type P [...] --item I [...] [--at ISO] [--table FILE ...]
    renkei permissions explain (same arguments; prints the rows behind the answer)
    renkei permissions versions [--table FILE ...]
    renkei permissions diff OLD NEW      rows removed (-) and added (+) between two table files
    renkei permissions install FILE --actor WHO [--note WHY] | remove LABEL --actor WHO | history
    renkei permit verify TOKEN [--public-key HEX] [--now UNIX]
    renkei permit public-key             the core's verification key (hex) from the data dir

The bundled 2015 別表第二 is always loaded, then the versions installed in the data directory
(``permissions.sqlite3``, if there is one); ``--table`` adds or replaces versions. Exit status:
0 allowed / valid, 1 denied / rejected (the message says why), 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from renkei.cli.common import open_data_dir, service_path
from renkei.errors import InvalidArgumentError


def _engine(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from renkei.permissions.engine import PermissionEngine
    from renkei.permissions.store import PermissionStore

    path = service_path(args, "core")
    if (path / "permissions.sqlite3").exists():
        with PermissionStore(open_data_dir(args, "core")) as store:
            e = store.engine()
    else:
        e = PermissionEngine.with_default()
    for t in args.table or ():
        e.load(Path(t))
    return e


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


def cmd_versions(args: argparse.Namespace) -> int:
    for v in _engine(args).versions():
        until = v.effective_until.isoformat() if v.effective_until else "(open)"
        print(f"{v.label}  from {v.effective_from.isoformat()} until {until}  rows {v.rows}  "
              f"keys {v.keys}  sha256:{v.hash.hex()}")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from renkei.permissions.engine import diff

    try:
        old = json.loads(Path(args.old).read_text(encoding="utf-8"))
        new = json.loads(Path(args.new).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidArgumentError(f"cannot read table: {exc}") from exc
    removed, added = diff(old, new)
    for sign, rows in (("-", removed), ("+", added)):
        for r in rows:
            muni = f" municipality={r['municipality']}" if r.get("municipality") else ""
            print(f"{sign} {r['ref']} affair={r['affair']} requesters={','.join(r['requesters'])} "
                  f"providers={','.join(r['providers'])} items={','.join(r['items'])}{muni}")
    print(f"{len(removed)} removed, {len(added)} added", file=sys.stderr)
    return 0


def cmd_install(args: argparse.Namespace) -> int:
    from renkei.permissions.store import PermissionStore

    with PermissionStore(open_data_dir(args, "core")) as store:
        h = store.install(Path(args.file), actor=args.actor, note=args.note)
    print(f"installed sha256:{h.hex()}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from renkei.permissions.store import PermissionStore

    with PermissionStore(open_data_dir(args, "core")) as store:
        store.remove(args.label, actor=args.actor, note=args.note)
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from renkei.permissions.store import PermissionStore

    with PermissionStore(open_data_dir(args, "core")) as store:
        for h in store.history():
            digest = f" sha256:{h.hash.hex()}" if h.hash else ""
            note = f" ({h.note})" if h.note else ""
            print(f"#{h.seq} {datetime.fromtimestamp(h.at).astimezone().isoformat()} {h.action} {h.label}"
                  f"{digest} by {h.actor}{note}")
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
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_check)
    x = perm.add_parser("explain", parents=[common], help="why an inquiry is allowed or denied")
    _check_args(x)
    x.set_defaults(func=cmd_explain)
    v = perm.add_parser("versions", parents=[common], help="loaded table versions and hashes")
    v.add_argument("--table", action="append")
    v.set_defaults(func=cmd_versions)
    d = perm.add_parser("diff", parents=[common], help="rows removed and added between two tables")
    d.add_argument("old")
    d.add_argument("new")
    d.set_defaults(func=cmd_diff)
    i = perm.add_parser("install", parents=[common], help="store a table version in the data directory")
    i.add_argument("file")
    i.add_argument("--actor", required=True, help="who installs it (recorded in the history)")
    i.add_argument("--note", help="legal basis or reason, recorded in the history")
    i.set_defaults(func=cmd_install)
    rm = perm.add_parser("remove", parents=[common], help="remove an installed table version")
    rm.add_argument("label")
    rm.add_argument("--actor", required=True)
    rm.add_argument("--note")
    rm.set_defaults(func=cmd_remove)
    hi = perm.add_parser("history", parents=[common], help="installs and removals, oldest first")
    hi.set_defaults(func=cmd_history)

    pm = sub.add_parser("permit", help="provision permits").add_subparsers(dest="sub", required=True)
    pv = pm.add_parser("verify", parents=[common], help="verify a permit offline ('-' reads stdin)")
    pv.add_argument("token")
    pv.add_argument("--public-key", help="core public key, hex (default: from the data directory)")
    pv.add_argument("--now", type=int, default=None, help="Unix seconds (default now)")
    pv.set_defaults(func=cmd_permit_verify)
    pk = pm.add_parser("public-key", parents=[common], help="the core's permit-verification key (hex)")
    pk.set_defaults(func=cmd_permit_public_key)
