"""Fit: the results of ``insilico fit`` from its output directory: OFV, AIC, BIC, convergence
and messages, the parameter estimates with their standard errors, goodness-of-fit plots and the
prediction-corrected VPC."""

from __future__ import annotations

import streamlit as st

from insilico.errors import InsilicoError
from insilico.ui import twin as ui

st.title("Fit")
st.caption(
    "A directory written by `insilico fit MODEL.yaml --data DATA.csv --out DIR` "
    "(absolute, or relative to the folder the app was started in)."
)
path = st.text_input("Fit directory", value="", placeholder="fits/my_model", key="fit_dir")
if not path.strip():
    st.info("Enter the path of a fit directory.")
    st.stop()
try:
    fit = ui.read_fit_dir(path)
except InsilicoError as exc:
    st.error(str(exc).splitlines()[0])
    st.stop()

summary = fit.summary
name = summary.get("model") or fit.path.name
st.markdown(f"**{name}**: {summary.get('method', 'fit')} in `{fit.path}`")
head = ui.fit_headline(summary)
for col, (label, value) in zip(st.columns(len(head)), head.items(), strict=True):
    col.metric(label, value)
if summary.get("converged") is False:
    st.warning("The estimation did not converge: read the estimates with care.")
for message in summary.get("messages") or []:
    st.warning(str(message))

st.subheader("Estimates")
st.dataframe(fit.estimates, hide_index=True, width="stretch")
for file, title in ui.FIT_IMAGES.items():
    if file not in fit.images and file in ui.FIT_OPTIONAL_IMAGES:
        continue
    st.subheader(title)
    if file in fit.images:
        st.image(fit.images[file], width="content")
    else:
        st.info(f"No `{file}` in this directory.")
