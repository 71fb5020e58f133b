"""The linkage core's own metrics (besides every process's ``renkei_grpc_*``): what an operator
puts on a dashboard (docs/ops/grafana-dashboard.json) and alerts on (docs/ops/alerts.yml).

Label sets are bounded: agencies by id for the first 500 seen, then ``other``; outcomes and
statuses are fixed token sets; agency types come from 別表第二 (a few dozen). Nothing here names
a person, a number or a code.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import numpy as np

from renkei.errors import RenkeiError
from renkei.ledger import OUTCOME_TOKENS, Ledger
from renkei.linkage.codes import AgencyCodes
from renkei.linkage.registry import AgencyRegistry
from renkei.permissions.tables import PermissionTables
from renkei.service.metrics import AgencyLabels, Metrics

T = TypeVar("T")
#: Inquiry engine calls end with the durable ledger commit: milliseconds, with group commit.
APPEND_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
ACQUISITION_STATUSES = {0: "issued", 1: "refused", 2: "no_such_number", 3: "pending"}
#: Refusals of a single Inquire that are inquiry outcomes (recorded in the ledger or not).
DENIAL_REASONS = frozenset({"CODE_REFUSED", "ROW_NOT_PERMITTED", "PROVIDER_NOT_HOLDING", "PIA_NOT_APPROVED"})
_TYPES_TTL = 60.0


class CoreMetrics:
    def __init__(self, metrics: Metrics, ledger: Ledger, codes: AgencyCodes, registry: AgencyRegistry,
                 tables: PermissionTables) -> None:
        self._agency = AgencyLabels()
        self._registry = registry
        self._codes = codes
        self._types: tuple[float, dict[int, tuple[str, ...]]] = (0.0, {})
        self._types_lock = threading.Lock()
        self.inquiries = metrics.counter(
            "renkei_inquiries_total",
            "Inquiry items decided, by requester agency and outcome (permitted or the denial reason).",
            ("agency", "outcome"))
        self.provisions = metrics.counter(
            "renkei_provisions_total",
            "Provision records by provider agency and outcome (permitted or the denial reason).",
            ("provider", "outcome"))
        self.exchanges = metrics.counter(
            "renkei_provision_exchanges_total",
            "提供 records by provider agency and outcome (provided, no data, provider unavailable, timed out, "
            "refused by provider).", ("provider", "outcome"))
        self.provider_seconds = metrics.histogram(
            "renkei_provision_seconds",
            "Time from forwarding a permitted inquiry to its provider's intermediate server to recording its "
            "answer (or failure).", APPEND_BUCKETS)
        self.acquisitions = metrics.counter(
            "renkei_acquisitions_total",
            "Agency codes collected by agencies (番号法 第21条の2), by agency and status.",
            ("agency", "status"))
        self.append_seconds = metrics.histogram(
            "renkei_ledger_append_seconds",
            "Time of one inquiry engine call: decision, durable ledger commit and published checkpoint "
            "(group commit: one call may carry many records).", APPEND_BUCKETS)
        metrics.gauge("renkei_ledger_size_records", "Records in the provision ledger (its tree size).",
                      lambda: ledger.size)
        metrics.gauge("renkei_ledger_checkpoint_age_seconds",
                      "Seconds since the latest signed checkpoint was published.",
                      lambda: max(0.0, time.time() - ledger.published_at()))
        metrics.gauge("renkei_holdings", "Holdings (agency ↔ person) by agency type of 別表第二; an agency of "
                      "several types counts under each.", self._holdings_by_type, ("agency_type",))
        metrics.gauge("renkei_persons", "Persons the core knows by link id.", lambda: codes.person_count())

        def in_force() -> Mapping[tuple[str, ...], float]:
            v = tables.in_force()
            return {} if v is None else {(v.label, v.version_hash): 1.0}

        metrics.gauge("renkei_permission_table_in_force",
                      "1 for the permission-table version deciding inquiries now (absent: none is in force).",
                      in_force, ("label", "version_hash"))

    def _agency_types(self) -> dict[int, tuple[str, ...]]:
        now = time.monotonic()
        with self._types_lock:
            at, types = self._types
            if now - at < _TYPES_TTL:
                return types
        types = {a.agency_id: a.types for a in self._registry.agencies()}
        with self._types_lock:
            self._types = (now, types)
        return types

    def _holdings_by_type(self) -> Mapping[tuple[str, ...], float]:
        types = self._agency_types()
        out: dict[tuple[str, ...], float] = {}
        for agency, n in self._codes.holdings_counts().items():
            for t in types.get(agency, ("unknown",)):
                out[(t,)] = out.get((t,), 0.0) + n
        return out

    def timed(self, fn: Callable[..., T]) -> Callable[..., T]:
        """``fn`` (an inquiry engine call) with its time observed as the append latency."""
        def call(*args: Any) -> T:
            start = time.perf_counter()
            try:
                return fn(*args)
            finally:
                self.append_seconds.observe(time.perf_counter() - start)
        return call

    def inquiry(self, requester: int, provider: int, outcome: str) -> None:
        self.inquiries.inc(self._agency(requester), outcome)
        self.provisions.inc(self._agency(provider), outcome)

    def inquiry_failed(self, requester: int, provider: int, exc: BaseException) -> None:
        if isinstance(exc, RenkeiError) and exc.reason in DENIAL_REASONS:
            self.inquiry(requester, provider, exc.reason)

    def batch(self, requester: int, provider: int, outcomes: bytes) -> None:
        counts = np.bincount(np.frombuffer(outcomes, dtype=np.uint8), minlength=1)
        for code in np.flatnonzero(counts):
            token = OUTCOME_TOKENS.get(int(code), f"DENIED_{int(code)}")
            self.inquiries.inc(self._agency(requester), token, n=int(counts[code]))
            self.provisions.inc(self._agency(provider), token, n=int(counts[code]))

    def exchanged(self, provider: int, outcome: str, persons: int, seconds: float) -> None:
        self.exchanges.inc(self._agency(provider), outcome, n=persons)
        self.provider_seconds.observe(seconds)

    def collected(self, agency: int, statuses: np.ndarray) -> None:
        counts = np.bincount(statuses.astype(np.uint8), minlength=1)
        for code in np.flatnonzero(counts):
            self.acquisitions.inc(self._agency(agency), ACQUISITION_STATUSES.get(int(code), str(int(code))),
                                  n=int(counts[code]))


__all__ = ["CoreMetrics"]
