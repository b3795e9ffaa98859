"""insilico.ui: the app's library side (no Streamlit): safe run ids, the generic scorecard,
ranking, design YAML round trip, uploads, one patient's time course, background runs."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from insilico.errors import SpecError
from insilico.results import access as run_access
from insilico.trial import resimulate
from insilico.ui import compounds as ui_compounds
from insilico.ui import design as ui_design
from insilico.ui import jobs
from insilico.ui import runs as ui_runs
from insilico.ui.cohorts import WORKFLOWS_DIR

REPO = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------ run ids
@pytest.mark.parametrize(
    "bad",
    [
        "../../etc",
        "..",
        "/etc",
        "a/b",
        ".hidden",
        "",
        " ",
        "x\x00y",
        "run/../..",
        None,
        3,
        "%2e%2e",
    ],
)
def test_run_ids_outside_the_runs_folder_are_refused(runs_root, bad):
    with pytest.raises(SpecError) as err:
        run_access.safe_run_path(bad, runs_root)
    assert err.value.field == "run"


def test_a_symlink_out_of_the_runs_folder_is_refused(runs_root, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "manifest.json").write_text("{}")
    link = runs_root / "20990101-000000-evil-00000000"
    link.symlink_to(outside, target_is_directory=True)
    try:
        with pytest.raises(SpecError):
            run_access.safe_run_path(link.name, runs_root)
    finally:
        link.unlink()


def test_a_symlinked_complete_run_is_not_listed(runs_root, tmp_path):
    """It could not be opened (see above), so it must not be offered either (it was listed
    first, being newest)."""
    import shutil

    real = run_access.run_list(runs_root)["run_id"].iloc[0]
    copy = tmp_path / "copied_run"
    shutil.copytree(runs_root / real, copy)
    link = runs_root / "20990101-000000-linked-00000000"
    link.symlink_to(copy, target_is_directory=True)
    try:
        assert link.name not in run_access.run_list(runs_root)["run_id"].tolist()
    finally:
        link.unlink()


def test_a_real_run_id_resolves(runs_root):
    run_id = run_access.run_list(runs_root)["run_id"].iloc[0]
    assert run_access.safe_run_path(run_id, runs_root) == (runs_root / run_id).resolve()
    run = run_access.load_run(run_id, runs_root)
    assert len(run.summary) == 5


# ------------------------------------------------------------------ scorecard
def _summary() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "arm": ["a:low", "a:high", "placebo"],
            "compound_id": ["a", "a", "placebo"],
            "regimen": ["low", "high", "placebo"],
            "n": [100, 100, 100],
            "responder_rate": [0.35, 0.60, 0.05],
            "responder_ci_low": [0.26, 0.50, 0.02],
            "responder_ci_high": [0.45, 0.69, 0.11],
            "ae_qt_rate": [0.02, 0.10, 0.01],
            "ae_qt_ci_low": [0.005, 0.05, 0.002],
            "ae_qt_ci_high": [0.07, 0.17, 0.05],
            "herg_margin": [120.0, 35.0, math.nan],
            "herg_margin_ci_low": [80.0, 20.0, math.nan],
            "herg_margin_ci_high": [180.0, 60.0, math.nan],
            "new_thing_p50": [1.5, 2.5, 0.0],
            "new_thing_ci_low": [1.0, 2.0, 0.0],
            "new_thing_ci_high": [2.0, 3.0, 0.0],
            "responder_vs_placebo_diff": [0.30, 0.55, 0.0],
            "responder_vs_placebo_diff_ci_low": [0.2, 0.45, 0.0],
            "responder_vs_placebo_diff_ci_high": [0.4, 0.65, 0.0],
            "orphan_ci_low": [1.0, 1.0, 1.0],  # no value column: not a metric
        }
    )


def test_summary_metrics_are_found_generically():
    ms = {m.prefix: m for m in ui_runs.summary_metrics(_summary())}
    assert set(ms) == {
        "responder",
        "ae_qt",
        "herg_margin",
        "new_thing",
        "responder_vs_placebo_diff",
    }
    assert ms["responder"].kind == "rate" and ms["responder"].label == "Responder rate"
    assert ms["ae_qt"].label == "AE: qt" and not ms["ae_qt"].higher_is_better
    assert ms["herg_margin"].kind == "estimate" and ms["herg_margin"].higher_is_better
    assert ms["new_thing"].label == "new_thing" and ms["new_thing"].value == "new_thing_p50"
    assert ms["responder_vs_placebo_diff"].kind == "diff"
    assert ms["responder_vs_placebo_diff"].label == "Responder rate − placebo"


def test_scorecard_text_and_units():
    card = ui_runs.scorecard(_summary())
    assert card.loc[0, "Responder rate, % (95 % CI)"] == "35.0 % (26.0–45.0)"
    assert card.loc[1, "hERG margin (IC50 / Cmax,u) (95 % CI)"] == "35 (20–60)"
    assert card.loc[2, "hERG margin (IC50 / Cmax,u) (95 % CI)"] == "–"
    assert card.loc[1, "Responder rate − placebo, % points (95 % CI)"] == "55.0 (45.0–65.0)"


def test_ranking_direction_and_placebo():
    s = _summary()
    r = ui_runs.rank_arms(s, "responder")
    assert list(r["arm"]) == ["a:high", "a:low"]
    r = ui_runs.rank_arms(s, "ae_qt")  # lower is better for an adverse event
    assert list(r["arm"]) == ["a:low", "a:high"]
    r = ui_runs.rank_arms(s, "responder", include_placebo=True)
    assert list(r["rank"]) == [1, 2, 3]
    with pytest.raises(SpecError):
        ui_runs.rank_arms(s, "nope")


def test_units_from_names():
    assert ui_runs.unit_of("cmax_mg_per_L") == "mg/L"
    assert ui_runs.unit_of("auc_last_mg_h_per_L") == "mg·h/L"
    assert ui_runs.unit_of("egfr_mL_min_1_73m2") == "mL/min/1.73 m²"
    assert ui_runs.unit_of("responder") == ""


def test_exposure_histograms_sum_to_one(runs_root):
    run = run_access.load_run(run_access.run_list(runs_root)["run_id"].iloc[0], runs_root)
    h = ui_runs.exposure_histograms(run)
    assert "placebo" not in set(h["arm"])
    sums = h.groupby(["metric", "arm"])["fraction"].sum()
    pts = pd.read_parquet(run.patients_path)
    pts = pts[pts["compound_id"] != "placebo"]
    for (metric, arm), total in sums.items():
        x = pts.loc[pts["arm"] == arm, metric].to_numpy(dtype=float)
        # every patient with a positive value is in exactly one bin
        assert total == pytest.approx(np.mean(np.isfinite(x) & (x > 0)), abs=1e-12)


def test_patient_time_course_is_the_run_s_twin(runs_root):
    from insilico.trial.block import simulate_arm_block

    run = run_access.load_run(run_access.run_list(runs_root)["run_id"].iloc[0], runs_root)
    ctx = resimulate.trial_context(run.manifest)
    arm = next(a for a in ctx.arms if a.name == "propranolol:high")
    _, conc_all, bio_all = simulate_arm_block(ctx, arm, 0, ctx.n_patients)[:3]
    for pid in (0, 37, 99):
        course = resimulate.patient_time_course(ctx, "propranolol:high", pid)
        np.testing.assert_array_equal(course["conc_mg_per_L"].to_numpy(), conc_all[pid])
        np.testing.assert_array_equal(course["biomarker_change_pct"].to_numpy(), bio_all[pid])
    row = run_access.patient_rows(run, 37).set_index("arm").loc["propranolol:high"]
    assert row["cmax_mg_per_L"] >= course["conc_mg_per_L"].max() * (1 - 1e-9)
    with pytest.raises(SpecError):
        resimulate.patient_time_course(ctx, "propranolol:high", ctx.n_patients)


def test_report_is_self_contained_html(runs_root):
    from insilico.ui.report import report_html

    run = run_access.load_run(run_access.run_list(runs_root)["run_id"].iloc[0], runs_root)
    html = report_html(run, ui_runs.reference_lines(run))
    assert html.startswith("<!doctype html>") and "<script" not in html and "src=" not in html
    assert html.count("<svg") == 2 and "Responder rate" in html and "hERG IC50" in html


def test_reference_lines_use_the_measured_herg_ic50(runs_root):
    from insilico.chem.descriptors import molecular_weight

    run = run_access.load_run(run_access.run_list(runs_root)["run_id"].iloc[0], runs_root)
    lines = ui_runs.reference_lines(run)
    herg = lines[(lines["arm"] == "propranolol:low") & (lines["line"] == "hERG IC50 (total)")]
    mw = molecular_weight(["CC(C)NCC(O)COc1cccc2ccccc12"])[0]
    # 3 uM x MW g/mol = mg/L x 1e-3; total = unbound / fu (fu 0.13)
    expected = 3.0 * mw * 1e-3 / 0.13
    np.testing.assert_allclose(herg["conc_mg_per_L"].to_numpy(), [expected], rtol=1e-9)


# ------------------------------------------------------------------ design
def test_every_shipped_workflow_round_trips_through_the_app_format():
    for path in sorted(WORKFLOWS_DIR.glob("*.yaml")):
        d = ui_design.design_from_yaml(path.read_text(encoding="utf-8"))
        again = ui_design.design_from_yaml(ui_design.design_to_yaml(d))
        assert again == d, path.name
        widgets = {k: v for k, v in d.items() if k in ui_design.widget_keys()}
        for section, sub in ui_design.NESTED_WIDGET_KEYS.items():
            part = {k: v for k, v in (d.get(section) or {}).items() if k in sub}
            if part:
                widgets[section] = part
        merged = ui_design.with_advanced(widgets, ui_design.advanced_yaml(d))
        assert merged == d, path.name
        a = ui_design.validate_design(d)
        from insilico.trial.spec import load_trial_spec

        assert a.sha256() == load_trial_spec(path).sha256(), path.name


def test_endpoint_editor_rows_round_trip_every_shipped_workflow():
    """Editor rows -> endpoints -> spec gives the file's endpoints (blank cells = defaults)."""
    import pandas as pd

    from insilico.trial.spec import load_trial_spec

    seen = 0
    for path in sorted(WORKFLOWS_DIR.glob("*.yaml")):
        d = ui_design.design_from_yaml(path.read_text(encoding="utf-8"))
        if not d.get("endpoints"):
            continue
        seen += 1
        # through a DataFrame, as the data editor hands them back (None -> NaN in numbers)
        frame = pd.DataFrame(ui_design.endpoint_rows(d), columns=list(ui_design.ENDPOINT_COLUMNS))
        rows = frame.astype({"time_h": float, "threshold": float}).to_dict("records")
        again = dict(d, endpoints=ui_design.endpoints_from_rows(rows))
        assert ui_design.validate_design(again).endpoints == load_trial_spec(path).endpoints
        assert "responder" in ui_design.primary_options(d)
    assert seen >= 2
    # a blank row is dropped; a row missing what its kind needs names the field
    assert ui_design.endpoints_from_rows([{c: None for c in ui_design.ENDPOINT_COLUMNS}]) == []
    d = ui_design.design_from_yaml(
        (WORKFLOWS_DIR / "antihypertensive_program.yaml").read_text(encoding="utf-8")
    )
    bad = ui_design.endpoints_from_rows([{"name": "r2", "kind": "responder", "time_h": 672.0}])
    with pytest.raises(SpecError) as err:
        ui_design.validate_design(dict(d, endpoints=d["endpoints"] + bad))
    assert "endpoints[3]" in err.value.field and "threshold" in str(err.value)
    # target attainment is a yes/no endpoint: it can be primary; a change cannot
    pta = {"name": "pta", "kind": "target_attainment", "metric": "trough"}
    opts = ui_design.primary_options({"endpoints": [{"name": "chg", "kind": "change"}, pta]})
    assert opts == ["pta"]
    assert ui_design.primary_options({"responder": {"time_h": 1}}) == ["responder"]


