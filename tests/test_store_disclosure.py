"""マイナポータル's side of the core on either store driver (docs/arch/store.md, issue #16): the
login challenge's key is a key file of the data directory, sessions and used challenges are rows
of the core's store, and notices and delegations go through ``open_database`` — so two
``Disclosure`` instances on one data directory and store (two front-ends) accept each other's
challenges, refuse each other's replays, and know each other's sessions, notices and
delegations."""

from __future__ import annotations

import logging
import sqlite3
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from renkei.datadir import DataDir
from renkei.errors import (
    FailedPreconditionError,
    KeyFileError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnauthenticatedError,
)
from renkei.ledger import Ledger, open_ledger
from renkei.linkage import disclosure as disclosure_module
from renkei.linkage.delegation import DelegationBook
from renkei.linkage.disclosure import (
    CHALLENGE_KEY,
    CHALLENGE_TTL,
    PSEUDONYM_KEY,
    SESSION_TTL,
    Disclosure,
    LoginStore,
    card_key_id,
    login_message,
    session_hash,
)
from renkei.linkage.notices import NoticeBox
from renkei.linkage.registry import AgencyRegistry
from renkei.service.core import add_later_keys, init_data_dir
from renkei.store import store_conninfo
from tests.conftest import store_url


@dataclass
class FrontEnd:
    """What one core front-end holds of the person's side."""

    registry: AgencyRegistry
    logins: LoginStore
    notices: NoticeBox
    delegations: DelegationBook
    disclosure: Disclosure

    def close(self) -> None:
        for c in (self.notices, self.delegations, self.logins, self.registry):
            c.close()


def front_end(d: DataDir, ledger: Ledger) -> FrontEnd:
    registry = AgencyRegistry(d)
    logins, notices, delegations = LoginStore(d), NoticeBox(d), DelegationBook(d)
    disclosure = Disclosure(registry, ledger, d.secret_key(PSEUDONYM_KEY), logins, d.secret_key(CHALLENGE_KEY),
                            notices, delegations)
    return FrontEnd(registry, logins, notices, delegations, disclosure)


@dataclass
class Core:
    data_dir: DataDir
    ledger: Ledger
    a: FrontEnd
    b: FrontEnd


@pytest.fixture(params=["embedded", "postgresql"])
def core(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Core]:
    d = init_data_dir(tmp_path / "core", store=store_url(request, request.param))
    ledger = open_ledger(d, background=False)
    a, b = front_end(d, ledger), front_end(d, ledger)
    yield Core(d, ledger, a, b)
    a.close()
    b.close()
    ledger.close()


class Card:
    def __init__(self, registry: AgencyRegistry, person: int) -> None:
        self._key = Ed25519PrivateKey.generate()
        public = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.id = card_key_id(public)
        registry.register_card_key(self.id, public, person)

    def sign(self, challenge: bytes) -> bytes:
        return self._key.sign(login_message(challenge))


def test_the_challenge_key_is_a_private_key_file_made_by_init_and_kept(tmp_path: Path) -> None:
    d = init_data_dir(tmp_path / "core")
    key = d.keys / f"{CHALLENGE_KEY}.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and len(key.read_bytes()) == 32
    before = key.read_bytes()
    init_data_dir(tmp_path / "core")  # init again: kept, never replaced
    assert key.read_bytes() == before
    # A data directory from before the key: init completes it (nothing durable depends on it).
    key.unlink()
    init_data_dir(tmp_path / "core")
    assert key.exists() and key.read_bytes() != before and stat.S_IMODE(key.stat().st_mode) == 0o600


def test_serve_adds_the_challenge_key_to_an_older_directory_and_never_replaces_one(tmp_path: Path) -> None:
    d = init_data_dir(tmp_path / "core")
    key = d.keys / f"{CHALLENGE_KEY}.key"
    key.unlink()  # a directory from before the key
    add_later_keys(d)  # what `core serve` does before it opens the logins
    made = key.read_bytes()
    assert len(made) == 32 and stat.S_IMODE(key.stat().st_mode) == 0o600
    add_later_keys(d)
    assert key.read_bytes() == made
    key.chmod(0o644)  # widened: refused, not replaced
    with pytest.raises(KeyFileError, match="readable by others"):
        add_later_keys(d)
    assert key.read_bytes() == made


