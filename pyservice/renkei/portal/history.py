"""やりとり履歴 (情報提供等記録表示): the person's records, every proof checked by the portal.

The core answers records newest first, each with an RFC 9162 inclusion proof against one signed
checkpoint per page. The portal does not take the core's word for any of it: per page it opens the
checkpoint with the ledger's pinned verifier key and counts the witnesses' cosignatures it can
verify (pinned keys); per record it checks that the leaf hashes to the proof's leaf hash, that the
proof leads to the checkpoint's root, and that the leaf's person commitment opens to this person's
pseudonym. A record that fails any check is shown as 検証失敗, never as verified.

Records are fetched once per session and then only the new ones (newest first until a known
sequence), so a page of a person with 1,000 records costs the new records' proofs, not 1,000.
A 不開示 record the core releases later (its date passed) appears at the next login.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from renkei._proto.renkei.v1 import disclosure_service_pb2 as dpb
from renkei._proto.renkei.v1 import oversight_service_pb2 as opb
from renkei.errors import InvalidArgumentError, NoteError, ProofError
from renkei.ledger import opens, verify_inclusion
from renkei.mid.platform import Catalog
from renkei.witness.note import SignedNote, Verifier

JST = dt.timezone(dt.timedelta(hours=9), "JST")
PAGE_FETCH = 1000  # the core's largest page
HEAD_FETCH = 20  # what a later view asks for first

OUTCOMES = {
    "permitted": "照会済み",
    "provided": "提供済み",
    "no data": "該当する情報なし",
    "provider unavailable": "提供機関が応答できませんでした",
    "timed out": "時間内に提供されませんでした",
    "refused by provider": "提供機関が提供を拒否しました",
    # Refused inquiries (recorded too), by the core's reason.
    "PROVIDER_NOT_HOLDING": "照会できませんでした（提供元不在：提供機関はあなたの情報を保有していません）",
    "ROW_NOT_PERMITTED": "照会できませんでした（法令で認められていない照会です）",
    "CODE_REFUSED": "照会できませんでした（照会機関の符号が認められませんでした）",
    "PROVIDER_UNAVAILABLE": "照会できませんでした（提供機関が照会を受けられませんでした）",
    "REQUESTER_NOT_ELIGIBLE": "照会できませんでした（照会機関が照会の要件を満たしていませんでした）",
}


def outcome_ja(outcome: str) -> str:
    return OUTCOMES.get(outcome, f"照会できませんでした（{outcome}）")


@lru_cache(maxsize=1)
def _catalog() -> tuple[Catalog, dict[str, tuple[str, str]], dict[str, str]]:
    from renkei.permissions import self_disclosure

    # The shipped 自己情報表示 version is the bundled 別表第二 plus the portal's own affair.
    doc = json.loads(self_disclosure.FILE.read_text(encoding="utf-8"))
    affairs = {a["id"]: (str(a["ko"] or ""), str(a["name"])) for a in doc["affairs"]}
    items = {i["id"]: str(i["name"]) for i in doc["items"]}
    return Catalog(), affairs, items


def affair_name(token: str) -> str:
    """「別表第二 1の項」 and the affair's name, from the permission table (any id, code, JT code)."""
    catalog, affairs, _items = _catalog()
    try:
        ko, name = affairs[catalog.affair(token)]
    except InvalidArgumentError:
        return token
    if not ko:  # 自己情報表示: not a 別表第二 row; its name says its basis (番号法 附則第6条)
        return name
    return f"別表第二 {ko}の項 {name}"


def item_name(token: str) -> str:
    catalog, _affairs, items = _catalog()
    try:
        return items[catalog.item(token)]
    except InvalidArgumentError:
        return token


@dataclass(frozen=True)
class CheckedCheckpoint:
    tree_size: int
    root: bytes
    note: bytes
    witnesses: tuple[str, ...]  # the pinned witnesses whose cosignatures verified


