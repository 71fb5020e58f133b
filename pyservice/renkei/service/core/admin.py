"""AdminService: agencies (their PIA status shown, never set: the commission decides it),
permission-table versions, key epochs and holdings statistics (needs the operator role). The
``renkei`` command calls it when the core runs.

CreateAgency registers the agency; its client certificate comes from the PKI operator
(``renkei pki issue``): the core holds no CA key. Table installs, activations and removals take
effect for the next inquiry (the engine swaps its table set atomically) and are recorded in
``permissions.sqlite3``'s history with the caller's principal.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import grpc

from renkei._proto.renkei.v1 import admin_service_pb2 as pb
from renkei.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError
from renkei.linkage.codes import AgencyCodes
from renkei.linkage.inquiry import Linkage
from renkei.linkage.registry import (
    AGENCY_STATUSES,
    Agency,
    AgencyRegistry,
    Epoch,
    agency_name,
    local_government_corporate_number,
)
from renkei.permissions.store import HistoryEntry
from renkei.permissions.tables import PermissionTables, PermissionTuple, TableVersionRecord
from renkei.service.auth import Identity
from renkei.service.convert import agency_id, decode_page_token, encode_page_token, page_size, timestamp
from renkei.service.limits import MIB
from renkei.service.runtime import Offload, caller, rpc

MAX_TABLE_BYTES = 8 * 1024 * 1024
MAX_TEXT = 256
_LG_CODE = re.compile(r"^\d{6}$")
_HASH = re.compile(r"^[0-9a-f]{64}$")
_PIA_BACK = {
    "not_submitted": pb.PIA_STATUS_NOT_SUBMITTED,
    "submitted": pb.PIA_STATUS_SUBMITTED,
    "approved": pb.PIA_STATUS_APPROVED,
    "revoked": pb.PIA_STATUS_REVOKED,
}


def agency_message(a: Agency, pia_status: str) -> pb.Agency:
    return pb.Agency(
        agency_id=a.agency_id,
        name=a.name,
        type_ids=list(a.types),
        local_government_code=a.municipality_code or "",
        pia_status=_PIA_BACK.get(pia_status, pb.PIA_STATUS_UNSPECIFIED),
        create_time=timestamp(datetime.fromisoformat(a.registered_at)),
        status=a.status,
        corporate_number=a.corporate_number,
    )


def version_message(v: TableVersionRecord) -> pb.PermissionTableVersion:
    m = pb.PermissionTableVersion(
        version_hash=v.version_hash,
        effective_from=v.effective_from,
        effective_to=v.effective_to,
        row_count=v.row_count,
        load_time=timestamp(v.loaded_at),
        description=v.description,
        label=v.label,
        active=v.active,
        in_force=v.in_force,
    )
    if v.effective_from_at is not None:
        m.effective_from_time.CopyFrom(timestamp(v.effective_from_at))
    if v.effective_to_at is not None:
        m.effective_to_time.CopyFrom(timestamp(v.effective_to_at))
    return m


def change_message(h: HistoryEntry) -> pb.PermissionTableChange:
    return pb.PermissionTableChange(
        sequence=h.seq, time=timestamp(datetime.fromtimestamp(h.at, UTC)), action=h.action, label=h.label,
        version_hash=bytes(h.hash).hex() if h.hash else "", actor=h.actor, note=h.note or "",
    )


def epoch_message(e: Epoch, current: int) -> pb.KeyEpoch:
    m = pb.KeyEpoch(epoch=e.epoch, create_time=timestamp(datetime.fromisoformat(e.created_at)),
                    current=e.epoch == current)
    if e.retired_at:
        m.retire_time.CopyFrom(timestamp(datetime.fromisoformat(e.retired_at)))
    return m


def _actor(who: Identity, given: str) -> str:
    """Who changed a table, for the history: the person named in the request, and the
    certificate's principal that made the call."""
    given = given.strip()[:MAX_TEXT]
    return f"{given} ({who.principal})" if given else who.principal


def _date(value: str, what: str, required: bool) -> str:
    if not value and not required:
        return ""
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise InvalidArgumentError(f"{what} must be a date YYYY-MM-DD") from None


def _label(value: str) -> str:
    if not value or len(value) > MAX_TEXT:
        raise InvalidArgumentError("label is required (a table version's label, see ListPermissionTables)")
    return value


def _hash(value: str, what: str) -> str:
    if not _HASH.match(value):
        raise InvalidArgumentError(f"{what} must be a 64-digit lower-case hex SHA-256")
    return value


