"""Shared state and cached loaders of the app pages (Streamlit glue over :mod:`insilico.ui`).

Caches: small tables with ``st.cache_data`` (keyed by run id and the manifest's mtime, so a
run is read once); per-run objects that should not be copied on every rerun (trial context,
exposure histograms) with ``st.cache_resource``.
"""

from __future__ import annotations

import copy
import json

import pandas as pd
import streamlit as st

from insilico.results import access as run_access
from insilico.trial import resimulate
from insilico.ui import cohorts as ui_cohorts
from insilico.ui import compounds as ui_compounds
from insilico.ui import design as ui_design
from insilico.ui import runs as ui_runs


# ------------------------------------------------------------------ session state
def design() -> dict:
    """The design being edited (a plain trial mapping): the last one edited on this server
    (it survives a page reload), else the quickstart."""
    if "design" not in st.session_state:
        st.session_state["design"] = ui_design.starting_design()
        st.session_state["design_version"] = 0
    return st.session_state["design"]


def set_design(d: dict, reset_widgets: bool = False) -> None:
    """Store the design; ``reset_widgets`` re-creates the design widgets from it."""
    st.session_state["design"] = d
    ui_design.remember_design(d)
    if reset_widgets:
        st.session_state["design_version"] = st.session_state.get("design_version", 0) + 1


def design_version() -> int:
    design()
    return int(st.session_state.get("design_version", 0))


def compounds_raw() -> pd.DataFrame:
    """The compounds being edited (raw strings), from the design's inline compounds at first."""
    if "compounds_raw" not in st.session_state:
        comps = design().get("compounds")
        records = comps if isinstance(comps, list) else []
        st.session_state["compounds_raw"] = ui_compounds.raw_from_records(records)
    return st.session_state["compounds_raw"]


def set_compounds_raw(raw: pd.DataFrame) -> None:
    st.session_state["compounds_raw"] = raw.reset_index(drop=True)
    st.session_state["compounds_version"] = st.session_state.get("compounds_version", 0) + 1


def root():
    return run_access.runs_root()


# ------------------------------------------------------------------ cached computations
@st.cache_data(show_spinner="Reading and profiling compounds…", max_entries=32)
def _assemble(raw_json: str) -> ui_compounds.CompoundSet:
    return ui_compounds.assemble(pd.read_json(_io(raw_json), orient="split", dtype=False))


def _io(text: str):
    import io

    return io.StringIO(text)


def assemble(raw: pd.DataFrame) -> ui_compounds.CompoundSet:
    """Assembled compounds (cached by the raw table's content)."""
    return _assemble(raw.astype(str).to_json(orient="split"))


@st.cache_data(show_spinner="Sampling the cohort…", max_entries=16)
def _preview(cohort_json: str, n: int, seed: int):
    cohort = json.loads(cohort_json)
    df = ui_cohorts.preview(cohort, n, seed)
    return df, ui_cohorts.histogram_table(df)


def cohort_preview(cohort, n: int, seed: int):
    """(preview frame, histogram table), cached by the cohort value, n and seed."""
    return _preview(json.dumps(cohort, sort_keys=True), int(n), int(seed))


@st.cache_data(show_spinner=False, max_entries=64)
def _run(run_id: str, root_str: str, stamp: float) -> run_access.RunData:
    return run_access.load_run(run_id, root_str)


def run(run_id: str) -> run_access.RunData:
    """A run read once (safe resolution; re-read only if its manifest changes)."""
    r = str(root())
    return _run(run_id, r, run_access.run_stamp(run_id, r))


@st.cache_resource(show_spinner="Reading exposures…", max_entries=16)
def _exposure(run_id: str, root_str: str, stamp: float) -> pd.DataFrame:
    return ui_runs.exposure_histograms(run_access.load_run(run_id, root_str))


def exposure(run_id: str) -> pd.DataFrame:
    r = str(root())
    return _exposure(run_id, r, run_access.run_stamp(run_id, r))


@st.cache_resource(show_spinner=False, max_entries=16)
def _reference_lines(run_id: str, root_str: str, stamp: float) -> pd.DataFrame:
    return ui_runs.reference_lines(run_access.load_run(run_id, root_str))


def reference_lines(run_id: str) -> pd.DataFrame:
    r = str(root())
    return _reference_lines(run_id, r, run_access.run_stamp(run_id, r))


@st.cache_resource(show_spinner=False, max_entries=16)
def _patient_ids(run_id: str, root_str: str, stamp: float, arm: str):
    return run_access.patient_ids(run_access.load_run(run_id, root_str), arm)


def patient_ids(run_id: str, arm: str):
    r = str(root())
    return _patient_ids(run_id, r, run_access.run_stamp(run_id, r), arm)


@st.cache_resource(show_spinner="Rebuilding the trial context…", max_entries=4)
def _context(run_id: str, root_str: str, stamp: float):
    return resimulate.trial_context(run_access.load_run(run_id, root_str).manifest)


def context(run_id: str):
    r = str(root())
    return _context(run_id, r, run_access.run_stamp(run_id, r))


@st.cache_data(show_spinner=False, max_entries=64)
def _run_list(root_str: str, stamp: float) -> pd.DataFrame:
    return run_access.run_list(root_str)


def run_list() -> pd.DataFrame:
    """Runs under the root (re-listed when the folder changes)."""
    r = root()
    return _run_list(str(r), run_access.root_stamp(r))


def deepcopy(d: dict) -> dict:
    return copy.deepcopy(d)


def editor_base(key: str, make) -> pd.DataFrame:
    """The data a ``st.data_editor`` with ``key`` starts from, fixed while the editor lives.

    A data editor's edits are deltas against its input: feeding the edited result back as the
    input would apply them twice. The base is rebuilt (``make()``) only when the editor's own
    state is gone (first render, or after visiting another page).
    """
    bkey = f"_base_{key}"
    if key not in st.session_state or bkey not in st.session_state:
        st.session_state[bkey] = make()
    return st.session_state[bkey]
