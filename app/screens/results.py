"""Results: scorecard per compound x arm with 95 % intervals and a ranking; percentile bands over
time; exposure distributions; dose-response; one virtual patient; two runs side by side;
downloads. Everything is read once per run and cached."""

from __future__ import annotations

import charts
import common
import streamlit as st

from insilico.errors import InsilicoError
from insilico.results import access as run_access
from insilico.trial import resimulate
from insilico.ui import report as ui_report
from insilico.ui import runs as ui

st.title("Results")
runs = common.run_list()
if runs.empty:
    st.info(
        f"No runs under `{common.root()}` yet. Design a trial and run it, or "
        "`insilico run workflows/quickstart.yaml`."
    )
    st.stop()

ids = runs["run_id"].tolist()
wanted = st.query_params.get("run")
if wanted is not None and wanted not in ids:
    try:
        run_access.safe_run_path(wanted, common.root())
    except InsilicoError as exc:
        st.error(f"Refused the run in the address: {str(exc).splitlines()[0]}")
    wanted = None
default = wanted or st.session_state.get("run_id")
run_id = st.selectbox(
    "Run", ids, index=ids.index(default) if default in ids else 0, key="results_run"
)
st.session_state["run_id"] = run_id
if st.query_params.get("run") != run_id:
    st.query_params["run"] = run_id

run = common.run(run_id)
m = run.manifest
summary = run.summary
st.caption(
    f"{m.get('name')} · {m.get('n_patients'):,} patients · seed {m.get('seed')} · "
    f"spec {str(m.get('spec_sha256', ''))[:12]} · created {m.get('created_utc')} · "
    f"{m.get('timings_s', {}).get('total', float('nan')):.1f} s"
)
for row in m.get("failed_compounds", []):
    st.warning(f"Compound {row['id']} was not run: {row['error']}")
for row in m.get("compound_warnings", []):
    st.warning(f"Compound {row['id']}: {row['warning']}")

tabs = st.tabs(
    [
        "Scorecard",
        "Time courses",
        "Exposure",
        "Dose scan",
        "One patient",
        "Compare runs",
        "Downloads",
    ]
)

# ------------------------------------------------------------------ scorecard and ranking
with tabs[0]:
    st.subheader("Scorecard per compound × arm")
    st.caption("Rates in % of the arm's virtual patients with 95 % confidence intervals (Wilson).")
    pooled = ui.replicate_note(summary)
    if pooled:
        st.info(pooled)
    metrics = ui.summary_metrics(summary)
    by_metric = st.toggle(
        "One row per quantity (arms as columns)", value=len(metrics) > 5, key="card_layout"
    )
    if by_metric:
        st.dataframe(ui.scorecard_by_metric(summary), width="stretch", key="scorecard_t")
    else:
        st.dataframe(ui.scorecard(summary), hide_index=True, width="stretch", key="scorecard")
    for cid, text in ui.best_doses(summary).items():
        st.markdown(f"Best dose of **{cid}**: {text}")
    if metrics:
        default_metric = ui.default_ranking_metric(summary)
        labels_m = [mm.label for mm in metrics]
        c1, c2 = st.columns([2, 1])
        pick = c1.selectbox(
            "Rank the arms by",
            labels_m,
            index=labels_m.index(default_metric.label) if default_metric else 0,
            key="rank_metric",
        )
        metric = metrics[labels_m.index(pick)]
        higher = c2.radio(
            "Better is",
            ["higher", "lower"],
            index=0 if metric.higher_is_better else 1,
            horizontal=True,
            key=f"rank_dir_{metric.prefix}",
        )
        ranking = ui.rank_arms(summary, metric.prefix, higher == "higher")
        scale = metric.scale
        unit = f" ({metric.unit})" if metric.unit else ""
        shown = ranking.assign(
            value=ranking["value"] * scale,
            ci_low=ranking["ci_low"] * scale,
            ci_high=ranking["ci_high"] * scale,
        ).rename(
            columns={
                "rank": "Rank",
                "arm": "Arm",
                "compound_id": "Compound",
                "regimen": "Regimen",
                "value": f"{metric.label}{unit}",
                "ci_low": "95 % CI low",
                "ci_high": "95 % CI high",
            }
        )
        st.markdown(f"**Ranking on {metric.label}**")
        st.dataframe(
            shown,
            hide_index=True,
            width="stretch",
            key="ranking",
            column_config={
                c: st.column_config.NumberColumn(format="%.3g") for c in shown.columns[4:]
            },
        )
        st.altair_chart(
            charts.interval_chart(
                ui.scorecard_long(summary), metric.label, metric.kind, metric.unit
            ),
            width="stretch",
        )
    else:
        st.info("This run has no rates or estimates with intervals.")

