"""J-LIS's desk for the 本人確認情報: reports of the resident register, 個人番号等照会, card desks.

:class:`PersonInfo` ties J-LIS's registries together for the service: the numbers
(:class:`~renkei.jlis.authority.NumberAuthority`), the facts
(:class:`~renkei.jlis.facts.FactsRegistry`), the entitlements and the query log
(:mod:`renkei.jlis.queries`) and the cards (:class:`~renkei.jlis.cards.CardOffice`).

A query is decided first (:meth:`PersonInfo.decide_facts`, :meth:`PersonInfo.decide_number`:
SQLite reads, on J-LIS's one registry thread) into a :class:`Decision` — the log record and
either the answer or the error — and the service appends the record durably (group commit, on
another thread) **before** it returns the answer or raises the error. The record never holds
the answer.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from renkei.errors import (
    AmbiguousMatchError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotEntitledError,
    NotFoundError,
    RenkeiError,
)
from renkei.jlis.authority import NumberAuthority
from renkei.jlis.cards import CardOffice
from renkei.jlis.facts import FactsRegistry, PersonFacts, Reported
from renkei.jlis.queries import (
    AMBIGUOUS,
    ITEM_TOKENS,
    NO_NUMBER,
    NO_SUCH_PERSON,
    NOT_ENTITLED,
    Entitlement,
    Entitlements,
    QueryLog,
    check_purpose,
)
from renkei.jpki.profile import BasicFacts
from renkei.ledger import LedgerRecord
from renkei.numbers import parse_individual_number, parse_resident_code


@dataclass(frozen=True)
class Decision:
    """A decided query: its log record, and the answer or the error (raised after the record is
    durable)."""

    record: LedgerRecord
    answer: object = None
    error: RenkeiError | None = None

    def __repr__(self) -> str:
        return f"Decision(outcome={self.record.denied_code}, <answer withheld>)"


class PersonInfo:
    def __init__(self, numbers: NumberAuthority, facts: FactsRegistry, entitlements: Entitlements, log: QueryLog,
                 cards: CardOffice) -> None:
        self.numbers = numbers
        self.facts = facts
        self.entitlements = entitlements
        self.log = log
        self.cards = cards

    def link_of_resident(self, resident_code: str) -> bytes:
        return self.numbers.link_id(parse_resident_code(resident_code))

    def link_of_number(self, number: str) -> bytes:
        """The person holding ``number`` as their *current* number."""
        return self.numbers.lookup_current(parse_individual_number(number)).link_id

    # -- the resident register's reports ---------------------------------------------------------

    def report(self, resident_code: str, event: str, effective_on: dt.date | str, facts: BasicFacts,
               municipality: str) -> tuple[Reported, int]:
        """Record a report; act on the card (a new 氏名/住所 revokes the 署名用 certificate, a death
        voids the card). Returns the report and how many certificates were revoked."""
        link = self.link_of_resident(resident_code)
        reported = self.facts.report(link, event, effective_on, facts, municipality)
        return reported, self.cards.facts_changed(reported)

    # -- 個人番号等照会 -----------------------------------------------------------------------------

    def _entitled(self, agency_id: int, item: str, purpose: str) -> Entitlement | None:
        check_purpose(purpose)
        return self.entitlements.find(agency_id, item, purpose)

    def _refused(self, agency_id: int, purpose: str, item: str) -> Decision:
        return Decision(self.log.record(agency_id, purpose, ITEM_TOKENS[item], None, None, NOT_ENTITLED,
                                        "no entitlement for this item and purpose"),
                        error=NotEntitledError(f"agency {agency_id} is not entitled to {item} for purpose "
                                               f"{purpose!r}: J-LIS's operator grants entitlements with their legal "
                                               f"basis"))

    def decide_facts(self, agency_id: int, purpose: str, *, number: str | None = None,
                     resident_code: str | None = None) -> Decision:
        """The current 基本4情報 of the person named by current number or resident code."""
        basis = self._entitled(agency_id, "facts", purpose)
        if basis is None:
            return self._refused(agency_id, purpose, "facts")
        token = ITEM_TOKENS["facts"]
        try:
            if (number is None) == (resident_code is None):
                raise InvalidArgumentError("name the person by individual_number or by resident_code")
            link = self.link_of_number(number) if number is not None else self.link_of_resident(str(resident_code))
        except (NotFoundError, FailedPreconditionError) as e:
            return Decision(self.log.record(agency_id, purpose, token, basis, None, NO_SUCH_PERSON,
                                            "no person with this current number"), error=e)
        person: PersonFacts | None = self.facts.current(link)
        if person is None:
            return Decision(self.log.record(agency_id, purpose, token, basis, link, NO_SUCH_PERSON,
                                            "no 本人確認情報 on file"),
                            error=NotFoundError("J-LIS holds no 本人確認情報 for this person"))
        return Decision(self.log.record(agency_id, purpose, token, basis, link), answer=person)

    def decide_number(self, agency_id: int, purpose: str, *, resident_code: str | None = None,
                      search: tuple[str, dt.date, str, str | None] | None = None) -> Decision:
        """The current 個人番号 of the person named by resident code or by 4情報 (name, birth, sex,
        optional address)."""
        basis = self._entitled(agency_id, "number", purpose)
        if basis is None:
            return self._refused(agency_id, purpose, "number")
        token = ITEM_TOKENS["number"]
        if (resident_code is None) == (search is None):
            raise InvalidArgumentError("name the person by resident_code or by 4情報")
        if resident_code is not None:
            link = self.link_of_resident(resident_code)
        else:
            assert search is not None
            found = self.facts.search(*search)
            if not found:
                return Decision(self.log.record(agency_id, purpose, token, basis, None, NO_SUCH_PERSON,
                                                "no living person matches"),
                                error=NotFoundError("no living person matches these 4情報"))
            if len(found) > 1:
                return Decision(self.log.record(agency_id, purpose, token, basis, None, AMBIGUOUS,
                                                f"{len(found)} persons match"),
                                error=AmbiguousMatchError("these 4情報 match several persons: give the 住所 too"))
            link = found[0]
        number = self.numbers.current_of(link)
        if number is None:
            return Decision(self.log.record(agency_id, purpose, token, basis, link, NO_NUMBER, "no number assigned"),
                            error=NotFoundError("this person has no 個人番号"))
        return Decision(self.log.record(agency_id, purpose, token, basis, link), answer=number)

    def card_desk(self, agency_id: int, purpose: str, event: str, link_id: bytes | None) -> Decision:
        """A municipality's card-desk call (``event`` e.g. ``card-apply``): allowed with a live CARD
        entitlement for ``purpose``."""
        basis = self._entitled(agency_id, "card", purpose)
        if basis is None:
            return Decision(self.log.record(agency_id, purpose, event, None, None, NOT_ENTITLED,
                                            "no card entitlement for this purpose"),
                            error=NotEntitledError(f"agency {agency_id} is not entitled to the card desk for purpose "
                                                   f"{purpose!r}"))
        return Decision(self.log.record(agency_id, purpose, event, basis, link_id))


__all__ = ["Decision", "PersonInfo"]
