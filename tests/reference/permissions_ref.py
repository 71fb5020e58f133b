"""Slow, obviously-correct reference of the permission engine and the table content hash.

Written from docs/arch/permissions.md, not from the Rust code: a check scans every row.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from datetime import datetime
from typing import Any

EPOCH = datetime.fromisoformat("1970-01-01T00:00:00+00:00")


def instant_us(s: str) -> int:
    d = datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
    delta = d - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


# --- content hash ---------------------------------------------------------------------------
def _u32(n: int) -> bytes:
    return struct.pack(">I", n)


def _str(s: str) -> bytes:
    b = s.encode()
    return _u32(len(b)) + b


def _opt(s: str | None) -> bytes:
    return b"\x00" if s is None else b"\x01" + _str(s)


def _set(xs: list[str]) -> bytes:
    v = sorted(set(xs), key=lambda s: s.encode())
    return _u32(len(v)) + b"".join(_str(x) for x in v)


def content_hash(doc: dict[str, Any]) -> bytes:
    h = hashlib.sha256()
    h.update(_str("renkei-permissions/1") + _str(doc["label"]))
    h.update(struct.pack(">q", instant_us(doc["effective_from"])))
    until = doc.get("effective_until")
    h.update(b"\x00" if until is None else b"\x01" + struct.pack(">q", instant_us(until)))
    h.update(_opt(doc.get("source")))
    types = sorted(doc["agency_types"], key=lambda t: t["id"].encode())
    h.update(_u32(len(types)) + b"".join(_str(t["id"]) + _str(t["name"]) for t in types))
    affairs = sorted(doc["affairs"], key=lambda a: a["id"].encode())
    h.update(_u32(len(affairs)))
    for a in affairs:
        h.update(_str(a["id"]) + _str(a["code"]) + _opt(a.get("ko")) + _str(a["name"]) + _set(a.get("codes", [])))
    items = sorted(doc["items"], key=lambda i: i["id"].encode())
    h.update(_u32(len(items)))
    for i in items:
        h.update(_str(i["id"]) + _str(i["code"]) + _str(i["name"]) + _set(i.get("codes", [])))
    h.update(_u32(len(doc["rows"])))
    for r in doc["rows"]:
        h.update(_str(r["ref"]) + _opt(r.get("ko")) + _str(r["affair"]) + _set(r["requesters"])
                 + _set(r["providers"]) + _set(r["items"]) + _opt(r.get("municipality")))
    return h.digest()


# --- checks ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Decision:
    outcome: str
    matched: tuple[int, ...] = ()
    failed_item: int | None = None
    nearest: int | None = None


class RefTable:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.label = doc["label"]
        self.effective_from = instant_us(doc["effective_from"])
        self.effective_until = None if doc.get("effective_until") is None else instant_us(doc["effective_until"])
        self.hash = content_hash(doc)
        self.affair_of: dict[str, str] = {}
        for a in doc["affairs"]:
            for name in [a["id"], a["code"], *a.get("codes", [])]:
                self.affair_of[name] = a["id"]
        self.item_of: dict[str, str] = {}
        for i in doc["items"]:
            for name in [i["id"], i["code"], *i.get("codes", [])]:
                self.item_of[name] = i["id"]
        self.types = {t["id"] for t in doc["agency_types"]}
        self.rows = [
            {
                "affair": self.affair_of[r["affair"]],
                "req": set(r["requesters"]),
                "prov": set(r["providers"]),
                "items": {self.item_of[i] for i in r["items"]},
                "muni": int(r["municipality"]) if r.get("municipality") else 0,
            }
            for r in doc["rows"]
        ]

    def check(self, req: list[str], muni: int, affair: str, prov: list[str], items: list[str]) -> Decision:
        a = self.affair_of.get(affair)
        r_set = {t for t in req if t in self.types}
        p_set = {t for t in prov if t in self.types}
        matched = []
        for n, name in enumerate(items):
            it = self.item_of.get(name)
            allowing = [k for k, row in enumerate(self.rows)
                        if row["affair"] == a and row["req"] & r_set and row["prov"] & p_set and it in row["items"]
                        and row["muni"] in (0, muni)]
            if not allowing:
                outcome, nearest = self.explain(r_set, muni, a, p_set, it)
                return Decision(outcome, (), n, nearest)
            matched.append(allowing[0])
        return Decision("allowed", tuple(matched))

    def explain(self, r_set: set[str], muni: int, a: str | None, p_set: set[str],
                it: str | None) -> tuple[str, int | None]:
        rows_a = [k for k, row in enumerate(self.rows) if a is not None and row["affair"] == a]
        if not rows_a:
            return "unknown_affair", None

        def score(k: int) -> tuple[int, int, int, int]:
            row = self.rows[k]
            return (bool(row["req"] & r_set), bool(row["prov"] & p_set), it in row["items"], row["muni"] in (0, muni))

        in_scope = [k for k in rows_a if self.rows[k]["muni"] in (0, muni)]
        foreign_full = [k for k in rows_a if k not in in_scope and score(k)[:3] == (True, True, True)]
        nearest = max(rows_a, key=lambda k: (score(k), -k))
        if foreign_full:
            return "other_municipality", foreign_full[0]
        if not in_scope:
            return "other_municipality", nearest
        if not any(self.rows[k]["req"] & r_set for k in in_scope):
            return "requester_not_entitled", nearest
        if not any(self.rows[k]["req"] & r_set and self.rows[k]["prov"] & p_set for k in in_scope):
            return "provider_not_listed", nearest
        return "item_not_listed", nearest


def in_force(tables: list[RefTable], at_us: int) -> RefTable | None:
    started = [t for t in tables if t.effective_from <= at_us]
    if not started:
        return None
    t = max(started, key=lambda t: t.effective_from)
    if t.effective_until is not None and at_us >= t.effective_until:
        return None
    return t
