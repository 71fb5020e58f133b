"""CorporateNumberService (NTA, public) on :class:`renkei.CorporateNumberRegistry`."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import grpc

from renkei._proto.renkei.v1 import corporate_number_service_pb2 as pb
from renkei.datadir import DataDir
from renkei.errors import InvalidArgumentError
from renkei.nta.registry import CorporateNumberRegistry, Corporation, Page
from renkei.service.limits import KIB, NtaLimits
from renkei.service.runtime import Offload, rpc

T = TypeVar("T")

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


class _Readers:
    """``readers`` threads, each with its own read-only registry connection, every look-up
    bounded in time: one costly search holds one reader for at most ``query_seconds``."""

    def __init__(self, data_dir: DataDir, limits: NtaLimits) -> None:
        self._data_dir = data_dir
        self._limits = limits
        self._pool = Offload(limits.readers, "nta-read")
        self._local = threading.local()
        self._opened: list[CorporateNumberRegistry] = []
        self._lock = threading.Lock()

    def _registry(self) -> CorporateNumberRegistry:
        reg: CorporateNumberRegistry | None = getattr(self._local, "registry", None)
        if reg is None:
            reg = CorporateNumberRegistry(self._data_dir, read_only=True, query_seconds=self._limits.query_seconds)
            self._local.registry = reg
            with self._lock:
                self._opened.append(reg)
        return reg

    async def call(self, fn: Callable[[CorporateNumberRegistry], T]) -> T:
        return await self._pool.call(lambda: fn(self._registry()))

    def close(self) -> None:
        self._pool.shutdown()
        with self._lock:
            for reg in self._opened:
                reg.close()
            self._opened.clear()


class CorporateNumberServicer:
    """The public look-ups; no caller identity is needed or read."""

    def __init__(self, data_dir: DataDir, limits: NtaLimits) -> None:
        self._readers = _Readers(data_dir, limits)

    def close(self) -> None:
        self._readers.close()

    @rpc(public=True, max_request=4 * KIB)  # 10 numbers
    async def BatchGetCorporations(
        self, request: pb.BatchGetCorporationsRequest, context: grpc.aio.ServicerContext
    ) -> pb.BatchGetCorporationsResponse:
        def get(nta: CorporateNumberRegistry) -> list[Corporation]:
            return nta.get(list(request.corporate_numbers), history=request.include_history)

        records = await self._readers.call(get)
        return pb.BatchGetCorporationsResponse(corporations=[corporation_message(c) for c in records])

    @rpc(public=True, max_request=8 * KIB)  # a name of 256 characters, 10 kinds
    async def SearchCorporations(
        self, request: pb.SearchCorporationsRequest, context: grpc.aio.ServicerContext
    ) -> pb.CorporationPage:
        if len(request.name) > MAX_NAME_LENGTH:
            raise InvalidArgumentError(f"name is longer than {MAX_NAME_LENGTH} characters")
        mode = _enum(_MATCH, request.match, "match")
        target = _enum(_TARGET, request.target, "target")

        def search(nta: CorporateNumberRegistry) -> Page:
            return nta.search(
                request.name,
                mode=mode,
                target=target,
                prefecture=request.prefecture_code or None,
                kinds=list(request.kinds) or None,
                include_closed=not request.exclude_closed,
                include_former_names=request.include_former_names,
                page=request.page or 1,
            )

        return page_message(await self._readers.call(search))

    @rpc(public=True, max_request=4 * KIB)
    async def ListCorporationChanges(
        self, request: pb.ListCorporationChangesRequest, context: grpc.aio.ServicerContext
    ) -> pb.CorporationPage:
        if not request.from_date or not request.to_date:
            raise InvalidArgumentError("from_date and to_date are required (YYYY-MM-DD)")

        def changes(nta: CorporateNumberRegistry) -> Page:
            return nta.changes(
                request.from_date,
                request.to_date,
                prefecture=request.prefecture_code or None,
                kinds=list(request.kinds) or None,
                page=request.page or 1,
            )

        return page_message(await self._readers.call(changes))


__all__ = ["CorporateNumberServicer"]