def test_advanced_yaml_refuses_widget_keys_and_bad_yaml():
    d = ui_design.default_design()
    with pytest.raises(SpecError, match="advanced"):
        ui_design.with_advanced(d, "name: other\n")
    with pytest.raises(SpecError, match=r"line \d.*valid YAML \(expected"):
        ui_design.with_advanced(d, "a: [1, 2\n")
    with pytest.raises(SpecError):
        ui_design.design_from_yaml("!!python/object/apply:os.system ['true']\n")


def test_the_model_is_a_widget_key_and_round_trips_through_the_yaml():
    """``model:`` is set by the PK model control: not in the advanced YAML, refused there,
    kept by the merge and written after the cohort (a path or an inline mapping)."""
    d = ui_design.default_design()
    assert "model" in ui_design.widget_keys()
    for model in ("../models/oral_1cpt_lag_allometric.yaml", {"kind": "model", "name": "m"}):
        with_model = dict(d, model=model)
        assert "model:" not in ui_design.advanced_yaml(with_model)
        widgets = {k: v for k, v in with_model.items() if k in ui_design.widget_keys()}
        merged = ui_design.with_advanced(widgets, ui_design.advanced_yaml(with_model))
        assert merged["model"] == model
        text = ui_design.design_to_yaml(with_model)
        assert ui_design.design_from_yaml(text) == with_model
        assert text.index("\nmodel:") > text.index("\ncohort:")
    with pytest.raises(SpecError) as err:
        ui_design.with_advanced(d, "model: ../models/x.yaml\n")
    assert "model" in str(err.value.value)


