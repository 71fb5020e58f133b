"""The commission's PIA review in one process, and the core's side of its decisions: submissions and
decisions in the tamper-evident log, the registry replayed from it, expiry, and a core bound to the
log that admits agencies only on decisions it can prove — not on rows an operator wrote."""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
from pathlib import Path

import pytest

from renkei.datadir import DataDir
from renkei.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    NoteError,
    PermissionDeniedError,
    PiaNotApprovedError,
    ProofError,
    UnavailableError,
)
from renkei.ledger import Ledger, opens, verify_checkpoint, verify_inclusion, verify_log_dir
from renkei.linkage.registry import AgencyRegistry
from renkei.pki.ca import DevelopmentCA
from renkei.ppc.review import LOG_ORIGIN, PiaReview, Submission, agency_pseudonym, init_data_dir, leaf_hash
from renkei.service.core import init_data_dir as init_core
from renkei.service.ppc import CoreDelivery

TODAY = dt.date.today()


def submission(agency: int, revises: int = 0) -> Submission:
    return Submission(agency, "full", "住民基本台帳事務 全項目評価書", ("住民基本台帳ファイル",), ("住民票関係情報",),
                      hashlib.sha256(b"doc").digest(), revises)


def deliver(review: PiaReview, registry: AgencyRegistry) -> int:
    """What CoreDelivery sends, applied directly."""
    assert registry.commission is not None
    cp, decisions = review.decisions(first=registry.commission.applied_through() + 1)
    _through, applied = registry.commission.apply(cp.note, [(d.seq, d.entry, d.proof) for d in decisions])
    return applied


@pytest.fixture
def pair(tmp_path: Path) -> tuple[PiaReview, AgencyRegistry]:
    review = PiaReview(init_data_dir(tmp_path / "ppc"))
    core = init_core(tmp_path / "core", commission_vkey=review.vkey)
    registry = AgencyRegistry(core)
    for name in ("横浜市長", "日本年金機構"):
        registry.register_agency(name, ["municipal_mayor"] if "市" in name else ["japan_pension_service"],
                                 "3000020141003" if "市" in name else "5010405001703",
                                 municipality_code="141003" if "市" in name else None)
    return review, registry


def test_decisions_are_logged_then_flow_to_the_core_which_admits_only_approved_ones(
        pair: tuple[PiaReview, AgencyRegistry]) -> None:
    review, registry = pair
    with pytest.raises(PiaNotApprovedError, match="decided on none"):
        registry.require_active(1)
    first = review.submit(submission(1))
    returned = review.decide(first.pia_id, "returned", reviewer="委員会 審査官", reason="リスク対策の記載が不足")
    assert returned.state == "returned" and returned.reason == "リスク対策の記載が不足"
    with pytest.raises(PermissionDeniedError):
        review.submit(submission(2, revises=first.pia_id))  # another agency's
    second = review.submit(submission(1, revises=first.pia_id))
    with pytest.raises(FailedPreconditionError):
        review.decide(first.pia_id, "approved", reviewer="x", expires_on=TODAY)  # returned: not approvable
    with pytest.raises(InvalidArgumentError, match="at most 5 years"):
        review.decide(second.pia_id, "approved", reviewer="x", expires_on=TODAY.replace(year=TODAY.year + 6))
    with pytest.raises(InvalidArgumentError):
        review.decide(second.pia_id, "returned", reviewer="x", reason=" ")
    review.decide(second.pia_id, "approved", reviewer="委員会 審査官", approved_on=TODAY,
                  expires_on=TODAY + dt.timedelta(days=365))
    assert deliver(review, registry) == 4  # submitted, returned, submitted again, approved
    registry.require_active(1)
    assert registry.pia_status(1) == "approved" and registry.pia_status(2) == "not_submitted"
    assert deliver(review, registry) == 0  # idempotent
    review.decide(second.pia_id, "revoked", reviewer="委員会", reason="漏えい事案")
    registry.require_active(1)  # the core has not heard yet
    deliver(review, registry)
    with pytest.raises(PiaNotApprovedError, match="revoked"):
        registry.require_active(1)
    # Every record verifies against the signed checkpoint; the agency's own are indexed by its pseudonym.
    cp, decisions = review.decisions(agency_id=1)
    verify_checkpoint(cp.note, review.vkey, LOG_ORIGIN)
    assert [d.kind for d in decisions] == ["submitted", "returned", "submitted", "approved", "revoked"]
    for d in decisions:
        verify_inclusion(d.seq, cp.size, leaf_hash(d.entry), d.proof, cp.root)
    assert decisions[1].reason == "リスク対策の記載が不足" and decisions[3].expires_on
    assert decisions[2].revises == first.pia_id
    # The log is the ledger's layout: public leaves (layout 2) whose person commitment opens to the
    # agency's pseudonym with the private opening; it verifies whole and from its public key alone.
    log_dir = review.log.path
    for stored in review.log.stored(list(range(cp.size))):
        assert stored.entry[0] == 2 and opens(stored.entry, stored.opening)
        assert stored.record.pseudonym == agency_pseudonym(stored.record.requester)
        assert agency_pseudonym(stored.record.requester) not in stored.entry
    assert review.log.verify()["openings_checked"] == cp.size
    assert verify_log_dir(log_dir, review.vkey)["size"] == cp.size
    assert (log_dir / "open").stat().st_mode & 0o777 == 0o700
    # The core keeps nothing set by its operator: add_pia refuses on a bound core.
    with pytest.raises(FailedPreconditionError, match="commission"):
        registry.add_pia(2, "x", approved_on=TODAY, expires_on=TODAY)


