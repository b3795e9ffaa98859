"""Fault injection, one table: every case makes one change to a valid input (workflow YAML,
compound CSV, model YAML, NONMEM dataset) or to valid command-line arguments, and the
command must refuse it with exit code 2 and one ``insilico: error:`` line that names the
field, column, row or value, without a traceback and without writing anything."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from insilico.cli import main
from insilico.results.rundir import list_runs
from insilico.trial.examples import ATENOLOL, PROPRANOLOL, small_trial

ROOT = Path(__file__).resolve().parents[2]
COHORT = ROOT / "cohorts" / "healthy_adults_us.yaml"
MODEL = ROOT / "models" / "oral_1cpt_lag_allometric.yaml"
ATENOLOL_SMILES = ATENOLOL["smiles"]

Build = Callable[[Path], list[str]]


# --------------------------------------------------------------------------- inputs
def _trial() -> dict[str, Any]:
    """A valid, small, fast protocol: one compound, one regimen, 20 patients, 24 h."""
    data = small_trial(
        n_patients=20,
        compounds=[ATENOLOL],
        duration_h=24.0,
        regimens=[{"name": "low", "text": "50 mg PO q12h x2"}],
    )
    data["cohort"] = str(COHORT)
    return data


def _set(data: dict, path: str, value: Any) -> None:
    """Set ``a.b[0].c`` in ``data``; the value ``_DELETE`` removes the key."""
    parts: list[Any] = []
    for token in path.replace("]", "").replace("[", ".").split("."):
        parts.append(int(token) if token.isdigit() else token)
    cur: Any = data
    for part in parts[:-1]:
        cur = cur[part]
    if value is _DELETE:
        del cur[parts[-1]]
    else:
        cur[parts[-1]] = value


_DELETE = object()


def _run_argv(t: Path, workflow: Path, *extra: str) -> list[str]:
    return ["run", str(workflow), "--out", str(t / "runs"), "--serial", "--no-progress", *extra]


def wf(changes: dict[str, Any] | None = None, *extra: str) -> Build:
    """``insilico run`` of the valid protocol with ``changes`` (field path -> value)."""

    def build(t: Path) -> list[str]:
        data = _trial()
        for path, value in (changes or {}).items():
            _set(data, path, value)
        p = t / "w.yaml"
        p.write_text(yaml.safe_dump(data, sort_keys=False))
        return _run_argv(t, p, *extra)

    return build


def wf_text(edit: Callable[[str], str]) -> Build:
    """``insilico run`` of the valid protocol's YAML text after ``edit``."""

    def build(t: Path) -> list[str]:
        p = t / "w.yaml"
        p.write_text(edit(yaml.safe_dump(_trial(), sort_keys=False)))
        return _run_argv(t, p)

    return build


def wf_bytes(data: bytes) -> Build:
    def build(t: Path) -> list[str]:
        p = t / "w.yaml"
        p.write_bytes(data)
        return _run_argv(t, p)

    return build


