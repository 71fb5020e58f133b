"""代理人: a person lets another card holder view their records, kept by the core.

The principal (logged in with their card) creates an offer — what the agent may see (やりとり履歴,
お知らせ), until when, and a label of their own choosing ("母", "税理士"): the core answers a
one-off code the principal hands to the agent out of band. The agent, logged in with *their* card,
accepts the code; from then on the agent's session may read the principal's records within the
scope and validity. Only the principal can revoke, and the revocation is immediate. The portal can
read a principal's records as an agent only with the agent's own card: the core checks the
delegation on every read.

支援措置 (DV and stalking victims' support, 住民基本台帳事務における支援措置): a municipality that
holds the person sets the flag with its own code (LinkageService.SetSupportMeasure). A flagged
person cannot delegate, cannot be named by an offer, and existing delegations stop: no agent
lookup reaches them.

Every action goes into the person's 操作履歴 (both sides: the principal sees the agent's views).
Durable: ``delegations.sqlite3`` in the core's directory (``synchronous=FULL``).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from renkei.datadir import DataDir
from renkei.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError, PermissionDeniedError

SCOPES = ("records", "notices")
OFFER_TTL = timedelta(days=1)
MAX_LABEL = 40
MAX_VALIDITY = timedelta(days=3 * 366)
MAX_OPEN = 20  # delegations a person may have at once (as principal)
_SCHEMA = """
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


@dataclass(frozen=True)
class Delegation:
    delegation_id: int
    principal: bytes
    agent: bytes | None
    label: str
    scope: tuple[str, ...]
    valid_until: datetime
    created_at: datetime
    accepted_at: datetime | None
    revoked_at: datetime | None

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.valid_until <= now:
            return "expired"
        if self.agent is None:
            return "offered" if self.created_at + OFFER_TTL > now else "expired"
        return "active"


@dataclass(frozen=True)
class Operation:
    at: datetime
    actor: str  # "principal" | "agent"
    action: str  # "delegate" | "accept" | "revoke" | "view_records" | "view_notices"
    delegation_id: int | None


def _dt(v: object) -> datetime | None:
    return None if v is None else datetime.fromisoformat(str(v))


def _offer_hash(code: str) -> bytes:
    return hashlib.sha256(b"renkei-delegation-offer\0" + code.encode()).digest()


