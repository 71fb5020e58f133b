"""Permission-table versions as the core (AdminService, and the CLI when the core is down) sees them.

:class:`PermissionTables` keeps the engine that decides inquiries and the durable store
(``permissions.sqlite3``) in step: ``load`` (install or stage), ``activate`` and ``remove``
change the store in one transaction and then the engine atomically (the next check sees the new
set, never a mix), and each is recorded in the store's history. A version is first checked
against every active version (two may not start at the same instant), so the engine never
refuses what the store already holds.

``load`` accepts either a ``renkei-permissions/1`` document or rows shaped like
``shared/data/beppyo2/structured.json``; the request's dates (``YYYY-MM-DD``, taken as 00:00
Japan time, when Japanese law takes effect) override the document's. The version *in force* is
the active one whose range contains now (the latest ``effective_from <= now``, unless it has
expired: then none).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from renkei.datadir import DataDir
from renkei.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError
from renkei.permissions.convert import from_structured
from renkei.permissions.engine import FORMAT, PermissionEngine, TableVersion, default_table_path
from renkei.permissions.store import HistoryEntry, PermissionStore

JST = timezone(timedelta(hours=9))
BUNDLED_DESCRIPTION = "bundled 番号法 別表第二 (2015)"


@dataclass(frozen=True)
class TableVersionRecord:
    """One table version as AdminService reports it."""

    version_hash: str
    effective_from: str
    effective_to: str
    row_count: int
    loaded_at: datetime
    description: str = ""
    label: str = ""
    #: Loaded into the engine that decides inquiries (False: staged).
    active: bool = True
    #: The active version in force now.
    in_force: bool = False
    effective_from_at: datetime | None = None
    effective_to_at: datetime | None = None


@dataclass(frozen=True, order=True)
class PermissionTuple:
    """One permitted combination (requester type, affair, provider type, item)."""

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


def in_force(versions: list[TableVersion], at: datetime | None = None) -> TableVersion | None:
    """The version the engine decides by at ``at`` (default now): the latest start not after
    ``at``, unless that one has expired (an expired table is not silently revived)."""
    now = at or datetime.now(UTC)
    started = [v for v in versions if v.effective_from <= now]
    if not started:
        return None
    latest = max(started, key=lambda v: v.effective_from)
    if latest.effective_until is not None and latest.effective_until <= now:
        return None
    return latest


class PermissionTables:
    def __init__(self, engine: PermissionEngine | None = None, store: PermissionStore | None = None) -> None:
        self.engine = engine if engine is not None else PermissionEngine()
        self._store = store
        self._lock = threading.Lock()  # guards the maps below
        self._admin = threading.Lock()  # one install / activate / remove at a time
        self._docs: dict[str, dict[str, Any]] = {}  # hex hash → document (active and staged)
        self._meta: dict[str, tuple[datetime, str]] = {}  # hex hash → (loaded at, description)
        self._staged: dict[str, TableVersion] = {}  # label → version, not in the engine
        self._bundled: dict[str, Any] = {}
        #: The store's history as far as the engine reflects it (renkei.store: another front-end
        #: on the same PostgreSQL store may change the versions; ``refresh`` follows).
        self._seen = 0

    @classmethod
    def bundled(cls) -> PermissionTables:
        """The bundled 別表第二 alone, with no store (what-if listings without a data directory)."""
        t = cls(PermissionEngine())
        t._bundled = json.loads(default_table_path().read_text(encoding="utf-8"))
        t._add(t._bundled, BUNDLED_DESCRIPTION)
        return t

    def add_file_version(self, doc: dict[str, Any], description: str) -> None:
        """Load a version into this (offline) engine only: nothing is stored."""
        self._add(doc, description)

    @classmethod
    def open(cls, datadir: DataDir, *, read_only: bool = False) -> PermissionTables:
        """The bundled 別表第二 plus the versions stored in ``datadir`` (active ones in the
        engine, staged ones known for diffs and activation). ``read_only`` takes no lock and
        writes nothing."""
        store = PermissionStore(datadir, read_only=read_only)
        t = cls(PermissionEngine(), store)
        t._seen = store.last_change()  # read first: a change while loading is seen again, harmlessly
        t._bundled = json.loads(default_table_path().read_text(encoding="utf-8"))
        t._add(t._bundled, BUNDLED_DESCRIPTION)
        for v in store.stored():
            doc = json.loads(v.document)
            if v.active:
                t._add(doc, "", datetime.fromtimestamp(v.installed_at, UTC))
            else:
                t._stage(doc, datetime.fromtimestamp(v.installed_at, UTC))
        return t

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    def _remember(self, v: TableVersion, doc: dict[str, Any], description: str, at: datetime | None) -> None:
        with self._lock:
            self._docs[v.hash.hex()] = doc
            self._meta[v.hash.hex()] = (at or datetime.now(UTC), description or doc.get("source") or "")

    def _add(self, doc: dict[str, Any], description: str, at: datetime | None = None) -> TableVersion:
        v = self.engine.load(doc)
        self._remember(v, doc, description, at)
        with self._lock:
            self._staged.pop(v.label, None)
        return v

    def _stage(self, doc: dict[str, Any], at: datetime | None = None, description: str = "") -> TableVersion:
        v = PermissionEngine().load(doc)
        self._remember(v, doc, description, at)
        with self._lock:
            self._staged[v.label] = v
        return v

    def _record(self, v: TableVersion, active: bool, current: TableVersion | None) -> TableVersionRecord:
        loaded_at, description = self._meta.get(v.hash.hex(), (datetime.now(UTC), ""))
        return TableVersionRecord(
            v.hash.hex(), _day(v.effective_from), _day(v.effective_until), v.rows, loaded_at, description,
            label=v.label, active=active, in_force=current is not None and current.hash == v.hash,
            effective_from_at=v.effective_from, effective_to_at=v.effective_until,
        )

    def _check_against_active(self, doc: dict[str, Any], label: str) -> None:
        """Would the engine take ``doc`` next to every other active version? (Refuses, e.g., two
        versions starting at the same instant, before anything is stored.)"""
        probe = PermissionEngine()
        with self._lock:
            others = [self._docs[v.hash.hex()] for v in self.engine.versions() if v.label != label]
        for other in others:
            probe.load(other)
        probe.load(doc)

    def _document(self, table_json: bytes, effective_from: str, effective_to: str, description: str) -> dict[str, Any]:
        if not _json_depth_ok(table_json, MAX_JSON_DEPTH):
            raise InvalidArgumentError(f"table_json nests deeper than {MAX_JSON_DEPTH} levels")
        try:
            parsed = json.loads(table_json)
        except (ValueError, UnicodeDecodeError, RecursionError) as e:
            raise InvalidArgumentError(f"table_json is not JSON: {str(e)[:200]}") from e
        start = _instant(effective_from) if effective_from else None
        end = _instant(effective_to) if effective_to else None
        if isinstance(parsed, dict) and parsed.get("format") == FORMAT:
            if start is None:
                return dict(parsed)  # the document's own dates
            return {**parsed, "effective_from": start, "effective_until": end}
        if isinstance(parsed, list):
            if start is None:
                raise InvalidArgumentError("effective_from (YYYY-MM-DD) is required for structured.json rows")
            try:
                return from_structured(parsed, label=f"table-{effective_from}", effective_from=start,
                                       effective_until=end, source=description or None)
            except (ValueError, KeyError, TypeError) as e:
                raise InvalidArgumentError(f"table_json: {e}") from e
        raise InvalidArgumentError(f"table_json must be a {FORMAT} document or a list of structured.json rows")

    def load(self, table_json: bytes, effective_from: str, effective_to: str, description: str, *,
             actor: str = "admin-api", note: str | None = None, staged: bool = False) -> TableVersionRecord:
        """Install a version (in force from its start, atomically) or, ``staged``, store it
        only; durable and in the history before this returns."""
        doc = self._document(table_json, effective_from, effective_to, description)
        with self._admin:
            v = PermissionEngine().load(doc)  # validate before anything is stored
            if staged:
                active_labels = {x.label for x in self.engine.versions()}
                if v.label in active_labels:
                    raise FailedPreconditionError(
                        f"table version {v.label!r} is active: stage the new content under another label, "
                        f"or install it to replace the active one")
            else:
                self._check_against_active(doc, v.label)
            if self._store is not None:
                self._store.install(doc, actor=actor, note=note or description or None, staged=staged)
            v = self._stage(doc, description=description) if staged else self._add(doc, description)
            return self._record(v, not staged, in_force(self.engine.versions()))

    def activate(self, label: str, *, actor: str = "admin-api", note: str | None = None) -> TableVersionRecord:
        """Put a staged version into force (atomically for concurrent checks)."""
        with self._admin:
            with self._lock:
                staged = self._staged.get(label)
            if staged is None:
                if label in {x.label for x in self.engine.versions()}:
                    raise FailedPreconditionError(f"table version {label!r} is active already")
                raise NotFoundError(f"no staged table version {label!r}")
            doc = self._docs[staged.hash.hex()]
            self._check_against_active(doc, label)
            if self._store is not None:
                self._store.activate(label, actor=actor, note=note)
            v = self._add(doc, "", self._meta.get(staged.hash.hex(), (None, ""))[0])
            return self._record(v, True, in_force(self.engine.versions()))

    def remove(self, label: str, *, actor: str = "admin-api", note: str | None = None) -> TableVersionRecord | None:
        """Take an installed (or staged) version out of force and out of the store; the version
        in force afterwards (None if none is). The bundled table cannot be removed."""
        with self._admin:
            with self._lock:
                staged = label in self._staged
            stored = self._store is not None and any(v.label == label for v in self._store.stored())
            if not stored and not staged:
                if label == self._bundled.get("label"):
                    raise FailedPreconditionError(
                        f"{label!r} is the bundled table: it cannot be removed; install a version that "
                        f"supersedes it")
                raise NotFoundError(f"no installed table version {label!r}")
            if self._store is not None:
                self._store.remove(label, actor=actor, note=note)
            with self._lock:
                self._staged.pop(label, None)
            if not staged:
                self.engine.unload(label)
                if label == self._bundled.get("label"):  # an installed replacement of the bundled label
                    self._add(self._bundled, BUNDLED_DESCRIPTION)
            return self.in_force()

    def refresh(self) -> bool:
        """Bring the engine and the staged versions in step with the store when its history has
        grown since (another front-end installed, activated or removed a version); whether it
        had. Cheap when nothing changed: one indexed read."""
        if self._store is None:
            return False
        mark = self._store.last_change()
        if mark == self._seen:
            return False
        with self._admin:
            stored = self._store.stored()
            active = {v.label: v for v in stored if v.active}
            bundled = self._bundled.get("label")
            for v in self.engine.versions():
                if v.label not in active and v.label != bundled:
                    self.engine.unload(v.label)
            loaded = {v.label: v.hash for v in self.engine.versions()}
            for label, sv in active.items():
                if loaded.get(label) != sv.hash:
                    self._add(json.loads(sv.document), "", datetime.fromtimestamp(sv.installed_at, UTC))
            if bundled is not None and bundled not in active and loaded.get(bundled) is not None \
                    and self._docs.get(loaded[bundled].hex()) is not self._bundled:
                self._add(self._bundled, BUNDLED_DESCRIPTION)  # an installed replacement was removed
            staged = {v.label: v for v in stored if not v.active}
            with self._lock:
                for label in [x for x in self._staged if x not in staged]:
                    del self._staged[label]
                known = {label: v.hash for label, v in self._staged.items()}
            for label, sv in staged.items():
                if known.get(label) != sv.hash:
                    self._stage(json.loads(sv.document), datetime.fromtimestamp(sv.installed_at, UTC))
            self._seen = mark
        return True

    def in_force(self, at: datetime | None = None) -> TableVersionRecord | None:
        current = in_force(self.engine.versions(), at)
        return None if current is None else self._record(current, True, current)

    def versions(self) -> list[TableVersionRecord]:
        """Active versions (by start), then staged ones."""
        active = sorted(self.engine.versions(), key=lambda v: v.effective_from)
        current = in_force(active)
        with self._lock:
            staged = sorted(self._staged.values(), key=lambda v: v.effective_from)
        return [self._record(v, True, current) for v in active] + [self._record(v, False, current) for v in staged]

    def history(self) -> list[HistoryEntry]:
        return [] if self._store is None else self._store.history()

    def diff(self, from_hash: str, to_hash: str) -> tuple[list[PermissionTuple], list[PermissionTuple]]:
        """(added, removed) permitted combinations going from one version to the other."""
        with self._lock:
            old, new = self._docs.get(from_hash.lower()), self._docs.get(to_hash.lower())
        if old is None or new is None:
            raise NotFoundError(f"no loaded table version {from_hash if old is None else to_hash}")
        a, b = tuples(old), tuples(new)
        return sorted(b - a), sorted(a - b)
