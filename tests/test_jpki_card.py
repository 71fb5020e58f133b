"""The card as a software token: PIN rules, counters on the chip (durable, across processes, not
reset by copying the file), the municipality's reset, and what the token file holds."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from renkei.errors import AlreadyExistsError, InvalidArgumentError, PinLockedError, StorageError, WrongPinError
from renkei.jpki.ca import Jpki
from renkei.jpki.card import Card, issue_card, reset_pin
from renkei.jpki.profile import AUTH, SIGN
from tests.jpki_helpers import AUTH_PIN, FACTS, SIGN_PIN, new_card

CHALLENGE = b"c" * 32


@pytest.fixture
def jpki(tmp_path: Path) -> Jpki:
    return Jpki.init(tmp_path / "jpki")


def _cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "renkei.cli", *argv], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def test_auth_key_locks_after_three_wrong_pins(jpki: Jpki, tmp_path: Path) -> None:
    card = new_card(jpki, tmp_path / "card.json")
    for left in (2, 1, 0):
        with pytest.raises(WrongPinError) as e:
            card.sign_challenge("9999", CHALLENGE)
        assert e.value.remaining == left
        assert "9999" not in str(e.value)
    assert card.pin_state(AUTH).locked
    with pytest.raises(PinLockedError):
        card.sign_challenge(AUTH_PIN, CHALLENGE)  # the right PIN no longer helps
    card.sign(SIGN_PIN, b"doc")  # the signing key has its own counter
    assert card.pin_state(SIGN).failures == 0


def test_sign_key_locks_after_five_and_a_right_pin_clears_the_count(jpki: Jpki, tmp_path: Path) -> None:
    card = new_card(jpki, tmp_path / "card.json")
    for _ in range(4):
        with pytest.raises(WrongPinError):
            card.sign("WRONG1", b"doc")
    assert card.pin_state(SIGN).remaining == 1
    card.sign(SIGN_PIN, b"doc")
    assert card.pin_state(SIGN).failures == 0
    for left in (4, 3, 2, 1, 0):
        with pytest.raises(WrongPinError) as e:
            card.sign("WRONG1", b"doc")
        assert e.value.remaining == left
    with pytest.raises(PinLockedError):
        card.sign(SIGN_PIN, b"doc")
    card.sign_challenge(AUTH_PIN, CHALLENGE)


def test_malformed_pins_are_refused_before_the_chip(jpki: Jpki, tmp_path: Path) -> None:
    card = new_card(jpki, tmp_path / "card.json")
    for pin in ("123", "12345", "abcd", "１２３４"):
        with pytest.raises(InvalidArgumentError):
            card.sign_challenge(pin, CHALLENGE)
    for pin in ("ABCDEF", "123456", "abc123", "AB12", "A1" * 9, "ABC-123"):
        with pytest.raises(InvalidArgumentError):
            card.sign(pin, b"doc")
    assert card.pin_state(AUTH).failures == 0 and card.pin_state(SIGN).failures == 0
    with pytest.raises(InvalidArgumentError):
        issue_card(jpki, tmp_path / "bad.json", FACTS, "12a4", SIGN_PIN)
    with pytest.raises(InvalidArgumentError):
        issue_card(jpki, tmp_path / "bad.json", FACTS, AUTH_PIN, "ABCDEFG")
    assert not (tmp_path / "bad.json").exists()


def test_counter_is_durable_across_processes_and_copies(jpki: Jpki, tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    card = new_card(jpki, path)
    backup = tmp_path / "copy.json"
    shutil.copy(path, backup)
    pin_file = tmp_path / "pin"
    pin_file.write_text("0000\n")
    for _ in range(2):  # two wrong tries by other processes
        r = _cli("card", "sign-challenge", "--card", str(path), "--pin-file", str(pin_file),
                 "--challenge", CHALLENGE.hex())
        assert r.returncode == 1 and "wrong PIN" in r.stderr and "0000" not in r.stderr + r.stdout
    assert card.pin_state(AUTH).failures == 2
    # a copy of the file made before the tries gets no fresh counter: the counter is on the chip
    with Card(backup) as copy:
        assert copy.pin_state(AUTH).failures == 2
        with pytest.raises(WrongPinError) as e:
            copy.sign_challenge("0000", CHALLENGE)
        assert e.value.remaining == 0
    with pytest.raises(PinLockedError):
        card.sign_challenge(AUTH_PIN, CHALLENGE)
    # a restart of everything changes nothing
    jpki.close()
    with Jpki(tmp_path / "jpki") as again, Card(path) as reopened:
        assert reopened.pin_state(AUTH).locked
        assert again.store.slot(reopened.card_id, AUTH).failures == 3


def test_municipality_reset_unlocks_with_a_new_pin(jpki: Jpki, tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    card = new_card(jpki, path)
    serial = card.certificate(AUTH).serial_number
    for _ in range(3):
        with pytest.raises(WrongPinError):
            card.sign_challenge("0000", CHALLENGE)
    pin_file = tmp_path / "new-pin"
    pin_file.write_text("4321\n")
    r = _cli("card", "reset-pin", "--card", str(path), "--jpki-dir", str(tmp_path / "jpki"), "--kind", "auth",
             "--new-pin-file", str(pin_file))
    assert r.returncode == 0, r.stderr
    assert "4321" not in r.stdout + r.stderr
    with Card(path) as card:
        assert card.pin_state(AUTH).failures == 0
        with pytest.raises(WrongPinError):
            card.sign_challenge(AUTH_PIN, CHALLENGE)  # the old PIN is gone
        signed = card.sign_challenge("4321", CHALLENGE)
        assert card.certificate(AUTH).serial_number == serial  # same key and certificate
        assert card.pin_state(AUTH).failures == 0
        assert signed.certificate_der == card.certificate_der(AUTH)
    reset_pin(jpki, path, SIGN, "NEW9PIN")
    with Card(path) as card:
        card.sign("NEW9PIN", b"doc")


def test_token_file_holds_no_pin_and_no_clear_key(jpki: Jpki, tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    card = new_card(jpki, path)
    assert (path.stat().st_mode & 0o777) == 0o600
    text = path.read_text()
    token = json.loads(text)
    assert token["format"] == "renkei-jpki-card/1" and set(token["keys"]) == {AUTH, SIGN}
    assert AUTH_PIN not in text and SIGN_PIN not in text
    key = card._private_key(AUTH, AUTH_PIN)
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    raw = path.read_bytes()
    assert der not in raw and der[-64:] not in raw
    import base64
    for entry in token["keys"].values():
        blob = base64.b64decode(entry["key"])
        assert der not in blob and der[-64:] not in blob


def test_a_damaged_or_foreign_card_file_is_refused(jpki: Jpki, tmp_path: Path) -> None:
    a, b = new_card(jpki, tmp_path / "a.json"), new_card(jpki, tmp_path / "b.json")
    token = json.loads((tmp_path / "a.json").read_text())
    token["keys"][AUTH]["key"] = json.loads((tmp_path / "b.json").read_text())["keys"][AUTH]["key"]
    (tmp_path / "mixed.json").write_text(json.dumps(token))
    with Card(tmp_path / "mixed.json") as mixed, pytest.raises(StorageError):
        mixed.sign_challenge(AUTH_PIN, CHALLENGE)
    assert a.pin_state(AUTH).failures == 0  # a right PIN: the chip counted nothing
    (tmp_path / "junk.json").write_text("{}")
    with pytest.raises(StorageError):
        Card(tmp_path / "junk.json")
    with pytest.raises(AlreadyExistsError):
        new_card(jpki, tmp_path / "a.json")
    b.sign_challenge(AUTH_PIN, CHALLENGE)


def test_cli_issue_and_sign_challenge(tmp_path: Path) -> None:
    jdir = tmp_path / "jpki"
    assert _cli("jpki", "init", "--data-dir", str(jdir)).returncode == 0
    out = tmp_path / "cards" / "card.json"
    r = _cli("card", "issue", "--jpki-dir", str(jdir), "--out", str(out), "--name", FACTS.name, "--birth",
             "1984-02-29", "--sex", "1", "--address", FACTS.address, "--auth-pin", "1234", "--sign-pin", "ABC123")
    assert r.returncode == 0, r.stderr
    shown = re.sub(r"serial \d+", "serial N", r.stdout)  # a random serial may contain the digits 1234
    assert FACTS.name not in shown and "1234" not in shown and "ABC123" not in shown
    assert (out.parent.stat().st_mode & 0o777) == 0o700
    r = _cli("card", "sign-challenge", "--card", str(out), "--pin", "1234", "--challenge", os.urandom(32).hex())
    assert r.returncode == 0, r.stderr
    reply = json.loads(r.stdout)
    assert set(reply) == {"card_id", "signature", "certificate"}
    r = _cli("card", "status", "--card", str(out))
    assert r.returncode == 0 and "3 PIN tries left" in r.stdout and "5 PIN tries left" in r.stdout
    assert FACTS.name not in r.stdout
