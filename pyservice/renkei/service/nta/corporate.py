"""CorporateNumberService (NTA, public) on :class:`renkei.CorporateNumberRegistry`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc

from renkei._proto.renkei.v1 import corporate_number_service_pb2 as pb
from renkei.errors import InvalidArgumentError
from renkei.nta.registry import CorporateNumberRegistry, Corporation, Page
from renkei.service.runtime import Offload

_MATCH = {
    pb.NAME_MATCH_UNSPECIFIED: "prefix",
    pb.NAME_MATCH_PREFIX: "prefix",
    pb.NAME_MATCH_PARTIAL: "partial",
}
_TARGET = {
    pb.NAME_TARGET_UNSPECIFIED: "fuzzy",
    pb.NAME_TARGET_FUZZY: "fuzzy",
    pb.NAME_TARGET_EXACT: "exact",
    pb.NAME_TARGET_ENGLISH: "english",
}
MAX_NAME_LENGTH = 256


def corporation_message(c: Corporation) -> pb.Corporation:
    d = c.to_dict()
    d["latest"] = bool(d["latest"])
    d["hihyoji"] = bool(d["hihyoji"])
    return pb.Corporation(**d)  # type: ignore[arg-type]


def page_message(page: Page) -> pb.CorporationPage:
    return pb.CorporationPage(
        total_count=page.count,
        page=page.divide_number,
        page_count=page.divide_size,
        last_update_date=page.last_update_date,
        corporations=[corporation_message(c) for c in page.corporations],
    )


def _enum(table: Mapping[Any, str], value: int, what: str) -> str:
    if value not in table:
        raise InvalidArgumentError(f"unknown {what} {value}")
    return table[value]


class CorporateNumberServicer:
    """The public look-ups; no caller identity is needed or read."""

    def __init__(self, registry: CorporateNumberRegistry) -> None:
        self._nta = registry
        self._serial = Offload(1, "nta")  # one SQLite connection: one thread

    def close(self) -> None:
        self._serial.shutdown()

    async def BatchGetCorporations(
        self, request: pb.BatchGetCorporationsRequest, context: grpc.aio.ServicerContext
    ) -> pb.BatchGetCorporationsResponse:
        def get() -> list[Corporation]:
            return self._nta.get(list(request.corporate_numbers), history=request.include_history)

        records = await self._serial.call(get)
        return pb.BatchGetCorporationsResponse(corporations=[corporation_message(c) for c in records])

    async def SearchCorporations(
        self, request: pb.SearchCorporationsRequest, context: grpc.aio.ServicerContext
    ) -> pb.CorporationPage:
        if len(request.name) > MAX_NAME_LENGTH:
            raise InvalidArgumentError(f"name is longer than {MAX_NAME_LENGTH} characters")
        mode = _enum(_MATCH, request.match, "match")
        target = _enum(_TARGET, request.target, "target")

        def search() -> Page:
            return self._nta.search(
                request.name,
                mode=mode,
                target=target,
                prefecture=request.prefecture_code or None,
                kinds=list(request.kinds) or None,
                include_closed=not request.exclude_closed,
                include_former_names=request.include_former_names,
                page=request.page or 1,
            )

        return page_message(await self._serial.call(search))

    async def ListCorporationChanges(
        self, request: pb.ListCorporationChangesRequest, context: grpc.aio.ServicerContext
    ) -> pb.CorporationPage:
        if not request.from_date or not request.to_date:
            raise InvalidArgumentError("from_date and to_date are required (YYYY-MM-DD)")

        def changes() -> Page:
            return self._nta.changes(
                request.from_date,
                request.to_date,
                prefecture=request.prefecture_code or None,
                kinds=list(request.kinds) or None,
                page=request.page or 1,
            )

        return page_message(await self._serial.call(changes))


__all__ = ["CorporateNumberServicer"]
