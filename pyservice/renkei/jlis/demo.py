"""The demo residents of ``renkei up --demo`` at J-LIS: numbers, 本人確認情報, entitlements, cards.

The demo holders of :data:`renkei.jpki.demo.DEMO_HOLDERS` become residents with fictional
住民票コード: J-LIS assigns their numbers (which queues their 個人番号通知書), records their
4情報 as a registration by the municipality, and issues their cards through its card office —
the JPKI certificates and the 券面事項入力補助AP — into ``<box>/cards/``. The demo agencies get
entitlements to ask J-LIS (:data:`DEMO_ENTITLEMENTS`). Demo PINs are public on purpose:
利用者証明用 and 券面事項入力補助 ``1234``, 署名用 ``ABC123``.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from renkei.datadir import make_private_dir, write_atomic
from renkei.jlis.authority import NumberAuthority
from renkei.jlis.cards import CardOffice
from renkei.jlis.facts import FactsRegistry
from renkei.jlis.queries import Entitlements, QueryLog
from renkei.jpki.demo import DEMO_AUTH_PIN, DEMO_HOLDERS, DEMO_SIGN_PIN
from renkei.numbers import resident_check_digit

DEMO_KENMEN_PIN = DEMO_AUTH_PIN
#: The demo holders' 住民票コード bodies (10 digits; the check digit is computed) and municipalities.
_RESIDENTS = (("3000000001", "131016"), ("3000000002", "141003"), ("3000000003", "271004"))
#: (agency id, item, purpose, legal basis) of the demo agencies (renkei.service.demo.DEMO_AGENCIES).
DEMO_ENTITLEMENTS = (
    (1, "card", "card-desk", "番号法 第17条 (個人番号カードの交付); 公的個人認証法"),
    (1, "facts", "JT01010000000001", "住民基本台帳法 第30条の10; 番号法 第14条第2項"),
    (1, "number", "JT01010000000001", "番号法 第14条第2項"),
    (2, "card", "card-desk", "番号法 第17条 (個人番号カードの交付); 公的個人認証法"),
    (3, "facts", "JT03010000000001", "住民基本台帳法 別表第一; 番号法 第14条第2項 (年金給付)"),
    (3, "number", "JT03010000000001", "番号法 第14条第2項 (年金給付)"),
)


def demo_resident_code(i: int) -> str:
    """The 住民票コード of demo holder ``i`` (0-based)."""
    body = _RESIDENTS[i][0]
    return f"{body}{resident_check_digit(body)}"


def seed_demo(jlis_dir: str | os.PathLike[str], jpki_dir: str | os.PathLike[str],
              cards_dir: str | os.PathLike[str]) -> list[Path]:
    """Once per box (an existing card file is kept): the demo residents, their cards, the demo
    agencies' entitlements. J-LIS must not be running (the query log is opened here)."""
    out: list[Path] = []
    folder = make_private_dir(Path(cards_dir))
    with NumberAuthority(jlis_dir) as numbers:
        facts = FactsRegistry(numbers.data_dir)
        entitlements = Entitlements(numbers.data_dir)
        log = QueryLog(numbers.data_dir, numbers.link_key)
        office = CardOffice(numbers.data_dir, numbers, facts, log, jpki_dir)
        try:
            if not entitlements.list():
                for agency, item, purpose, basis in DEMO_ENTITLEMENTS:
                    entitlements.grant(agency, item, purpose, basis, "renkei up --demo")
            for i, (file_name, holder) in enumerate(DEMO_HOLDERS):
                path = folder / file_name
                out.append(path)
                if path.exists():
                    continue
                code = demo_resident_code(i)
                numbers.assign(code)
                link = numbers.link_id(int(code))
                if facts.current(link) is None:
                    facts.report(link, "registration", dt.date(2016, 1, 1), holder, _RESIDENTS[i][1])
                photo = "sha256:" + f"{i + 1:064x}"
                app = office.apply(link, "new", photo, "renkei up --demo")
                issued = office.issue(app.application_id, auth_pin=DEMO_AUTH_PIN, sign_pin=DEMO_SIGN_PIN,
                                      kenmen_pin=DEMO_KENMEN_PIN, actor="renkei up --demo")
                write_atomic(path, issued.token, 0o600)
        finally:
            office.close()
            log.close()
            entitlements.close()
            facts.close()
    return out


__all__ = ["DEMO_ENTITLEMENTS", "DEMO_KENMEN_PIN", "demo_resident_code", "seed_demo"]
