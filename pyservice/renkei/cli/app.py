"""The ``renkei`` command line: one module per command group.

    renkei up [--demo]                  start the whole box, every service its own process
    renkei status                       which services of the box are initialised
    renkei pki init|issue|issue-service|revoke|list     the development CA (its own directory)
    renkei core init|serve|status       the linkage core        (data dir renkei-data/core)
    renkei jlis init|serve|status       J-LIS                   (renkei-data/jlis)
    renkei nta init|serve               the NTA                 (renkei-data/nta)
    renkei jpki init|serve|revoke|change-facts|crl|status   J-LIS's JPKI: CAs, OCSP/CRLs (renkei-data/jpki)
    renkei card issue|sign-challenge|sign|status|reset-pin|verify-login   JPKI cards (software tokens)
    renkei number check|assign|change   個人番号 / 法人番号 / 住民票コード; J-LIS's registry
    renkei corp get|search|changes|assign   法人番号 registry (NTA)
    renkei agency …, renkei codes …     the core's agencies, PIAs, codes and holdings
    renkei permissions …, renkei permit …, renkei ledger …

Service commands take ``--data-dir`` (default ``$RENKEI_DATA/<service>``, i.e.
``./renkei-data/<service>``). Nothing but ``init``, ``up`` and ``pki`` creates files. Exit status
0 means success, 1 a refused input (the message says why), 2 a usage error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from renkei.errors import RenkeiError


def build_parser() -> argparse.ArgumentParser:
    from renkei import __version__
    from renkei.cli import agency, card, core, jlis, jpki, ledger, nta, permissions, pki, up
    from renkei.cli.common import common_parser

    common = common_parser()
    p = argparse.ArgumentParser(prog="renkei", description="renkei: the My Number information-linkage system")
    p.add_argument("--version", action="version", version=f"renkei {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    up.register(sub)
    pki.register(sub)
    core.register(sub, common)
    jlis.register(sub, common)
    nta.register(sub, common)
    jpki.register(sub, common)
    card.register(sub)
    agency.register(sub, common)
    permissions.register(sub, common)
    ledger.register(sub, common)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except RenkeiError as e:
        print(f"renkei: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