def test_the_pd_kind_follows_the_yaml_and_the_widget():
    """The PD kind stays in the YAML (a protocol written there still works); the selector's
    change rewrites the parameters for the new kind."""
    d = ui_design.default_design()
    assert "kind: emax" in ui_design.advanced_yaml(d)
    changed, filled = ui_design.with_pd(d, kind="irm3")
    pd = changed["biomarker"]["pd"]
    assert list(pd["params"]) == ["kin_per_h", "kout_per_h", "smax"]  # registry order
    assert filled == ["kout_per_h", "smax"] and pd["c50_from"] == "potency"
    ui_design.validate_design(changed)
    assert ui_design.with_pd({"name": "no biomarker"}, kind="irm1") == (
        {"name": "no biomarker"},
        [],
    )


def test_regimen_check_as_you_type():
    assert ui_design.check_regimen("100 mg PO q12h x56") == ""
    msg = ui_design.check_regimen("100 mg PX q12h x56")
    assert "PX" in msg and "route" in msg
    assert ui_design.describe_regimen("100 mg PO q12h x56").startswith("56 doses, 5600 mg in total")


def test_validation_errors_name_the_field():
    d = ui_design.default_design()
    d["arms"][0]["regimen"] = "lots PO"
    with pytest.raises(SpecError) as err:
        ui_design.validate_design(d)
    assert err.value.field.startswith("arms[0]")


