"""The マイナンバーカード's life at J-LIS (カード管理): application, issuance, suspension, re-issue, expiry.

J-LIS keeps, per person (by link id, never by resident code), their card applications and cards
(``card_applications``, ``cards`` in ``jlis.sqlite3``); the JPKI (J-LIS's own CA, its data
directory ``jpki/``) holds the certificates and the chips by card id only — the binding
card → person lives here, so the JPKI's directory stays free of link ids and numbers.

* **Application** (交付申請): the person's current number and 基本4情報 must be on file; the face
  photo is a reference (``sha256:<hex>`` of the image, or a URI), never the image. Reasons:
  ``new``, ``lost`` (紛失), ``damaged``, ``renewal`` (有効期限), ``number_change``.
* **Issuance** (交付, by the municipality at its counter): fresh JPKI keys and certificates
  (:func:`renkei.jpki.card.issue_card`), the 券面事項入力補助AP with the number and 4情報 signed by
  J-LIS's AP key, the PINs the holder chose; the card's validity is the 10th birthday after issue
  (5th under 18), the certificates' the 5th (the JPKI's rule). A new card replaces the person's
  previous one: its certificates are revoked (``keyCompromise`` when it was lost, ``superseded``
  otherwise).
* **Suspension** (一時停止, the call centre after a loss): one call; both certificates go on hold
  (``certificateHold``) at once, so the OCSP responder answers revoked from the next request on
  and every login or signature checked with it fails. **Resumption** lifts the hold.
* **Changes of the person**: a 住所 or 氏名 change revokes the 署名用 certificate
  (``affiliationChanged``, via the JPKI's ``change_facts``); a death or a number change voids the
  card (both certificates revoked, ``cessationOfOperation``; a new number needs a new card).
* **Expiry**: :meth:`CardOffice.expire` marks cards past their validity expired and revokes what
  is still good of their certificates.

Every step is recorded in J-LIS's query log (:class:`renkei.jlis.queries.QueryLog`) with the
acting principal and the person's pseudonym, never the data.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from renkei.datadir import DataDir
from renkei.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError
from renkei.jlis.authority import NumberAuthority
from renkei.jlis.facts import FactsRegistry, Reported
from renkei.jlis.queries import QueryLog
from renkei.jpki.kenmen import KenmenData, KenmenSigner
from renkei.jpki.profile import JST, SIGN, age_on, nth_birthday_after

_SCHEMA = """
CREATE TABLE IF NOT EXISTS card_applications (
    application_id INTEGER PRIMARY KEY,
    link_id        BLOB NOT NULL CHECK (length(link_id) = 16),
    reason         TEXT NOT NULL,
    face_photo     TEXT NOT NULL,
    applied_at     TEXT NOT NULL,
    applied_by     TEXT NOT NULL,
    state          TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'issued', 'cancelled')),
    card_id        TEXT
);
CREATE INDEX IF NOT EXISTS card_applications_link ON card_applications(link_id);
CREATE TABLE IF NOT EXISTS cards (
    card_id        TEXT PRIMARY KEY,
    link_id        BLOB NOT NULL CHECK (length(link_id) = 16),
    application_id INTEGER NOT NULL,
    face_photo     TEXT NOT NULL,
    issued_at      TEXT NOT NULL,
    issued_by      TEXT NOT NULL,
    expires_on     TEXT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('active', 'suspended', 'replaced', 'expired', 'void')),
    state_reason   TEXT,
    changed_at     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS cards_link ON cards(link_id);
"""

REASONS = {"new": "新規", "lost": "紛失による再交付", "damaged": "破損等による再交付", "renewal": "有効期限による更新",
           "number_change": "個人番号の変更による再交付"}
#: How the previous card's certificates are revoked when a new one is issued for each reason.
_REPLACED_BY = {"lost": "keyCompromise", "damaged": "superseded", "renewal": "superseded", "new": "superseded",
                "number_change": "cessationOfOperation"}
_PHOTO = re.compile(r"(sha256:[0-9a-f]{64}|[a-z][a-z0-9+.-]*://[\x21-\x7e]{1,400})")
#: Adults' cards run to the 10th birthday after issue, under-18s' to the 5th (番号法施行令).
ADULT_AGE = 18


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def card_expiry(issued: dt.date, birth: dt.date) -> dt.date:
    """The card's last valid day: the 10th birthday after issue (the 5th when under 18 on the issue day)."""
    return nth_birthday_after(issued, birth, 10 if age_on(birth, issued) >= ADULT_AGE else 5)


