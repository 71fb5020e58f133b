"""The National Tax Agency's process (``renkei nta init|serve``): CorporateNumberService on the
public port (anyone may look corporate numbers up; no client certificate)."""

from __future__ import annotations

from renkei._proto.renkei.v1 import corporate_number_service_pb2
from renkei.nta.registry import CorporateNumberRegistry
from renkei.service.nta.corporate import CorporateNumberServicer
from renkei.service.server import PUBLIC, ServiceConfig, ServiceProcess

#: Public bodies of the demo country, so that a first search finds something.
DEMO_CORPORATIONS = [
    ("デジタル庁", "101", "でじたるちょう", "Digital Agency", "東京都", "千代田区", "紀尾井町1-3", "13", "101"),
    ("国税庁", "101", "こくぜいちょう", "National Tax Agency", "東京都", "千代田区", "霞が関3-1-1", "13", "101"),
    ("個人情報保護委員会", "101", "こじんじょうほうほごいいんかい", "Personal Information Protection Commission",
     "東京都", "千代田区", "霞が関3-2-1", "13", "101"),
    ("地方公共団体情報システム機構", "499", "ちほうこうきょうだんたいじょうほうしすてむきこう",
     "Japan Agency for Local Authority Information Systems", "東京都", "千代田区", "一番町25", "13", "101"),
]


def seed_demo(registry: CorporateNumberRegistry) -> None:
    """The demo corporations, once (an empty registry only)."""
    if registry.changes("0001-01-01", "9999-12-31").count:
        return
    for name, kind, furigana, en, pref, city, street, pref_code, city_code in DEMO_CORPORATIONS:
        registry.assign(name=name, kind=kind, furigana=furigana, en_name=en, prefecture_name=pref,
                        city_name=city, street_number=street, prefecture_code=pref_code, city_code=city_code)


def build(config: ServiceConfig, registry: CorporateNumberRegistry) -> ServiceProcess:
    process = ServiceProcess(config)
    process.add_service(corporate_number_service_pb2.DESCRIPTOR.services_by_name["CorporateNumberService"],
                        CorporateNumberServicer(registry.data_dir, config.limits.nta), PUBLIC)
    process.add_closer(registry.close)
    return process


__all__ = ["DEMO_CORPORATIONS", "build", "seed_demo"]