def test_a_challenge_from_one_front_end_logs_in_at_the_other_once(core: Core) -> None:
    card = Card(core.a.registry, 3)
    c = core.a.disclosure.create_challenge(b"")  # the portal's login page: bound to no key
    s = core.b.disclosure.login(card.id, c.challenge, card.sign(c.challenge))
    assert s.token and s.expires_at > datetime.now(UTC) + SESSION_TTL - timedelta(minutes=1)
    # The replay is refused at either front-end, with the same signature or a fresh one.
    for fe in (core.a, core.b):
        with pytest.raises(UnauthenticatedError, match="login refused"):
            fe.disclosure.login(card.id, c.challenge, card.sign(c.challenge))
    # A challenge bound to the card, from B, used at A.
    c2 = core.b.disclosure.create_challenge(card.id)
    assert core.a.disclosure.login(card.id, c2.challenge, card.sign(c2.challenge)).token != s.token
    assert core.a.logins.counts() == (2, 2)


def test_a_session_made_at_one_front_end_reads_at_the_other_and_logs_out_everywhere(core: Core) -> None:
    card = Card(core.a.registry, 5)
    c = core.a.disclosure.create_challenge(card.id)
    s = core.a.disclosure.login(card.id, c.challenge, card.sign(c.challenge))
    assert core.b.disclosure.person_of(s.token) == 5 == core.a.disclosure.person_of(s.token)
    page, whose = core.b.disclosure.my_records(s.token, None, 10)
    assert whose == s.pseudonym and page.records == []
    with pytest.raises(UnauthenticatedError, match="no such session"):
        core.b.disclosure.person_of(s.token + "x")
    # The store never holds the token itself, only its hash.
    assert core.a.logins.session(s.token, datetime.now(UTC)) is not None
    assert core.a.logins._db.one("SELECT count(*) FROM sessions WHERE token_hash = ?", (s.token.encode(),)) == (0,)
    assert core.a.logins._db.one("SELECT count(*) FROM sessions WHERE token_hash = ?", (session_hash(s.token),)) == (1,)
    # Logged out at B: gone at A at once (no cache).
    assert core.b.disclosure.logout(s.token) and not core.b.disclosure.logout(s.token)
    with pytest.raises(UnauthenticatedError):
        core.a.disclosure.my_records(s.token, None, 10)
    assert core.a.logins.counts() == (0, 1)


def test_sessions_and_used_challenges_expire_and_are_swept(core: Core, monkeypatch: pytest.MonkeyPatch) -> None:
    card = Card(core.a.registry, 1)
    c = core.a.disclosure.create_challenge(card.id)
    s = core.a.disclosure.login(card.id, c.challenge, card.sign(c.challenge))
    now = datetime.now(UTC)
    assert core.b.logins.session(s.token, now + SESSION_TTL - timedelta(seconds=5)) is not None
    assert core.b.logins.session(s.token, now + SESSION_TTL + timedelta(seconds=1)) is None
    # An expired challenge is refused (signed correctly, never used).
    monkeypatch.setattr(disclosure_module, "CHALLENGE_TTL", timedelta(seconds=-1))
    old = core.a.disclosure.create_challenge(card.id)
    with pytest.raises(UnauthenticatedError, match="login refused"):
        core.b.disclosure.login(card.id, old.challenge, card.sign(old.challenge))
    monkeypatch.undo()
    # A later login sweeps what expired (the session; the used challenge once past the skew margin).
    later = now + SESSION_TTL + CHALLENGE_TTL + timedelta(minutes=2)
    assert core.a.logins.counts() == (1, 1)
    assert core.b.logins.open_session(b"c" * 60, later + CHALLENGE_TTL, "t", b"p", 1, later + SESSION_TTL, later)
    assert core.a.logins.counts() == (1, 1)  # the old ones went, the new ones came
    assert core.a.logins.session(s.token, now) is None  # swept: gone even for an earlier clock
    assert core.a.logins.session("t", later) == (b"p", 1)
    # The used challenge is refused again after the sweep too (its own row is the new one).
    assert not core.a.logins.open_session(b"c" * 60, later + CHALLENGE_TTL, "u", b"p", 1, later + SESSION_TTL, later)


