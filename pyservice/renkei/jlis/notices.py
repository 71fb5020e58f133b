"""個人番号通知書: the notice J-LIS produces for the person whenever it assigns or changes a number.

番号法 第7条第1項: the person is told their number when it is designated (since 2020 by the
個人番号通知書, which J-LIS prints and mails for the municipality); a changed number (第7条第2項)
is notified the same way. Here:

* the notice is **queued in the same transaction** as the assignment or change (``notices`` in
  ``jlis.sqlite3``, by :class:`renkei.jlis.authority.NumberAuthority`): a number that exists has a
  notice to come, whatever crashes;
* a renderer turns queued notices into one PDF each, ``notices/<shard>/<id>.pdf`` (0600) in
  J-LIS's data directory, once the person's 基本4情報 are known (a notice addresses a person:
  one queued before the resident register reported the facts waits for them). Rendering is
  asynchronous: the J-LIS process drains the queue in the background
  (:meth:`NoticeDesk.render_pending`), on worker processes when asked (100,000 notices of a batch
  assignment take minutes of CPU: see docs/BENCHMARKS.md), so assigning a batch never waits for PDFs;
* the PDF (reportlab, the built-in Japanese CID fonts HeiseiMin-W3 / HeiseiKakuGo-W5, no font
  file) carries the number, the 4情報 and the notice's date; a file is written to a temporary
  name, fsynced and renamed, and the directory fsynced, before the notice counts as rendered.

The number is never logged: log lines name the notice id only.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import io
import logging
import multiprocessing
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from renkei.datadir import DataDir, fsync_dir, make_private_dir
from renkei.jlis.facts import SCHEMA as FACTS_SCHEMA
from renkei.jpki.profile import ERAS, JST, SEXES, BasicFacts
from renkei.numbers import format_individual_number

log = logging.getLogger("renkei.jlis.notices")

SCHEMA = """
CREATE TABLE IF NOT EXISTS notices (
    notice_id   INTEGER PRIMARY KEY,
    link_id     BLOB NOT NULL CHECK (length(link_id) = 16),
    number      INTEGER NOT NULL,
    event       TEXT NOT NULL CHECK (event IN ('assigned', 'changed')),
    created_at  TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'rendered')),
    rendered_at TEXT,
    file        TEXT
);
CREATE INDEX IF NOT EXISTS notices_pending ON notices(state) WHERE state = 'pending';
"""
INSERT = "INSERT INTO notices(link_id, number, event, created_at) VALUES (?, ?, ?, ?)"
FOLDER = "notices"
ISSUER = "地方公共団体情報システム機構"
_ERA_NAMES = {5: "令和", 4: "平成", 3: "昭和", 2: "大正", 1: "明治"}
_FONTS_READY = False
_FONT_LOCK = threading.Lock()


def wareki(day: dt.date) -> str:
    """A date in the Japanese era calendar (令和7年4月1日; 元年 for the first year)."""
    for era, start in ERAS:
        if day >= start:
            year = day.year - start.year + 1
            return f"{_ERA_NAMES[era]}{'元' if year == 1 else year}年{day.month}月{day.day}日"
    return f"{day.year}年{day.month}月{day.day}日"


def grouped(number: str) -> str:
    """A My Number as printed: three groups of four digits."""
    return f"{number[0:4]} {number[4:8]} {number[8:12]}"


@dataclass(frozen=True)
class NoticeContent:
    """What one notice says (``repr`` hides it). Picklable: it travels to the worker processes."""

    notice_id: int
    event: str
    number: str
    facts: BasicFacts
    issued_on: dt.date

    def __repr__(self) -> str:
        return f"NoticeContent(notice_id={self.notice_id}, event={self.event!r}, <personal data withheld>)"


def _fonts() -> None:
    global _FONTS_READY
    with _FONT_LOCK:
        if _FONTS_READY:
            return
        from reportlab.pdfbase import pdfmetrics
        from reportlab.pdfbase.cidfonts import UnicodeCIDFont

        pdfmetrics.registerFont(UnicodeCIDFont("HeiseiMin-W3"))
        pdfmetrics.registerFont(UnicodeCIDFont("HeiseiKakuGo-W5"))
        _FONTS_READY = True


def render(notice: NoticeContent) -> bytes:
    """The notice as a one-page A4 PDF."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    _fonts()
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4, invariant=True, pageCompression=0)
    c.setTitle("個人番号通知書")
    c.setAuthor(ISSUER)
    width, height = A4
    f = notice.facts
    # The address block (window envelope).
    c.setFont("HeiseiMin-W3", 11)
    c.drawString(60, height - 80, f.address)
    c.drawString(60, height - 100, f"{f.name}　様")
    c.setFont("HeiseiKakuGo-W5", 20)
    c.drawCentredString(width / 2, height - 170, "個人番号通知書")
    c.setFont("HeiseiMin-W3", 11)
    lead = ("あなたの個人番号が変更されましたので、新しい個人番号をお知らせします。" if notice.event == "changed"
            else "あなたの個人番号（マイナンバー）をお知らせします。")
    c.drawString(60, height - 215, lead)
    rows = [("個人番号", grouped(notice.number)), ("氏名", f.name),
            ("生年月日", f"{wareki(f.birth)}（{f.birth.year}年）"), ("性別", SEXES[f.sex]), ("住所", f.address)]
    y = height - 260
    for label, value in rows:
        c.setFont("HeiseiKakuGo-W5", 11)
        c.drawString(70, y, label)
        c.setFont("HeiseiMin-W3", 13 if label == "個人番号" else 11)
        c.drawString(160, y, value)
        c.line(60, y - 8, width - 60, y - 8)
        y -= 34
    c.setFont("HeiseiMin-W3", 9)
    notes = ["この通知書は、個人番号を証明する書類や本人確認書類としては利用できません。",
             "個人番号カードの交付を申請するときは、同封の交付申請書をご利用ください。",
             "個人番号は、法律で定められた手続以外で他人に提供しないでください。"]
    for i, text in enumerate(notes):
        c.drawString(60, y - 20 - 16 * i, text)
    c.setFont("HeiseiMin-W3", 10)
    c.drawString(60, 120, f"発行日　{wareki(notice.issued_on)}")
    c.drawString(60, 102, f"発行者　{ISSUER}")
    c.drawString(60, 84, f"通知書番号　{notice.notice_id:09d}")
    c.showPage()
    c.save()
    return buf.getvalue()


