"""The card reader's side of a portal login (マイナポータルAP's role, on the person's machine).

The real AP takes ``{mode "01", digest}``, asks for the 利用者証明用 PIN, has the card sign and
answers ``{result, signature, certificate}``; a wrong or locked PIN comes back as a result code so
the portal page can tell the person what to do. This is that answer for a software-token card;
``renkei card sign-challenge --portal`` prints it for pasting into the login page.
"""

from __future__ import annotations

import base64

from renkei.errors import PinLockedError, WrongPinError
from renkei.jpki.card import Card

OK = "0"
PIN_LOCKED = "pin-locked"
WRONG_PIN = "wrong-pin"


def card_response(card: Card, pin: str, message: bytes) -> dict[str, str]:
    """The AP's answer for signing ``message`` (the bytes the login page shows)."""
    try:
        signed = card.sign_challenge(pin, message)
    except PinLockedError:
        return {"result": PIN_LOCKED}
    except WrongPinError as e:
        return {"result": WRONG_PIN, "remaining": str(e.remaining if e.remaining is not None else "")}
    return {"result": OK, "signature": base64.b64encode(signed.signature).decode(),
            "certificate": base64.b64encode(signed.certificate_der).decode()}


def sign_response(card: Card, pin: str, document: bytes) -> dict[str, str]:
    """The same answer for a ワンストップ申請: ``document`` signed with the 署名用 key."""
    try:
        signed = card.sign(pin, document)
    except PinLockedError:
        return {"result": PIN_LOCKED}
    except WrongPinError as e:
        return {"result": WRONG_PIN, "remaining": str(e.remaining if e.remaining is not None else "")}
    return {"result": OK, "signature": base64.b64encode(signed.signature).decode(),
            "certificate": base64.b64encode(signed.certificate_der).decode()}


__all__ = ["OK", "PIN_LOCKED", "WRONG_PIN", "card_response", "sign_response"]