@dataclass(frozen=True)
class Application:
    application_id: int
    link_id: bytes
    reason: str
    face_photo: str
    applied_at: str
    applied_by: str
    state: str
    card_id: str | None

    def __repr__(self) -> str:
        return f"Application({self.application_id}, {self.reason}, {self.state})"


@dataclass(frozen=True)
class CardRecord:
    card_id: str
    link_id: bytes
    application_id: int
    face_photo: str
    issued_at: str
    issued_by: str
    expires_on: dt.date
    state: str
    state_reason: str | None
    changed_at: str

    def __repr__(self) -> str:
        return f"CardRecord({self.card_id!r}, {self.state}, expires {self.expires_on})"


@dataclass(frozen=True)
class Issued:
    """A card issued: its record and the token file's bytes (the holder's card)."""

    card: CardRecord
    token: bytes
    serials: dict[str, int]


_CARD_COLUMNS = ("card_id, link_id, application_id, face_photo, issued_at, issued_by, expires_on, state, state_reason, "
                 "changed_at")


def _card(row: tuple[object, ...]) -> CardRecord:
    cid, link, app, photo, issued, by, expires, state, reason, changed = row
    return CardRecord(str(cid), bytes(link), int(app), str(photo), str(issued), str(by),  # type: ignore[call-overload]
                      dt.date.fromisoformat(str(expires)), str(state), None if reason is None else str(reason),
                      str(changed))


