"""``renkei.Core``: the registry and the code engine of a core data directory, in one object.

For integrators and tests that embed the linkage core in their own process::

    core = renkei.Core.init("renkei-data/core")          # or renkei.Core(path) when it exists
    city = core.registry.register_agency("横浜市長", ["municipal_mayor"], "3000020141003",
                                          municipality_code="141003")
    core.registry.add_pia(city.agency_id, "評価書", approved_on="2025-04-01", expires_on="2030-03-31")
    codes = core.issue(city.agency_id, link_ids)         # link ids come from J-LIS, never My Numbers

Reading only the registry? Use :class:`~renkei.linkage.registry.AgencyRegistry`: it does not load
the holdings.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import numpy.typing as npt

from renkei.datadir import DataDir
from renkei.linkage.codes import AgencyCodes
from renkei.linkage.registry import SERVICE, AgencyRegistry


class Core:
    """A core data directory opened for codes and registry (one process at a time)."""

    def __init__(self, data_dir: DataDir | str | os.PathLike[str], *, checkpoint_bytes: int | None = None) -> None:
        self.data_dir = data_dir if isinstance(data_dir, DataDir) else DataDir(data_dir, SERVICE)
        self.registry = AgencyRegistry(self.data_dir)
        try:
            self.codes = AgencyCodes(self.data_dir, self.registry, checkpoint_bytes=checkpoint_bytes)
        except BaseException:
            self.registry.close()
            raise

    @classmethod
    def init(cls, path: str | os.PathLike[str], *, demo: bool = False, checkpoint_bytes: int | None = None) -> Core:
        """Create (or complete) a core data directory, then open it."""
        from renkei.service.core import init_data_dir

        return cls(init_data_dir(path, demo=demo), checkpoint_bytes=checkpoint_bytes)

    def close(self) -> None:
        self.codes.close()
        self.registry.close()

    def __enter__(self) -> Core:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def issue(self, agency_id: int, link_ids: Any) -> bytes:
        """The agency's codes for persons named by J-LIS link id (see :meth:`AgencyCodes.issue`)."""
        return self.codes.issue(agency_id, link_ids)

    def translate(self, from_agency: int, code: str | bytes, to_agency: int) -> str | bytes:
        return self.codes.translate(from_agency, code, to_agency)

    def translate_batch(self, from_agency: int, codes: Any, to_agency: int) -> tuple[bytes, npt.NDArray[np.uint8]]:
        return self.codes.translate_batch(from_agency, codes, to_agency)

    def release(self, agency_id: int, code: str | bytes) -> None:
        self.codes.release(agency_id, code)

    def rotate_epoch(self) -> int:
        """Start a new key epoch in the registry and the engine."""
        epoch = self.registry.rotate_epoch()
        self.codes.refresh_epochs()
        return epoch

    def retire_epoch(self, epoch: int) -> None:
        """Refuse every code of ``epoch`` from now on."""
        self.registry.retire_epoch(epoch)
        self.codes.refresh_epochs()

    def checkpoint(self) -> None:
        self.codes.checkpoint()


__all__ = ["Core"]
