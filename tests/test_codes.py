"""Agency codes (機関別符号): acquisition, translation, holdings, epochs, PIA gate, no leaks."""

from __future__ import annotations

import logging
import math
import secrets
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import renkei
from renkei import numbers
from renkei._core import codes as _codes
from renkei.errors import (
    CodeRefusedError,
    FailedPreconditionError,
    InvalidArgumentError,
    InvalidNumberError,
    NotFoundError,
    PermissionDeniedError,
    PiaNotApprovedError,
    StorageError,
)
from tests.datadirs import InProcess
from tests.reference import codes_ref

APPROVED = {"approved_on": "2025-01-01", "expires_on": "2099-12-31"}


def resident_codes(n: int, start: int = 1_000_000_000) -> np.ndarray:
    bodies = np.arange(start, start + n, dtype=np.uint64)
    return np.array([int(b) * 10 + numbers.resident_check_digit(f"{int(b):010d}") for b in bodies], dtype=np.uint64)


@pytest.fixture
def world(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A core with J-LIS, 200 persons, a city and the pension service with approved PIAs."""
    jlis = renkei.NumberAuthority.init(tmp_path / "jlis")
    core = InProcess(renkei.Core.init(tmp_path / "core"), jlis)
    mn = jlis.assign_batch(resident_codes(200))
    city = core.register_agency("横浜市長", ["municipal_mayor"], "3000020141003", municipality_code="141003")
    pension = core.register_agency("日本年金機構", ["japan_pension_service"], "5010405001703")
    for a in (city, pension):
        core.add_pia(a.agency_id, "全項目評価書", **APPROVED)
    yield core, jlis, mn, city.agency_id, pension.agency_id
    core.close()


# -- registry and PIA ---------------------------------------------------------------------


def test_registry_validates_and_lists(world) -> None:  # type: ignore[no-untyped-def]
    core, _, _, city, pension = world
    a = core.agency(city)
    assert a.types == ("municipal_mayor",) and a.municipality_code == "141003"
    assert a.corporate_number == "3000020141003"
    with pytest.raises(InvalidNumberError):
        core.register_agency("x", ["japan_pension_service"], "8000020141003")
    with pytest.raises(InvalidArgumentError, match="unknown agency type"):
        core.register_agency("x", ["no_such_type"], "5010405001703")
    with pytest.raises(InvalidArgumentError, match="municipality code"):
        core.register_agency("x", ["municipal_mayor"], "3000020141003")
    with pytest.raises(InvalidArgumentError, match="check digit"):
        core.register_agency("x", ["municipal_mayor"], "3000020141003", municipality_code="141004")
    assert [x.agency_id for x in core.agencies(type_id="japan_pension_service")] == [pension]
    with pytest.raises(NotFoundError):
        core.agency(999)


def test_no_acquisition_or_inquiry_without_approved_unexpired_pia(world) -> None:  # type: ignore[no-untyped-def]
    core, _, mn, city, _pension = world
    tax = core.register_agency("国税庁", ["mhlw_minister"], "7000012050002").agency_id
    with pytest.raises(PiaNotApprovedError, match=r"特定個人情報保護評価 \(PIA\).*none has been filed") as e:
        core.acquire(tax, int(mn[0]))
    assert e.value.reason == "PIA_NOT_APPROVED" and isinstance(e.value, FailedPreconditionError)
    pia = core.add_pia(tax, "国税総合管理システム 全項目評価書", expires_on="2099-01-01")
    with pytest.raises(FailedPreconditionError, match=r"国税総合管理システム.*submitted"):
        core.acquire_batch(tax, mn[:3])
    core.approve_pia(pia.pia_id, "2020-01-01")
    core.acquire(tax, int(mn[0]))
    core.revoke_pia(pia.pia_id)
    code = core.acquire(city, int(mn[0]))
    with pytest.raises(FailedPreconditionError, match="revoked"):
        core.translate(city, code, tax)  # the provider side's PIA counts too
    core.add_pia(tax, "old 評価書", approved_on="2010-01-01", expires_on="2015-01-01")
    with pytest.raises(FailedPreconditionError, match="expired on 2015-01-01"):
        core.translate(tax, code, city)
    core.set_agency_status(city, "suspended")
    with pytest.raises(FailedPreconditionError, match="suspended"):
        core.acquire(city, int(mn[1]))


# -- acquisition, translation, refusals -----------------------------------------------------


def test_round_trip_and_every_refusal_is_the_same(world) -> None:  # type: ignore[no-untyped-def]
    core, _, mn, city, pension = world
    ccodes, cst = core.acquire_batch(city, mn)
    pcodes, pst = core.acquire_batch(pension, mn[:100])
    assert not cst.any() and not pst.any() and len(ccodes) == 200 * 16
    out, status = core.translate_batch(city, ccodes, pension)
    assert (status[:100] == 0).all() and (status[100:] == 1).all()  # 100..199 not held by pension
    assert out[: 100 * 16] == pcodes
    assert out[100 * 16 :] == bytes(100 * 16)
    back, bst = core.translate_batch(pension, out[: 100 * 16], city)
    assert not bst.any() and back == ccodes[: 100 * 16]
    # text form round trip through the single path
    t = _codes.code_to_text(ccodes[:16])
    assert len(t) == 26 and core.translate(city, t, pension) == _codes.code_to_text(pcodes[:16])
    assert core.translate(city, ccodes[:16], pension) == pcodes[:16]

    refused: list[bytes] = [
        pcodes[:16],  # the pension service's own code presented as the city's
        secrets.token_bytes(16),  # forged
        bytes(16),
        ccodes[150 * 16 : 151 * 16],  # held by the city but not by the pension service
    ]
    for bit in (0, 37, 64, 127):  # bit-flipped
        c = bytearray(ccodes[:16])
        c[bit // 8] ^= 1 << (bit % 8)
        refused.append(bytes(c))
    messages = set()
    for c in refused:
        with pytest.raises(PermissionDeniedError) as e:
            core.translate(city, c, pension)
        messages.add((type(e.value), str(e.value), e.value.reason))
    assert messages == {(CodeRefusedError, "agency code (機関別符号) refused", "CODE_REFUSED")}
    assert issubclass(CodeRefusedError, PermissionDeniedError)
    _, st_all = core.translate_batch(city, b"".join(refused), pension)
    assert (st_all == 1).all()
    # released codes are refused too
    assert core.release_batch(pension, pcodes[:16])[0] == 0
    with pytest.raises(PermissionDeniedError):
        core.translate(city, ccodes[:16], pension)
    with pytest.raises(PermissionDeniedError):
        core.release(pension, pcodes[:16])
    # and malformed input is a clear InvalidArgument, never a crash
    with pytest.raises(InvalidArgumentError):
        core.translate_batch(city, b"x" * 17, pension)
    with pytest.raises(InvalidArgumentError):
        core.translate(city, "not-a-code", pension)


def test_unknown_my_numbers_get_a_status_and_bad_ones_an_indexed_error(world) -> None:  # type: ignore[no-untyped-def]
    core, jlis, mn, city, _ = world
    new = jlis.change(int(mn[3]))
    batch = np.array([mn[0], mn[3], numbers.parse_individual_number(new)], dtype=np.uint64)
    codes, status = core.acquire_batch(city, batch)
    assert status.tolist() == [0, 2, 0] and codes[16:32] == bytes(16)
    assert len(core.acquire(city, new)) == 26
    with pytest.raises(NotFoundError):
        core.acquire(city, int(mn[3]))  # a changed (former) number no longer acquires
    bad = mn[:3].copy()
    bad[1] += 1
    with pytest.raises(InvalidNumberError) as e:
        core.acquire_batch(city, bad)
    assert e.value.index == 1


def test_epoch_rotation_and_retirement(world) -> None:  # type: ignore[no-untyped-def]
    core, _, mn, city, pension = world
    old_c, _ = core.acquire_batch(city, mn[:10])
    old_p, _ = core.acquire_batch(pension, mn[:10])
    assert core.rotate_epoch() == 2
    new_c, _ = core.acquire_batch(city, mn[:10])
    assert new_c != old_c  # same persons, new epoch: new codes
    t_old, s1 = core.translate_batch(city, old_c, pension)
    t_new, s2 = core.translate_batch(city, new_c, pension)
    assert not s1.any() and not s2.any() and t_old == t_new != old_p
    with pytest.raises(FailedPreconditionError):
        core.retire_epoch(2)
    core.retire_epoch(1)
    _, s3 = core.translate_batch(city, old_c, pension)
    assert (s3 == 1).all()
    _, s4 = core.translate_batch(city, new_c, pension)
    assert not s4.any()
    assert [(e.epoch, e.retired_at is not None) for e in core.epochs()] == [(1, True), (2, False)]


def test_holders_and_counts(world) -> None:  # type: ignore[no-untyped-def]
    core, _, mn, city, pension = world
    c, _ = core.acquire_batch(city, mn[:50])
    core.acquire_batch(pension, mn[25:75])
    assert core.holders_of(agency_id=city, code=c[30 * 16 : 31 * 16]) == [city, pension]
    assert core.holders_of(agency_id=city, code=c[:16]) == [city]
    with pytest.raises(PermissionDeniedError):
        core.holders_of(agency_id=pension, code=c[:16])
    assert core.holdings_counts() == {city: 50, pension: 50}
    assert core.holdings_count(city) == 50
    st_ = core.release_batch(city, c[:160])
    assert not st_.any() and core.holdings_count(city) == 40


# -- unlinkability --------------------------------------------------------------------------


def test_unlinkability_of_two_agencies_code_sets(tmp_path: Path) -> None:
    """100,000 persons held by two agencies: the code sets look like independent random blocks.

    Bounds (each a > 5-sigma band, so a correct implementation fails with probability < 1e-5
    over all checks together, while any shared structure in the plaintext layout would show):
    * per bit position, over A's codes, B's codes and A XOR B (same person): the count of ones
      is within 5·sqrt(n/4) of n/2;
    * the XOR of the two codes of a person has no bias either (same test);
    * for 16-bit prefixes: the number of A prefixes that also occur among B's prefixes is what
      two independent uniform samples give, within 5 standard deviations (computed below);
    * no 16-byte code occurs in both sets, and no person's two codes share their first 4 bytes
      more often than chance (expected n/2^32 ≈ 0).
    """
    n = 100_000
    engine = _codes.CodeEngine(secrets.token_bytes(32), str(tmp_path / "h"), 1, [1], create=True)
    persons = np.arange(1, n + 1, dtype=np.uint64)
    a = np.frombuffer(engine.acquire(7, persons), dtype=np.uint8).reshape(n, 16)
    b = np.frombuffer(engine.acquire(8, persons), dtype=np.uint8).reshape(n, 16)
    band = 5 * math.sqrt(n / 4)
    for name, m in (("A", a), ("B", b), ("A^B", a ^ b)):
        ones = np.unpackbits(m, axis=1).sum(axis=0)
        assert np.abs(ones - n / 2).max() < band, f"bit bias in {name}"
    pa = a[:, 0].astype(np.uint32) << 8 | a[:, 1]
    pb = b[:, 0].astype(np.uint32) << 8 | b[:, 1]
    # Expected fraction of A's prefixes also seen among n uniform B prefixes over 2^16 values.
    m = 65536
    p_seen = 1 - (1 - 1 / m) ** n
    shared = np.isin(pa, np.unique(pb)).mean()
    sd = math.sqrt(p_seen * (1 - p_seen) / n) * 3  # prefixes repeat; generous design factor
    assert abs(shared - p_seen) < 5 * sd
    # Same-person prefix equality happens at chance rate 1/2^16.
    same = int((pa == pb).sum())
    assert same < n / m + 5 * math.sqrt(n / m) + 1
    assert not set(map(bytes, a)).intersection(map(bytes, b))
    assert int((a[:, :4] == b[:, :4]).all(axis=1).sum()) == 0


# -- property tests against the pure-Python reference ---------------------------------------

ops = st.lists(
    st.one_of(
        st.tuples(st.just("acquire"), st.integers(1, 4), st.lists(st.integers(0, 200_000), max_size=12)),
        st.tuples(st.just("release"), st.integers(1, 4), st.lists(st.integers(0, 200_000), max_size=6)),
        st.tuples(st.just("translate"), st.integers(1, 4), st.integers(1, 4)),
        st.tuples(st.just("rotate"), st.just(0), st.just(0)),
        st.tuples(st.just("retire"), st.just(0), st.just(0)),
    ),
    max_size=25,
)


@settings(max_examples=60)
@given(key=st.binary(min_size=32, max_size=32), script=ops)
def test_engine_matches_reference(tmp_path_factory: pytest.TempPathFactory, key: bytes, script: list) -> None:  # type: ignore[type-arg]
    d = tmp_path_factory.mktemp("prop")
    eng = _codes.CodeEngine(key, str(d / "h"), 1, [1], create=True)
    ref = codes_ref.ReferenceCore(key)
    issued: dict[int, list[bytes]] = {a: [] for a in range(1, 5)}
    for op, x, y in script:
        if op == "acquire":
            got = eng.acquire(x, np.array(y, dtype=np.uint64))
            want = ref.acquire(x, y)
            assert got == b"".join(want)
            issued[x].extend(want)
        elif op == "release":
            codes = [issued[x][i % len(issued[x])] for i in y] if issued[x] else [bytes(16)]
            _, status = eng.release(x, b"".join(codes))
            assert status.tolist() == ref.release(x, codes)
        elif op == "translate":
            codes = [*issued[x][-8:], bytes(16)]
            out, status = eng.translate(x, b"".join(codes), y)
            want_out, want_status = ref.translate(x, codes, y)
            assert status.tolist() == want_status and out == b"".join(want_out)
        elif op == "rotate":
            ref.current += 1
            ref.live.add(ref.current)
            eng.set_epochs(ref.current, sorted(ref.live))
        elif op == "retire" and len(ref.live) > 1:
            ref.live.discard(min(ref.live))
            eng.set_epochs(ref.current, sorted(ref.live))
    for p in {p for _, p in ref.held} | {0}:
        assert list(eng.holders_of_person(p)) == ref.holders_of(p)
    # Reopening from disk gives the same holdings.
    del eng
    eng2 = _codes.CodeEngine(key, str(d / "h"), ref.current, sorted(ref.live))
    assert eng2.total() == len(ref.held)


@given(code=st.binary(min_size=16, max_size=16))
def test_text_form_matches_reference(code: bytes) -> None:
    text = _codes.code_to_text(code)
    assert text == codes_ref.to_text(code)
    assert _codes.code_from_text(text.lower()) == code == codes_ref.from_text(text)


@given(s=st.text(max_size=30))
def test_text_parser_never_crashes(s: str) -> None:
    try:
        ref = codes_ref.from_text(s)
    except ValueError:
        ref = None
    try:
        got = _codes.code_from_text(s)
    except InvalidArgumentError:
        got = None
    if s.isascii():
        assert got == ref


# -- nothing personal leaks into the core ---------------------------------------------------


def test_no_my_number_or_resident_code_in_core_files_logs_or_errors(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    data = tmp_path / "core"
    jlis = renkei.NumberAuthority.init(tmp_path / "jlis")
    residents = resident_codes(300, start=4_321_000_000)
    mn = jlis.assign_batch(residents)
    errors: list[str] = []
    core = InProcess(renkei.Core.init(data), jlis)
    try:
        a = core.register_agency("大阪市長", ["municipal_mayor"], "6000020271004", municipality_code="271004")
        b = core.register_agency("日本年金機構", ["japan_pension_service"], "5010405001703")
        try:
            core.acquire(a.agency_id, int(mn[0]))
        except renkei.RenkeiError as e:
            errors.append(str(e))
        for x in (a, b):
            core.add_pia(x.agency_id, "全項目評価書", **APPROVED)
        codes, _ = core.acquire_batch(a.agency_id, mn)
        core.acquire_batch(b.agency_id, mn[:150])
        core.acquire(a.agency_id, numbers.format_individual_number(int(mn[5])))
        core.translate_batch(a.agency_id, codes, b.agency_id)
        core.release_batch(a.agency_id, codes[:160])
        bad = mn[:4].copy()
        bad[2] += 1
        for call in (
            lambda: core.acquire_batch(a.agency_id, bad),
            lambda: core.acquire(a.agency_id, int(mn[1]) + 1),
            lambda: core.acquire(a.agency_id, str(int(residents[0]))),
            lambda: core.translate(a.agency_id, bytes(16), b.agency_id),
        ):
            try:
                call()
            except renkei.RenkeiError as e:
                errors.append(str(e))
                errors.append(repr(e))
        core.checkpoint()
        core.acquire_batch(a.agency_id, mn[:10])
    finally:
        core.close()
    assert len(errors) >= 5
    needles_text = {f"{int(v):012d}" for v in mn} | {f"{int(v):011d}" for v in residents}
    needles_text |= {numbers.format_individual_number(int(v)) for v in mn}
    needles_bin = {int(v).to_bytes(8, "little") for v in list(mn) + list(residents)}
    core_files = [p for p in data.rglob("*") if p.is_file()]
    assert any(p.parent.name == "holdings" for p in core_files)
    assert any(p.name == "registry.sqlite3" for p in core_files)
    for p in core_files:
        blob = p.read_bytes()
        text = blob.decode("latin-1")
        assert not any(n in text for n in needles_text), p
        assert not any(n in blob for n in needles_bin), p
    logs = caplog.text + "\n".join(errors)
    assert "holdings loaded" in caplog.text
    assert not any(n in logs for n in needles_text)


# -- durability -----------------------------------------------------------------------------


def test_torn_journal_tail_is_dropped(tmp_path: Path) -> None:
    key = secrets.token_bytes(32)
    eng = _codes.CodeEngine(key, str(tmp_path / "h"), 1, [1], create=True)
    eng.acquire(1, np.arange(100, dtype=np.uint64))
    del eng
    journal = sorted((tmp_path / "h").glob("journal.*"))[-1]
    record = journal.read_bytes()  # one record
    with open(journal, "ab") as f:
        f.write(record[:-7])  # an append cut short by a crash: never acknowledged
    eng = _codes.CodeEngine(key, str(tmp_path / "h"), 1, [1])
    assert eng.open_report()["torn_bytes_dropped"] == len(record) - 7
    assert eng.total() == 100
    del eng
    # A complete record failing its checksum with more after it is damage, not a torn tail.
    bad = bytearray(record)
    bad[30] ^= 1
    journal.write_bytes(bytes(bad) + record)
    with pytest.raises(StorageError, match="damaged at byte 0"):
        _codes.CodeEngine(key, str(tmp_path / "h"), 1, [1])


def test_person_link_ids(tmp_path: Path) -> None:
    key = secrets.token_bytes(32)
    eng = _codes.CodeEngine(key, str(tmp_path / "h"), 1, [1], create=True)
    links = secrets.token_bytes(16 * 5)
    codes = eng.acquire_links(3, links + links[:16])  # the same new link twice: one index
    assert len(codes) == 6 * 16 and codes[:16] == codes[80:]
    assert eng.person_count() == 5
    assert eng.persons_of_links(links, False).tolist() == [0, 1, 2, 3, 4]
    unknown = secrets.token_bytes(16)
    got = eng.persons_of_links(unknown + links[16:32], False)
    assert got.dtype == np.int64 and got.tolist() == [-1, 1]
    assert eng.persons_of_links(unknown, True).tolist() == [5]
    assert eng.link_of(5) == unknown and eng.link_of(6) is None
    pairs = eng.acquire_link_pairs(np.array([4, 3], dtype=np.uint64), links[:16] * 2)
    assert pairs[16:] == codes[:16]
    assert eng.translate_one(3, codes[:16], 4) == pairs[:16]
    with pytest.raises(InvalidArgumentError, match="16 bytes each"):
        eng.acquire_links(3, b"short")
    del eng
    eng = _codes.CodeEngine(key, str(tmp_path / "h"), 1, [1], create=True)
    assert eng.acquire_links(3, links) == codes[:80]
    assert eng.person_count() == 6


def test_damaged_snapshot_is_a_storage_error(tmp_path: Path) -> None:
    key = secrets.token_bytes(32)
    eng = _codes.CodeEngine(key, str(tmp_path / "h"), 1, [1], create=True)
    eng.acquire(1, np.arange(100_000, dtype=np.uint64))
    eng.checkpoint()
    del eng
    snap = tmp_path / "h" / "snapshot.bin"
    b = bytearray(snap.read_bytes())
    b[len(b) // 2] ^= 1
    snap.write_bytes(bytes(b))
    with pytest.raises(StorageError, match="damaged"):
        _codes.CodeEngine(key, str(tmp_path / "h"), 1, [1])


def test_second_opener_is_refused(tmp_path: Path) -> None:
    # The engine holds holdings/LOCK (renkei._core.fs.DirLock semantics): a StorageError.
    with renkei.Core.init(tmp_path / "d"), pytest.raises(StorageError, match="in use by another process"):
        renkei.Core(tmp_path / "d")
    with renkei.Core(tmp_path / "d"):  # released by close
        pass


def test_engine_rejects_bad_arguments(tmp_path: Path) -> None:
    eng = _codes.CodeEngine(secrets.token_bytes(32), str(tmp_path / "h"), 1, [1], create=True)
    with pytest.raises(InvalidArgumentError):
        eng.acquire(1, np.array([2**33], dtype=np.uint64))
    with pytest.raises(InvalidArgumentError):
        eng.acquire(1, np.array([1.0]))
    with pytest.raises(InvalidArgumentError):
        eng.translate(1, b"123", 2)
    with pytest.raises(InvalidArgumentError):
        eng.set_epochs(3, [1, 2])
    with pytest.raises(renkei.errors.KeyFileError):
        _codes.CodeEngine(b"short", str(tmp_path / "h2"), 1, [1], create=True)


def test_changed_numbers_are_not_current_at_jlis_and_release_works(world) -> None:  # type: ignore[no-untyped-def]
    core, jlis, mn, city, pension = world
    before = core.acquire(city, int(mn[7]))
    new = jlis.change(int(mn[7]))
    codes, status = core.acquire_batch(pension, np.array([mn[5], mn[7], mn[6]], dtype=np.uint64))
    assert status.tolist() == [0, 2, 0] and codes[16:32] == bytes(16)  # the former number is not current
    assert core.acquire(city, new) == before  # same person, same link id, same code
    assert core.holdings_count(pension) == 2
    core.release(pension, codes[:16])
    assert core.holdings_count(pension) == 1


def test_numpy_and_empty_batches(world) -> None:  # type: ignore[no-untyped-def]
    core, _, mn, city, pension = world
    codes, status = core.acquire_batch(city, mn[:0])
    assert codes == b"" and len(status) == 0
    out, st_ = core.translate_batch(city, b"", pension)
    assert out == b"" and len(st_) == 0
    c, _ = core.acquire_batch(city, mn[:20])
    p, _ = core.acquire_batch(pension, mn[:20])
    as_2d = np.frombuffer(c, dtype=np.uint8).reshape(20, 16)
    out, st_ = core.translate_batch(city, as_2d, pension)
    assert out == p and not st_.any()
    out, st_ = core.translate_batch(city, np.frombuffer(c, dtype=np.uint8), pension)
    assert out == p
    with pytest.raises(InvalidArgumentError):
        core.translate_batch(city, as_2d.astype(np.uint16), pension)
    assert not core.release_batch(city, as_2d[:2]).any()


def test_concurrent_acquisitions_and_translations(world) -> None:  # type: ignore[no-untyped-def]
    from concurrent.futures import ThreadPoolExecutor

    core, _, mn, city, pension = world
    pcodes, _ = core.acquire_batch(pension, mn)
    eng = core.engine

    def acquire(i: int) -> bytes:
        return eng.acquire(city, np.array([i], dtype=np.uint64))

    def translate(_: int) -> int:
        _, s = eng.translate(pension, pcodes, city)
        return int((s == 0).sum())

    with ThreadPoolExecutor(8) as pool:
        futures_t = [pool.submit(translate, i) for i in range(20)]
        acquired = list(pool.map(acquire, range(200)))
        counts = [f.result() for f in futures_t]
    assert len(set(acquired)) == 200 and all(0 <= c <= 200 for c in counts)
    assert translate(0) == 200
