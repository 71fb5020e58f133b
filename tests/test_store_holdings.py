"""Holdings on both drivers (docs/arch/store.md, "Holdings on PostgreSQL"): acquisition, release
and translation behave the same embedded and on PostgreSQL; several front-ends on one store
share person numbers and follow each other's changes; snapshots + events rebuild the state in a
fresh front-end; a kill -9 of the primary during acquisitions loses no acknowledged holding."""

from __future__ import annotations

import datetime as dt
import os
import random
import threading
import time
from pathlib import Path

import numpy as np
import psycopg
import pytest

from renkei.datadir import DataDir
from renkei.errors import CodeRefusedError, NotInitializedError, StoreUnavailableError
from renkei.linkage.codes import STATUS_OK, AgencyCodes
from renkei.linkage.registry import AgencyRegistry
from renkei.service.core import init_data_dir as init_core
from renkei.store import BINDING
from renkei.store.holdings import PgHoldings
from tests.conftest import store_url
from tests.pg_cluster import PgCluster, pg_bindir

DRIVERS = ["embedded", "postgresql"]
TODAY = dt.date.today()


@pytest.fixture(params=DRIVERS)
def driver(request: pytest.FixtureRequest) -> str | None:
    return store_url(request, request.param)


def links(n: int, rng: random.Random) -> bytes:
    return rng.randbytes(16 * n)


def approve(reg: AgencyRegistry, name: str, type_id: str, corporate: str) -> int:
    agency = reg.register_agency(name, [type_id], corporate).agency_id
    pia = reg.add_pia(agency, "全項目評価書", expires_on=TODAY + dt.timedelta(days=30))
    reg.approve_pia(pia.pia_id, TODAY)
    return agency


def front_end(d: DataDir) -> tuple[AgencyRegistry, AgencyCodes]:
    reg = AgencyRegistry(d)
    return reg, AgencyCodes(d, reg)


def setup(tmp_path: Path, url: str | None) -> tuple[DataDir, int, int]:
    d = init_core(tmp_path / "core", store=url)
    with AgencyRegistry(d) as reg:
        pension = approve(reg, "日本年金機構", "japan_pension_service", "5010405001703")
        health = approve(reg, "全国健康保険協会", "japan_health_insurance_association", "6010405003434")
    return d, pension, health


def test_acquire_release_translate_on_both_drivers(tmp_path: Path, driver: str | None) -> None:
    d, pension, health = setup(tmp_path, driver)
    rng = random.Random(1)
    people = links(300, rng)
    reg, codes = front_end(d)
    try:
        a = codes.issue(pension, people)
        b = codes.issue(health, people[:16 * 200])
        assert codes.issue(pension, people) == a, "codes are deterministic, nothing new"
        assert codes.person_count() == 300
        assert codes.holdings_counts() == {pension: 300, health: 200}
        out, status = codes.translate_batch(pension, a, health)
        assert status.tolist() == [STATUS_OK] * 200 + [1] * 100
        assert out[:16 * 200] == b and out[16 * 200:] == bytes(16 * 100)
        assert codes.translate(health, b[:16], pension) == a[:16]
        status = codes.release_batch(health, b[:16 * 10] + bytes(16))
        assert status.tolist() == [STATUS_OK] * 10 + [1]
        assert codes.release_batch(health, b[:16]).tolist() == [1], "released already"
        with pytest.raises(CodeRefusedError):
            codes.translate(pension, a[:16], health)
        found = codes.persons_of_links(people[:32] + links(1, random.Random(9)), assign=False)
        assert found.tolist() == [0, 1, -1]
        assert codes.persons_of_links(links(1, random.Random(9)), assign=True).tolist() == [300]
    finally:
        codes.close()
        reg.close()
    # Reopened: the same numbers, holdings and codes.
    reg, codes = front_end(d)
    try:
        assert codes.person_count() == 301
        assert codes.holdings_counts() == {pension: 300, health: 190}
        assert codes.issue(pension, people) == a
        assert codes.translate_batch(pension, a, health)[1].tolist() == [1] * 10 + [STATUS_OK] * 190 + [1] * 100
    finally:
        codes.close()
        reg.close()
    assert (d.path / "holdings").exists() == (driver is None)


