"""J-LIS's process (``renkei jlis init|serve``): NumberService on the mutual-TLS port.

Its data directory holds the J-LIS number and link keys and the number registry; it calls the
linkage core (PersonLinkService) with its own client certificate, and sends it link ids only.
"""

from __future__ import annotations

from renkei._proto.renkei.v1 import number_service_pb2
from renkei.jlis.authority import NumberAuthority
from renkei.pki.ca import ServiceTls
from renkei.service.jlis.core_link import CoreLink
from renkei.service.jlis.numbers import NumberServicer
from renkei.service.server import ServiceConfig, ServiceProcess


def build(config: ServiceConfig, authority: NumberAuthority, core_target: str, tls: ServiceTls, *,
          demo: bool = False) -> ServiceProcess:
    process = ServiceProcess(config)
    core = CoreLink(core_target, tls)
    process.add_service(number_service_pb2.DESCRIPTOR.services_by_name["NumberService"],
                        NumberServicer(authority, core, process.offload, demo=demo, metrics=process.metrics))
    process.add_closer(core.close)
    process.add_closer(authority.close)
    return process


__all__ = ["build"]
