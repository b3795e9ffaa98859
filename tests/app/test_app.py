"""The app headless (``streamlit.testing.v1.AppTest``): every page renders, uploads keep the good
rows, a trial built in the widgets runs and matches ``insilico run`` on the exported YAML, and a
run id that tries to leave the runs folder is refused."""

from __future__ import annotations

import math
import time

import pandas as pd
import pytest

pytest.importorskip("streamlit")
from pathlib import Path  # noqa: E402

from streamlit.testing.v1 import AppTest  # noqa: E402

APP = Path(__file__).resolve().parents[2] / "app" / "streamlit_app.py"

PAGES = (
    "screens/compounds.py",
    "screens/cohort.py",
    "screens/design.py",
    "screens/run.py",
    "screens/results.py",
)
TIMEOUT = 120


def _app(root, monkeypatch) -> AppTest:
    monkeypatch.setenv("INSILICO_RUNS", str(root))
    return AppTest.from_file(str(APP), default_timeout=TIMEOUT)


def _frame(at: AppTest, column: str) -> pd.DataFrame:
    """The first dataframe shown with ``column`` (data frames carry no key in AppTest)."""
    for df in at.dataframe:
        v = df.value
        if column in v.columns:
            return v
    raise AssertionError(f"no dataframe with a column {column!r}")


def _texts(at: AppTest) -> str:
    parts = [
        e.value for e in (*at.error, *at.warning, *at.info, *at.success, *at.markdown, *at.caption)
    ]
    return "\n".join(str(p) for p in parts)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_without_runs(page, tmp_path, monkeypatch):
    at = _app(tmp_path, monkeypatch).run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    if page.endswith("results.py"):
        assert "No runs" in at.info[0].value


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_with_runs(page, runs_root, monkeypatch):
    at = _app(runs_root, monkeypatch).run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]


def test_results_scorecard_ranking_and_compare(runs_root, monkeypatch):
    at = _app(runs_root, monkeypatch).run()
    at.switch_page("screens/results.py").run()
    assert not at.exception
    at.toggle(key="card_layout").set_value(False).run()  # one row per arm
    card = _frame(at, "Responder rate, % (95 % CI)")
    assert set(card["Arm"]) == {
        "atenolol:low",
        "atenolol:high",
        "propranolol:low",
        "propranolol:high",
        "placebo",
    }
    assert "Responder rate, % (95 % CI)" in card.columns
    assert "AE: bradycardia, % (95 % CI)" in card.columns
    at.selectbox(key="rank_metric").select("Responder rate").run()
    ranking = _frame(at, "Responder rate (%)")
    assert "placebo" not in set(ranking["Arm"])
    rates = ranking["Responder rate (%)"].to_numpy()
    assert (rates[:-1] >= rates[1:]).all()  # best first
    # the other run, compared side by side
    at.selectbox(key="compare_run").select_index(0).run()
    assert not at.exception
    diff = _frame(at, "difference")
    assert {"arm", "metric", "run_a", "run_b", "difference"} <= set(diff.columns)
    # the drill-down shows the patient's rows in every arm
    at.number_input(key="patient_id").set_value(7).run()
    assert not at.exception
    rows = _frame(at, "atenolol:low")
    assert len(rows.columns) == 5  # one column per arm (paired design)
    assert "cmax_mg_per_L (mg/L)" in rows.index
    cov = _frame(at, "age_years (years)")
    assert cov["patient_id"].iloc[0] == "7"
    assert len(at.get("download_button")) == 6
    at.toggle(key="patient_course").set_value(True).run()
    assert not at.exception
    assert any("Time course of patient 7" in md.value for md in at.markdown)


def test_run_id_from_the_url_cannot_leave_the_runs_folder(runs_root, monkeypatch):
    at = _app(runs_root, monkeypatch)
    at.query_params["run"] = "../../etc"
    at.run()
    at.switch_page("screens/results.py").run()
    assert not at.exception
    assert any("Refused" in e.value and "../../etc" in e.value for e in at.error)
    # a valid one is still shown (the newest)
    assert at.selectbox(key="results_run").value in set(
        p.name for p in runs_root.iterdir() if not p.name.startswith(".")
    )


