"""``renkei card …``: a マイナンバーカード's JPKI keys as a software token (renkei.jpki.card).

    renkei card issue --out card.json --name … --birth YYYY-MM-DD --sex 1|2|3 --address …
                      [--auth-pin 1234 | --auth-pin-file F] [--sign-pin ABC123 | --sign-pin-file F | --no-sign]
    renkei card sign-challenge --card card.json (--pin 1234 | --pin-file F) --challenge HEX
    renkei card sign --card card.json (--pin … | --pin-file F) --data-file F [--portal]  (署名用 key)
    renkei card status --card card.json              tries left, certificates (no personal data)
    renkei card reset-pin --card card.json --kind auth|sign (--new-pin … | --new-pin-file F)   (municipality)
    renkei card verify-login --ca auth-ca.pem --ocsp URL --challenge HEX --signature B64 --certificate B64

Through the running J-LIS (CardService; as its staff ``jlis``, or ``--agency N --purpose P`` as a
municipality's card desk with J-LIS's CARD entitlement):

    renkei card apply (--number-file F | --resident-code C) [--reason new|lost|…] --face-photo sha256:…
    renkei card issue --application ID --out card.json [--auth-pin-file F] [--sign-pin-file F | --no-sign]
                      [--kenmen-pin-file F]                 the card, with the 券面事項入力補助AP
    renkei card suspend --card-id ID                       一時停止 after a loss (effective at once)
    renkei card resume --card-id ID                        the card was found
    renkei card show --card-id ID                          its state and certificates
    renkei card identify --card card.json [--pin-file F] --ca auth-ca.pem --ocsp URL --kenmen-key K.pem
                                                           an agency counter's 本人確認 (番号確認 + 身元確認)

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


def _card_service(args: argparse.Namespace, method: str, request: Any) -> Any:
    from renkei._proto.renkei.v1.card_service_pb2_grpc import CardServiceStub
    from renkei.cli.live import running
    from renkei.errors import FailedPreconditionError

    live = running(args, "jlis")
    if live is None:
        raise FailedPreconditionError("the card desk goes through the running J-LIS: start it (`renkei up`), or pass "
                                      "--target HOST:PORT / --ready-file FILE")
    principal = f"agency-{args.agency}" if args.agency else "jlis"
    if args.agency and hasattr(request, "purpose"):
        request.purpose = args.purpose or ""
    return live.call(principal, CardServiceStub, method, request)


def _status_rows(status: Any) -> None:
    from renkei._proto.renkei.v1 import card_service_pb2 as pb

    state = pb.CardState.Name(status.state).removeprefix("CARD_STATE_").lower()
    print(f"card {status.card_id}  {state}" + (f" ({status.state_reason})" if status.state_reason else "")
          + f"  issued {status.issued_at}  valid until {status.expires_on}")
    for c in status.certificates:
        print(f"  {c.kind}  serial {c.serial}  {c.status}" + (f" ({c.reason})" if c.reason else "")
              + f"  until {c.not_after[:10]}")


def cmd_apply(args: argparse.Namespace) -> int:
    from renkei._proto.renkei.v1 import card_service_pb2 as pb

    request = pb.ApplyForCardRequest(reason=getattr(pb, f"CARD_REASON_{args.reason.upper()}"),
                                     face_photo=args.face_photo)
    if args.number_file:
        request.individual_number = _read_pin(None, args.number_file, "")
    elif args.resident_code:
        request.resident_code = args.resident_code
    else:
        raise InvalidArgumentError("name the applicant: --number-file F (the 個人番号 on its first line) or "
                                   "--resident-code C")
    app = _card_service(args, "ApplyForCard", request)
    print(f"application {app.application_id} ({args.reason}) {app.state}")
    return 0


def _issue_through_jlis(args: argparse.Namespace) -> int:
    from renkei._proto.renkei.v1 import card_service_pb2 as pb
    from renkei.datadir import make_private_dir, write_atomic
    from renkei.errors import AlreadyExistsError

    out = Path(args.out)
    if out.exists():
        raise AlreadyExistsError(f"{out} exists: a card file is never overwritten")
    auth_pin = _read_pin(args.auth_pin, args.auth_pin_file, "利用者証明用 PIN (4 digits): ")
    sign_pin = "" if args.no_sign else _read_pin(args.sign_pin, args.sign_pin_file,
                                                 "署名用 PIN (6-16 upper-case letters and digits): ")
    kenmen_pin = _read_pin(args.kenmen_pin, args.kenmen_pin_file, "券面事項入力補助 PIN (4 digits): ")
    r = _card_service(args, "IssueCard", pb.IssueCardRequest(
        application_id=args.application, auth_pin=auth_pin, sign_pin=sign_pin, kenmen_pin=kenmen_pin,
        without_signing=args.no_sign))
    make_private_dir(out.parent)
    write_atomic(out, r.token, 0o600)
    print(f"card {r.card.card_id} issued into {out}")
    _status_rows(r.card)
    return 0


def cmd_issue(args: argparse.Namespace) -> int:
    from renkei.jpki.ca import Jpki
    from renkei.jpki.card import issue_card
    from renkei.jpki.profile import BasicFacts

    if args.application:
        return _issue_through_jlis(args)
    if not (args.name and args.birth and args.sex and args.address):
        raise InvalidArgumentError("issue through J-LIS with --application ID, or a JPKI-only test card with --name, "
                                   "--birth, --sex and --address")
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
    if args.portal:
        # The card reader's answer for the portal's login page: a wrong or locked PIN is part of
        # the answer (the page tells the person what to do), as マイナポータルAP reports it.
        from renkei.portal.reader import OK, card_response

        with _card(args) as card:
            answer = card_response(card, pin, challenge)
        print(json.dumps(answer))
        return 0 if answer["result"] == OK else 1
    with _card(args) as card:
        signed = card.sign_challenge(pin, challenge)
        card_id = card.card_id
    print(json.dumps({"card_id": card_id, "signature": base64.b64encode(signed.signature).decode(),
                      "certificate": base64.b64encode(signed.certificate_der).decode()}))
    return 0


def cmd_sign(args: argparse.Namespace) -> int:
    data = Path(args.data_file).read_bytes()
    pin = _read_pin(args.pin, args.pin_file, "署名用 PIN: ")
    if args.portal:
        # A signed application for the portal (ワンストップ申請): PIN problems are part of the answer.
        from renkei.portal.reader import OK, sign_response

        with _card(args) as card:
            answer = sign_response(card, pin, data)
        print(json.dumps(answer))
        return 0 if answer["result"] == OK else 1
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


def cmd_suspend(args: argparse.Namespace) -> int:
    from renkei._proto.renkei.v1 import card_service_pb2 as pb

    _status_rows(_card_service(args, "SuspendCard", pb.SuspendCardRequest(card_id=args.card_id)))
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from renkei._proto.renkei.v1 import card_service_pb2 as pb

    _status_rows(_card_service(args, "ResumeCard", pb.ResumeCardRequest(card_id=args.card_id)))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from renkei._proto.renkei.v1 import card_service_pb2 as pb

    _status_rows(_card_service(args, "GetCard", pb.GetCardRequest(card_id=args.card_id)))
    return 0


def cmd_identify(args: argparse.Namespace) -> int:
    """An agency counter's 本人確認 in one flow: the card signs the counter's fresh challenge
    (利用者証明用, OCSP asked every time) and hands over its 券面事項入力補助AP data; both checked."""
    from renkei.jpki.kenmen import CounterVerifier
    from renkei.jpki.verify import AuthVerifier, new_challenge

    pin = _read_pin(args.pin, args.pin_file, "暗証番号 (4 digits): ")
    counter = CounterVerifier(AuthVerifier(Path(args.ca).read_bytes(), args.ocsp, cache_seconds=0),
                              Path(args.kenmen_key).read_bytes())
    challenge = new_challenge()
    with _card(args) as card:
        login = card.sign_challenge(pin, challenge)
        ap = card.read_kenmen(args.kenmen_pin_value or pin)
    who = counter.identify(challenge, login.signature, login.certificate_der, ap)
    print(json.dumps({"individual_number": who.individual_number, "name": who.facts.name,
                      "birth": who.facts.birth.isoformat(), "sex": who.facts.sex, "address": who.facts.address,
                      "card_id": who.card_id, "card_expires": who.card_expires.isoformat(),
                      "written_at": who.written_at.isoformat(), "revocation": who.revocation_source},
                     ensure_ascii=False))
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

    def desk_parser(name: str, help: str) -> argparse.ArgumentParser:
        from renkei.cli.common import client_parser, common_parser

        p: argparse.ArgumentParser = g.add_parser(name, help=help, parents=[common_parser(), client_parser()])
        p.add_argument("--agency", type=int, help="act as this agency's card desk (its client certificate) instead "
                                                  "of J-LIS's staff")
        p.add_argument("--purpose", help="the agency's CARD entitlement purpose")
        return p

    i = desk_parser("issue", "issue a card: through J-LIS for an application (--application), or a JPKI-only "
                             "test card from the 4情報 given")
    i.add_argument("--jpki-dir", help="J-LIS's JPKI data directory (JPKI-only test cards; default $RENKEI_DATA/jpki)")
    i.add_argument("--application", type=int, help="the card application (renkei card apply) to issue through J-LIS")
    i.add_argument("--out", required=True, help="the card file to create (never overwritten)")
    i.add_argument("--name", help="氏名 (JPKI-only test card)")
    i.add_argument("--birth", help="生年月日 YYYY-MM-DD (JPKI-only test card)")
    i.add_argument("--sex", help="性別: 1 (男), 2 (女), 3 (不明); M/F accepted (JPKI-only test card)")
    i.add_argument("--address", help="住所 (JPKI-only test card)")
    i.add_argument("--kenmen-pin", help="券面事項入力補助 PIN, 4 digits ('-': stdin); prompted for when missing")
    i.add_argument("--kenmen-pin-file")
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
            p.add_argument("--portal", action="store_true",
                           help="answer as the portal's card reader: {result, signature, certificate} to paste")
            p.set_defaults(func=cmd_sign_challenge)
        else:
            p.add_argument("--data-file", required=True)
            p.add_argument("--portal", action="store_true",
                           help="answer as the portal's card reader (an application to sign): {result, signature, "
                                "certificate} to paste")
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
    a = desk_parser("apply", "a card application (交付申請) through J-LIS")
    a.add_argument("--number-file", help="a file whose first line is the applicant's 個人番号")
    a.add_argument("--resident-code", help="the applicant's 住民票コード (lands in the shell history: demo use)")
    a.add_argument("--reason", default="new", choices=["new", "lost", "damaged", "renewal", "number_change"])
    a.add_argument("--face-photo", required=True, help="sha256:<hex> of the face photo, or its URI")
    a.set_defaults(func=cmd_apply)
    for name, help, func in (("suspend", "一時停止 after a loss: both certificates on hold at once", cmd_suspend),
                             ("resume", "lift a suspension (the card was found)", cmd_resume),
                             ("show", "a card's state and certificates (J-LIS)", cmd_show)):
        d = desk_parser(name, help)
        d.add_argument("--card-id", required=True)
        d.set_defaults(func=func)
    idn = card_parser("identify", "an agency counter's 本人確認: login + 券面事項入力補助AP, checked together")
    idn.add_argument("--card", required=True)
    idn.add_argument("--pin", help="the 4-digit PIN ('-': stdin); prompted for when missing")
    idn.add_argument("--pin-file")
    idn.add_argument("--kenmen-pin", dest="kenmen_pin_value", help="the AP's PIN when it differs from the login PIN")
    idn.add_argument("--ca", required=True, help="the pinned 利用者証明用 CA certificate(s), PEM")
    idn.add_argument("--ocsp", required=True, help="the responder, e.g. http://127.0.0.1:50060/ocsp/auth")
    idn.add_argument("--kenmen-key", required=True, help="J-LIS's 券面事項入力補助AP key (renkei jlis kenmen-key)")
    idn.set_defaults(func=cmd_identify)
    v = g.add_parser("verify-login", help="check a signed challenge as a relying party would")
    v.add_argument("--ca", required=True, help="the pinned 利用者証明用 CA certificate(s), PEM")
    v.add_argument("--ocsp", required=True, help="the responder, e.g. http://127.0.0.1:50060/ocsp/auth")
    v.add_argument("--challenge", required=True)
    v.add_argument("--signature", required=True)
    v.add_argument("--certificate", required=True)
    v.add_argument("--nonce", action="store_true", help="send an OCSP nonce and require it back")
    v.set_defaults(func=cmd_verify_login)
