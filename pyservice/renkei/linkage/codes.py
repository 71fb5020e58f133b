"""機関別符号 (agency codes) and holdings: the core's Rust code engine on ``holdings/``.

A person reaches the core only as the 16-byte **link id** (連携用符号) J-LIS derives from the
resident code. The engine maps each link id to the core's own dense person index on first sight
(journaled with the acquisition that needed it) and issues codes as one AES-256 block over
(person index, agency, key epoch, tag): unlinkable across agencies without the core's code key,
translated in O(1) without a table. Embedded, the engine owns ``holdings/`` (journal, snapshot,
directory lock); when the data directory is bound to PostgreSQL (``store.conninfo``) the engine
keeps only the in-memory index and :class:`~renkei.store.holdings.PgHoldings` makes every change
durable in the store first (many front-ends share it; docs/arch/store.md). This class adds the
agency checks of :class:`~renkei.linkage.registry.AgencyRegistry`.

Refusals of a code are the same whatever the cause (forged, foreign, retired epoch, released,
not held), so the answer is no oracle about a person.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from renkei._core import codes as _codes
from renkei.datadir import DataDir
from renkei.errors import CodeRefusedError, InvalidArgumentError
from renkei.linkage.registry import AgencyRegistry
from renkei.store import store_conninfo

if TYPE_CHECKING:
    from renkei.store.holdings import PgHoldings

log = logging.getLogger("renkei.linkage")

CODE_LEN = 16
LINK_ID_LEN = 16
STATUS_OK = 0
STATUS_REFUSED = 1


def code_bytes(code: str | bytes) -> tuple[bytes, bool]:
    """An agency code as (16 bytes, was_text): from bytes or its 26-character text."""
    if isinstance(code, str):
        return _codes.code_from_text(code), True
    if isinstance(code, (bytes, bytearray, memoryview)) and len(code) == CODE_LEN:
        return bytes(code), False
    raise InvalidArgumentError("an agency code is 16 bytes or its 26-character text")


def packed(values: Any, width: int, what: str) -> bytes:
    """``values`` (bytes or a uint8 numpy array) as packed ``width``-byte items."""
    if isinstance(values, bytes):
        data = values
    elif isinstance(values, (bytearray, memoryview)):
        data = bytes(values)
    elif isinstance(values, np.ndarray):
        if values.dtype != np.uint8 or not (values.ndim == 1 or (values.ndim == 2 and values.shape[1] == width)):
            raise InvalidArgumentError(f"{what} as numpy must be uint8, shape (n*{width},) or (n, {width})")
        data = values.tobytes()
    else:
        raise InvalidArgumentError(f"{what} must be bytes or a uint8 numpy array, {width} bytes each")
    if len(data) % width:
        raise InvalidArgumentError(f"{what} must be packed {width} bytes each; got {len(data)} bytes")
    return data


class AgencyCodes:
    """The code engine and holdings of a core data directory. Thread-safe; the engine locks
    ``holdings/`` so that one process at a time owns it."""

    def __init__(
        self, data_dir: DataDir, registry: AgencyRegistry, *, checkpoint_bytes: int | None = None, create: bool = False
    ) -> None:
        """Open the holdings of ``data_dir``. Only ``create`` (init) makes a new, empty store: an
        emptied or missing ``holdings/`` is refused (``StorageError`` naming it), since starting
        empty would give existing person indices, codes and pseudonyms to other persons."""
        self._registry = registry
        current, live = registry.epoch_state()
        key = data_dir.secret_key("agency-code")
        conninfo = store_conninfo(data_dir)
        self._pg: PgHoldings | None = None
        if conninfo is not None:
            from renkei.store.holdings import PgHoldings

            self._engine = _codes.CodeEngine.in_memory(key, current, live)
            self._pg = PgHoldings(conninfo, self._engine, create=create)
            return
        kwargs = {} if checkpoint_bytes is None else {"checkpoint_bytes": checkpoint_bytes}
        self._engine = _codes.CodeEngine(
            key, str(data_dir.file("holdings")), current, live, **kwargs, create=create
        )
        report = self._engine.open_report()
        if report["torn_bytes_dropped"]:
            log.warning("holdings journal: dropped a torn tail of %d bytes (never acknowledged)",
                        report["torn_bytes_dropped"])
        log.info("holdings loaded: %d persons, %d holdings (snapshot=%s, %d journal records replayed)",
                 self._engine.person_count(), self._engine.total(), report["snapshot_loaded"],
                 report["records_replayed"])

    @property
    def store(self) -> PgHoldings | None:
        """The PostgreSQL holdings driver, when the data directory is bound to a store."""
        return self._pg

    def follow(self) -> int:
        """Apply what other front-ends on the same store changed (event rows applied; 0 embedded)."""
        return 0 if self._pg is None else self._pg.poll()

    def snapshot_if_due(self) -> int | None:
        """On PostgreSQL: write a holdings snapshot when enough events follow the newest one and
        this front-end wins the election (the snapshot id, else None; always None embedded)."""
        if self._pg is None or not self._pg.snapshot_due():
            return None
        return self._pg.snapshot()

    @property
    def engine(self) -> _codes.CodeEngine:
        """The Rust engine, for the inquiry path."""
        return self._engine

    def close(self) -> None:
        self._engine.close()
        if self._pg is not None:
            self._pg.close()

    def refresh_epochs(self) -> None:
        """Apply the registry's key epochs (after a rotation or retirement)."""
        self._engine.set_epochs(*self._registry.epoch_state())

    # -- issue (the core side of 番号法 第21条の2) ----------------------------------------------

    def issue(self, agency_id: int, link_ids: Any) -> bytes:
        """The codes of an active agency with an approved PIA for persons named by link id
        (16 bytes each, packed); the holdings are durable before this returns."""
        agency = self._registry.require_active(agency_id)
        links = packed(link_ids, LINK_ID_LEN, "link ids")
        if self._pg is not None:
            codes = self._pg.acquire(agency.agency_id, links)
        else:
            codes = self._engine.acquire_links(agency.agency_id, links)
        log.debug("agency %d acquired %d codes", agency.agency_id, len(links) // LINK_ID_LEN)
        return codes

    def persons_of_links(self, link_ids: Any, *, assign: bool) -> npt.NDArray[np.int64]:
        """The core's person index per link id (-1 unknown); ``assign`` makes new ones (durable)."""
        links = packed(link_ids, LINK_ID_LEN, "link ids")
        if self._pg is not None:
            return self._pg.persons_of_links(links, assign=assign)
        return self._engine.persons_of_links(links, assign)

    # -- release --------------------------------------------------------------------------------

    def release_batch(self, agency_id: int, codes: Any) -> npt.NDArray[np.uint8]:
        """Release the holdings behind the agency's own codes; status per code (0 released)."""
        agency = self._registry.agency(agency_id)
        raw = packed(codes, CODE_LEN, "codes")
        if self._pg is not None:
            removed, status = self._pg.release(agency.agency_id, raw)
        else:
            removed, status = self._engine.release(agency.agency_id, raw)
        log.debug("agency %d released %d holdings", agency.agency_id, removed)
        return status

    def release(self, agency_id: int, code: str | bytes) -> None:
        """Release one holding (the person moved away, the file was closed)."""
        raw, _ = code_bytes(code)
        if self.release_batch(agency_id, raw)[0] != STATUS_OK:
            raise CodeRefusedError("agency code (機関別符号) refused")

    # -- translation ----------------------------------------------------------------------------

    def translate_batch(self, from_agency: int, codes: Any, to_agency: int) -> tuple[bytes, npt.NDArray[np.uint8]]:
        """Translate ``from_agency``'s codes to ``to_agency``'s (packed 16 bytes each).

        Returns the translated codes (zeros where refused) and a uint8 status per item: 0
        translated, 1 refused. A refusal is the same whatever its cause.
        """
        a = self._registry.require_active(from_agency)
        b = self._registry.require_active(to_agency)
        return self._engine.translate(a.agency_id, packed(codes, CODE_LEN, "codes"), b.agency_id)

    def translate(self, from_agency: int, code: str | bytes, to_agency: int) -> str | bytes:
        """One code; text in gives text out, bytes in gives bytes out. Refusal raises
        :class:`~renkei.errors.CodeRefusedError` (a ``PermissionDeniedError``)."""
        raw, was_text = code_bytes(code)
        out, status = self.translate_batch(from_agency, raw, to_agency)
        if status[0] != STATUS_OK:
            raise CodeRefusedError("agency code (機関別符号) refused")
        return _codes.code_to_text(out) if was_text else out

    # -- holdings queries -----------------------------------------------------------------------

    def holders_of(self, agency_id: int, code: str | bytes) -> list[int]:
        """Agencies holding the person behind ``agency_id``'s own code."""
        raw, _ = code_bytes(code)
        return list(self._engine.holders_of_code(int(agency_id), raw))

    def holdings_count(self, agency_id: int) -> int:
        return int(self._engine.count(int(agency_id)))

    def holdings_counts(self) -> dict[int, int]:
        agencies, counts = self._engine.counts()
        return dict(zip(agencies.tolist(), counts.tolist(), strict=True))

    def person_count(self) -> int:
        return int(self._engine.person_count())

    def checkpoint(self) -> None:
        """Snapshot the holdings (embedded: and start a fresh journal; PostgreSQL: when this
        front-end wins the snapshot election) so a restart loads fast."""
        if self._pg is not None:
            self._pg.snapshot()
        else:
            self._engine.checkpoint()
