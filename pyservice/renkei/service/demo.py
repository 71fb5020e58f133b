"""The demonstration country of ``renkei up --demo``: agencies, principals, public corporations.

Demo data exists only when asked for (``--demo``); production installations register their
agencies through AdminService and get certificates from their own PKI.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

from renkei.datadir import DataDir
from renkei.linkage.registry import AgencyRegistry
from renkei.numbers import corporate_check_digit, format_corporate_number

#: Demo agencies: (agency id on a fresh registry, name, 別表第二 agency type ids,
#: 全国地方公共団体コード, 法人番号). Local governments' and the ministry's corporate numbers follow
#: the NTA rule (000020 + 団体コード, 000012 + 省庁コード); the two corporations' are demo values
#: with valid check digits.
DEMO_AGENCIES: list[tuple[int, str, tuple[str, ...], str, str]] = [
    (1, "千代田区長", ("municipal_mayor",), "131016", "8000020131016"),
    (2, "横浜市長", ("municipal_mayor",), "141003", "3000020141003"),
    (3, "日本年金機構", ("japan_pension_service",), "", ""),
    (4, "厚生労働大臣", ("mhlw_minister",), "", "6000012070001"),
    (5, "全国健康保険協会", ("japan_health_insurance_association", "medical_insurers"), "", ""),
    (6, "東京都知事", ("prefectural_governor", "prefectural_governor_etc"), "130001", "8000020130001"),
    # マイナポータル as an agency (情報提供等記録開示システム, 番号法 附則第6条): the requester of
    # あなたの情報 (自己情報表示) under its own table version (renkei.permissions.self_disclosure).
    (7, "マイナポータル（デジタル庁）", ("information_disclosure_system",), "", ""),
]
#: The demo agency that is the portal (マイナポータル).
PORTAL_AGENCY = 7

#: Client principals of the demo box besides the agencies: (role, name).
SYSTEM_PRINCIPALS = [
    ("jlis", "地方公共団体情報システム機構"),
    ("oversight", "個人情報保護委員会"),
    ("operator", "renkei operator"),
]


def demo_corporate_number(agency_id: int) -> str:
    base = f"0000990{agency_id:05d}"
    return format_corporate_number(int(f"{corporate_check_digit(base)}{base}"))


def register_demo_agencies(registry: AgencyRegistry) -> None:
    """The demo agencies, on an empty registry or one holding the first demo agencies only (a box
    from before the portal became agency 7 gets it). A core bound to the commission gets their
    PIAs from the commission (:func:`seed_demo_pias`, what ``renkei up --demo`` does); an unbound
    one (an embedder's, the tests') approves them here for 5 years."""
    have = [a.agency_id for a in registry.agencies()]
    if have != list(range(1, len(have) + 1)) or len(have) > len(DEMO_AGENCIES) \
            or any(registry.agency(a).name != DEMO_AGENCIES[a - 1][1] for a in have):
        return  # not a demo registry (or one an operator changed): leave it alone
    today = dt.date.today()
    for agency_id, name, types, code, corp in DEMO_AGENCIES[len(have):]:
        a = registry.register_agency(name, list(types), corp or demo_corporate_number(agency_id),
                                     municipality_code=code or None)
        if a.agency_id != agency_id:
            raise RuntimeError(f"demo agency {name} got id {a.agency_id}, expected {agency_id}")
        if registry.commission is None:
            registry.add_pia(a.agency_id, f"{name} 特定個人情報保護評価書（全項目評価）", approved_on=today,
                             expires_on=today.replace(year=today.year + 5))



#: Intermediate servers of the demo country: (name, hosted agency ids). A municipal platform
#: hosts the municipalities and the prefecture; a national one the pension service, the ministry
#: and the insurer.
DEMO_MIDS: list[tuple[str, tuple[int, ...]]] = [("municipal", (1, 2, 6)), ("national", (3, 4, 5))]
#: Persons of the demo population (registered by J-LIS with RegisterTestPopulation, seed 2026).
DEMO_PERSONS = 1000
DEMO_SEED = 2026


def demo_tenants(agency_ids: tuple[int, ...]) -> list[Any]:
    from renkei.mid.platform import Tenant

    by_id = {a: (name, types) for a, name, types, _c, _k in DEMO_AGENCIES}
    return [Tenant(a, by_id[a][0], by_id[a][1]) for a in agency_ids]


def atena_number(agency_id: int, person: int) -> str:
    """The demo 団体内統合宛名番号 of a person at an agency (15 digits)."""
    return f"{agency_id:03d}{person:012d}"


def residents_of(agency_id: int, persons: int = DEMO_PERSONS) -> range:
    """Which demo persons an agency holds: 千代田区 (and 東京都) the first half, 横浜市 the second
    half, the national bodies everyone."""
    half = persons // 2
    return {1: range(0, half), 6: range(0, half), 2: range(half, persons)}.get(agency_id, range(persons))


def _duplicates(agency_id: int, persons: range) -> list[Any]:
    """Realistic 副本 of the demo agencies: local tax per fiscal year and resident records at the
    municipalities, pension benefits at the pension service, medical benefits at the insurer."""
    import json
    import random

    from renkei._proto.renkei.v1 import intermediate_service_pb2 as ipb

    out = []
    for p in persons:
        rng = random.Random(p * 7919 + agency_id)
        atena = atena_number(agency_id, p)
        if agency_id in (1, 2):
            income = rng.randrange(0, 9_000_000, 1000)
            for year in (2024, 2025):
                taxable = max(0, income - 430_000 - rng.randrange(0, 1_500_000, 1000))
                tax = taxable // 10 + (5000 if income > 450_000 else 0)
                out.append(ipb.DuplicateRecord(
                    integrated_address_number=atena, item="local_tax_info", dataset="0001", version=1,
                    record_key=f"T{year}-{p:06d}", valid_from=f"{year}-06-01", fiscal_year=year,
                    published=f"{year}-06-01", payload_json=json.dumps(
                        {"課税年度": year, "総所得金額": income, "課税標準額": taxable, "所得割額": tax - 5000
                         if tax >= 5000 else 0, "均等割額": 5000 if income > 450_000 else 0, "市町村民税額": tax},
                        ensure_ascii=False)))
                income = int(income * rng.uniform(0.9, 1.1)) // 1000 * 1000
            out.append(ipb.DuplicateRecord(
                integrated_address_number=atena, item="resident_record_info", dataset="0001", version=1,
                record_key=f"R-{p:06d}", valid_from="2020-04-01", published="2020-04-01", payload_json=json.dumps(
                    {"続柄": "世帯主" if p % 3 == 0 else "世帯員", "住民となった日": "2020-04-01",
                     "住所": "東京都千代田区千代田1-1" if agency_id == 1 else "神奈川県横浜市中区港町1-1"},
                    ensure_ascii=False), null_reasons={"転出予定日": "該当なし"}))
        elif agency_id == 3:
            out.append(ipb.DuplicateRecord(
                integrated_address_number=atena, item="pension_benefit_info", dataset="0001", version=1,
                record_key=f"P-{p:06d}", valid_from="2025-04-01", published="2025-04-01", payload_json=json.dumps(
                    {"年金の種類": "老齢基礎年金", "年金額": rng.randrange(600_000, 831_700, 100),
                     "支給開始年月": "2025-04"}, ensure_ascii=False)))
        elif agency_id == 5:
            out.append(ipb.DuplicateRecord(
                integrated_address_number=atena, item="medical_insurance_benefit_info", dataset="0001", version=1,
                record_key=f"M-{p:06d}", valid_from="2025-04-01", published="2025-04-01", payload_json=json.dumps(
                    {"保険者名称": "全国健康保険協会", "資格取得日": "2019-04-01", "被保険者区分": "被保険者"},
                    ensure_ascii=False)))
    return out


def seed_country(services: dict[str, dict[str, Any]], pki: Path, persons: int = DEMO_PERSONS) -> dict[str, Any]:
    """Register the demo population through the running services, as a country would: J-LIS
    assigns the numbers; each agency's business system registers its residents at its
    intermediate server, which acquires the codes; the providers register their 副本."""
    import numpy as np

    from renkei import client
    from renkei._proto.renkei.v1 import intermediate_service_pb2 as ipb
    from renkei._proto.renkei.v1 import number_service_pb2 as npb
    from renkei._proto.renkei.v1.intermediate_service_pb2_grpc import IntermediateServiceStub

    box = client.Box(services, pki)
    with box.jlis("jlis") as ch:
        raw = client.NumberServiceStub(ch).RegisterTestPopulation(
            npb.RegisterTestPopulationRequest(count=persons, seed=DEMO_SEED), timeout=60).individual_numbers
    numbers = np.frombuffer(raw, dtype="<u8")
    summary: dict[str, Any] = {"persons": persons, "agencies": {}}
    for name, agencies in DEMO_MIDS:
        for agency in agencies:
            with box.channel(f"mid-{name}", f"business-{agency}") as ch:
                mid = IntermediateServiceStub(ch)
                held = residents_of(agency, persons)
                mid.RegisterAddressees(ipb.RegisterAddresseesRequest(addressees=[
                    ipb.Addressee(integrated_address_number=atena_number(agency, p), business_ids=[f"B{p:08d}"],
                                  individual_number=f"{int(numbers[p]):012d}") for p in held]), timeout=60)
                acquired = mid.AcquireCodes(ipb.MidAcquireCodesRequest(), timeout=120).acquired
                dups = _duplicates(agency, held)
                for k in range(0, len(dups), 5000):
                    mid.RegisterDuplicates(ipb.RegisterDuplicatesRequest(records=dups[k:k + 5000]), timeout=120)
                summary["agencies"][agency] = {"persons": len(held), "codes": acquired, "duplicates": len(dups)}
    return summary


def seed_demo_pias(ppc_dir: str | os.PathLike[str]) -> None:
    """Through the commission's path: each demo agency submits its 全項目評価 and the commission
    approves it for 5 years (recorded in the decision log, delivered to the core by ``renkei ppc
    serve``). Once per box."""
    import hashlib

    from renkei.ppc.review import PiaReview, Submission

    today = dt.date.today()
    with PiaReview(ppc_dir) as review:
        reviewed = {p.agency_id for p in review.pias()}
        for agency_id, name, _types, _code, _corp in DEMO_AGENCIES:
            if agency_id in reviewed:
                continue
            title = f"{name} 特定個人情報保護評価書（全項目評価）"
            pia = review.submit(Submission(agency_id, "full", title, (f"{name}の特定個人情報ファイル",),
                                           ("情報提供ネットワークシステムによる情報照会・提供",),
                                           hashlib.sha256(title.encode()).digest()))
            review.decide(pia.pia_id, "approved", reviewer="renkei up --demo", approved_on=today,
                          expires_on=today.replace(year=today.year + 5) if not (today.month == 2 and today.day == 29)
                          else dt.date(today.year + 5, 2, 28))


def install_self_disclosure(core_dir: DataDir, actor: str = "renkei up --demo") -> None:
    """Register the portal's agency (a box from before it) and install and activate its
    entitlement, the 自己情報表示 table version (番号法 附則第6条), in a core that is not
    running; once (an installed version is left as the operator set it)."""
    from renkei.errors import NotFoundError
    from renkei.permissions import self_disclosure
    from renkei.permissions.store import PermissionStore

    with AgencyRegistry(core_dir) as registry:
        register_demo_agencies(registry)
    with PermissionStore(core_dir) as store:
        try:
            store.version(self_disclosure.LABEL)
        except NotFoundError:
            store.install(self_disclosure.FILE, actor=actor,
                          note="番号法 附則第6条: 情報提供等記録開示システム (マイナポータル) の自己情報表示")


__all__ = [
    "DEMO_AGENCIES",
    "DEMO_MIDS",
    "PORTAL_AGENCY",
    "SYSTEM_PRINCIPALS",
    "atena_number",
    "demo_corporate_number",
    "install_self_disclosure",
    "register_demo_agencies",
    "residents_of",
    "seed_country",
    "seed_demo_pias",
]
