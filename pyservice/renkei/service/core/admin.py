"""AdminService: agencies, PIA status and permission-table versions (needs the operator role).

CreateAgency registers the agency; its client certificate comes from the PKI operator
(``renkei pki issue``): the core holds no CA key.
"""

from __future__ import annotations

import re
from datetime import date, datetime

import grpc

from renkei._proto.renkei.v1 import admin_service_pb2 as pb
from renkei.errors import InvalidArgumentError
from renkei.linkage.inquiry import Linkage
from renkei.linkage.registry import Agency, AgencyRegistry, agency_name, local_government_corporate_number
from renkei.permissions.tables import PermissionTables, PermissionTuple, TableVersionRecord
from renkei.service.convert import agency_id, decode_page_token, encode_page_token, page_size, timestamp
from renkei.service.limits import MIB
from renkei.service.runtime import Offload, rpc

MAX_TABLE_BYTES = 8 * 1024 * 1024
_LG_CODE = re.compile(r"^\d{6}$")
_HASH = re.compile(r"^[0-9a-f]{64}$")
_PIA = {
    pb.PIA_STATUS_NOT_SUBMITTED: "not_submitted",
    pb.PIA_STATUS_SUBMITTED: "submitted",
    pb.PIA_STATUS_APPROVED: "approved",
    pb.PIA_STATUS_REVOKED: "revoked",
}
_PIA_BACK = {v: k for k, v in _PIA.items()}


def agency_message(a: Agency, pia_status: str) -> pb.Agency:
    return pb.Agency(
        agency_id=a.agency_id,
        name=a.name,
        type_ids=list(a.types),
        local_government_code=a.municipality_code or "",
        pia_status=_PIA_BACK.get(pia_status, pb.PIA_STATUS_UNSPECIFIED),
        create_time=timestamp(datetime.fromisoformat(a.registered_at)),
    )


def version_message(v: TableVersionRecord) -> pb.PermissionTableVersion:
    return pb.PermissionTableVersion(
        version_hash=v.version_hash,
        effective_from=v.effective_from,
        effective_to=v.effective_to,
        row_count=v.row_count,
        load_time=timestamp(v.loaded_at),
        description=v.description,
    )


def _date(value: str, what: str, required: bool) -> str:
    if not value and not required:
        return ""
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise InvalidArgumentError(f"{what} must be a date YYYY-MM-DD") from None


def _hash(value: str, what: str) -> str:
    if not _HASH.match(value):
        raise InvalidArgumentError(f"{what} must be a 64-digit lower-case hex SHA-256")
    return value


class AdminServicer:
    def __init__(
        self, registry: AgencyRegistry, linkage: Linkage, tables: PermissionTables, offload: Offload,
    ) -> None:
        self._registry = registry
        self._linkage = linkage
        self._tables = tables
        self._offload = offload

    def _message(self, agency_id: int) -> pb.Agency:
        return agency_message(self._registry.agency(agency_id), self._registry.pia_status(agency_id))

    @rpc("operator")
    async def CreateAgency(
        self, request: pb.CreateAgencyRequest, context: grpc.aio.ServicerContext
    ) -> pb.Agency:
        agency_name(request.name)  # a clear refusal before the registry thread is involved
        if not request.type_ids:
            raise InvalidArgumentError("type_ids must name at least one agency type")
        if request.local_government_code and not _LG_CODE.match(request.local_government_code):
            raise InvalidArgumentError("local_government_code must be 6 digits (全国地方公共団体コード)")

        def create() -> pb.Agency:
            code = request.local_government_code or None
            corporate = request.corporate_number
            if not corporate:
                if code is None:
                    raise InvalidArgumentError(
                        "corporate_number (法人番号) is required for an agency that is not a local government"
                    )
                corporate = local_government_corporate_number(code)
            a = self._registry.register_agency(request.name, list(request.type_ids), corporate, municipality_code=code)
            return self._message(a.agency_id)

        return await self._offload.call(create)

    @rpc("operator")
    async def GetAgency(self, request: pb.GetAgencyRequest, context: grpc.aio.ServicerContext) -> pb.Agency:
        return await self._offload.call(self._message, agency_id(request.agency_id))

    @rpc("operator")
    async def ListAgencies(
        self, request: pb.ListAgenciesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListAgenciesResponse:
        limit = page_size(request.page_size)
        after = decode_page_token(request.page_token, b"agencies") or 0

        def page() -> list[pb.Agency]:
            ids = [a.agency_id for a in self._registry.agencies() if a.agency_id > after][: limit + 1]
            return [self._message(i) for i in ids]

        rows = await self._offload.call(page)
        more = len(rows) > limit
        rows = rows[:limit]
        token = encode_page_token(rows[-1].agency_id, b"agencies") if more and rows else ""
        return pb.ListAgenciesResponse(agencies=rows, next_page_token=token)

    @rpc("operator")
    async def SetPiaStatus(
        self, request: pb.SetPiaStatusRequest, context: grpc.aio.ServicerContext
    ) -> pb.Agency:
        status = _PIA.get(request.pia_status)
        if status is None:
            raise InvalidArgumentError("pia_status is required")
        agency = agency_id(request.agency_id)

        def change() -> pb.Agency:
            self._registry.set_pia_status(agency, status)
            self._linkage.forget(agency)
            return self._message(agency)

        return await self._offload.call(change)

    @rpc("operator", max_request=9 * MIB)  # an 8 MiB table with room for the fields
    async def LoadPermissionTable(
        self, request: pb.LoadPermissionTableRequest, context: grpc.aio.ServicerContext
    ) -> pb.PermissionTableVersion:
        if not request.table_json:
            raise InvalidArgumentError("table_json is required")
        if len(request.table_json) > MAX_TABLE_BYTES:
            raise InvalidArgumentError(f"table_json is larger than {MAX_TABLE_BYTES} bytes")
        start = _date(request.effective_from, "effective_from", required=True)
        end = _date(request.effective_to, "effective_to", required=False)
        if end and end <= start:
            raise InvalidArgumentError("effective_to must be after effective_from")
        version = await self._offload.call(
            self._tables.load, request.table_json, start, end, request.description
        )
        return version_message(version)

    @rpc("operator")
    async def ListPermissionTables(
        self, request: pb.ListPermissionTablesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListPermissionTablesResponse:
        versions = await self._offload.call(self._tables.versions)
        return pb.ListPermissionTablesResponse(versions=[version_message(v) for v in versions])

    @rpc("operator")
    async def DiffPermissionTables(
        self, request: pb.DiffPermissionTablesRequest, context: grpc.aio.ServicerContext
    ) -> pb.DiffPermissionTablesResponse:
        a = _hash(request.from_version_hash, "from_version_hash")
        b = _hash(request.to_version_hash, "to_version_hash")
        added, removed = await self._offload.call(self._tables.diff, a, b)

        def rows(rs: list[PermissionTuple]) -> list[pb.PermissionRow]:
            return [
                pb.PermissionRow(
                    requester_type_id=r.requester_type_id,
                    affair=r.affair,
                    provider_type_id=r.provider_type_id,
                    information_item=r.information_item,
                )
                for r in rs
            ]

        return pb.DiffPermissionTablesResponse(added=rows(added), removed=rows(removed))


__all__ = ["AdminServicer"]