def test_expiry_is_decided_by_date_and_recorded(pair: tuple[PiaReview, AgencyRegistry]) -> None:
    review, registry = pair
    pia = review.submit(submission(2))
    review.decide(pia.pia_id, "approved", reviewer="x", approved_on="2020-01-01", expires_on="2020-12-31")
    deliver(review, registry)
    with pytest.raises(PiaNotApprovedError, match="expired on 2020-12-31"):  # by date, before any record says so
        registry.require_active(2)
    registry.require_active(2, today=dt.date(2020, 6, 1))
    (expired,) = review.expire_due()
    assert expired.state == "expired" and review.expire_due() == []
    deliver(review, registry)
    assert registry.commission is not None and registry.commission.pias(2)[-1].state == "expired"


def test_the_core_refuses_forged_evidence_and_rows_an_operator_wrote(pair: tuple[PiaReview, AgencyRegistry],
                                                                    tmp_path: Path) -> None:
    review, registry = pair
    assert registry.commission is not None
    pia = review.submit(submission(1))
    cp, decisions = review.decisions()
    # A checkpoint signed by another key (an operator's own "commission") is refused.
    other = Ledger(init_data_dir(tmp_path / "other"), LOG_ORIGIN, key_name="ppc-log", subdir="decisions")
    with pytest.raises(NoteError):
        registry.commission.apply(other.checkpoint().note, [(0, decisions[0].entry, decisions[0].proof)])
    other.close()
    # A record changed after it was logged does not prove its inclusion.
    tampered = decisions[0].entry.replace(b"pia-submit", b"pia-approve")
    with pytest.raises(ProofError):
        registry.commission.apply(cp.note, [(0, tampered, decisions[0].proof)])
    deliver(review, registry)
    # An operator writes an approval straight into the registry: it counts for nothing.
    db = sqlite3.connect(tmp_path / "core" / "registry.sqlite3")
    db.execute("UPDATE commission_pias SET state = 'approved', approved_on = ?, expires_on = ? WHERE pia_id = ?",
               ("2020-01-01", "2099-01-01", pia.pia_id))
    db.commit()
    db.close()
    fresh = AgencyRegistry(DataDir(tmp_path / "core", "core"))
    with pytest.raises(PiaNotApprovedError, match="lacks the commission's signed decision"):
        fresh.require_active(1)
    fresh.close()
    # And the core cannot be re-bound to another key.
    with pytest.raises(FailedPreconditionError, match="another commission key"):
        init_core(tmp_path / "core", commission_vkey=PiaReview(tmp_path / "other").vkey)


def test_the_registry_is_replayed_from_the_log_and_delivery_waits_for_a_core(tmp_path: Path) -> None:
    d = init_data_dir(tmp_path / "ppc")
    review = PiaReview(d)
    pia = review.submit(submission(3))
    review.decide(pia.pia_id, "approved", reviewer="x", expires_on=TODAY)
    review.close()
    # The registry lost the approval (a crash between the log and SQLite): replayed at open.
    db = sqlite3.connect(tmp_path / "ppc" / "pia.sqlite3")
    db.execute("UPDATE pias SET state = 'submitted', approved_on = NULL, expires_on = NULL, last_seq = 0")
    db.commit()
    db.close()
    review = PiaReview(d)
    assert review.pia(pia.pia_id).state == "approved" and review.pia(pia.pia_id).expires_on == TODAY.isoformat()
    # No core listening: delivery fails as unavailable and nothing counts as delivered.
    ca = DevelopmentCA.init(tmp_path / "pki")
    tls = ca.issue_service("ppc", tmp_path / "ppc", client_role="commission")
    delivery = CoreDelivery(review, "127.0.0.1:1", tls)
    assert delivery.pending() == 2
    with pytest.raises(UnavailableError):
        delivery.deliver()
    assert delivery.pending() == 2 and review.applied_through("core") == -1
    delivery.close()
    review.close()
