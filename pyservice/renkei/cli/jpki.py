"""``renkei jpki …``: J-LIS's 公的個人認証サービス (JPKI) — its CAs, revocation, the responder.

    renkei jpki init [--data-dir D]                 both CAs, OCSP responder certificates, registry, CRLs
    renkei jpki serve [--port 50060] [--ready-file F]   OCSP (POST /ocsp/auth|sign) and CRLs (GET /crl/*.crl)
    renkei jpki ca-cert --kind auth|sign            print a CA certificate (PEM) for relying parties to pin
    renkei jpki revoke --serial S --reason R        revoke (keyCompromise, cessationOfOperation, …) or suspend
    renkei jpki revoke --card-id ID --reason R [--kind auth|sign]   every current certificate of a card
    renkei jpki release --serial S                  lift a suspension (certificateHold)
    renkei jpki change-facts --card-id ID [--name …] [--birth …] [--sex …] [--address …]
                                                    a 基本4情報 change: the 署名用 certificate is revoked
    renkei jpki crl --kind auth|sign [--out F] [--pem]  re-sign the CRL now; write or summarise it
    renkei jpki status (--serial S | --card-id ID)  certificates and their status (no personal data)

The data directory defaults to ``$RENKEI_DATA/jpki`` (``./renkei-data/jpki``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from renkei.cli.common import service_path, setup_logging

DEFAULT_PORT = 50060


def _jpki(args: argparse.Namespace) -> Any:
    from renkei.jpki.ca import Jpki

    return Jpki(service_path(args, "jpki"))


def cmd_init(args: argparse.Namespace) -> int:
    from renkei.jpki.ca import Jpki

    with Jpki.init(service_path(args, "jpki")) as jpki:
        print(f"JPKI data directory ready: {jpki.data_dir.path.resolve()}")
        for kind in ("auth", "sign"):
            ca = jpki.ca_certificate(kind)
            print(f"  {kind} CA  {ca.subject.rfc4514_string()}  until {ca.not_valid_after_utc:%Y-%m-%d}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import asyncio

    from renkei.jpki.ca import Jpki
    from renkei.jpki.ocsp import OcspResponder
    from renkei.service.jpki import JpkiServer
    from renkei.service.server import write_ready_file

    setup_logging(args)
    jpki = Jpki(service_path(args, "jpki"))
    server = JpkiServer(jpki, args.host, args.port,
                        OcspResponder(jpki, dt.timedelta(seconds=args.ocsp_validity)))

    def ready(s: JpkiServer) -> None:
        info = s.endpoints()
        print(f"renkei jpki serving {info['data_dir']} (pid {info['pid']})")
        print(f"  http        {info['http']}  (POST /ocsp/auth, /ocsp/sign; GET /crl/auth.crl, /crl/sign.crl)")
        sys.stdout.flush()
        if args.ready_file:
            write_ready_file(args.ready_file, info)

    asyncio.run(server.serve(ready))
    print("renkei jpki stopped", flush=True)
    return 0


def cmd_ca_cert(args: argparse.Namespace) -> int:
    with _jpki(args) as jpki:
        sys.stdout.write(jpki.ca_pem(args.kind).decode())
    return 0


def _print_record(r: Any) -> None:
    reason = f" {r.reason}" if r.reason else ""
    when = f" since {r.revoked_at:%Y-%m-%d %H:%M:%S}Z" if r.revoked_at else ""
    print(f"{r.kind:<4} serial {r.serial}  {r.status}{reason}{when}  valid until {r.not_after:%Y-%m-%d}  "
          f"card {r.card_id}")


def cmd_revoke(args: argparse.Namespace) -> int:
    from renkei.errors import InvalidArgumentError

    with _jpki(args) as jpki:
        if args.serial is not None:
            records = [jpki.revoke(args.serial, args.reason)]
        elif args.card_id:
            kinds = ("auth", "sign") if args.kind == "both" else (args.kind,)
            records = jpki.revoke_card(args.card_id, args.reason, kinds)
        else:
            raise InvalidArgumentError("give --serial or --card-id")
        for r in records:
            _print_record(r)
        if not records:
            print("nothing to revoke: the card's certificates are revoked already")
    return 0


def cmd_release(args: argparse.Namespace) -> int:
    with _jpki(args) as jpki:
        _print_record(jpki.release_hold(args.serial))
    return 0


def cmd_change_facts(args: argparse.Namespace) -> int:
    from renkei.jpki.profile import BasicFacts

    birth = dt.date.fromisoformat(args.birth) if args.birth else None
    sex = BasicFacts.parse("x", "2000-01-01", args.sex, "x").sex if args.sex else None
    with _jpki(args) as jpki:
        revoked = jpki.change_facts(args.card_id, name=args.name, birth=birth, sex=sex, address=args.address)
    if revoked is None:
        print("no good 署名用 certificate changes: the facts are the same, or it is revoked already")
    else:
        print("基本4情報 changed: the 署名用 certificate is revoked (affiliationChanged); the 利用者証明用 "
              "certificate stays valid")
        _print_record(revoked)
    return 0


def cmd_crl(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives import serialization

    with _jpki(args) as jpki:
        crl = jpki.write_crl(args.kind)
    if args.out:
        from renkei.datadir import write_atomic

        encoding = serialization.Encoding.PEM if args.pem else serialization.Encoding.DER
        write_atomic(Path(args.out), crl.public_bytes(encoding), 0o644)
    elif args.pem:
        sys.stdout.write(crl.public_bytes(serialization.Encoding.PEM).decode())
        return 0
    print(f"{args.kind} CRL: {len(crl)} entries, this update {crl.last_update_utc:%Y-%m-%d %H:%M:%S}Z, "
          f"next update {crl.next_update_utc or crl.last_update_utc:%Y-%m-%d %H:%M:%S}Z")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from renkei.errors import InvalidArgumentError

    with _jpki(args) as jpki:
        if args.serial is not None:
            records = [jpki.certificate(args.serial)]
        elif args.card_id:
            records = jpki.store.certificates_of(args.card_id)
        else:
            raise InvalidArgumentError("give --serial or --card-id")
    for r in records:
        _print_record(r)
    return 0 if records else 1


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    from renkei.jpki.ca import REASONS

    g = sub.add_parser("jpki", help="J-LIS's JPKI (公的個人認証): CAs, revocation, OCSP/CRL responder"
                       ).add_subparsers(dest="sub", required=True)
    i = g.add_parser("init", parents=[common], help="create the JPKI data directory (both CAs, responders)")
    i.set_defaults(func=cmd_init)
    s = g.add_parser("serve", parents=[common], help="serve OCSP and CRLs over HTTP")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"HTTP port (default {DEFAULT_PORT}; 0 = any free)")
    s.add_argument("--ready-file", help="write JSON with pid, http and data_dir here once serving")
    s.add_argument("--ocsp-validity", type=float, default=600.0,
                   help="seconds from thisUpdate to nextUpdate in OCSP answers (default 600)")
    s.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    s.set_defaults(func=cmd_serve)
    c = g.add_parser("ca-cert", parents=[common], help="print a CA certificate (PEM) to pin")
    c.add_argument("--kind", choices=["auth", "sign"], required=True)
    c.set_defaults(func=cmd_ca_cert)
    r = g.add_parser("revoke", parents=[common], help="revoke or suspend certificates")
    r.add_argument("--serial", type=int)
    r.add_argument("--card-id")
    r.add_argument("--kind", choices=["auth", "sign", "both"], default="both", help="with --card-id (default both)")
    r.add_argument("--reason", required=True, choices=list(REASONS),
                   help="keyCompromise (lost), cessationOfOperation, certificateHold (suspend), affiliationChanged, …")
    r.set_defaults(func=cmd_revoke)
    rl = g.add_parser("release", parents=[common], help="lift a suspension (certificateHold)")
    rl.add_argument("--serial", type=int, required=True)
    rl.set_defaults(func=cmd_release)
    f = g.add_parser("change-facts", parents=[common],
                     help="a change of the holder's 基本4情報 (e.g. a 住所 move): revokes the 署名用 certificate")
    f.add_argument("--card-id", required=True)
    f.add_argument("--name")
    f.add_argument("--birth", help="YYYY-MM-DD")
    f.add_argument("--sex", help="1 (男), 2 (女), 3 (不明); M/F accepted")
    f.add_argument("--address")
    f.set_defaults(func=cmd_change_facts)
    cr = g.add_parser("crl", parents=[common], help="re-sign a CA's CRL now")
    cr.add_argument("--kind", choices=["auth", "sign"], required=True)
    cr.add_argument("--out", help="also write it here (DER, or PEM with --pem)")
    cr.add_argument("--pem", action="store_true")
    cr.set_defaults(func=cmd_crl)
    st = g.add_parser("status", parents=[common], help="certificates and their revocation status")
    st.add_argument("--serial", type=int)
    st.add_argument("--card-id")
    st.set_defaults(func=cmd_status)