@dataclass(frozen=True)
class CheckedRecord:
    record: opb.ProvisionRecord
    proof: opb.InclusionProof
    checkpoint: CheckedCheckpoint
    verified: bool
    problem: str

    @property
    def sequence(self) -> int:
        return int(self.record.sequence)

    def proof_document(self) -> dict[str, Any]:
        """The raw proof, downloadable: enough to re-check it with any RFC 9162 verifier."""
        r, p = self.record, self.proof
        return {
            "format": "renkei-portal-proof/1",
            "sequence": self.sequence,
            "leaf_data": base64.b64encode(r.leaf_data).decode(),
            "person_opening": base64.b64encode(r.person_opening).decode(),
            "leaf_hash": base64.b64encode(p.leaf_hash).decode(),
            "leaf_index": int(p.leaf_index),
            "tree_size": int(p.tree_size),
            "audit_path": [base64.b64encode(h).decode() for h in p.hashes],
            "checkpoint": self.checkpoint.note.decode(),
            "verified_by_portal": self.verified,
        }


class Checker:
    """Checks pages against the pinned ledger key and witness keys."""

    def __init__(self, ledger_vkey: str, witness_vkeys: Sequence[str] = ()) -> None:
        self._log = Verifier.parse(ledger_vkey)
        self._witnesses = [Verifier.parse(v) for v in witness_vkeys]

    def checkpoint(self, cp: opb.Checkpoint) -> CheckedCheckpoint:
        note = SignedNote.parse(bytes(cp.note))
        verified = note.verify([self._log, *self._witnesses])
        if not any(v is self._log for v, _ts in verified):
            raise NoteError("the checkpoint is not signed by the ledger's key")
        lines = note.text.split("\n")
        if len(lines) < 3:
            raise NoteError("a checkpoint is an origin, a size and a root")
        size, root = int(lines[1]), base64.b64decode(lines[2])
        if size != cp.tree_size or root != bytes(cp.root_hash):
            raise NoteError("the checkpoint's fields disagree with its signed note")
        return CheckedCheckpoint(size, root, bytes(cp.note),
                                 tuple(v.name for v, _ts in verified if v is not self._log))

    def record(self, d: dpb.DisclosedRecord, cp: CheckedCheckpoint, pseudonym: bytes) -> CheckedRecord:
        r, p = d.record, d.inclusion_proof
        problem = ""
        if hashlib.sha256(b"\x00" + r.leaf_data).digest() != p.leaf_hash:
            problem = "記録の内容が証明の葉と一致しません"
        elif p.tree_size != cp.tree_size or p.leaf_index != r.sequence:
            problem = "証明がチェックポイントと一致しません"
        elif bytes(r.person_pseudonym) != pseudonym or not opens(bytes(r.leaf_data), bytes(r.person_opening)):
            problem = "記録があなたのものであることを確認できません"
        else:
            try:
                verify_inclusion(int(p.leaf_index), int(p.tree_size), bytes(p.leaf_hash), list(p.hashes), cp.root)
            except ProofError:
                problem = "包含証明がチェックポイントの根に一致しません"
        return CheckedRecord(r, p, cp, not problem, problem)


Fetch = Callable[[str, int], Awaitable[dpb.ListMyRecordsResponse]]


