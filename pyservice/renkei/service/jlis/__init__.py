"""J-LIS's process (``renkei jlis init|serve``): NumberService, PersonInfoService and CardService
on the mutual-TLS port.

Its data directory holds the J-LIS keys (number map, link ids, query log, 券面事項入力補助AP),
``jlis.sqlite3`` (numbers, 本人確認情報 with history, entitlements, cards, notices), the query
log (``querylog/``) and the rendered notices (``notices/``). It calls the linkage core
(PersonLinkService) with its own client certificate and sends it link ids only. With
``--jpki-dir`` it issues, suspends and revokes cards through the JPKI's data directory in-process
(J-LIS runs the JPKI; docs/arch/jlis.md).

Background tasks: the notice renderer (woken by every assignment, change and report; a pass every
few seconds otherwise) and the hourly card-expiry sweep.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

from renkei._proto.renkei.v1 import card_service_pb2, number_service_pb2, person_info_service_pb2
from renkei.jlis.authority import NumberAuthority
from renkei.jlis.cards import CardOffice
from renkei.jlis.facts import FactsRegistry
from renkei.jlis.info import PersonInfo
from renkei.jlis.notices import NoticeDesk
from renkei.jlis.queries import Entitlements, QueryLog
from renkei.pki.ca import ServiceTls
from renkei.service.jlis.cards import CardServicer
from renkei.service.jlis.core_link import CoreLink
from renkei.service.jlis.numbers import NumberServicer
from renkei.service.jlis.person_info import PersonInfoServicer
from renkei.service.runtime import Offload
from renkei.service.server import ServiceConfig, ServiceProcess

log = logging.getLogger("renkei.jlis")
#: Seconds between notice passes when nothing wakes the renderer; between card-expiry sweeps.
NOTICE_POLL = 5.0
EXPIRY_SWEEP = 3600.0
#: How often J-LIS looks for card keys the core has not confirmed .
CARD_KEY_POLL = 2.0


def build(config: ServiceConfig, authority: NumberAuthority, core_target: str, tls: ServiceTls, *,
          demo: bool = False, jpki_dir: str | os.PathLike[str] | None = None,
          notice_workers: int = 0) -> ServiceProcess:
    process = ServiceProcess(config)
    data_dir = authority.data_dir
    core = CoreLink(core_target, tls)
    registry = Offload(1, "jlis")  # J-LIS's registry work: one thread, in order
    log_pool = Offload(16, "jlis-log")  # durable appends of the query log (group commit)
    card_pool = Offload(2, "jlis-cards")  # key generation and PIN stretching
    notice_pool = Offload(1, "jlis-notices")
    facts = FactsRegistry(data_dir)
    entitlements = Entitlements(data_dir)
    query_log = QueryLog(data_dir, authority.link_key)
    cards = CardOffice(data_dir, authority, facts, query_log, jpki_dir)
    notices = NoticeDesk(data_dir, workers=notice_workers)
    info = PersonInfo(authority, facts, entitlements, query_log, cards)
    wake = asyncio.Event()

    numbers = NumberServicer(authority, core, process.offload, demo=demo, metrics=process.metrics, serial=registry,
                             notices=notices, cards=cards, wake=wake.set)
    process.add_service(number_service_pb2.DESCRIPTOR.services_by_name["NumberService"], numbers)
    process.add_service(person_info_service_pb2.DESCRIPTOR.services_by_name["PersonInfoService"],
                        PersonInfoServicer(info, registry, log_pool, wake=wake.set))
    process.add_service(card_service_pb2.DESCRIPTOR.services_by_name["CardService"],
                        CardServicer(info, registry, card_pool, log_pool))

    async def render_notices() -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), NOTICE_POLL)
            wake.clear()
            try:
                while await notice_pool.call(notices.render_pending, 2000) == 2000:
                    pass
            except Exception:
                log.exception("rendering notices failed; retrying on the next pass")

    async def expire_cards() -> None:
        while True:
            try:
                expired = await card_pool.call(cards.expire)
                if expired:
                    log.info("%d cards expired", len(expired))
            except Exception:
                log.exception("the card-expiry sweep failed; retrying in an hour")
            await asyncio.sleep(EXPIRY_SWEEP)

    async def forward_card_keys() -> None:
        # Cards issued offline (the demo's, `renkei card issue` with J-LIS's directory) or while
        # the core was down: their login keys reach the core here, by link id, until confirmed.
        failing = False
        while True:
            try:
                for key_id, public_key, link_id in await registry.call(authority.unforwarded_card_keys):
                    await core.register_card_key(public_key, link_id)
                    await registry.call(authority.card_key_forwarded, key_id)
                failing = False
            except Exception as e:
                if not failing:  # once per outage, not every poll
                    log.warning("forwarding card keys to the core failed (%s); retrying", type(e).__name__)
                failing = True
            await asyncio.sleep(CARD_KEY_POLL)

    process.add_background(render_notices)
    process.add_background(forward_card_keys)
    if cards.jpki is not None:
        process.add_background(expire_cards)

    def close() -> None:
        for pool in (notice_pool, card_pool, log_pool, registry):
            pool.shutdown()
        notices.close()
        cards.close()
        query_log.close()
        entitlements.close()
        facts.close()

    process.add_shutdown_hook(close)
    process.add_closer(core.close)
    process.add_closer(authority.close)
    return process


__all__ = ["build"]