def test_the_limits_count_every_front_end_and_a_refusal_uses_nothing(core: Core,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    card = Card(core.a.registry, 2)
    monkeypatch.setattr(disclosure_module, "MAX_SESSIONS", 1)
    c = core.a.disclosure.create_challenge(card.id)
    core.a.disclosure.login(card.id, c.challenge, card.sign(c.challenge))
    c2 = core.a.disclosure.create_challenge(card.id)
    with pytest.raises(ResourceExhaustedError, match="too many logins"):
        core.b.disclosure.login(card.id, c2.challenge, card.sign(c2.challenge))
    assert core.b.logins.counts() == (1, 1)
    monkeypatch.setattr(disclosure_module, "MAX_SESSIONS", 2)
    assert core.b.disclosure.login(card.id, c2.challenge, card.sign(c2.challenge)).token  # c2 was not burnt


def test_another_challenge_key_is_refused_and_said_so(core: Core, caplog: pytest.LogCaptureFixture) -> None:
    card = Card(core.a.registry, 4)
    other = Disclosure(core.a.registry, core.ledger, core.data_dir.secret_key(PSEUDONYM_KEY), core.a.logins,
                       b"\x07" * 32)
    c = other.create_challenge(card.id)
    with caplog.at_level(logging.WARNING, "renkei.linkage"), pytest.raises(UnauthenticatedError):
        core.a.disclosure.login(card.id, c.challenge, card.sign(c.challenge))
    assert f"keys/{CHALLENGE_KEY}.key" in caplog.text
    assert core.a.logins.counts() == (0, 0)


def test_notices_and_delegations_are_shared_by_the_front_ends(core: Core) -> None:
    p, q = Card(core.a.registry, 10), Card(core.a.registry, 11)

    def session(card: Card, fe: FrontEnd) -> str:
        c = fe.disclosure.create_challenge(card.id)
        return fe.disclosure.login(card.id, c.challenge, card.sign(c.challenge)).token

    principal, agent = session(p, core.a), session(q, core.b)
    me = core.a.disclosure.whose(principal, 0, "records")
    ids = [core.a.notices.post(me, 1, f"お知らせ {i}", "本文") for i in range(3)]
    assert ids == sorted(ids) and len(set(ids)) == 3
    ids.append(core.b.notices.post(me, 2, "お知らせ 3", "本文"))
    first, more = core.b.disclosure.my_notices(principal, None, 2)
    assert [n.notice_id for n in first] == ids[:1:-1] and more == ids[2]
    rest, none = core.a.disclosure.my_notices(principal, more, 10)
    assert [n.notice_id for n in rest] == ids[1::-1] and none is None

    # Offered at A, accepted at B, read at A, revoked at B: refused at A at once.
    book, mine = core.a.disclosure.book(principal)
    d, code = book.offer(mine, "母", ["notices"], datetime.now(UTC) + timedelta(days=30))
    book_b, theirs = core.b.disclosure.book(agent)
    assert book_b.accept(theirs, code).state(datetime.now(UTC)) == "active"
    with pytest.raises(NotFoundError):
        book_b.accept(theirs, code)  # used once
    got, _ = core.a.disclosure.my_notices(agent, None, 10, d.delegation_id)
    assert [n.notice_id for n in got] == ids[::-1]
    with pytest.raises(PermissionDeniedError):  # out of scope
        core.a.disclosure.my_records(agent, None, 10, d.delegation_id)
    core.b.delegations.revoke(mine, d.delegation_id)
    with pytest.raises(PermissionDeniedError):
        core.a.disclosure.my_notices(agent, None, 10, d.delegation_id)
    assert [o.action for o in core.b.delegations.operations(mine)] == ["revoke", "view_notices", "accept",
                                                                        "delegate"]
    # 支援措置 set through one front-end blocks an offer at the other.
    core.a.delegations.set_support(mine, 1, True)
    core.a.delegations.set_support(mine, 1, True)  # again: no-op
    with pytest.raises(FailedPreconditionError, match="支援措置"):
        core.b.delegations.offer(mine, "父", ["records"], datetime.now(UTC) + timedelta(days=1))
    core.b.delegations.set_support(mine, 1, False)
    assert not core.a.delegations.supported(mine)
    embedded = store_conninfo(core.data_dir) is None
    for name in ("disclosure", "notices", "delegations"):
        assert (core.data_dir.path / f"{name}.sqlite3").exists() == embedded


# The embedded schema of notices.sqlite3 and delegations.sqlite3 before they moved behind
# open_database (the statements of that version, copied): an existing data directory's files.
OLD_NOTICES = """
CREATE TABLE IF NOT EXISTS notices (
    notice_id  INTEGER PRIMARY KEY AUTOINCREMENT,
    pseudonym  BLOB NOT NULL,
    agency_id  INTEGER NOT NULL,
    title      TEXT NOT NULL,
    body       TEXT NOT NULL,
    sent_at    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS notices_person ON notices(pseudonym, notice_id);
"""
OLD_DELEGATIONS = """
CREATE TABLE IF NOT EXISTS delegations (
    delegation_id INTEGER PRIMARY KEY AUTOINCREMENT,
    principal     BLOB NOT NULL,
    agent         BLOB,
    offer_hash    BLOB NOT NULL UNIQUE,
    label         TEXT NOT NULL,
    scope         TEXT NOT NULL,
    valid_until   TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    accepted_at   TEXT,
    revoked_at    TEXT
);
CREATE INDEX IF NOT EXISTS delegations_principal ON delegations(principal);
CREATE INDEX IF NOT EXISTS delegations_agent ON delegations(agent);
CREATE TABLE IF NOT EXISTS operations (
    op_id     INTEGER PRIMARY KEY AUTOINCREMENT,
    pseudonym BLOB NOT NULL,
    at        TEXT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    delegation_id INTEGER
);
CREATE INDEX IF NOT EXISTS operations_person ON operations(pseudonym, op_id);
CREATE TABLE IF NOT EXISTS support_measures (
    pseudonym BLOB PRIMARY KEY,
    agency_id INTEGER NOT NULL,
    set_at    TEXT NOT NULL
);
"""


def test_an_existing_embedded_data_directory_keeps_its_notices_and_delegations(tmp_path: Path) -> None:
    d = init_data_dir(tmp_path / "core")
    now = datetime.now(UTC)
    with sqlite3.connect(d.file("notices.sqlite3")) as old:
        old.executescript(OLD_NOTICES)
        old.execute("INSERT INTO notices(pseudonym, agency_id, title, body, sent_at) VALUES (?, ?, ?, ?, ?)",
                    (b"P" * 32, 4, "古いお知らせ", "本文", now.isoformat()))
    with sqlite3.connect(d.file("delegations.sqlite3")) as old:
        old.executescript(OLD_DELEGATIONS)
        old.execute("INSERT INTO delegations(principal, agent, offer_hash, label, scope, valid_until, created_at, "
                    "accepted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (b"P" * 32, b"A" * 32, b"h" * 32, "母", "records,notices", (now + timedelta(days=9)).isoformat(),
                     now.isoformat(), now.isoformat()))
        old.execute("INSERT INTO operations(pseudonym, at, actor, action, delegation_id) VALUES (?, ?, ?, ?, ?)",
                    (b"P" * 32, now.isoformat(), "principal", "delegate", 1))
    box, book = NoticeBox(d), DelegationBook(d)
    try:
        (n,), more = box.of(b"P" * 32, 10)
        assert (n.notice_id, n.agency_id, n.title, more) == (1, 4, "古いお知らせ", None)
        assert box.post(b"P" * 32, 4, "新しいお知らせ", "本文") == 2  # ids continue
        assert book.authorize(b"A" * 32, 1, "records") == b"P" * 32
        assert [o.action for o in book.operations(b"P" * 32)] == ["view_records", "delegate"]
        d2, _code = book.offer(b"P" * 32, "父", ["records"], now + timedelta(days=1))
        assert d2.delegation_id == 2
    finally:
        box.close()
        book.close()


