"""Cohort: pick a preset from ``cohorts/``, set n and inclusion criteria, preview the virtual
patients (age, weight, eGFR, albumin; phenotype frequencies by group) before running."""

from __future__ import annotations

import charts
import common
import pandas as pd
import streamlit as st

from insilico.cohort import summarize_cohort
from insilico.errors import InsilicoError
from insilico.ui import cohorts as ui

st.title("Cohort")
presets = ui.presets()
if not presets:
    st.error("No cohort presets found (the `cohorts/` folder of a source checkout).")
    st.stop()

d = common.design()
current = ui.preset_of(d.get("cohort"))
names = list(presets)
c1, c2, c3 = st.columns([2, 1, 1])
with c1:
    preset = st.selectbox(
        "Preset",
        names,
        index=names.index(current) if current in names else 0,
        key="cohort_preset",
    )
with c2:
    n = st.number_input(
        "Patients in the trial (n)",
        min_value=1,
        max_value=10_000_000,
        value=int(d.get("n_patients", 1000)),
        step=100,
        key="cohort_n",
    )
with c3:
    seed = st.number_input(
        "Seed", min_value=0, value=int(d.get("seed", 1)), step=1, key="cohort_seed"
    )
info = ui.preset_mapping(preset)
st.caption(f"{info.get('description', '')} — source: {info.get('source', '')}")

st.subheader("Inclusion criteria")
st.caption(
    "Patients failing any criterion are excluded. Numeric fields: `<`, `<=`, `>`, `>=`, `between` "
    "(value `low, high`); categorical fields: `==`, `!=`, `in`, `not_in` (value `a, b`)."
)
existing = []
if isinstance(d.get("cohort"), dict) and current == preset:
    base_crit = {repr(c) for c in info.get("criteria", [])}
    for c in d["cohort"].get("criteria", []):
        if repr(c) not in base_crit:
            v = c.get("value")
            existing.append(
                {
                    "field": c.get("field"),
                    "op": c.get("op"),
                    "value": ", ".join(map(str, v)) if isinstance(v, list) else str(v),
                }
            )
crit_key = f"criteria_editor_{preset}"
existing = st.session_state.get(f"_criteria_rows_{preset}", existing)
rows = st.data_editor(
    common.editor_base(
        crit_key, lambda: pd.DataFrame(existing, columns=["field", "op", "value"]).astype(object)
    ),
    num_rows="dynamic",
    hide_index=True,
    width="stretch",
    column_config={
        "field": st.column_config.SelectboxColumn(
            "Field", options=list(ui.CRITERION_FIELDS), required=True
        ),
        "op": st.column_config.SelectboxColumn(
            "Operator", options=list(ui.CRITERION_OPS), required=True
        ),
        "value": st.column_config.TextColumn("Value"),
    },
    key=crit_key,
)
st.session_state[f"_criteria_rows_{preset}"] = rows.to_dict("records")
try:
    criteria = ui.criteria_from_rows(rows.to_dict("records"))
    cohort_value = ui.cohort_value(preset, criteria)
except InsilicoError as exc:
    st.error(str(exc).splitlines()[0])
    st.stop()

if st.button("Use this cohort and n in the trial design", type="primary"):
    nd = common.deepcopy(d)
    nd["cohort"] = cohort_value
    nd["n_patients"] = int(n)
    nd["seed"] = int(seed)
    common.set_design(nd, reset_widgets=True)
    st.success(
        f"Trial design: cohort {preset}{' with criteria' if criteria else ''}, n = {int(n):,}."
    )

n_prev = min(int(n), ui.MAX_PREVIEW)
st.subheader(f"Preview ({n_prev:,} virtual patients)")
try:
    cohort, hist = common.cohort_preview(cohort_value, n_prev, int(seed))
except InsilicoError as exc:
    st.error(str(exc).splitlines()[0])
    st.stop()

cols = st.columns(2)
for k, (col, label) in enumerate(ui.HISTOGRAM_COLUMNS.items()):
    with cols[k % 2]:
        st.markdown(f"**{label}**")
        st.altair_chart(charts.histogram_chart(hist[hist["column"] == col], label), width="stretch")

st.markdown("**Phenotype frequencies by group**")
by = st.selectbox("Group by", list(ui.GROUP_COLUMNS), key="pheno_by")
st.altair_chart(charts.phenotype_chart(ui.phenotype_frequencies(cohort, by)), width="content")

numeric, categorical = summarize_cohort(cohort)
with st.expander("Summary table"):
    st.dataframe(numeric.style.format("{:.3g}"), width="stretch")
    st.dataframe(categorical[categorical["n"] > 0], hide_index=True, width="stretch")
with st.expander("Columns and units"):
    st.dataframe(ui.describe_columns(), hide_index=True, width="stretch")