BAD_CSV = (
    "id,name,smiles,cl_mL_min_kg,vdss_L_per_kg,fu,f_bio,ka_per_h,potency_nM\n"
    "atenolol,Atenolol,CC(C)NCC(O)COc1ccc(CC(N)=O)cc1,2.5,0.95,0.94,0.58,0.8,700\n"
    "broken,Broken,C1CC(,1,1,0.5,0.5,1,10\n"
    "propranolol,Propranolol,CC(C)NCC(O)COc1cccc2ccccc12,12,3.1,0.13,0.26,1.0,8\n"
)


def test_upload_with_one_bad_row_shows_the_reason_and_keeps_the_rest(tmp_path, monkeypatch):
    at = _app(tmp_path, monkeypatch).run()
    at.switch_page("screens/compounds.py").run()
    at.file_uploader(key="compound_file").upload("mine.csv", BAD_CSV.encode(), "text/csv")
    at.run()
    assert not at.exception
    bad = _frame(at, "Reason")
    assert list(bad["Id"]) == ["broken"]
    assert "SMILES" in bad["Reason"].iloc[0] or "parse" in bad["Reason"].iloc[0]
    good = _frame(at, "structure")
    assert list(good["id"]) == ["atenolol", "propranolol"]
    assert (good["CL (L/h) source"] == "measured").all()
    assert good["structure"].str.startswith("data:image/svg+xml;base64,").all()
    assert "**2 usable compound(s)**, 1 with a problem" in _texts(at)


def test_upload_too_large_or_binary_is_refused(tmp_path, monkeypatch):
    import pickle

    at = _app(tmp_path, monkeypatch).run()
    at.switch_page("screens/compounds.py").run()
    payload = pickle.dumps({"x": 1}) + b"\xff\xfe"
    at.file_uploader(key="compound_file").upload("evil.csv", payload, "text/csv")
    at.run()
    assert not at.exception
    assert any("UTF-8" in e.value or "smiles" in e.value for e in at.error)


def _wait_for_job(at: AppTest, timeout_s: float = 120.0) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout_s:
        job = at.session_state["job"]
        if not job.active:
            at.run()
            return
        time.sleep(0.5)
    raise AssertionError("the run did not finish")