def _replace(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text, old
        return text.replace(old, new, 1)

    return edit


GOOD_CSV = (
    "id,name,smiles,cl_mL_min_kg,vdss_L_per_kg,fu,f_bio,ka_per_h,potency_nM\n"
    f"atenolol,Atenolol,{ATENOLOL_SMILES},2.5,0.95,0.94,0.58,0.8,700\n"
)


def csv_run(edit: Callable[[str], str] | bytes, name: str = "c.csv") -> Build:
    """``insilico run`` of the protocol with its compounds from a CSV (the valid one edited)."""

    def build(t: Path) -> list[str]:
        p = t / name
        if isinstance(edit, bytes):
            p.write_bytes(edit)
        else:
            p.write_text(edit(GOOD_CSV))
        data = _trial()
        data["compounds"] = {"path": str(p)}
        w = t / "w.yaml"
        w.write_text(yaml.safe_dump(data, sort_keys=False))
        return _run_argv(t, w)

    return build


def cohort(*args: str, out: str = "c.parquet", prepare: Callable[[Path], None] | None = None):
    """``insilico cohort`` with valid arguments, ``args`` replacing or adding options."""

    def build(t: Path) -> list[str]:
        if prepare is not None:
            prepare(t)
        opts = {"-n": "10", "--seed": "1", "-o": str(t / out)}
        rest = list(args)
        while rest and rest[0] in opts:
            key = rest.pop(0)
            opts[key] = rest.pop(0)
        argv = ["cohort", str(COHORT)]
        for k, v in opts.items():
            argv += [k, v]
        return argv + rest

    return build


def cohort_spec(edit: Callable[[str], str]) -> Build:
    def build(t: Path) -> list[str]:
        p = t / "cohort.yaml"
        p.write_text(edit(COHORT.read_text()))
        return ["cohort", str(p), "-n", "10", "--seed", "1", "-o", str(t / "c.parquet")]

    return build


def _model() -> dict[str, Any]:
    return yaml.safe_load(MODEL.read_text())


DATA = (
    "ID,TIME,EVID,AMT,CMT,SS,II,DV,WT\n"
    "1,0,1,100,1,0,0,.,70\n"
    "1,1,0,.,2,0,0,3.1,70\n"
    "1,4,0,.,2,0,0,2.5,70\n"
    "2,0,1,100,1,0,0,.,80\n"
    "2,2,0,.,2,0,0,2.9,80\n"
)


def sim(
    model: dict[str, Any] | Callable[[dict], Any] | None = None,
    data: Callable[[str], str] | bytes | None = None,
    *extra: str,
    command: str = "simulate",
    out: str = "out.csv",
) -> Build:
    """``insilico simulate`` (or fit/twin/vpc) of the valid model and dataset, one edited."""

    def build(t: Path) -> list[str]:
        m = _model()
        if callable(model):
            model(m)
        else:
            for path, value in (model or {}).items():
                _set(m, path, value)
        mp = t / "model.yaml"
        mp.write_text(yaml.safe_dump(m, sort_keys=False))
        dp = t / "data.csv"
        if isinstance(data, bytes):
            dp.write_bytes(data)
        else:
            dp.write_text(data(DATA) if data else DATA)
        return [command, str(mp), "--data", str(dp), "--out", str(t / out), *extra]

    return build


def fit(*extra: str, data: Callable[[str], str] | None = None) -> Build:
    return sim(None, data, *extra, command="fit", out="fit")


def twin(*extra: str) -> Build:
    return sim(None, None, *extra, command="twin", out="twin")


def vpc(*extra: str) -> Build:
    return sim(None, None, *extra, command="vpc", out="vpc")


def model_text(edit: Callable[[str], str]) -> Build:
    def build(t: Path) -> list[str]:
        argv = sim()(t)
        mp = Path(argv[1])
        mp.write_text(edit(MODEL.read_text()))
        return argv

    return build


def _runs_root(t: Path) -> Path:
    run = t / "runs" / "20250101-000000-small-abcdef12"
    run.mkdir(parents=True)
    (run / "manifest.json").write_text("{}")
    return t / "runs"


def show(run: str) -> Build:
    return lambda t: ["runs", "show", run, "--root", str(_runs_root(t))]


def compounds_cmd(command: str, content: bytes | str, name: str = "c.csv") -> Build:
    def build(t: Path) -> list[str]:
        p = t / name
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)
        out = ["--out", str(t / "o.csv")] if command == "predict-pk" else ["-o", str(t / "o.pq")]
        return [command, str(p), *out]

    return build


def _del_model(path: str) -> Callable[[dict], None]:
    return lambda m: _set(m, path, _DELETE)


