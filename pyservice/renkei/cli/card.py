"""``renkei card …``: a マイナンバーカード's JPKI keys as a software token (renkei.jpki.card).

    renkei card issue --out card.json --name … --birth YYYY-MM-DD --sex 1|2|3 --address …
                      [--auth-pin 1234 | --auth-pin-file F] [--sign-pin ABC123 | --sign-pin-file F | --no-sign]
    renkei card sign-challenge --card card.json (--pin 1234 | --pin-file F) --challenge HEX
    renkei card sign --card card.json (--pin … | --pin-file F) --data-file F      (署名用 key)
    renkei card status --card card.json              tries left, certificates (no personal data)
    renkei card reset-pin --card card.json --kind auth|sign (--new-pin … | --new-pin-file F)   (municipality)
    renkei card verify-login --ca auth-ca.pem --ocsp URL --challenge HEX --signature B64 --certificate B64

``issue`` and ``reset-pin`` act for the municipality and need J-LIS's JPKI data directory
(``--jpki-dir``, default ``$RENKEI_DATA/jpki``); the card commands find it through the card file
(``--jpki-dir`` overrides). PINs: ``--pin-file F`` (first line) keeps them out of the shell history
and the process list; ``--pin -`` reads a line from stdin; with neither, the PIN is prompted for (or
read from stdin when it is not a terminal). A PIN given as ``--pin 1234`` lands in the shell
history — fine for the demo, not for a real card. PINs are never printed or logged.
"""

from __future__ import annotations

import argparse
import base64
import getpass
import json
import sys
from pathlib import Path
from typing import Any

from renkei.datadir import box_root
from renkei.errors import InvalidArgumentError


def _jpki_dir(args: argparse.Namespace) -> Path:
    return Path(args.jpki_dir) if args.jpki_dir else box_root() / "jpki"


def _read_pin(value: str | None, file: str | None, prompt: str) -> str:
    if value is not None and file is not None:
        raise InvalidArgumentError("give the PIN either as an option or as a file, not both")
    if file is not None:
        try:
            lines = Path(file).read_text().splitlines()
        except OSError as e:
            raise InvalidArgumentError(f"cannot read the PIN file {file}: {e.strerror}") from None
        return lines[0].strip() if lines else ""
    if value is not None and value != "-":
        return value
    if value is None and sys.stdin.isatty():
        return getpass.getpass(prompt)
    return sys.stdin.readline().strip()


def cmd_issue(args: argparse.Namespace) -> int:
    from renkei.jpki.ca import Jpki
    from renkei.jpki.card import issue_card
    from renkei.jpki.profile import BasicFacts

    facts = BasicFacts.parse(args.name, args.birth, args.sex, args.address)
    auth_pin = _read_pin(args.auth_pin, args.auth_pin_file, "利用者証明用 PIN (4 digits): ")
    sign_pin = None if args.no_sign else _read_pin(args.sign_pin, args.sign_pin_file,
                                                   "署名用 PIN (6-16 upper-case letters and digits): ")
    with Jpki(_jpki_dir(args)) as jpki, issue_card(jpki, args.out, facts, auth_pin, sign_pin) as card:
        print(f"card {card.card_id} issued into {card.path}")
        for kind in ("auth", "sign"):
            if card.has(kind):
                cert = card.certificate(kind)
                print(f"  {kind}  serial {cert.serial_number}  valid until {cert.not_valid_after_utc:%Y-%m-%d}")
        if not card.has("sign"):
            print("  sign  none (not asked for, or the holder is under 15)")
    return 0


def _card(args: argparse.Namespace) -> Any:
    from renkei.jpki.card import Card

    return Card(args.card, args.jpki_dir)


def cmd_sign_challenge(args: argparse.Namespace) -> int:
    try:
        challenge = bytes.fromhex(args.challenge)
    except ValueError:
        raise InvalidArgumentError("the challenge is hexadecimal") from None
    pin = _read_pin(args.pin, args.pin_file, "利用者証明用 PIN: ")
    with _card(args) as card:
        signed = card.sign_challenge(pin, challenge)
        card_id = card.card_id
    print(json.dumps({"card_id": card_id, "signature": base64.b64encode(signed.signature).decode(),
                      "certificate": base64.b64encode(signed.certificate_der).decode()}))
    return 0


def cmd_sign(args: argparse.Namespace) -> int:
    data = Path(args.data_file).read_bytes()
    pin = _read_pin(args.pin, args.pin_file, "署名用 PIN: ")
    with _card(args) as card:
        signed = card.sign(pin, data)
    print(json.dumps({"signature": base64.b64encode(signed.signature).decode(),
                      "certificate": base64.b64encode(signed.certificate_der).decode()}))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    with _card(args) as card:
        print(f"card {card.card_id}")
        for kind in ("auth", "sign"):
            if not card.has(kind):
                continue
            cert = card.certificate(kind)
            record = card.chip.store.certificate(cert.serial_number)
            status = "unknown to the JPKI" if record is None else record.status + (
                f" ({record.reason})" if record.reason else "")
            pins = card.pin_state(kind)
            lock = "LOCKED (reset at the municipality)" if pins.locked else f"{pins.remaining} PIN tries left"
            print(f"  {kind}  serial {cert.serial_number}  valid until {cert.not_valid_after_utc:%Y-%m-%d}  "
                  f"{status}  {lock}")
    return 0


