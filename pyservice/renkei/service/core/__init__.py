"""The linkage core's process (``renkei core init|serve``): LinkageService, ProvisionService,
OversightService, AdminService and PersonLinkService on the mutual-TLS port, DisclosureService
on the public port.

Its data directory holds the agency-code, permit, ledger, pseudonym, acquisition-number and
disclosure-challenge keys, the registry, holdings and ledger — and nothing of J-LIS: no My
Number, no resident code, no J-LIS key. J-LIS reaches it as the ``jlis`` principal with link ids only.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from renkei._proto.renkei.v1 import (
    admin_service_pb2,
    disclosure_service_pb2,
    linkage_service_pb2,
    oversight_service_pb2,
    person_link_service_pb2,
    pia_decision_service_pb2,
    provision_service_pb2,
)
from renkei.datadir import MARKER, DataDir
from renkei.errors import InvalidArgumentError, RenkeiError
from renkei.ledger import open_ledger
from renkei.linkage.acquisition import KEY_NAME as ACQUISITION_KEY
from renkei.linkage.acquisition import AcquisitionDesk, StoreWaitingCodes
from renkei.linkage.codes import AgencyCodes
from renkei.linkage.commission import bind as bind_commission
from renkei.linkage.cosigning import CosignatureStore, Cosigner
from renkei.linkage.delegation import DelegationBook
from renkei.linkage.disclosure import CHALLENGE_KEY, PSEUDONYM_KEY, Disclosure, LoginStore
from renkei.linkage.inquiry import Linkage
from renkei.linkage.notices import NoticeBox, NoticeDesk
from renkei.linkage.oversight import Oversight
from renkei.linkage.provision import Mediator, ProviderDesk
from renkei.linkage.registry import SERVICE, AgencyRegistry
from renkei.linkage.self_disclosure import SessionCodes
from renkei.permissions.store import PermissionStore
from renkei.permissions.tables import PermissionTables
from renkei.permits import KEY_NAME as PERMIT_KEY
from renkei.permits import PermitIssuer
from renkei.service.core.admin import AdminServicer
from renkei.service.core.disclosure import DisclosureServicer
from renkei.service.core.linkage import LinkageServicer
from renkei.service.core.metrics import CoreMetrics
from renkei.service.core.oversight import OversightServicer
from renkei.service.core.person_link import PersonLinkServicer
from renkei.service.core.pia import PiaDecisionServicer
from renkei.service.core.provision import ProvisionServicer
from renkei.service.server import PUBLIC, ServiceConfig, ServiceProcess
from renkei.store import bind_store, bind_tiles, check_store, check_tiles, describe_store, store_conninfo
from renkei.witness.client import WitnessEndpoint

log = logging.getLogger("renkei.core")

#: The core's keys (name → bytes), created by ``renkei core init`` only.
KEYS = {"agency-code": 32, PERMIT_KEY: 32, "ledger-log": 32, PSEUDONYM_KEY: 32, ACQUISITION_KEY: 32}
#: Keys a later version added, which protect nothing durable: ``init`` (and, for a directory
#: from before them, ``serve``) creates one when it is missing. The disclosure-challenge key
#: signs login challenges that live two minutes; every front-end of a core needs the same file.
LATER_KEYS = {CHALLENGE_KEY: 32}


def add_later_keys(data_dir: DataDir) -> None:
    """Create the keys of LATER_KEYS that ``data_dir`` lacks (never replaces one; refuses a
    widened or wrong-sized one, as every key)."""
    for name, size in LATER_KEYS.items():
        missing = not (data_dir.keys / f"{name}.key").exists()
        data_dir.add_key(name, size, guards=None)
        if missing:
            log.info("created %s/%s.key (a key this version added); copy it to every front-end of this core",
                     data_dir.keys, name)


def init_data_dir(path: str | os.PathLike[str], *, demo: bool = False,
                  commission_vkey: str | None = None, store: str | None = None,
                  tiles: str | None = None, tiles_credentials: str | os.PathLike[str] | None = None) -> DataDir:
    """Create (or complete) the core's data directory: keys, registry, holdings, permission
    store, ledger; with ``commission_vkey`` bound to the commission's PIA decision log
    (renkei.linkage.commission); with ``store`` (a PostgreSQL URL) bound to that database for
    the registry and the permission versions (renkei.store; only while the directory is new),
    and with ``tiles`` (``s3://…``, plus its ``tiles_credentials`` file) the ledger's tiles in
    that object store;
    with ``demo`` the demo agencies (their PIAs come from the commission, or — unbound, for
    embedders and tests — are approved here).

    The holdings store is created only while the directory is new (its marker not yet
    written, so an interrupted init is finished by running it again): completing an
    initialised directory never replaces an emptied ``holdings/`` with an empty one."""
    fresh = not (Path(path) / MARKER).exists()
    if store is not None:
        check_store(store)  # before anything is created
    if tiles is not None:
        if tiles_credentials is None:
            raise InvalidArgumentError("an object store for the tiles needs its credentials file")
        check_tiles(tiles, tiles_credentials, store)
    data_dir = DataDir.init(path, SERVICE, KEYS)
    add_later_keys(data_dir)
    if store is not None:
        bind_store(data_dir, store, fresh=fresh)
    if tiles is not None and tiles_credentials is not None:
        bind_tiles(data_dir, tiles, tiles_credentials, fresh=fresh)
    if commission_vkey is not None:
        bind_commission(data_dir, commission_vkey)
    with AgencyRegistry(data_dir) as registry:
        if fresh:
            AgencyCodes(data_dir, registry, create=True).close()
        if demo:
            from renkei.service.demo import register_demo_agencies

            register_demo_agencies(registry)
    PermissionStore(data_dir).close()
    open_ledger(data_dir, background=False).close()
    return data_dir


#: How often a core on PostgreSQL looks for permission versions another front-end changed.
FOLLOW_S = 2.0


async def follow_permissions(tables: PermissionTables, interval: float = FOLLOW_S) -> None:
    """Poll the permission store's history (the followers' event log, docs/arch/store.md) and
    reload what another front-end on the same store changed."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            if await loop.run_in_executor(None, tables.refresh):
                log.info("permission table versions changed in the store: the engine follows")
        except RenkeiError as e:  # the store is failing over: the next round tries again
            log.warning("following the permission table versions: %s", e)
        except Exception:
            log.exception("following the permission table versions failed")
        await asyncio.sleep(interval)