# --------------------------------------------------------------------------- the table
CASES: list[Any] = [
    # ---- trial workflow YAML: keys and types
    ("wf-unknown-key", wf({"n_patient": 20}), "did you mean 'n_patients'?"),
    ("wf-unknown-key-far", wf({"xyzzy": "red"}), "the keys allowed here: adverse_events, arms"),
    ("wf-typo-pd-key", wf({"biomarker.pd.c50from": "potency"}), "did you mean 'c50_from'?"),
    ("wf-typo-duration", wf({"duraton_h": 24}), "did you mean 'duration_h'?"),
    ("wf-typo-nested-output", wf({"output": {"interval": 2.0}}), "did you mean 'interval_h'?"),
    ("wf-typo-compound-field", wf({"compounds[0].potency_nm": 700}), "did you mean 'potency_nM'?"),
    ("wf-typo-iiv-parameter", wf({"iiv.cv.CL_L_per_h": 0.3}), "cl_L_per_h"),
    ("wf-n-patients-bool", wf({"n_patients": True}), "n_patients"),
    ("wf-n-patients-string", wf({"n_patients": "20"}), "n_patients"),
    ("wf-placebo-one", wf({"placebo": 1}), "placebo: got 1; allowed: true or false"),
    ("wf-placebo-yes", wf({"placebo": "yes"}), "placebo: got 'yes'; allowed: true or false"),
    ("wf-ae-serious-int", wf({"adverse_events[0].serious": 1}), "serious: got 1"),
    ("wf-compound-known-pk-text", wf({"compounds[0].use_known_pk": "no"}), "use_known_pk"),
    ("wf-n-patients-float", wf({"n_patients": 20.5}), "n_patients"),
    ("wf-n-patients-zero", wf({"n_patients": 0}), "n_patients: got 0"),
    ("wf-n-patients-negative", wf({"n_patients": -5}), "n_patients: got -5"),
    ("wf-n-patients-huge", wf({"n_patients": 10**12}), "n_patients"),
    ("wf-n-patients-null", wf({"n_patients": None}), "n_patients"),
    ("wf-seed-negative", wf({"seed": -1}), "seed: got -1"),
    ("wf-seed-float", wf({"seed": 1.5}), "seed"),
    ("wf-seed-bool", wf({"seed": False}), "seed"),
    ("wf-seed-2-64", wf({"seed": 2**64}), "seed"),
    ("wf-duration-inf", wf_text(_replace("duration_h: 24.0", "duration_h: .inf")), "duration_h"),
    ("wf-duration-nan", wf_text(_replace("duration_h: 24.0", "duration_h: .nan")), "duration_h"),
    ("wf-duration-negative", wf({"duration_h": -24.0}), "duration_h: got -24.0"),
    ("wf-duration-zero", wf({"duration_h": 0}), "duration_h: got 0"),
    ("wf-duration-text", wf({"duration_h": "one day"}), "'one day'"),
    ("wf-interval-zero", wf({"output.interval_h": 0}), "output.interval_h"),
    ("wf-interval-nan", wf_text(_replace("interval_h: 2.0", "interval_h: .nan")), "interval_h"),
    ("wf-times-decreasing", wf({"output": {"times_h": [0, 2, 1]}}), "output.times_h"),
    ("wf-times-negative", wf({"output": {"times_h": [-1, 2]}}), "output.times_h"),
    ("wf-placebo-text", wf({"placebo": "maybe"}), "placebo"),
    ("wf-name-with-space", wf({"name": "my trial"}), "name"),
    ("wf-name-empty", wf({"name": ""}), "name"),
    ("wf-kind-cohort", wf({"kind": "cohort"}), "kind"),
    ("wf-schema-version-2", wf({"schema_version": 2}), "schema_version: got 2"),
    ("wf-compounds-string", wf({"compounds": "atenolol"}), "compounds"),
    ("wf-compounds-empty", wf({"compounds": []}), "compounds"),
    ("wf-compound-no-smiles", wf({"compounds[0].smiles": _DELETE}), "smiles"),
    ("wf-compound-id-empty", wf({"compounds[0].id": ""}), "compounds[0].id"),
    (
        "wf-compound-duplicate-id",
        wf({"compounds": [ATENOLOL, {**PROPRANOLOL, "id": "atenolol"}]}),
        "each id once (repeated: ['atenolol']",
    ),
    # ---- trial workflow YAML: regimens and arms
    ("wf-regimen-zero-doses", wf({"regimens[0].text": "50 mg PO q12h x0"}), "regimens[0].text"),
    ("wf-regimen-words", wf({"regimens[0].text": "fifty mg PO"}), "fifty"),
    ("wf-regimen-unit", wf({"regimens[0].text": "50 kg PO q12h x2"}), "kg"),
    ("wf-regimen-negative-dose", wf({"regimens[0].text": "-50 mg PO q12h x2"}), "regimens[0]"),
    ("wf-regimen-route", wf({"regimens[0].text": "50 mg XX q12h x2"}), "XX"),
    ("wf-regimen-empty", wf({"regimens[0].text": ""}), "regimens[0].text"),
    ("wf-regimen-interval-zero", wf({"regimens[0].text": "50 mg PO q0h x2"}), "regimens[0]"),
    ("wf-regimen-no-name", wf({"regimens[0].name": _DELETE}), "regimens[0].name"),
    (
        "wf-regimen-duplicate-name",
        wf({"regimens": [{"name": "a", "text": f"{d} mg PO qd x1"} for d in (5, 10)]}),
        "each name once (repeated: ['a'])",
    ),
    ("wf-no-regimens", wf({"regimens": []}), "regimens"),
    (
        "wf-arm-unknown-compound",
        wf({"arms": [{"compound": "atenolo", "regimen": "low"}]}),
        "'atenolo'",
    ),
    (
        "wf-arm-unknown-regimen",
        wf({"arms": [{"compound": "atenolol", "regimen": "lwo"}]}),
        "arms[0].regimen",
    ),
    ("wf-arms-empty", wf({"arms": []}), "arms"),
    (
        "wf-arm-unknown-key",
        wf({"arms": [{"compound": "atenolol", "regimen": "low", "dose": 5}]}),
        "arms[0].dose",
    ),
    # ---- trial workflow YAML: models of the twins
    ("wf-iiv-cv-negative", wf({"iiv.cv.cl_L_per_h": -0.3}), "cv.cl_L_per_h"),
    ("wf-iiv-correlation-1", wf({"iiv.correlation": [["cl_L_per_h", "v1_L", 1.0]]}), "-1 < r < 1"),
    ("wf-pd-kind", wf({"biomarker.pd.kind": "emaxx"}), "emaxx"),
    ("wf-pd-param-unknown", wf({"biomarker.pd.params.e00": 1.0}), "params.e00"),
    ("wf-pd-param-missing", wf({"biomarker.pd.params.e0": _DELETE}), "e0"),
    ("wf-responder-zero", wf({"responder.change_pct": 0}), "responder.change_pct"),
    ("wf-responder-no-biomarker", wf({"biomarker": _DELETE}), "responder"),
    ("wf-ae-driver", wf({"adverse_events[0].driver": "cmax"}), "adverse_events[0].driver"),
    ("wf-ae-slope-negative", wf({"adverse_events[0].slope": -0.2}), "adverse_events[0].slope"),
    ("wf-design-type", wf({"design": {"type": "crossover-ish"}}), "design"),
    (
        "wf-model-missing-file",
        wf({"model": "no_such_model.yaml"}),
        "no_such_model.yaml'; allowed: an existing YAML file (kind: model)",
    ),
    (
        "wf-cohort-missing-file",
        wf({"cohort": "no_such_cohort.yaml"}),
        "no_such_cohort.yaml'; allowed: an existing YAML file (kind: cohort)",
    ),
    (
        "wf-compounds-path-missing",
        wf({"compounds": {"path": "no_such.csv"}}),
        "no_such.csv",
    ),
    # ---- trial workflow YAML: the file itself
    ("wf-duplicate-key", wf_text(lambda s: s + "seed: 3\n"), "seed"),
    (
        "wf-duplicate-nested-key",
        wf_text(_replace("  interval_h: 2.0\n", "  interval_h: 2.0\n  interval_h: 1.0\n")),
        "output.interval_h",
    ),
    ("wf-yaml-alias", wf_text(lambda s: "x: &a 1\n" + s + "y: *a\n"), "anchors and aliases"),
    ("wf-yaml-syntax", wf_text(lambda s: s + "bad: [1, 2\n"), "valid YAML"),
    ("wf-yaml-list-root", wf_bytes(b"- kind: trial\n"), "a YAML mapping"),
    ("wf-yaml-scalar-root", wf_bytes(b"just text\n"), "a YAML mapping"),
    ("wf-empty-file", wf_bytes(b""), "w.yaml: <root>: got 'an empty file'"),
    ("wf-comments-only", wf_bytes(b"# nothing here\n"), "an empty file"),
    ("wf-binary-file", wf_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 8), "UTF-8"),
    ("wf-latin1-file", wf_bytes("kind: trial\nname: caf\xe9\n".encode("latin-1")), "UTF-8"),
    ("wf-nul-bytes", wf_bytes(b"kind: trial\x00\n"), "NUL"),
    ("wf-missing-file", lambda t: _run_argv(t, t / "absent.yaml"), "absent.yaml"),
    ("wf-directory", lambda t: _run_argv(t, t), "an existing YAML file"),
    # ---- insilico run: arguments
    ("run-n-patients-zero", wf(None, "--n-patients", "0"), "--n-patients: got 0"),
    ("run-n-patients-negative", wf(None, "--n-patients", "-3"), "--n-patients: got -3"),
    ("run-n-patients-text", wf(None, "--n-patients", "many"), "'many'"),
    ("run-seed-negative", wf(None, "--seed", "-1"), "--seed: got -1"),
    ("run-chunk-size-zero", wf(None, "--chunk-size", "0"), "--chunk-size: got 0"),
    ("run-workers-zero", wf(None, "--workers", "0"), "--workers: got 0"),
    (
        "run-workers-zero-parallel",
        lambda t: [a for a in wf(None, "--workers", "0")(t) if a != "--serial"],
        "--workers: got 0",
    ),
    ("run-serial-and-workers", wf(None, "--workers", "2"), "--serial: got '--workers'"),
    (
        "run-serial-and-scheduler",
        wf(None, "--scheduler", "tcp://127.0.0.1:1"),
        "--serial: got '--scheduler'",
    ),
    ("run-dose-scan-text", wf(None, "--dose-scan", "a,b"), "--dose-scan"),
    ("run-dose-scan-zero", wf(None, "--dose-scan", "0,10"), "--dose-scan"),
    ("run-dose-scan-duplicate", wf(None, "--dose-scan", "10,10"), "distinct"),
    ("run-dose-scan-inf", wf(None, "--dose-scan", "10,inf"), "--dose-scan"),
    ("run-unknown-option", wf(None, "--patients", "5"), "unrecognized arguments: --patients 5"),
    ("no-command", lambda t: [], "the following arguments are required: command"),
    ("unknown-command", lambda t: ["simulat"], "invalid choice: 'simulat'"),
    # ---- compounds: CSV files (a run with every compound unusable is bad input)
    ("csv-no-smiles-column", csv_run(_replace("smiles", "structure")), "smiles"),
    ("csv-empty", csv_run(b""), "empty file"),
    ("csv-header-only", csv_run(lambda s: s.splitlines()[0] + "\n"), "only a header"),
    ("csv-ragged", csv_run(lambda s: s.rstrip("\n") + ",extra\n"), "row 2, fields"),
    ("csv-latin1", csv_run(GOOD_CSV.replace("Atenolol", "Aten\xf6lol").encode("latin-1")), "row 2"),
    ("csv-binary", csv_run(bytes(range(256)) * 4), "binary data"),
    ("csv-wrong-extension", csv_run(lambda s: s, name="c.txt"), "c.txt"),
    ("csv-bad-smiles-only-compound", csv_run(_replace(ATENOLOL_SMILES, "C1CC(")), "atenolol"),
    ("csv-fu-out-of-range", csv_run(_replace(",0.94,", ",1.5,")), "fu"),
    ("csv-cl-not-a-number", csv_run(_replace(",2.5,", ",fast,")), "cl_mL_min_kg"),
    ("csv-ka-negative", csv_run(_replace(",0.8,", ",-0.8,")), "ka_per_h"),
    ("csv-potency-zero", csv_run(_replace(",700\n", ",0\n")), "potency_nM"),
    (
        "csv-use-known-pk-text",
        csv_run(
            lambda s: s.replace("potency_nM\n", "potency_nM,use_known_pk\n").replace(
                ",700\n", ",700,perhaps\n"
            )
        ),
        "use_known_pk",
    ),
    ("inline-compound-fu-above-1", wf({"compounds[0].fu": 1.5}), "fu"),
    ("inline-compound-bad-smiles", wf({"compounds[0].smiles": "not a smiles"}), "atenolol"),
    ("inline-compound-fu-text", wf({"compounds[0].fu": "high"}), "compounds[0].fu"),
    ("predict-pk-no-smiles", compounds_cmd("predict-pk", "id,name\na,A\n"), "smiles"),
    (
        "predict-pk-missing-file",
        lambda t: ["predict-pk", str(t / "x.csv"), "--out", str(t / "o.csv")],
        "x.csv",
    ),
    ("featurize-empty", compounds_cmd("featurize", b""), "empty file"),
    ("featurize-wrong-extension", compounds_cmd("featurize", GOOD_CSV, "c.xlsx"), "c.xlsx"),
    # ---- insilico cohort
    ("cohort-n-zero", cohort("-n", "0"), "-n: got 0"),
    ("cohort-n-negative", cohort("-n", "-5"), "-n: got -5"),
    ("cohort-n-above-limit", cohort("-n", "10000001"), "10,000,000"),
    ("cohort-n-text", cohort("-n", "ten"), "argument -n: invalid int value: 'ten'"),
    ("cohort-seed-negative", cohort("--seed", "-1"), "--seed: got -1"),
    (
        "cohort-out-is-dir",
        cohort(out="d", prepare=lambda t: (t / "d").mkdir()),
        "existing directory",
    ),
    ("cohort-out-parent-missing", cohort(out="missing/c.parquet"), "existing directory"),
    (
        "cohort-missing-spec",
        lambda t: ["cohort", str(t / "none.yaml"), "-n", "5", "--seed", "1", "-o", str(t / "c.pq")],
        "cohort: got",
    ),
    ("cohort-spec-unknown-key", cohort_spec(lambda s: s + "\nextra_key: 1\n"), "extra_key"),
    ("cohort-spec-kind", cohort_spec(_replace("kind: cohort", "kind: trial")), "kind"),
    ("cohort-missing-o", lambda t: ["cohort", str(COHORT), "-n", "5", "--seed", "1"], "-o"),
    # ---- model YAML (insilico simulate)
    ("model-typo-parameter", sim({"parameters.cl_L_per_hr": 0.2}), "cl_L_per_hr"),
    ("model-missing-parameter", sim(_del_model("parameters.v1_L")), "v1_L"),
    ("model-iiv-on-missing-parameter", sim({"iiv.q2_L_per_h": 0.1}), "q2_L_per_h"),
    ("model-iiv-negative", sim({"iiv.cl_L_per_h": -0.1}), "iiv.cl_L_per_h"),
    ("model-pk-absorption", sim({"pk.absorption": "second_order"}), "second_order"),
    ("model-pk-compartments-4", sim({"pk.compartments": 4}), "compartments"),
    ("model-pk-unknown-option", sim({"pk.clearance": "linear"}), "pk.clearance"),
    ("model-parameter-negative", sim({"parameters.cl_L_per_h": -0.2}), "cl_L_per_h"),
    ("model-parameter-text", sim({"parameters.v1_L": "ten"}), "v1_L"),
    (
        "model-parameter-nan",
        model_text(_replace("v1_L: 10.0,", "v1_L: .nan,")),
        "v1_L",
    ),
    ("model-residual-unknown", sim({"residual_error.log": 0.1}), "residual_error"),
    ("model-residual-negative", sim({"residual_error.additive": -0.5}), "additive"),
    ("model-amt-unit", sim({"data.amt_unit": "kg"}), "amt_unit"),
    ("model-unknown-top-key", sim({"paramters": {}}), "did you mean 'parameters'?"),
    ("model-kind-trial", sim({"kind": "trial"}), "kind"),
    (
        "model-covariate-column-absent",
        sim({"covariates.cl_L_per_h": {"CRCL": {"power": 0.5, "reference": 100}}}),
        "CRCL",
    ),
    ("model-duplicate-key", model_text(lambda s: s + "name: again\n"), "name"),
    (
        "model-missing-file",
        lambda t: [
            "simulate",
            str(t / "m.yaml"),
            "--data",
            str(t / "d.csv"),
            "--out",
            str(t / "o.csv"),
        ],
        "model: got",
    ),
    # ---- NONMEM datasets (insilico simulate)
    ("data-evid-5", sim(None, _replace("1,0,1,100", "1,0,5,100")), "EVID"),
    ("data-amt-negative", sim(None, _replace("2,0,1,100", "2,0,1,-100")), "AMT"),
    ("data-time-backwards", sim(None, _replace("1,4,0", "1,0.5,0")), "row 4, TIME"),
    ("data-time-text", sim(None, _replace("1,4,0", "1,4h,0")), "'4h'"),
    ("data-time-negative", sim(None, _replace("2,0,1,100", "2,-1,1,100")), "TIME"),
    ("data-time-inf", sim(None, _replace("1,4,0", "1,inf,0")), "TIME"),
    ("data-cmt-7", sim(None, _replace("1,1,0,.,2", "1,1,0,.,7")), "CMT"),
    ("data-cmt-fraction", sim(None, _replace("1,1,0,.,2", "1,1,0,.,1.5")), "CMT"),
    ("data-ss-without-ii", sim(None, _replace("1,0,1,100,1,0,0", "1,0,1,100,1,1,0")), "II"),
    ("data-ss-3", sim(None, _replace("1,0,1,100,1,0,0", "1,0,1,100,1,3,24")), "SS"),
    ("data-ii-negative", sim(None, _replace("1,0,1,100,1,0,0", "1,0,1,100,1,0,-12")), "II"),
    ("data-amt-on-observation", sim(None, _replace("1,1,0,.,2", "1,1,0,5,2")), "AMT"),
    ("data-dose-amt-zero", sim(None, _replace("2,0,1,100", "2,0,1,0")), "AMT"),
    ("data-id-missing", sim(None, _replace("2,2,0", ".,2,0")), "ID"),
    ("data-no-id-column", sim(None, lambda s: s.replace("ID,", "SUBJ,", 1)), "ID"),
    ("data-no-time-column", sim(None, lambda s: s.replace("TIME,", "T,", 1)), "TIME"),
    ("data-duplicate-column", sim(None, lambda s: s.replace(",WT\n", ",DV\n", 1)), "DV"),
    ("data-reserved-column", sim(None, lambda s: s.replace(",WT\n", ",ROW\n", 1)), "ROW"),
    ("data-ragged-row", sim(None, _replace("1,4,0,.,2,0,0,2.5,70", "1,4,0,.,2,0,0,2.5")), "row 4"),
    ("data-empty", sim(None, b""), "empty"),
    ("data-header-only", sim(None, lambda s: s.splitlines()[0] + "\n"), "header only"),
    ("data-latin1", sim(None, DATA.replace("2.5,70", "2.5,70\xb0").encode("latin-1")), "encoding"),
    (
        "data-missing-file",
        lambda t: [*sim()(t)[:3], str(t / "none.csv"), "--out", str(t / "out.csv")],
        "none.csv",
    ),
    (
        "data-wt-missing-for-covariate",
        sim(None, lambda s: s.replace(",WT\n", ",BW\n", 1)),
        "data.csv: covariates.cl_L_per_h.WT",
    ),
    (
        "data-wt-text",
        sim(None, _replace("2.5,70", "2.5,heavy")),
        "data.csv: row 4, WT: got 'heavy'",
    ),
    (
        "data-mdv-2",
        sim(
            None,
            lambda s: (
                s.replace(",WT\n", ",WT,MDV\n", 1)
                .replace(",70\n", ",70,2\n")
                .replace(",80\n", ",80,0\n")
            ),
        ),
        "MDV",
    ),
    # ---- insilico simulate: arguments
    ("simulate-replicates-zero", sim(None, None, "--replicates", "0"), "--replicates"),
    ("simulate-seed-negative", sim(None, None, "--seed", "-1"), "--seed"),
    ("simulate-chunk-records-zero", sim(None, None, "--chunk-records", "0"), "--chunk-records"),
    ("simulate-out-parent-missing", sim(out="nodir/out.csv"), "--out"),
    ("simulate-out-is-dir", sim(out="."), "--out"),
    # ---- insilico runs show
    ("runs-show-star", show("*"), "run: got '*'"),
    ("runs-show-glob", show("run*["), "'run*['"),
    ("runs-show-missing", show("nope"), "'nope'"),
    ("runs-show-parent", show(".."), "'..'"),
    ("runs-show-traversal", show("../../etc"), "../../etc"),
    ("runs-show-empty", show(""), "run"),
    ("runs-show-absolute", show("/etc"), "/etc"),
    ("runs-show-incomplete", show("20250101"), "summary.parquet"),
    ("runs-show-no-root", lambda t: ["runs", "show", "x", "--root", str(t / "absent")], "--root"),
    # ---- insilico fit / twin / vpc: arguments
    ("fit-method", fit("--method", "newton"), "--method: got 'newton'"),
    ("fit-iterations-focei", fit("--method", "focei", "--iterations", "50,20"), "--max-iterations"),
    ("fit-iterations-text", fit("--method", "saem", "--iterations", "a,b"), "--iterations"),
    ("fit-iterations-one", fit("--method", "saem", "--iterations", "10"), "--iterations"),
    ("fit-iterations-zero", fit("--method", "saem", "--iterations", "0,5"), "--iterations"),
    ("fit-workers-zero", fit("--workers", "0"), "--workers"),
    ("fit-max-iterations-zero", fit("--max-iterations", "0"), "--max-iterations"),
    ("fit-workers-text", fit("--workers", "two"), "'two'"),
    ("fit-no-dv-column", fit(data=lambda s: s.replace(",DV,", ",CONC,", 1)), "DV"),
    (
        "fit-no-observations",
        fit(data=lambda s: s.replace("3.1", ".").replace("2.5", ".").replace("2.9", ".")),
        "observations",
    ),
    ("twin-draws-zero", twin("--draws", "0"), "--draws"),
    ("twin-until-negative", twin("--until", "-1"), "--until: got -1.0"),
    ("twin-until-nan", twin("--until", "nan"), "--until: got nan"),
    (
        "twin-target-bad",
        twin("--target", "trough=high", "--regimen", "X mg PO q12h x14"),
        "--target",
    ),
    (
        "twin-regimen-no-x",
        twin("--target", "trough_mg_per_L=1..2", "--regimen", "50 mg PO q12h x14"),
        "--regimen",
    ),
    ("vpc-replicates-zero", vpc("--replicates", "0"), "--replicates"),
    ("vpc-bins-zero", vpc("--bins", "0"), "--bins"),
]