@dataclass
class History:
    """One person's checked records, newest first (kept in the session)."""

    records: list[CheckedRecord] = field(default_factory=list)
    by_sequence: dict[int, CheckedRecord] = field(default_factory=dict)
    checkpoint: CheckedCheckpoint | None = None
    person: bytes = b""

    async def refresh(self, fetch: Fetch, checker: Checker, pseudonym: bytes | None,
                      offload: Callable[..., Awaitable[Any]]) -> None:
        """Fetch what is newer than the newest known record (all of it the first time). With
        ``pseudonym`` None (an agent's view) the records must open to the pseudonym the core
        names on the first page, and stay that person's."""
        newest = self.records[0].sequence if self.records else -1
        fresh: list[CheckedRecord] = []
        token = ""
        # Known records: ask for a short head page first (usually nothing or a few are new).
        size = PAGE_FETCH if newest < 0 else HEAD_FETCH
        while True:
            page = await fetch(token, size)
            size = PAGE_FETCH
            if pseudonym is None:
                pseudonym = self.person = self.person or bytes(page.person_pseudonym)
            checked: list[CheckedRecord] = await offload(self._check_page, page, checker, pseudonym, newest)
            fresh.extend(checked)
            if page.checkpoint.tree_size and checked:
                self.checkpoint = checked[0].checkpoint
            done = len(checked) < len(page.records) or not page.next_page_token
            if done:
                break
            token = page.next_page_token
        if fresh:
            self.records[:0] = fresh
            for c in fresh:
                self.by_sequence[c.sequence] = c

    @staticmethod
    def _check_page(page: dpb.ListMyRecordsResponse, checker: Checker, pseudonym: bytes,
                    newer_than: int) -> list[CheckedRecord]:
        if not page.records:
            return []
        try:
            cp = checker.checkpoint(page.checkpoint)
        except (NoteError, InvalidArgumentError, ValueError) as e:
            bad = CheckedCheckpoint(int(page.checkpoint.tree_size), b"", bytes(page.checkpoint.note), ())
            return [CheckedRecord(d.record, d.inclusion_proof, bad, False, f"チェックポイントを検証できません: {e}")
                    for d in page.records if d.record.sequence > newer_than]
        return [checker.record(d, cp, pseudonym) for d in page.records if d.record.sequence > newer_than]


@dataclass(frozen=True)
class Row:
    """One line of やりとり履歴: a 照会 and, when there is one, its 提供."""

    inquiry: CheckedRecord | None
    provision: CheckedRecord | None

    @property
    def main(self) -> CheckedRecord:
        r = self.inquiry or self.provision
        assert r is not None
        return r

    @property
    def inquired_at(self) -> dt.datetime | None:
        return None if self.inquiry is None else _time(self.inquiry.record)

    @property
    def provided_at(self) -> dt.datetime | None:
        return None if self.provision is None else _time(self.provision.record)

    @property
    def status(self) -> str:
        return outcome_ja((self.provision or self.main).record.outcome)

    @property
    def verified(self) -> bool:
        return all(r.verified for r in (self.inquiry, self.provision) if r is not None)

    @property
    def parts(self) -> list[CheckedRecord]:
        return [r for r in (self.inquiry, self.provision) if r is not None]


def _time(r: opb.ProvisionRecord) -> dt.datetime:
    t: dt.datetime = r.time.ToDatetime(tzinfo=dt.UTC)
    return t.astimezone(JST)


def rows(history: History, *, since: dt.date | None = None, until: dt.date | None = None,
         agency: int | None = None) -> list[Row]:
    """照会 rows (with their 提供) newest first, filtered by the 照会's date (JST) and agency
    (照会機関 or 提供機関)."""
    answers: dict[int, CheckedRecord] = {}
    for c in history.records:
        if c.record.kind == "provision":
            answers.setdefault(int(c.record.inquiry_sequence), c)
    out: list[Row] = []
    for c in history.records:
        r = c.record
        if r.kind == "provision":
            if int(r.inquiry_sequence) in history.by_sequence:
                continue  # shown on its 照会's row
            row = Row(None, c)
        else:
            row = Row(c, answers.get(c.sequence))
        day = _time(row.main.record).date()
        if (since is not None and day < since) or (until is not None and day > until):
            continue
        if agency is not None and agency not in (r.requester_agency_id, r.provider_agency_id):
            continue
        out.append(row)
    return out


__all__ = ["CheckedRecord", "Checker", "History", "Row", "affair_name", "item_name", "outcome_ja", "rows"]
