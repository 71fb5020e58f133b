"""Data directories for tests that use one engine directly (as ``renkei core init`` makes them)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import numpy.typing as npt

from renkei._core import codes as _codes
from renkei.datadir import DataDir
from renkei.errors import NotFoundError
from renkei.jlis.authority import NumberAuthority
from renkei.jlis.relay import my_numbers_array
from renkei.linkage.core import Core
from renkei.service.core import KEYS


def core_dir(path: str | os.PathLike[str]) -> DataDir:
    """A core data directory with its keys (created on first use, reopened after)."""
    return DataDir.init(path, "core", KEYS)


class InProcess:
    """J-LIS and a core in one test process, for the engine's unit tests: acquisition here
    takes the link ids straight from J-LIS (the services do it with 取得番号 across processes).
    Everything else is the core's (its registry, codes and holdings)."""

    def __init__(self, core: Core, jlis: NumberAuthority) -> None:
        self.core = core
        self.jlis = jlis

    def acquire_batch(self, agency_id: int, my_numbers: Any) -> tuple[bytes, npt.NDArray[np.uint8]]:
        """Codes (zeros where J-LIS has no current number) and a status per number (0, or 2)."""
        links, found = self.jlis.link_ids(my_numbers_array(my_numbers))
        out = np.zeros((len(found), 16), dtype=np.uint8)
        if found.any():
            lk = np.frombuffer(links, dtype=np.uint8).reshape(-1, 16)[found]
            out[found] = np.frombuffer(self.core.issue(agency_id, lk.tobytes()), dtype=np.uint8).reshape(-1, 16)
        else:
            self.core.registry.require_active(agency_id)
        return out.tobytes(), np.where(found, 0, 2).astype(np.uint8)

    def acquire(self, agency_id: int, my_number: str | int) -> str:
        codes, status = self.acquire_batch(agency_id, [my_number])
        if status[0]:
            raise NotFoundError("J-LIS has no current individual number (個人番号) like this")
        return str(_codes.code_to_text(codes))

    def holders_of(self, *, agency_id: int, code: str | bytes) -> list[int]:
        return self.core.codes.holders_of(agency_id, code)

    def close(self) -> None:
        self.core.close()
        self.jlis.close()

    def __getattr__(self, name: str) -> Any:
        for part in (self.core, self.core.registry, self.core.codes):
            if hasattr(part, name):
                return getattr(part, name)
        raise AttributeError(name)
