"""The ``renkei`` command line: one module per command group.

    renkei up [--demo]                  start the whole box, every service its own process
    renkei status                       which services of the box are initialised
    renkei pki init|issue|issue-service|revoke|list     the development CA (its own directory)
    renkei core init|serve|status|migrate-store   the linkage core  (data dir renkei-data/core)
    renkei jlis init|serve|status       J-LIS                   (renkei-data/jlis)
    renkei nta init|serve               the NTA                 (renkei-data/nta)
    renkei mid init|serve|status        an intermediate server  (renkei-data/mid-<name>)
    renkei witness init|vkey|serve      the commission's C2SP witness (renkei-data/witness)
    renkei oversight audit|agencies     the commission's audit of the ledger (through OversightService)
    renkei ppc init|serve|vkey|submit|list|show|approve|return|revoke|decisions   the commission's PIA review
    renkei jpki init|serve|revoke|change-facts|crl|status   J-LIS's JPKI: CAs, OCSP/CRLs (renkei-data/jpki)
    renkei card issue|sign-challenge|sign|status|reset-pin|verify-login   JPKI cards (software tokens)
    renkei number check|assign|change   個人番号 / 法人番号 / 住民票コード; J-LIS's registry
    renkei corp get|search|changes|assign   法人番号 registry (NTA)
    renkei agency …, renkei codes …     the core's agencies, PIAs, codes and holdings
    renkei permissions …, renkei permit …, renkei ledger …

Service commands take ``--data-dir`` (default ``$RENKEI_DATA/<service>``, i.e.
``./renkei-data/<service>``); ``--data-dir``, ``--json``, ``--target``, ``--ready-file`` and
``--pki`` may also come before the command group. Commands that administer the core go through
its AdminService / OversightService while it runs (renkei.cli.live) and read its files only when
it is down. Nothing but ``init``, ``up``, ``serve`` and ``pki init|issue…`` creates files.

Exit status 0 means success, 1 a refused input or a failure (one line on stderr:
``renkei: <problem>; <what to do>``), 2 a usage error. No traceback reaches the terminal unless
``RENKEI_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections.abc import Sequence

from renkei.errors import RenkeiError


def build_parser() -> argparse.ArgumentParser:
    from renkei import __version__
    from renkei.cli import (
        agency,
        card,
        core,
        jlis,
        jpki,
        ledger,
        mid,
        nta,
        oversight,
        permissions,
        pki,
        portal,
        ppc,
        up,
        witness,
    )
    from renkei.cli.common import add_global_options, common_parser

    common = common_parser()
    p = argparse.ArgumentParser(prog="renkei", description="renkei: the My Number information-linkage system")
    p.add_argument("--version", action="version", version=f"renkei {__version__}")
    add_global_options(p)
    sub = p.add_subparsers(dest="command", required=True)
    up.register(sub)
    pki.register(sub)
    core.register(sub, common)
    jlis.register(sub, common)
    nta.register(sub, common)
    mid.register(sub, common)
    jpki.register(sub, common)
    card.register(sub)
    agency.register(sub, common)
    permissions.register(sub, common)
    ledger.register(sub, common)
    witness.register(sub, common)
    oversight.register(sub)
    ppc.register(sub, common)
    portal.register(sub, common)
    return p


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def error_message(exc: BaseException) -> str:
    """The one line a failed command prints (never a traceback, never a number or a code:
    renkei's own messages carry none, and other exceptions are named by type only)."""
    import grpc

    from renkei.cli.live import rpc_error

    if isinstance(exc, grpc.RpcError):
        exc = rpc_error(exc)
    if isinstance(exc, RenkeiError):
        return _one_line(str(exc) or type(exc).__name__)
    if isinstance(exc, sqlite3.DatabaseError):
        return f"a database file is damaged or not SQLite ({_one_line(str(exc))}); restore it from the backup"
    if isinstance(exc, PermissionError):
        return f"{exc.filename}: permission denied; run as the service's user or fix the file's owner"
    if isinstance(exc, FileNotFoundError):
        return f"{exc.filename} does not exist; check the path"
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or type(exc).__name__}; check the path, the disk and the permissions"
    return (f"unexpected {type(exc).__name__}; run again with RENKEI_DEBUG=1 for the traceback and report it "
            f"(it may contain data: do not paste it publicly)")


def main(argv: Sequence[str] | None = None) -> int:
    from renkei.cli.common import merge_global_options

    args = merge_global_options(build_parser().parse_args(argv))
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("renkei: interrupted", file=sys.stderr)
        return 130
    except SystemExit:
        raise
    except Exception as e:
        if os.environ.get("RENKEI_DEBUG") == "1":
            raise
        print(f"renkei: {error_message(e)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
