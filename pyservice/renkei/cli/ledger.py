"""``renkei ledger …``: the provision ledger (情報提供等記録) from the command line.

    renkei ledger verify                     the operator's check of the core's ledger (every file)
    renkei ledger verify --dir D --vkey V    any C2SP tlog-tiles log, from its public key alone
    renkei ledger checkpoint                 print the latest signed checkpoint
    renkei ledger prove-inclusion SEQ [--size N]
    renkei ledger prove-consistency OLD NEW

``verify`` exits 1 and names the first damaged record or file. While the core runs,
``checkpoint`` and the proofs come from its OversightService (as ``oversight``, see
renkei.cli.live) and are verified here; with the core stopped they are read from the ledger's
files (read-only for ``verify`` and ``checkpoint``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from renkei._proto.renkei.v1 import oversight_service_pb2 as pb
from renkei.cli.common import client_parser, open_data_dir
from renkei.cli.live import Live, need_down, running
from renkei.datadir import DataDir
from renkei.errors import LedgerDamageError, NotFoundError


def _data_dir(args: argparse.Namespace) -> DataDir:
    data_dir = open_data_dir(args, "core")
    if not (data_dir.path / "ledger").is_dir():
        raise NotFoundError(f"{data_dir.path} has no ledger/; restore it from the backup (`renkei core init` "
                            f"creates it)")
    return data_dir


def _oversight(live: Live, method: str, request: Any) -> Any:
    from renkei.client import OversightServiceStub

    return live.call("oversight", OversightServiceStub, method, request)


def _root_at(live: Live, size: int) -> bytes:
    latest = _oversight(live, "GetLatestCheckpoint", pb.GetLatestCheckpointRequest())
    if size == latest.tree_size:
        return bytes(latest.root_hash)
    return bytes(_oversight(live, "GetCheckpoint", pb.GetCheckpointRequest(tree_size=size)).root_hash)


def cmd_verify(args: argparse.Namespace) -> int:
    from renkei.ledger import ledger_vkey, open_ledger, verify_ledger_dir, verify_log_dir
    from renkei.store import store_conninfo

    if (args.dir is None) != (args.vkey is None):
        print("ledger verify: give both --dir and --vkey (any log, public key only), or neither "
              "(the core's own ledger in --data-dir)", file=sys.stderr)
        return 2
    try:
        if args.dir is not None:
            vkey = args.vkey
            if vkey.startswith("@"):
                vkey = Path(vkey[1:]).read_text().strip()
            renkei = {"auto": None, "renkei": True, "any": False}[args.entries]
            report = verify_log_dir(args.dir, vkey, args.origin, renkei)
        else:
            data_dir = _data_dir(args)
            if store_conninfo(data_dir) is not None:
                # On PostgreSQL: every tile, bundle and opening, from the database (read-only).
                with open_ledger(data_dir, background=False) as lg:
                    report = lg.verify()
            else:
                path, vkey = ledger_vkey(data_dir)
                report = verify_ledger_dir(path, vkey)
    except LedgerDamageError as e:
        where = f"record {e.record} in {e.path}" if e.record is not None else f"file {e.path}"
        print(f"ledger verify FAILED: {where}: {e}", file=sys.stderr)
        return 1
    what = "renkei records (layout, sequence numbers)" if report["renkei"] else "entries (opaque)"
    print(f"ledger OK: {report['size']} records ({report['records_checked']} bodies rechecked as {what}, "
          f"{report['records_retained_away']} retired by retention), {report['tiles_checked']} tiles, "
          f"{report['openings_checked']} openings, {report['checkpoints_checked']} stored checkpoints, "
          f"{report['wal_frames_checked']} write-ahead frames valid")
    return 0


def cmd_checkpoint(args: argparse.Namespace) -> int:
    from renkei.ledger import ledger_vkey, open_ledger, verify_checkpoint
    from renkei.store import store_conninfo

    live = running(args)
    if live is not None:
        note = bytes(_oversight(live, "GetLatestCheckpoint", pb.GetLatestCheckpointRequest()).note).decode()
    else:
        note = None
    # The note is checked against the core's ledger key either way (read-only).
    data_dir = _data_dir(args)
    path, vkey = ledger_vkey(data_dir)
    if note is None and store_conninfo(data_dir) is not None:
        with open_ledger(data_dir, background=False) as lg:
            note = lg.checkpoint().note
    text = note if note is not None else (path / "checkpoint").read_text()
    sys.stdout.write(verify_checkpoint(text.encode(), vkey).note)
    return 0


def _print(d: dict[str, Any]) -> None:
    print(json.dumps(d, indent=2))


def cmd_prove_inclusion(args: argparse.Namespace) -> int:
    from renkei.ledger import InclusionProof, open_ledger

    live = running(args)
    if live is not None:
        r = _oversight(live, "GetInclusionProof", pb.GetInclusionProofRequest(leaf_index=args.seq,
                                                                                tree_size=args.size or 0))
        p = InclusionProof(r.leaf_index, r.tree_size, bytes(r.leaf_hash), [bytes(h) for h in r.hashes],
                           _root_at(live, r.tree_size))
    else:
        need_down(args, "`ledger prove-inclusion`")
        with open_ledger(_data_dir(args), background=False) as lg:
            p = lg.prove_inclusion(args.seq, args.size)
    p.verify()
    _print(p.to_dict())
    return 0


def cmd_prove_consistency(args: argparse.Namespace) -> int:
    from renkei.ledger import ConsistencyProof, open_ledger

    live = running(args)
    if live is not None:
        r = _oversight(live, "GetConsistencyProof", pb.GetConsistencyProofRequest(first_size=args.old,
                                                                                    second_size=args.new))
        p = ConsistencyProof(args.old, args.new, _root_at(live, args.old), _root_at(live, args.new),
                             [bytes(h) for h in r.hashes])
    else:
        need_down(args, "`ledger prove-consistency`")
        with open_ledger(_data_dir(args), background=False) as lg:
            p = lg.prove_consistency(args.old, args.new)
    p.verify()
    _print(p.to_dict())
    return 0


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    top = subparsers.add_parser("ledger", help="provision ledger (情報提供等記録)")
    led = top.add_subparsers(dest="sub", required=True)
    v = led.add_parser("verify", parents=[common], help="recheck every record, tile and checkpoint")
    v.add_argument("--dir", default=None, help="a C2SP tlog-tiles log directory (with --vkey: public key only)")
    v.add_argument("--vkey", default=None, help="the log's note verifier key (name+id+key), or @FILE")
    v.add_argument("--origin", default=None, help="the checkpoint's origin line (default: the key's name)")
    v.add_argument("--entries", choices=("auto", "renkei", "any"), default="auto",
                   help="check entries as renkei records (auto: when the log has renkei's format file)")
    v.set_defaults(func=cmd_verify)
    client = client_parser()
    led.add_parser("checkpoint", parents=[common, client], help="print the latest signed checkpoint").set_defaults(
        func=cmd_checkpoint)
    i = led.add_parser("prove-inclusion", parents=[common, client], help="inclusion proof of a record")
    i.add_argument("seq", type=int)
    i.add_argument("--size", type=int, default=None, help="tree size (default: latest)")
    i.set_defaults(func=cmd_prove_inclusion)
    c = led.add_parser("prove-consistency", parents=[common, client],
                       help="consistency proof between two tree sizes")
    c.add_argument("old", type=int)
    c.add_argument("new", type=int)
    c.set_defaults(func=cmd_prove_consistency)
