"""The NTA corporate-number registry: assignment rules, history, and Web-API v4 look-ups."""

from __future__ import annotations

from pathlib import Path

import pytest

from renkei import CorporateNumberRegistry
from renkei import numbers as n
from renkei.errors import AlreadyExistsError, FailedPreconditionError, InvalidArgumentError, InvalidNumberError
from renkei.nta.registry import PAGE_SIZE, normalize_name


@pytest.fixture
def nta(tmp_path: Path):  # type: ignore[no-untyped-def]
    with CorporateNumberRegistry.init(tmp_path) as r:
        yield r


def test_assign_follows_base_rules(nta: CorporateNumberRegistry) -> None:
    gov = nta.assign(name="デジタル庁", kind="101", furigana="デジタルチョウ", prefecture_code="13",
                     assignment_date="2021-09-01")
    assert gov.corporate_number[1:3] == "00" and n.is_valid_corporate_number(gov.corporate_number)
    assert gov.process == "01" and gov.latest == 1 and gov.assignment_date == "2021-09-01"
    other = nta.assign(name="テスト協会", kind="499")
    assert other.corporate_number[1] == "7"
    co = nta.assign(name="株式会社サンプル", kind="301", base="010001012345")
    assert co.corporate_number == f"{n.corporate_check_digit('010001012345')}010001012345"
    with pytest.raises(AlreadyExistsError):
        nta.assign(name="重複", kind="301", base="010001012345")
    with pytest.raises(InvalidArgumentError, match="begin with 00"):
        nta.assign(name="x", kind="201", base="120001012345")
    with pytest.raises(InvalidArgumentError, match="0–5"):
        nta.assign(name="x", kind="301", base="810001012345")
    with pytest.raises(InvalidArgumentError, match="begin with 7"):
        nta.assign(name="x", kind="499", base="010001012345")
    with pytest.raises(InvalidArgumentError, match="会社法人等番号"):
        nta.assign(name="x", kind="301")
    with pytest.raises(InvalidArgumentError, match="unknown kind"):
        nta.assign(name="x", kind="999")
    with pytest.raises(InvalidArgumentError):
        nta.assign(name="  ", kind="101")
    with pytest.raises(InvalidArgumentError, match="prefecture_code"):
        nta.assign(name="x", kind="101", prefecture_code="48")
    with pytest.raises(InvalidNumberError):
        nta.assign(name="x", kind="301", base="01000101234")


def test_history_and_get(nta: CorporateNumberRegistry) -> None:
    c = nta.assign(name="旧名株式会社", kind="301", base="011001098993", prefecture_code="13",
                   prefecture_name="東京都", city_name="千代田区", assignment_date="2015-10-05")
    nta.change_name(c.corporate_number, name="新名株式会社", furigana="シンメイ", change_date="2020-04-01")
    nta.change_address(c.corporate_number, prefecture_code="27", prefecture_name="大阪府", city_name="大阪市北区",
                       change_date="2021-04-01")
    latest = nta.get([c.corporate_number])
    assert len(latest) == 1 and latest[0].name == "新名株式会社" and latest[0].prefecture_code == "27"
    assert latest[0].process == "12"
    history = nta.get([c.corporate_number], history=True)
    assert [r.process for r in history] == ["01", "11", "12"]
    assert [r.latest for r in history] == [0, 0, 1]
    assert history[0].name == "旧名株式会社"
    # Written forms are accepted; unknown numbers are simply absent, as in the Web-API.
    spaced = f"{c.corporate_number[0]}-{c.corporate_number[1:]}"
    assert nta.get([spaced, "5835678256246"])[0].corporate_number == c.corporate_number
    assert len(nta.get(["5835678256246"])) == 0
    with pytest.raises(InvalidArgumentError, match="at most 10"):
        nta.get(["5835678256246"] * 11)
    with pytest.raises(InvalidNumberError):
        nta.get(["2835678256246"])
    with pytest.raises(InvalidArgumentError):
        nta.get([])


def test_close_revive_and_successor(nta: CorporateNumberRegistry) -> None:
    a = nta.assign(name="吸収される株式会社", kind="301", base="011001000001")
    b = nta.assign(name="存続株式会社", kind="301", base="011001000002")
    closed = nta.close_corporation(a.corporate_number, cause="11", close_date="2022-03-31",
                                   successor=b.corporate_number)
    assert closed.process == "71" and closed.successor_corporate_number == b.corporate_number
    assert closed.close_date == "2022-03-31"
    with pytest.raises(FailedPreconditionError):
        nta.change_name(a.corporate_number, name="閉鎖後の名前")
    revived = nta.revive(a.corporate_number)
    assert revived.process == "22" and revived.close_date == ""
    with pytest.raises(InvalidArgumentError, match="close cause"):
        nta.close_corporation(a.corporate_number, cause="99")
    with pytest.raises(InvalidNumberError):
        nta.close_corporation(a.corporate_number, cause="01", successor="2835678256246")