class CardOffice:
    """J-LIS's card management: its registry, and the JPKI it issues through (in-process, on the
    JPKI's data directory — both are J-LIS's; docs/arch/jlis.md says why)."""

    def __init__(self, data_dir: DataDir, numbers: NumberAuthority, facts: FactsRegistry, log: QueryLog,
                 jpki_dir: str | os.PathLike[str] | None) -> None:
        from renkei.jpki.ca import Jpki

        self.data_dir = data_dir
        self._numbers = numbers
        self._facts = facts
        self._log = log
        self._db = data_dir.connect("jlis.sqlite3")
        self._db.executescript(_SCHEMA)
        self._lock = threading.RLock()
        self._signer = KenmenSigner(data_dir.secret_key("kenmen-ap"))
        self.jpki: Jpki | None = None if jpki_dir is None else Jpki(jpki_dir)

    def close(self) -> None:
        if self.jpki is not None:
            self.jpki.close()
        self._db.close()

    def _need_jpki(self) -> object:
        if self.jpki is None:
            raise FailedPreconditionError("this J-LIS runs without its JPKI (start it with --jpki-dir): no card "
                                          "can be issued or changed")
        return self.jpki

    @property
    def kenmen_public_pem(self) -> bytes:
        return self._signer.public_pem()

    # -- look-ups ---------------------------------------------------------------------------------

    def application(self, application_id: int) -> Application:
        with self._lock:
            row = self._db.execute(
                "SELECT application_id, link_id, reason, face_photo, applied_at, applied_by, state, card_id "
                "FROM card_applications WHERE application_id = ?", (int(application_id),)).fetchone()
        if row is None:
            raise NotFoundError(f"no card application {application_id}")
        return Application(int(row[0]), bytes(row[1]), *row[2:])

    def card(self, card_id: str) -> CardRecord:
        with self._lock:
            row = self._db.execute(f"SELECT {_CARD_COLUMNS} FROM cards WHERE card_id = ?", (card_id,)).fetchone()
        if row is None:
            raise NotFoundError("J-LIS knows no card with this id")
        return _card(row)

    def cards_of(self, link_id: bytes) -> list[CardRecord]:
        with self._lock:
            rows = self._db.execute(f"SELECT {_CARD_COLUMNS} FROM cards WHERE link_id = ? ORDER BY issued_at",
                                    (bytes(link_id),)).fetchall()
        return [_card(r) for r in rows]

    def live_card_of(self, link_id: bytes) -> CardRecord | None:
        live = [c for c in self.cards_of(link_id) if c.state in ("active", "suspended")]
        return live[-1] if live else None

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = dict(self._db.execute("SELECT state, count(*) FROM cards GROUP BY state").fetchall())
        return {str(k): int(v) for k, v in rows.items()}

    # -- application and issuance -----------------------------------------------------------------

    def apply(self, link_id: bytes, reason: str, face_photo: str, actor: str) -> Application:
        """A card application (交付申請) for the person with ``link_id``."""
        if reason not in REASONS:
            raise InvalidArgumentError(f"reason must be one of {', '.join(REASONS)}")
        if not isinstance(face_photo, str) or not _PHOTO.fullmatch(face_photo):
            raise InvalidArgumentError("face_photo is a reference: sha256:<64 hex digits> of the image, or a URI")
        if self._numbers.current_of(link_id) is None:
            raise FailedPreconditionError("this person has no current 個人番号: no card can be applied for")
        facts = self._facts.current(link_id)
        if facts is None:
            raise FailedPreconditionError("J-LIS holds no 本人確認情報 of this person: the resident register reports "
                                          "them first")
        if facts.deceased_on is not None:
            raise FailedPreconditionError("this person's death has been reported")
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO card_applications(link_id, reason, face_photo, applied_at, applied_by) "
                "VALUES (?, ?, ?, ?, ?)", (bytes(link_id), reason, face_photo, _now().isoformat(), actor))
        return self.application(int(cur.lastrowid or 0))

    def issue(self, application_id: int, *, auth_pin: str, sign_pin: str | None, kenmen_pin: str, actor: str,
              now: dt.datetime | None = None) -> Issued:
        """Issue the card of a pending application (交付): returns its record and token."""
        from renkei.jpki.ca import Jpki
        from renkei.jpki.card import issue_card, new_card_id

        jpki = self._need_jpki()
        assert isinstance(jpki, Jpki)
        now = (now or _now()).replace(microsecond=0)
        app = self.application(application_id)
        if app.state != "pending":
            raise FailedPreconditionError(f"card application {application_id} is {app.state}")
        number = self._numbers.current_of(app.link_id)
        person = self._facts.current(app.link_id)
        if number is None or person is None or person.deceased_on is not None:
            raise FailedPreconditionError("the applicant has no current number or 本人確認情報 any more")
        today = now.astimezone(JST).date()
        expires = card_expiry(today, person.facts.birth)
        card_id = new_card_id()
        signed = self._signer.sign(KenmenData(card_id, number, person.facts, now, expires))
        previous = self.live_card_of(app.link_id)
        with tempfile.TemporaryDirectory(dir=self.data_dir.subdir("issuing")) as tmp:
            path = Path(tmp) / "card.json"
            with issue_card(jpki, path, person.facts, auth_pin, sign_pin, now, card_id=card_id, kenmen=signed,
                            kenmen_pin=kenmen_pin) as card:
                serials = {kind: card.certificate(kind).serial_number for kind in ("auth", "sign") if card.has(kind)}
                auth_key = card.certificate("auth").public_key().public_bytes(Encoding.DER,
                                                                              PublicFormat.SubjectPublicKeyInfo)
            token = path.read_bytes()
        stamp = now.isoformat()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    f"INSERT INTO cards({_CARD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, 'active', NULL, ?)",
                    (card_id, app.link_id, app.application_id, app.face_photo, stamp, actor, expires.isoformat(),
                     stamp))
                self._db.execute("UPDATE card_applications SET state = 'issued', card_id = ? WHERE application_id = ?",
                                 (card_id, app.application_id))
                if previous is not None:
                    self._set_state(previous.card_id, "replaced", f"replaced by a new card ({app.reason})")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        if previous is not None:
            self._revoke_all(previous.card_id, _REPLACED_BY[app.reason])
        # The portal login key (利用者証明用), forwarded to the core by link id (never the number).
        self._numbers.register_link_card_key(app.link_id, auth_key)
        return Issued(self.card(card_id), token, serials)

    # -- suspension, changes, expiry ---------------------------------------------------------------

    def _set_state(self, card_id: str, state: str, reason: str) -> None:
        self._db.execute("UPDATE cards SET state = ?, state_reason = ?, changed_at = ? WHERE card_id = ?",
                         (state, reason, _now().isoformat(), card_id))

    def _update(self, card_id: str, state: str, reason: str) -> None:
        with self._lock:
            self._set_state(card_id, state, reason)

    def _revoke_all(self, card_id: str, reason: str) -> int:
        """Revoke every certificate of the card that is not revoked yet (good or on hold)."""
        from renkei.jpki.ca import Jpki

        jpki = self._need_jpki()
        assert isinstance(jpki, Jpki)
        try:
            return len(jpki.revoke_card(card_id, reason))
        except NotFoundError:
            return 0

    def suspend(self, card_id: str, actor: str) -> CardRecord:
        """一時停止 after a loss: both certificates on hold at once (OCSP answers revoked, reason
        certificateHold, from the next request on)."""
        from renkei.jpki.ca import Jpki

        jpki = self._need_jpki()
        assert isinstance(jpki, Jpki)
        card = self.card(card_id)
        if card.state != "active":
            raise FailedPreconditionError(f"this card is {card.state}: only an active card can be suspended")
        for record in jpki.current_certificates(card_id).values():
            if record.status == "good":
                jpki.revoke(record.serial, "certificateHold")
        self._update(card_id, "suspended", f"suspended by {actor}")
        return self.card(card_id)

    def resume(self, card_id: str, actor: str) -> CardRecord:
        """一時停止の解除 (the card was found): the holds are lifted."""
        from renkei.jpki.ca import Jpki

        jpki = self._need_jpki()
        assert isinstance(jpki, Jpki)
        card = self.card(card_id)
        if card.state != "suspended":
            raise FailedPreconditionError(f"this card is {card.state}: only a suspended card can be resumed")
        for record in jpki.current_certificates(card_id).values():
            if record.status == "hold":
                jpki.release_hold(record.serial)
        self._update(card_id, "active", f"resumed by {actor}")
        return self.card(card_id)

    def facts_changed(self, reported: Reported) -> int:
        """Act on a report of the resident register: a new 氏名 or 住所 revokes the 署名用 certificate
        of the person's live card (``affiliationChanged``); a death voids it. Returns how many
        certificates were revoked."""
        if self.jpki is None or not reported.changed:
            return 0
        card = self.live_card_of(reported.link_id)
        if card is None:
            return 0
        if "death" in reported.changed:
            with self._lock:
                self._set_state(card.card_id, "void", "the holder died")
            return self._revoke_all(card.card_id, "cessationOfOperation")
        if not reported.changed & {"name", "address", "birth", "sex"}:
            return 0
        person = self._facts.current(reported.link_id)
        assert person is not None
        f = person.facts
        revoked = self.jpki.change_facts(card.card_id, name=f.name, birth=f.birth, sex=f.sex, address=f.address)
        return 0 if revoked is None or revoked.kind != SIGN else 1

    def number_changed(self, link_id: bytes) -> int:
        """A new number voids the live card (its 券面 and AP carry the old one; 返納 and re-issue)."""
        if self.jpki is None:
            return 0
        card = self.live_card_of(link_id)
        if card is None:
            return 0
        with self._lock:
            self._set_state(card.card_id, "void", "the holder's number was changed: re-issue")
        return self._revoke_all(card.card_id, "cessationOfOperation")

    def expire(self, today: dt.date | None = None) -> list[str]:
        """Mark the cards whose validity ended before ``today`` (JST) expired; revoke what remains
        of their certificates. Returns their ids."""
        day = today or dt.datetime.now(JST).date()
        with self._lock:
            ids = [str(r[0]) for r in self._db.execute(
                "SELECT card_id FROM cards WHERE state IN ('active', 'suspended') AND expires_on < ?",
                (day.isoformat(),)).fetchall()]
            for card_id in ids:
                self._set_state(card_id, "expired", "the card's validity ended")
        if self.jpki is not None:
            for card_id in ids:
                self._revoke_all(card_id, "cessationOfOperation")
        return ids


__all__ = ["REASONS", "Application", "CardOffice", "CardRecord", "Issued", "card_expiry"]