def test_a_code_acquired_on_one_front_end_translates_on_another(tmp_path: Path, pg: PgCluster) -> None:
    d, pension, health = setup(tmp_path, pg.create_database("renkei_h_two"))
    (ra, a), (rb, b) = front_end(d), front_end(d)
    try:
        people = links(50, random.Random(2))
        pc = a.issue(pension, people)
        hc = a.issue(health, people)
        # B has not followed yet: the holding is unknown there, refused like any other.
        assert b.translate_batch(pension, pc, health)[1].tolist() == [1] * 50
        started = time.monotonic()
        assert b.follow() == 2
        assert b.translate_batch(pension, pc, health)[0] == hc
        print(f"\nfollowed in {time.monotonic() - started:.3f} s")
        # B releases; A follows; both agree.
        b.release_batch(health, hc[:16 * 5])
        a.follow()
        assert a.translate_batch(pension, pc, health)[1].tolist() == [1] * 5 + [STATUS_OK] * 45
        # A link id B learns about through persons_of_links without polling first: a miss polls.
        fresh = links(1, random.Random(3))
        assert a.persons_of_links(fresh, assign=True).tolist() == [50]
        assert b.persons_of_links(fresh, assign=False).tolist() == [50]
    finally:
        for c, r in ((a, ra), (b, rb)):
            c.close()
            r.close()


def test_person_numbers_never_collide_under_concurrent_acquisitions(tmp_path: Path, pg: PgCluster) -> None:
    url = pg.create_database("renkei_h_race")
    d, pension, health = setup(tmp_path, url)
    ends = [front_end(d) for _ in range(2)]
    rng = random.Random(4)
    pool = [links(1, rng) for _ in range(2_000)]
    issued: list[tuple[int, bytes, bytes]] = []
    lock = threading.Lock()

    def run(codes: AgencyCodes, seed: int) -> None:
        r = random.Random(seed)
        for _ in range(25):
            batch = r.sample(pool, 60)  # overlapping link ids across both front-ends
            agency = r.choice((pension, health))
            out = codes.issue(agency, b"".join(batch))
            with lock:
                issued.extend((agency, batch[i], out[16 * i:16 * i + 16]) for i in range(len(batch)))

    threads = [threading.Thread(target=run, args=(c, i)) for i, (_, c) in enumerate(ends) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        for _, c in ends:
            c.follow()
        seen = sorted({link for _, link, _ in issued})
        probe = b"".join(seen)
        numbers = [c.persons_of_links(probe, assign=False) for _, c in ends]
        assert (numbers[0] == numbers[1]).all() and (numbers[0] >= 0).all()
        assert sorted(numbers[0].tolist()) == list(range(len(seen))), "dense, one number per link id"
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*), count(DISTINCT link), max(person) FROM holdings.persons"
                                ).fetchone() == (len(seen), len(seen), len(seen) - 1)
        # Every code either front-end returned is the code the other computes for that person.
        for agency, link, code in issued[::7]:
            for _, c in ends:
                assert c.issue(agency, link) == code
    finally:
        for r, c in ends:
            c.close()
            r.close()


