"""Connecting to a renkei server in one call.

    from renkei import client
    ch = client.agency_channel(1, data_dir="renkei-data")          # mutual TLS, as agency 1
    ch = client.principal_channel("jlis", data_dir="renkei-data")  # as J-LIS
    ch = client.public_channel(data_dir="renkei-data")             # no client certificate
    client.NumberServiceStub(ch).ValidateNumbers(..., timeout=5)

The certificate, key and CA come from the data directory's development PKI
(``pki/clients/<principal>/``, ``pki/ca.pem``), or from explicit files. Pass ``aio=True`` for a
``grpc.aio`` channel. Always give calls a ``timeout``: gRPC's default deadline is infinite.
"""

from __future__ import annotations

import os
from pathlib import Path

import grpc

from renkei._proto.renkei.v1.admin_service_pb2_grpc import AdminServiceStub
from renkei._proto.renkei.v1.corporate_number_service_pb2_grpc import CorporateNumberServiceStub
from renkei._proto.renkei.v1.disclosure_service_pb2_grpc import DisclosureServiceStub
from renkei._proto.renkei.v1.linkage_service_pb2_grpc import LinkageServiceStub
from renkei._proto.renkei.v1.number_service_pb2_grpc import NumberServiceStub
from renkei._proto.renkei.v1.oversight_service_pb2_grpc import OversightServiceStub
from renkei.datadir import default_path

DEFAULT_TARGET = "localhost:50051"
DEFAULT_PUBLIC_TARGET = "localhost:50052"
_MAX_MESSAGE = 16 * 1024 * 1024
_OPTIONS = [("grpc.max_receive_message_length", _MAX_MESSAGE), ("grpc.max_send_message_length", _MAX_MESSAGE)]

Channel = grpc.Channel | grpc.aio.Channel


def _pki(data_dir: str | os.PathLike[str] | None) -> Path:
    return Path(data_dir if data_dir is not None else default_path()) / "pki"


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


def principal_channel(
    principal: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    target: str = DEFAULT_TARGET,
    aio: bool = False,
) -> Channel:
    """A mutual-TLS channel as ``principal`` ("agency-<id>", "jlis", "oversight", "operator")."""
    pki = _pki(data_dir)
    folder = pki / "clients" / principal
    return mtls_channel(
        target, certificate=folder / "cert.pem", private_key=folder / "key.pem", ca=pki / "ca.pem", aio=aio
    )


def agency_channel(
    agency_id: int,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    target: str = DEFAULT_TARGET,
    aio: bool = False,
) -> Channel:
    """A mutual-TLS channel as the intermediate server of agency ``agency_id``."""
    return principal_channel(f"agency-{int(agency_id)}", data_dir=data_dir, target=target, aio=aio)


def public_channel(
    target: str = DEFAULT_PUBLIC_TARGET,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    ca: str | os.PathLike[str] | None = None,
    aio: bool = False,
) -> Channel:
    """A server-only TLS channel to the public port (corporate numbers, disclosure)."""
    ca_path = Path(ca) if ca is not None else _pki(data_dir) / "ca.pem"
    return _channel(target, grpc.ssl_channel_credentials(ca_path.read_bytes()), aio)


__all__ = [
    "AdminServiceStub",
    "CorporateNumberServiceStub",
    "DisclosureServiceStub",
    "LinkageServiceStub",
    "NumberServiceStub",
    "OversightServiceStub",
    "agency_channel",
    "mtls_channel",
    "principal_channel",
    "public_channel",
]
