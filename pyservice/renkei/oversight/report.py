"""The audit report: ``report.md`` for the auditor (with PNG plots) and ``audit.json`` for tools.

Plots (matplotlib, Agg backend, no display needed): ``volume.png`` — inquiries per hour (JST) of
the busiest agencies with their burst threshold and bursts; ``denials.png`` — each agency's
denial ratio; ``hours.png`` — inquiries by hour of day (JST) per agency, off-hours shaded.
No report shows a pseudonym, let alone a number: records appear by sequence, time, agencies,
affair and items.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from renkei.datadir import make_private_dir, write_atomic
from renkei.oversight.anomalies import JST, AgencyProfile, Anomaly, hourly_series
from renkei.oversight.audit import Agency, AuditResult

MAX_VOLUME_PANELS = 6


@dataclass(frozen=True)
class Report:
    markdown: Path
    json: Path
    plots: list[Path]


def _jst(t: datetime | None) -> str:
    return "—" if t is None else t.astimezone(JST).strftime("%Y-%m-%d %H:%M:%S JST")


def _name(agencies: dict[int, Agency], agency_id: int | None) -> str:
    if agency_id is None:
        return "—"
    a = agencies.get(agency_id)
    return f"{agency_id} {a.name}" if a else f"{agency_id} (unregistered)"


def _plots(out: Path, profiles: dict[int, AgencyProfile], agencies: dict[int, Agency]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 10, "axes.titlesize": 11, "figure.dpi": 110})
    # Agency names are Japanese: use a CJK font when one is installed, else label by id only.
    from matplotlib import font_manager

    cjk = next((f.name for f in font_manager.fontManager.ttflist
                if any(k in f.name for k in ("Noto Sans CJK", "IPAexGothic", "IPAGothic", "TakaoGothic"))), None)
    if cjk:
        plt.rcParams["font.family"] = [cjk, "DejaVu Sans"]

    def label(i: int) -> str:
        return _name(agencies, i) if cjk else f"agency {i}"

    paths: list[Path] = []
    busiest = sorted((p for p in profiles.values() if p.inquiries), key=lambda p: -p.inquiries)[:MAX_VOLUME_PANELS]
    if busiest:
        fig, axes = plt.subplots(len(busiest), 1, figsize=(11, 2.3 * len(busiest) + 0.8), sharex=True, squeeze=False)
        for ax, p in zip(axes[:, 0], busiest, strict=True):
            hours, counts = hourly_series(p)
            ax.bar(hours, counts, width=1 / 24, align="edge", color="#1f77b4", label="inquiries per hour")
            if p.threshold:
                ax.axhline(p.threshold, color="#d62728", linestyle="--", linewidth=1,
                           label=f"burst threshold ({p.threshold:g})")
            if p.bursts:
                ax.scatter([h for h, _ in p.bursts], [n for _, n in p.bursts], color="#d62728", zorder=3,
                           label="burst")
            ax.set_title(f"{label(p.agency_id)}: {p.inquiries} inquiries", loc="left")
            ax.set_ylabel("per hour")
            ax.set_ylim(bottom=0)
            ax.grid(alpha=0.3)
            ax.legend(loc="upper right", fontsize=8)
        axes[-1, 0].xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M", tz=JST))  # type: ignore[no-untyped-call]
        axes[-1, 0].set_xlabel("hour (JST)")
        fig.suptitle("Inquiries per hour by requesting agency" + (" (情報照会者)" if cjk else ""), x=0.01, ha="left")
        fig.tight_layout()
        paths.append(out / "volume.png")
        fig.savefig(paths[-1])
        plt.close(fig)

    requesters = sorted((p for p in profiles.values() if p.inquiries), key=lambda p: p.agency_id)
    if requesters:
        fig, ax = plt.subplots(figsize=(9, 0.45 * len(requesters) + 1.4))
        ratios = [p.denial_ratio for p in requesters]
        ys = range(len(requesters))
        ax.barh(list(ys), ratios, color=["#d62728" if r >= 0.2 else "#1f77b4" for r in ratios])
        for y, p in zip(ys, requesters, strict=True):
            ax.text(p.denial_ratio + 0.01, y, f"{p.denials}/{p.inquiries}", va="center", fontsize=9)
        ax.axvline(0.2, color="#555", linestyle="--", linewidth=1, label="review threshold (20%)")
        ax.set_yticks(list(ys), [label(p.agency_id) for p in requesters])
        ax.invert_yaxis()
        ax.set_xlim(0, max(1.0, max(ratios) + 0.15))
        ax.set_xlabel("share of inquiries denied")
        ax.set_title("Denial ratio by requesting agency", loc="left")
        ax.legend(loc="lower right", fontsize=8)
        ax.grid(axis="x", alpha=0.3)
        fig.tight_layout()
        paths.append(out / "denials.png")
        fig.savefig(paths[-1])
        plt.close(fig)

        fig, ax = plt.subplots(figsize=(11, 0.45 * len(requesters) + 1.6))
        grid = [p.hour_of_day for p in requesters]
        im = ax.imshow(grid, aspect="auto", cmap="Blues", interpolation="nearest")
        for x0, x1 in ((-0.5, 6.5), (21.5, 23.5)):
            ax.axvspan(x0, x1, color="#d62728", alpha=0.12)
        ax.set_xticks(range(24), [f"{h:02d}" for h in range(24)])
        ax.set_yticks(range(len(requesters)), [label(p.agency_id) for p in requesters])
        ax.set_xlabel("hour of day (JST); shaded: 22:00–07:00")
        ax.set_title("Inquiries by hour of day", loc="left")
        fig.colorbar(im, ax=ax, label="inquiries", fraction=0.03)
        fig.tight_layout()
        paths.append(out / "hours.png")
        fig.savefig(paths[-1])
        plt.close(fig)
    return paths


def write(out: Path, result: AuditResult, profiles: dict[int, AgencyProfile], anomalies: Sequence[Anomaly],
          agencies: Sequence[Agency], source: str) -> Report:
    make_private_dir(out)
    by_id = {a.agency_id: a for a in agencies}
    cp = result.checkpoint.checkpoint
    data = {
        "source": source,
        "checkpoint": {"origin": cp.origin, "size": cp.size, "root": cp.root.hex(), "note": cp.note,
                       "witnesses": [{"name": w.name, "time": w.timestamp} for w in result.checkpoint.witnesses]},
        "tree_verified": True,
        "records": len(result.records),
        "tables": result.tables,
        "findings": [f.to_json() for f in result.findings],
        "anomalies": [a.to_json() for a in anomalies],
        "agencies": [{**p.to_json(), "name": by_id[p.agency_id].name if p.agency_id in by_id else None}
                     for p in sorted(profiles.values(), key=lambda p: p.agency_id)],
    }
    json_path = out / "audit.json"
    write_atomic(json_path, json.dumps(data, ensure_ascii=False, indent=1).encode(), 0o600)
    plots = _plots(out, profiles, by_id)

    v = result.violations
    lines = [
        "# 情報提供等記録 audit report (個人情報保護委員会)",
        "",
        f"Source: {source}. Audited: {len(result.records)} records, the whole tree of the cosigned checkpoint.",
        "",
        "## Checkpoint",
        "",
        f"- origin `{cp.origin}`, tree size **{cp.size}**, root `{cp.root.hex()}`",
        "- log signature: verified with the log's key",
        *(f"- witness `{w.name}`: cosignature verified, made {_jst(datetime.fromtimestamp(w.timestamp, JST))}"
          for w in result.checkpoint.witnesses),
        f"- every record hashed again: the {cp.size} leaves give the cosigned root",
        "",
        f"## Findings: {len(v)} violation(s), {len(result.findings) - len(v)} note(s)",
        "",
    ]
    if result.findings:
        lines += ["| seq | time | requester | provider | affair | items | finding | detail |",
                  "|---:|---|---|---|---|---|---|---|"]
        for f in result.findings:
            lines.append(f"| {f.seq} | {_jst(f.time)} | {_name(by_id, f.requester)} | {_name(by_id, f.provider)} | "
                         f"{f.affair} | {', '.join(f.items)} | **{f.kind}** ({f.severity}) | "
                         f"{f.detail.replace('|', '/')} |")
    else:
        lines.append("Every permitted record is allowed by the table version in force at its time, which it names.")
    lines += ["", f"## Anomalies to look into: {len(anomalies)}", ""]
    if anomalies:
        lines += ["| agency | kind | detail |", "|---|---|---|"]
        lines += [f"| {_name(by_id, a.agency_id)} | {a.kind} | {a.detail} |" for a in anomalies]
    lines += ["", "## Agencies", "",
              "| agency | inquiries | denied | refused codes | off-hours | provided | hourly median | burst at |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for p in sorted(profiles.values(), key=lambda p: p.agency_id):
        lines.append(f"| {_name(by_id, p.agency_id)} | {p.inquiries} | {p.denials} | {p.refused_codes} | "
                     f"{p.off_hours} | {p.provisions} | {p.baseline:g} | {p.threshold:g} |")
    lines += ["", "## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots]
    lines += ["", "Table versions held by the commission: "
              + ", ".join(f"{label} (sha256:{h[:16]}…)" for h, label in sorted(result.tables.items())), ""]
    md = out / "report.md"
    write_atomic(md, "\n".join(lines).encode(), 0o600)
    return Report(md, json_path, plots)


__all__ = ["Report", "write"]