# ------------------------------------------------------------------ bands
with tabs[1]:
    bands = run.bands
    arms_all = bands["arm"].drop_duplicates().tolist()
    quantities = ui.band_quantities(bands)
    c1, c2 = st.columns([3, 1])
    chosen = c1.multiselect(
        "Arms",
        arms_all,
        default=[a for a in arms_all if a != "placebo"][:2] or arms_all[:1],
        key="band_arms",
    )
    log_scale = c2.toggle("Log scale (concentration)", value=False, key="band_log")
    show_lines = c2.toggle("Target and hERG lines", value=True, key="band_lines")
    lines_all = common.reference_lines(run_id) if show_lines else None
    for q in quantities:
        b = ui.bands_for(bands, q, chosen)
        if b.empty:
            continue
        lines = None
        if q == "conc_mg_per_L" and lines_all is not None and len(lines_all):
            lines = (
                lines_all[lines_all["arm"].isin(chosen)]
                .drop_duplicates(["line", "conc_mg_per_L"])
                .rename(columns={"conc_mg_per_L": "value"})
            )
        label = charts.quantity_label(q)
        st.markdown(f"**{label}** — median, 25–75 % and 5–95 % of patients")
        st.altair_chart(
            charts.band_chart(b, label, log_scale=log_scale and q.startswith("conc"), lines=lines),
            width="stretch",
            height=charts.HEIGHT + 90,
        )

# ------------------------------------------------------------------ exposure
with tabs[2]:
    hist = common.exposure(run_id)
    if hist.empty:
        st.info("No drug exposure in this run.")
    else:
        arms_e = hist["arm"].drop_duplicates().tolist()
        pick_e = st.multiselect("Arms", arms_e, default=arms_e[:3], key="exposure_arms")
        for metric_name, label in ui.EXPOSURE_LABELS.items():
            h = hist[(hist["metric"] == metric_name) & hist["arm"].isin(pick_e)]
            if h.empty:
                continue
            st.markdown(f"**{label}**")
            st.altair_chart(
                charts.histogram_chart(h, label, color="arm", log_x=True),
                width="stretch",
                height=330,
            )
        st.markdown("**Percentiles of the arm's patients**")
        table = ui.exposure_table(summary)
        st.dataframe(
            table,
            hide_index=True,
            width="stretch",
            key="exposure_table",
            column_config={
                c: st.column_config.NumberColumn(format="%.3g") for c in table.columns[2:]
            },
        )

# ------------------------------------------------------------------ dose scan
with tabs[3]:
    curves = ui.dose_curves(summary)
    if curves is None or curves.empty:
        st.info("This run has no dose scan (add a `dose_scan` section to the protocol).")
    else:
        rates = curves[curves["kind"] == "rate"]
        groups = (
            ("Dose–response", "Patients", rates[rates["higher_is_better"]]),
            ("Dose–adverse events", "Patients with the event", rates[~rates["higher_is_better"]]),
        )
        for title, axis, part in groups:
            if part.empty:
                continue
            st.markdown(f"**{title}**")
            st.altair_chart(
                charts.dose_response_chart(part, axis), width="stretch", height=charts.HEIGHT + 110
            )
        st.markdown("**Per dose, every metric**")
        st.dataframe(ui.scorecard(summary), hide_index=True, width="stretch", key="dose_table")

