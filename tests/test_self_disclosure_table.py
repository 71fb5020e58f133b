"""The portal's entitlement (自己情報表示, 番号法 附則第6条) as a table version: the shipped file is
what :func:`renkei.permissions.self_disclosure.build` derives from the bundled 別表第二 (byte for
byte); it keeps every 2015 row and adds only the disclosure system's; the engine allows exactly
those rows to the portal type; the registry and the intermediate servers know its names."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from renkei.linkage.registry import agency_types
from renkei.mid.platform import Catalog
from renkei.permissions import self_disclosure as sd
from renkei.permissions.engine import AgencyFacts, PermissionEngine, content_hash, default_table_path, diff
from tests.reference import permissions_ref as ref

PORTAL = AgencyFacts([sd.PORTAL_TYPE])
NOW = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def engine() -> PermissionEngine:
    e = PermissionEngine.with_default()
    e.load(sd.FILE)
    return e


def test_the_shipped_file_is_derived_from_the_bundled_table() -> None:
    assert sd.FILE.read_text(encoding="utf-8") == sd.render(sd.build())
    doc = json.loads(sd.FILE.read_text(encoding="utf-8"))
    base = json.loads(default_table_path().read_text(encoding="utf-8"))
    removed, added = diff(base, doc)
    assert removed == [] and [r["ref"] for r in added] == ["SD.1.1", "SD.1.2", "SD.1.3"]
    assert doc["label"] == sd.LABEL and doc["effective_from"] > base["effective_from"]
    # The content hash the engine computes is the one the format's text defines.
    assert content_hash(doc) == ref.content_hash(doc)


def test_the_engine_allows_the_portal_its_rows_and_nothing_else(engine: PermissionEngine) -> None:
    allowed = [("municipal_mayor", "local_tax_info"), ("municipal_mayor", "resident_record_info"),
               ("japan_pension_service", "pension_benefit_info"),
               ("japan_health_insurance_association", "medical_insurance_benefit_info")]
    for provider, item in allowed:
        r = engine.check(PORTAL, "SD.1", AgencyFacts([provider]), [item], at=NOW)
        assert r.allowed and r.version_label == sd.LABEL, (provider, item, r.explain())
    for affair, provider, item, why in (
            ("SD.1", "municipal_mayor", "pension_benefit_info", "item_not_listed"),
            ("SD.1", "mhlw_minister", "local_tax_info", "provider_not_listed"),
            ("B2.1", "municipal_mayor", "local_tax_info", "requester_not_entitled"),
            ("B2.74", "municipal_mayor", "local_tax_info", "requester_not_entitled")):
        r = engine.check(PORTAL, affair, AgencyFacts([provider]), [item], at=NOW)
        assert not r.allowed and r.outcome == why, (affair, provider, item, r.outcome)
    # No one else gains the affair; 2015's rows decide as before.
    assert not engine.check(AgencyFacts(["mhlw_minister"]), "SD.1", AgencyFacts(["municipal_mayor"]),
                            ["local_tax_info"], at=NOW).allowed
    assert engine.check(AgencyFacts(["mhlw_minister"]), "B2.1", AgencyFacts(["municipal_mayor"]),
                        ["local_tax_info"], at=NOW).allowed
    # Before the version's start the 2015 table alone is in force: the portal may ask nothing.
    early = engine.check(PORTAL, "SD.1", AgencyFacts(["municipal_mayor"]), ["local_tax_info"],
                         at=datetime(2020, 1, 1, tzinfo=UTC))
    assert not early.allowed and early.version_label == "beppyo2-2015"


def test_without_the_version_the_portal_may_ask_nothing() -> None:
    r = PermissionEngine.with_default().check(PORTAL, "SD.1", AgencyFacts(["municipal_mayor"]), ["local_tax_info"],
                                              at=NOW)
    assert not r.allowed


def test_the_registry_and_the_catalog_know_the_names() -> None:
    assert agency_types()[sd.PORTAL_TYPE].startswith("情報提供等記録開示システム")
    catalog = Catalog()
    assert catalog.affair("SD.1") == catalog.affair(sd.AFFAIR_ID) == sd.AFFAIR_ID
    assert sd.entitlements()[0] == (sd.AFFAIR_ID, ("municipal_mayor",), "local_tax_info")
