"""Provision permits: made by the engine, checked by an independent PASETO implementation, and
every defect (tampered, expired, wrong key, replayed, not in batch, malformed) told apart."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from renkei import cli
from renkei import errors as E
from renkei._core import permits as _pm
from renkei.permissions.engine import AgencyFacts, PermissionEngine
from renkei.permits import PermitIssuer, PermitVerifier, verify_permit
from tests.datadirs import core_dir
from tests.reference import paseto_ref as ref

NOW = 1_764_000_000
SEED = bytes(range(32))
VERSION = bytes.fromhex("55fab4e324eab1de4b6643fca9cc53ae3002563f604865db4c45fe24eb0a5d7e")
PERSON = bytes.fromhex("00112233445566778899aabbccddeeff")
# Agencies by 法人番号 (13 digits), real-network 事務手続コード / 特定個人情報名コード shapes.
REQ, PROV, JT, TM = "6000012070001", "8000020131016", "JT01010000000101", "TM01010000000101"


@pytest.fixture
def issuer() -> PermitIssuer:
    return PermitIssuer(SEED)


def _issue(issuer: PermitIssuer, **kw: object) -> str:
    args: dict[str, object] = dict(requester=REQ, provider=PROV, person=PERSON, affair=JT, items=[TM],
                                   table_version=VERSION, ledger_seq=123_456_789_012, now=NOW)
    args.update(kw)
    return issuer.issue(**args).token  # type: ignore[arg-type]


def test_single_permit_verified_by_independent_implementation(issuer: PermitIssuer) -> None:
    token = _issue(issuer)
    assert len(token) <= 400
    claims = ref.verify(token, issuer.public_key, NOW)
    assert claims["r"] == REQ and claims["p"] == PROV and claims["a"] == JT and claims["m"] == [TM]
    assert ref.crockford_decode(claims["c"]) == PERSON
    assert ref.b64d(claims["v"]) == VERSION[:16]
    assert claims["s"] == 123_456_789_012 and claims["i"] == NOW and claims["i"] + claims["t"] == NOW + 300
    assert len(ref.b64d(claims["j"])) == 12
    assert issuer.key_id == ref.key_id(issuer.public_key)


def test_engine_verifies_independently_signed_permit(issuer: PermitIssuer) -> None:
    wire = {"j": ref.b64e(b"\x01" * 12), "r": REQ, "p": PROV, "a": JT, "v": ref.b64e(VERSION[:16]),
            "s": 7, "i": NOW, "t": 60, "c": "0" + "1" * 25, "m": [TM]}
    token = ref.sign(SEED, wire)
    p = PermitVerifier(issuer.public_key).verify(token, NOW + 59)
    assert (p.requester, p.affair, p.items, p.ledger_seq, p.expires_at) == (REQ, JT, (TM,), 7, NOW + 60)


def test_size_with_real_bundled_codes(issuer: PermitIssuer) -> None:
    e = PermissionEngine.with_default()
    (v,) = e.versions()
    affair, items = e.permit_codes(v.label, "beppyo2-1", ["long_term_care_insurance_benefit_info"])
    assert (affair, items) == ("B2.1", ["B2.1.2.3"])
    assert len(_issue(issuer, affair=affair, items=items, table_version=v.hash)) <= 400


def _defect(fn: object) -> str:
    with pytest.raises(E.PermitError) as info:
        fn()  # type: ignore[operator]
    return info.value.defect


def test_every_defect_has_its_own_reason(issuer: PermitIssuer) -> None:
    token = _issue(issuer)
    v = PermitVerifier(issuer.public_key)
    assert v.verify(token, NOW).ledger_seq == 123_456_789_012
    # Replayed: the same permit again, before it expires.
    assert _defect(lambda: v.verify(token, NOW + 1)) == "replayed"
    fresh = lambda: PermitVerifier(issuer.public_key)  # noqa: E731
    # Expired: at the expiry second.
    assert _defect(lambda: fresh().verify(token, NOW + 300)) == "expired"
    # Wrong key: a well-formed permit from another signer.
    other = _issue(PermitIssuer(bytes(32)))
    assert _defect(lambda: fresh().verify(other, NOW)) == "wrong_key"
    # Tampered: a claim changed (re-encoded, signature kept), and a flipped signature bit.
    head, body, footer = token.rsplit(".", 2)[0], token.split(".")[2], token.split(".")[3]
    raw = ref.b64d(body)
    m, sig = raw[:-64], raw[-64:]
    forged = m.replace(PROV.encode(), b"8000020271004")
    assert forged != m
    assert _defect(lambda: fresh().verify(f"{head}.{ref.b64e(forged + sig)}.{footer}", NOW)) == "tampered"
    flipped = sig[:10] + bytes([sig[10] ^ 0x40]) + sig[11:]
    assert _defect(lambda: fresh().verify(f"{head}.{ref.b64e(m + flipped)}.{footer}", NOW)) == "tampered"
    # Malformed.
    for bad in ["", "v4.local." + body + "." + footer, "v4.public." + body, token + "=", "v4.public.!!.!!"]:
        assert _defect(lambda b=bad: fresh().verify(b, NOW)) == "malformed"  # type: ignore[misc]
    # The independent implementation sees the same defects.
    for tok, now, want in [(token, NOW + 300, "expired"), (other, NOW, "wrong_key"),
                           (f"{head}.{ref.b64e(forged + sig)}.{footer}", NOW, "tampered")]:
        with pytest.raises(ref.Reject) as info:
            ref.verify(tok, issuer.public_key, now)
        assert info.value.defect == want
    # Each defect is its own class with its own gRPC reason.
    reasons = {c.reason for c in (E.PermitMalformedError, E.PermitWrongKeyError, E.PermitTamperedError,
                                  E.PermitExpiredError, E.PermitReplayedError, E.PermitNotInBatchError)}
    assert len(reasons) == 6


@settings(max_examples=60)
@given(st.integers(0, 10_000), st.integers(0, 7))
def test_any_flipped_bit_is_detected(pos: int, bit: int) -> None:
    issuer = PermitIssuer(SEED)
    token = _issue(issuer)
    _, _, body, footer = token.split(".")
    raw = bytearray(ref.b64d(body))
    raw[pos % len(raw)] ^= 1 << bit
    bad = f"v4.public.{ref.b64e(bytes(raw))}.{footer}"
    assert _defect(lambda: PermitVerifier(issuer.public_key).verify(bad, NOW)) in {"tampered", "malformed"}


def test_replay_cache_forgets_expired_permits(issuer: PermitIssuer) -> None:
    v = PermitVerifier(issuer.public_key)
    for k in range(3000):
        v.verify(_issue(issuer, now=NOW + k, lifetime=1), NOW + k)
    assert v.remembered < 3000  # expired ids are purged, memory stays bounded
    no_cache = PermitVerifier(issuer.public_key, replay_cache=False)
    token = _issue(issuer)
    no_cache.verify(token, NOW)
    no_cache.verify(token, NOW)


def test_batch_permit_one_signature_per_item_check(issuer: PermitIssuer) -> None:
    persons = b"".join(bytes([k]) * 16 for k in range(37))
    items = [TM, "TM01010000000102"]
    bp = issuer.issue_batch(requester=REQ, provider=PROV, persons=persons, affair=JT, items=items,
                            table_version=VERSION, ledger_seq=1000, now=NOW)
    claims = ref.verify(bp.token, issuer.public_key, NOW)
    leaves = [ref.batch_leaf(k, persons[16 * k:16 * k + 16], items) for k in range(37)]
    assert claims["n"] == 37 and ref.b64d(claims["h"]) == ref.mth(leaves) == bp.tree.root
    assert len(bp.token) <= 400
    v = PermitVerifier(issuer.public_key)
    for k in range(37):
        assert ref.verify_inclusion(leaves[k], k, 37, bp.proof(k), bp.tree.root)
        assert bytes(_pm.batch_leaf(k, persons[16 * k:16 * k + 16], items)) == leaves[k]
        got = v.verify_batch_item(bp.token, k, persons[16 * k:16 * k + 16], items, bp.proof(k), NOW)
        assert got.index == k and got.count == 37
    assert _defect(lambda: v.verify_batch_item(bp.token, 3, persons[48:64], items, bp.proof(3), NOW)) == "replayed"
    w = PermitVerifier(issuer.public_key)
    assert _defect(lambda: w.verify_batch_item(bp.token, 4, b"\xee" * 16, items, bp.proof(4), NOW)) == "not_in_batch"
    assert _defect(lambda: w.verify_batch_item(bp.token, 4, persons[64:80], [TM], bp.proof(4), NOW)) == "not_in_batch"
    assert _defect(lambda: w.verify_batch_item(bp.token, 5, persons[64:80], items, bp.proof(4), NOW)) == "not_in_batch"
    assert _defect(lambda: w.verify_batch_item(bp.token, 4, persons[64:80], items, bp.proof(4), NOW + 300)) == "expired"
    with pytest.raises(E.InvalidArgumentError):
        w.verify(bp.token, NOW)  # a batch permit is not a single permit


def test_bad_arguments_are_clear_errors(issuer: PermitIssuer) -> None:
    for kw in [dict(person=b"short"), dict(items=[]), dict(requester=""), dict(lifetime=0),
               dict(table_version=b"x"), dict(items=["é"])]:
        with pytest.raises(E.InvalidArgumentError):
            _issue(issuer, **kw)
    with pytest.raises(E.KeyFileError):
        PermitIssuer(b"short")
    with pytest.raises(E.KeyFileError):
        PermitVerifier(b"\x00" * 31)


def test_signing_key_lives_in_the_data_dir_and_cli_verifies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = core_dir(tmp_path / "data")
    issuer = PermitIssuer.from_datadir(d)
    key_file = d.keys / "permit-signing.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600 and len(key_file.read_bytes()) == 32
    assert PermitIssuer.from_datadir(d).public_key == issuer.public_key
    token = _issue(issuer, now=None)
    assert verify_permit(token, issuer.public_key).provider == PROV
    assert cli.main(["permit", "verify", token, "--data-dir", str(d.path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["valid"] and out["person"] == _pm.crockford(PERSON) and out["items"] == [TM]
    assert cli.main(["permit", "public-key", "--data-dir", str(d.path)]) == 0
    assert capsys.readouterr().out.strip() == issuer.public_key.hex()
    assert cli.main(["permit", "verify", token, "--public-key", PermitIssuer(bytes(32)).public_key.hex()]) == 1
    assert "another key" in capsys.readouterr().err
    expired = _issue(issuer, now=NOW)
    assert cli.main(["permit", "verify", expired, "--data-dir", str(d.path)]) == 1
    assert "expired" in capsys.readouterr().err


def test_permit_for_an_allowed_check_end_to_end(issuer: PermitIssuer) -> None:
    e = PermissionEngine.with_default()
    r = e.check(AgencyFacts("mhlw_minister"), "beppyo2-1", AgencyFacts("municipal_mayor"), ["local_tax_info"])
    assert r.allowed and r.version_label and r.version_hash
    affair, items = e.permit_codes(r.version_label, "beppyo2-1", ["local_tax_info"])
    p = issuer.issue(requester=REQ, provider=PROV, person=PERSON, affair=affair, items=items,
                     table_version=r.version_hash, ledger_seq=1)
    got = verify_permit(p.token, issuer.public_key)
    assert got.table_version == r.version_hash[:16] and got.items == ("B2.1.2.1",)


def test_grpc_wire_form_round_trips_and_signature_is_over_body(issuer: PermitIssuer) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from renkei.permits import from_wire, to_wire

    token = _issue(issuer)
    body, sig, kid = to_wire(token)
    Ed25519PublicKey.from_public_bytes(issuer.public_key).verify(sig, body)  # raises if not
    assert kid == ref.b64e(issuer.key_id)
    assert from_wire(body, sig, kid) == token
    assert PermitVerifier(issuer.public_key).verify(from_wire(body, sig, kid), NOW).provider == PROV
    for bad in [(body[:-1], sig, kid), (body + b"x", sig, kid), (body, sig[:63], kid), (body, sig, "AAAAAAAA"),
                (b"", sig, kid), (b"\x04" + b"\x00" * 7, sig, kid)]:
        with pytest.raises(E.PermitMalformedError):
            from_wire(*bad)
    with pytest.raises(E.PermitMalformedError):
        to_wire("v4.public.abc")
