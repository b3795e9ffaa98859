"""Run: the design on the local Dask cluster, a scheduler address, or in this process; a progress
bar and cancel; the run lands in the same runs folder as ``insilico run``."""

from __future__ import annotations

import common
import streamlit as st

from insilico.errors import InsilicoError
from insilico.ui import design as ui_design
from insilico.ui import jobs

st.title("Run")
root = common.root()
st.caption(f"Runs folder: `{root}` (the same as `insilico run --out {root}`).")

d = common.design()
try:
    spec = ui_design.validate_design(d)
except InsilicoError as exc:
    st.error(f"The trial design is not valid yet: {str(exc).splitlines()[0]}")
    st.page_link(st.session_state["_pages"]["design"], label="Fix it on the Trial design page")
    st.stop()
s = ui_design.design_summary(spec)
st.markdown(
    f"**{s['name']}**: {s['n_arms']} arm(s) × {s['n_patients']:,} patients, {s['design']} design, "
    f"seed {spec.seed}."
)

where = st.radio(
    "Where",
    ["Local Dask cluster", "Dask scheduler address", "In this process (serial)"],
    horizontal=True,
    key="run_where",
)
c1, c2 = st.columns(2)
scheduler = None
workers = None
if where == "Dask scheduler address":
    scheduler = c1.text_input("Scheduler", placeholder="tcp://127.0.0.1:8786", key="run_scheduler")
elif where == "Local Dask cluster":
    workers = int(
        c1.number_input("Worker processes", min_value=1, max_value=64, value=2, key="run_workers")
    )
chunk = c2.number_input(
    "Patients per task (0 = default)",
    min_value=0,
    value=0,
    step=1024,
    key="run_chunk",
    help="Results do not depend on it (random streams are keyed by fixed patient blocks).",
)

size = ui_design.work_estimate(spec)
cores = workers or 1
about = ui_design.format_duration(size["serial_s"] / cores)
st.caption(
    f"Size: {size['patient_times']:,.0f} patient × arm × output-time values; about {about} "
    f"of computing {'in this process' if cores == 1 else f'on {cores} workers (one per core)'}"
    " (starting a cluster and a first compile come on top)."
)
confirmed = True
if size["serial_s"] / cores > ui_design.CONFIRM_ABOVE_S:
    st.warning(
        f"This run is large: about {about} of computing. Fewer patients, arms or output "
        "times (a coarser output interval) make it shorter."
    )
    confirmed = st.checkbox(f"Run it anyway (about {about})", key="run_confirm_large")

job: jobs.RunJob | None = st.session_state.get("job")
if job is None:  # a new session (e.g. the page was reloaded): reattach to a running job
    job = jobs.latest_active_job()
    if job is not None:
        st.session_state["job"] = job
        st.info(f"Reattached to the run of {job.name} started before this page was loaded.")
busy = job is not None and job.active
if st.button("Start the run", type="primary", disabled=busy or not confirmed, key="start_run"):
    if where == "Dask scheduler address" and not (scheduler or "").strip():
        st.error("scheduler: give an address like tcp://127.0.0.1:8786")
    else:
        job = jobs.start_run(
            spec.model_dump(mode="json"),
            root,
            executor="serial" if where.startswith("In this process") else "dask",
            scheduler=scheduler,
            workers=workers,
            chunk_size=int(chunk) or None,
        )
        st.session_state["job"] = job


def show_finished(job: jobs.RunJob) -> None:
    """The end state of a run (no polling)."""
    if job.status == "done":
        st.progress(1.0, text=f"{job.name}: done in {job.elapsed_s:.1f} s")
        st.success(f"Run `{job.run_id}` is ready.")
        if st.session_state.get("_job_seen") != job.job_id:
            st.session_state["_job_seen"] = job.job_id
            st.session_state["run_id"] = job.run_id
        if st.button("Open the results", type="primary", key="open_results"):
            st.session_state["run_id"] = job.run_id
            st.query_params["run"] = job.run_id
            st.switch_page(st.session_state["_pages"]["results"])
    elif job.status == "cancelled":
        st.warning(f"{job.name}: cancelled after {job.elapsed_s:.0f} s; nothing was written.")
    else:
        st.error(f"{job.name}: the run failed — {job.error}")


@st.fragment(run_every=1.0)
def poll_progress() -> None:
    """Progress while the run is active; a full rerun when it ends (so no timer is left)."""
    job: jobs.RunJob | None = st.session_state.get("job")
    if job is None or not job.active:
        st.rerun(scope="app")
    label = (
        f"{job.name}: {job.n_done} of {job.n_total} tasks, {job.elapsed_s:.0f} s"
        if job.n_total
        else f"{job.name}: preparing (compounds, cohort, cluster), {job.elapsed_s:.0f} s"
    )
    st.progress(job.fraction, text=label)
    if st.button("Cancel", key="cancel_run"):
        job.cancel()
        st.info("Cancelling…")


job = st.session_state.get("job")
if job is not None and job.active:
    poll_progress()
elif job is not None:
    show_finished(job)
