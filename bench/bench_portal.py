"""マイナポータル: server-side login and やりとり履歴 page times, beside a trivial endpoint.

    .venv/bin/python -m bench.bench_portal [--records 1000] [--logins 200] [--views 200] [--fetches 100]

Starts a demo box (``renkei up --demo``: every service its own process on loopback, the portal
among them), has 厚生労働大臣 make inquiries about demo card holder 1 until the person has
``--records`` ledger records (each inquiry is a 照会 record and its 提供 record), then over HTTP:

* **login**: GET /login (the core's challenge), the card signs (client side, not timed), POST
  /login — the portal's JPKI check (chain, validity, OCSP cache), the relay to the core's Login;
* **やりとり履歴, first view**: the first GET /records of a session — all the person's records
  fetched from the core with their proofs and every proof checked by the portal, 50 rows rendered;
* **やりとり履歴, later views**: GET /records again (only records newer than the newest known are
  fetched), with a filter and a page number;
* **あなたの情報**: POST /myinfo — the portal's inquiry as its own agency through the
  intermediate servers (照会 and 提供 recorded, the answer sealed by 横浜市's mid, opened and
  verified by the portal), for one agency (横浜市: its 地方税 副本) and for all four it may ask
  (concurrently; two of them do not hold the person);
* **baseline**: GET /health of the same portal process (Starlette + uvicorn and nothing else).

Times are server-side: the portal's ``Server-Timing`` header (request received → response
started), so the client's own work is not counted; the client round trip is shown beside them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import machine
from renkei import client
from renkei._proto.renkei.v1 import linkage_service_pb2 as lpb
from renkei.jpki.card import Card
from renkei.portal.reader import card_response
from tests.grpc_server import RunningBox, start_box
from tests.portal_helpers import AFFAIR, CHIYODA, ITEM, MINISTER, PIN, Visit, card_path, demo_number, register_resident
from tests.provision_helpers import inquiry


def portal_url(box: RunningBox) -> str:
    # The address itself (the client sends the cookies by hand): "localhost" would cost a failed
    # IPv6 attempt per connection on the client's side.
    return f"http://{box.info['services']['portal']['http']}"


def _server_ms(r: httpx.Response) -> float:
    timing = r.headers["server-timing"]
    return float(timing.split("dur=", 1)[1])


def _p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def _codes(box: RunningBox, agency: int, number: str) -> bytes:
    principal = f"agency-{agency}"
    with box.channel(principal) as core, box.channel(principal, "jlis") as jlis:
        codes, status = client.acquire_codes(client.LinkageServiceStub(core), client.NumberServiceStub(jlis),
                                             [number], timeout=60)
    assert (status == 0).all()
    return codes[:16]


def make_records(box: RunningBox, records: int) -> None:
    number = demo_number(box, 1)
    _codes(box, CHIYODA, number)
    code = _codes(box, MINISTER, number)
    with box.channel(f"agency-{MINISTER}") as ch:
        stub = client.LinkageServiceStub(ch)
        for _ in range(records // 2):  # a 照会 and its 提供 each
            r: lpb.InquireResponse = stub.Inquire(inquiry(code, AFFAIR, CHIYODA, (ITEM,)), timeout=60)
            assert r.provision_record_sequence > r.record_sequence


def login(box: RunningBox, card: Card) -> tuple[Visit, float, float, float]:
    """A logged-in visit; (server ms of GET /login, server ms of POST /login, client ms of POST)."""
    v = Visit(portal_url(box))
    page = v.get("/login")
    get_ms = _server_ms(page)
    message, csrf = v.login_page_from(page.text)
    answer = json.dumps(card_response(card, PIN, message))
    t = time.perf_counter()
    r = v.post("/login", {"csrf": csrf, "response": answer})
    client_ms = (time.perf_counter() - t) * 1000
    assert r.status_code == 303, r.text
    return v, get_ms, _server_ms(r), client_ms


def row(what: str, server: list[float], client_rt: list[float] | None, base: float, note: str) -> str:
    p95 = _p(server, 95)
    rt = f"{_p(client_rt, 95):.1f}" if client_rt else "–"
    return (f"| {what} | {len(server)} | {statistics.median(server):.2f} | {p95:.2f} | {rt} | "
            f"{p95 / base:,.0f}× | {note} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1000)
    ap.add_argument("--logins", type=int, default=200)
    ap.add_argument("--views", type=int, default=200)
    ap.add_argument("--first-views", type=int, default=40)
    ap.add_argument("--fetches", type=int, default=100)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="renkei-bench-portal-") as tmp:
        box = start_box(Path(tmp) / "box", persons=0)
        try:
            t = time.perf_counter()
            make_records(box, args.records)
            print(f"{args.records} records made in {time.perf_counter() - t:.1f} s")
            with Card(card_path(box, 1), box.root / "jpki") as card:
                base_v = Visit(portal_url(box))
                for _ in range(50):
                    base_v.get("/health")
                health = [_server_ms(base_v.get("/health")) for _ in range(args.views)]
                health_rt = []
                for _ in range(args.views):
                    t = time.perf_counter()
                    base_v.get("/health")
                    health_rt.append((time.perf_counter() - t) * 1000)
                login(box, card)  # warm: the OCSP answer and the chain cached, as for a card seen lately
                gets, posts, posts_rt = [], [], []
                for _ in range(args.logins):
                    _v, g, p, c = login(box, card)
                    gets.append(g)
                    posts.append(p)
                    posts_rt.append(c)
                first, first_rt, total = [], [], 0
                for _ in range(args.first_views):
                    v = login(box, card)[0]
                    t = time.perf_counter()
                    r = v.get("/records")
                    first_rt.append((time.perf_counter() - t) * 1000)
                    first.append(_server_ms(r))
                    total = int(r.text.split("<p>", 2)[2].split(" 件", 1)[0]) if " 件" in r.text else 0
                later, later_rt = [], []
                for i in range(args.views):
                    path = "/records" if i % 2 else f"/records?agency={CHIYODA}&page={1 + i % 5}"
                    t = time.perf_counter()
                    r = v.get(path)
                    later_rt.append((time.perf_counter() - t) * 1000)
                    assert r.status_code == 200 and "検証失敗" not in r.text
                    later.append(_server_ms(r))
                register_resident(box, 1)  # 千代田区 and 横浜市 hold them; 横浜市 has their 地方税 副本
                one, one_rt, four, four_rt = [], [], [], []
                for i in range(args.fetches + 5):
                    csrf = v.get("/myinfo").text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
                    chosen = {"a2": "on"} if i % 2 else {"a1": "on", "a2": "on", "a3": "on", "a5": "on"}
                    t = time.perf_counter()
                    r = v.post("/myinfo", {"csrf": csrf, **chosen})
                    rt = (time.perf_counter() - t) * 1000
                    assert r.status_code == 200 and 'data-provider="2" data-state="provided"' in r.text, r.text
                    if i >= 5:  # the first few warm the channels and the session's code
                        (one if i % 2 else four).append(_server_ms(r))
                        (one_rt if i % 2 else four_rt).append(rt)
        finally:
            box.terminate()
    base = _p(health, 95)
    print(f"\n`python -m bench.bench_portal --records {args.records}` — {machine()}")
    print(f"やりとり履歴 rows of the person: {total} (照会 with their 提供), {args.records} records\n")
    print("| what | n | p50 ms | p95 ms | p95 round trip ms | p95 / baseline | note |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    print(row("GET /health (baseline)", health, health_rt, base, "Starlette + uvicorn, nothing else"))
    print(row("GET /login", gets, None, base, "the core's challenge (gRPC over TLS)"))
    print(row("POST /login", posts, posts_rt, base, "JPKI check (warm OCSP cache) + the core's Login"))
    print(row("GET /records, first view", first, first_rt, base,
              f"{args.records} records and proofs fetched and checked, 50 rows rendered"))
    print(row("GET /records, later views", later, later_rt, base, "new records only; filter, page"))
    print(row("POST /myinfo, one agency", one, one_rt, base,
              "あなたの情報: inquiry as agency 7, 横浜市's mid seals its 副本, opened + verified"))
    print(row("POST /myinfo, four agencies", four, four_rt, base,
              "four inquiries at once (provided, no data, 2 × not holding)"))


if __name__ == "__main__":
    main()
