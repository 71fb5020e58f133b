"""The corporate-number registry of the National Tax Agency (法人番号, 番号法 第39条).

A 法人番号 is 13 digits: a check digit followed by a 12-digit base (基礎番号):

* companies registered by 設立登記: the 12-digit 会社法人等番号, first digit 0–5;
* 国の機関 and 地方公共団体: a base beginning ``00``;
* other bodies (unregistered associations, foreign companies, …): a base beginning ``7``.

Numbers are public. Look-ups follow the semantics of NTA's 法人番号 Web-API version 4:

* :meth:`CorporateNumberRegistry.get` — by up to 10 numbers (``num``), latest record or full
  history;
* :meth:`CorporateNumberRegistry.search` — by name (``name``): prefix or partial match on the
  name, furigana or English name, filters for prefecture and kind, closed bodies included or
  not, former names matched or not, 2,000 results a page;
* :meth:`CorporateNumberRegistry.changes` — records updated in a date range (``diff``), with
  prefecture and kind filters, 2,000 results a page.

Every record is a full snapshot with a ``process`` code, as NTA publishes them: assignment
(01), name change (11), domestic address change (12), foreign address change (13), closure
(21), revival (22), merger (71), and so on. The registry lives in ``corporate.sqlite3``; each
change returns only after it is durable.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date

from renkei import numbers
from renkei._core import numbers as _n
from renkei.datadir import DataDir, connect_sqlite
from renkei.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    QueryTooCostlyError,
)

PAGE_SIZE = 2000
MAX_NUMBERS_PER_GET = 10

#: 法人種別 (kind) codes of the Web-API.
KINDS: dict[str, str] = {
    "101": "国の機関",
    "201": "地方公共団体",
    "301": "株式会社",
    "302": "有限会社",
    "303": "合名会社",
    "304": "合資会社",
    "305": "合同会社",
    "399": "その他の設立登記法人",
    "401": "外国会社等",
    "499": "その他",
}

#: 処理区分 (process) codes.
PROCESSES: dict[str, str] = {
    "01": "新規",
    "11": "商号又は名称の変更",
    "12": "国内所在地の変更",
    "13": "国外所在地の変更",
    "21": "登記記録の閉鎖等",
    "22": "登記記録の復活等",
    "71": "吸収合併",
    "72": "吸収合併無効",
    "81": "商号の登記の抹消",
    "99": "削除",
}

#: 登記記録の閉鎖等の事由 (close cause) codes.
CLOSE_CAUSES: dict[str, str] = {
    "01": "清算の結了等",
    "11": "合併による解散等",
    "21": "登記官による閉鎖",
    "31": "その他の清算の結了等",
}

_GOVERNMENT_KINDS = {"101", "201"}
_REGISTERED_KINDS = {"301", "302", "303", "304", "305", "399"}
_PREFECTURE_RE = re.compile(r"^(0[1-9]|[1-3][0-9]|4[0-7]|99)$")
_CITY_RE = re.compile(r"^\d{3}$")
_POST_RE = re.compile(r"^\d{7}$")


@dataclass(frozen=True)
class Corporation:
    """One published record of a corporate number (a Web-API ``corporation`` element)."""

    corporate_number: str
    sequence_number: int
    process: str
    correct: int
    latest: int
    update_date: str
    change_date: str
    assignment_date: str
    name: str
    kind: str
    furigana: str = ""
    en_name: str = ""
    prefecture_name: str = ""
    city_name: str = ""
    street_number: str = ""
    prefecture_code: str = ""
    city_code: str = ""
    post_code: str = ""
    address_outside: str = ""
    close_date: str = ""
    close_cause: str = ""
    successor_corporate_number: str = ""
    change_cause: str = ""
    en_prefecture_name: str = ""
    en_city_name: str = ""
    en_address_outside: str = ""
    hihyoji: int = 0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Page:
    """A page of results: the Web-API envelope ``corporations{count, divideNumber, divideSize}``."""

    count: int
    divide_number: int
    divide_size: int
    last_update_date: str
    corporations: list[Corporation] = field(default_factory=list)


_FIELDS = [f for f in Corporation.__dataclass_fields__ if f not in ("corporate_number", "sequence_number")]
_ADDRESS_FIELDS = {
    "prefecture_name", "city_name", "street_number", "prefecture_code", "city_code", "post_code",
    "en_prefecture_name", "en_city_name",
}
_OUTSIDE_FIELDS = {"address_outside", "en_address_outside"}
_NAME_FIELDS = {"name", "furigana", "en_name"}

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS records (
    sequence_number  INTEGER PRIMARY KEY AUTOINCREMENT,
    corporate_number INTEGER NOT NULL,
    {", ".join(f"{f} {'INTEGER' if f in ('correct', 'latest', 'hihyoji') else 'TEXT'} NOT NULL" for f in _FIELDS)},
    name_key         TEXT NOT NULL,
    furigana_key     TEXT NOT NULL,
    en_name_key      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_number ON records(corporate_number, sequence_number);
CREATE INDEX IF NOT EXISTS records_update ON records(update_date);
CREATE INDEX IF NOT EXISTS records_latest_name ON records(latest, name_key);
"""