def _render_many(notices: list[NoticeContent]) -> list[bytes]:
    return [render(n) for n in notices]


_SYNC_THREADS = 8


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def notice_path(root: Path, notice_id: int) -> Path:
    """``notices/<shard>/<id>.pdf``: 1,000 notices a folder."""
    return root / f"{notice_id // 1000:06d}" / f"{notice_id:09d}.pdf"


@dataclass(frozen=True)
class NoticeInfo:
    """A notice as J-LIS lists it (no number, no facts)."""

    notice_id: int
    event: str
    created_at: str
    state: str
    rendered_at: str | None
    file: str | None


class NoticeDesk:
    """Renders J-LIS's queued notices (its own connection to ``jlis.sqlite3``).

    ``workers`` > 0 renders on that many worker processes (spawned, so the serving process's
    threads are not forked); 0 renders in the calling thread."""

    BATCH = 500

    def __init__(self, data_dir: DataDir, *, workers: int = 0) -> None:
        self.data_dir = data_dir
        self.root = data_dir.path / FOLDER
        self._db = data_dir.connect("jlis.sqlite3")
        self._db.executescript(SCHEMA)
        self._db.executescript(FACTS_SCHEMA)
        self._lock = threading.Lock()
        self._workers = workers
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._db.close()

    def _executor(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                self._workers, mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = dict(self._db.execute("SELECT state, count(*) FROM notices GROUP BY state").fetchall())
            waiting = self._db.execute(
                "SELECT count(*) FROM notices n WHERE n.state = 'pending' AND NOT EXISTS "
                "(SELECT 1 FROM persons p WHERE p.link_id = n.link_id)").fetchone()[0]
        return {"pending": int(rows.get("pending", 0)), "rendered": int(rows.get("rendered", 0)),
                "waiting_for_facts": int(waiting)}

    def notices(self, *, state: str | None = None, limit: int = 100) -> list[NoticeInfo]:
        sql = "SELECT notice_id, event, created_at, state, rendered_at, file FROM notices"
        args: list[object] = []
        if state is not None:
            sql += " WHERE state = ?"
            args.append(state)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY notice_id DESC LIMIT ?", [*args, int(limit)]).fetchall()
        return [NoticeInfo(int(i), e, c, s, r, f) for i, e, c, s, r, f in rows]

    def of_person(self, link_id: bytes) -> list[NoticeInfo]:
        with self._lock:
            rows = self._db.execute(
                "SELECT notice_id, event, created_at, state, rendered_at, file FROM notices WHERE link_id = ? "
                "ORDER BY notice_id", (bytes(link_id),)).fetchall()
        return [NoticeInfo(int(i), e, c, s, r, f) for i, e, c, s, r, f in rows]

    def _ready(self, limit: int) -> list[NoticeContent]:
        """Queued notices whose person has 基本4情報 (the oldest first)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT n.notice_id, n.event, n.number, n.created_at, p.name, p.birth, p.sex, p.address "
                "FROM notices n JOIN persons p ON p.link_id = n.link_id WHERE n.state = 'pending' "
                "ORDER BY n.notice_id LIMIT ?", (limit,)).fetchall()
        out = []
        for notice_id, event, number, created, name, birth, sex, address in rows:
            issued = dt.datetime.fromisoformat(created).astimezone(JST).date()
            out.append(NoticeContent(int(notice_id), event, format_individual_number(int(number)),
                                     BasicFacts(name, dt.date.fromisoformat(birth), sex, address), issued))
        return out

    def render_pending(self, limit: int | None = None) -> int:
        """Render queued notices (at most ``limit``; all that are ready when None); returns how many.
        Each batch is durable (files fsynced, folders fsynced, rows marked) before the next."""
        done = 0
        while limit is None or done < limit:
            batch = self._ready(self.BATCH if limit is None else min(self.BATCH, limit - done))
            if not batch:
                break
            self._render_batch(batch)
            done += len(batch)
        return done

    def _render_batch(self, batch: list[NoticeContent]) -> None:
        if self._workers > 0:
            size = max(1, len(batch) // (4 * self._workers))
            chunks = [batch[i:i + size] for i in range(0, len(batch), size)]
            pdfs = [pdf for part in self._executor().map(_render_many, chunks) for pdf in part]
        else:
            pdfs = _render_many(batch)
        make_private_dir(self.root)
        folders: set[Path] = set()
        staged: list[tuple[Path, Path]] = []
        written: list[tuple[int, str]] = []
        for notice, pdf in zip(batch, pdfs, strict=True):
            path = notice_path(self.root, notice.notice_id)
            if path.parent not in folders:
                make_private_dir(path.parent)
                folders.add(path.parent)
            tmp = path.with_name(f".{path.name}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.fchmod(fd, 0o600)
                os.write(fd, pdf)
            finally:
                os.close(fd)
            staged.append((tmp, path))
            written.append((notice.notice_id, str(path.relative_to(self.data_dir.path))))
        # Every file on disk before it is renamed into place (the flushes in parallel: the disk
        # takes them together), the folders after the renames, the rows last.
        with concurrent.futures.ThreadPoolExecutor(_SYNC_THREADS) as sync:
            list(sync.map(_fsync_file, (tmp for tmp, _ in staged)))
        for tmp, path in staged:
            os.replace(tmp, path)
        for folder in folders:
            fsync_dir(folder)
        fsync_dir(self.root)
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("UPDATE notices SET state = 'rendered', rendered_at = ?, file = ? "
                                     "WHERE notice_id = ?", [(now, f, i) for i, f in written])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        log.info("rendered %d notices (ids %d to %d)", len(written), written[0][0], written[-1][0])


__all__ = ["FOLDER", "INSERT", "SCHEMA", "NoticeContent", "NoticeDesk", "NoticeInfo", "grouped", "notice_path",
           "render", "wareki"]