def cmd_reset_pin(args: argparse.Namespace) -> int:
    from renkei.jpki.ca import Jpki
    from renkei.jpki.card import reset_pin

    new_pin = _read_pin(args.new_pin, args.new_pin_file, f"new {args.kind} PIN: ")
    with Jpki(_jpki_dir(args)) as jpki:
        state = reset_pin(jpki, args.card, args.kind, new_pin)
    print(f"{args.kind} PIN reset; {state.remaining} tries")
    return 0


def cmd_verify_login(args: argparse.Namespace) -> int:
    from renkei.jpki.verify import AuthVerifier

    verifier = AuthVerifier(Path(args.ca).read_bytes(), args.ocsp, nonce=args.nonce)
    try:
        who = verifier.verify_login(bytes.fromhex(args.challenge), base64.b64decode(args.signature, validate=True),
                                    base64.b64decode(args.certificate, validate=True))
    except ValueError as e:
        if isinstance(e, InvalidArgumentError):
            raise
        raise InvalidArgumentError("challenge is hex, signature and certificate base64") from None
    print(json.dumps({"serial": str(who.serial), "issuer": who.issuer, "card_id": who.card_id,
                      "not_after": who.not_after.isoformat(), "revocation": who.revocation.source}))
    return 0


def register(sub: Any) -> None:
    g = sub.add_parser("card", help="マイナンバーカード JPKI software token: issue, sign, reset").add_subparsers(
        dest="sub", required=True)

    def card_parser(name: str, help: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = g.add_parser(name, help=help)
        p.add_argument("--jpki-dir", help="J-LIS's JPKI data directory (default: the one in the card file, or "
                                          "$RENKEI_DATA/jpki)")
        return p

    i = card_parser("issue", "issue a card (municipality): key pairs, certificates, PINs")
    i.add_argument("--out", required=True, help="the card file to create (never overwritten)")
    i.add_argument("--name", required=True, help="氏名")
    i.add_argument("--birth", required=True, help="生年月日 YYYY-MM-DD")
    i.add_argument("--sex", required=True, help="性別: 1 (男), 2 (女), 3 (不明); M/F accepted")
    i.add_argument("--address", required=True, help="住所")
    i.add_argument("--auth-pin", help="4 digits ('-': read from stdin); prompted for when missing")
    i.add_argument("--auth-pin-file")
    i.add_argument("--sign-pin", help="6-16 upper-case letters and digits ('-': stdin)")
    i.add_argument("--sign-pin-file")
    i.add_argument("--no-sign", action="store_true", help="no 署名用 certificate")
    i.set_defaults(func=cmd_issue)
    for name, help, kind in (("sign-challenge", "sign a login challenge with the 利用者証明用 key", "auth"),
                             ("sign", "sign a file with the 署名用 key", "sign")):
        p = card_parser(name, help)
        p.add_argument("--card", required=True)
        p.add_argument("--pin", help=f"the {kind} PIN ('-': read from stdin); prompted for when missing")
        p.add_argument("--pin-file")
        if kind == "auth":
            p.add_argument("--challenge", required=True, help="the relying party's challenge, hex")
            p.set_defaults(func=cmd_sign_challenge)
        else:
            p.add_argument("--data-file", required=True)
            p.set_defaults(func=cmd_sign)
    s = card_parser("status", "the card's certificates and PIN tries left")
    s.add_argument("--card", required=True)
    s.set_defaults(func=cmd_status)
    r = card_parser("reset-pin", "set a new PIN and clear the counter (municipality; needs J-LIS's reset key)")
    r.add_argument("--card", required=True)
    r.add_argument("--kind", choices=["auth", "sign"], required=True)
    r.add_argument("--new-pin", help="('-': read from stdin); prompted for when missing")
    r.add_argument("--new-pin-file")
    r.set_defaults(func=cmd_reset_pin)
    v = g.add_parser("verify-login", help="check a signed challenge as a relying party would")
    v.add_argument("--ca", required=True, help="the pinned 利用者証明用 CA certificate(s), PEM")
    v.add_argument("--ocsp", required=True, help="the responder, e.g. http://127.0.0.1:50060/ocsp/auth")
    v.add_argument("--challenge", required=True)
    v.add_argument("--signature", required=True)
    v.add_argument("--certificate", required=True)
    v.add_argument("--nonce", action="store_true", help="send an OCSP nonce and require it back")
    v.set_defaults(func=cmd_verify_login)
