"""マイナポータル on any core front-end (docs/arch/store.md, issue #16): `renkei up --core-store …
--core-frontends 2` gives the portal both front-ends (`--core A,B`, `--linkage A,B`). A person
logs in (through A: the portal's first), sees やりとり履歴, お知らせ and 代理人; then A is killed
with SIGKILL and the SAME portal session keeps working through B — B knows A's session, the
notices and the delegation made through A (all on the core's store); a challenge A issued before
its death logs another person in through B, who accepts the delegation offered through A; a
fresh login works; あなたの情報 (the portal's own code for the session, an inquiry) runs
through B; and logging out ends the core's session on the store."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import time
from pathlib import Path

import psycopg
import pytest

from renkei.jpki.card import Card
from renkei.portal.reader import card_response
from tests.grpc_server import start_box
from tests.pg_cluster import PgCluster, pg_bindir
from tests.portal_helpers import (
    CHIYODA,
    PIN,
    YOKOHAMA,
    Visit,
    card_path,
    demo_number,
    inquire_about,
    portal_url,
    register_resident,
    send_notice,
)


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, html
    return m.group(1)


def _dead(pid: int, timeout: float = 10.0) -> None:
    """Wait until ``pid`` is no longer running (gone, or a zombie its parent has not reaped)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return
        if state == "Z":
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} still runs")


@pytest.mark.slow
@pytest.mark.skipif(pg_bindir() is None, reason="PostgreSQL server binaries are not installed")
def test_the_portal_session_survives_its_front_end(tmp_path: Path) -> None:
    cluster = PgCluster.start()
    try:
        url = cluster.create_database("renkei_frontends_portal")
        box = start_box(tmp_path / "box", "--core-store", url, "--core-frontends", "2")
        try:
            # The portal was given both front-ends, the public port's and the mutual-TLS one's.
            argv = Path(f"/proc/{box.pid('portal')}/cmdline").read_bytes().decode().split("\0")
            assert argv[argv.index("--core") + 1] == ",".join(box.target(c, "public_grpc") for c in ("core", "core-2"))
            assert argv[argv.index("--linkage") + 1] == ",".join(box.target(c) for c in ("core", "core-2"))
            seq = inquire_about(box, demo_number(box, 1))
            notice = send_notice(box, CHIYODA, demo_number(box, 1), "住民税の通知書を発送しました",
                                 "令和8年度の税額決定通知書を発送しました。")
            register_resident(box, 1)  # 千代田区 and 横浜市 hold person 1 (acquired through A)

            principal = Visit(portal_url(box))
            assert principal.login(box, 1).status_code == 303
            assert f'<tr data-sequence="{seq}">' in principal.get("/records").text
            assert f'data-notice="{notice}"' in principal.get("/notices").text
            until = (dt.date.today() + dt.timedelta(days=30)).isoformat()
            page = principal.post("/delegation", {"csrf": _csrf(principal.get("/delegation").text), "label": "母",
                                                  "valid_until": until, "scope_records": "on",
                                                  "scope_notices": "on"}).text
            code = re.search(r'<pre id="offer-code">([^<]+)</pre>', page)
            ids = re.findall(r'<tr data-delegation="(\d+)">', page)
            assert code and ids, page
            did = int(ids[0])
            # Person 2 opens the login page now: the challenge comes from A.
            agent = Visit(portal_url(box))
            message, csrf = agent.login_page()

            os.kill(box.pid("core"), signal.SIGKILL)  # front-end A dies; `renkei up` does not restart it
            _dead(box.pid("core"))
            killed = time.monotonic()

            # The SAME portal session, through B: records (proofs checked), notices, delegations.
            records = principal.get("/records")
            assert records.status_code == 200, records.text
            first = time.monotonic() - killed
            row = re.search(rf'<tr data-sequence="{seq}">(.*?)</tr>', records.text, re.S)
            assert row and "✔ 検証済み" in row.group(1), records.text
            notices = principal.get("/notices")
            assert notices.status_code == 200 and f'data-notice="{notice}"' in notices.text
            assert "住民税の通知書を発送しました" in principal.get(f"/notices/{notice}").text
            delegations = principal.get("/delegation")
            assert delegations.status_code == 200 and f'<tr data-delegation="{did}">' in delegations.text

            # A's challenge, signed after A died, logs person 2 in through B; they accept the
            # offer made through A and read the principal's records and notices as agent.
            with Card(card_path(box, 2), box.root / "jpki") as card:
                answer = card_response(card, PIN, message)
            r = agent.post("/login", {"csrf": csrf, "response": json.dumps(answer)})
            assert r.status_code == 303 and r.headers["location"] == "/records", r.text
            accept = {"csrf": _csrf(agent.get("/delegation").text), "code": code.group(1)}
            assert agent.post("/delegation/accept", accept).status_code == 303
            view = agent.get(f"/delegation/{did}/records")
            assert view.status_code == 200 and f'<tr data-sequence="{seq}">' in view.text
            assert f'data-notice="{notice}"' in agent.get(f"/delegation/{did}/notices").text
            ops = re.findall(r'data-action="([a-z_]+)"', principal.get("/operations").text)
            assert ops[:4] == ["view_notices", "view_records", "accept", "delegate"], ops

            # A fresh login (challenge and login both through B).
            fresh = Visit(portal_url(box))
            assert fresh.login(box, 3).status_code == 303 and fresh.get("/records").status_code == 200

            # あなたの情報 through B: the portal's code for the session, the inquiries, the answers.
            page = principal.get("/myinfo")
            assert page.status_code == 200
            r = principal.post("/myinfo", {"csrf": _csrf(page.text), "a1": "on", "a2": "on"})
            assert r.status_code == 200, r.text
            states = {int(a): s for a, s in re.findall(r'data-provider="(\d+)" data-state="([a-z_]+)"', r.text)}
            assert states == {YOKOHAMA: "provided", CHIYODA: "no_data"}, states
            # Logging out at the portal ends the core's session too (a row of the store, through B).
            with psycopg.connect(url, autocommit=True) as conn:
                before = conn.execute("SELECT count(*) FROM disclosure.sessions").fetchone()
                assert principal.post("/logout", {"csrf": _csrf(principal.get("/records").text)}).status_code == 303
                after = conn.execute("SELECT count(*) FROM disclosure.sessions").fetchone()
            assert before is not None and after is not None and after[0] == before[0] - 1, (before, after)
            assert principal.get("/records").headers["location"] == "/login"
            print(f"\nportal on front-ends: the first page after A's kill -9 served {first:.2f} s later (through B)")
        finally:
            rc, out = box.terminate()
        assert rc == 0, out
    finally:
        cluster.stop()
