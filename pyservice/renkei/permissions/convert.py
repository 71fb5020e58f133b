"""Convert the 別表第二 dataset (``shared/data/beppyo2``) into renkei's table format.

    python -m renkei.permissions_convert SRC_DIR OUT.json [--codes CODES.csv]
        [--label beppyo2-2015] [--effective-from 2017-11-13T00:00:00+09:00] [--effective-until ...]

The output is deterministic: the same input gives the same bytes, so the bundled default
``renkei/data/permissions/beppyo2-2015.json`` can be regenerated and compared (the test suite
does). The format is documented in ``docs/arch/permissions.md``.

Mapping:

* one affair per 項: id ``beppyo2-<項>``, permit code ``B2.<項>``, name = the 事務 cell verbatim;
* one row per (項, row of the 項): ref ``B2.<項>.<row>``, requester / provider type ids and
  information category ids exactly as ``structured.json`` gives them;
* one item per information category; its permit code ``B2.<項>.<row>.<k>`` names where the
  law first mentions it (k-th category of that row), so it is derived from the text itself;
* optional operational codes from a CSV with columns ``kind,code,target``: kind ``affair``
  (事務手続コード ``JT`` + 14 digits → affair id) or ``item`` (特定個人情報名コード ``TM`` + 14
  digits → item id). The real code lists are not part of the dataset; none are invented here.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

FORMAT = "renkei-permissions/1"
DEFAULT_LABEL = "beppyo2-2015"
# 情報連携の本格運用開始 (full operation of the information-provision network).
DEFAULT_EFFECTIVE_FROM = "2017-11-13T00:00:00+09:00"
SOURCE = (
    "番号法 別表第二 (平成二十五年法律第二十七号), 2015 snapshot: ledmonster/japanese-law e79fd51 "
    "doc/H25/H25HO027.rst, 最終改正 平成二七年九月九日法律第六五号; 259 rows, 120 項 (三十六 削除)"
)
_CODE = {"affair": re.compile(r"JT\d{14}"), "item": re.compile(r"TM\d{14}")}


def _ko_key(ko: str) -> tuple[int, int]:
    main, _, sub = ko.partition("-")
    return int(main), int(sub or 0)


def convert(src: Path, *, label: str = DEFAULT_LABEL, effective_from: str = DEFAULT_EFFECTIVE_FROM,
            effective_until: str | None = None, codes: Path | None = None) -> dict[str, Any]:
    rows_in: list[dict[str, Any]] = json.loads((src / "structured.json").read_text(encoding="utf-8"))
    types: list[dict[str, Any]] = json.loads((src / "agency_types.json").read_text(encoding="utf-8"))
    cats: list[dict[str, Any]] = json.loads((src / "information_categories.json").read_text(encoding="utf-8"))
    return build(rows_in, types, cats, label=label, effective_from=effective_from,
                 effective_until=effective_until, codes=codes, source=SOURCE)


def from_structured(rows_in: list[dict[str, Any]], *, label: str, effective_from: str,
                    effective_until: str | None = None, source: str | None = None) -> dict[str, Any]:
    """A table document from rows shaped like ``structured.json`` alone (agency type and item
    names taken from the rows' own ``*_types`` / ``information_categories`` fields)."""
    types: dict[str, str] = {}
    cats: dict[str, str] = {}
    try:
        for r in rows_in:
            for names, ids in ((r["requester_types"], r["requester_type_ids"]),
                               (r["provider_types"], r["provider_type_ids"])):
                types.update(zip(ids, names, strict=True))
            cats.update(zip(r["information_category_ids"], r["information_categories"], strict=True))
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"rows are not shaped like structured.json: {e}") from e
    return build(rows_in, [{"id": k, "name": v} for k, v in types.items()],
                 [{"id": k, "name": v} for k, v in cats.items()], label=label,
                 effective_from=effective_from, effective_until=effective_until, source=source)


