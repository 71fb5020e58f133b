"""自己情報表示 at the core: the disclosure system's own 機関別符号 for a logged-in person.

マイナポータル (情報提供等記録開示システム, 番号法 附則第6条) fetches a person's own information from
the agencies that hold it as a requester under its own agency id, through the ordinary inquiry
path (so every fetch is a 照会 and a 提供 in the ledger, which the person then sees). To inquire
it needs *its* code for the person. It never sees a My Number, so it cannot acquire one through
J-LIS as other agencies do (番号法 第21条の2); instead the core issues it for the person of a live
card-login session (DisclosureService.Login: the person's card signed the core's challenge moments
before). The core maps the session to its person index, the index to the person's link id, and
issues the code exactly as an acquisition does (``AgencyCodes.issue``: an active agency with an
approved PIA; the holding journaled durably before the code is returned).

Only an agency of type ``information_disclosure_system`` may ask, so no other agency can turn a
session token into a code; and a session token alone gives nothing: the caller must also present
the portal's agency certificate. The provider's code stays inside the core (translated during the
inquiry), as for every requester.
"""

from __future__ import annotations

import logging

from renkei.errors import FailedPreconditionError, PermissionDeniedError
from renkei.linkage.codes import AgencyCodes
from renkei.linkage.disclosure import Disclosure
from renkei.linkage.registry import AgencyRegistry
from renkei.permissions.self_disclosure import PORTAL_TYPE

log = logging.getLogger("renkei.linkage")


class SessionCodes:
    """Issues the disclosure system's code for the person of a session (thread-safe)."""

    def __init__(self, disclosure: Disclosure, codes: AgencyCodes, registry: AgencyRegistry) -> None:
        self._disclosure = disclosure
        self._codes = codes
        self._registry = registry

    def issue(self, agency_id: int, session_token: str) -> bytes:
        """The caller's code (16 bytes) for the session's person; the holding is durable first."""
        agency = self._registry.require_active(agency_id)
        if PORTAL_TYPE not in agency.types:
            raise PermissionDeniedError("only the disclosure system (情報提供等記録開示システム) is issued codes "
                                        "by a person's session")
        person = self._disclosure.person_of(session_token)
        link = self._codes.engine.link_of(person)
        if link is None:  # a card key is registered only for a person J-LIS linked
            raise FailedPreconditionError("the session's person has no link id at the core")
        code = self._codes.issue(agency.agency_id, link)
        log.debug("agency %d was issued a session code", agency.agency_id)
        return code


__all__ = ["SessionCodes"]
