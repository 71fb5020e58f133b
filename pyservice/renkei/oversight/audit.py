"""The independent re-evaluation of the ledger (監査): trust nothing the core says about itself.

1. **The checkpoint.** The cosigned checkpoint must carry a valid signature of the log's key
   (C2SP signed note, Ed25519) *and* a valid cosignature/v1 of every witness the auditor trusts
   (a split view shown to the commission alone would lack them).
2. **The tree.** Every record 0 … size−1 is hashed as a leaf (RFC 9162) and the tree's root must
   equal the checkpoint's; each record's own sequence field must be its position.
3. **The law.** Every record marked permitted is checked again against the auditor's own copy of
   the permission table (別表第二 and ordinance rows) as in force at the record's time: the record
   must name that version by its content hash, and that version must allow the requester's and
   provider's agency types, the affair and every item. Anything else is a *finding*. Denials the
   table would have allowed are reported as notes (a refusal harms no one's privacy).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from renkei._core import ledger as _l
from renkei.errors import InvalidArgumentError, NoteError
from renkei.ledger import Checkpoint, LedgerRecord, outcome_token, verify_checkpoint
from renkei.permissions.engine import AgencyFacts, PermissionEngine, content_hash
from renkei.witness.note import SignedNote, Verifier

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Agency:
    agency_id: int
    name: str
    types: tuple[str, ...]
    municipality: str | None = None


@dataclass(frozen=True)
class Entry:
    """One leaf as fetched: its position and exact bytes."""

    seq: int
    data: bytes


@dataclass(frozen=True)
class WitnessCheck:
    name: str
    timestamp: int


@dataclass(frozen=True)
class CheckpointCheck:
    checkpoint: Checkpoint
    witnesses: tuple[WitnessCheck, ...]


@dataclass(frozen=True)
class Finding:
    """A record the audit cannot square with the law or the tree."""

    kind: str  # not_permitted, table_not_in_force, table_unknown, unknown_agency, bad_record
    severity: str  # "violation" or "note"
    seq: int
    time: datetime | None
    requester: int | None
    provider: int | None
    affair: str
    items: tuple[str, ...]
    detail: str

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "severity": self.severity, "seq": self.seq,
                "time": None if self.time is None else self.time.isoformat(), "requester": self.requester,
                "provider": self.provider, "affair": self.affair, "items": list(self.items), "detail": self.detail}


@dataclass
class AuditResult:
    checkpoint: CheckpointCheck
    records: list[LedgerRecord]
    findings: list[Finding] = field(default_factory=list)
    tables: dict[str, str] = field(default_factory=dict)  # hash hex → label

    @property
    def violations(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "violation"]


def check_checkpoint(note: bytes | str, log_vkey: str, witness_vkeys: Sequence[str]) -> CheckpointCheck:
    """The log's signature (``log_vkey``) and every trusted witness's cosignature must verify;
    raises :class:`NoteError` otherwise."""
    raw = note.encode() if isinstance(note, str) else note
    cp = verify_checkpoint(raw, log_vkey)
    parsed = SignedNote.parse(raw)
    verifiers = [Verifier.parse(v) for v in witness_vkeys]
    if any(v.sig_type != 0x04 for v in verifiers):
        raise InvalidArgumentError("a witness's verifier key is a cosignature/v1 (0x04) key")
    verified = {v.name: ts for v, ts in parsed.verify(verifiers)}
    missing = [v.name for v in verifiers if v.name not in verified]
    if missing:
        raise NoteError(f"the checkpoint carries no valid cosignature of {', '.join(missing)}")
    return CheckpointCheck(cp, tuple(WitnessCheck(n, int(t or 0)) for n, t in sorted(verified.items())))


def check_tree(checkpoint: Checkpoint, entries: Iterable[Entry]) -> list[LedgerRecord]:
    """Decode every leaf 0 … size−1 and recompute the root; raises :class:`NoteError` when the
    leaves do not give the checkpoint's root, or a leaf is missing or out of place."""
    tree = _l.MemTree()
    records: list[LedgerRecord] = []
    for e in entries:
        if e.seq >= checkpoint.size:
            break
        if e.seq != tree.size():
            raise NoteError(f"record {tree.size()} is missing from what was fetched (next is {e.seq})")
        tree.push(e.data)
        try:
            # Public leaves (layout 2) name no person: the commission audits without the openings.
            public = e.data[:1] == b"\x02"
            records.append(LedgerRecord.decode_public(e.data)[0] if public else LedgerRecord.decode(e.data))
        except InvalidArgumentError as err:
            raise NoteError(f"record {e.seq} does not decode: {err}") from None
        if records[-1].seq != e.seq:
            raise NoteError(f"record {e.seq} carries sequence number {records[-1].seq}")
    if tree.size() != checkpoint.size:
        raise NoteError(f"only {tree.size()} of the checkpoint's {checkpoint.size} records were fetched")
    if tree.root(checkpoint.size) != checkpoint.root:
        raise NoteError("the records do not hash to the cosigned root: the ledger was altered")
    return records