def _outputs(t: Path) -> set[Path]:
    return {p for p in t.rglob("*") if p.is_file()}


@pytest.mark.parametrize(("build", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path, capsys, build, fragment):
    argv = build(tmp_path)
    before = _outputs(tmp_path)
    code = main(argv)
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert code == 2, (code, err, captured.out[-2000:])
    assert "Traceback" not in captured.err + captured.out
    assert err.startswith("insilico: error: ") and len(err.splitlines()) == 1, err
    assert fragment in err, err
    command = argv[0] if argv else None
    if command == "run":
        assert list_runs(tmp_path / "runs").empty
    if command == "simulate":
        assert not (tmp_path / "out.csv").exists()
    assert _outputs(tmp_path) == before, sorted(map(str, _outputs(tmp_path) - before))


def test_the_table_is_large_and_ids_are_unique():
    ids = [c[0] for c in CASES]
    assert len(ids) >= 100 and len(set(ids)) == len(ids)


def test_one_bad_compound_among_good_ones_runs_and_reports_it(tmp_path, capsys):
    """A compound that cannot be used fails alone; the run goes on (exit 0)."""
    bad = {**copy.deepcopy(PROPRANOLOL), "fu": 1.5}
    argv = wf({"compounds": [ATENOLOL, bad]})(tmp_path)
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "failed compound propranolol: fu" in out
    assert len(list_runs(tmp_path / "runs")) == 1


def test_the_valid_inputs_of_the_table_run(tmp_path, capsys):
    """The starting points of the table are valid: each failure above is the one change."""
    assert main(sim()(tmp_path)) == 0
    assert main(csv_run(lambda s: s)(tmp_path)) == 0
    assert len(list_runs(tmp_path / "runs")) == 1
    assert main(cohort()(tmp_path)) == 0