def test_a_fresh_front_end_loads_snapshots_and_events(tmp_path: Path, pg: PgCluster) -> None:
    url = pg.create_database("renkei_h_snap")
    d, pension, health = setup(tmp_path, url)
    (ra, a), (rb, b) = front_end(d), front_end(d)
    rng = random.Random(5)
    try:
        people = links(140_000, rng)  # three snapshot ranges
        a.issue(pension, people[:16 * 100_000])
        b.issue(pension, people[16 * 100_000:])
        a.follow()
        assert a.store is not None and b.store is not None
        a.store.prune_after_s = b.store.prune_after_s = 0
        first = a.store.snapshot()
        assert first is not None
        assert a.store.snapshot() is None, "nothing changed since"
        hc = b.issue(health, people[:16 * 70_000])
        b.release_batch(health, hc[:16 * 1_000])
        b.follow()
        second = b.store.snapshot()
        assert second is not None and second > first
        assert b.store.last_snapshot_ranges == 2, "incremental: only the ranges health's events touched"
        assert b.store.last_snapshot["patches"] == 2 and b.store.last_snapshot["bases"] == 0
        more = links(10, rng)
        a.issue(health, more + people[-16:])
        with psycopg.connect(url) as conn:
            # The first snapshot's bases stay; ranges 0 and 1 got patches on top of theirs;
            # the events and persons the first covered are gone.
            assert conn.execute("SELECT snapshot, kind, array_agg(range ORDER BY range) FROM "
                                "holdings.holdings_chunk GROUP BY snapshot, kind ORDER BY snapshot").fetchall() == [
                (first, 0, [0, 1, 2]), (second, 1, [0, 1])]
            assert conn.execute("SELECT min(person) FROM holdings.persons").fetchone() == (140_000,)
        rc, c = front_end(d)
        try:
            assert c.store is not None
            assert c.store.loaded_from["snapshot_ranges"] == 3 and c.store.loaded_from["patch_rows"] == 2
            assert c.store.loaded_from["events_replayed"] == 1
            a.follow()
            assert c.store.cursor == a.store.cursor
            assert c.holdings_counts() == a.holdings_counts() == {pension: 140_000, health: 69_011}
            probe = b"".join(people[i:i + 16] for i in range(0, len(people), 16 * 97))
            assert (c.persons_of_links(probe + more, assign=False) == a.persons_of_links(probe + more,
                                                                                          assign=False)).all()
            pc = a.issue(pension, people)
            assert c.translate_batch(pension, pc, health)[0] == a.translate_batch(pension, pc, health)[0]
        finally:
            c.close()
            rc.close()
    finally:
        for c_, r in ((a, ra), (b, rb)):
            c_.close()
            r.close()


def test_the_snapshot_election_has_one_winner(tmp_path: Path, pg: PgCluster) -> None:
    from renkei.store.holdings import _lock_key

    url = pg.create_database("renkei_h_elect")
    d, pension, _ = setup(tmp_path, url)
    reg, codes = front_end(d)
    try:
        codes.issue(pension, links(10, random.Random(6)))
        assert codes.store is not None
        with psycopg.connect(url, autocommit=True) as other:
            other.execute("SELECT pg_advisory_lock(%s)", (_lock_key("snapshot"),))
            assert codes.store.snapshot() is None, "another front-end holds the election"
        assert codes.store.snapshot() is not None
    finally:
        codes.close()
        reg.close()