# ------------------------------------------------------------------ compounds
def test_upload_limits_and_data_only():
    with pytest.raises(SpecError, match="MB"):
        ui_compounds.read_upload(b"x" * (ui_compounds.MAX_UPLOAD_BYTES + 1), "big.csv")
    with pytest.raises(SpecError, match="csv"):
        ui_compounds.read_upload(b"\x80\x04K\x01.", "model.pkl")
    with pytest.raises(SpecError, match="UTF-8"):
        ui_compounds.read_upload(b"\x80\x04\x95\xff", "x.csv")


def test_intervals_of_fractions_stay_within_one():
    """fu and F of small polar molecules are predicted near 1: their 90 % upper limits were
    shown above 1 (e.g. fu 0.947 (0.638-1.41))."""
    raw = ui_compounds.parse_smiles_text("CCO ethanol\nOCC(O)CO glycerol")
    table = ui_compounds.assemble(raw).table
    for column in ("fu (90 % interval)", "F oral (90 % interval)"):
        for text in table[column]:
            hi = float(text.split("–")[1].rstrip(")"))
            assert hi <= 1.0, (column, text)
    assert table["fu (90 % interval)"].str.endswith("–1)").any()


def test_an_empty_upload_is_named_by_its_file_name():
    from insilico.errors import DatasetError

    for data, what in ((b"", "an empty file"), (b"id,smiles\n", "only a header")):
        with pytest.raises(DatasetError) as err:
            ui_compounds.read_upload(data, "my_compounds.csv")
        assert str(err.value).startswith("my_compounds.csv: ") and what in str(err.value)
        assert "insilico-upload" not in str(err.value)


def test_too_many_compounds_are_refused_before_any_is_read(monkeypatch):
    """A 5 MB CSV of ~400,000 rows was standardized whole (minutes of CPU) before the limit
    of 500 compounds was checked; now the records are counted first."""
    import insilico.chem.io as chem_io

    def never(path):
        raise AssertionError("read_compounds called for an upload over the limit")

    monkeypatch.setattr(chem_io, "read_compounds", never)
    big = ("id,smiles\n" + "".join(f"c{i},CCO\n" for i in range(400_000))).encode()
    assert len(big) < ui_compounds.MAX_UPLOAD_BYTES
    with pytest.raises(SpecError, match="400000 compounds"):
        ui_compounds.read_upload(big, "big.csv")
    sdf = "".join(
        f"m{i}\n  RDKit\n\n  0  0  0  0  0  0  0  0  0  0999 V2000\nM  END\n$$$$\n"
        for i in range(501)
    )
    with pytest.raises(SpecError, match="501 compounds"):
        ui_compounds.read_upload(sdf.encode(), "big.sdf")
    # at the limit: read (quoted newlines and blank lines do not count as records)
    monkeypatch.undo()
    ok = 'id,smiles,name\na,CCO,"two\nlines"\n\nb,CCN,x\n'
    assert ui_compounds.read_upload(ok.encode(), "ok.csv")["id"].tolist() == ["a", "b"]