def build(rows_in: list[dict[str, Any]], types: list[dict[str, Any]], cats: list[dict[str, Any]], *,
          label: str, effective_from: str, effective_until: str | None = None,
          codes: Path | None = None, source: str | None = None) -> dict[str, Any]:
    rows_in = sorted(rows_in, key=lambda r: (_ko_key(r["item"]), r["row_in_item"]))

    affairs: dict[str, dict[str, Any]] = {}
    first_mention: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    for r in rows_in:
        ko = r["item"]
        aid = f"beppyo2-{ko}"
        text = r["affair"]
        if aid in affairs and affairs[aid]["name"] != text:
            raise ValueError(f"項 {ko}: two different 事務 cells")
        affairs.setdefault(aid, {"id": aid, "code": f"B2.{ko}", "ko": ko, "name": text, "codes": []})
        ref = f"B2.{ko}.{r['row_in_item']}"
        for k, cid in enumerate(r["information_category_ids"], 1):
            first_mention.setdefault(cid, f"{ref}.{k}")
        rows.append({
            "ref": ref,
            "ko": ko,
            "affair": aid,
            "requesters": list(r["requester_type_ids"]),
            "providers": list(r["provider_type_ids"]),
            "items": list(r["information_category_ids"]),
            "municipality": None,
        })
    items = {c["id"]: {"id": c["id"], "code": first_mention[c["id"]], "name": c["name"], "codes": []}
             for c in cats if c["id"] in first_mention}
    unused = [c["id"] for c in cats if c["id"] not in first_mention]
    if unused:
        raise ValueError(f"categories used by no row: {unused}")

    if codes is not None:
        with codes.open(encoding="utf-8", newline="") as f:
            for n, rec in enumerate(csv.DictReader(f), 2):
                kind, code, target = rec.get("kind"), rec.get("code"), rec.get("target")
                if kind not in _CODE or not code or not _CODE[kind].fullmatch(code):
                    raise ValueError(f"{codes}:{n}: bad kind/code {kind!r} {code!r}")
                table = affairs if kind == "affair" else items
                if not isinstance(target, str) or target not in table:
                    raise ValueError(f"{codes}:{n}: unknown {kind} {target!r}")
                table[target]["codes"].append(code)
        for e in (*affairs.values(), *items.values()):
            e["codes"].sort()

    return {
        "format": FORMAT,
        "label": label,
        "effective_from": effective_from,
        "effective_until": effective_until,
        "source": source,
        "agency_types": [{"id": t["id"], "name": t["name"]} for t in types],
        "affairs": list(affairs.values()),
        "items": list(items.values()),
        "rows": rows,
    }


def dumps(doc: dict[str, Any]) -> str:
    """The canonical file text: UTF-8 JSON, Japanese unescaped, one-space indent, final newline."""
    return json.dumps(doc, ensure_ascii=False, indent=1) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m renkei.permissions_convert", description=__doc__.split("\n\n")[0])
    p.add_argument("src", type=Path,
                   help="directory with structured.json, agency_types.json, information_categories.json")
    p.add_argument("out", type=Path, help="output JSON file ('-' for stdout)")
    p.add_argument("--label", default=DEFAULT_LABEL)
    p.add_argument("--effective-from", default=DEFAULT_EFFECTIVE_FROM)
    p.add_argument("--effective-until", default=None)
    p.add_argument("--codes", type=Path, default=None, help="CSV kind,code,target of JT/TM operational codes")
    args = p.parse_args(argv)
    try:
        doc = convert(args.src, label=args.label, effective_from=args.effective_from,
                      effective_until=args.effective_until, codes=args.codes)
    except (OSError, ValueError, KeyError) as e:
        print(f"permissions_convert: {e}", file=sys.stderr)
        return 1
    text = dumps(doc)
    if str(args.out) == "-":
        sys.stdout.write(text)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
        print(f"{args.out}: {len(doc['rows'])} rows, {len(doc['affairs'])} 項, {len(doc['items'])} items, "
              f"{len(doc['agency_types'])} agency types", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
