"""J-LIS in one process: 本人確認情報 with history, entitlements and the query log, the card office
(application, issuance with the 券面事項入力補助AP, suspension, replacement, changes of the person,
expiry) and the 個人番号通知書 (queued with the number, rendered to a PDF read back with pypdf)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pypdf import PdfReader

from renkei.errors import (
    AmbiguousMatchError,
    CardSignatureError,
    CardUntrustedError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotEntitledError,
    NotFoundError,
    PinLockedError,
    WrongPinError,
)
from renkei.jlis.authority import KENMEN_KEY_FILE, NumberAuthority
from renkei.jlis.cards import CardOffice, card_expiry
from renkei.jlis.facts import FactsRegistry, name_key
from renkei.jlis.info import PersonInfo
from renkei.jlis.notices import NoticeDesk, grouped, wareki
from renkei.jlis.queries import Entitlements, QueryLog
from renkei.jpki.ca import Jpki
from renkei.jpki.card import Card, write_kenmen
from renkei.jpki.kenmen import KenmenData, KenmenSigner, KenmenVerifier, SignedKenmen
from renkei.jpki.profile import SIGN, BasicFacts, signing_facts
from renkei.ledger import opens, verify_checkpoint, verify_inclusion, verify_log_dir
from renkei.numbers import resident_check_digit

TARO = BasicFacts("山田 太郎", dt.date(1980, 4, 1), "1", "東京都千代田区霞が関一丁目1番1号")
HANAKO = BasicFacts("山田 花子", dt.date(1992, 2, 29), "2", "東京都千代田区霞が関一丁目1番1号")
CHILD = BasicFacts("山田 一郎", dt.date(2018, 5, 5), "1", "東京都千代田区霞が関一丁目1番1号")


def code(i: int) -> str:
    body = f"{5000000000 + i:010d}"
    return f"{body}{resident_check_digit(body)}"


@dataclass
class World:
    root: Path
    numbers: NumberAuthority
    facts: FactsRegistry
    entitlements: Entitlements
    log: QueryLog
    cards: CardOffice
    info: PersonInfo
    jpki: Jpki

    def person(self, i: int, facts: BasicFacts) -> tuple[str, bytes]:
        number = self.numbers.assign(code(i))
        link = self.numbers.link_id(int(code(i)))
        self.facts.report(link, "registration", "2020-01-01", facts, "131016")
        return number, link

    def card(self, link: bytes, path: Path, reason: str = "new") -> Card:
        app = self.cards.apply(link, reason, "sha256:" + "ab" * 32, "jlis")
        issued = self.cards.issue(app.application_id, auth_pin="1234", sign_pin="ABC123", kenmen_pin="4321",
                                  actor="jlis")
        path.write_bytes(issued.token)
        return Card(path)


@pytest.fixture(scope="module")
def jpki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("jpki") / "jpki"
    Jpki.init(path).close()
    return path


@pytest.fixture
def world(tmp_path: Path, jpki_dir: Path) -> Iterator[World]:
    numbers = NumberAuthority.init(tmp_path / "jlis")
    d = numbers.data_dir
    facts, entitlements = FactsRegistry(d), Entitlements(d)
    log = QueryLog(d, numbers.link_key)
    cards = CardOffice(d, numbers, facts, log, jpki_dir)
    assert cards.jpki is not None
    yield World(tmp_path, numbers, facts, entitlements, log, cards, PersonInfo(numbers, facts, entitlements, log,
                                                                               cards), cards.jpki)
    cards.close()
    log.close()
    entitlements.close()
    facts.close()
    numbers.close()


def test_facts_keep_every_version_by_link_id_and_never_the_resident_code(world: World) -> None:
    _, link = world.person(1, TARO)
    moved = BasicFacts(TARO.name, TARO.birth, TARO.sex, "大阪府大阪市北区中之島一丁目3番20号")
    r = world.facts.report(link, "move_in", "2024-04-01", moved, "271004")
    assert r.version == 2 and r.changed == frozenset({"address"}) and "大阪" not in repr(r)
    r = world.facts.report(link, "name_change", "2025-01-10", moved.changed(name="佐藤 太郎"), "271004")
    assert r.changed == frozenset({"name"})
    history = world.facts.history(link)
    assert [(v.version, v.event, v.effective_on.isoformat(), v.municipality) for v in history] == [
        (1, "registration", "2020-01-01", "131016"), (2, "move_in", "2024-04-01", "271004"),
        (3, "name_change", "2025-01-10", "271004")]
    assert history[0].facts == TARO and world.facts.current(link).facts.name == "佐藤 太郎"  # type: ignore[union-attr]
    # A search compares names after NFKC without spaces; the former name no longer matches.
    assert world.facts.search("佐藤　太郎", TARO.birth, "1") == [link]
    assert world.facts.search(TARO.name, TARO.birth, "1") == []
    assert name_key("ﾔﾏﾀﾞ ﾀﾛｳ") == "ヤマダタロウ"
    # Events in order: no change before a registration, no second registration, nothing after death.
    with pytest.raises(NotFoundError):
        world.facts.report(b"\x01" * 16, "move", "2024-01-01", TARO, "131016")
    with pytest.raises(FailedPreconditionError):
        world.facts.report(link, "birth", "2024-01-01", TARO, "131016")
    world.facts.report(link, "death", "2026-01-02", moved.changed(name="佐藤 太郎"), "271004")
    assert world.facts.current(link).deceased_on == dt.date(2026, 1, 2)  # type: ignore[union-attr]
    with pytest.raises(FailedPreconditionError):
        world.facts.report(link, "move", "2026-02-01", moved, "271004")
    world.facts.report(link, "correction", "2026-01-02", moved.changed(name="佐藤 太郎"), "271004")
    assert world.facts.search("佐藤 太郎", TARO.birth, "1") == []  # the dead are not found by 4情報
    with pytest.raises(InvalidArgumentError):
        world.facts.report(link, "move", "2999-01-01", moved, "271004")
    # The registry holds link ids, never resident codes.
    raw = b"".join(p.read_bytes() for p in (world.root / "jlis").glob("jlis.sqlite3*"))
    assert code(1).encode() not in raw and int(code(1)).to_bytes(8, "big") not in raw


def test_queries_need_an_entitlement_and_every_one_is_logged_without_the_answer(world: World) -> None:
    number, link = world.person(2, HANAKO)
    world.person(3, HANAKO.changed(address="北海道札幌市中央区北1条西2丁目"))  # same name, birth and sex
    info = world.info
    refused = info.decide_facts(7, "JT01", number=number)
    assert isinstance(refused.error, NotEntitledError) and refused.record.denied_code == 1
    grant = world.entitlements.grant(7, "facts", "JT01", "番号法 第14条第2項", "担当者A")
    world.entitlements.grant(7, "number", "JT01", "番号法 第14条第2項", "担当者A")
    ok = info.decide_facts(7, "JT01", number=number)
    assert ok.error is None and ok.answer.facts == HANAKO  # type: ignore[attr-defined]
    assert ok.record.table_hash == grant.basis_hash() and ok.record.requester == 7
    assert info.decide_facts(7, "OTHER", number=number).error is not None  # entitled per purpose
    by_code = info.decide_number(7, "JT01", resident_code=code(2))
    assert by_code.answer == number
    ambiguous = info.decide_number(7, "JT01", search=(HANAKO.name, HANAKO.birth, "2", None))
    assert isinstance(ambiguous.error, AmbiguousMatchError)
    narrowed = info.decide_number(7, "JT01", search=(HANAKO.name, HANAKO.birth, "2", HANAKO.address))
    assert narrowed.answer == number
    missing = info.decide_number(7, "JT01", search=("誰 も", HANAKO.birth, "2", None))
    assert isinstance(missing.error, NotFoundError) and missing.record.denied_code == 2
    seqs = [world.log.append(d.record) for d in (refused, ok, by_code, ambiguous, narrowed, missing)]
    assert seqs == list(range(6))
    # The log: signed checkpoint, every record included, the person's records by pseudonym; no facts, no number.
    cp = world.log.checkpoint()
    verify_checkpoint(cp.note, world.log.vkey)
    for seq in seqs:
        proof = world.log.ledger.prove_inclusion(seq, cp.size)
        verify_inclusion(seq, cp.size, proof.leaf_hash, proof.hashes, cp.root)
    mine = world.log.records_of(link)
    assert {r.items[0] for r in mine} == {"basic-facts", "individual-number"} and len(mine) == 3
    files = b"".join(p.read_bytes() for p in (world.root / "jlis" / "querylog").rglob("*") if p.is_file())
    for secret in (number.encode(), HANAKO.name.encode(), HANAKO.address.encode(), code(2).encode()):
        assert secret not in files
    # The ledger's layout: the public files carry the person only as a commitment; the pseudonym is
    # in the private openings (0600 in 0700 folders), which open the leaves. All of it verifies.
    log_dir = world.log.ledger.path
    public = b"".join(p.read_bytes() for p in log_dir.rglob("*")
                      if p.is_file() and p.relative_to(log_dir).parts[0] in ("tile", "checkpoint"))
    assert world.log.pseudonym(link) not in public
    for stored in world.log.ledger.stored(seqs):
        assert stored.entry[0] == 2 and opens(stored.entry, stored.opening)
    assert any(world.log.pseudonym(link) in p.read_bytes() for p in (log_dir / "open").rglob("*") if p.is_file())
    for p in (log_dir / "open").rglob("*"):
        assert p.stat().st_mode & 0o777 == (0o700 if p.is_dir() else 0o600)
    assert world.log.ledger.verify()["openings_checked"] == len(seqs)
    assert verify_log_dir(log_dir, world.log.vkey)["size"] == len(seqs)
    world.entitlements.revoke(grant.entitlement_id, "担当者B")
    assert isinstance(info.decide_facts(7, "JT01", number=number).error, NotEntitledError)
    with pytest.raises(InvalidArgumentError):
        world.entitlements.grant(7, "facts", "has space", "basis", "x")


def test_a_card_carries_the_ap_that_yields_the_number_after_its_pin(world: World) -> None:
    number, link = world.person(4, TARO)
    card = world.card(link, world.root / "card.json")
    assert card.has(SIGN) and card.has_kenmen()
    record = world.cards.card(card.card_id)
    assert record.state == "active" and record.expires_on == card_expiry(dt.date.today(), TARO.birth)
    assert record.expires_on.month == 4 and record.expires_on.day == 1  # the 10th birthday after issue
    verifier = KenmenVerifier((world.root / "jlis" / KENMEN_KEY_FILE).read_bytes())
    data = verifier.verify(card.read_kenmen("4321"))
    assert (data.individual_number, data.facts, data.card_id) == (number, TARO, card.card_id)
    # The AP's PIN has its own counter on the chip: 3 tries, then locked.
    for left in (2, 1):
        with pytest.raises(WrongPinError) as e:
            card.read_kenmen("0000")
        assert e.value.remaining == left  # type: ignore[attr-defined]
    with pytest.raises(WrongPinError):
        card.read_kenmen("0000")
    with pytest.raises(PinLockedError):
        card.read_kenmen("4321")
    card.sign_challenge("1234", b"c" * 32)  # the login key is another counter
    # The token file alone holds no number in clear, and a forged AP does not verify.
    token = (world.root / "card.json").read_bytes()
    assert number.encode() not in token and TARO.name.encode() not in token
    forged = SignedKenmen(data.encode().replace(number.encode(), b"123456789018"), b"\x00" * 64)
    with pytest.raises(CardSignatureError):
        verifier.verify(forged)
    other = KenmenSigner(b"\x07" * 32).sign(data)
    with pytest.raises(CardSignatureError):
        verifier.verify(other)
    jlis_key = Ed25519PrivateKey.from_private_bytes((world.root / "jlis" / "keys" / "kenmen-ap.key").read_bytes())
    with pytest.raises(CardUntrustedError):  # signed by J-LIS, but not an AP document
        verifier.verify(SignedKenmen(b"not json", jlis_key.sign(b"not json")))


def test_card_life_suspend_replace_change_death_number_change_expiry(world: World) -> None:
    number, link = world.person(5, HANAKO)
    card = world.card(link, world.root / "one.json")
    status = world.jpki.current_certificates
    world.cards.suspend(card.card_id, "call-centre")
    assert {r.status for r in status(card.card_id).values()} == {"hold"}
    with pytest.raises(FailedPreconditionError):
        world.cards.suspend(card.card_id, "call-centre")
    world.cards.resume(card.card_id, "municipality")
    assert {r.status for r in status(card.card_id).values()} == {"good"}
    # Lost for good: a new card replaces it, the old one's certificates revoked as compromised.
    world.cards.suspend(card.card_id, "call-centre")
    second = world.card(link, world.root / "two.json", reason="lost")
    assert world.cards.card(card.card_id).state == "replaced"
    assert {(r.status, r.reason) for r in status(card.card_id).values()} == {("revoked", "keyCompromise")}
    # A move: the 署名用 certificate is revoked (affiliationChanged), the 利用者証明用 stays good.
    moved = HANAKO.changed(address="京都府京都市上京区下立売通新町西入薮ノ内町")
    reported, revoked = world.info.report(code(5), "move_in", dt.date.today(), moved, "261009")
    assert revoked == 1 and reported.changed == {"address"}
    certs = status(second.card_id)
    assert (certs["sign"].status, certs["sign"].reason) == ("revoked", "affiliationChanged")
    assert certs["auth"].status == "good"
    assert signing_facts(x509.load_der_x509_certificate(certs["sign"].der)).address == HANAKO.address
    # The municipality rewrites the AP after the move (card present; PIN and counter kept).
    signer = KenmenSigner((world.root / "jlis" / "keys" / "kenmen-ap.key").read_bytes())
    old = KenmenData.decode(second.read_kenmen("4321").document)
    write_kenmen(world.jpki, world.root / "two.json", signer.sign(KenmenData(
        old.card_id, old.individual_number, moved, dt.datetime.now(dt.UTC), old.card_expires)))
    assert KenmenData.decode(Card(world.root / "two.json").read_kenmen("4321").document).facts == moved
    # A new number voids the card (its surface and AP carry the old one).
    world.numbers.change(number)
    assert world.cards.number_changed(link) == 1
    assert world.cards.card(second.card_id).state == "void"
    # Another person: death voids the card; expiry marks and revokes.
    _, link6 = world.person(6, TARO)
    third = world.card(link6, world.root / "three.json")
    world.info.report(code(6), "death", dt.date.today(), TARO, "131016")
    assert world.cards.card(third.card_id).state == "void"
    assert {r.status for r in status(third.card_id).values()} == {"revoked"}
    _, link7 = world.person(7, CHILD)
    child = world.card(link7, world.root / "child.json")
    assert not child.has(SIGN)  # under 15
    assert world.cards.card(child.card_id).expires_on == card_expiry(dt.date.today(), CHILD.birth)
    assert world.cards.expire(dt.date.today()) == []
    assert world.cards.expire(dt.date.today() + dt.timedelta(days=365 * 6)) == [child.card_id]  # 5 years under 18
    assert world.cards.card(child.card_id).state == "expired"
    assert {r.status for r in status(child.card_id).values()} == {"revoked"}
    with pytest.raises(FailedPreconditionError):
        world.cards.apply(link6, "new", "sha256:" + "00" * 32, "jlis")  # deceased
    with pytest.raises(InvalidArgumentError):
        world.cards.apply(link7, "new", "a photo", "jlis")


def test_notices_are_queued_with_the_number_and_read_back_from_the_pdf(world: World, caplog: pytest.LogCaptureFixture
                                                                       ) -> None:
    caplog.set_level(logging.DEBUG)
    number, link = world.person(8, HANAKO)
    desk = NoticeDesk(world.numbers.data_dir)
    try:
        assert desk.counts() == {"pending": 1, "rendered": 0, "waiting_for_facts": 0}
        # A batch: notices queued in the assignment's transaction, waiting for the persons' 4情報.
        codes = np.array([int(code(i)) for i in range(20, 30)], dtype=np.uint64)
        world.numbers.assign_batch(codes)
        assert desk.counts()["waiting_for_facts"] == 10
        world.numbers.assign_batch(np.array([int(code(31))], dtype=np.uint64), notices=False)
        assert desk.counts()["pending"] == 11
        assert desk.render_pending() == 1
        (notice,) = desk.of_person(link)
        path = world.root / "jlis" / str(notice.file)
        assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
        text = PdfReader(path).pages[0].extract_text()
        for want in ("個人番号通知書", grouped(number), HANAKO.name, HANAKO.address, "平成4年2月29日", "女",
                     "地方公共団体情報システム機構"):
            assert want in text, want
        assert number not in caplog.text and HANAKO.name not in caplog.text
        # A changed number gets its own notice.
        new = world.numbers.change(number)
        assert desk.render_pending() == 1
        changed = desk.of_person(link)[-1]
        assert changed.event == "changed"
        text = PdfReader(world.root / "jlis" / str(changed.file)).pages[0].extract_text()
        assert grouped(new) in text and "変更" in text and grouped(number) not in text
        # The others render once the register reports them.
        for i in range(20, 30):
            world.facts.report(world.numbers.link_id(int(code(i))), "birth", "2024-01-01", CHILD, "131016")
        assert desk.render_pending() == 10 and desk.counts()["pending"] == 0
    finally:
        desk.close()
    assert wareki(dt.date(2019, 5, 1)) == "令和元年5月1日" and wareki(dt.date(1989, 1, 7)) == "昭和64年1月7日"


def test_an_older_jlis_directory_gets_the_new_keys_once_and_never_again(tmp_path: Path) -> None:
    d = tmp_path / "jlis"
    NumberAuthority.init(d).close()
    for name in ("jlis-log", "kenmen-ap"):
        (d / "keys" / f"{name}.key").unlink()
    (d / KENMEN_KEY_FILE).unlink()
    NumberAuthority.init(d).close()  # an older directory: the keys are added
    assert (d / "keys" / "jlis-log.key").stat().st_mode & 0o777 == 0o600
    log = QueryLog(NumberAuthority(d).data_dir, b"\x00" * 32)
    log.close()
    (d / "keys" / "jlis-log.key").unlink()  # now the log exists: a missing key is damage
    from renkei.errors import KeyFileError

    with pytest.raises(KeyFileError, match=r"jlis-log\.key is missing"):
        NumberAuthority.init(d)
    assert json.loads((d / "renkei-service.json").read_text())["service"] == "jlis"
    assert hashlib.sha256(b"").digest()  # (nothing else created)
