"""A one-page, self-contained HTML report of a run: scorecard, ranking and band plots.

Plots are inline SVG written here (no JavaScript, no network), so the page opens anywhere and
prints to PDF from a browser.
"""

from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd

from insilico.ui.runs import (
    RunData,
    band_quantities,
    default_ranking_metric,
    rank_arms,
    replicate_note,
    scorecard,
)

PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
LABELS = {
    "conc_mg_per_L": "Plasma concentration (mg/L)",
    "biomarker_change_pct": "Biomarker change from baseline (%)",
}


def _ticks(lo: float, hi: float, n: int = 5) -> np.ndarray:
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= lo:
        return np.array([lo])
    step = 10 ** math.floor(math.log10((hi - lo) / n))
    for m in (1, 2, 5, 10):
        if (hi - lo) / (step * m) <= n:
            step *= m
            break
    return np.arange(math.ceil(lo / step) * step, hi + step / 2, step)


def band_svg(
    bands: pd.DataFrame,
    ylabel: str,
    lines: pd.DataFrame | None = None,
    width: int = 640,
    height: int = 260,
) -> str:
    """SVG of median lines with shaded 5–95 % bands per arm (columns ``arm``, ``time_h``,
    ``p5``, ``p50``, ``p95``); ``lines`` (``line``, ``value``) as dashed references."""
    ml, mr, mt, mb = 64, 12, 10, 40
    w, h = width - ml - mr, height - mt - mb
    t = bands["time_h"].to_numpy(float)
    ys = [bands["p5"].to_numpy(float), bands["p95"].to_numpy(float)]
    if lines is not None and len(lines):
        ys.append(lines["value"].to_numpy(float))
    y_all = np.concatenate(ys)
    y_all = y_all[np.isfinite(y_all)]
    x0, x1 = float(np.nanmin(t)), float(np.nanmax(t))
    y0, y1 = min(0.0, float(y_all.min())), float(y_all.max()) * 1.05 or 1.0
    x1 = x1 if x1 > x0 else x0 + 1
    y1 = y1 if y1 > y0 else y0 + 1

    def sx(x):
        return ml + (np.asarray(x, float) - x0) / (x1 - x0) * w

    def sy(y):
        return mt + h - (np.asarray(y, float) - y0) / (y1 - y0) * h

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="11">'
    ]
    out.append(f'<rect x="{ml}" y="{mt}" width="{w}" height="{h}" fill="none" stroke="#999"/>')
    for v in _ticks(y0, y1):
        yy = sy(v)
        out.append(f'<line x1="{ml - 4}" x2="{ml}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#333"/>')
        out.append(f'<text x="{ml - 6}" y="{yy + 4:.1f}" text-anchor="end">{v:.3g}</text>')
    for v in _ticks(x0, x1, 8):
        xx = sx(v)
        out.append(
            f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{mt + h}" y2="{mt + h + 4}" stroke="#333"/>'
        )
        out.append(f'<text x="{xx:.1f}" y="{mt + h + 16}" text-anchor="middle">{v:g}</text>')
    out.append(f'<text x="{ml + w / 2}" y="{height - 4}" text-anchor="middle">Time (h)</text>')
    out.append(
        f'<text transform="translate(12,{mt + h / 2}) rotate(-90)" text-anchor="middle">'
        f"{html.escape(ylabel)}</text>"
    )
    for k, (arm, g) in enumerate(bands.groupby("arm", sort=False)):
        c = PALETTE[k % len(PALETTE)]
        g = g.sort_values("time_h")
        xs = sx(g["time_h"])
        upper = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, sy(g["p95"]), strict=True))
        lower = " ".join(
            f"{x:.1f},{y:.1f}" for x, y in zip(xs[::-1], sy(g["p5"])[::-1], strict=True)
        )
        out.append(
            f'<polygon points="{upper} {lower}" fill="{c}" fill-opacity="0.15" stroke="none"/>'
        )
        med = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, sy(g["p50"]), strict=True))
        out.append(f'<polyline points="{med}" fill="none" stroke="{c}" stroke-width="1.8"/>')
        out.append(
            f'<text x="{ml + 8}" y="{mt + 14 + 13 * k}" fill="{c}">{html.escape(str(arm))}</text>'
        )
    if lines is not None:
        for _, r in lines.iterrows():
            yy = float(sy(r["value"]))
            if mt <= yy <= mt + h:
                out.append(
                    f'<line x1="{ml}" x2="{ml + w}" y1="{yy:.1f}" y2="{yy:.1f}" '
                    'stroke="#555" stroke-dasharray="6,4"/>'
                )
                out.append(
                    f'<text x="{ml + w - 4}" y="{yy - 4:.1f}" text-anchor="end" fill="#333">'
                    f"{html.escape(str(r['line']))}</text>"
                )
    out.append("</svg>")
    return "".join(out)


