"""Operators' metrics and logs on a real box: every metric the shipped Grafana dashboard and
Prometheus alert rules use is served (scraped from each service's /metrics after real traffic),
the domain counters count what happened, and ``--log-format json`` gives one object a line with
the call fields and never a number or a code; at INFO there is no line per call."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import yaml

from renkei import client, proto
from tests.grpc_server import RunningBox, start_box
from tests.provision_helpers import batch_inquiry, inquiry

T = 10
OPS = Path(__file__).resolve().parent.parent / "docs" / "ops"
#: Metrics the dashboard and rules use that another part of the system serves (not this box yet).
PROVIDED_ELSEWHERE: dict[str, str] = {}
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")


def scrape(box: RunningBox, service: str) -> dict[str, float]:
    """``name{labels}`` → value of one service's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{box.metrics_port(service)}/metrics", timeout=T) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        assert m, f"not Prometheus text: {line!r}"
        out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def names(samples: dict[str, float]) -> set[str]:
    return {key.split("{")[0] for key in samples}


def referenced() -> set[str]:
    """Every renkei_* metric name in the dashboard's queries and the alert rules."""
    exprs = []
    dash = json.loads((OPS / "grafana-dashboard.json").read_text(encoding="utf-8"))
    for panel in dash["panels"]:
        exprs += [t["expr"] for t in panel.get("targets", [])]
    rules = yaml.safe_load((OPS / "alerts.yml").read_text(encoding="utf-8"))
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert {"alert", "expr", "for", "labels", "annotations"} <= set(rule), rule
            assert rule["labels"]["severity"] in ("page", "ticket") and rule["annotations"]["summary"]
            exprs.append(rule["expr"])
    found = {n for e in exprs for n in re.findall(r"\brenkei_[a-z0-9_]+", e)}
    assert len(found) >= 15
    return found


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBox]:
    s = start_box(tmp_path_factory.mktemp("metrics") / "box", "--log-format", "json", "--log-level", "DEBUG")
    yield s
    rc, out = s.terminate()
    assert rc == 0, out


@pytest.fixture(scope="module")
def traffic(box: RunningBox) -> dict[str, object]:
    """Acquisitions, a permitted and a refused inquiry, a batch, a refused oversized batch."""
    with box.channel("jlis", "jlis") as ch:
        people = np.frombuffer(client.NumberServiceStub(ch).RegisterTestPopulation(
            proto.numbers.RegisterTestPopulationRequest(count=3, seed=11), timeout=T).individual_numbers, dtype="<u8")
    codes = {}
    for agency in (4, 1):
        with box.channel(f"agency-{agency}") as core, box.channel(f"agency-{agency}", "jlis") as jlis:
            out, status = client.acquire_codes(client.LinkageServiceStub(core), client.NumberServiceStub(jlis),
                                               [*people.tolist(), 123456789018], timeout=T)
            codes[agency] = out
            assert status.tolist()[:3] == [0, 0, 0] and status[3] != 0
    with box.channel("agency-4") as ch:
        stub = client.LinkageServiceStub(ch)
        ask = ("B2.1", 1, ["B2.1.2.1"])
        stub.Inquire(inquiry(codes[4][:16], *ask), timeout=T)
        with pytest.raises(grpc.RpcError):
            stub.Inquire(inquiry(bytes(16), *ask), timeout=T)
        stub.BatchInquire(batch_inquiry(codes[4][:48], *ask), timeout=T)
        with pytest.raises(grpc.RpcError) as e:
            stub.BatchInquire(batch_inquiry(bytes(16 * 10_001), *ask), timeout=T)
        assert e.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    return {"people": people, "codes": codes}


def test_every_metric_of_the_dashboard_and_alerts_is_served(box: RunningBox, traffic: dict[str, object]) -> None:
    served = set()
    for service in ("core", "jlis", "nta", "portal"):
        served |= names(scrape(box, service))
    missing = referenced() - served
    assert missing <= set(PROVIDED_ELSEWHERE), f"used by docs/ops but served by no service: {missing}"


