"""Connecting to renkei's services in one call.

Against a box started with ``renkei up --ready-file box.json``::

    from renkei import client
    box = client.Box.from_ready_file("box.json")
    core = client.LinkageServiceStub(box.core("agency-1"))        # mutual TLS, as demo agency 1
    jlis = client.NumberServiceStub(box.jlis("jlis"))             # as J-LIS's operator
    nta = client.CorporateNumberServiceStub(box.nta())            # public, no client certificate
    codes, statuses = client.acquire_codes(core, client.NumberServiceStub(box.jlis("agency-1")), numbers)

Or with explicit endpoints and files: :func:`principal_channel`, :func:`mtls_channel`,
:func:`public_channel`. Certificates come from the PKI directory's ``clients/<principal>/``
(``cert.pem``, ``key.pem``, ``ca.pem``). Pass ``aio=True`` for a ``grpc.aio`` channel. Always
give calls a ``timeout``: gRPC's default deadline is infinite.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import grpc
import numpy as np
import numpy.typing as npt

from renkei._proto.renkei.v1 import linkage_service_pb2, number_service_pb2
from renkei._proto.renkei.v1.admin_service_pb2_grpc import AdminServiceStub
from renkei._proto.renkei.v1.corporate_number_service_pb2_grpc import CorporateNumberServiceStub
from renkei._proto.renkei.v1.disclosure_service_pb2_grpc import DisclosureServiceStub
from renkei._proto.renkei.v1.intermediate_service_pb2_grpc import IntermediateServiceStub
from renkei._proto.renkei.v1.linkage_service_pb2_grpc import LinkageServiceStub
from renkei._proto.renkei.v1.number_service_pb2_grpc import NumberServiceStub
from renkei._proto.renkei.v1.oversight_service_pb2_grpc import OversightServiceStub
from renkei._proto.renkei.v1.person_link_service_pb2_grpc import PersonLinkServiceStub
from renkei._proto.renkei.v1.provision_service_pb2_grpc import ProvisionServiceStub
from renkei.datadir import box_root
from renkei.errors import InvalidArgumentError, NotInitializedError

_MAX_MESSAGE = 16 * 1024 * 1024
_OPTIONS = [("grpc.max_receive_message_length", _MAX_MESSAGE), ("grpc.max_send_message_length", _MAX_MESSAGE)]
#: At most this many numbers go in one acquisition call (the services' limit).
ACQUIRE_BATCH = 100_000

#: A ``grpc.Channel`` or a ``grpc.aio.Channel`` (grpcio ships no type information).
Channel: TypeAlias = Any


def _channel(target: str, creds: grpc.ChannelCredentials, aio: bool) -> Channel:
    if aio:
        return grpc.aio.secure_channel(target, creds, options=_OPTIONS)
    return grpc.secure_channel(target, creds, options=_OPTIONS)


def mtls_channel(
    target: str,
    *,
    certificate: str | os.PathLike[str],
    private_key: str | os.PathLike[str],
    ca: str | os.PathLike[str],
    aio: bool = False,
) -> Channel:
    """A mutual-TLS channel from explicit PEM files."""
    creds = grpc.ssl_channel_credentials(
        Path(ca).read_bytes(), Path(private_key).read_bytes(), Path(certificate).read_bytes()
    )
    return _channel(target, creds, aio)


def principal_channel(principal: str, target: str, *, pki: str | os.PathLike[str] | None = None,
                      aio: bool = False) -> Channel:
    """A mutual-TLS channel to ``target`` as ``principal`` ("agency-<id>", "jlis", "oversight",
    "operator"), with its certificate from ``<pki>/clients/<principal>/``."""
    root = Path(pki) if pki is not None else box_root() / "pki"
    folder = root / "clients" / principal
    if not (folder / "cert.pem").exists():
        raise NotInitializedError(f"no client certificate for {principal!r} in {root}: issue one with "
                                  f"`renkei pki issue --dir {root} …`")
    return mtls_channel(target, certificate=folder / "cert.pem", private_key=folder / "key.pem",
                        ca=root / "ca.pem", aio=aio)


def agency_channel(agency_id: int, target: str, *, pki: str | os.PathLike[str] | None = None,
                   aio: bool = False) -> Channel:
    """A mutual-TLS channel to ``target`` as the intermediate server of agency ``agency_id``."""
    return principal_channel(f"agency-{int(agency_id)}", target, pki=pki, aio=aio)


def public_channel(target: str, *, ca: str | os.PathLike[str] | None = None, aio: bool = False) -> Channel:
    """A server-only TLS channel to a public port (corporate numbers, disclosure)."""
    ca_path = Path(ca) if ca is not None else box_root() / "pki" / "ca.pem"
    return _channel(target, grpc.ssl_channel_credentials(ca_path.read_bytes()), aio)


@dataclass(frozen=True)
class Box:
    """The endpoints of a running box, from the ready file of ``renkei up``."""

    services: dict[str, dict[str, Any]]
    pki: Path

    @classmethod
    def from_ready_file(cls, path: str | os.PathLike[str]) -> Box:
        try:
            info = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise NotInitializedError(f"{path} does not exist: is `renkei up --ready-file {path}` running?") from None
        return cls(dict(info["services"]), Path(info["pki"]))

    def endpoint(self, service: str, kind: str = "grpc") -> str:
        try:
            target = self.services[service][kind]
        except KeyError:
            raise InvalidArgumentError(f"the box has no service {service!r}; it has {sorted(self.services)}") from None
        if not target:
            raise InvalidArgumentError(f"{service} serves no {kind} endpoint")
        return str(target)

    def channel(self, service: str, principal: str, *, aio: bool = False) -> Channel:
        """A mutual-TLS channel to ``service`` as ``principal``."""
        return principal_channel(principal, self.endpoint(service), pki=self.pki, aio=aio)

    def mid(self, name: str, principal: str, *, aio: bool = False) -> Channel:
        """A channel to the intermediate server ``mid-<name>`` (e.g. ``national``) as ``principal``
        (an agency's business system: ``business-<agency id>``)."""
        return self.channel(name if name.startswith("mid-") else f"mid-{name}", principal, aio=aio)

    def core(self, principal: str, *, aio: bool = False) -> Channel:
        return self.channel("core", principal, aio=aio)

    def jlis(self, principal: str, *, aio: bool = False) -> Channel:
        return self.channel("jlis", principal, aio=aio)

    def public(self, service: str, *, aio: bool = False) -> Channel:
        """A server-TLS channel to ``service``'s public port."""
        return public_channel(self.endpoint(service, "public_grpc"), ca=self.pki / "ca.pem", aio=aio)

    def nta(self, *, aio: bool = False) -> Channel:
        return self.public("nta", aio=aio)


def acquire_codes(
    core: LinkageServiceStub, jlis: NumberServiceStub, individual_numbers: Any, *, timeout: float = 60.0
) -> tuple[bytes, npt.NDArray[np.uint8]]:
    """Acquire the calling agency's codes (番号法 第21条の2): reserve 取得番号 at the core, send
    (My Number, 取得番号) to J-LIS, collect the codes at the core. Both stubs must be channels
    of the same agency. Returns the codes (16 bytes each; zeros where not issued) and a status
    per number (the proto's AcquisitionStatus: 0 issued, 2 no such current number, …)."""
    from renkei.jlis.relay import my_numbers_array

    numbers = my_numbers_array(individual_numbers)
    codes, statuses = [], []
    for start in range(0, len(numbers), ACQUIRE_BATCH):
        chunk = numbers[start:start + ACQUIRE_BATCH]
        acq = core.ReserveAcquisitionNumbers(
            linkage_service_pb2.ReserveAcquisitionNumbersRequest(count=len(chunk)), timeout=timeout
        ).acquisition_numbers
        relayed = np.frombuffer(jlis.RelayAcquisitions(
            number_service_pb2.RelayAcquisitionsRequest(individual_numbers=chunk.astype("<u8").tobytes(),
                                                        acquisition_numbers=acq), timeout=timeout
        ).statuses, dtype=np.uint8)
        collected = core.CollectCodes(linkage_service_pb2.CollectCodesRequest(acquisition_numbers=acq),
                                      timeout=timeout)
        status = np.frombuffer(collected.statuses, dtype=np.uint8).copy()
        status[relayed != 0] = relayed[relayed != 0]  # J-LIS's verdict (no such number) names the cause
        codes.append(collected.agency_codes)
        statuses.append(status)
    return b"".join(codes), (np.concatenate(statuses) if statuses else np.zeros(0, dtype=np.uint8))


async def acquire_codes_aio(
    core: LinkageServiceStub, jlis: NumberServiceStub, individual_numbers: Any, *, timeout: float = 60.0
) -> tuple[bytes, npt.NDArray[np.uint8]]:
    """:func:`acquire_codes` on ``grpc.aio`` stubs (an intermediate server's event loop)."""
    from renkei.jlis.relay import my_numbers_array

    numbers = my_numbers_array(individual_numbers)
    codes, statuses = [], []
    for start in range(0, len(numbers), ACQUIRE_BATCH):
        chunk = numbers[start:start + ACQUIRE_BATCH]
        acq = (await core.ReserveAcquisitionNumbers(
            linkage_service_pb2.ReserveAcquisitionNumbersRequest(count=len(chunk)), timeout=timeout
        )).acquisition_numbers
        relayed = np.frombuffer((await jlis.RelayAcquisitions(
            number_service_pb2.RelayAcquisitionsRequest(individual_numbers=chunk.astype("<u8").tobytes(),
                                                        acquisition_numbers=acq), timeout=timeout
        )).statuses, dtype=np.uint8)
        collected = await core.CollectCodes(linkage_service_pb2.CollectCodesRequest(acquisition_numbers=acq),
                                            timeout=timeout)
        status = np.frombuffer(collected.statuses, dtype=np.uint8).copy()
        status[relayed != 0] = relayed[relayed != 0]
        codes.append(collected.agency_codes)
        statuses.append(status)
    return b"".join(codes), (np.concatenate(statuses) if statuses else np.zeros(0, dtype=np.uint8))


__all__ = [
    "AdminServiceStub",
    "Box",
    "CorporateNumberServiceStub",
    "DisclosureServiceStub",
    "IntermediateServiceStub",
    "LinkageServiceStub",
    "NumberServiceStub",
    "OversightServiceStub",
    "PersonLinkServiceStub",
    "ProvisionServiceStub",
    "acquire_codes",
    "acquire_codes_aio",
    "agency_channel",
    "mtls_channel",
    "principal_channel",
    "public_channel",
]