def test_trial_built_in_widgets_runs_and_matches_the_cli(tmp_path, monkeypatch):
    from insilico.cli import main as cli_main
    from insilico.results.rundir import list_runs, read_run
    from insilico.ui import design as ui_design
    from insilico.ui.cohorts import COHORTS_DIR

    root = tmp_path / "runs"
    at = _app(root, monkeypatch).run()
    # compounds: upload, use in the design (keeps the quickstart arms of these compounds)
    at.switch_page("screens/compounds.py").run()
    at.file_uploader(key="compound_file").upload("mine.csv", BAD_CSV.encode(), "text/csv")
    at.run()
    at.button[-1].click().run()  # "Use these compounds in the trial design"
    assert not at.exception
    # cohort: preset, n, seed
    at.switch_page("screens/cohort.py").run()
    at.selectbox(key="cohort_preset").select("elderly").run()
    at.number_input(key="cohort_n").set_value(120).run()
    at.number_input(key="cohort_seed").set_value(11).run()
    at.button[0].click().run()  # "Use this cohort and n in the trial design"
    assert not at.exception
    # design: name, duration, placebo, one more arm through the form
    at.switch_page("screens/design.py").run()
    v = at.session_state["design_version"]
    at.text_input(key=f"name_{v}").input("app_trial").run()
    at.number_input(key=f"duration_{v}").set_value(72.0).run()
    at.checkbox(key=f"placebo_{v}").check().run()
    at.text_input(key=f"add_regimen_{v}").input("10 mg PO bid x3").run()
    assert not at.exception
    at.text_input(key=f"add_regimen_{v}").input("100 mg PX q12h x3").run()
    assert any("cannot parse" in e.value for e in at.error)  # validated as you type
    at.text_input(key=f"add_regimen_{v}").input("20 mg PO q12h x6").run()
    at.selectbox(key=f"add_compound_{v}").select("propranolol").run()
    at.button(key=f"add_arm_{v}").click().run()
    assert not at.exception
    # the rest of the protocol as YAML: the responder is assessed at the end of the 72 h
    v = at.session_state["design_version"]
    adv = at.text_area(key=f"advanced_{v}")
    assert "time_h: 168" in adv.value
    adv.input(adv.value.replace("time_h: 168", "time_h: 72")).run()
    assert not at.exception
    design = at.session_state["design"]
    assert design["responder"]["time_h"] == 72
    assert design["arms"][-1] == {"compound": "propranolol", "regimen": "20 mg PO q12h x6"}
    assert design["cohort"] == "../cohorts/elderly.yaml"
    assert design["n_patients"] == 120 and design["seed"] == 11 and design["placebo"] is True
    assert any("Valid protocol" in s.value for s in at.success)
    exported = ui_design.design_to_yaml(design)

    # run in this process, wait, open the results
    at.switch_page("screens/run.py").run()
    at.radio(key="run_where").set_value("In this process (serial)").run()
    at.button(key="start_run").click().run()
    _wait_for_job(at)
    assert at.session_state["job"].status == "done", at.session_state["job"].error
    at.switch_page("screens/results.py").run()
    assert not at.exception
    app_run = read_run(list_runs(root)["run_id"].iloc[0], root)

    # the CLI on the exported YAML (a workflows/ file next to a cohorts/ folder)
    wf = tmp_path / "proj" / "workflows"
    wf.mkdir(parents=True)
    (tmp_path / "proj" / "cohorts").symlink_to(COHORTS_DIR)
    (wf / "app_trial.yaml").write_text(exported, encoding="utf-8")
    cli_root = tmp_path / "cli_runs"
    code = cli_main(
        ["run", str(wf / "app_trial.yaml"), "--out", str(cli_root), "--serial", "--no-progress"]
    )
    assert code == 0
    cli_run = read_run(list_runs(cli_root)["run_id"].iloc[0], cli_root)
    pd.testing.assert_frame_equal(app_run.summary, cli_run.summary)
    assert len(app_run.summary) == 6  # 2 + 2 quickstart arms, the added arm, placebo


def test_endpoints_and_primary_are_widgets_and_export_like_the_file(tmp_path, monkeypatch):
    """The antihypertensive protocol's endpoints show in the endpoint editor (not the YAML);
    choosing another primary endpoint changes the exported protocol and nothing else."""
    from insilico.ui import design as ui_design

    path = ui_design.WORKFLOWS_DIR / "antihypertensive_program.yaml"
    original = ui_design.design_from_yaml(path.read_text(encoding="utf-8"))
    at = _app(tmp_path / "runs", monkeypatch)
    at.session_state["design"] = original
    at.session_state["design_version"] = 0
    at.switch_page("screens/design.py").run()
    assert not at.exception
    v = at.session_state["design_version"]
    assert "endpoints:" not in at.text_area(key=f"advanced_{v}").value
    primary = at.selectbox(key=f"primary_{v}")
    assert primary.value == "responder"
    assert set(primary.options) >= {"responder", "sustained_responder"}
    assert "sbp_change_mmHg" not in primary.options  # a change is not a yes/no endpoint
    assert any("Valid protocol" in s.value for s in at.success)
    primary.select("sustained_responder").run()
    assert not at.exception
    edited = at.session_state["design"]
    assert edited["primary"] == "sustained_responder"
    base = ui_design.WORKFLOWS_DIR
    a = ui_design.validate_design(edited, base)
    b = ui_design.validate_design(dict(original, primary="sustained_responder"), base)
    assert a.sha256() == b.sha256()