def report_html(
    run: RunData, reference_lines: pd.DataFrame | None = None, max_arms: int = 6
) -> str:
    """The report page (HTML text)."""
    m = run.manifest
    card = scorecard(run.summary)
    metric = default_ranking_metric(run.summary)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>insilico report {html.escape(run.run_id)}</title>",
        "<style>body{font-family:sans-serif;margin:24px;max-width:1000px}"
        "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:3px 6px}"
        "th{background:#f2f2f2}h1{font-size:20px}h2{font-size:16px;margin-top:18px}"
        "@media print{body{margin:8mm}}</style></head><body>",
        f"<h1>In-silico trial {html.escape(str(m.get('name')))}</h1>",
        f"<p>Run <code>{html.escape(run.run_id)}</code> · "
        f"{m.get('n_patients'):,} virtual patients · "
        f"seed {m.get('seed')} · spec SHA-256 {html.escape(str(m.get('spec_sha256', ''))[:12])} · "
        f"created {html.escape(str(m.get('created_utc')))}</p>",
        "<h2>Scorecard (95 % confidence intervals)</h2>",
    ]
    pooled = replicate_note(run.summary)
    if pooled:
        parts.append(f"<p>{html.escape(pooled)}</p>")
    parts.append(card.to_html(index=False, escape=True, border=0))
    for row in m.get("failed_compounds", []):
        parts.append(
            f"<p>Compound {html.escape(str(row['id']))} not run: "
            f"{html.escape(str(row['error']))}</p>"
        )
    for row in m.get("compound_warnings", []):
        parts.append(
            f"<p>Warning: compound {html.escape(str(row['id']))}: "
            f"{html.escape(str(row['warning']))}</p>"
        )
    if metric is not None:
        rk = rank_arms(run.summary, metric.prefix)
        scale = metric.scale
        rk = rk.assign(
            **{
                c: (rk[c] * scale).round(1 if scale == 100 else 3)
                for c in ("value", "ci_low", "ci_high")
            }
        )
        parts += [
            f"<h2>Ranking on {html.escape(metric.label)}"
            f"{f' ({metric.unit})' if metric.unit else ''}</h2>",
            rk.to_html(index=False, escape=True, border=0),
        ]
    bands = run.bands
    arms = [a for a in bands["arm"].drop_duplicates().tolist() if a != "placebo"][:max_arms]
    for q in band_quantities(bands):
        b = bands[(bands["quantity"] == q) & bands["arm"].isin(arms)]
        if b.empty:
            continue
        lines = None
        if q == "conc_mg_per_L" and reference_lines is not None and len(reference_lines):
            lines = (
                reference_lines[reference_lines["arm"].isin(arms)]
                .drop_duplicates(["line", "conc_mg_per_L"])
                .rename(columns={"conc_mg_per_L": "value"})
            )
        label = LABELS.get(q, q)
        parts += [
            f"<h2>{html.escape(label)}: median and 5–95 % of patients</h2>",
            band_svg(b, label, lines),
        ]
    parts.append(
        "<p style='font-size:11px;color:#666'>Generated by insilico from the run directory; "
        "simulated patients, not clinical data.</p></body></html>"
    )
    return "".join(parts)
