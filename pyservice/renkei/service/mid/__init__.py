"""An intermediate server's process (``renkei mid init|serve``): IntermediateService for the
tenants' business systems on its mutual-TLS port; toward the core and J-LIS, one channel per
tenant with that agency's certificate, and one attendance stream per tenant on which the core
sends provision calls (so the intermediate server needs no inbound port from the core)."""

from __future__ import annotations

from renkei._proto.renkei.v1 import intermediate_service_pb2
from renkei.mid.platform import Platform
from renkei.service.mid.attendance import Attendance
from renkei.service.mid.links import TenantLinks
from renkei.service.mid.servicer import IntermediateServicer
from renkei.service.server import ServiceConfig, ServiceProcess


def build(config: ServiceConfig, platform: Platform, core_targets: str | list[str], jlis_target: str) -> ServiceProcess:
    process = ServiceProcess(config)
    links = TenantLinks(platform, core_targets, jlis_target)
    attendance = Attendance(platform, links, process.offload)
    process.add_service(intermediate_service_pb2.DESCRIPTOR.services_by_name["IntermediateService"],
                        IntermediateServicer(platform, links, process.offload))
    process.add_background(attendance.run)
    process.add_closer(links.close)
    process.add_closer(platform.close)
    return process


__all__ = ["build"]
