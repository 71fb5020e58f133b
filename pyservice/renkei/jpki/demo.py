"""Demo cards for ``renkei up --demo``: a few fictional holders, cards in ``<box>/cards/``.

The demo PINs are public on purpose (docs/arch/jpki.md): 利用者証明用 ``1234``, 署名用 ``ABC123``.
:func:`renkei.jpki.card.issue_demo_card` issues one more card for any given 基本4情報 (the demo
population uses it).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from renkei.jpki.ca import Jpki
from renkei.jpki.card import issue_demo_card
from renkei.jpki.profile import BasicFacts

DEMO_AUTH_PIN = "1234"
DEMO_SIGN_PIN = "ABC123"

#: (file name, 基本4情報) of the demo holders — fictional people at public addresses.
DEMO_HOLDERS = (
    ("card-demo-1.json", BasicFacts("デモ 太郎", dt.date(1980, 4, 1), "1", "東京都千代田区霞が関二丁目1番2号")),
    ("card-demo-2.json", BasicFacts("デモ 花子", dt.date(1992, 2, 29), "2", "神奈川県横浜市中区日本大通1")),
    ("card-demo-3.json", BasicFacts("デモ 次郎", dt.date(2015, 8, 15), "1", "大阪府大阪市中央区大手前二丁目1番22号")),
)


def issue_demo_cards(jpki_dir: str | os.PathLike[str], cards_dir: str | os.PathLike[str]) -> list[Path]:
    """The demo holders' cards, each issued once (an existing file is kept); the third holder is
    under 15 and gets no 署名用 certificate."""
    out: list[Path] = []
    folder = Path(cards_dir)
    with Jpki(jpki_dir) as jpki:
        for name, facts in DEMO_HOLDERS:
            if not (folder / name).exists():
                issue_demo_card(jpki, folder, facts, auth_pin=DEMO_AUTH_PIN, sign_pin=DEMO_SIGN_PIN, file_name=name)
            out.append(folder / name)
    return out


__all__ = ["DEMO_AUTH_PIN", "DEMO_HOLDERS", "DEMO_SIGN_PIN", "issue_demo_cards"]
