"""The JPKI in the box: ``renkei up --demo`` starts the responder as service ``jpki`` (its own
process and data directory), issues the demo cards, and a demo card logs in against it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from renkei.jpki.ca import Jpki
from renkei.jpki.card import Card
from renkei.jpki.demo import DEMO_AUTH_PIN, DEMO_HOLDERS, DEMO_SIGN_PIN
from renkei.jpki.profile import AUTH, SIGN
from renkei.jpki.verify import AuthVerifier, SignVerifier, new_challenge
from tests.grpc_server import RunningBox, start_box


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBox]:
    running = start_box(tmp_path_factory.mktemp("jpkibox") / "box")
    yield running
    code, out = running.terminate()
    assert code == 0, out


def test_up_starts_the_responder_and_issues_demo_cards(box: RunningBox) -> None:
    jpki = box.service("jpki")
    assert jpki["http"] and jpki["pid"] not in {box.pid(s) for s in ("core", "jlis", "nta")}
    assert Path(jpki["data_dir"]) == (box.root / "jpki").resolve()
    cards = sorted(p.name for p in (box.root / "cards").iterdir())
    assert cards == sorted(name for name, _ in DEMO_HOLDERS)
    with Jpki(box.root / "jpki") as j:
        auth_ca, sign_ca = j.ca_pem(AUTH), j.ca_pem(SIGN)
    login = AuthVerifier(auth_ca, f"http://{jpki['http']}/ocsp/auth", nonce=True)
    signer = SignVerifier(sign_ca, f"http://{jpki['http']}/ocsp/sign")
    for name, facts in DEMO_HOLDERS:
        with Card(box.root / "cards" / name) as card:
            challenge = new_challenge()
            signed = card.sign_challenge(DEMO_AUTH_PIN, challenge)
            assert login.verify_login(challenge, signed.signature, signed.certificate_der).card_id == card.card_id
            if card.has(SIGN):
                doc = b"demo"
                s = card.sign(DEMO_SIGN_PIN, doc)
                assert signer.verify_signature(doc, s.signature, s.certificate_der).facts == facts
    assert not Card(box.root / "cards" / DEMO_HOLDERS[2][0]).has(SIGN)  # the demo child is under 15


def test_cli_login_against_the_box(box: RunningBox, tmp_path: Path) -> None:
    env = {**os.environ, "RENKEI_DATA": str(box.root)}

    def cli(*argv: str) -> str:
        r = subprocess.run([sys.executable, "-m", "renkei.cli", *argv], capture_output=True, text=True, env=env,
                           timeout=60, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, r.stderr
        return r.stdout

    ca = tmp_path / "auth-ca.pem"
    ca.write_text(cli("jpki", "ca-cert", "--kind", "auth"))
    challenge = new_challenge().hex()
    signed = json.loads(cli("card", "sign-challenge", "--card", str(box.root / "cards" / DEMO_HOLDERS[0][0]),
                            "--pin", DEMO_AUTH_PIN, "--challenge", challenge))
    who = json.loads(cli("card", "verify-login", "--ca", str(ca), "--ocsp",
                         f"http://{box.service('jpki')['http']}/ocsp/auth", "--challenge", challenge,
                         "--signature", signed["signature"], "--certificate", signed["certificate"]))
    assert who["card_id"] == signed["card_id"] and who["revocation"] == "ocsp"
    assert "jpki" in cli("status", "--dir", str(box.root))