def test_domain_metrics_count_what_happened(box: RunningBox, traffic: dict[str, object]) -> None:
    core = scrape(box, "core")
    assert core['renkei_inquiries_total{agency="4",outcome="permitted"}'] == 4  # one single, three in the batch
    assert core['renkei_inquiries_total{agency="4",outcome="CODE_REFUSED"}'] == 1
    assert core['renkei_provisions_total{provider="1",outcome="permitted"}'] == 4
    assert core['renkei_acquisitions_total{agency="4",status="issued"}'] == 3
    assert core['renkei_limits_hit_total{reason="BATCH_TOO_LARGE"}'] == 1
    # Every decision is recorded, refusals too: 照会 1 + 1 refused + 3, and a 提供 for each of the 4 answered.
    assert core["renkei_ledger_size_records"] == 9
    assert core['renkei_provision_exchanges_total{provider="1",outcome="no data"}'] == 4
    assert core["renkei_provision_seconds_count"] == 2
    assert core["renkei_ledger_append_seconds_count"] >= 2
    assert 0 <= core["renkei_ledger_checkpoint_age_seconds"] < 120
    assert core['renkei_holdings{agency_type="mhlw_minister"}'] == 3
    assert core['renkei_holdings{agency_type="municipal_mayor"}'] == 3
    # The three persons above, and the demo's three card holders: J-LIS registers each card's
    # login key with the core, which puts its holder in the person index.
    assert core["renkei_persons"] == 6
    in_force = [k for k in core if k.startswith("renkei_permission_table_in_force{")]
    # The demo box's table: 2015's 別表第二 plus the portal's 自己情報表示 rows, installed by `renkei up --demo`.
    assert len(in_force) == 1 and 'label="beppyo2-2015+self-disclosure"' in in_force[0]
    jlis = scrape(box, "jlis")
    assert jlis['renkei_jlis_relayed_total{status="issued"}'] == 6
    assert jlis['renkei_jlis_relayed_total{status="no_such_number"}'] == 2


def test_json_logs_carry_call_fields_and_no_numbers_or_codes(box: RunningBox, traffic: dict[str, object]) -> None:
    lines = box.output().splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert records, "no JSON log lines"
    for line in lines:  # every log record is JSON: plain lines are only the banners
        assert not re.search(r"\] \d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (DEBUG|INFO|WARNING|ERROR) ", line), line
    calls = [r for r in records if r["logger"] == "renkei.access"]
    inquire = [r for r in calls if r["method"] == "/renkei.v1.LinkageService/Inquire"]
    assert {r["status"] for r in inquire} == {"OK", "PERMISSION_DENIED"}
    for r in calls:
        assert {"time", "level", "service", "request_id", "method", "agency", "status", "latency_ms"} <= set(r)
        assert r["level"] == "DEBUG" and isinstance(r["latency_ms"], float)
    assert {r["agency"] for r in inquire} == {"4"} and {r["service"] for r in calls} >= {"core", "jlis"}
    text = box.output()
    people = traffic["people"]
    codes = traffic["codes"]
    assert isinstance(people, np.ndarray) and isinstance(codes, dict)
    for n in people.tolist():
        assert f"{n:012d}" not in text
    for blob in codes.values():
        for i in range(0, len(blob), 16):
            code = blob[i:i + 16]
            if any(code):
                assert code.hex() not in text and code.hex().upper() not in text


def test_no_log_line_per_call_at_info(tmp_path: Path) -> None:
    s = start_box(tmp_path / "box", "--log-format", "json")
    try:
        with s.public("nta") as ch:
            stub = client.CorporateNumberServiceStub(ch)
            for _ in range(20):
                stub.SearchCorporations(proto.corporate.SearchCorporationsRequest(name="デジタル"), timeout=T)
    finally:
        rc, out = s.terminate()
    assert rc == 0, out
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert records and not [r for r in records if r["logger"] == "renkei.access"]
    # The service called 20 times logged less than a line per call (the box's other services log
    # their start and stop: nine processes are more than 20 lines).
    assert len([r for r in records if r["service"] == "nta"]) < 20
