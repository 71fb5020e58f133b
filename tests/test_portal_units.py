"""The portal's pieces without HTTP: session timeouts and single-use logins, the card reader's
answers, and how the card answer is read."""

from __future__ import annotations

import pytest

from renkei.portal.login import LoginRefused, parse_card_response
from renkei.portal.sessions import Sessions


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_sessions_end_after_idle_or_absolute_time() -> None:
    clock = Clock()
    s = Sessions(idle=60, absolute=300, clock=clock)
    a = s.create(b"p" * 32, "core-token")
    assert a.csrf and a.token != a.csrf
    for _ in range(4):  # active: each request restarts the idle clock ...
        clock.t += 59
        assert s.get(a.token) is a
    clock.t += 70  # ... but not past the absolute limit (306 s after the login)
    assert s.get(a.token) is None
    b = s.create(b"q" * 32, "t")
    clock.t += 61  # idle too long
    assert s.get(b.token) is None
    c = s.create(b"r" * 32, "t")
    s.end(c.token)
    assert s.get(c.token) is None and s.get(None) is None and s.get("nope") is None
    assert c.csrf_ok(c.csrf) and not c.csrf_ok(None) and not c.csrf_ok(c.csrf + "x")


def test_a_pending_login_is_taken_once_and_expires() -> None:
    clock = Clock()
    s = Sessions(clock=clock)
    key, p = s.begin_login(b"challenge")
    assert s.take_login(key) == p
    assert s.take_login(key) is None  # used
    key2, _p2 = s.begin_login(b"c2")
    clock.t += 121
    assert s.take_login(key2) is None  # expired
    assert s.take_login(None) is None


@pytest.mark.parametrize(("answer", "reason"), [
    ('{"result": "pin-locked"}', "pin_locked"),
    ('{"result": "wrong-pin", "remaining": "1"}', "wrong_pin"),
    ('{"result": "9"}', "reader_error"),
    ("[]", "malformed"),
    ("{", "malformed"),
    ('{"signature": "!!", "certificate": "AA=="}', "malformed"),
    ('{"signature": "", "certificate": "AA=="}', "malformed"),
    ("x" * 20000, "malformed"),
])
def test_card_answers_that_are_not_a_signature_are_refused(answer: str, reason: str) -> None:
    with pytest.raises(LoginRefused) as e:
        parse_card_response(answer)
    assert e.value.reason == reason and e.value.title and e.value.advice


def test_a_card_answer_is_read() -> None:
    assert parse_card_response('{"result": "0", "signature": "AAE=", "certificate": "AgM="}') == (b"\0\1", b"\2\3")