def test_assemble_keeps_good_rows_and_edits_values():
    raw = ui_compounds.parse_smiles_text(
        "CC(C)NCC(O)COc1ccc(CC(N)=O)cc1 atenolol Atenolol\nC1CC( broken\nCCO ethanol"
    )
    cs = ui_compounds.assemble(raw)
    t = cs.table.set_index("id")
    assert bool(t.at["atenolol", "valid"]) and not bool(t.at["broken", "valid"])
    assert "SMILES" in t.at["broken", "problem"] or "parse" in t.at["broken", "problem"]
    assert t.at["atenolol", "CL (L/h) source"] == "literature"  # a known drug
    assert [r["id"] for r in cs.records] == ["atenolol", "ethanol"]
    edited = ui_compounds.apply_edits(
        raw, {0: {"Potency (nM)": 700.0, "fu (fraction unbound)": 0.94}}
    )
    cs2 = ui_compounds.assemble(edited)
    rec = cs2.records[0]
    assert rec["potency_nM"] == 700.0 and rec["fu"] == 0.94
    assert cs2.table.set_index("id").at["atenolol", "fu source"] == "measured"
    assert raw.get("potency_nM") is None  # the input is not changed


def test_sdf_upload_reports_a_broken_record():
    good = (REPO / "tests" / "app" / "data").exists()
    from rdkit import Chem

    block = Chem.MolToMolBlock(Chem.MolFromSmiles("CCO"))
    body = block.split(chr(10), 1)[1]
    sdf = f"ethanol\n{body}>  <id>\nEtOH\n\n$$$$\nbroken\n  nonsense\n\nM  END\n$$$$\n"
    raw = ui_compounds.read_upload(sdf.encode(), "two.sdf")
    cs = ui_compounds.assemble(raw)
    assert len(cs.table) == 2 and cs.n_valid == 1, cs.table[["id", "problem"]]
    assert cs.table.loc[~cs.table["valid"], "problem"].iloc[0] != ""
    del good


# ------------------------------------------------------------------ background runs
def _small(n: int = 100) -> dict:
    from insilico.trial.examples import ATENOLOL, small_trial
    from insilico.trial.spec import trial_spec_from_dict

    return trial_spec_from_dict(small_trial(n_patients=n, compounds=[ATENOLOL])).model_dump(
        mode="json"
    )


def test_cancel_a_run_leaves_nothing(tmp_path):
    job = jobs.start_run(_small(6000), tmp_path, executor="serial", chunk_size=1024)
    while job.active and job.n_done == 0:
        job.wait(0.05)
    job.cancel()
    job.wait(60)
    assert job.status == "cancelled"
    assert not any(tmp_path.iterdir())  # no partial directory left


@pytest.mark.slow  # a fresh process loads (or compiles) the numba kernels; e2e covers it too
def test_isolated_run_in_a_child_process(tmp_path):
    job = jobs.start_run(_small(), tmp_path, executor="serial", isolated=True)
    assert job.wait(120), "the run did not finish"
    assert job.status == "done", job.error
    assert (tmp_path / job.run_id / "summary.parquet").is_file()
    assert job.n_done == job.n_total > 0


@pytest.mark.slow  # waits for the connection timeout (10 s) in a child process
def test_a_bad_scheduler_is_a_readable_failure(tmp_path):
    job = jobs.start_run(_small(), tmp_path, executor="dask", scheduler="tcp://127.0.0.1:9")
    assert job.wait(120)
    assert job.status == "failed" and "scheduler" in job.error
    assert os.listdir(tmp_path) == []


def test_best_doses_text():
    s = pd.DataFrame(
        {
            "compound_id": ["a", "a", "placebo"],
            "best_dose_mg": [100.0, 100.0, np.nan],
            "best_dose_set_mg": ["100,300", "100,300", ""],
        }
    )
    also = (
        "100 mg (95 % confidence set of the best dose also holds 300 mg; "
        "on P(response without any adverse event); Bonferroni-adjusted comparisons with the best)"
    )
    assert ui_runs.best_doses(s) == {"a": also}
    s["best_dose_set_mg"] = ["100", "100", ""]
    only = (
        "100 mg (the only dose in the 95 % confidence set of the best; "
        "on P(response without any adverse event); Bonferroni-adjusted comparisons with the best)"
    )
    assert ui_runs.best_doses(s) == {"a": only}
    assert ui_runs.best_doses(s.drop(columns=["best_dose_mg"])) == {}
