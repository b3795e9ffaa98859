"""Patient twin: one patient's records and a population model; the twin updated from the
observations (individual parameters, forecast with a 90 % band) and, optionally, the dose of a
regimen most likely to meet a target (the same as ``insilico twin``)."""

from __future__ import annotations

import streamlit as st

from insilico.errors import InsilicoError
from insilico.ui import twin as ui

st.title("Patient twin")
st.caption(
    "Upload one patient's records (NONMEM-format CSV: `ID, TIME, EVID, AMT, CMT, DV` and "
    "covariates such as `WT`) and a population model with between-subject variability and a "
    "residual error; the twin is the patient's most likely parameters given the observations."
)

c1, c2 = st.columns(2)
data_file = c1.file_uploader("Patient records (CSV)", type=["csv"], key="twin_data")
source = c2.radio(
    "Model", ["a model file from models/", "upload a model (YAML)"], key="twin_model_source"
)
model_name = model_file = None
if source.startswith("a model file"):
    names = ui.model_files()
    default = "oral_1cpt_lag_allometric.yaml"
    model_name = c2.selectbox(
        "Model file", names, index=names.index(default) if default in names else 0, key="twin_model"
    )
else:
    model_file = c2.file_uploader("Model (YAML)", type=["yaml", "yml"], key="twin_model_file")

use_until = st.checkbox("Use observations up to a time only", key="twin_use_until")
until = None
if use_until:
    until = float(
        st.number_input("Use observations up to (h)", min_value=0.0, value=24.0, key="twin_until")
    )

dose = st.checkbox("Recommend a dose", key="twin_dose")
if dose:
    d1, d2, d3, d4 = st.columns([3, 2, 1, 1])
    template = d1.text_input(
        "Regimen (X = the dose in mg)", value="X mg PO q12h x14", key="twin_template"
    )
    metric = d2.selectbox(
        "Target", list(ui.METRIC_LABELS), format_func=ui.METRIC_LABELS.get, key="twin_metric"
    )
    lo = d3.number_input("From", min_value=0.0, value=1.5, key="twin_lo")
    hi = d4.number_input("To", min_value=0.0, value=2.5, key="twin_hi")

if st.button("Update twin", type="primary", key="twin_update"):
    st.session_state.pop("twin_result", None)
    if data_file is None:
        st.error("Upload the patient's records first.")
    elif model_name is None and model_file is None:
        st.error("Choose or upload a model first.")
    else:
        try:
            if model_file is not None:
                model = ui.model_from_upload(model_file.getvalue(), model_file.name)
            else:
                model = ui.shipped_model(model_name)
            dataset = ui.dataset_from_upload(data_file.getvalue(), data_file.name, model)
            ids = ui.patient_ids(dataset)
            goal = ui.target(metric, float(lo), float(hi)) if dose else None
            with st.spinner("Updating the twin…"):
                twin = ui.update_twin(model, dataset, until_h=until)
                rec = ui.recommend(model, twin, template, goal) if goal is not None else None
            st.session_state["twin_result"] = {"twin": twin, "ids": ids, "dose": rec, "goal": goal}
        except InsilicoError as exc:
            st.error(str(exc).splitlines()[0])

result = st.session_state.get("twin_result")
if result is None:
    st.info("Upload the records, choose a model and press **Update twin**.")
    st.stop()

twin = result["twin"]
if len(result["ids"]) > 1:
    st.warning(
        f"The file holds {len(result['ids'])} patients; the twin is patient ID {twin.patient}'s."
    )
st.markdown(
    f"**Patient {twin.patient}**: updated from {twin.n_observations} observation(s)"
    + ("" if twin.converged else "; the estimate did not converge, read it with care")
    + "."
)
st.subheader("Individual parameters")
st.dataframe(twin.parameters, hide_index=True, width="stretch")
st.subheader("Observations and forecast")
st.caption(
    "PRED: a typical patient with these covariates; IPRED: the twin; band: 90 % prediction "
    "interval of an observation."
)
st.altair_chart(ui.twin_chart(twin), width="stretch")

rec, goal = result["dose"], result["goal"]
if rec is not None:
    st.subheader("Dose recommendation")
    st.success(
        f"**{rec['regimen']}**: probability {rec['probability']:.0%} that the "
        f"{ui.METRIC_LABELS[goal.metric].lower()} is within {goal.lo:g}–{goal.hi:g} "
        f"(median {rec['median']:.3g})."
    )
    with st.expander("All doses considered"):
        st.dataframe(rec["candidates"], hide_index=True, width="stretch")
