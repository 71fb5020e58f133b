"""JPKI login verification (renkei.jpki.verify.AuthVerifier) beside the raw RSA verify it is built on.

    .venv/bin/python -m bench.bench_jpki

Measured in one run, single-threaded (per core):

* **raw RSA verify**: one RSA-2048 PKCS#1 v1.5 / SHA-256 signature check (OpenSSL through
  `cryptography`) — the floor;
* **verify_login, warm OCSP cache**: the whole check of a login by a card seen within the cache
  period — chain and kind from the per-certificate cache, validity, the signature over the
  challenge (an RSA verify), the cached OCSP answer;
* **… chain checked again**: the same with the chain cache emptied before every call — parse the
  certificate, verify its signature by the pinned CA (a second RSA verify), policy, key usage —
  as for a card the verifier has not seen;
* **verify_login, cold**: the same with ``cache_seconds=0``: every login asks the real responder
  (``renkei jpki serve``, a child process on loopback) over HTTP, which signs a fresh answer.

A card of a fresh JPKI data directory signs one challenge; each figure verifies that one login
over and over.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from bench.common import best_rate, machine, table
from renkei.jpki.ca import Jpki
from renkei.jpki.profile import AUTH
from renkei.jpki.verify import AuthVerifier, new_challenge
from tests.jpki_helpers import new_card, start_responder


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="renkei-bench-jpki-") as tmp:
        root = Path(tmp)
        jpki = Jpki.init(root / "jpki")
        responder = start_responder(root / "jpki")
        try:
            card = new_card(jpki, root / "card.json")
            challenge = new_challenge()
            signed = card.sign_challenge("1234", challenge)
            key = x509.load_der_x509_certificate(signed.certificate_der).public_key()
            assert isinstance(key, rsa.RSAPublicKey)

            def raw() -> None:
                key.verify(signed.signature, challenge, padding.PKCS1v15(), hashes.SHA256())

            warm = AuthVerifier(jpki.ca_pem(AUTH), responder.url(AUTH), cache_seconds=300)
            assert warm.verify_login(challenge, signed.signature, signed.certificate_der).revocation.source == "ocsp"

            def login_warm() -> None:
                warm.verify_login(challenge, signed.signature, signed.certificate_der)

            def login_first_sight() -> None:
                warm._chained.clear()  # the certificate parsed and its chain checked again
                warm.verify_login(challenge, signed.signature, signed.certificate_der)

            cold = AuthVerifier(jpki.ca_pem(AUTH), responder.url(AUTH), cache_seconds=0)

            def login_cold() -> None:
                cold.verify_login(challenge, signed.signature, signed.certificate_der)

            raw_rate = best_rate(raw, 1)
            warm_rate = best_rate(login_warm, 1)
            first_rate = best_rate(login_first_sight, 1)
            cold_rate = best_rate(login_cold, 1, repeat=3, min_time=1.0)
            assert warm.ocsp.fetches == 1 and cold.ocsp.fetches > 10
        finally:
            responder.stop()
            jpki.close()
    print(f"`python -m bench.bench_jpki` — {machine()}\n")
    print(table([
        ("raw RSA-2048 PKCS#1 v1.5 verify", raw_rate, "baseline: one signature check"),
        ("verify_login, warm OCSP cache", warm_rate,
         f"{warm_rate / raw_rate:.2f}× raw: the card seen before (chain cached), one RSA verify"),
        ("verify_login, warm OCSP cache, chain checked again", first_rate,
         f"{first_rate / raw_rate:.2f}× raw: parse + CA signature + challenge signature (two RSA verifies)"),
        ("verify_login, cold (OCSP over HTTP)", cold_rate, f"{cold_rate / raw_rate:.3f}× raw; responder on loopback"),
    ], header="logins/s"))


if __name__ == "__main__":
    main()