def test_an_emptied_holdings_schema_is_refused(tmp_path: Path, pg: PgCluster) -> None:
    url = pg.create_database("renkei_h_empty")
    d, _, _ = setup(tmp_path, url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA holdings CASCADE")
    reg = AgencyRegistry(d)
    try:
        with pytest.raises(NotInitializedError, match="never initialised"):
            AgencyCodes(d, reg)
    finally:
        reg.close()


@pytest.mark.slow
@pytest.mark.skipif(pg_bindir() is None, reason="PostgreSQL server binaries are not installed")
def test_kill_9_of_the_primary_during_acquisitions_loses_no_acknowledged_holding(tmp_path: Path) -> None:
    """Two front-ends acquire codes (new and known persons) while the primary is killed with
    SIGKILL; the standby is promoted; the front-ends ride through (calls in between fail with
    StoreUnavailableError). A fresh front-end, loaded from the snapshot and the events on the
    new primary, holds every acknowledged holding under the number its code was issued for."""
    cluster = PgCluster.start()
    try:
        url = cluster.create_database("renkei_h_failover")
        d, pension, health = setup(tmp_path, url)
        ends = [front_end(d) for _ in range(2)]
        acked: list[tuple[int, bytes, bytes]] = []
        failed: list[str] = []
        stop = threading.Event()
        lock = threading.Lock()
        killed_at: list[float] = []
        after: list[float] = []

        def run(codes: AgencyCodes, seed: int) -> None:
            r = random.Random(seed)
            known: list[bytes] = []
            while not stop.is_set():
                batch = [r.randbytes(16) for _ in range(20)] + r.sample(known, min(10, len(known)))
                agency = r.choice((pension, health))
                try:
                    out = codes.issue(agency, b"".join(batch))
                except StoreUnavailableError as e:
                    failed.append(str(e))
                    continue
                with lock:
                    if killed_at and not after:
                        after.append(time.monotonic())
                    acked.extend((agency, batch[i], out[16 * i:16 * i + 16]) for i in range(len(batch)))
                known.extend(batch[:20])

        threads = [threading.Thread(target=run, args=(c, i)) for i, (_, c) in enumerate(ends)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        ends[0][1].follow()
        assert ends[0][1].store is not None and ends[0][1].store.snapshot() is not None
        time.sleep(0.5)
        before = len(acked)
        killed_at.append(time.monotonic())
        cluster.kill_primary()
        time.sleep(0.5)
        cluster.promote()
        deadline = time.monotonic() + 30
        while not after and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join()
        assert after, "no acquisition was acknowledged after the promote"
        print(f"\nfailover: {before} holdings acknowledged before the kill, {len(acked)} in all; first "
              f"after {after[0] - killed_at[0]:.2f} s; {len(failed)} calls failed (UNAVAILABLE)")
        ends[0][1].follow()
        survivor = state_of(ends[0][1])
        for r, c in ends:
            c.close()
            r.close()
        rc, fresh = front_end(d)
        try:
            # The fresh front-end (snapshot + events on the promoted node) is the survivor's state.
            loaded = state_of(fresh)
            assert loaded[0] == survivor[0]
            assert {a: sorted(p) for a, p in loaded[1].items()} == {a: sorted(p) for a, p in survivor[1].items()}
            probe = b"".join(link for _, link, _ in acked)
            assert (fresh.persons_of_links(probe, assign=False) >= 0).all()
            for agency, _link, code in acked:
                _, status = fresh.translate_batch(agency, code, agency)
                assert status.tolist() == [STATUS_OK], "an acknowledged holding is lost"
            want: dict[int, set[bytes]] = {}
            for agency, link, _ in acked:
                want.setdefault(agency, set()).add(link)
            counts = fresh.holdings_counts()
            for agency, held in want.items():
                assert counts[agency] >= len(held)
        finally:
            fresh.close()
            rc.close()
    finally:
        cluster.stop()


def test_a_core_bound_to_postgresql_keeps_no_holdings_directory(tmp_path: Path, pg: PgCluster) -> None:
    url = pg.create_database("renkei_h_dir")
    d, pension, _ = setup(tmp_path, url)
    assert (d.path / BINDING).exists() and not (d.path / "holdings").exists()
    reg, codes = front_end(d)
    try:
        assert codes.engine.is_in_memory()
        codes.issue(pension, links(3, random.Random(7)))
    finally:
        codes.close()
        reg.close()
    assert not any(p.name.startswith("holdings") for p in d.path.iterdir())
    assert os.stat(d.path / BINDING).st_mode & 0o777 == 0o600


def test_a_running_core_follows_the_holdings_within_its_interval(tmp_path: Path, pg: PgCluster) -> None:
    """The core's background task (renkei.service.core.follow_holdings): a code issued on another
    front-end translates here within the follow interval, and the task writes a snapshot once
    one is due."""
    import asyncio

    from renkei.service.core import follow_holdings

    url = pg.create_database("renkei_h_follow")
    d, pension, health = setup(tmp_path, url)
    (ra, a), (rb, b) = front_end(d), front_end(d)
    interval = 0.2

    async def scenario() -> float:
        task = asyncio.create_task(follow_holdings(b, interval))
        await asyncio.sleep(0.3)
        people = links(20, random.Random(8))
        pc = a.issue(pension, people)
        hc = a.issue(health, people)
        started = time.monotonic()
        while b.translate_batch(pension, pc, health)[0] != hc:
            assert time.monotonic() - started < 5 * interval, "not followed in time"
            await asyncio.sleep(0.01)
        took = time.monotonic() - started
        assert b.store is not None
        b.store.snapshot_events = 2
        while b.store.snapshot_due():
            assert time.monotonic() - started < 10, "no snapshot written"
            await asyncio.sleep(0.05)
        task.cancel()
        return took

    try:
        took = asyncio.run(scenario())
        print(f"\nfollowed {took:.3f} s after the commit (interval {interval} s)")
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM holdings.holdings_snapshot WHERE complete").fetchone() == (1,)
    finally:
        for c, r in ((a, ra), (b, rb)):
            c.close()
            r.close()


def test_codes_verify_and_repair_on_a_store_bound_core(tmp_path: Path, pg: PgCluster,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from renkei import cli

    d, pension, _ = setup(tmp_path, pg.create_database("renkei_h_cli"))
    reg, codes = front_end(d)
    try:
        codes.issue(pension, links(7, random.Random(10)))
    finally:
        codes.close()
        reg.close()
    assert cli.main(["codes", "verify", "--data-dir", str(d.path)]) == 0
    out = capsys.readouterr().out
    assert "clean: 7 persons, 7 holdings of 1 agencies" in out and "postgresql" in out
    assert cli.main(["codes", "repair", "--data-dir", str(d.path)]) != 0
    assert "on PostgreSQL: there is no holdings/ to repair" in capsys.readouterr().err


def test_an_embedded_core_s_holdings_import_into_an_empty_store(tmp_path: Path, pg: PgCluster) -> None:
    """import_engine: a file store's whole state as one snapshot (the national bench's writer and
    the step a move to PostgreSQL needs); a front-end then loads exactly that state."""
    from renkei._core import codes as _codes
    from renkei.errors import FailedPreconditionError
    from renkei.store.holdings import import_engine

    key = bytes(range(32))
    files = _codes.CodeEngine(key, str(tmp_path / "holdings"), 1, [1], create=True)
    rng = random.Random(11)
    people = links(70_000, rng)
    codes_a = files.acquire_links(3, people)
    files.acquire_links(4, people[: 16 * 5_000])
    files.persons_of_links(links(1, rng), True)
    url = pg.create_database("renkei_h_import")
    import_engine(url, files)
    with pytest.raises(FailedPreconditionError, match="not empty"):
        import_engine(url, files)
    mem = _codes.CodeEngine.in_memory(key, 1, [1])
    store = PgHoldings(url, mem)
    try:
        assert store.loaded_from["snapshot_ranges"] == 2
        assert mem.person_count() == files.person_count() == 70_001
        assert mem.counts()[1].tolist() == files.counts()[1].tolist() == [70_000, 5_000]
        assert store.acquire(3, people) == codes_a
        assert (mem.persons_of_links(people, False) == files.persons_of_links(people, False)).all()
    finally:
        store.close()
        files.close()


def test_a_fenced_snapshot_writer_cannot_complete(tmp_path: Path, pg: PgCluster,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The election's epoch is the fencing token: a writer elected again elsewhere while it was
    writing its ranges (its session lost, another front-end elected) cannot complete its
    snapshot, and the newest complete snapshot stays what it was."""
    from renkei.errors import StorageError
    from renkei.store import holdings as pg_holdings

    url = pg.create_database("renkei_h_fence")
    d, pension, _ = setup(tmp_path, url)
    reg, codes = front_end(d)
    real = pg_holdings._write_rows

    def elected_elsewhere(conn, upto, persons, ranges, epoch, rows):  # type: ignore[no-untyped-def]
        snapshot = real(conn, upto, persons, ranges, epoch, rows)
        with psycopg.connect(url, autocommit=True) as other:
            other.execute("UPDATE holdings.holdings_coord SET epoch = epoch + 1")
        return snapshot

    try:
        assert codes.store is not None
        codes.issue(pension, links(10, random.Random(12)))
        first = codes.store.snapshot()
        codes.issue(pension, links(10, random.Random(13)))
        monkeypatch.setattr(pg_holdings, "_write_rows", elected_elsewhere)
        with pytest.raises(StorageError, match="another front-end was elected"):
            codes.store.snapshot()
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT snapshot FROM holdings.holdings_snapshot WHERE complete").fetchall() == [
                (first,)]
    finally:
        codes.close()
        reg.close()


def test_a_follower_behind_the_pruned_log_is_told_to_restart(tmp_path: Path, pg: PgCluster) -> None:
    """Events and persons a snapshot's predecessor covered are pruned; a front-end that had not
    applied them gets an error naming the gap, never a silently incomplete index."""
    from renkei.errors import StorageError

    url = pg.create_database("renkei_h_prune")
    d, pension, _ = setup(tmp_path, url)
    (ra, a), (rb, b) = front_end(d), front_end(d)
    try:
        assert a.store is not None
        a.store.prune_after_s = 0
        rng = random.Random(14)
        for _ in range(2):
            a.issue(pension, links(5, rng))
            assert a.store.snapshot() is not None
        with pytest.raises(StorageError, match="fell behind the store's pruned log"):
            b.follow()
        assert b.person_count() == 0
    finally:
        for c, r in ((a, ra), (b, rb)):
            c.close()
            r.close()


def test_a_front_end_holding_what_the_store_lost_is_told_to_restart(tmp_path: Path, pg: PgCluster) -> None:
    """A commit made visible on a primary that then failed over without it (a cancelled
    synchronous-replication wait) may have been applied by a follower: the follower notices
    that its last applied event or person is not in the store, and refuses to go on."""
    from renkei.errors import StorageError

    url = pg.create_database("renkei_h_lost")
    d, pension, _ = setup(tmp_path, url)
    (ra, a), (rb, b) = front_end(d), front_end(d)
    try:
        rng = random.Random(15)
        a.issue(pension, links(3, rng))
        b.follow()
        with psycopg.connect(url, autocommit=True) as conn:  # what the promoted standby never had
            conn.execute("DELETE FROM holdings.holding_events")
            conn.execute("DELETE FROM holdings.persons")
        with pytest.raises(StorageError, match="a failover lost a commit"):
            b.follow()
        with pytest.raises(StorageError, match="a failover lost a commit"):
            a.issue(pension, links(1, rng))
    finally:
        for c, r in ((a, ra), (b, rb)):
            c.close()
            r.close()


def state_of(codes: AgencyCodes) -> tuple[list[bytes], dict[int, list[int]]]:
    """Every link id and every agency's persons, decoded range by range (the reference)."""
    from tests.reference import holdings_range_ref as ref

    all_links: list[bytes] = []
    sets: dict[int, list[int]] = {}
    for hi in range(codes.engine.index_range_count()):
        _, range_links, range_sets = ref.decode(codes.engine.index_encode_range(hi))
        all_links += range_links
        for agency, persons in range_sets.items():
            sets.setdefault(agency, []).extend(persons)
    return all_links, sets


@pytest.mark.parametrize("seed", [1, 2])
def test_incremental_snapshots_by_either_front_end_rebuild_the_state(tmp_path: Path, pg: PgCluster,
                                                                     seed: int) -> None:
    """Random acquisitions and releases on two front-ends over four ranges, snapshots written by
    either (each only the ranges changed since the newest): a fresh front-end loaded from them
    and the events after the newest has exactly the state of a front-end that followed it all."""
    url = pg.create_database(f"renkei_h_incr_{seed}")
    d, pension, health = setup(tmp_path, url)
    ends = [front_end(d) for _ in range(2)]
    rng = random.Random(seed)
    known: list[bytes] = []
    issued: dict[tuple[int, bytes], bytes] = {}
    for _, c in ends:
        assert c.store is not None
        c.store.prune_after_s = 0
    try:
        for _ in range(40):
            actor = rng.randrange(2)
            _, c = ends[actor]
            ends[1 - actor][1].follow()  # the other one polls (every second in a core)
            agency = rng.choice((pension, health))
            roll = rng.random()
            if roll < 0.5 or not known:
                batch = [rng.randbytes(16) for _ in range(rng.choice((10, 5_000, 20_000)))]
                batch += rng.sample(known, min(len(known), rng.randrange(0, 3_000)))
                out = c.issue(agency, b"".join(batch))
                known += batch
                issued.update(((agency, link), out[16 * i:16 * i + 16]) for i, link in enumerate(batch))
            elif roll < 0.75:
                held = [code for (a, _), code in issued.items() if a == agency]
                gone = rng.sample(held, min(len(held), rng.randrange(1, 4_000)))
                c.release_batch(agency, b"".join(gone))
                issued = {k: v for k, v in issued.items() if not (k[0] == agency and v in set(gone))}
            else:
                c.follow()
                assert c.store is not None
                c.store.snapshot()
        for _, c in ends:
            c.follow()
        rf, fresh = front_end(d)
        try:
            want, got = state_of(ends[0][1]), state_of(fresh)
            assert got[0] == want[0] and len(got[0]) == len(set(known))
            assert {a: sorted(p) for a, p in got[1].items()} == {a: sorted(p) for a, p in want[1].items()}
            assert fresh.holdings_counts() == {a: n for a, n in ends[1][1].holdings_counts().items()}
        finally:
            fresh.close()
            rf.close()
    finally:
        for r, c in ends:
            c.close()
            r.close()


def test_patches_fold_and_compact_across_writers_and_a_takeover(tmp_path: Path, pg: PgCluster,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Scattered acquisitions and releases over four ranges, a snapshot after each round by
    either front-end, with bounds small enough that ranges get patches, fold them and are
    compacted into new bases; one writer dies after sending its rows (never completes) and the
    other takes over. After every few rounds a fresh front-end (bases + patches + events) equals
    a front-end that followed every event, range by range; the dead writer's rows are gone once
    a snapshot completes after it."""
    from renkei.store import holdings as pg_holdings

    monkeypatch.setattr(pg_holdings, "MAX_PATCHES", 3)
    monkeypatch.setattr(pg_holdings, "PATCH_FRACTION", 1_500)  # a chain of ~700 bytes per range
    url = pg.create_database("renkei_h_patches")
    d, pension, health = setup(tmp_path, url)
    ends = [front_end(d) for _ in range(2)]
    rng = random.Random(16)
    people = links(200_000, rng)
    issued: dict[int, list[bytes]] = {}
    totals = {"bases": 0, "patches": 0, "folded": 0}
    try:
        for agency in (pension, health):
            issued[agency] = [c for i in range(0, 200_000, 50_000)
                              for c in split(ends[0][1].issue(agency, people[16 * i:16 * (i + 50_000)]))]
        for _, c in ends:
            assert c.store is not None
            c.store.prune_after_s = 0
        assert ends[0][1].store is not None and ends[0][1].store.snapshot() is not None
        real = pg_holdings._write_rows
        for round_ in range(18):
            _, c = ends[round_ % 2]
            agency = rng.choice((pension, health))
            # Releases scattered over every range, acquisitions back of some, a few new persons.
            gone = rng.sample(issued[agency], 60)
            c.release_batch(agency, b"".join(gone))
            dropped = set(gone)
            issued[agency] = [x for x in issued[agency] if x not in dropped]
            back = [people[16 * i:16 * i + 16] for i in rng.sample(range(200_000), 40)]
            issued[agency] += split(c.issue(agency, b"".join(back)))
            if round_ % 5 == 0:
                c.issue(health, links(rng.choice((3, 700)), rng))
            for _, e in ends:
                e.follow()
            assert c.store is not None
            if round_ == 7:
                def dies_after_sending(conn, upto, persons, ranges, epoch, rows):  # type: ignore[no-untyped-def]
                    real(conn, upto, persons, ranges, epoch, rows)
                    raise psycopg.OperationalError("the writer's host vanished")

                monkeypatch.setattr(pg_holdings, "_write_rows", dies_after_sending)
                with pytest.raises(StoreUnavailableError):
                    c.store.snapshot()
                monkeypatch.setattr(pg_holdings, "_write_rows", real)
                with psycopg.connect(url) as conn:
                    assert conn.execute("SELECT count(*) FROM holdings.holdings_snapshot WHERE NOT complete"
                                        ).fetchone() == (1,)
                c = ends[1 - round_ % 2][1]  # the other front-end takes over
                assert c.store is not None
            assert c.store.snapshot() is not None
            for k in totals:
                totals[k] += c.store.last_snapshot[k]
            if round_ % 6 == 5:
                want = state_of(ends[0][1])
                rf, fresh = front_end(d)
                try:
                    got = state_of(fresh)
                    assert got[0] == want[0]
                    assert {a: sorted(p) for a, p in got[1].items()} == {a: sorted(p) for a, p in want[1].items()}
                    assert fresh.holdings_counts() == ends[1][1].holdings_counts()
                    assert fresh.store is not None and fresh.store.loaded_from["patch_rows"] > 0
                finally:
                    fresh.close()
                    rf.close()
        assert totals["patches"] > 0 and totals["folded"] > 0 and totals["bases"] > 0, totals
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM holdings.holdings_snapshot WHERE NOT complete").fetchone() == (0,)
            most = conn.execute("SELECT max(n) FROM (SELECT count(*) AS n FROM holdings.holdings_chunk "
                                "GROUP BY range) r").fetchone()
            assert most is not None and most[0] <= 1 + 3, "a base and at most MAX_PATCHES patches a range"
        print(f"\nrows written over the run: {totals}")
    finally:
        for r, c_ in ends:
            c_.close()
            r.close()


def split(codes: bytes) -> list[bytes]:
    return [codes[i:i + 16] for i in range(0, len(codes), 16)]


#: The holdings schema as the first layout made it (bases only, no kind column).
FIRST_LAYOUT = """
CREATE SCHEMA holdings;
CREATE TABLE holdings.holdings_coord (id INTEGER PRIMARY KEY CHECK (id = 1), epoch BIGINT NOT NULL,
    pruned_seq BIGINT NOT NULL, pruned_persons BIGINT NOT NULL);
CREATE TABLE holdings.persons (person BIGINT PRIMARY KEY, link BYTEA NOT NULL UNIQUE);
CREATE TABLE holdings.holding_events (seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, op TEXT NOT NULL,
    agency BIGINT NOT NULL, persons BYTEA NOT NULL);
CREATE TABLE holdings.holdings_snapshot (snapshot BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    upto_seq BIGINT NOT NULL, persons BIGINT NOT NULL, ranges INTEGER NOT NULL, epoch BIGINT NOT NULL,
    complete BOOLEAN NOT NULL DEFAULT false, created_at TIMESTAMPTZ NOT NULL DEFAULT now());
CREATE TABLE holdings.holdings_chunk (snapshot BIGINT NOT NULL REFERENCES holdings.holdings_snapshot
    ON DELETE CASCADE, range INTEGER NOT NULL, data BYTEA NOT NULL, PRIMARY KEY (snapshot, range));
INSERT INTO holdings.holdings_coord VALUES (1, 0, 0, 0)
"""


def test_a_store_of_the_first_layout_loads_and_takes_patches(tmp_path: Path, pg: PgCluster) -> None:
    """A store written before patches (bases only, no kind column, as the first layout's
    snapshot left it): a front-end opening it marks its rows as bases and loads exactly that
    state; snapshots then add patches on top, and a fresh front-end loads those too."""
    from renkei._core import codes as _codes

    key = bytes(range(32))
    old = _codes.CodeEngine.in_memory(key, 1, [1])
    rng = random.Random(17)
    people = links(100_000, rng)
    old.index_assign(0, people)
    held = np.arange(0, 100_000, 3, dtype="<u4")
    old.index_apply("acquire", 5, held.tobytes())
    url = pg.create_database("renkei_h_layout")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(FIRST_LAYOUT)
        snap = conn.execute("INSERT INTO holdings.holdings_snapshot(upto_seq, persons, ranges, epoch, complete) "
                            "VALUES (0, 100000, 2, 0, true) RETURNING snapshot").fetchone()
        assert snap is not None
        for hi in range(2):
            conn.execute("INSERT INTO holdings.holdings_chunk(snapshot, range, data) VALUES (%s, %s, %s)",
                         (snap[0], hi, old.index_encode_range(hi)))
        conn.execute("INSERT INTO holdings.persons SELECT g, decode(lpad(to_hex(g), 32, '0'), 'hex') "
                     "FROM generate_series(100000, 100001) g")  # assigned after that snapshot
    mem = _codes.CodeEngine.in_memory(key, 1, [1])
    store = PgHoldings(url, mem)
    try:
        assert store.loaded_from == {"snapshot_ranges": 2, "patch_rows": 0, "events_replayed": 0,
                                     "seconds": store.loaded_from["seconds"], "patch_seconds": 0.0}
        assert mem.person_count() == 100_002 and mem.count(5) == len(held)
        assert (mem.persons_of_links(people, False) == np.arange(100_000)).all()
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT kind, count(*) FROM holdings.holdings_chunk GROUP BY kind").fetchall() == [
                (0, 2)]
        codes = mem.codes_for(5, held[::1000].tobytes())
        store.release(5, codes)
        assert store.snapshot() is not None and store.last_snapshot["patches"] == 2
        again = _codes.CodeEngine.in_memory(key, 1, [1])
        fresh = PgHoldings(url, again)
        try:
            assert fresh.loaded_from["patch_rows"] == 2
            assert again.count(5) == mem.count(5) == len(held) - len(held[::1000])
            for hi in range(2):
                assert again.index_encode_range(hi) == mem.index_encode_range(hi)
        finally:
            fresh.close()
    finally:
        store.close()
