"""Permission-table versions as the admin gRPC service sees them.

Implements the ``PermissionTables`` protocol of ``renkei.service.engines`` (load / versions /
diff; the records carry the same attribute names as ``TableVersionInfo`` and
``PermissionRowInfo``) on top of a :class:`PermissionEngine`, optionally persisted in a
:class:`PermissionStore`. ``load`` accepts either a ``renkei-permissions/1`` document or rows
shaped like ``shared/data/beppyo2/structured.json``; the request's dates (``YYYY-MM-DD``, taken
as 00:00 Japan time, when Japanese law takes effect) override the document's.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from renkei.datadir import DataDir
from renkei.errors import InvalidArgumentError, NotFoundError
from renkei.permissions.convert import from_structured
from renkei.permissions.engine import FORMAT, PermissionEngine, TableVersion, default_table_path
from renkei.permissions.store import PermissionStore

JST = timezone(timedelta(hours=9))


@dataclass(frozen=True)
class TableVersionRecord:
    """Field for field ``renkei.service.engines.TableVersionInfo``."""

    version_hash: str
    effective_from: str
    effective_to: str
    row_count: int
    loaded_at: datetime
    description: str = ""


@dataclass(frozen=True, order=True)
class PermissionTuple:
    """Field for field ``renkei.service.engines.PermissionRowInfo``: one permitted combination."""

    requester_type_id: str
    affair: str
    provider_type_id: str
    information_item: str


#: Table versions take effect between these days (the engine counts µs from 1970; the far
#: end leaves room for the day's time zone).
FIRST_DAY, LAST_DAY = "1970-01-02", "9999-12-30"
#: A table document nests a few levels; deeper JSON is refused before it is walked.
MAX_JSON_DEPTH = 32


def _instant(day: str) -> str:
    try:
        d = datetime.strptime(day, "%Y-%m-%d")
    except ValueError as e:
        raise InvalidArgumentError(f"{day[:32]!r} is not a date YYYY-MM-DD") from e
    if not FIRST_DAY <= d.date().isoformat() <= LAST_DAY:
        raise InvalidArgumentError(f"a table version takes effect between {FIRST_DAY} and {LAST_DAY}")
    return d.replace(tzinfo=JST).isoformat()


def _json_depth_ok(text: bytes, limit: int) -> bool:
    """Whether brackets nest at most ``limit`` deep (strings skipped), without parsing."""
    depth, in_string, escaped = 0, False, False
    for b in text:
        if in_string:
            if escaped:
                escaped = False
            elif b == 0x5C:  # backslash
                escaped = True
            elif b == 0x22:
                in_string = False
        elif b == 0x22:
            in_string = True
        elif b in (0x5B, 0x7B):
            depth += 1
            if depth > limit:
                return False
        elif b in (0x5D, 0x7D):
            depth -= 1
    return True


def _day(at: datetime | None) -> str:
    return "" if at is None else at.astimezone(JST).date().isoformat()


def tuples(doc: dict[str, Any]) -> set[PermissionTuple]:
    """Every (requester type, affair, provider type, item) a document permits."""
    return {PermissionTuple(q, r["affair"], p, i) for r in doc["rows"] for q in r["requesters"]
            for p in r["providers"] for i in r["items"]}


class PermissionTables:
    def __init__(self, engine: PermissionEngine | None = None, store: PermissionStore | None = None) -> None:
        self.engine = engine if engine is not None else PermissionEngine()
        self._store = store
        self._lock = threading.Lock()
        self._docs: dict[str, dict[str, Any]] = {}  # hex hash → document
        self._meta: dict[str, tuple[datetime, str]] = {}  # hex hash → (loaded at, description)

    @classmethod
    def open(cls, datadir: DataDir) -> PermissionTables:
        """The bundled 別表第二 plus the versions installed in ``datadir``."""
        store = PermissionStore(datadir)
        t = cls(PermissionEngine(), store)
        t._add(json.loads(default_table_path().read_text(encoding="utf-8")), "bundled 番号法 別表第二 (2015)")
        for _label, _hash, doc in store.documents():
            t._add(json.loads(bytes(doc)), "")
        return t

    def _add(self, doc: dict[str, Any], description: str) -> TableVersion:
        v = self.engine.load(doc)
        with self._lock:
            self._docs[v.hash.hex()] = doc
            self._meta[v.hash.hex()] = (datetime.now(UTC), description or doc.get("source") or "")
        return v

    def _record(self, v: TableVersion) -> TableVersionRecord:
        loaded_at, description = self._meta.get(v.hash.hex(), (datetime.now(UTC), ""))
        return TableVersionRecord(v.hash.hex(), _day(v.effective_from), _day(v.effective_until), v.rows,
                                  loaded_at, description)

    def load(self, table_json: bytes, effective_from: str, effective_to: str, description: str) -> TableVersionRecord:
        if not _json_depth_ok(table_json, MAX_JSON_DEPTH):
            raise InvalidArgumentError(f"table_json nests deeper than {MAX_JSON_DEPTH} levels")
        try:
            parsed = json.loads(table_json)
        except (ValueError, UnicodeDecodeError, RecursionError) as e:
            raise InvalidArgumentError(f"table_json is not JSON: {str(e)[:200]}") from e
        start = _instant(effective_from)
        end = _instant(effective_to) if effective_to else None
        if isinstance(parsed, dict) and parsed.get("format") == FORMAT:
            doc = {**parsed, "effective_from": start, "effective_until": end}
        elif isinstance(parsed, list):
            try:
                doc = from_structured(parsed, label=f"table-{effective_from}", effective_from=start,
                                      effective_until=end, source=description or None)
            except (ValueError, KeyError, TypeError) as e:
                raise InvalidArgumentError(f"table_json: {e}") from e
        else:
            raise InvalidArgumentError(f"table_json must be a {FORMAT} document or a list of structured.json rows")
        PermissionEngine().load(doc)  # validate before anything is stored
        if self._store is not None:
            self._store.install(doc, actor="admin-api", note=description or None)
        return self._record(self._add(doc, description))

    def versions(self) -> list[TableVersionRecord]:
        return [self._record(v) for v in self.engine.versions()]

    def diff(self, from_hash: str, to_hash: str) -> tuple[list[PermissionTuple], list[PermissionTuple]]:
        """(added, removed) permitted combinations going from one version to the other."""
        with self._lock:
            old, new = self._docs.get(from_hash.lower()), self._docs.get(to_hash.lower())
        if old is None or new is None:
            raise NotFoundError(f"no loaded table version {from_hash if old is None else to_hash}")
        a, b = tuples(old), tuples(new)
        return sorted(b - a), sorted(a - b)