# ------------------------------------------------------------------ PK model and PD kind
def _design_page(tmp_path, monkeypatch, design: dict | None = None) -> AppTest:
    at = _app(tmp_path / "runs", monkeypatch)
    if design is not None:
        at.session_state["design"] = design
        at.session_state["design_version"] = 0
    at.run()
    at.switch_page("screens/design.py").run()
    assert not at.exception, at.exception
    return at


def test_the_run_page_shows_the_size_and_a_large_run_needs_a_confirmation(
    tmp_path, monkeypatch
):
    """10,000,000 patients used to start at a click, with no idea of how long they take."""
    from insilico.ui import design as ui_design

    design = ui_design.default_design()
    at = _app(tmp_path / "runs", monkeypatch)
    at.session_state["design"] = design
    at.session_state["design_version"] = 0
    at.run()
    at.switch_page("screens/run.py").run()
    assert not at.exception, at.exception
    assert "patient × arm × output-time values; about" in _texts(at)
    assert not at.button(key="start_run").disabled and not at.warning

    at.session_state["design"] = {**design, "n_patients": 10_000_000}
    at.switch_page("screens/run.py").run()
    assert any("This run is large" in w.value for w in at.warning)
    assert at.button(key="start_run").disabled
    at.checkbox(key="run_confirm_large").check().run()
    assert not at.button(key="start_run").disabled


def test_a_page_reload_keeps_the_design_and_reattaches_to_the_running_job(
    tmp_path, monkeypatch
):
    """A reload starts a new session: the design and a running job used to be lost (the job
    kept running, unreachable)."""
    import threading

    from insilico.ui import jobs

    gate = threading.Event()
    real = jobs._run_thread

    def held(job, spec_data, kwargs):  # the run waits until the new session has looked
        gate.wait(60)
        real(job, spec_data, kwargs)

    monkeypatch.setattr(jobs, "_run_thread", held)
    first = _app(tmp_path / "runs", monkeypatch).run()
    first.switch_page("screens/design.py").run()
    v = first.session_state["design_version"]
    first.number_input(key=f"n_{v}").set_value(40).run()
    assert first.session_state["design"]["n_patients"] == 40
    first.switch_page("screens/run.py").run()
    first.radio(key="run_where").set_value("In this process (serial)").run()
    first.button(key="start_run").click().run()
    started = first.session_state["job"]

    reloaded = _app(tmp_path / "runs", monkeypatch).run()
    reloaded.switch_page("screens/run.py").run()
    assert not reloaded.exception, reloaded.exception
    assert reloaded.session_state["job"] is started
    assert any("Reattached" in i.value for i in reloaded.info)
    assert reloaded.session_state["design"]["n_patients"] == 40
    gate.set()
    _wait_for_job(reloaded)
    assert reloaded.session_state["job"].status == "done", reloaded.session_state["job"].error


def _no_protocol_iiv(at: AppTest) -> None:
    """Clear the protocol's iiv.cv in the YAML (a model with its own IIV must not repeat it)."""
    import yaml

    v = at.session_state["design_version"]
    adv = at.text_area(key=f"advanced_{v}")
    data = yaml.safe_load(adv.value)
    data["iiv"] = {"cv": {}}
    adv.input(yaml.safe_dump(data, sort_keys=False)).run()
    assert not at.exception


