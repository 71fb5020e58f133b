"""The limits without a box: the limits file, bounded messages, stateless challenges, agency
budgets, the corporate registry's query bound, agency registration rules (#11)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from renkei.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    QueryTooCostlyError,
    RateLimitedError,
    UnauthenticatedError,
)
from renkei.ledger import Ledger
from renkei.linkage.disclosure import CHALLENGE_KEY, Disclosure, LoginStore, card_key_id, login_message
from renkei.linkage.inquiry import AgencyBudgets, request_digest
from renkei.linkage.registry import AgencyRegistry, local_government_corporate_number
from renkei.nta.registry import CorporateNumberRegistry
from renkei.service import status
from renkei.service.core import init_data_dir
from renkei.service.limits import MTLS_DEFAULTS, PUBLIC_DEFAULTS, CoreLimits, Limits
from renkei.service.metrics import Metrics


def test_limits_file_overrides_by_port_and_service_and_refuses_typos(tmp_path: Path) -> None:
    f = tmp_path / "limits.toml"
    f.write_text("""
[mtls]
calls_per_caller = 10
[public]
arrival_seconds = 1.5
[core]
denial_burst = 7
[nta]
readers = 2
[jlis.mtls]
calls_per_caller = 3
[ppc.mtls]
calls_per_caller = 4
""")
    core, jlis, ppc = Limits.load(f, "core"), Limits.load(f, "jlis"), Limits.load(f, "ppc")
    assert core.mtls.calls_per_caller == 10 and jlis.mtls.calls_per_caller == 3 and ppc.mtls.calls_per_caller == 4
    assert core.public.arrival_seconds == 1.5 and core.public.max_request_bytes == PUBLIC_DEFAULTS.max_request_bytes
    assert core.core.denial_burst == 7 and core.nta.readers == 2
    assert Limits.load(None, "core") == Limits()
    assert core.describe()["mtls.calls_per_caller"] == 10.0
    for bad, why in [
        ("[mtls]\ncalls_per_calller = 1\n", "calls_per_calller"),
        ("[mtlz]\n", "mtlz"),
        ("[mtls]\ncalls_per_caller = -1\n", "positive"),
        ("[mtls]\ncalls_per_caller = 1.5\n", "whole number"),
        ("[mtls]\narrival_seconds = 'x'\n", "number"),
        ("[core]\nmtls_x = 1\n", "mtls_x"),
        ("not toml [", "limits file"),
    ]:
        f.write_text(bad)
        with pytest.raises(InvalidArgumentError, match=why):
            Limits.load(f, "core")
    opts = dict(PUBLIC_DEFAULTS.grpc_options())
    assert opts["grpc.max_receive_message_length"] == 64 * 1024 and opts["grpc.max_concurrent_streams"] == 16
    assert "grpc.max_connection_idle_ms" not in dict(MTLS_DEFAULTS.grpc_options())


def test_status_messages_never_echo_unbounded_input() -> None:
    huge = InvalidArgumentError("unknown kind(s): " + ", ".join(["999"] * 100_000))
    s = status.status_for(huge)
    assert len(s.details) <= status.MAX_MESSAGE_CHARS and "more characters" in s.details


def test_challenges_keep_no_state_and_never_lock_out_a_login(tmp_path: Path) -> None:
    data = init_data_dir(tmp_path / "core")
    registry = AgencyRegistry(data)
    ledger = Ledger(data)
    try:
        card = Ed25519PrivateKey.generate()
        public = card.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        key = card_key_id(public)
        registry.register_card_key(key, public, 0)
        d = Disclosure(registry, ledger, b"k" * 32, LoginStore(data), data.secret_key(CHALLENGE_KEY))
        with pytest.raises(UnauthenticatedError, match="not registered"):
            d.create_challenge(b"\x01" * 32)
        # The old store refused every login after 100,000 pending challenges.
        t = time.perf_counter()
        for _ in range(150_000):
            d.create_challenge(key)
        assert time.perf_counter() - t < 60
        c = d.create_challenge(key)
        session = d.login(key, c.challenge, card.sign(login_message(c.challenge)))
        assert session.token
        with pytest.raises(UnauthenticatedError):  # a challenge is used once
            d.login(key, c.challenge, card.sign(login_message(c.challenge)))
        other = Ed25519PrivateKey.generate()
        other_pub = other.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        registry.register_card_key(card_key_id(other_pub), other_pub, 1)
        c2 = d.create_challenge(key)
        with pytest.raises(UnauthenticatedError):  # a challenge is bound to its card key
            d.login(card_key_id(other_pub), c2.challenge, other.sign(login_message(c2.challenge)))
        with pytest.raises(UnauthenticatedError):  # a failed login does not burn it ...
            d.login(key, c2.challenge, other.sign(login_message(c2.challenge)))
        assert d.login(key, c2.challenge, card.sign(login_message(c2.challenge))).token  # ... the card still logs in
        forged = bytearray(c2.challenge)
        forged[3] ^= 1
        with pytest.raises(UnauthenticatedError):
            d.login(key, bytes(forged), card.sign(login_message(bytes(forged))))
    finally:
        ledger.close()
        registry.close()


def test_agency_budgets_refill_and_refuse() -> None:
    m = Metrics()
    b = AgencyBudgets(CoreLimits(inquiry_items_per_second=1000, inquiry_item_burst=100, denials_per_second=10,
                                 denial_burst=5), m)
    assert b.admit(1, 100) == 5
    with pytest.raises(RateLimitedError, match="items"):
        b.admit(1, 50)
    b.admit(2, 10)  # another agency has its own budget
    b.charge(2, 6)
    with pytest.raises(RateLimitedError, match="denied"):
        b.admit(2, 1)
    time.sleep(0.25)  # 2.5 denials refilled: the budget is positive again
    assert b.admit(2, 1) == 1
    text = m.render()
    assert 'renkei_rate_limited_total{agency="1",budget="items"} 1' in text
    assert 'renkei_agency_budget{agency="2",budget="denials"}' in text


def test_request_digest_tells_every_field_apart() -> None:
    base = request_digest(b"single", b"c" * 16, "B2.1", 1, ["i"])
    assert base == request_digest(b"single", b"c" * 16, "B2.1", 1, ["i"])
    for other in (request_digest(b"batch", b"c" * 16, "B2.1", 1, ["i"]),
                  request_digest(b"single", b"d" * 16, "B2.1", 1, ["i"]),
                  request_digest(b"single", b"c" * 16, "B2.2", 1, ["i"]),
                  request_digest(b"single", b"c" * 16, "B2.1", 2, ["i"]),
                  request_digest(b"single", b"c" * 16, "B2.1", 1, ["i", "j"]),
                  request_digest(b"single", b"c" * 16, "B2.", 1, ["1i"])):
        assert other != base


def test_costly_corporate_searches_are_stopped_and_kinds_bounded(tmp_path: Path) -> None:
    with CorporateNumberRegistry.init(tmp_path / "nta") as nta:
        nta.assign(name="デジタル庁", kind="101", furigana="でじたるちょう", prefecture_code="13")
    # Many rows, written directly (the registry's assign is one durable commit each).
    db = sqlite3.connect(tmp_path / "nta" / "corporate.sqlite3")
    cols = [r[1] for r in db.execute("PRAGMA table_info(records)")]
    row = db.execute("SELECT * FROM records").fetchone()
    at = {c: i for i, c in enumerate(cols)}
    rows = []
    for i in range(200_000):
        r = list(row)
        r[at["corporate_number"]] = 10**12 + i
        if "sequence_number" in at:
            r[at["sequence_number"]] = 10 + i
        rows.append(r)
    db.executemany(f"INSERT INTO records VALUES ({', '.join('?' * len(cols))})", rows)
    db.commit()
    db.close()
    reader = CorporateNumberRegistry(tmp_path / "nta", read_only=True, query_seconds=0.001)
    try:
        with pytest.raises(QueryTooCostlyError, match="narrow it"):
            reader.search("ちょう", mode="partial")
        with pytest.raises(InvalidArgumentError) as e:
            reader.search("デジタル", kinds=[f"9{i:05d}" for i in range(8)])
        assert len(str(e.value)) < 300 and "and 5 more" in str(e.value)
        with pytest.raises(InvalidArgumentError, match="only 10 kinds"):
            reader.search("デジタル", kinds=["101"] * 5_000_000)
    finally:
        reader.close()


def test_agencies_are_registered_once_and_named_cleanly(tmp_path: Path) -> None:
    hachioji, fuchu = local_government_corporate_number("132012"), local_government_corporate_number("132063")
    with AgencyRegistry(init_data_dir(tmp_path / "core")) as reg:
        mayor = reg.register_agency("八王子市長", ["municipal_mayor"], hachioji, municipality_code="132012")
        with pytest.raises(AlreadyExistsError, match=f"agency {mayor.agency_id}"):
            reg.register_agency("八王子市長", ["municipal_mayor"], hachioji, municipality_code="132012")
        board = reg.register_agency("八王子市教育委員会", ["municipal_board_of_education"], hachioji,
                                    municipality_code="132012")
        assert board.agency_id != mayor.agency_id
        for name in ("八王子\x00市長", "八王子\n市長", "a\u200bb", "x" * 65, ""):
            with pytest.raises(InvalidArgumentError):
                reg.register_agency(name, ["municipal_mayor"], fuchu, municipality_code="132063")
        assert reg.register_agency(" 😀 " * 21, ["municipal_mayor"], fuchu, municipality_code="132063").name == \
            ("😀  " * 21).strip()


def test_servers_accept_the_intermediate_servers_keepalive_pings() -> None:
    # grpc's default floor (5 min) answered the mids' pings with GOAWAY too_many_pings, cutting
    # every attendance stream ~140 s after it opened (seen on `make serve`).
    from renkei.service.mid.links import _OPTIONS, KEEPALIVE_MS
    from renkei.service.server import MIN_PING_INTERVAL_MS

    assert ("grpc.keepalive_time_ms", KEEPALIVE_MS) in _OPTIONS
    assert MIN_PING_INTERVAL_MS < KEEPALIVE_MS
