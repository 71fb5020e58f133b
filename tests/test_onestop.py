"""ワンストップ申請 without processes: the document (canonical, no My Number), the intermediate
server's own signature check, and the application's life in mid.sqlite3 (durable, per tenant)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from renkei import onestop
from renkei.datadir import DataDir
from renkei.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError
from renkei.mid.store import MidStore

FORM = {"child_name": "山田 花子", "child_birth": "2024-05-01", "relationship": "子",
        "bank_account": "みずほ銀行 千代田支店 1234567"}


def _signer() -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return key, cert.public_bytes(serialization.Encoding.DER)


def test_the_document_is_canonical_complete_and_never_holds_a_my_number() -> None:
    doc = onestop.build("child-allowance-claim", 1, FORM)
    parsed = onestop.parse(doc)
    assert parsed["fields"] == FORM and parsed["municipality"] == 1 and parsed["affair"] == "beppyo2-74"
    assert onestop.build("child-allowance-claim", 1, FORM) != doc  # a fresh nonce each time
    with pytest.raises(InvalidArgumentError, match="児童の氏名"):
        onestop.build("child-allowance-claim", 1, {**FORM, "child_name": " "})
    with pytest.raises(InvalidArgumentError, match="YYYY-MM-DD"):
        onestop.build("child-allowance-claim", 1, {**FORM, "child_birth": "令和6年"})
    # 123456789018 is a valid My Number (check digit 8); full-width digits are caught too.
    for value in ("番号 123456789018", "１２３４５６７８９０１８"):
        with pytest.raises(InvalidArgumentError, match="個人番号"):
            onestop.build("child-allowance-claim", 1, {**FORM, "relationship": value})
    with pytest.raises(InvalidArgumentError):
        onestop.build("no-such-procedure", 1, FORM)
    pretty = json.dumps(json.loads(doc), indent=1).encode()
    with pytest.raises(InvalidArgumentError, match="canonical"):
        onestop.parse(pretty)


def test_the_mid_checks_the_signature_over_the_exact_bytes_and_the_addressee() -> None:
    key, cert = _signer()
    doc = onestop.build("child-allowance-claim", 1, FORM)
    sig = key.sign(doc, padding.PKCS1v15(), hashes.SHA256())
    assert onestop.check_signed(doc, sig, cert, 1)["fields"] == FORM
    with pytest.raises(InvalidArgumentError, match="another municipality"):
        onestop.check_signed(doc, sig, cert, 2)
    tampered = doc.replace("山田 花子".encode(), "山田 太郎".encode())
    with pytest.raises(InvalidArgumentError, match="does not verify"):
        onestop.check_signed(tampered, sig, cert, 1)
    _other, other_cert = _signer()
    with pytest.raises(InvalidArgumentError, match="does not verify"):
        onestop.check_signed(doc, sig, other_cert, 1)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MidStore]:
    s = MidStore(DataDir.init(tmp_path / "mid", "mid"))
    yield s
    s.close()


def test_an_application_moves_through_its_statuses_per_tenant_and_survives_a_reopen(
        store: MidStore, tmp_path: Path) -> None:
    a = store.add_application(1, b"{}", b"sig", b"cert")
    assert (a.status, a.exchanges) == ("受付", ())
    with pytest.raises(NotFoundError):
        store.check_application(2, a.id)  # another tenant's application is not there for it
    store.update_application(1, a.id, "審査中", "")
    store.link_exchange(1, a.id, 10, 11, "beppyo2-74", 2, "provided")
    got = store.applications(1, [a.id, 999])
    assert [(x.status, [(e.inquiry_seq, e.provision_seq) for e in x.exchanges]) for x in got] == [
        ("情報照会済", [(10, 11)])]
    with pytest.raises(InvalidArgumentError):
        store.update_application(1, a.id, "受付", "")
    done = store.update_application(1, a.id, "決定", "令和8年1月分から支給します。")
    assert done.status == "決定"
    with pytest.raises(FailedPreconditionError, match="already decided"):
        store.update_application(1, a.id, "却下", "")
    store.close()
    again = MidStore(DataDir(tmp_path / "mid", "mid"))
    try:
        assert [(x.status, x.note, x.document) for x in again.applications(1)] == [
            ("決定", "令和8年1月分から支給します。", b"{}")]
    finally:
        again.close()
