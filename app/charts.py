"""Chart builders of the app (Altair specs; no Streamlit here, so they can be tested alone)."""

from __future__ import annotations

import altair as alt
import pandas as pd


def band_chart(bands: pd.DataFrame, title: str) -> alt.LayerChart:
    """Percentile band of one arm and quantity over time.

    ``bands`` has columns ``time_h``, ``p5``, ``p25``, ``p50``, ``p75``, ``p95`` (rows of
    bands.parquet for one arm and quantity). Shaded 5-95 % and 25-75 % areas and the median.
    """
    base = alt.Chart(bands).encode(x=alt.X("time_h:Q", title="time (h)"))
    outer = base.mark_area(opacity=0.2).encode(
        y=alt.Y("p5:Q", title=title), y2="p95:Q", tooltip=["time_h", "p5", "p95"]
    )
    inner = base.mark_area(opacity=0.4).encode(y="p25:Q", y2="p75:Q")
    median = base.mark_line().encode(y="p50:Q", tooltip=["time_h", "p50"])
    return alt.layer(outer, inner, median).properties(height=260)