async def follow_holdings(codes: AgencyCodes, interval: float | None = None) -> None:
    """Apply the holdings other front-ends on the same store changed (their event log,
    docs/arch/store.md), and beside it write a snapshot when one is due and this front-end is
    elected (at national scale a snapshot takes tens of seconds: following does not wait)."""
    from renkei.store.holdings import FOLLOW_S as HOLDINGS_FOLLOW_S

    loop = asyncio.get_running_loop()
    snapshotting: asyncio.Future[int | None] | None = None
    while True:
        try:
            await loop.run_in_executor(None, codes.follow)
        except RenkeiError as e:  # the store is failing over: the next round tries again
            log.warning("following the holdings: %s", e)
        except Exception:
            log.exception("following the holdings failed")
        if snapshotting is not None and snapshotting.done():
            if not snapshotting.cancelled() and snapshotting.exception() is not None:
                log.warning("writing a holdings snapshot: %s", snapshotting.exception())
            snapshotting = None
        if snapshotting is None:
            snapshotting = loop.run_in_executor(None, codes.snapshot_if_due)
        await asyncio.sleep(HOLDINGS_FOLLOW_S if interval is None else interval)


#: A fault seam for tests: the core flips a byte of every answer it relays (a malicious core),
#: which requesters must detect. Never set in production; the core warns at start when it is.
RELAY_FAULT_ENV = "RENKEI_FAULT_TAMPER_RELAY"


