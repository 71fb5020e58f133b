"""The demonstration country of ``renkei up --demo``: agencies, principals, public corporations.

Demo data exists only when asked for (``--demo``); production installations register their
agencies through AdminService and get certificates from their own PKI.
"""

from __future__ import annotations

import datetime as dt
import os

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
]

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
    """On an empty registry: the demo agencies. A core bound to the commission gets their PIAs from
    the commission (:func:`seed_demo_pias`, what ``renkei up --demo`` does); an unbound one (an
    embedder's, the tests') approves them here for 5 years."""
    if registry.agencies():
        return
    today = dt.date.today()
    for agency_id, name, types, code, corp in DEMO_AGENCIES:
        a = registry.register_agency(name, list(types), corp or demo_corporate_number(agency_id),
                                     municipality_code=code or None)
        if a.agency_id != agency_id:
            raise RuntimeError(f"demo agency {name} got id {a.agency_id}, expected {agency_id}")
        if registry.commission is None:
            registry.add_pia(a.agency_id, f"{name} 特定個人情報保護評価書（全項目評価）", approved_on=today,
                             expires_on=today.replace(year=today.year + 5))


def seed_demo_pias(ppc_dir: str | os.PathLike[str]) -> None:
    """Through the commission's path: each demo agency submits its 全項目評価 and the commission
    approves it for 5 years (recorded in the decision log, delivered to the core by ``renkei ppc
    serve``). Once per box."""
    import hashlib

    from renkei.ppc.review import PiaReview, Submission

    today = dt.date.today()
    with PiaReview(ppc_dir) as review:
        if review.pias():
            return
        for agency_id, name, _types, _code, _corp in DEMO_AGENCIES:
            title = f"{name} 特定個人情報保護評価書（全項目評価）"
            pia = review.submit(Submission(agency_id, "full", title, (f"{name}の特定個人情報ファイル",),
                                           ("情報提供ネットワークシステムによる情報照会・提供",),
                                           hashlib.sha256(title.encode()).digest()))
            review.decide(pia.pia_id, "approved", reviewer="renkei up --demo", approved_on=today,
                          expires_on=today.replace(year=today.year + 5) if not (today.month == 2 and today.day == 29)
                          else dt.date(today.year + 5, 2, 28))


__all__ = ["DEMO_AGENCIES", "SYSTEM_PRINCIPALS", "demo_corporate_number", "register_demo_agencies", "seed_demo_pias"]