def test_pk_model_shipped_and_custom_structures(tmp_path, monkeypatch):
    """A shipped model file and a custom 2-compartment structure end in designs that validate
    as `insilico run` validates and carry the structure; an invalid value shows the error."""
    from insilico.model import load_model
    from insilico.trial.spec import trial_spec_from_dict
    from insilico.ui import design as ui_design
    from insilico.ui import models as ui_models

    at = _design_page(tmp_path, monkeypatch)
    _no_protocol_iiv(at)
    v = at.session_state["design_version"]
    pick = at.selectbox(key=f"model_{v}")
    assert pick.value == ui_models.BUILTIN
    assert "model" not in at.session_state["design"]
    labels = pick.options
    assert labels[0] == "Built-in (one compartment)" and labels[-1] == "Custom structure"
    assert (
        "oral_1cpt_lag_allometric — 1 compartment, first_order absorption, linear elimination"
        in labels
    )
    assert len(labels) == 2 + len(ui_models.shipped_models())

    # custom structure: two compartments, allometry, IIV on Q
    pick.select(ui_models.CUSTOM).run()
    at.selectbox(key=f"model_cmt_{v}").select(2).run()
    at.number_input(key=f"model_p_q2_L_per_h_{v}").set_value(15.0).run()
    at.number_input(key=f"model_cv_q2_L_per_h_{v}").set_value(40.0).run()
    assert not at.exception
    assert at.checkbox(key=f"model_allometric_{v}").value is True
    design = at.session_state["design"]
    model = design["model"]
    assert model["pk"] == {"compartments": 2, "absorption": "first_order", "elimination": "linear"}
    assert model["parameters"]["q2_L_per_h"] == 15.0 and "v2_L" in model["parameters"]
    assert model["covariates"]["v2_L"] == {"weight_kg": {"power": 1.0, "reference": 70.0}}
    assert model["iiv"] == {"q2_L_per_h": pytest.approx(math.log(1 + 0.4**2))}
    spec = ui_design.validate_design(design)
    assert spec.model["pk"]["compartments"] == 2
    assert any("Valid protocol" in s.value for s in at.success)
    assert "compartments: 2" in ui_design.design_to_yaml(design)

    # a non-positive volume: the model's error (key, value, allowed), nothing valid to run
    at.number_input(key=f"model_p_v2_L_{v}").set_value(0.0).run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any("model.parameters.v2_L" in e and "> 0" in e for e in errors), errors
    assert not any("Valid protocol" in s.value for s in at.success)
    assert at.get("download_button")[0].proto.disabled
    at.number_input(key=f"model_p_v2_L_{v}").set_value(90.0).run()
    assert any("Valid protocol" in s.value for s in at.success)

    # a shipped model file: a path the spec resolves from workflows/
    ref = "../models/oral_1cpt_lag_allometric.yaml"
    at.selectbox(key=f"model_{v}").select(ref).run()
    assert not at.exception
    design = at.session_state["design"]
    assert design["model"] == ref
    spec = trial_spec_from_dict(design, base_dir=ui_design.WORKFLOWS_DIR)
    shipped = load_model(spec.model)
    assert shipped.name == "oral_1cpt_lag_allometric"
    assert (shipped.pk.compartments, shipped.pk.absorption) == (1, "first_order")
    assert any("1 compartment, first_order absorption" in c.value for c in at.caption)

    # back to the built-in twin: no model in the protocol
    at.selectbox(key=f"model_{v}").select(ui_models.BUILTIN).run()
    assert "model" not in at.session_state["design"]