def normalize_name(s: str) -> str:
    """The search key of a name: NFKC, case-folded, spaces removed, hiragana as katakana.

    NFKC folds full-width Latin and half-width katakana, so ｶﾌﾞｼｷ and カブシキ match, as do
    ＡＢＣ and abc; the Web-API's fuzzy mode behaves the same way for these cases.
    """
    s = unicodedata.normalize("NFKC", s).casefold()
    s = "".join(chr(ord(c) + 0x60) if "\u3041" <= c <= "\u3096" else c for c in s)
    return re.sub(r"[\s\u3000・･]", "", s)


def _date(value: str | date | None, what: str) -> str:
    if value is None:
        return date.today().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    try:
        return date.fromisoformat(value).isoformat()
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{what} must be a date YYYY-MM-DD") from None


def _escape_like(s: str) -> str:
    return s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


SERVICE = "nta"


class CorporateNumberRegistry:
    """NTA's 法人番号 registry: assignment, changes and the public look-ups."""

    def __init__(
        self, data_dir: DataDir | str | os.PathLike[str], *, read_only: bool = False, query_seconds: float | None = None
    ) -> None:
        """``read_only``: a look-up connection (the service's readers; WAL lets them run beside
        the writer). ``query_seconds``: a look-up running longer is stopped with
        :class:`~renkei.errors.QueryTooCostlyError`, so one costly search cannot hold a reader."""
        self.data_dir = data_dir if isinstance(data_dir, DataDir) else DataDir(data_dir, SERVICE)
        if read_only:
            self._db = connect_sqlite(self.data_dir.file("corporate.sqlite3"), read_only=True)
        else:
            self._db = self.data_dir.connect("corporate.sqlite3")
            self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._query_seconds = query_seconds

    @contextmanager
    def _bounded(self) -> Iterator[None]:
        """Stop a look-up that runs past ``query_seconds`` (SQLite checks every 1,000 steps)."""
        if self._query_seconds is None:
            yield
            return
        deadline = time.monotonic() + self._query_seconds
        self._db.set_progress_handler(lambda: int(time.monotonic() > deadline), 1000)
        try:
            yield
        except sqlite3.OperationalError as e:
            if "interrupted" not in str(e):
                raise
            raise QueryTooCostlyError(
                f"the look-up ran longer than {self._query_seconds:g} s; narrow it (a longer name, a prefecture, "
                f"a kind)"
            ) from None
        finally:
            self._db.set_progress_handler(None, 0)

    @classmethod
    def init(cls, path: str | os.PathLike[str]) -> CorporateNumberRegistry:
        """Create (or complete) an NTA data directory and open its registry."""
        return cls(DataDir.init(path, SERVICE))

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> CorporateNumberRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ------------------------------------------------------------------------------

    def assign(
        self,
        *,
        name: str,
        kind: str,
        base: str | None = None,
        assignment_date: str | date | None = None,
        **details: str,
    ) -> Corporation:
        """Assign a corporate number and publish its first record (process 01).

        ``base`` is the 12-digit 基礎番号; it must fit ``kind`` (``00…`` for government bodies,
        first digit 0–5 for registered companies, ``7…`` for other bodies). Without a base, the
        next free base of the right range is taken (government and other bodies only: a
        registered company's base is its 会社法人等番号, which the registry cannot invent).
        """
        if kind not in KINDS:
            raise InvalidArgumentError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
        if not isinstance(name, str) or not name.strip():
            raise InvalidArgumentError("name must be a non-empty string")
        when = _date(assignment_date, "assignment_date")
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                base_value = self._base_for(kind, base)
                number = _n.corporate_check_digit(base_value) * 10**12 + base_value
                if self._latest(number) is not None:
                    raise AlreadyExistsError("this corporate number is already assigned")
                record = self._new_record(
                    number, process="01", update_date=when, change_date=when, assignment_date=when,
                    name=name, kind=kind, **details,
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return record

    def _base_for(self, kind: str, base: str | None) -> int:
        if base is None:
            if kind in _REGISTERED_KINDS:
                raise InvalidArgumentError("a registered company's base is its 会社法人等番号: pass base")
            low, high = (0, 10**10) if kind in _GOVERNMENT_KINDS else (7 * 10**11, 8 * 10**11)
            row = self._db.execute(
                "SELECT max(corporate_number % 1000000000000) FROM records WHERE"
                " corporate_number % 1000000000000 >= ? AND corporate_number % 1000000000000 < ?",
                (low, high),
            ).fetchone()
            value = low + 1 if row[0] is None else int(row[0]) + 1
            if value >= high:
                raise FailedPreconditionError("the base range of this kind is exhausted")
            return value
        text = base if isinstance(base, str) else str(base)
        value = _n.parse_digits("corporate", text, 12)
        digits = f"{value:012d}"
        if kind in _GOVERNMENT_KINDS and not digits.startswith("00"):
            raise InvalidArgumentError("bases of 国の機関 and 地方公共団体 begin with 00")
        if kind in _REGISTERED_KINDS and digits[0] not in "012345":
            raise InvalidArgumentError("a 会社法人等番号 base begins with a digit 0–5")
        if kind in ("401", "499") and not digits.startswith("7"):
            raise InvalidArgumentError("bases of other bodies begin with 7")
        return value

    def _new_record(self, number: int, **values: object) -> Corporation:
        self._validate_details(values)
        self._db.execute("UPDATE records SET latest = 0 WHERE corporate_number = ? AND latest = 1", (number,))
        row = {f: values.get(f, 0 if f in ("correct", "hihyoji") else "") for f in _FIELDS}
        row["latest"] = 1
        cols = ", ".join(["corporate_number", *_FIELDS, "name_key", "furigana_key", "en_name_key"])
        params = [
            number, *[row[f] for f in _FIELDS],
            normalize_name(str(row["name"])), normalize_name(str(row["furigana"])),
            normalize_name(str(row["en_name"])),
        ]
        cur = self._db.execute(f"INSERT INTO records({cols}) VALUES ({', '.join('?' * len(params))})", params)
        return Corporation(numbers.format_corporate_number(number), int(cur.lastrowid or 0), **row)  # type: ignore[arg-type]

    @staticmethod
    def _validate_details(values: dict[str, object]) -> None:
        unknown = set(values) - set(_FIELDS)
        if unknown:
            raise InvalidArgumentError(f"unknown field(s): {', '.join(sorted(unknown))}")
        for key, value in values.items():
            if key in ("correct", "latest", "hihyoji"):
                if value not in (0, 1):
                    raise InvalidArgumentError(f"{key} must be 0 or 1")
            elif not isinstance(value, str):
                raise InvalidArgumentError(f"{key} must be a string")
        checks = [
            ("prefecture_code", _PREFECTURE_RE, "a 都道府県コード 01–47 or 99"),
            ("city_code", _CITY_RE, "three digits"),
            ("post_code", _POST_RE, "seven digits"),
        ]
        for key, pattern, what in checks:
            value = values.get(key)
            if value and not pattern.match(str(value)):
                raise InvalidArgumentError(f"{key} must be {what}")
        if values.get("close_cause") and values["close_cause"] not in CLOSE_CAUSES:
            raise InvalidArgumentError("unknown close cause")
        successor = values.get("successor_corporate_number")
        if successor:
            numbers.parse_corporate_number(str(successor))

    def _change(
        self, number: str | int, process: str, change_date: str | date | None, **changes: object
    ) -> Corporation:
        value = numbers.parse_corporate_number(number) if isinstance(number, str) else int(number)
        when = _date(change_date, "change_date")
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                current = self._latest(value)
                if current is None:
                    raise NotFoundError("no such corporate number")
                if process != "22" and current.close_date and process in ("21", "11", "12", "13"):
                    raise FailedPreconditionError("this body is closed; revive it first")
                values = {f: getattr(current, f) for f in _FIELDS}
                values.update(process=process, update_date=date.today().isoformat(), change_date=when, **changes)
                record = self._new_record(value, **values)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return record

    def change_name(
        self, number: str | int, *, name: str, furigana: str = "", en_name: str = "",
        change_date: str | date | None = None, change_cause: str = "",
    ) -> Corporation:
        """A change of 商号又は名称 (process 11); the former name stays in the history."""
        if not isinstance(name, str) or not name.strip():
            raise InvalidArgumentError("name must be a non-empty string")
        return self._change(number, "11", change_date, name=name, furigana=furigana, en_name=en_name,
                            change_cause=change_cause)

    def change_address(
        self, number: str | int, *, change_date: str | date | None = None, **address: str
    ) -> Corporation:
        """A change of the domestic (process 12) or foreign (process 13) address."""
        unknown = set(address) - _ADDRESS_FIELDS - _OUTSIDE_FIELDS - {"change_cause"}
        if unknown or not address:
            raise InvalidArgumentError(f"address fields expected, got {', '.join(sorted(address)) or 'none'}")
        process = "13" if set(address) & _OUTSIDE_FIELDS else "12"
        return self._change(number, process, change_date, **address)

    def close_corporation(
        self, number: str | int, *, cause: str, close_date: str | date | None = None, successor: str = "",
    ) -> Corporation:
        """Closure of the registration record (process 21; 71 for absorption by a successor)."""
        when = _date(close_date, "close_date")
        if cause not in CLOSE_CAUSES:
            raise InvalidArgumentError(f"unknown close cause {cause!r}; expected one of {', '.join(CLOSE_CAUSES)}")
        process = "71" if successor and cause == "11" else "21"
        return self._change(number, process, when, close_date=when, close_cause=cause,
                            successor_corporate_number=successor)

    def revive(self, number: str | int, *, change_date: str | date | None = None) -> Corporation:
        """Revival of a closed record (process 22)."""
        return self._change(number, "22", change_date, close_date="", close_cause="", successor_corporate_number="")

    # -- reading ------------------------------------------------------------------------------

    def _rows(self, sql: str, params: Sequence[object]) -> list[Corporation]:
        cols = ", ".join(["corporate_number", "sequence_number", *_FIELDS])
        out = []
        for row in self._db.execute(sql.replace("*", cols, 1), params):
            out.append(Corporation(numbers.format_corporate_number(row[0]), *row[1:]))
        return out

    def _latest(self, number: int) -> Corporation | None:
        rows = self._rows("SELECT * FROM records WHERE corporate_number = ? AND latest = 1", (number,))
        return rows[0] if rows else None

    def _last_update(self) -> str:
        row = self._db.execute("SELECT max(update_date) FROM records").fetchone()
        return row[0] or ""

    def get(self, corporate_numbers: Iterable[str], *, history: bool = False) -> list[Corporation]:
        """Records of up to 10 numbers, in the order asked: the latest, or the full history."""
        wanted = [numbers.parse_corporate_number(n) for n in corporate_numbers]
        if not wanted:
            raise InvalidArgumentError("at least one corporate number is required")
        if len(wanted) > MAX_NUMBERS_PER_GET:
            raise InvalidArgumentError(f"at most {MAX_NUMBERS_PER_GET} numbers per request")
        with self._bounded():
            return self._get(wanted, history)

    def _get(self, wanted: list[int], history: bool) -> list[Corporation]:
        out: list[Corporation] = []
        for value in wanted:
            if history:
                out += self._rows("SELECT * FROM records WHERE corporate_number = ? ORDER BY sequence_number",
                                  (value,))
            else:
                latest = self._latest(value)
                if latest is not None:
                    out.append(latest)
        return out

    def search(
        self,
        name: str,
        *,
        mode: str = "prefix",
        target: str = "fuzzy",
        prefecture: str | None = None,
        kinds: Iterable[str] | None = None,
        include_closed: bool = True,
        include_former_names: bool = False,
        page: int = 1,
    ) -> Page:
        """Search by name (Web-API ``name``).

        ``mode``: ``"prefix"`` (前方一致) or ``"partial"`` (部分一致). ``target``: ``"fuzzy"``
        (name or furigana after :func:`normalize_name`), ``"exact"`` (the name as written) or
        ``"english"`` (the English name). ``include_former_names`` also matches names a body
        had before a change. Results are ordered by corporate number, 2,000 a page.
        """
        if not isinstance(name, str) or not name.strip():
            raise InvalidArgumentError("name must be a non-empty string")
        if mode not in ("prefix", "partial"):
            raise InvalidArgumentError("mode must be 'prefix' or 'partial'")
        if target not in ("fuzzy", "exact", "english"):
            raise InvalidArgumentError("target must be 'fuzzy', 'exact' or 'english'")
        key = name if target == "exact" else normalize_name(name)
        if not key:
            raise InvalidArgumentError("name has no searchable characters")
        pattern = ("" if mode == "prefix" else "%") + _escape_like(key) + "%"
        columns = {"fuzzy": ["name_key", "furigana_key"], "exact": ["name"], "english": ["en_name_key"]}[target]
        match = " OR ".join(f"{c} LIKE ? ESCAPE '\\'" for c in columns)
        params: list[object] = [pattern] * len(columns)
        scope = "" if include_former_names else "AND latest = 1"
        where = [f"corporate_number IN (SELECT corporate_number FROM records WHERE ({match}) {scope})", "latest = 1"]
        where, params = self._filters(where, params, prefecture, kinds)
        if not include_closed:
            where.append("close_date = ''")
        return self._page(where, params, page, "corporate_number")

    def changes(
        self,
        date_from: str | date,
        date_to: str | date,
        *,
        prefecture: str | None = None,
        kinds: Iterable[str] | None = None,
        page: int = 1,
    ) -> Page:
        """Every record updated from ``date_from`` to ``date_to`` inclusive (Web-API ``diff``)."""
        start, end = _date(date_from, "from"), _date(date_to, "to")
        if start > end:
            raise InvalidArgumentError("from must not be after to")
        where, params = self._filters(["update_date BETWEEN ? AND ?"], [start, end], prefecture, kinds)
        return self._page(where, params, page, "sequence_number")

    @staticmethod
    def _filters(
        where: list[str], params: list[object], prefecture: str | None, kinds: Iterable[str] | None
    ) -> tuple[list[str], list[object]]:
        if prefecture is not None:
            if not _PREFECTURE_RE.match(prefecture):
                raise InvalidArgumentError("prefecture must be a 都道府県コード 01–47 or 99")
            where.append("prefecture_code = ?")
            params.append(prefecture)
        if kinds is not None:
            given = list(kinds)
            if not given:
                raise InvalidArgumentError("kinds: none given")
            if len(given) > len(KINDS):
                raise InvalidArgumentError(f"kinds: {len(given)} given, there are only {len(KINDS)} kinds")
            bad = [k for k in given if k not in KINDS]
            if bad:
                # The message names a few, never all of what the caller sent.
                shown = ", ".join(repr(k[:8]) for k in bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
                raise InvalidArgumentError(f"unknown kind(s): {shown}; known: {', '.join(KINDS)}")
            unique = sorted(set(given))
            where.append(f"kind IN ({', '.join('?' * len(unique))})")
            params += unique
        return where, params

    def _page(self, where: list[str], params: list[object], page: int, order: str) -> Page:
        if not isinstance(page, int) or page < 1:
            raise InvalidArgumentError("page numbers start at 1")
        with self._bounded():
            return self._query_page(where, params, page, order)

    def _query_page(self, where: list[str], params: list[object], page: int, order: str) -> Page:
        condition = " AND ".join(where)
        count = int(self._db.execute(f"SELECT count(*) FROM records WHERE {condition}", params).fetchone()[0])
        pages = max(1, -(-count // PAGE_SIZE))
        if page > pages:
            raise InvalidArgumentError(f"page {page} is past the last page ({pages})")
        rows = self._rows(
            f"SELECT * FROM records WHERE {condition} ORDER BY {order} LIMIT ? OFFSET ?",
            [*params, PAGE_SIZE, (page - 1) * PAGE_SIZE],
        )
        return Page(count=count, divide_number=page, divide_size=pages, last_update_date=self._last_update(),
                    corporations=rows)


__all__ = ["CLOSE_CAUSES", "KINDS", "PROCESSES", "CorporateNumberRegistry", "Corporation", "Page"]
