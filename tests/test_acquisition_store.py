"""Waiting codes (renkei.linkage.acquisition) on the core's store: with several front-ends an
agency reserves 取得番号 on one, J-LIS forwards to another, the agency collects on a third
(docs/arch/store.md). The same desk logic runs over the memory store (embedded core) and the
store table on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import random
import time
from pathlib import Path

import pytest

from renkei.datadir import DataDir
from renkei.errors import InvalidArgumentError, ResourceExhaustedError
from renkei.linkage.acquisition import (
    ISSUED,
    PENDING,
    REFUSED,
    SCHEMA,
    AcquisitionDesk,
    MemoryWaitingCodes,
    StoreWaitingCodes,
    WaitingCodes,
)
from renkei.linkage.codes import AgencyCodes
from renkei.linkage.registry import AgencyRegistry
from renkei.service.core import init_data_dir as init_core
from renkei.store import SqliteDatabase, open_database
from tests.conftest import store_url
from tests.pg_cluster import PgCluster

TODAY = dt.date.today()


def approve(reg: AgencyRegistry, name: str, type_id: str, corporate: str) -> int:
    agency = reg.register_agency(name, [type_id], corporate).agency_id
    pia = reg.add_pia(agency, "全項目評価書", expires_on=TODAY + dt.timedelta(days=30))
    reg.approve_pia(pia.pia_id, TODAY)
    return agency


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def waiting(request: pytest.FixtureRequest, tmp_path: Path) -> WaitingCodes:
    if request.param == "memory":
        return MemoryWaitingCodes()
    if request.param == "sqlite":
        d = DataDir.init(tmp_path / "core", "core", {})
        return StoreWaitingCodes(SqliteDatabase(d, "acquisition", SCHEMA["sqlite"]))
    url = store_url(request, "postgresql")
    assert url is not None
    d = DataDir.init(tmp_path / "core", "core", {})
    from renkei.store import bind_store

    bind_store(d, url, fresh=True)
    return StoreWaitingCodes(open_database(d, "acquisition", SCHEMA))


def test_waiting_codes_are_taken_once_by_their_agency_until_they_expire(waiting: WaitingCodes) -> None:
    now = int(time.time())
    a = [bytes([i]) * 16 for i in range(1, 6)]
    waiting.put(7, a[0] + a[1], b"A" * 16 + b"B" * 16, now + 60)
    waiting.put(8, a[2], b"C" * 16, now + 60)
    waiting.put(7, a[3], b"D" * 16, now - 1)  # expired already
    assert waiting.count() >= 3
    # Another agency's number yields nothing (and is not consumed for its owner: it stays).
    assert waiting.take(8, a[0], now) == {}
    got = waiting.take(7, b"".join(a), now)
    assert got == {a[0]: b"A" * 16, a[1]: b"B" * 16}
    assert waiting.take(7, a[0] + a[1], now) == {}, "each code is collected once"
    assert waiting.take(8, a[2], now) == {a[2]: b"C" * 16}
    # A resent forward replaces the row (idempotent J-LIS retries).
    waiting.put(7, a[4], b"E" * 16, now + 60)
    waiting.put(7, a[4], b"E" * 16, now + 60)
    waiting.sweep(now + 120)
    assert waiting.take(7, a[4], now + 120) == {}, "swept or expired"
    waiting.close()


def test_a_large_batch_round_trips(waiting: WaitingCodes) -> None:
    now = int(time.time())
    rng = random.Random(5)
    acq, codes = rng.randbytes(16 * 20_000), rng.randbytes(16 * 20_000)
    waiting.put(3, acq, codes, now + 60)
    got = waiting.take(3, acq, now)
    assert got == {acq[i:i + 16]: codes[i:i + 16] for i in range(0, len(acq), 16)}
    waiting.close()


def front_end(d: DataDir, **kw: int) -> tuple[AgencyRegistry, AgencyCodes, AcquisitionDesk]:
    reg = AgencyRegistry(d)
    codes = AgencyCodes(d, reg)
    from renkei.linkage.acquisition import KEY_NAME

    return reg, codes, AcquisitionDesk(d.secret_key(KEY_NAME), reg, codes,
                                       waiting=StoreWaitingCodes(open_database(d, "acquisition", SCHEMA)), **kw)


def test_reserve_forward_and_collect_on_three_front_ends(tmp_path: Path, pg: PgCluster) -> None:
    d = init_core(tmp_path / "core", store=pg.create_database("renkei_acq_three"))
    with AgencyRegistry(d) as reg:
        pension = approve(reg, "日本年金機構", "japan_pension_service", "5010405001703")
        health = approve(reg, "全国健康保険協会", "japan_health_insurance_association", "6010405003434")
    fronts = [front_end(d) for _ in range(3)]
    (_, _, a), (_, cb, b), (_, _, c) = fronts
    try:
        people = random.Random(1).randbytes(16 * 40)
        r = a.reserve(pension, 40)
        statuses = b.issue(r.acquisition_numbers, people)
        assert statuses.tolist() == [ISSUED] * 40
        again = b.issue(r.acquisition_numbers, people)  # J-LIS resent it after a failover: the same
        assert again.tolist() == [ISSUED] * 40
        # The other agency cannot collect them; the owner collects each once, on a third front-end.
        assert c.collect(health, r.acquisition_numbers)[1].tolist() == [REFUSED] * 40
        codes, st = c.collect(pension, r.acquisition_numbers)
        assert st.tolist() == [ISSUED] * 40
        assert codes == cb.issue(pension, people), "the codes the forwarding front-end issued"
        assert a.collect(pension, r.acquisition_numbers)[1].tolist() == [PENDING] * 40, "collected already"
        # Not forwarded yet: pending on every front-end.
        r2 = c.reserve(health, 2)
        assert a.collect(health, r2.acquisition_numbers)[1].tolist() == [PENDING] * 2
        with pytest.raises(InvalidArgumentError):
            a.collect(health, r2.acquisition_numbers[:20])
    finally:
        for reg, codes_, desk in fronts:
            desk.close()
            codes_.close()
            reg.close()


def test_the_bound_on_waiting_codes_holds_across_front_ends(tmp_path: Path, pg: PgCluster) -> None:
    d = init_core(tmp_path / "core", store=pg.create_database("renkei_acq_bound"))
    with AgencyRegistry(d) as reg:
        pension = approve(reg, "日本年金機構", "japan_pension_service", "5010405001703")
    (ra, ca, a), (rb, cb, b) = front_end(d, max_waiting=30), front_end(d, max_waiting=30)
    try:
        rng = random.Random(2)
        r = a.reserve(pension, 20)
        a.issue(r.acquisition_numbers, rng.randbytes(16 * 20))
        r2 = b.reserve(pension, 20)
        time.sleep(1.1)  # the count is read at most once a second
        with pytest.raises(ResourceExhaustedError, match="20 codes are waiting"):
            b.issue(r2.acquisition_numbers, rng.randbytes(16 * 20))
        a.collect(pension, r.acquisition_numbers)
        time.sleep(1.1)
        assert b.issue(r2.acquisition_numbers, rng.randbytes(16 * 20)).tolist() == [ISSUED] * 20
    finally:
        for reg, codes_, desk in ((ra, ca, a), (rb, cb, b)):
            desk.close()
            codes_.close()
            reg.close()


def test_acquisition_numbers_never_repeat_within_a_front_end(tmp_path: Path) -> None:
    d = init_core(tmp_path / "core")
    with AgencyRegistry(d) as reg:
        pension = approve(reg, "日本年金機構", "japan_pension_service", "5010405001703")
    reg, codes, _ = front_end(d)
    from renkei.linkage.acquisition import KEY_NAME

    desk = AcquisitionDesk(d.secret_key(KEY_NAME), reg, codes)
    try:
        seen: set[bytes] = set()
        total = 0
        for count in (1, 2, 50_000, 3, 100_000, 7):
            r = desk.reserve(pension, count)
            seen.update(r.acquisition_numbers[i:i + 16] for i in range(0, len(r.acquisition_numbers), 16))
            total += count
        assert len(seen) == total
        # Near the counter's end a fresh prefix is drawn instead of wrapping onto used numbers.
        desk._next = (1 << 32) - 5
        r = desk.reserve(pension, 10)
        assert desk._next == 10
        assert not seen & {r.acquisition_numbers[i:i + 16] for i in range(0, 160, 16)}
    finally:
        desk.close()
        codes.close()
        reg.close()