def test_search_semantics(nta: CorporateNumberRegistry) -> None:
    t = nta.assign(name="株式会社テストデータ", kind="301", base="011001000010", furigana="てすとでーた",
                   en_name="Test Data Co., Ltd.", prefecture_code="13")
    nta.assign(name="テストデータ協会", kind="499", prefecture_code="27")
    closed = nta.assign(name="テストデータ清算株式会社", kind="301", base="011001000011", prefecture_code="13")
    nta.close_corporation(closed.corporate_number, cause="01")
    renamed = nta.assign(name="旧テスト商事", kind="301", base="011001000012", prefecture_code="13")
    nta.change_name(renamed.corporate_number, name="新商事")

    def found(page) -> set[str]:  # type: ignore[no-untyped-def]
        return {c.name for c in page.corporations}

    # Prefix matches the name or the furigana (株式会社テストデータ's furigana starts テストデータ).
    assert found(nta.search("テストデータ")) == {"株式会社テストデータ", "テストデータ協会", "テストデータ清算株式会社"}
    assert found(nta.search("データ")) == set()
    assert found(nta.search("データ", mode="partial")) == {
        "株式会社テストデータ", "テストデータ協会", "テストデータ清算株式会社"}
    assert found(nta.search("テストデータ", mode="partial", include_closed=False)) == {
        "株式会社テストデータ", "テストデータ協会"}
    assert found(nta.search("テストデータ", mode="partial", prefecture="27")) == {"テストデータ協会"}
    assert found(nta.search("テストデータ", mode="partial", kinds=["301"])) == {
        "株式会社テストデータ", "テストデータ清算株式会社"}
    # Fuzzy: half-width katakana and hiragana furigana match; English names by target.
    assert t.corporate_number in {c.corporate_number for c in nta.search("ﾃｽﾄﾃﾞｰﾀ", mode="partial").corporations}
    assert found(nta.search("てすとで")) == {"株式会社テストデータ", "テストデータ協会", "テストデータ清算株式会社"}
    assert found(nta.search("test data", target="english")) == {"株式会社テストデータ"}
    assert found(nta.search("ﾃｽﾄﾃﾞｰﾀ", target="exact")) == set()
    # Former names only when asked; the result is the body's latest record.
    assert found(nta.search("旧テスト")) == set()
    assert found(nta.search("旧テスト", include_former_names=True)) == {"新商事"}
    # LIKE metacharacters are literal.
    assert found(nta.search("%", mode="partial")) == set()
    with pytest.raises(InvalidArgumentError):
        nta.search("")
    with pytest.raises(InvalidArgumentError):
        nta.search("x", mode="regex")
    with pytest.raises(InvalidArgumentError):
        nta.search("x", prefecture="00")
    with pytest.raises(InvalidArgumentError):
        nta.search("x", kinds=["000"])


def test_changes_by_date_range_pages_of_2000(nta: CorporateNumberRegistry) -> None:
    for i in range(PAGE_SIZE + 150):
        nta.assign(name=f"団体{i:05d}", kind="499", assignment_date="2024-01-15",
                   prefecture_code="01" if i % 2 else "02")
    nta.assign(name="範囲外", kind="499", assignment_date="2023-12-31")
    page1 = nta.changes("2024-01-01", "2024-01-31")
    assert page1.count == PAGE_SIZE + 150 and page1.divide_size == 2 and len(page1.corporations) == PAGE_SIZE
    page2 = nta.changes("2024-01-01", "2024-01-31", page=2)
    assert len(page2.corporations) == 150
    assert not {c.corporate_number for c in page1.corporations} & {c.corporate_number for c in page2.corporations}
    assert nta.changes("2024-01-01", "2024-01-31", prefecture="01").count == (PAGE_SIZE + 150) // 2
    with pytest.raises(InvalidArgumentError, match="past the last page"):
        nta.changes("2024-01-01", "2024-01-31", page=3)
    with pytest.raises(InvalidArgumentError):
        nta.changes("2024-02-01", "2024-01-01")
    with pytest.raises(InvalidArgumentError):
        nta.changes("2024-13-01", "2024-01-01")
    with pytest.raises(InvalidArgumentError):
        nta.changes("2024-01-01", "2024-01-31", page=0)


def test_durable_across_reopen(tmp_path: Path) -> None:
    with CorporateNumberRegistry.init(tmp_path) as nta:
        c = nta.assign(name="永続株式会社", kind="301", base="011001000099")
    with CorporateNumberRegistry.init(tmp_path) as nta:
        assert nta.get([c.corporate_number])[0].name == "永続株式会社"


def test_normalize_name() -> None:
    assert normalize_name("ｶﾌﾞｼｷｶﾞｲｼｬ　ＡＢＣ") == normalize_name("かぶしきがいしゃ abc")
