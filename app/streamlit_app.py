"""insilico: minimal results browser (lists runs; one run's summary and percentile bands).

Start with ``insilico app`` (binds 127.0.0.1) or ``streamlit run app/streamlit_app.py``. The
runs folder is ``$INSILICO_RUNS`` or ``runs`` in the working directory. Everything shown comes
from :mod:`insilico.results` (the same functions the CLI uses).
"""

from __future__ import annotations

import os

import streamlit as st
from charts import band_chart  # app/charts.py (the app folder is on sys.path)

from insilico.results.rundir import list_runs, read_run

QUANTITY_LABELS = {
    "conc_mg_per_L": "Plasma concentration (mg/L)",
    "biomarker_change_pct": "Biomarker change from baseline (%)",
}

st.set_page_config(page_title="insilico runs", layout="wide")
st.title("insilico: trial runs")

root = os.environ.get("INSILICO_RUNS", "runs")
runs = list_runs(root)
if runs.empty:
    st.info(f"No runs under `{root}` yet. Run `insilico run workflows/quickstart.yaml`.")
    st.stop()

st.subheader("Runs")
st.dataframe(runs.drop(columns=["path"]), hide_index=True, width="stretch")

run_id = st.selectbox("Run", runs["run_id"].tolist(), key="run")
run = read_run(run_id, root)
m = run.manifest
st.caption(
    f"{m['name']} · {m['n_patients']} patients · seed {m['seed']} · "
    f"spec {m['spec_sha256'][:12]} · created {m['created_utc']}"
)

st.subheader("Summary per arm")
st.dataframe(run.summary, hide_index=True, width="stretch")
for row in m.get("failed_compounds", []):
    st.warning(f"Compound {row['id']} failed: {row['error']}")

st.subheader("Percentile bands (5/25/50/75/95 %)")
arms = run.bands["arm"].drop_duplicates().tolist()
arm = st.selectbox("Arm", arms, key="arm")
for quantity, label in QUANTITY_LABELS.items():
    b = run.bands[(run.bands["arm"] == arm) & (run.bands["quantity"] == quantity)]
    if b.empty:
        continue
    st.markdown(f"**{label}**")
    st.altair_chart(band_chart(b, label), width="stretch")
