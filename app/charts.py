"""Chart builders of the app (Altair specs; no Streamlit here, so they can be tested alone).

Every axis has a title with its unit. Data come ready from :mod:`insilico.ui` (binned,
percentiles, intervals): charts only draw.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

QUANTITY_LABELS = {
    "conc_mg_per_L": "Plasma concentration (mg/L)",
    "biomarker_change_pct": "Biomarker change from baseline (%)",
}
HEIGHT = 300
#: Distinct colours for arms and compounds (Tableau 10: readable on white, colour-blind aware).
SCHEME = "tableau10"


def quantity_label(quantity: str) -> str:
    """Axis title of a band quantity (raw name with its unit for unknown ones)."""
    if quantity in QUANTITY_LABELS:
        return QUANTITY_LABELS[quantity]
    from insilico.ui.runs import unit_of

    unit = unit_of(quantity)
    return f"{quantity} ({unit})" if unit else quantity


def band_chart(
    bands: pd.DataFrame,
    title: str,
    log_scale: bool = False,
    lines: pd.DataFrame | None = None,
) -> alt.LayerChart:
    """Percentile bands over time, one colour per arm.

    ``bands`` has columns ``arm``, ``time_h``, ``p5``, ``p25``, ``p50``, ``p75``, ``p95`` (rows
    of bands.parquet for one quantity). Shaded 5–95 % and 25–75 % areas and the median.
    ``lines`` (optional): ``line``, ``value`` horizontal reference lines (dashed, labelled).
    On a log axis, values <= 0 are left out (no concentration before the first dose).
    """
    data = bands.copy()
    if "arm" not in data:
        data["arm"] = "arm"
    if log_scale:
        floor = data.loc[data["p95"] > 0, "p95"].min()
        floor = floor / 1e3 if pd.notna(floor) else 1e-6
        for c in ("p5", "p25", "p50", "p75", "p95"):
            data[c] = data[c].where(data[c] > floor, floor)
    scale = alt.Scale(type="log") if log_scale else alt.Scale(zero=False)
    color = alt.Color(
        "arm:N",
        title="Arm",
        scale=alt.Scale(scheme=SCHEME),
        legend=alt.Legend(orient="bottom", columns=2, labelLimit=320),
    )
    base = alt.Chart(data).encode(x=alt.X("time_h:Q", title="Time (h)"), color=color)
    outer = base.mark_area(opacity=0.15).encode(
        y=alt.Y("p5:Q", title=title, scale=scale),
        y2="p95:Q",
        tooltip=[
            "arm",
            "time_h",
            alt.Tooltip("p5:Q", format=".3g"),
            alt.Tooltip("p95:Q", format=".3g"),
        ],
    )
    inner = base.mark_area(opacity=0.3).encode(y=alt.Y("p25:Q", scale=scale), y2="p75:Q")
    median = base.mark_line(strokeWidth=2).encode(
        y=alt.Y("p50:Q", scale=scale),
        tooltip=["arm", "time_h", alt.Tooltip("p50:Q", format=".3g", title="median")],
    )
    layers = [outer, inner, median]
    if lines is not None and len(lines):
        rule = (
            alt.Chart(lines)
            .mark_rule(strokeDash=[6, 4], color="#555")
            .encode(
                y=alt.Y("value:Q", scale=scale),
                tooltip=["line", alt.Tooltip("value:Q", format=".3g")],
            )
        )
        text = (
            alt.Chart(lines)
            .mark_text(align="left", dx=4, dy=-6, fontSize=11, color="#333")
            .encode(y=alt.Y("value:Q", scale=scale), x=alt.value(4), text="line:N")
        )
        layers += [rule, text]
    return alt.layer(*layers).properties(height=HEIGHT)


def histogram_chart(bins: pd.DataFrame, title: str, color: str | None = None, log_x: bool = False):
    """Bars of a binned distribution: ``bin_lo``, ``bin_hi``, ``fraction`` (and ``arm``)."""
    data = bins.copy()
    data["percent"] = 100 * data["fraction"]
    enc = {
        "x": alt.X(
            "bin_lo:Q", title=title, scale=alt.Scale(type="log") if log_x else alt.Scale(zero=False)
        ),
        "x2": "bin_hi:Q",
        "y": alt.Y("percent:Q", title="Patients (%)", stack=None, scale=alt.Scale(zero=True)),
        "y2": alt.datum(0),
        "tooltip": [
            alt.Tooltip("bin_lo:Q", format=".3g", title="from"),
            alt.Tooltip("bin_hi:Q", format=".3g", title="to"),
            alt.Tooltip("n:Q", title="patients"),
        ],
    }
    if color:
        enc["color"] = alt.Color(
            f"{color}:N",
            title=color.capitalize(),
            scale=alt.Scale(scheme=SCHEME),
            legend=alt.Legend(orient="bottom", columns=2, labelLimit=320),
        )
        enc["tooltip"] = [color, *enc["tooltip"]]
    return alt.Chart(data).mark_bar(opacity=0.6, binSpacing=0).encode(**enc).properties(height=220)


def phenotype_chart(freq: pd.DataFrame):
    """Stacked bars of phenotype fractions per group, one panel per gene."""
    data = freq.copy()
    data["percent"] = 100 * data["fraction"]
    return (
        alt.Chart(data)
        .mark_bar()
        .encode(
            y=alt.Y("group:N", title=None),
            x=alt.X("percent:Q", title="Patients (%)", stack="zero"),
            color=alt.Color(
                "phenotype:N",
                title="Phenotype",
                scale=alt.Scale(scheme=SCHEME),
                legend=alt.Legend(orient="bottom"),
            ),
            row=alt.Row("gene:N", title=None),
            tooltip=["gene", "group", "phenotype", "n", alt.Tooltip("percent:Q", format=".1f")],
        )
        .properties(height=alt.Step(20), width=360)
    )


def interval_chart(long: pd.DataFrame, metric: str, kind: str, unit: str = ""):
    """One metric per arm: point estimate with its 95 % interval (a forest plot)."""
    data = long[long["metric"] == metric].copy()
    scale = 100.0 if kind in ("rate", "diff") else 1.0
    for c in ("value", "ci_low", "ci_high"):
        data[c] = data[c] * scale
    unit = f" ({unit})" if unit else ""
    base = alt.Chart(data).encode(
        y=alt.Y("arm:N", title=None, sort=None, axis=alt.Axis(labelLimit=140))
    )
    bars = base.mark_rule(strokeWidth=2).encode(
        x=alt.X("ci_low:Q", title=f"{metric}{unit}, 95 % CI"), x2="ci_high:Q"
    )
    pts = base.mark_point(filled=True, size=60).encode(
        x="value:Q",
        color=alt.Color(
            "compound_id:N",
            title="Compound",
            scale=alt.Scale(scheme=SCHEME),
            legend=alt.Legend(orient="bottom"),
        ),
        tooltip=[
            "arm",
            alt.Tooltip("value:Q", format=".3g"),
            alt.Tooltip("ci_low:Q", format=".3g"),
            alt.Tooltip("ci_high:Q", format=".3g"),
        ],
    )
    return alt.layer(bars, pts).properties(height=alt.Step(26))


def dose_response_chart(curves: pd.DataFrame, title: str):
    """Rates against dose with their 95 % interval bands: one colour per metric, one dash
    pattern per compound (``curves`` from :func:`insilico.ui.runs.dose_curves`, rates or
    differences of rates only)."""
    data = curves.copy()
    for c in ("value", "ci_low", "ci_high"):
        data[c] = data[c] * 100.0
    x = alt.X(
        "dose_mg:Q",
        title="Dose (mg)",
        scale=alt.Scale(
            type="log", nice=False, domain=[data["dose_mg"].min(), data["dose_mg"].max()]
        ),
    )
    color = alt.Color(
        "metric:N",
        title=None,
        scale=alt.Scale(scheme=SCHEME),
        legend=alt.Legend(orient="bottom", columns=2, labelLimit=320),
    )
    base = alt.Chart(data).encode(x=x)
    band = base.mark_area(opacity=0.12).encode(
        y=alt.Y("ci_low:Q", title=f"{title} (%), 95 % CI"),
        y2="ci_high:Q",
        detail="compound_id:N",
        color=color,
    )
    line = base.mark_line(point=True).encode(
        y="value:Q",
        color=color,
        strokeDash=alt.StrokeDash("compound_id:N", title="Compound"),
        tooltip=[
            "compound_id",
            "metric",
            "dose_mg",
            alt.Tooltip("value:Q", format=".1f"),
            alt.Tooltip("ci_low:Q", format=".1f"),
            alt.Tooltip("ci_high:Q", format=".1f"),
        ],
    )
    return alt.layer(band, line).properties(height=HEIGHT)


def time_course_chart(course: pd.DataFrame, column: str, title: str, log_scale: bool = False):
    """One patient's time course of one quantity."""
    data = course[["time_h", column]].copy()
    if log_scale:
        data = data[data[column] > 0]
    scale = alt.Scale(type="log") if log_scale else alt.Scale(zero=False)
    return (
        alt.Chart(data)
        .mark_line()
        .encode(
            x=alt.X("time_h:Q", title="Time (h)"),
            y=alt.Y(f"{column}:Q", title=title, scale=scale),
            tooltip=["time_h", alt.Tooltip(f"{column}:Q", format=".3g")],
        )
        .properties(height=220)
    )