class AdminServicer:
    def __init__(
        self, registry: AgencyRegistry, linkage: Linkage, tables: PermissionTables, offload: Offload,
        codes: AgencyCodes | None = None,
    ) -> None:
        self._registry = registry
        self._codes = codes
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
    async def SetAgencyStatus(
        self, request: pb.SetAgencyStatusRequest, context: grpc.aio.ServicerContext
    ) -> pb.Agency:
        if request.status not in AGENCY_STATUSES:
            raise InvalidArgumentError(f"status must be one of {', '.join(AGENCY_STATUSES)}")
        agency = agency_id(request.agency_id)

        def change() -> pb.Agency:
            self._registry.set_agency_status(agency, request.status)
            self._linkage.forget(agency)
            return self._message(agency)

        return await self._offload.call(change)

    @rpc("operator", max_request=9 * MIB)  # an 8 MiB table with room for the fields
    async def LoadPermissionTable(
        self, request: pb.LoadPermissionTableRequest, context: grpc.aio.ServicerContext
    ) -> pb.PermissionTableVersion:
        who = caller()
        if not request.table_json:
            raise InvalidArgumentError("table_json is required")
        if len(request.table_json) > MAX_TABLE_BYTES:
            raise InvalidArgumentError(f"table_json is larger than {MAX_TABLE_BYTES} bytes")
        start = _date(request.effective_from, "effective_from", required=False)
        end = _date(request.effective_to, "effective_to", required=False)
        if end and not start:
            raise InvalidArgumentError("effective_to needs effective_from")
        if end and end <= start:
            raise InvalidArgumentError("effective_to must be after effective_from")

        def load() -> TableVersionRecord:
            return self._tables.load(request.table_json, start, end, request.description,
                                     actor=_actor(who, request.actor), note=request.note[:MAX_TEXT] or None,
                                     staged=request.staged)

        return version_message(await self._offload.call(load))

    @rpc("operator")
    async def ActivatePermissionTable(
        self, request: pb.ActivatePermissionTableRequest, context: grpc.aio.ServicerContext
    ) -> pb.PermissionTableVersion:
        who = caller()
        label = _label(request.label)

        def activate() -> TableVersionRecord:
            return self._tables.activate(label, actor=_actor(who, request.actor), note=request.note[:MAX_TEXT] or None)

        return version_message(await self._offload.call(activate))

    @rpc("operator")
    async def RemovePermissionTable(
        self, request: pb.RemovePermissionTableRequest, context: grpc.aio.ServicerContext
    ) -> pb.RemovePermissionTableResponse:
        who = caller()
        label = _label(request.label)

        def remove() -> TableVersionRecord | None:
            return self._tables.remove(label, actor=_actor(who, request.actor), note=request.note[:MAX_TEXT] or None)

        current = await self._offload.call(remove)
        if current is None:
            return pb.RemovePermissionTableResponse()
        return pb.RemovePermissionTableResponse(in_force=version_message(current))

    @rpc("operator")
    async def ListPermissionTableHistory(
        self, request: pb.ListPermissionTableHistoryRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListPermissionTableHistoryResponse:
        changes = await self._offload.call(self._tables.history)
        return pb.ListPermissionTableHistoryResponse(changes=[change_message(h) for h in changes])

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

    # -- key epochs and holdings --------------------------------------------------------------

    def _epochs(self) -> list[pb.KeyEpoch]:
        current = self._registry.current_epoch()
        return [epoch_message(e, current) for e in self._registry.epochs()]

    def _epoch(self, epoch: int) -> pb.KeyEpoch:
        found = [e for e in self._epochs() if e.epoch == epoch]
        if not found:
            raise NotFoundError(f"no key epoch {epoch}")
        return found[0]

    def _need_codes(self) -> AgencyCodes:
        if self._codes is None:
            raise FailedPreconditionError("this core serves no holdings")
        return self._codes

    @rpc("operator")
    async def ListKeyEpochs(
        self, request: pb.ListKeyEpochsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListKeyEpochsResponse:
        return pb.ListKeyEpochsResponse(epochs=await self._offload.call(self._epochs))

    @rpc("operator")
    async def RotateKeyEpoch(
        self, request: pb.RotateKeyEpochRequest, context: grpc.aio.ServicerContext
    ) -> pb.KeyEpoch:
        codes = self._need_codes()

        def rotate() -> pb.KeyEpoch:
            epoch = self._registry.rotate_epoch()
            codes.refresh_epochs()
            return self._epoch(epoch)

        return await self._offload.call(rotate)

    @rpc("operator")
    async def RetireKeyEpoch(
        self, request: pb.RetireKeyEpochRequest, context: grpc.aio.ServicerContext
    ) -> pb.KeyEpoch:
        if request.epoch == 0:
            raise InvalidArgumentError("epoch is required")
        codes = self._need_codes()

        def retire() -> pb.KeyEpoch:
            self._registry.retire_epoch(request.epoch)
            codes.refresh_epochs()
            return self._epoch(request.epoch)

        return await self._offload.call(retire)

    @rpc("operator")
    async def GetHoldingsStatistics(
        self, request: pb.GetHoldingsStatisticsRequest, context: grpc.aio.ServicerContext
    ) -> pb.HoldingsStatistics:
        codes = self._need_codes()

        def stats() -> pb.HoldingsStatistics:
            return pb.HoldingsStatistics(holdings_by_agency=codes.holdings_counts(), persons=codes.person_count())

        return await self._offload.call(stats)


__all__ = ["AdminServicer"]
