"""個人番号通知書 at batch scale: what queuing a notice costs an assignment, and how fast J-LIS renders
the queue to PDFs — one per person, durable (fsync per file, folder fsync per batch, rows marked).

    .venv/bin/python -m bench.bench_notices [--count 100000] [--workers 2] [--thread-sample 2000]

In one fresh J-LIS data directory (temporary), same run:

* ``assign_batch`` of ``--count`` resident codes with notices queued (rows in the same
  transaction) beside ``assign_batch`` of as many others without (the baseline);
* one notice rendered to PDF bytes (reportlab + rl_accel, the CID fonts HeiseiMin-W3 /
  HeiseiKakuGo-W5) beside reportlab's floor: a one-line page with the same font;
* rendering ``--thread-sample`` queued notices in the calling thread (what ``--notice-workers 0``
  does), then all the remaining queue on ``--workers`` spawned processes (``--notice-workers N``):
  notices/s and the minutes the whole batch takes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import tempfile
import time
from pathlib import Path

from bench.common import best_rate, machine
from renkei.jlis.authority import NumberAuthority
from renkei.jlis.facts import FactsRegistry
from renkei.jlis.notices import NoticeContent, NoticeDesk, render
from renkei.jpki.profile import BasicFacts
from renkei.service.jlis.numbers import synthetic_residents


def _floor_pdf() -> bytes:
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf, invariant=True, pageCompression=0)
    c.setFont("HeiseiMin-W3", 11)
    c.drawString(60, 700, "個人番号通知書")
    c.showPage()
    c.save()
    return buf.getvalue()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=100_000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--thread-sample", type=int, default=2000)
    args = p.parse_args()
    print(f"`python -m bench.bench_notices --count {args.count} --workers {args.workers}` — {machine()}; "
          f"load average {os.getloadavg()[0]:.1f}\n")
    with tempfile.TemporaryDirectory() as tmp:
        jlis = NumberAuthority.init(Path(tmp) / "jlis")
        both = synthetic_residents(2 * args.count, 20261201)
        plain, queued = both[: args.count], both[args.count:]
        t = time.perf_counter()
        jlis.assign_batch(plain, notices=False)
        base = time.perf_counter() - t
        t = time.perf_counter()
        jlis.assign_batch(queued)
        with_notices = time.perf_counter() - t
        facts = FactsRegistry(jlis.data_dir)
        who = BasicFacts("番号 花子", dt.date(1990, 2, 28), "2", "東京都千代田区霞が関二丁目1番2号")
        t = time.perf_counter()
        facts.report_batch([(jlis.link_id(int(r)), "registration", "2020-01-01", who, "131016") for r in queued])
        reported = time.perf_counter() - t
        print("| step | time | per item | note |\n| --- | ---: | ---: | --- |")
        print(f"| assign_batch, no notices (baseline) | {base:.2f} s | {base / args.count * 1e6:.1f} µs | "
              f"{args.count:,} numbers, one transaction |")
        print(f"| assign_batch, notices queued | {with_notices:.2f} s | {with_notices / args.count * 1e6:.1f} µs | "
              f"× {with_notices / base:.2f} of the baseline |")
        print(f"| report_batch of the 4情報 | {reported:.2f} s | {reported / args.count * 1e6:.1f} µs | "
              f"one transaction (初期登録) |")

        sample = NoticeContent(1, "assigned", "123456789018", who, dt.date.today())
        render(sample)
        one = best_rate(lambda: render(sample), 1)
        floor = best_rate(_floor_pdf, 1)
        print(f"| render one notice to PDF bytes | {1e3 / one:.2f} ms | {one:,.0f}/s | "
              f"reportlab floor (one line, same font): {1e3 / floor:.2f} ms ({floor:,.0f}/s) |")

        desk = NoticeDesk(jlis.data_dir)
        t = time.perf_counter()
        done = desk.render_pending(args.thread_sample)
        thread = time.perf_counter() - t
        print(f"| render + write + fsync, in the thread | {thread:.2f} s | {thread / done * 1e3:.2f} ms | "
              f"{done:,} notices: {done / thread:,.0f}/s |")
        desk.close()
        pool = NoticeDesk(jlis.data_dir, workers=args.workers)
        t = time.perf_counter()
        rest = pool.render_pending()
        workers = time.perf_counter() - t
        pool.close()
        print(f"| render + write + fsync, {args.workers} worker processes | {workers:.1f} s | "
              f"{workers / rest * 1e3:.2f} ms | {rest:,} notices: {rest / workers:,.0f}/s, "
              f"{args.count / (rest / workers) / 60:.1f} min for {args.count:,} |")
        files = sum(1 for _ in (Path(tmp) / "jlis" / "notices").rglob("*.pdf"))
        size = sum(f.stat().st_size for f in (Path(tmp) / "jlis" / "notices").rglob("*.pdf"))
        assert files == args.count, files
        print(f"\n{files:,} PDFs, {size / files / 1024:.1f} KiB each; queue empty: "
              f"{NoticeDesk(jlis.data_dir).counts()}")
        facts.close()
        jlis.close()


if __name__ == "__main__":
    main()