def test_effect_compartment_before_an_indirect_response_needs_a_model(tmp_path, monkeypatch):
    from insilico.pd.registry import pd_model_names
    from insilico.ui import design as ui_design
    from insilico.ui import models as ui_models

    at = _design_page(tmp_path, monkeypatch)
    v = at.session_state["design_version"]
    kind = at.selectbox(key=f"pd_kind_{v}")
    assert kind.value == "emax"
    # labels "name — description": every model of the PD registry is offered
    assert {o.split(" — ")[0] for o in kind.options} >= set(pd_model_names())
    kind.select("irm1").run()
    assert not at.exception
    v = at.session_state["design_version"]  # the YAML is rewritten with irm1's parameters
    pd_spec = at.session_state["design"]["biomarker"]["pd"]
    assert pd_spec["kind"] == "irm1" and {"kin_per_h", "kout_per_h", "imax"} <= set(
        pd_spec["params"]
    )
    assert "kind: irm1" in at.text_area(key=f"advanced_{v}").value
    eff = at.checkbox(key=f"pd_effect_{v}")
    assert eff.disabled and "needs a PK model" in eff.help
    assert any("Valid protocol" in s.value for s in at.success)

    # with a PK model the effect compartment is allowed and the protocol validates
    at.selectbox(key=f"model_{v}").select(ui_models.CUSTOM).run()
    eff = at.checkbox(key=f"pd_effect_{v}")
    assert not eff.disabled
    eff.check().run()
    assert not at.exception
    v = at.session_state["design_version"]
    design = at.session_state["design"]
    assert design["biomarker"]["pd"]["effect_compartment"] is True
    assert "ke0_per_h" in design["biomarker"]["pd"]["params"]
    assert ui_design.validate_design(design).biomarker.pd.effect_compartment
    assert any("Valid protocol" in s.value for s in at.success), [e.value for e in at.error]

    # without the model: the error says why, and the box can still be unticked
    at.selectbox(key=f"model_{v}").select(ui_models.BUILTIN).run()
    errors = [e.value for e in at.error]
    assert any("biomarker.pd.effect_compartment" in e for e in errors), errors
    eff = at.checkbox(key=f"pd_effect_{v}")
    assert eff.value and not eff.disabled
    eff.uncheck().run()
    assert not at.exception
    assert "effect_compartment" not in at.session_state["design"]["biomarker"]["pd"]
    assert any("Valid protocol" in s.value for s in at.success)


def test_importing_a_protocol_with_a_model_restores_the_control(tmp_path, monkeypatch):
    from insilico.ui import design as ui_design
    from insilico.ui import models as ui_models

    base = ui_design.default_design()
    base["iiv"] = {"cv": {}}
    at = _design_page(tmp_path, monkeypatch)

    # a shipped model file
    ref = "../models/oral_1cpt_lag_allometric.yaml"
    text = ui_design.design_to_yaml(dict(base, name="with_file", model=ref))
    v = at.session_state["design_version"]
    at.file_uploader(key=f"import_{v}").upload("with_file.yaml", text.encode(), "text/yaml")
    at.run()
    assert not at.exception
    v = at.session_state["design_version"]
    assert at.selectbox(key=f"model_{v}").value == ref
    assert at.session_state["design"]["model"] == ref

    # an inline (custom) model: the editor shows it and the design keeps it unchanged
    inline = ui_models.custom_model(
        ui_models.CustomStructure(
            compartments=3,
            absorption="transit",
            elimination="linear",
            parameters={"cl_L_per_h": 9.0, "v2_L": 33.0, "n_transit": 4, "tlag_h": 0.25},
            cv_pct={"mtt_h": 25.0},
            allometric=True,
            rest={"name": "imported", "residual_error": {"proportional": 0.2}},
        )
    )
    text = ui_design.design_to_yaml(dict(base, name="with_inline", model=inline))
    at.file_uploader(key=f"import_{v}").upload("with_inline.yaml", text.encode(), "text/yaml")
    at.run()
    assert not at.exception
    v = at.session_state["design_version"]
    assert at.selectbox(key=f"model_{v}").value == ui_models.CUSTOM
    assert at.selectbox(key=f"model_cmt_{v}").value == 3
    assert at.selectbox(key=f"model_abs_{v}").value == "transit"
    assert at.number_input(key=f"model_p_v2_L_{v}").value == 33.0
    assert at.number_input(key=f"model_p_n_transit_{v}").value == 4
    assert at.number_input(key=f"model_cv_mtt_h_{v}").value == pytest.approx(25.0)
    assert at.checkbox(key=f"model_allometric_{v}").value is True
    assert at.session_state["design"]["model"] == inline
    assert any("Valid protocol" in s.value for s in at.success), [e.value for e in at.error]