def _time(r: LedgerRecord) -> datetime:
    return r.time if r.time is not None else _EPOCH


def check_law(records: Sequence[LedgerRecord], agencies: dict[int, Agency], engine: PermissionEngine) -> list[Finding]:
    """Re-check every record against ``engine`` (the auditor's own table versions)."""
    known = {v.hash: v for v in engine.versions()}
    out: list[Finding] = []
    by_seq = {r.seq: r for r in records}
    for r in records:
        assert r.seq is not None
        t = _time(r)

        def finding(kind: str, detail: str, severity: str = "violation", rec: LedgerRecord = r,
                    at: datetime = t) -> Finding:
            return Finding(kind, severity, rec.seq or 0, at, rec.requester, rec.provider, rec.affair,
                           tuple(rec.items), detail)

        if r.is_provision:  # a 提供 answers a permitted 照会 of the same exchange, earlier in the log
            q = by_seq.get(r.inquiry_seq)
            if (q is None or not q.permitted or q.seq is None or q.seq >= r.seq or q.permit_id != r.permit_id
                    or (q.requester, q.provider, q.affair, tuple(q.items)) != (r.requester, r.provider, r.affair,
                                                                           tuple(r.items))):
                out.append(finding("provision_without_inquiry",
                                   f"the 提供 names 照会 record {r.inquiry_seq}, which is not a permitted inquiry of "
                                   f"the same exchange before it"))
            continue
        req, prov = agencies.get(r.requester), agencies.get(r.provider)
        if not r.permitted:
            if r.denied_code == 4 and req and prov:  # ROW_NOT_PERMITTED: would the table have allowed it?
                res = engine.check(AgencyFacts(req.types, req.municipality), r.affair, AgencyFacts(prov.types),
                                   list(r.items), at=t)
                if res.allowed and res.version_hash == r.table_hash:
                    out.append(finding("denied_but_permitted",
                                       "denied as ROW_NOT_PERMITTED although the table in force allows it", "note"))
            continue
        if r.table_hash not in known:
            out.append(finding("table_unknown",
                               f"permitted under table version sha256:{r.table_hash.hex()[:16]}…, which the "
                               f"commission does not hold"))
            continue
        if req is None or prov is None:
            missing = r.requester if req is None else r.provider
            out.append(finding("unknown_agency", f"agency {missing} is not registered"))
            continue
        res = engine.check(AgencyFacts(req.types, req.municipality), r.affair, AgencyFacts(prov.types),
                           list(r.items), at=t)
        if res.version_hash != r.table_hash:
            in_force = "no version" if res.version_hash is None else f"{res.version_label} " \
                f"(sha256:{res.version_hash.hex()[:16]}…)"
            out.append(finding("table_not_in_force",
                               f"the record names table {known[r.table_hash].label} but {in_force} was in force "
                               f"at {t.isoformat()}"))
            continue
        if not res.allowed:
            out.append(finding("not_permitted", " ".join(res.explain().split("\n")[1:]).strip()
                               or res.outcome))
    return out


def audit(note: bytes | str, log_vkey: str, witness_vkeys: Sequence[str], entries: Iterable[Entry],
          agencies: Iterable[Agency], engine: PermissionEngine,
          shipped: Sequence[str | os.PathLike[str]] = ()) -> AuditResult:
    """The whole audit (see the module docstring). Raises :class:`NoteError` when the checkpoint
    or the tree does not verify: then no record can be trusted to be the ledger's.

    ``shipped``: table versions the auditor holds but puts into ``engine`` only when a record
    names one by its content hash (the versions shipped with renkei, such as the portal's
    自己情報表示 rows, which a core may or may not have activated). Once loaded, a version is
    in force from its start for every record, so a core that used it for some records and
    another table for others after its start is still caught (``table_not_in_force``)."""
    cc = check_checkpoint(note, log_vkey, witness_vkeys)
    records = check_tree(cc.checkpoint, entries)
    named = {r.table_hash for r in records}
    known = {v.hash for v in engine.versions()}
    for source in shipped:
        digest = content_hash(source)
        if digest in named and digest not in known:
            engine.load(source)
            known.add(digest)
    by_id = {a.agency_id: a for a in agencies}
    result = AuditResult(cc, records, check_law(records, by_id, engine))
    result.tables = {v.hash.hex(): v.label for v in engine.versions()}
    return result


__all__ = ["Agency", "AuditResult", "CheckpointCheck", "Entry", "Finding", "WitnessCheck", "audit",
           "check_checkpoint", "check_law", "check_tree", "outcome_token"]
