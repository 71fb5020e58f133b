"""The portal's entitlement: 自己情報表示 (番号法 附則第6条), a table version of its own.

マイナポータル (情報提供等記録開示システム) fetches a person's own 特定個人情報 from the agencies
that hold it, through the same 情報提供ネットワークシステム as any requester, so that the person
can see it ("あなたの情報"). Its basis is not a row of 別表第二: 番号法 附則第6条 has the government
set up the disclosure system through which a person obtains their own information held by
the agencies. The core decides every inquiry against the table in force, and the commission's
audit re-checks every record against it, so the entitlement is written down as a table
version like any other (``renkei-permissions/1``):

* the bundled 2015 別表第二, unchanged (every row still permits what it permitted), plus
* an agency type ``information_disclosure_system`` (情報提供等記録開示システムの設置者),
* one affair ``SD.1`` (自己情報表示, no 別表第二 項), and
* rows "the disclosure system may request item X from provider type Z", one per provider type,
  for the items the demonstration country's intermediate servers hold: 地方税関係情報 and
  住民票関係情報 from 市町村長, 年金給付関係情報 from 日本年金機構, 医療保険給付関係情報 from
  全国健康保険協会.

The document is derived from the bundled table by :func:`build` (deterministic: the test suite
rebuilds it and compares the bytes) and shipped as ``data/permissions/self-disclosure-2024.json``.
It is **not** loaded by default: an operator installs and activates it (``renkei permissions
install … && renkei permissions activate beppyo2-2015+self-disclosure``), which ``renkei up``
does for the box; the commission's audit takes it with ``--table self-disclosure-2024``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from renkei.permissions.engine import default_table_path

#: The agency type of the disclosure system (マイナポータル's agency in the core's registry).
PORTAL_TYPE = "information_disclosure_system"
PORTAL_TYPE_NAME = "情報提供等記録開示システムの設置者（内閣総理大臣）"
#: The affair of 自己情報表示 (its code is what permits and records carry).
AFFAIR_ID = "self-disclosure"
AFFAIR_CODE = "SD.1"
AFFAIR_NAME = ("自己情報表示（番号法附則第六条の情報提供等記録開示システムにより、"
               "本人が自己に係る特定個人情報の提供を受ける事務）")
LABEL = "beppyo2-2015+self-disclosure"
#: From when the version is in force (before it, the 2015 table alone is).
EFFECTIVE_FROM = "2024-04-01T00:00:00+09:00"
FILE = Path(__file__).resolve().parent.parent / "data" / "permissions" / "self-disclosure-2024.json"
#: (row ref, provider types, items): what the disclosure system may fetch, by provider type.
ROWS: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [
    ("SD.1.1", ("municipal_mayor",), ("local_tax_info", "resident_record_info")),
    ("SD.1.2", ("japan_pension_service",), ("pension_benefit_info",)),
    ("SD.1.3", ("japan_health_insurance_association",), ("medical_insurance_benefit_info",)),
]


def build(base: dict[str, Any] | None = None) -> dict[str, Any]:
    """The version: ``base`` (default: the bundled 2015 別表第二) plus the disclosure system's rows."""
    doc: dict[str, Any] = json.loads(json.dumps(base)) if base is not None else \
        json.loads(default_table_path().read_text(encoding="utf-8"))
    doc.update(label=LABEL, effective_from=EFFECTIVE_FROM, effective_until=None,
               source=f"{doc.get('source', '')}; plus 番号法 附則第6条 (情報提供等記録開示システム): 自己情報表示 "
                      f"rows of the disclosure system (renkei.permissions.self_disclosure)")
    doc["agency_types"].append({"id": PORTAL_TYPE, "name": PORTAL_TYPE_NAME})
    doc["affairs"].append({"id": AFFAIR_ID, "code": AFFAIR_CODE, "ko": None, "name": AFFAIR_NAME, "codes": []})
    doc["rows"] += [{"ref": ref, "ko": None, "affair": AFFAIR_ID, "requesters": [PORTAL_TYPE],
                     "providers": list(providers), "items": list(items), "municipality": None}
                    for ref, providers, items in ROWS]
    return doc


def render(doc: dict[str, Any]) -> str:
    """The file's bytes (as the converter writes tables)."""
    return json.dumps(doc, ensure_ascii=False, indent=1) + "\n"


def entitlements(doc: dict[str, Any] | None = None) -> list[tuple[str, tuple[str, ...], str]]:
    """(affair id, provider types, item id) the disclosure system may fetch under ``doc``
    (default: the shipped version), in table order."""
    d = doc if doc is not None else json.loads(FILE.read_text(encoding="utf-8"))
    return [(r["affair"], tuple(r["providers"]), item) for r in d["rows"] if PORTAL_TYPE in r["requesters"]
            for item in r["items"]]


def main() -> int:  # pragma: no cover - the file is committed; the test compares it
    FILE.write_text(render(build()), encoding="utf-8")
    print(f"wrote {FILE}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())


__all__ = ["AFFAIR_CODE", "AFFAIR_ID", "FILE", "LABEL", "PORTAL_TYPE", "build", "entitlements", "render"]
