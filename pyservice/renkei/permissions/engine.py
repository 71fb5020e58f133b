"""The legal permission engine: may this requester ask this provider for these items?

番号法 第十九条第七号 allows a 情報照会者 to ask a 情報提供者 for 特定個人情報 through the
情報提供ネットワークシステム only for the combinations of 別表第二, plus the rows a municipality
adds by ordinance (条例事務, 第九条第二項). Here that table is data: a *table version*
(``renkei-permissions/1`` JSON, see docs/arch/permissions.md) with an effective date range and
a SHA-256 content hash. The bundled default is the real 2015 別表第二 (259 rows, 120 項)::

    engine = PermissionEngine.with_default()
    r = engine.check(AgencyFacts(["mhlw_minister"]), "beppyo2-1",
                     AgencyFacts(["municipal_mayor"]), ["local_tax_info"])
    r.allowed, r.matched_rows[0].ref, r.version_hash.hex()

Agencies enter a check only as *facts*: their agency types (ids of
``shared/data/beppyo2/agency_types.json``) and, for ordinance rows, the requester's
municipality code (全国地方公共団体コード, 6 digits). The agency registry supplies them.

A check answers from one snapshot of the engine; ``load`` publishes a new one atomically.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from renkei._core import permissions as _p
from renkei.errors import InvalidArgumentError

FORMAT = "renkei-permissions/1"
DEFAULT_TABLE = "beppyo2-2015.json"
UNKNOWN: int = _p.UNKNOWN
NO_ROW: int = _p.NO_ROW
#: Batch outcome code → token ("allowed" or the failed component).
OUTCOMES: dict[int, str] = dict(_p.OUTCOMES)

#: What each deny token means, for explanations.
COMPONENTS: dict[str, str] = {
    "no_version_in_force": "no table version is in force at that instant",
    "unknown_affair": "the affair (事務) is not in the table version in force",
    "requester_not_entitled": "no requester type (情報照会者) is entitled to this affair",
    "provider_not_listed": "no provider type (情報提供者) is listed for this requester and affair",
    "item_not_listed": "the item (特定個人情報) is not listed for this requester, provider and affair",
    "other_municipality": "only an ordinance row (条例事務) of another municipality would permit this",
}


def default_table_path() -> Path:
    return Path(str(resources.files("renkei") / "data" / "permissions" / DEFAULT_TABLE))


def to_us(at: datetime | None) -> int:
    """Microseconds since the epoch; naive datetimes are refused (the law has a time zone)."""
    if at is None:
        at = datetime.now(UTC)
    if at.tzinfo is None:
        raise InvalidArgumentError("the instant of a check must be timezone-aware")
    delta = at - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


def _municipality(m: str | int | None) -> str | None:
    if m is None:
        return None
    text = f"{m:06d}" if isinstance(m, int) else str(m)
    if len(text) != 6 or not text.isdigit():
        raise InvalidArgumentError(f"municipality code must be 6 digits, got {m!r}")
    return text


@dataclass(frozen=True)
class AgencyFacts:
    """What a check needs to know of an agency: its agency types (別表 types, all that apply:
    a 市町村長 running 国民健康保険 is also one of the 医療保険者) and, for ordinance rows, its
    municipality code."""

    types: tuple[str, ...]
    municipality: str | None = None

    def __init__(self, types: Iterable[str] | str, municipality: str | int | None = None) -> None:
        ts = (types,) if isinstance(types, str) else tuple(types)
        if not ts or not all(isinstance(t, str) and t for t in ts):
            raise InvalidArgumentError("an agency needs at least one agency type (non-empty strings)")
        object.__setattr__(self, "types", ts)
        object.__setattr__(self, "municipality", _municipality(municipality))


@dataclass(frozen=True)
class Row:
    """A row of a table version, by name."""

    index: int
    ref: str
    ko: str | None
    affair: str
    affair_code: str
    requesters: tuple[str, ...]
    providers: tuple[str, ...]
    items: tuple[str, ...]
    municipality: str | None

    @property
    def legal_reference(self) -> str:
        if self.municipality:
            return f"条例事務 ({self.municipality}) {self.ref}"
        return f"別表第二 {self.ko}の項 ({self.ref})" if self.ko else self.ref


@dataclass(frozen=True)
class TableVersion:
    label: str
    hash: bytes
    effective_from: datetime
    effective_until: datetime | None
    rows: int
    keys: int

    @classmethod
    def _of(cls, d: dict[str, Any]) -> TableVersion:
        until = d["effective_until_us"]
        return cls(d["label"], d["hash"], from_us(d["effective_from_us"]),
                   None if until is None else from_us(until), d["rows"], d["keys"])


@dataclass(frozen=True)
class CheckResult:
    """Allow, or deny naming the failed component and the nearest row."""

    allowed: bool
    outcome: str
    at: datetime
    matched_rows: tuple[Row, ...] = ()
    failed_item: str | None = None
    nearest_row: Row | None = None
    version_label: str | None = None
    version_hash: bytes | None = None
    items: tuple[str, ...] = field(default=())

    @property
    def failed_component(self) -> str | None:
        return None if self.allowed else self.outcome

    def explain(self) -> str:
        lines = [f"{'ALLOW' if self.allowed else 'DENY'} at {self.at.isoformat()}"]
        if self.version_label:
            assert self.version_hash is not None
            lines.append(f"  table version {self.version_label} sha256:{self.version_hash.hex()}")
        if self.allowed:
            for item, row in zip(self.items, self.matched_rows, strict=True):
                lines.append(f"  {item}: permitted by {row.legal_reference}")
        else:
            lines.append(f"  failed: {self.outcome}: {COMPONENTS.get(self.outcome, self.outcome)}")
            if self.failed_item is not None:
                lines.append(f"  item: {self.failed_item}")
            if self.nearest_row is not None:
                r = self.nearest_row
                lines.append(f"  nearest row: {r.legal_reference}")
                lines.append(f"    requesters: {', '.join(r.requesters)}")
                lines.append(f"    providers:  {', '.join(r.providers)}")
                lines.append(f"    items:      {', '.join(r.items)}")
        return "\n".join(lines)


@dataclass(frozen=True)
class BatchResult:
    """Per query: ``outcome`` (uint8, 0 = allowed, see OUTCOMES) and ``row`` (uint32, matched
    row when allowed, nearest row when denied, NO_ROW when none)."""

    outcome: np.ndarray
    row: np.ndarray
    version_label: str | None
    version_hash: bytes | None


def read_document(source: str | os.PathLike[str] | bytes | dict[str, Any]) -> bytes:
    if isinstance(source, bytes):
        return source
    if isinstance(source, dict):
        return json.dumps(source, ensure_ascii=False).encode()
    return Path(source).read_bytes()


class PermissionEngine:
    """Table versions in memory; checks single and batch."""

    def __init__(self) -> None:
        self._core = _p.Engine()
        # Rows by (version hash, index): a hash names one content, so entries never go stale.
        self._rows: dict[tuple[bytes, int], Row] = {}

    @classmethod
    def with_default(cls) -> PermissionEngine:
        e = cls()
        e.load(default_table_path())
        return e

    def load(self, source: str | os.PathLike[str] | bytes | dict[str, Any]) -> TableVersion:
        """Load (or replace, by label) a table version; atomic for concurrent checks."""
        return TableVersion._of(self._core.load_json(read_document(source)))

    def unload(self, label: str) -> bool:
        return bool(self._core.unload(label))

    def versions(self) -> list[TableVersion]:
        return [TableVersion._of(d) for d in self._core.versions()]

    def _row(self, version: _p.Version, index: int) -> Row:
        key = (version.hash, index)
        r = self._rows.get(key)
        if r is None:
            d = version.row(index)
            r = Row(d["index"], d["ref"], d["ko"], d["affair"], d["affair_code"], tuple(d["requesters"]),
                    tuple(d["providers"]), tuple(d["items"]), d["municipality"])
            if len(self._rows) > 100_000:
                self._rows.clear()
            self._rows[key] = r
        return r

    def row(self, label: str, index: int) -> Row:
        """Row ``index`` of the loaded version ``label``."""
        return self._row(self._core.version(label), index)

    def check(self, requester: AgencyFacts, affair: str, provider: AgencyFacts, items: Sequence[str] | str,
              at: datetime | None = None) -> CheckResult:
        """Is ``requester`` permitted to ask ``provider`` for ``items`` for ``affair`` at ``at``
        (default now)? Affairs and items may be given by id, permit code or operational code
        (事務手続コード / 特定個人情報名コード). The whole answer, rows included, comes from one
        table version even while another thread reloads."""
        its = (items,) if isinstance(items, str) else tuple(items)
        at_dt = at if at is not None else datetime.now(UTC)
        outcome, matched, failed, nearest, version = self._core.check(
            list(requester.types), requester.municipality, affair, list(provider.types), list(its), to_us(at_dt))
        if version is None:
            return CheckResult(allowed=False, outcome=outcome, at=at_dt, items=its)
        return CheckResult(
            allowed=outcome == "allowed",
            outcome=outcome,
            at=at_dt,
            matched_rows=tuple(self._row(version, i) for i in matched),
            failed_item=its[failed] if failed is not None else None,
            nearest_row=self._row(version, nearest) if nearest is not None else None,
            version_label=version.label,
            version_hash=bytes(version.hash),
            items=its,
        )

    def permit_codes(self, label: str, affair: str, items: Sequence[str]) -> tuple[str, list[str]]:
        """The short codes a permit carries for ``affair`` and ``items`` in version ``label``."""
        v = self._core.version(label)
        a = v.affair_code(affair)
        codes = [v.item_code(i) for i in items]
        if a is None or any(c is None for c in codes):
            raise InvalidArgumentError(f"affair or item not in table version {label!r}")
        return a, [c for c in codes if c is not None]

    # --- batch -------------------------------------------------------------------------
    def type_ids(self, names: Sequence[str]) -> np.ndarray:
        return self._core.type_ids(list(names))

    def affair_ids(self, names: Sequence[str], at: datetime | None = None) -> np.ndarray:
        return self._core.affair_ids(list(names), to_us(at))

    def item_ids(self, names: Sequence[str], at: datetime | None = None) -> np.ndarray:
        return self._core.item_ids(list(names), to_us(at))

    def check_batch(self, queries: np.ndarray, at: datetime | None = None) -> BatchResult:
        """``queries``: uint32 array of shape (n, 5): requester type id, affair id, provider
        type id, item id, requester municipality (0 = none); ids from ``type_ids`` /
        ``affair_ids`` / ``item_ids`` (stable across reloads). Runs without the GIL."""
        outcome, row, version = self._core.check_batch(queries, to_us(at))
        if version is None:
            return BatchResult(outcome, row, None, None)
        return BatchResult(outcome, row, version.label, bytes(version.hash))

    def __repr__(self) -> str:
        return f"PermissionEngine({[v.label for v in self.versions()]})"


def content_hash(source: str | os.PathLike[str] | bytes | dict[str, Any]) -> bytes:
    """The SHA-256 content hash of a table document, as the engine computes it."""
    return bytes(_p.content_hash(read_document(source)))


def _row_key(r: dict[str, Any]) -> tuple[Any, ...]:
    return (r["affair"], tuple(sorted(set(r["requesters"]))), tuple(sorted(set(r["providers"]))),
            tuple(sorted(set(r["items"]))), r.get("municipality"))


def diff(old: dict[str, Any], new: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows (by content: affair, requester/provider types, items, municipality) removed from
    ``old`` and added in ``new``."""
    old_keys = {_row_key(r) for r in old["rows"]}
    new_keys = {_row_key(r) for r in new["rows"]}
    removed = [r for r in old["rows"] if _row_key(r) not in new_keys]
    added = [r for r in new["rows"] if _row_key(r) not in old_keys]
    return removed, added


def with_ordinance(base: dict[str, Any], *, municipality: str | int, label: str, effective_from: str,
                   affairs: Sequence[dict[str, Any]] = (), items: Sequence[dict[str, Any]] = (),
                   agency_types: Sequence[dict[str, Any]] = (), rows: Sequence[dict[str, Any]] = (),
                   effective_until: str | None = None) -> dict[str, Any]:
    """A new table version: ``base`` plus a municipality's ordinance rows (条例事務), which the
    engine honours only for requesters of that municipality."""
    muni = _municipality(municipality)
    doc = json.loads(json.dumps(base))
    doc.update(label=label, effective_from=effective_from, effective_until=effective_until)
    doc["affairs"] += [dict(a) for a in affairs]
    doc["items"] += [dict(i) for i in items]
    doc["agency_types"] += [dict(t) for t in agency_types]
    doc["rows"] += [{**r, "municipality": muni} for r in rows]
    return dict(doc)