@pytest.mark.parametrize("driver", ["postgresql"])
def test_the_postgresql_schemas_hold_no_token_and_no_my_number(request: pytest.FixtureRequest, tmp_path: Path,
                                                               driver: str) -> None:
    url = store_url(request, driver)
    assert url is not None
    d = init_data_dir(tmp_path / "core", store=url)
    ledger = open_ledger(d, background=False)
    fe = front_end(d, ledger)
    try:
        card = Card(fe.registry, 8)
        c = fe.disclosure.create_challenge(card.id)
        s = fe.disclosure.login(card.id, c.challenge, card.sign(c.challenge))
        with psycopg.connect(url, autocommit=True) as conn:
            tables = {(r[0], r[1]) for r in conn.execute(
                "SELECT table_schema, table_name FROM information_schema.tables "
                "WHERE table_schema IN ('disclosure', 'notices', 'delegations')")}
            assert tables == {("disclosure", "sessions"), ("disclosure", "used_challenges"),
                              ("disclosure", "login_counts"), ("notices", "notices"),
                              ("delegations", "delegations"), ("delegations", "operations"),
                              ("delegations", "support_measures")}
            rows = conn.execute("SELECT token_hash, pseudonym, person FROM disclosure.sessions").fetchall()
        assert rows == [(session_hash(s.token), s.pseudonym, 8)]
        assert s.token.encode() not in b"".join(bytes(r[0]) + bytes(r[1]) for r in rows)
    finally:
        fe.close()
        ledger.close()
