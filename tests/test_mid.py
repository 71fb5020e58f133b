"""Intermediate servers in one process: the store (宛名, 符号, 副本 with the real error cases),
end-to-end sealing (HPKE + provider signature, every tamper refused) and the provider/requester
round trip with a real permit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from renkei.errors import FailedPreconditionError, InvalidArgumentError, PermitError, ProvisionTamperedError
from renkei.mid import sealing
from renkei.mid.platform import NO_DATA, PROVIDED, Catalog, Platform, Tenant
from renkei.mid.store import (
    CODE_NOT_ACQUIRED,
    DUPLICATE_RECORD_KEY,
    INVALID,
    ITEM_NOT_PROVIDED,
    REGISTERED,
    UNCHANGED,
    Duplicate,
)
from renkei.permits import PermitIssuer, from_wire, to_wire
from renkei.pki.ca import DevelopmentCA

CITY, MINISTER = 1, 4
ATENA = "001000000000007"


def _tax(atena: str = ATENA, version: int = 1, key: str = "T2025-7", year: int = 2025, income: int = 4_000_000,
         item: str = "local_tax_info") -> Duplicate:
    return Duplicate(atena, item, "0001", version, key, f"{year}-06-01",
                     {"総所得金額": income, "市町村民税額": 300_000}, f"{year}-06-01", fiscal_year=year)


@pytest.fixture
def platform(tmp_path: Path) -> Platform:
    ca = DevelopmentCA.init(tmp_path / "pki")
    ca.issue_agency_certificate(CITY, "千代田区長")
    data = Platform.init(tmp_path / "mid", [Tenant(CITY, "千代田区長", ("municipal_mayor",))])
    ca.export_client("agency-1", data.path / "tenants" / "agency-1")
    p = Platform(data)
    yield p
    p.close()


def test_store_registration_errors_are_the_real_ones(platform: Platform) -> None:
    store = platform.store
    providable = platform.catalog.providable(("municipal_mayor",))
    assert "local_tax_info" in providable and "pension_benefit_info" not in providable
    assert store.register_addressees(CITY, [(ATENA, ["A-7"], 621498320257)]) == 1
    assert store.register_addressees(CITY, [(ATENA, ["A-7b"], None)]) == 0  # merged, not new
    assert store.register_duplicates(CITY, [_tax()], providable) == [CODE_NOT_ACQUIRED]  # 符号が未取得です
    with pytest.raises(FailedPreconditionError, match="符号が未取得"):
        store.code_of(CITY, ATENA)
    assert store.awaiting_codes(CITY) == [(ATENA, 621498320257)]
    store.set_codes(CITY, [(ATENA, b"C" * 16)])
    store.forget_number(CITY, [ATENA])
    assert store.awaiting_codes(CITY) == []  # the My Number is gone once the code is held
    assert store.register_duplicates(CITY, [_tax()], providable) == [REGISTERED]
    assert store.register_duplicates(CITY, [_tax()], providable) == [UNCHANGED]  # idempotent retry
    assert store.register_duplicates(CITY, [_tax(income=1)], providable) == [DUPLICATE_RECORD_KEY]
    assert store.register_duplicates(CITY, [_tax(item="pension_benefit_info", key="P")], providable) == [
        ITEM_NOT_PROVIDED]
    bad = Duplicate(ATENA, "local_tax_info", "0001", 0, "x", "2025-02-30", {}, "2025-01-01")
    assert store.register_duplicates(CITY, [bad], providable) == [INVALID]
    with pytest.raises(InvalidArgumentError):
        store.register_addressees(CITY, [("123", [], None)])
    with pytest.raises(InvalidArgumentError):  # other scripts' digits are not digits here
        store.register_addressees(CITY, [("٠٠١٠٠٠٠٠٠٠٠٠٠٠٧", [], None)])
    with pytest.raises(InvalidArgumentError):
        store.register_addressees(CITY, [(ATENA + "\n", [], None)])


def test_addressees_merge_within_and_across_calls(platform: Platform) -> None:
    store, other = platform.store, "001000000000008"
    assert store.register_addressees(CITY, [(other, ["B-2"], None), (other, ["B-1"], 621498320257),
                                            (ATENA, ["A"], None)]) == 2
    assert store.register_addressees(CITY, [(other, ["B-3", "B-1"], 123456789018), (ATENA, [], None)]) == 0
    ids, number = store._db.execute("SELECT business_ids, my_number FROM addressees WHERE atena = ?",
                                    (other,)).fetchone()
    assert (json.loads(ids), number) == (["B-1", "B-2", "B-3"], 621498320257)  # the first number is kept
    assert store.awaiting_codes(CITY) == [(other, 621498320257)]


def test_versions_and_fiscal_years_pick_the_record_in_force(platform: Platform) -> None:
    store = platform.store
    providable = platform.catalog.providable(("municipal_mayor",))
    store.register_addressees(CITY, [(ATENA, [], None)])
    store.set_codes(CITY, [(ATENA, b"C" * 16)])
    store.register_duplicates(CITY, [_tax(year=2024, key="T2024-7", income=1), _tax(year=2025, income=2),
                                     _tax(year=2025, income=3, version=2)], providable)
    by_year = store.duplicates_for(CITY, [ATENA], ["local_tax_info"], fiscal_year=2025)
    assert [r["values"]["総所得金額"] for r in by_year[ATENA]] == [3]  # the latest version
    assert store.duplicates_for(CITY, [ATENA], ["local_tax_info"], fiscal_year=2023) == {}
    from datetime import date

    at = store.duplicates_for(CITY, [ATENA], ["local_tax_info"], at=date(2025, 1, 1))
    assert [r["fiscal_year"] for r in at[ATENA]] == [2024]  # 2025's record starts on 2025-06-01


def test_sealed_provision_opens_only_for_the_requester_and_every_tamper_is_refused(tmp_path: Path) -> None:
    ca = DevelopmentCA.init(tmp_path / "pki")
    cert = ca.issue_agency_certificate(CITY, "千代田区長")
    other = ca.issue_agency_certificate(2, "横浜市長")
    from renkei.mid.platform import load_private_key

    key, other_key = load_private_key(cert.private_key), load_private_key(other.private_key)
    header = sealing.ProvisionHeader(b"P" * 16, MINISTER, CITY, "beppyo2-1", ("local_tax_info",), 1, "provided")
    private, public = sealing.new_recipient_key()
    sealed = sealing.seal(header, b'{"persons": []}', public)
    signature = sealing.sign(header, sealed, key)
    pem, ca_pem = cert.certificate.read_bytes(), ca.ca_cert_path.read_bytes()
    sealing.verify(header, sealed, signature, pem, ca_pem)
    assert sealing.open_sealed(header, sealed, private) == b'{"persons": []}'
    flipped = bytearray(sealed)
    flipped[40] ^= 1
    wrong = [
        lambda: sealing.verify(header, bytes(flipped), signature, pem, ca_pem),  # changed in transit
        lambda: sealing.open_sealed(header, bytes(flipped), private),
        lambda: sealing.open_sealed(header, sealed, X25519PrivateKey.generate()),  # not for us
        lambda: sealing.verify(header, sealed, sealing.sign(header, sealed, other_key), other.certificate.read_bytes(),
                               ca_pem),  # another agency's signature
        lambda: sealing.open_sealed(sealing.ProvisionHeader(b"Q" * 16, *list(header.__dict__.values())[1:]), sealed,
                                    private),  # replayed under another permit
        lambda: sealing.verify(header, sealed, signature, pem, DevelopmentCA.init(tmp_path / "x").ca_cert_path
                               .read_bytes()),  # another CA
    ]
    for attempt in wrong:
        with pytest.raises(ProvisionTamperedError):
            attempt()


def test_provider_answers_from_its_duplicates_and_requester_opens(platform: Platform, tmp_path: Path) -> None:
    issuer = PermitIssuer(b"k" * 32)
    platform.set_permit_key(issuer.public_key)
    store = platform.store
    store.register_addressees(CITY, [(ATENA, [], None)])
    code = bytes(range(16))
    store.set_codes(CITY, [(ATENA, code)])
    store.register_duplicates(CITY, [_tax()], platform.catalog.providable(("municipal_mayor",)))
    permit = issuer.issue(requester=str(MINISTER), provider=str(CITY), person=code, affair="B2.1",
                          items=["B2.1.2.1"], table_version=b"\0" * 16, ledger_seq=5)
    token = from_wire(*to_wire(permit.token))
    private, public = sealing.new_recipient_key()
    header, sealed, signature, outcome = platform.answer(
        CITY, permit_token=token, permit_id=permit.permit_id, requester=MINISTER, affair="beppyo2-1",
        items=["B2.1.2.1"], codes=code, fiscal_year=2025, as_of="", recipient_public_key=public)
    assert outcome == PROVIDED
    cert = platform.credentials(CITY).certificate.read_bytes()
    ca_pem = platform.credentials(CITY).ca.read_bytes()
    h, answer = Platform.open_answer(header, sealed, signature, cert, ca_pem, private, permit_id=permit.permit_id,
                                     requester=MINISTER, provider=CITY)
    assert h.outcome == PROVIDED and answer["persons"][0]["records"][0]["values"]["総所得金額"] == 4_000_000
    assert json.dumps(answer, ensure_ascii=False).count("総所得金額") == 1
    # The same permit again: replayed, refused by the provider.
    with pytest.raises(PermitError):
        platform.answer(CITY, permit_token=token, permit_id=permit.permit_id, requester=MINISTER,
                        affair="beppyo2-1", items=["B2.1.2.1"], codes=code, fiscal_year=2025, as_of="",
                        recipient_public_key=public)
    # No 副本 for that year: "no data", still sealed and signed.
    permit2 = issuer.issue(requester=str(MINISTER), provider=str(CITY), person=code, affair="B2.1",
                           items=["B2.1.2.1"], table_version=b"\0" * 16, ledger_seq=6)
    _h, _s, _sig, outcome2 = platform.answer(
        CITY, permit_token=permit2.token, permit_id=permit2.permit_id, requester=MINISTER, affair="beppyo2-1",
        items=["B2.1.2.1"], codes=code, fiscal_year=2019, as_of="", recipient_public_key=public)
    assert outcome2 == NO_DATA
    # The provider's 記録管理 shows both answers.
    assert [e.outcome for e in store.exchanges(CITY)] == [PROVIDED, NO_DATA]


def test_catalog_resolves_ids_codes_and_aliases() -> None:
    c = Catalog()
    assert c.item("B2.1.2.1") == c.item("local_tax_info") == "local_tax_info"
    assert c.affair("B2.1") == "beppyo2-1"
    # Operational codes: TM00000000000002 is the code seen in use for 地方税関係情報.
    assert c.item("TM00000000000002") == "local_tax_info" and c.operational["local_tax_info"] == "TM00000000000002"
    assert c.affair("JT01010000000001") == "beppyo2-1"
    assert len({c.operational[i] for i in c.operational}) == len(c.operational) == 82 + 120  # one code each
    with pytest.raises(InvalidArgumentError):
        c.item("TM99999999999999")
    with pytest.raises(InvalidArgumentError):
        c.affair("TM00000000000002")  # an item's code is not an affair


def test_batch_answer_is_bound_to_the_batch_permit(platform: Platform) -> None:
    """A batch permit covers exactly its persons (refused ones as zero codes) and items: the
    provider rebuilds the tree from the codes the core forwarded; any other code list is refused."""
    issuer = PermitIssuer(b"k" * 32)
    platform.set_permit_key(issuer.public_key)
    store = platform.store
    atenas = [f"0010000000000{i:02d}" for i in range(3)]
    codes = [bytes([i + 1]) * 16 for i in range(3)]
    store.register_addressees(CITY, [(a, [], None) for a in atenas])
    store.set_codes(CITY, list(zip(atenas, codes, strict=True)))
    store.register_duplicates(CITY, [_tax(atenas[0], key="T-0"), _tax(atenas[2], key="T-2", income=7)],
                              platform.catalog.providable(("municipal_mayor",)))
    forwarded = codes[0] + bytes(16) + codes[2]  # the second person was refused by the core
    permit = issuer.issue_batch(requester=str(MINISTER), provider=str(CITY), persons=forwarded, affair="B2.1",
                                items=["B2.1.2.1"], table_version=b"\0" * 16, ledger_seq=9)
    private, public = sealing.new_recipient_key()

    def answer(codes_sent: bytes, items: list[str] = ["B2.1.2.1"]) -> tuple[bytes, bytes, bytes, str]:  # noqa: B006
        return platform.answer(CITY, permit_token=permit.token, permit_id=permit.permit_id, requester=MINISTER,
                               affair="JT01010000000001", items=items, codes=codes_sent, fiscal_year=2025,
                               as_of="", recipient_public_key=public)

    with pytest.raises(PermitError):  # another person in the place of a refused one
        answer(codes[0] + codes[1] + codes[2])
    with pytest.raises(PermitError):  # other items
        answer(forwarded, ["B2.1.2.2"])
    header, sealed, signature, outcome = answer(forwarded)
    cert, ca_pem = platform.credentials(CITY).certificate.read_bytes(), platform.credentials(CITY).ca.read_bytes()
    h, opened = Platform.open_answer(header, sealed, signature, cert, ca_pem, private, permit_id=permit.permit_id,
                                     requester=MINISTER, provider=CITY)
    assert (h.persons, outcome) == (3, PROVIDED)
    incomes = {p["index"]: [r["values"]["総所得金額"] for r in p["records"]] for p in opened["persons"]}
    assert incomes == {0: [4_000_000], 2: [7]}  # the refused person is not answered at all