def _relay_fault() -> Callable[[bytes], bytes] | None:
    if os.environ.get(RELAY_FAULT_ENV) != "1":
        return None
    log.warning("%s=1: this core alters every answer it relays (a test of requesters' checks)", RELAY_FAULT_ENV)

    def flip(sealed: bytes) -> bytes:
        b = bytearray(sealed)
        b[len(b) // 2] ^= 0x01
        return bytes(b)

    return flip


def build(config: ServiceConfig, data_dir: DataDir, witnesses: Sequence[WitnessEndpoint] = (), *,
          witness_quorum: int = 1, witness_interval: float = 1.0) -> ServiceProcess:
    """The core's process on ``data_dir``. The shutdown hook (after in-flight calls have finished)
    closes the ledger and checkpoints the holdings; the next start reopens both. With
    ``witnesses``, a background task gathers their cosignatures on the ledger's checkpoints
    (renkei.linkage.cosigning) and readers get cosigned checkpoints."""
    process = ServiceProcess(config)
    if store_conninfo(data_dir) is not None:
        log.info("the core's store: %s", describe_store(data_dir))
    registry = AgencyRegistry(data_dir)
    codes = AgencyCodes(data_dir, registry)
    tables = PermissionTables.open(data_dir)
    ledger = open_ledger(data_dir)
    pseudonym_key = data_dir.secret_key(PSEUDONYM_KEY)
    linkage = Linkage(registry, codes, tables.engine, PermitIssuer.from_datadir(data_dir), ledger, pseudonym_key,
                      limits=config.limits.core, metrics=process.metrics)
    # Several front-ends share a store: a code J-LIS forwarded to one is collected through another.
    waiting = StoreWaitingCodes.open(data_dir) if store_conninfo(data_dir) is not None else None
    desk = AcquisitionDesk(data_dir.secret_key(ACQUISITION_KEY), registry, codes, waiting=waiting)
    offload = process.offload
    cosigner: Cosigner | None = None
    if witnesses:
        store = CosignatureStore(data_dir)
        cosigner = Cosigner(ledger, store, witnesses, process.metrics, quorum=witness_quorum,
                            interval=witness_interval)
        process.add_background(cosigner.run)
        process.add_closer(store.close)
    add_later_keys(data_dir)  # a directory from before them
    notice_box = NoticeBox(data_dir)
    delegations = DelegationBook(data_dir)
    logins = LoginStore(data_dir)
    metrics = CoreMetrics(process.metrics, ledger, codes, registry, tables)
    if store_conninfo(data_dir) is not None:
        # Other front-ends on the same store may change the versions (embedded: this process only).
        process.add_background(lambda: follow_permissions(tables))
        process.add_background(lambda: follow_holdings(codes))
    providers = ProviderDesk()
    mediator = Mediator(providers, ledger, offload, tamper=_relay_fault())
    process.add_service(pia_decision_service_pb2.DESCRIPTOR.services_by_name["PiaDecisionService"],
                        PiaDecisionServicer(registry, linkage, offload))
    disclosure = Disclosure(registry, ledger, pseudonym_key, logins, data_dir.secret_key(CHALLENGE_KEY), notice_box,
                            delegations)
    process.add_service(linkage_service_pb2.DESCRIPTOR.services_by_name["LinkageService"],
                        LinkageServicer(linkage, desk, offload, mediator, metrics,
                                        NoticeDesk(notice_box, codes, pseudonym_key), delegations,
                                        SessionCodes(disclosure, codes, registry)))
    process.add_service(provision_service_pb2.DESCRIPTOR.services_by_name["ProvisionService"],
                        ProvisionServicer(providers))
    process.add_service(person_link_service_pb2.DESCRIPTOR.services_by_name["PersonLinkService"],
                        PersonLinkServicer(desk, codes, registry, offload))
    process.add_service(oversight_service_pb2.DESCRIPTOR.services_by_name["OversightService"],
                        OversightServicer(Oversight(ledger), offload, cosigner, registry))
    process.add_service(admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"],
                        AdminServicer(registry, linkage, tables, offload, codes))
    # The public port's work runs on its own threads: it can never occupy the agencies' ones.
    process.add_service(disclosure_service_pb2.DESCRIPTOR.services_by_name["DisclosureService"],
                        DisclosureServicer(disclosure, process.public_offload, cosigner), PUBLIC)

    def close_engines() -> None:
        notice_box.close()
        delegations.close()
        logins.close()
        ledger.close()
        if codes.store is None:
            codes.checkpoint()  # on a store, snapshots are the elected front-end's periodic work
        codes.close()
        desk.close()
        registry.close()

    process.add_shutdown_hook(close_engines)
    return process



__all__ = ["KEYS", "LATER_KEYS", "add_later_keys", "build", "init_data_dir"]
