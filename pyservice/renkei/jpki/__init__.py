"""公的個人認証サービス (JPKI) of J-LIS as a test double: two CAs with the real structure
(:mod:`~renkei.jpki.ca`), cards as PIN-protected software tokens (:mod:`~renkei.jpki.card`),
an OCSP responder (:mod:`~renkei.jpki.ocsp`, served over HTTP by ``renkei jpki serve``) and the
relying party's check (:mod:`~renkei.jpki.verify`). docs/arch/jpki.md has the whole picture."""

from renkei.jpki.ca import Jpki
from renkei.jpki.card import Card, CardSignature, issue_card, issue_demo_card, reset_pin
from renkei.jpki.profile import BasicFacts, signing_facts
from renkei.jpki.verify import AuthVerifier, SignVerifier, VerifiedCard, VerifiedSignature, new_challenge

__all__ = [
    "AuthVerifier", "BasicFacts", "Card", "CardSignature", "Jpki", "SignVerifier", "VerifiedCard",
    "VerifiedSignature", "issue_card", "issue_demo_card", "new_challenge", "reset_pin", "signing_facts",
]
