"""Per-agency patterns an auditor looks into (異常検知). None of them is a violation by itself.

For each requesting agency (情報照会者), with times in Japan Standard Time:

* **volume bursts** — an hour with far more inquiries than the agency's own baseline: at least
  ``burst_floor`` and above max(``burst_factor`` × its median active hour, median + 6 robust
  standard deviations (1.4826 × MAD));
* **denial ratio** — denied / all inquiries ≥ ``denial_ratio`` (with ≥ ``min_inquiries``);
* **off-hours activity** — inquiries before 07:00, from 22:00, or on a Saturday or Sunday
  (public holidays are not known here), when their share ≥ ``off_hours_share`` and there are at
  least ``off_hours_min``;
* **persons it no longer holds** — inquiries refused with CODE_REFUSED (a code the agency does not
  or no longer holds: released, of a retired key epoch, or another agency's), when they are at
  least ``refused_min`` and ``refused_ratio`` of its inquiries.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from renkei.ledger import NO_DATA, PROVIDED, LedgerRecord

JST = timezone(timedelta(hours=9), "JST")
CODE_REFUSED = 1


@dataclass(frozen=True)
class Rules:
    burst_floor: int = 20
    burst_factor: float = 5.0
    min_active_hours: int = 3
    denial_ratio: float = 0.2
    min_inquiries: int = 20
    off_hours_share: float = 0.1
    off_hours_min: int = 10
    refused_min: int = 5
    refused_ratio: float = 0.05


def off_hours(t: datetime) -> bool:
    j = t.astimezone(JST)
    return j.hour < 7 or j.hour >= 22 or j.weekday() >= 5


@dataclass
class AgencyProfile:
    agency_id: int
    inquiries: int = 0
    denials: int = 0
    refused_codes: int = 0
    provisions: int = 0
    off_hours: int = 0
    hourly: Counter[datetime] = field(default_factory=Counter)  # JST hour start → inquiries
    hour_of_day: list[int] = field(default_factory=lambda: [0] * 24)  # JST
    baseline: float = 0.0
    threshold: float = 0.0
    bursts: list[tuple[datetime, int]] = field(default_factory=list)

    @property
    def denial_ratio(self) -> float:
        return self.denials / self.inquiries if self.inquiries else 0.0

    def to_json(self) -> dict[str, object]:
        return {"agency_id": self.agency_id, "inquiries": self.inquiries, "denials": self.denials,
                "denial_ratio": round(self.denial_ratio, 4), "refused_codes": self.refused_codes,
                "provisions": self.provisions, "off_hours": self.off_hours, "hourly_baseline": self.baseline,
                "burst_threshold": self.threshold,
                "bursts": [{"hour": h.isoformat(), "inquiries": n} for h, n in self.bursts],
                "hour_of_day_jst": self.hour_of_day}


@dataclass(frozen=True)
class Anomaly:
    agency_id: int
    kind: str  # volume_burst, denial_ratio, off_hours, refused_codes
    detail: str
    value: float

    def to_json(self) -> dict[str, object]:
        return {"agency_id": self.agency_id, "kind": self.kind, "detail": self.detail, "value": self.value}


def profiles(records: Sequence[LedgerRecord]) -> dict[int, AgencyProfile]:
    out: dict[int, AgencyProfile] = {}
    provided: Counter[int] = Counter()
    for r in records:
        assert r.time is not None
        if r.is_provision:
            if r.provision in (PROVIDED, NO_DATA):
                provided[r.provider] += 1
            continue
        p = out.get(r.requester)
        if p is None:
            p = out[r.requester] = AgencyProfile(r.requester)
        p.inquiries += 1
        if not r.permitted:
            p.denials += 1
            if r.denied_code == CODE_REFUSED:
                p.refused_codes += 1
        j = r.time.astimezone(JST)
        p.hourly[j.replace(minute=0, second=0, microsecond=0)] += 1
        p.hour_of_day[j.hour] += 1
        if off_hours(r.time):
            p.off_hours += 1
    for agency, n in provided.items():
        out.setdefault(agency, AgencyProfile(agency)).provisions = n
    return out


def detect(records: Sequence[LedgerRecord], rules: Rules = Rules()) -> tuple[dict[int, AgencyProfile], list[Anomaly]]:
    ps = profiles(records)
    found: list[Anomaly] = []
    for p in sorted(ps.values(), key=lambda x: x.agency_id):
        counts = list(p.hourly.values())
        if len(counts) >= rules.min_active_hours:
            median = statistics.median(counts)
            mad = statistics.median(abs(c - median) for c in counts)
            p.baseline = float(median)
            p.threshold = float(max(rules.burst_floor, rules.burst_factor * median, median + 6 * 1.4826 * mad))
            p.bursts = sorted((h, n) for h, n in p.hourly.items() if n >= p.threshold)
            for h, n in p.bursts:
                found.append(Anomaly(p.agency_id, "volume_burst",
                                     f"{n} inquiries in the hour from {h:%Y-%m-%d %H:%M} JST "
                                     f"(its median active hour: {median:g})", float(n)))
        if p.inquiries >= rules.min_inquiries and p.denial_ratio >= rules.denial_ratio:
            found.append(Anomaly(p.agency_id, "denial_ratio",
                                 f"{p.denials} of {p.inquiries} inquiries denied ({p.denial_ratio:.0%})",
                                 p.denial_ratio))
        share = p.off_hours / p.inquiries if p.inquiries else 0.0
        if p.off_hours >= rules.off_hours_min and share >= rules.off_hours_share:
            found.append(Anomaly(p.agency_id, "off_hours",
                                 f"{p.off_hours} inquiries ({share:.0%}) at night or on weekends (JST)", share))
        ratio = p.refused_codes / p.inquiries if p.inquiries else 0.0
        if p.refused_codes >= rules.refused_min and ratio >= rules.refused_ratio:
            found.append(Anomaly(p.agency_id, "refused_codes",
                                 f"{p.refused_codes} inquiries with codes of persons it does not (or no longer) "
                                 f"hold", float(p.refused_codes)))
    return ps, found


def hourly_series(p: AgencyProfile) -> tuple[list[datetime], list[int]]:
    """Every JST hour from the agency's first to its last, zeros included."""
    if not p.hourly:
        return [], []
    start, end = min(p.hourly), max(p.hourly)
    hours, h = [], start
    while h <= end:
        hours.append(h)
        h += timedelta(hours=1)
    return hours, [p.hourly.get(x, 0) for x in hours]


__all__ = ["JST", "AgencyProfile", "Anomaly", "Rules", "detect", "hourly_series", "off_hours", "profiles"]
