"""The permission engine against the real 2015 別表第二 and against the pure-Python reference."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from renkei import cli
from renkei.errors import InvalidArgumentError
from renkei.permissions import engine as pm
from renkei.permissions.convert import convert, dumps
from renkei.permissions.engine import AgencyFacts, PermissionEngine
from tests.reference import permissions_ref as ref

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO / "tests" / "data" / "beppyo2"  # vendored: origin and licence in its README.md
AT = datetime(2020, 4, 1, 9, tzinfo=UTC)


@pytest.fixture(scope="module")
def engine() -> PermissionEngine:
    return PermissionEngine.with_default()


@pytest.fixture(scope="module")
def bundled() -> dict[str, Any]:
    return json.loads(pm.default_table_path().read_text(encoding="utf-8"))


def test_bundled_table_is_the_real_beppyo2(bundled: dict[str, Any]) -> None:
    assert len(bundled["rows"]) == 259
    kos = {r["ko"] for r in bundled["rows"]}
    assert len(kos) == 120 and "36" not in kos and "56-2" in kos
    assert len(bundled["affairs"]) == 120


def test_bundled_table_round_trips_through_the_converter(bundled: dict[str, Any]) -> None:
    assert SHARED.is_dir(), f"the vendored 別表第二 data set is missing: {SHARED}"
    regenerated = dumps(convert(SHARED))
    assert regenerated == pm.default_table_path().read_text(encoding="utf-8")
    # And back: every source row is one bundled row with the same types, items and 事務 text.
    source = json.loads((SHARED / "structured.json").read_text(encoding="utf-8"))
    by_ref = {r["ref"]: r for r in bundled["rows"]}
    affairs = {a["id"]: a for a in bundled["affairs"]}
    for s in source:
        row = by_ref.pop(f"B2.{s['item']}.{s['row_in_item']}")
        assert row["requesters"] == s["requester_type_ids"]
        assert row["providers"] == s["provider_type_ids"]
        assert row["items"] == s["information_category_ids"]
        assert affairs[row["affair"]]["name"] == s["affair"]
    assert not by_ref


def test_content_hash_matches_the_documented_encoding(engine: PermissionEngine, bundled: dict[str, Any]) -> None:
    (v,) = engine.versions()
    assert v.hash == ref.content_hash(bundled) == pm.content_hash(bundled)
    assert v.rows == 259


def test_real_row_allows(engine: PermissionEngine) -> None:
    # 別表第二 一の項: 厚生労働大臣 / 健康保険 affair / 市町村長 / 地方税関係情報.
    r = engine.check(AgencyFacts("mhlw_minister"), "beppyo2-1", AgencyFacts("municipal_mayor"), ["local_tax_info"], AT)
    assert r.allowed and r.failed_component is None
    assert [x.ref for x in r.matched_rows] == ["B2.1.2"]
    assert r.matched_rows[0].ko == "1"
    assert r.version_label == "beppyo2-2015" and r.version_hash is not None
    # The same by permit code, several items at once, each with its row.
    r = engine.check(AgencyFacts("mhlw_minister"), "B2.1", AgencyFacts(["municipal_mayor", "medical_insurers"]),
                     ["resident_record_info", "medical_insurance_benefit_info"], AT)
    assert r.allowed and [x.ref for x in r.matched_rows] == ["B2.1.2", "B2.1.1"]


@pytest.mark.parametrize(
    ("requester", "affair", "provider", "item", "outcome", "nearest"),
    [
        # 都道府県知事 is not the requester of 一の項.
        ("prefectural_governor", "beppyo2-1", "municipal_mayor", "local_tax_info", "requester_not_entitled", "B2.1.2"),
        # 厚生労働大臣 may ask 市町村長, but not a 都道府県知事, under 一の項.
        ("mhlw_minister", "beppyo2-1", "prefectural_governor", "local_tax_info", "provider_not_listed", "B2.1.2"),
        # 市町村長 is listed, but not for 医療保険給付関係情報 (that comes from 医療保険者).
        ("mhlw_minister", "beppyo2-1", "municipal_mayor", "medical_insurance_benefit_info", "item_not_listed",
         "B2.1.2"),
        ("mhlw_minister", "beppyo2-36", "municipal_mayor", "local_tax_info", "unknown_affair", None),
    ],
)
def test_near_misses_deny_with_the_right_reason(engine: PermissionEngine, requester: str, affair: str,
                                                provider: str, item: str, outcome: str, nearest: str | None) -> None:
    r = engine.check(AgencyFacts(requester), affair, AgencyFacts(provider), [item], AT)
    assert not r.allowed
    assert r.failed_component == outcome
    assert (r.nearest_row.ref if r.nearest_row else None) == nearest
    assert r.failed_item == item
    assert outcome in r.explain()


def test_no_version_in_force_before_the_table(engine: PermissionEngine) -> None:
    r = engine.check(AgencyFacts("mhlw_minister"), "beppyo2-1", AgencyFacts("municipal_mayor"), "local_tax_info",
                     datetime(2017, 11, 12, 14, 59, 59, 999_999, tzinfo=UTC))
    assert r.failed_component == "no_version_in_force" and r.version_hash is None


def _ordinance_doc(bundled: dict[str, Any]) -> dict[str, Any]:
    return pm.with_ordinance(
        bundled, municipality="131016", label="chiyoda-2021", effective_from="2021-04-01T00:00:00+09:00",
        affairs=[{"id": "131016-kosodate", "code": "O131016.1", "name": "千代田区子育て支援条例による給付の事務",
                  "codes": ["JT13101600000001"]}],
        rows=[{"ref": "O131016.1.1", "affair": "131016-kosodate", "requesters": ["municipal_mayor"],
               "providers": ["municipal_mayor"], "items": ["local_tax_info"]}],
    )


def test_ordinance_rows_hold_only_for_their_municipality(bundled: dict[str, Any]) -> None:
    e = PermissionEngine()
    e.load(bundled)
    e.load(_ordinance_doc(bundled))
    at = datetime(2022, 1, 1, tzinfo=UTC)
    own = e.check(AgencyFacts("municipal_mayor", 131016), "JT13101600000001", AgencyFacts("municipal_mayor"),
                  ["local_tax_info"], at)
    assert own.allowed and own.matched_rows[0].municipality == "131016"
    other = e.check(AgencyFacts("municipal_mayor", "271004"), "131016-kosodate", AgencyFacts("municipal_mayor"),
                    ["local_tax_info"], at)
    assert other.failed_component == "other_municipality" and other.nearest_row is not None
    assert other.nearest_row.ref == "O131016.1.1"
    before = e.check(AgencyFacts("municipal_mayor", 131016), "131016-kosodate", AgencyFacts("municipal_mayor"),
                     ["local_tax_info"], datetime(2021, 3, 31, 14, 59, 59, 999_999, tzinfo=UTC))
    assert before.failed_component == "unknown_affair" and before.version_label == "beppyo2-2015"


def test_versions_switch_exactly_at_their_effective_instant(bundled: dict[str, Any]) -> None:
    e = PermissionEngine()
    e.load(bundled)
    v2 = json.loads(json.dumps(bundled))
    v2.update(label="v2", effective_from="2019-05-01T00:00:00+09:00", effective_until="2019-10-01T00:00:00+09:00")
    v2["rows"] = [r for r in v2["rows"] if r["ref"] != "B2.1.2"]
    e.load(v2)
    edge = datetime(2019, 4, 30, 15, tzinfo=UTC)
    args = (AgencyFacts("mhlw_minister"), "beppyo2-1", AgencyFacts("municipal_mayor"), ["local_tax_info"])
    assert e.check(*args, edge - timedelta(microseconds=1)).allowed
    at_edge = e.check(*args, edge)
    assert at_edge.version_label == "v2" and at_edge.failed_component == "provider_not_listed"
    end = datetime(2019, 9, 30, 15, tzinfo=UTC)
    assert e.check(*args, end - timedelta(microseconds=1)).version_label == "v2"
    assert e.check(*args, end).failed_component == "no_version_in_force"


def test_reload_under_concurrent_checks_never_mixes(bundled: dict[str, Any]) -> None:
    # Two contents of one label: A without row B2.1.2, B with it. A mixed view would answer
    # with one version's rows and the other's hash.
    a = json.loads(json.dumps(bundled))
    a["rows"] = [r for r in a["rows"] if r["ref"] != "B2.1.2"]
    b = bundled
    ha, hb = ref.content_hash(a), ref.content_hash(b)
    e = PermissionEngine()
    e.load(a)
    stop = threading.Event()
    errors: list[str] = []
    args = (AgencyFacts("mhlw_minister"), "beppyo2-1", AgencyFacts("municipal_mayor"), ["local_tax_info"], AT)
    t_ids = e.type_ids(["mhlw_minister", "municipal_mayor"])
    q = np.zeros((50_000, 5), dtype=np.uint32)
    q[:, 0], q[:, 2] = t_ids[0], t_ids[1]
    q[:, 1] = e.affair_ids(["beppyo2-1"], AT)[0]
    q[:, 3] = e.item_ids(["local_tax_info"], AT)[0]
    seen = {ha: 0, hb: 0}
    batches = [0]

    def single() -> None:
        while not stop.is_set():
            r = e.check(*args)
            if (r.allowed, r.version_hash) not in ((False, ha), (True, hb)):
                errors.append(f"single: allowed={r.allowed} hash={r.version_hash!r}")
            # Rows come from the same version: B2.1.2 permits; without it, B2.1.1 is nearest.
            row = r.matched_rows[0] if r.allowed else r.nearest_row
            if row is None or row.ref != ("B2.1.2" if r.allowed else "B2.1.1"):
                errors.append(f"single: row {row} with allowed={r.allowed}")
            seen[r.version_hash] += 1  # type: ignore[index]

    def batch() -> None:
        while not stop.is_set():
            res = e.check_batch(q, AT)
            allowed = res.outcome == 0
            if not ((allowed.all() and res.version_hash == hb) or ((~allowed).all() and res.version_hash == ha)):
                errors.append("batch: mixed outcomes")
            batches[0] += 1

    threads = [threading.Thread(target=single), threading.Thread(target=batch)]
    for t in threads:
        t.start()
    for k in range(60):
        # Let both readers answer between reloads, so each sees both contents.
        s0, b0 = sum(seen.values()), batches[0]
        while (sum(seen.values()) == s0 or batches[0] == b0) and all(t.is_alive() for t in threads):
            time.sleep(0.0005)
        e.load(b if k % 2 == 0 else a)
    stop.set()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert seen[ha] and seen[hb]


def test_batch_agrees_with_single(engine: PermissionEngine, bundled: dict[str, Any]) -> None:
    rng = np.random.default_rng(7)
    types = [t["id"] for t in bundled["agency_types"]]
    affairs = [a["id"] for a in bundled["affairs"]]
    items = [i["id"] for i in bundled["items"]]
    n = 3000
    rows = [bundled["rows"][k] for k in rng.integers(0, 259, n)]
    # Half are real rows (mostly allowed), half random (mostly denied).
    rq = [r["requesters"][0] if k % 2 else types[rng.integers(len(types))] for k, r in enumerate(rows)]
    af = [r["affair"] if k % 2 else affairs[rng.integers(len(affairs))] for k, r in enumerate(rows)]
    pv = [r["providers"][0] for r in rows]
    it = [r["items"][0] if k % 3 else items[rng.integers(len(items))] for k, r in enumerate(rows)]
    q = np.stack([engine.type_ids(rq), engine.affair_ids(af, AT), engine.type_ids(pv), engine.item_ids(it, AT),
                  np.zeros(n, dtype=np.uint32)], axis=1).astype(np.uint32)
    res = engine.check_batch(np.ascontiguousarray(q), AT)
    assert 0 < int((res.outcome == 0).sum()) < n
    for k in range(n):
        r = engine.check(AgencyFacts(rq[k]), af[k], AgencyFacts(pv[k]), [it[k]], AT)
        assert pm.OUTCOMES[int(res.outcome[k])] == r.outcome
        want = r.matched_rows[0].index if r.allowed else (r.nearest_row.index if r.nearest_row else pm.NO_ROW)
        assert int(res.row[k]) == want


def test_bad_input_is_a_clear_error(engine: PermissionEngine, bundled: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgumentError):
        AgencyFacts([])
    with pytest.raises(InvalidArgumentError):
        AgencyFacts("municipal_mayor", "13101")
    with pytest.raises(InvalidArgumentError):
        engine.check(AgencyFacts("mhlw_minister"), "beppyo2-1", AgencyFacts("municipal_mayor"), [], AT)
    with pytest.raises(InvalidArgumentError):
        engine.check(AgencyFacts("mhlw_minister"), "beppyo2-1", AgencyFacts("municipal_mayor"), "x",
                     datetime(2020, 1, 1))
    with pytest.raises(InvalidArgumentError):
        engine.check_batch(np.zeros((4, 4), dtype=np.uint32), AT)
    with pytest.raises(InvalidArgumentError):
        engine.check_batch(np.zeros((4, 5), dtype=np.int64), AT)
    bad = json.loads(json.dumps(bundled))
    bad["rows"][0]["providers"] = ["no_such_type"]
    e = PermissionEngine()
    with pytest.raises(InvalidArgumentError, match="no_such_type"):
        e.load(bad)
    with pytest.raises(InvalidArgumentError):
        e.load(b"{not json")
    assert e.versions() == []


# --- property test against the reference ---------------------------------------------------
TYPES = ["t0", "t1", "t2", "t3"]
AFFAIRS = ["a0", "a1", "a2"]
ITEMS = ["i0", "i1", "i2", "i3"]
MUNIS = ["131016", "271004"]


@st.composite
def tables(draw: st.DrawFn) -> dict[str, Any]:
    n_rows = draw(st.integers(0, 10))
    sub = lambda xs: st.lists(st.sampled_from(xs), min_size=1, max_size=3)  # noqa: E731
    rows = [
        {"ref": f"r{k}", "affair": draw(st.sampled_from([*AFFAIRS, "A1", "JT00000000000002"])),
         "requesters": draw(sub(TYPES)), "providers": draw(sub(TYPES)),
         "items": draw(sub([*ITEMS, "TM00000000000003"])),
         "municipality": draw(st.one_of(st.none(), st.sampled_from(MUNIS)))}
        for k in range(n_rows)
    ]
    return {
        "format": "renkei-permissions/1", "label": "p", "effective_from": "2017-11-13T00:00:00+09:00",
        "agency_types": [{"id": t, "name": t.upper()} for t in TYPES],
        "affairs": [{"id": a, "code": a.upper(), "name": a,
                     "codes": ["JT00000000000002"] if a == "a2" else []} for a in AFFAIRS],
        "items": [{"id": i, "code": i.upper(), "name": i,
                   "codes": ["TM00000000000003"] if i == "i3" else []} for i in ITEMS],
        "rows": rows,
    }


queries = st.tuples(
    st.lists(st.sampled_from([*TYPES, "t9"]), min_size=1, max_size=2),
    st.sampled_from([0, 131016, 271004]),
    st.sampled_from([*AFFAIRS, "A0", "JT00000000000002", "zz"]),
    st.lists(st.sampled_from([*TYPES, "t9"]), min_size=1, max_size=2),
    st.lists(st.sampled_from([*ITEMS, "I1", "TM00000000000003", "nope"]), min_size=1, max_size=3),
)


@settings(max_examples=300)
@given(tables(), st.lists(queries, min_size=1, max_size=8))
def test_engine_agrees_with_reference(doc: dict[str, Any], qs: list[tuple[Any, ...]]) -> None:
    e = PermissionEngine()
    e.load(doc)
    r = ref.RefTable(doc)
    assert e.versions()[0].hash == r.hash
    # Besides the random queries, one built from each row (mostly allowed, and their near misses).
    from_rows = [(row["requesters"][:1], int(row["municipality"] or 0) if k % 3 else 0, row["affair"],
                  row["providers"][-1:], row["items"][: 1 + k % 2]) for k, row in enumerate(doc["rows"])]
    for req, muni, affair, prov, items in qs + from_rows:
        got = e.check(AgencyFacts(req, muni or None), affair, AgencyFacts(prov), items, AT)
        want = r.check(req, muni, affair, prov, items)
        assert got.outcome == want.outcome
        assert tuple(x.index for x in got.matched_rows) == want.matched
        assert (got.nearest_row.index if got.nearest_row else None) == want.nearest
        assert got.failed_item == (items[want.failed_item] if want.failed_item is not None else None)
        # The batch path, one type and item per query, agrees too.
        if len(req) == 1 and len(prov) == 1 and len(items) == 1:
            q = np.array([[e.type_ids(req)[0], e.affair_ids([affair], AT)[0], e.type_ids(prov)[0],
                           e.item_ids(items, AT)[0], muni]], dtype=np.uint32)
            b = e.check_batch(q, AT)
            assert pm.OUTCOMES[int(b.outcome[0])] == want.outcome


@settings(max_examples=50)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(-1, 2)), min_size=1, max_size=4), st.integers(-2, 6))
def test_version_in_force_agrees_with_reference(spec: list[tuple[int, int]], probe: int) -> None:
    days = [f"2020-01-{d:02d}T00:00:00+09:00" for d in range(1, 12)]
    docs, seen = [], set()
    for k, (start, length) in enumerate(spec):
        if start in seen:
            continue
        seen.add(start)
        until = days[start + 3 + length] if length >= 0 else None
        docs.append({"format": "renkei-permissions/1", "label": f"v{k}", "effective_from": days[start + 2],
                     "effective_until": until, "agency_types": [], "affairs": [], "items": [], "rows": []})
    e = PermissionEngine()
    for d in docs:
        e.load(d)
    at_us = ref.instant_us(days[probe + 3]) + (probe % 2)  # on an edge and one microsecond after
    want = ref.in_force([ref.RefTable(d) for d in docs], at_us)
    got = e.check(AgencyFacts("x"), "a", AgencyFacts("y"), ["i"], pm.from_us(at_us))
    assert got.version_label == (want.label if want else None)


# --- CLI ----------------------------------------------------------------------------------
def test_cli_check_explain_diff(tmp_path: Path, bundled: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--requester-type", "mhlw_minister", "--affair", "beppyo2-1", "--provider-type", "municipal_mayor",
            "--at", "2020-04-01T09:00:00+09:00"]
    assert cli.main(["permissions", "check", *base, "--item", "local_tax_info"]) == 0
    assert "ALLOW" in capsys.readouterr().out
    assert cli.main(["permissions", "check", *base, "--item", "medical_insurance_benefit_info", "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["outcome"] == "item_not_listed" and out["nearest_row"]["ref"] == "B2.1.2"
    assert cli.main(["permissions", "explain", *base, "--item", "medical_insurance_benefit_info"]) == 1
    assert "nearest row: 別表第二 1の項" in capsys.readouterr().out
    old = tmp_path / "old.json"
    new = tmp_path / "new.json"
    old.write_text(json.dumps(bundled, ensure_ascii=False), encoding="utf-8")
    changed = _ordinance_doc(bundled)
    changed["rows"] = [r for r in changed["rows"] if r["ref"] != "B2.2.1"]
    new.write_text(json.dumps(changed, ensure_ascii=False), encoding="utf-8")
    assert cli.main(["permissions", "diff", str(old), str(new)]) == 0
    cap = capsys.readouterr()
    lines = cap.out.splitlines()
    assert [ln.split()[:2] for ln in lines] == [["-", "B2.2.1"], ["+", "O131016.1.1"]]
    assert "1 removed, 1 added" in cap.err
    table = tmp_path / "ord.json"
    table.write_text(json.dumps(_ordinance_doc(bundled), ensure_ascii=False), encoding="utf-8")
    assert cli.main(["permissions", "versions", "--table", str(table)]) == 0
    assert "chiyoda-2021" in capsys.readouterr().out
    assert cli.main(["permissions", "check", *base, "--item", "x", "--at", "2020-01-01"]) == 1
    assert "offset" in capsys.readouterr().err


def test_converter_attaches_operational_codes(tmp_path: Path) -> None:
    from renkei.permissions import convert as permissions_convert

    codes = tmp_path / "codes.csv"
    codes.write_text("kind,code,target\naffair,JT01010000000101,beppyo2-1\naffair,JT01010000000102,beppyo2-1\n"
                     "item,TM01010000000101,local_tax_info\n", encoding="utf-8")
    out = tmp_path / "table.json"
    assert permissions_convert.main([str(SHARED), str(out), "--codes", str(codes), "--label", "with-codes"]) == 0
    e = PermissionEngine()
    e.load(out)
    for jt in ("JT01010000000101", "JT01010000000102"):
        r = e.check(AgencyFacts("mhlw_minister"), jt, AgencyFacts("municipal_mayor"), ["TM01010000000101"], AT)
        assert r.allowed and r.matched_rows[0].ref == "B2.1.2"
    r = e.check(AgencyFacts("mhlw_minister"), "JT01010000000103", AgencyFacts("municipal_mayor"), ["TM01010000000101"],
                AT)
    assert r.failed_component == "unknown_affair"
    codes.write_text("kind,code,target\naffair,JT0101,beppyo2-1\n", encoding="utf-8")
    assert permissions_convert.main([str(SHARED), str(out), "--codes", str(codes)]) == 1
    codes.write_text("kind,code,target\nitem,TM01010000000101,no_such_item\n", encoding="utf-8")
    assert permissions_convert.main([str(SHARED), str(out), "--codes", str(codes)]) == 1


def test_installed_versions_are_durable_with_history(tmp_path: Path, bundled: dict[str, Any],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from renkei.permissions.store import PermissionStore
    from tests.datadirs import core_dir

    d = core_dir(tmp_path / "data")
    doc = _ordinance_doc(bundled)
    with PermissionStore(d) as store:
        h = store.install(doc, actor="千代田区", note="千代田区子育て支援条例")
        assert h == ref.content_hash(doc)
        bad = json.loads(json.dumps(doc))
        bad["rows"][-1]["items"] = ["nope"]
        with pytest.raises(InvalidArgumentError):
            store.install(bad, actor="x")
    with PermissionStore(d) as store:  # reopened: still there
        e = store.engine()
        assert [v.label for v in e.versions()] == ["beppyo2-2015", "chiyoda-2021"]
        assert [(x.action, x.label, x.actor) for x in store.history()] == [("install", "chiyoda-2021", "千代田区")]
    args = ["--requester-type", "municipal_mayor", "--municipality", "131016", "--affair", "131016-kosodate",
            "--provider-type", "municipal_mayor", "--item", "local_tax_info", "--at", "2022-01-01T00:00:00+09:00"]
    assert cli.main(["permissions", "check", *args, "--data-dir", str(d.path)]) == 0
    assert "条例事務 (131016)" in capsys.readouterr().out
    assert cli.main(["permissions", "remove", "chiyoda-2021", "--actor", "ops", "--data-dir", str(d.path)]) == 0
    assert cli.main(["permissions", "check", *args, "--data-dir", str(d.path)]) == 1
    capsys.readouterr()
    assert cli.main(["permissions", "history", "--data-dir", str(d.path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3 and out[0].split()[:4] == ["#", "TIME", "ACTION", "LABEL"]
    assert out[1].split()[4:6] == ["install", "chiyoda-2021"] and out[2].split()[4:6] == ["remove", "chiyoda-2021"]
    assert cli.main(["permissions", "remove", "chiyoda-2021", "--actor", "ops", "--data-dir", str(d.path)]) == 1
    f = tmp_path / "chiyoda.json"
    f.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    assert cli.main(["permissions", "install", str(f), "--actor", "ops", "--data-dir", str(d.path)]) == 0
    assert f"sha256:{h.hex()}" in capsys.readouterr().out
    assert cli.main(["permissions", "check", *args, "--data-dir", str(d.path)]) == 0


def test_admin_tables_load_structured_rows_list_and_diff(tmp_path: Path, bundled: dict[str, Any]) -> None:
    from renkei.errors import NotFoundError
    from renkei.permissions.tables import PermissionTables
    from tests.datadirs import core_dir

    d = core_dir(tmp_path / "data")
    t = PermissionTables.open(d)
    (base,) = t.versions()
    assert base.version_hash == ref.content_hash(bundled).hex() and base.effective_from == "2017-11-13"
    rows = json.loads((SHARED / "structured.json").read_text(encoding="utf-8"))
    rows = [r for r in rows if (r["item"], r["row_in_item"]) != ("1", 2)]
    v = t.load(json.dumps(rows, ensure_ascii=False).encode(), "2019-05-01", "", "項1 row 2 removed (test)")
    assert v.row_count == 258 and v.effective_from == "2019-05-01" and v.effective_to == ""
    at = datetime(2019, 4, 30, 15, tzinfo=UTC)
    args = (AgencyFacts("mhlw_minister"), "beppyo2-1", AgencyFacts("municipal_mayor"), ["local_tax_info"])
    assert t.engine.check(*args, at - timedelta(microseconds=1)).allowed
    assert t.engine.check(*args, at).failed_component == "provider_not_listed"
    added, removed = t.diff(base.version_hash, v.version_hash)
    assert added == []
    assert [(x.requester_type_id, x.provider_type_id, x.information_item) for x in removed] == [
        ("mhlw_minister", "municipal_mayor", i)
        for i in sorted(["local_tax_info", "resident_record_info", "long_term_care_insurance_benefit_info"])]
    with pytest.raises(NotFoundError):
        t.diff(base.version_hash, "00" * 32)
    for bad in (b"{", b"[1]", b'{"x": 1}'):
        with pytest.raises(InvalidArgumentError):
            t.load(bad, "2020-01-01", "", "")
    with pytest.raises(InvalidArgumentError):
        t.load(json.dumps(rows).encode(), "2020-13-01", "", "")
    # Durable: a new process sees the loaded version.
    again = PermissionTables.open(d)
    assert {x.version_hash for x in again.versions()} == {base.version_hash, v.version_hash}
