"""The commission's audit without a box: the tree check catches altered records, the law check
finds out-of-table records (and only those), anomalies are found per agency, and the report is
written (Markdown, JSON, PNG)."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from renkei._core import ledger as _l
from renkei.errors import NoteError
from renkei.ledger import Checkpoint, LedgerRecord
from renkei.oversight import anomalies, report
from renkei.oversight.audit import Agency, Entry, audit, check_law, check_tree
from renkei.permissions.engine import PermissionEngine
from renkei.service.demo import DEMO_AGENCIES
from renkei.witness.cosignature import CosignatureKey

AGENCIES = [Agency(i, name, types, code or None) for i, name, types, code, _ in DEMO_AGENCIES]
ENGINE = PermissionEngine.with_default()
TABLE = ENGINE.versions()[0].hash
ORIGIN = "audit.test/ledger"
LOG_SEED = bytes(range(32))


def rec(seq: int, t: datetime, requester: int = 4, provider: int = 1, denied: int = 0,
        affair: str = "B2.1", item: str = "B2.1.2.1") -> LedgerRecord:
    return LedgerRecord(requester=requester, provider=provider, affair=affair, items=[item], table_hash=TABLE,
                        pseudonym=secrets.token_bytes(32) if denied != 1 else bytes(32),
                        permit_id=secrets.token_bytes(16) if not denied else bytes(16), denied_code=denied,
                        reason="" if not denied else "refused", time=t, seq=seq)


def history() -> list[LedgerRecord]:
    """Ten days of office-hours inquiries by the minister, one night burst, a municipality that is
    refused a lot, and one out-of-table record."""
    out: list[LedgerRecord] = []
    start = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)  # Monday 09:00 JST
    for day in range(10):
        for hour in range(8):
            for k in range(3 + (hour % 3)):
                out.append(rec(len(out), start + timedelta(days=day, hours=hour, minutes=7 * k)))
    night = start + timedelta(days=4, hours=14)  # Friday 23:00 JST
    for k in range(60):
        out.append(rec(len(out), night + timedelta(seconds=30 * k)))
    for k in range(30):  # 横浜市長 asks for pension data it may not have, with codes it does not hold
        out.append(rec(len(out), start + timedelta(days=k % 10, hours=2, minutes=k), requester=2, provider=3,
                       denied=1 if k % 2 else 4))
    out.append(rec(len(out), start + timedelta(days=3, hours=5), requester=1, provider=4))  # reversed 項1
    return out


def signed_checkpoint(records: list[LedgerRecord], witness: CosignatureKey) -> tuple[str, list[Entry]]:
    tree = _l.MemTree()
    entries = []
    for r in records:
        data = r.encode()
        tree.push(data)
        entries.append(Entry(r.seq or 0, data))
    import base64

    text = f"{ORIGIN}\n{tree.size()}\n{base64.b64encode(tree.root(tree.size())).decode()}\n"
    note = _l.sign_note(text, name=ORIGIN, seed=LOG_SEED)
    return note + witness.cosign(text, 1790000000), entries


def test_audit_finds_the_out_of_table_record_and_the_anomalies(tmp_path: Path) -> None:
    records = history()
    witness = CosignatureKey("ppc.test/w", bytes([7]) * 32)
    note, entries = signed_checkpoint(records, witness)
    log_vkey = _l.vkey_for(ORIGIN, LOG_SEED)
    result = audit(note, log_vkey, [witness.vkey], entries, AGENCIES, ENGINE)
    assert result.checkpoint.checkpoint.size == len(records)
    [violation] = result.violations
    assert (violation.seq, violation.kind, violation.requester) == (len(records) - 1, "not_permitted", 1)
    profiles, found = anomalies.detect(result.records)
    kinds = {(a.agency_id, a.kind) for a in found}
    assert (4, "volume_burst") in kinds and (4, "off_hours") in kinds
    assert (2, "denial_ratio") in kinds and (2, "refused_codes") in kinds
    assert (1, "denial_ratio") not in kinds and (4, "denial_ratio") not in kinds
    bursts = profiles[4].bursts
    assert [n for _, n in bursts] == [60] and bursts[0][0].astimezone(anomalies.JST).hour == 23
    rep = report.write(tmp_path / "out", result, profiles, found, AGENCIES, "test")
    data = json.loads(rep.json.read_text())
    assert data["findings"][0]["kind"] == "not_permitted" and len(data["anomalies"]) == len(found)
    assert [p.name for p in rep.plots] == ["volume.png", "denials.png", "hours.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in rep.plots)
    md = rep.markdown.read_text()
    assert "not_permitted" in md and "volume_burst" in md and "ppc.test/w" in md
    assert not any(r.pseudonym.hex() in md or r.pseudonym.hex() in rep.json.read_text() for r in records)


def test_the_tree_and_the_signatures_are_checked(tmp_path: Path) -> None:
    records = history()[:50]
    witness = CosignatureKey("ppc.test/w", bytes([7]) * 32)
    note, entries = signed_checkpoint(records, witness)
    log_vkey = _l.vkey_for(ORIGIN, LOG_SEED)
    cp = Checkpoint.from_note(note)
    altered = list(entries)
    altered[7] = Entry(7, rec(7, records[7].time or datetime.now(UTC), requester=6).encode())
    with pytest.raises(NoteError, match="cosigned root"):
        check_tree(cp, altered)
    with pytest.raises(NoteError, match="missing"):
        check_tree(cp, entries[:7] + entries[8:])
    with pytest.raises(NoteError, match="only 49"):
        check_tree(cp, entries[:49])
    other = CosignatureKey("ppc.test/other", bytes([8]) * 32)
    with pytest.raises(NoteError, match=r"no valid cosignature of ppc\.test/other"):
        audit(note, log_vkey, [witness.vkey, other.vkey], entries, AGENCIES, ENGINE)
    with pytest.raises(NoteError):
        audit(note, _l.vkey_for(ORIGIN, bytes(32)), [witness.vkey], entries, AGENCIES, ENGINE)


def test_law_findings_by_kind() -> None:
    t = datetime(2026, 11, 2, 1, tzinfo=UTC)
    records = [rec(0, t), rec(1, t, requester=9), rec(2, t)]
    records[2] = LedgerRecord(**{**records[2].__dict__, "table_hash": bytes(32)})
    before = rec(3, datetime(2000, 1, 1, tzinfo=UTC))
    found = check_law([*records, before], {a.agency_id: a for a in AGENCIES}, ENGINE)
    assert [(f.seq, f.kind) for f in found] == [(1, "unknown_agency"), (2, "table_unknown"), (3, "table_not_in_force")]


def test_the_portals_records_pass_under_its_table_and_fail_outside_it() -> None:
    """自己情報表示: マイナポータル (agency 7) asks under its own table version (番号法 附則第6条)."""
    from renkei.permissions import self_disclosure

    engine = PermissionEngine.with_default()
    version = engine.load(self_disclosure.FILE)
    at = datetime(2026, 11, 2, 1, tzinfo=UTC)

    def portal(seq: int, provider: int, item: str) -> LedgerRecord:
        r = rec(seq, at, requester=7, provider=provider, affair="SD.1", item=item)
        return LedgerRecord(**{**r.__dict__, "table_hash": version.hash})

    ok = [portal(0, 2, "local_tax_info"), portal(1, 3, "pension_benefit_info"),
          portal(2, 5, "medical_insurance_benefit_info")]
    by_id = {a.agency_id: a for a in AGENCIES}
    by_id[7] = Agency(7, "マイナポータル（デジタル庁）", (self_disclosure.PORTAL_TYPE,), None)
    assert check_law(ok, by_id, engine) == []
    # Outside its rows (pension data from a municipality) — a violation, even under its table.
    [f] = check_law([*ok, portal(3, 1, "pension_benefit_info")], by_id, engine)
    assert (f.kind, f.severity, f.seq, f.requester) == ("not_permitted", "violation", 3, 7)
    # An auditor without the version finds every record of the portal unknown.
    found = check_law(ok, by_id, PermissionEngine.with_default())
    assert [(f.kind, f.severity) for f in found] == [("table_unknown", "violation")] * 3
    # The whole audit takes a version it holds (shipped) when the records name it, and only then.
    witness = CosignatureKey("ppc.test/w", bytes([7]) * 32)
    log_vkey = _l.vkey_for(ORIGIN, LOG_SEED)
    agencies = list(by_id.values())
    note, entries = signed_checkpoint(ok, witness)
    assert len(audit(note, log_vkey, [witness.vkey], entries, agencies, PermissionEngine.with_default()
                     ).violations) == 3
    plain = PermissionEngine.with_default()
    found_ok = audit(note, log_vkey, [witness.vkey], entries, agencies, plain, shipped=[self_disclosure.FILE])
    assert found_ok.findings == [] and self_disclosure.LABEL in [v.label for v in plain.versions()]
    note, entries = signed_checkpoint([rec(0, at)], witness)
    unused = PermissionEngine.with_default()
    assert audit(note, log_vkey, [witness.vkey], entries, agencies, unused, shipped=[self_disclosure.FILE]
                 ).findings == []
    assert [v.label for v in unused.versions()] == ["beppyo2-2015"]  # not named by any record: not taken