# ------------------------------------------------------------------ one patient
with tabs[4]:
    arms_p = summary["arm"].astype(str).tolist()
    c1, c2 = st.columns(2)
    arm_p = c1.selectbox("Arm", arms_p, key="patient_arm")
    pids = common.patient_ids(run_id, arm_p)
    if len(pids) == 0:
        st.info("No patients in this arm.")
    else:
        pid = int(
            c2.number_input(
                f"Patient id ({int(pids[0])}–{int(pids[-1])})",
                min_value=int(pids[0]),
                max_value=int(pids[-1]),
                value=int(pids[0]),
                key="patient_id",
            )
        )
        rows = run_access.patient_rows(run, pid)
        if rows.empty:
            st.info(f"Patient {pid} is not in this run.")
        else:
            cov, per_arm = ui.patient_view(rows)
            st.markdown("**Covariates**")
            st.dataframe(
                cov.set_index("quantity").T,
                hide_index=True,
                width="stretch",
                key="patient_covariates",
            )
            st.markdown("**Parameters and outcomes in every arm the patient received**")
            st.dataframe(
                per_arm,
                width="stretch",
                height=min(36 * (len(per_arm) + 1) + 4, 1200),
                key="patient_rows",
            )
            course = None
            if st.toggle(
                "Time courses (re-simulates this patient: a few seconds)",
                value=False,
                key="patient_course",
            ):
                try:
                    with st.spinner("Simulating the patient…"):
                        course = resimulate.patient_time_course(common.context(run_id), arm_p, pid)
                except InsilicoError as exc:
                    st.info(str(exc).splitlines()[0])
            if course is not None and len(course):
                st.markdown(f"**Time course of patient {pid} in {arm_p}**")
                st.altair_chart(
                    charts.time_course_chart(course, "conc_mg_per_L", "Concentration (mg/L)"),
                    width="stretch",
                )
                if "biomarker_change_pct" in course:
                    st.altair_chart(
                        charts.time_course_chart(
                            course, "biomarker_change_pct", "Biomarker change (%)"
                        ),
                        width="stretch",
                    )
            elif course is not None:
                st.info(f"Patient {pid} did not receive {arm_p} (parallel design).")

# ------------------------------------------------------------------ compare
with tabs[5]:
    others = [i for i in ids if i != run_id]
    if not others:
        st.info("Only one run so far.")
    else:
        other = st.selectbox("Compare with", others, key="compare_run")
        run_b = common.run(other)
        c1, c2 = st.columns(2)
        with c1:
            st.markdown(f"**A: {run_id}**")
            st.dataframe(ui.scorecard(summary), hide_index=True, width="stretch", key="compare_a")
        with c2:
            st.markdown(f"**B: {other}**")
            st.dataframe(
                ui.scorecard(run_b.summary), hide_index=True, width="stretch", key="compare_b"
            )
        diff = ui.compare_runs(summary, run_b.summary)
        if diff.empty:
            st.info("The two runs share no arm.")
        else:
            st.markdown("**B − A for the shared arms** (rates in percentage points)")
            st.dataframe(
                diff,
                hide_index=True,
                width="stretch",
                key="compare_diff",
                column_config={
                    c: st.column_config.NumberColumn(format="%.3g")
                    for c in ("run_a", "run_b", "difference")
                },
            )

# ------------------------------------------------------------------ downloads
with tabs[6]:
    st.caption(
        "Files are prepared when you click. The report is one self-contained HTML page "
        "(scorecard, ranking, band plots); print it to PDF from the browser."
    )
    c1, c2, c3 = st.columns(3)
    files = [
        (c1, "Summary (CSV)", lambda: ui.summary_csv(summary), "summary.csv", "text/csv"),
        (
            c1,
            "Summary (Parquet)",
            lambda: run_access.run_file_bytes(run, "summary.parquet"),
            "summary.parquet",
            "application/octet-stream",
        ),
        (
            c2,
            "Patients (Parquet)",
            lambda: run_access.run_file_bytes(run, "patients.parquet"),
            "patients.parquet",
            "application/octet-stream",
        ),
        (
            c2,
            "Bands (Parquet)",
            lambda: run_access.run_file_bytes(run, "bands.parquet"),
            "bands.parquet",
            "application/octet-stream",
        ),
        (c3, "Protocol (YAML)", lambda: ui.spec_yaml(m), "protocol.yaml", "application/x-yaml"),
        (
            c3,
            "One-page report (HTML)",
            lambda: ui_report.report_html(run, ui.reference_lines(run)),
            "report.html",
            "text/html",
        ),
    ]
    for col, label, make, suffix, mime in files:
        col.download_button(
            label, make, f"{run_id}-{suffix}", mime, on_click="ignore", key=f"dl_{suffix}"
        )