class DelegationBook:
    def __init__(self, data_dir: DataDir) -> None:
        self._db = data_dir.connect("delegations.sqlite3")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def _log(self, pseudonym: bytes, actor: str, action: str, delegation_id: int | None, now: datetime) -> None:
        self._db.execute("INSERT INTO operations(pseudonym, at, actor, action, delegation_id) VALUES (?, ?, ?, ?, ?)",
                         (pseudonym, now.isoformat(), actor, action, delegation_id))

    def supported(self, pseudonym: bytes) -> bool:
        row = self._db.execute("SELECT 1 FROM support_measures WHERE pseudonym = ?", (pseudonym,)).fetchone()
        return row is not None

    def set_support(self, pseudonym: bytes, agency_id: int, on: bool) -> None:
        with self._lock:
            if on:
                self._db.execute(
                    "INSERT OR IGNORE INTO support_measures(pseudonym, agency_id, set_at) VALUES (?, ?, ?)",
                    (pseudonym, int(agency_id), datetime.now(UTC).isoformat()))
            else:
                self._db.execute("DELETE FROM support_measures WHERE pseudonym = ?", (pseudonym,))

    def _blocked(self, pseudonym: bytes) -> None:
        if self.supported(pseudonym):
            # Said plainly to the person themself; an agent is never told why (see authorize).
            raise FailedPreconditionError("代理人の設定はできません（支援措置の対象の方は代理人を設定できません）")

    def offer(self, principal: bytes, label: str, scope: list[str], valid_until: datetime,
              now: datetime | None = None) -> tuple[Delegation, str]:
        """A new offer and its one-off code (shown once; only its hash is kept)."""
        now = now or datetime.now(UTC)
        label = label.strip()
        if not label or len(label) > MAX_LABEL:
            raise InvalidArgumentError(f"代理人の呼び名は1〜{MAX_LABEL}文字で入力してください")
        want = tuple(s for s in SCOPES if s in scope)
        if not want or len(want) != len(set(scope)):
            raise InvalidArgumentError("閲覧を許す情報を1つ以上選んでください（records, notices）")
        if not now < valid_until <= now + MAX_VALIDITY:
            raise InvalidArgumentError("有効期限は今日より後、3年以内の日付にしてください")
        code = secrets.token_urlsafe(12)
        with self._lock:
            self._blocked(principal)
            open_ = self._db.execute(
                "SELECT count(*) FROM delegations WHERE principal = ? AND revoked_at IS NULL AND valid_until > ?",
                (principal, now.isoformat())).fetchone()[0]
            if open_ >= MAX_OPEN:
                raise FailedPreconditionError(f"代理人は同時に{MAX_OPEN}件までです。不要なものを取り消してください")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cur = self._db.execute(
                    "INSERT INTO delegations(principal, offer_hash, label, scope, valid_until, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (principal, _offer_hash(code), label, ",".join(want), valid_until.isoformat(), now.isoformat()))
                did = int(cur.lastrowid or 0)
                self._log(principal, "principal", "delegate", did, now)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return self.get(did), code

    def accept(self, agent: bytes, code: str, now: datetime | None = None) -> Delegation:
        now = now or datetime.now(UTC)
        refused = NotFoundError("この代理人コードは使えません（誤り、使用済み、または期限切れです）")
        with self._lock:
            row = self._db.execute("SELECT delegation_id FROM delegations WHERE offer_hash = ?",
                                   (_offer_hash(code.strip()),)).fetchone()
            if row is None:
                raise refused
            d = self.get(int(row[0]))
            if d.state(now) != "offered" or self.supported(d.principal):
                raise refused
            if d.principal == agent:
                raise InvalidArgumentError("自分自身を代理人にすることはできません")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("UPDATE delegations SET agent = ?, accepted_at = ? WHERE delegation_id = ?",
                                 (agent, now.isoformat(), d.delegation_id))
                self._log(agent, "agent", "accept", d.delegation_id, now)
                self._log(d.principal, "agent", "accept", d.delegation_id, now)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return self.get(d.delegation_id)

    def revoke(self, principal: bytes, delegation_id: int, now: datetime | None = None) -> Delegation:
        """Only the principal; immediate."""
        now = now or datetime.now(UTC)
        with self._lock:
            d = self.get(delegation_id)
            if d.principal != principal:
                raise NotFoundError("あなたが設定した代理権ではありません")
            if d.revoked_at is None:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    self._db.execute("UPDATE delegations SET revoked_at = ? WHERE delegation_id = ?",
                                     (now.isoformat(), delegation_id))
                    self._log(principal, "principal", "revoke", delegation_id, now)
                    if d.agent is not None:
                        self._log(d.agent, "principal", "revoke", delegation_id, now)
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
        return self.get(delegation_id)

    def authorize(self, agent: bytes, delegation_id: int, what: str, now: datetime | None = None) -> bytes:
        """The principal's pseudonym, for an agent's read within an active delegation; logged in
        the principal's 操作履歴. One refusal for every reason (no such, revoked, expired, out of
        scope, 支援措置): the agent learns nothing about the principal from it."""
        now = now or datetime.now(UTC)
        refused = PermissionDeniedError("この代理権では閲覧できません")
        try:
            d = self.get(delegation_id)
        except NotFoundError:
            raise refused from None
        if d.agent != agent or d.state(now) != "active" or what not in d.scope or self.supported(d.principal):
            raise refused
        with self._lock:
            self._log(d.principal, "agent", f"view_{what}", delegation_id, now)
            self._log(agent, "agent", f"view_{what}", delegation_id, now)
        return d.principal

    def get(self, delegation_id: int) -> Delegation:
        row = self._db.execute(
            "SELECT delegation_id, principal, agent, label, scope, valid_until, created_at, accepted_at, revoked_at "
            "FROM delegations WHERE delegation_id = ?", (int(delegation_id),)).fetchone()
        if row is None:
            raise NotFoundError("no such delegation")
        created = _dt(row[6])
        valid = _dt(row[5])
        assert created is not None and valid is not None
        return Delegation(int(row[0]), bytes(row[1]), None if row[2] is None else bytes(row[2]), str(row[3]),
                          tuple(str(row[4]).split(",")), valid, created, _dt(row[7]), _dt(row[8]))

    def of(self, pseudonym: bytes) -> tuple[list[Delegation], list[Delegation]]:
        """(as principal, as agent), newest first."""
        mine = [self.get(int(r[0])) for r in self._db.execute(
            "SELECT delegation_id FROM delegations WHERE principal = ? ORDER BY delegation_id DESC", (pseudonym,))]
        theirs = [self.get(int(r[0])) for r in self._db.execute(
            "SELECT delegation_id FROM delegations WHERE agent = ? ORDER BY delegation_id DESC", (pseudonym,))]
        if self.supported(pseudonym):
            mine = []  # nothing to look up for a supported person
        return mine, theirs

    def operations(self, pseudonym: bytes, limit: int = 1000) -> list[Operation]:
        rows = self._db.execute(
            "SELECT at, actor, action, delegation_id FROM operations WHERE pseudonym = ? ORDER BY op_id DESC LIMIT ?",
            (pseudonym, limit)).fetchall()
        return [Operation(datetime.fromisoformat(str(a)), str(b), str(c), None if d is None else int(d))
                for a, b, c, d in rows]


__all__ = ["SCOPES", "Delegation", "DelegationBook", "Operation"]
