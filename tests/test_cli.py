"""The ``insilico`` command line: runs, run listing, bad input -> exit 2 and no complete run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from insilico.cli import main
from insilico.results.rundir import is_complete, list_runs
from insilico.trial.examples import ATENOLOL, small_trial

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args, cwd=None, timeout=300):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "insilico.cli", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _workflow(tmp_path, data, name="w.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


def _no_complete_run(out: Path):
    assert not out.exists() or not [p for p in out.iterdir() if is_complete(p)]


def test_run_serial_then_list_and_show(tmp_path, capsys):
    wf = _workflow(tmp_path, small_trial(n_patients=300))
    out = tmp_path / "runs"
    assert main(["run", str(wf), "--out", str(out), "--serial", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "atenolol:low" in text and "placebo" in text and "responder (95% CI)" in text
    runs = list_runs(out)
    assert len(runs) == 1
    assert main(["runs", "list", "--root", str(out)]) == 0
    assert runs["run_id"].iloc[0] in capsys.readouterr().out
    assert main(["runs", "show", runs["run_id"].iloc[0], "--root", str(out)]) == 0
    assert "spec_sha256" in capsys.readouterr().out


def test_overrides_n_patients_and_seed(tmp_path, capsys):
    wf = _workflow(tmp_path, small_trial(n_patients=300, compounds=[ATENOLOL]))
    out = tmp_path / "runs"
    assert (
        main(
            [
                "run",
                str(wf),
                "--out",
                str(out),
                "--serial",
                "--no-progress",
                "--n-patients",
                "50",
                "--seed",
                "99",
                "--chunk-size",
                "7",
            ]
        )
        == 0
    )
    path = Path(list_runs(out)["path"].iloc[0])
    m = json.loads((path / "manifest.json").read_text())
    assert m["n_patients"] == 50 and m["seed"] == 99
    assert m["execution"]["chunk_size"] == 1024
    assert len(pd.read_parquet(path / "patients.parquet")) == 50 * 3


def test_invalid_smiles_reported_others_complete(tmp_path, capsys):
    data = small_trial(n_patients=100)
    data["compounds"].append(
        {"id": "broken", "smiles": "C1CC(", "potency_nM": 5, "cl_L_per_h": 5, "v_L": 50}
    )
    out = tmp_path / "runs"
    assert (
        main(
            ["run", str(_workflow(tmp_path, data)), "--out", str(out), "--serial", "--no-progress"]
        )
        == 0
    )
    assert "failed compound broken" in capsys.readouterr().out
    path = Path(list_runs(out)["path"].iloc[0])
    m = json.loads((path / "manifest.json").read_text())
    assert [f["id"] for f in m["failed_compounds"]] == ["broken"]
    assert "SMILES" in m["failed_compounds"][0]["error"]
    assert set(pd.read_parquet(path / "summary.parquet")["compound_id"]) == {
        "atenolol",
        "propranolol",
        "placebo",
    }


def _bad_cases(tmp_path):
    neg = small_trial()
    neg["regimens"][0]["text"] = "-50 mg PO q12h x4"
    unknown = small_trial()
    unknown["arms_typo"] = []
    wrong = small_trial()
    wrong["duration_h"] = "two days"
    empty = small_trial()
    empty["compounds"] = []
    missing_csv = small_trial()
    missing_csv["compounds"] = {"path": "nope.csv"}
    bad_cv = small_trial()
    bad_cv["iiv"]["correlation"] = [["cl_L_per_h", "v1_L", 1.5]]
    all_bad = small_trial(compounds=[{"id": "x", "smiles": "not a smiles", "potency_nM": 1}])
    empty_csv = tmp_path / "empty.csv"
    empty_csv.write_text("id,name,smiles\n")
    empty_file = small_trial()
    empty_file["compounds"] = {"path": str(empty_csv)}
    return {
        "negative-dose": (_workflow(tmp_path, neg, "neg.yaml"), "regimens[0].text"),
        "unknown-key": (_workflow(tmp_path, unknown, "unk.yaml"), "arms_typo"),
        "wrong-type": (_workflow(tmp_path, wrong, "wrong.yaml"), "duration_h"),
        "missing-file": (tmp_path / "does_not_exist.yaml", "does_not_exist.yaml"),
        "empty-compounds": (_workflow(tmp_path, empty, "empty.yaml"), "compounds"),
        "empty-compound-file": (_workflow(tmp_path, empty_file, "emptyf.yaml"), "compounds"),
        "missing-compound-file": (_workflow(tmp_path, missing_csv, "mcsv.yaml"), "nope.csv"),
        "bad-correlation": (_workflow(tmp_path, bad_cv, "cv.yaml"), "iiv"),
        "no-usable-compound": (_workflow(tmp_path, all_bad, "allbad.yaml"), "no usable"),
    }


CASES = [
    "negative-dose",
    "unknown-key",
    "wrong-type",
    "missing-file",
    "empty-compounds",
    "empty-compound-file",
    "missing-compound-file",
    "bad-correlation",
    "no-usable-compound",
]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_exit_2_one_line_no_run(tmp_path, capsys, case):
    path, needle = _bad_cases(tmp_path)[case]
    out = tmp_path / "runs"
    code = main(["run", str(path), "--out", str(out), "--serial", "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("insilico: error: ")
    assert needle in err
    _no_complete_run(out)


def test_bad_input_real_process_exit_code(tmp_path):
    path, _ = _bad_cases(tmp_path)["negative-dose"]
    r = _cli("run", path, "--out", tmp_path / "runs", "--serial")
    assert r.returncode == 2, r.stderr
    assert "regimen" in r.stderr and "Traceback" not in r.stderr
    _no_complete_run(tmp_path / "runs")


def test_cohort_command(tmp_path, capsys):
    out = tmp_path / "c.parquet"
    assert (
        main(
            [
                "cohort",
                str(ROOT / "cohorts" / "healthy_adults_us.yaml"),
                "-n",
                "50",
                "--seed",
                "3",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    df = pd.read_parquet(out)
    assert len(df) == 50 and df["patient_id"].tolist() == list(range(50))
    assert (
        main(["cohort", str(tmp_path / "missing.yaml"), "-n", "5", "--seed", "1", "-o", str(out)])
        == 2
    )


def test_a_small_trial_runs_in_this_process_and_says_so(tmp_path, capsys):
    wf = _workflow(tmp_path, small_trial(n_patients=100, compounds=[ATENOLOL]))
    out = tmp_path / "runs"
    assert main(["run", str(wf), "--out", str(out), "--no-progress"]) == 0
    assert "note: a small trial runs in this process" in capsys.readouterr().out
    path = Path(list_runs(out)["path"].iloc[0])
    execution = json.loads((path / "manifest.json").read_text())["execution"]
    assert execution["executor"] == "serial"
    assert "--workers" in execution["executor_reason"]


@pytest.mark.slow
def test_quickstart_on_local_cluster_under_a_minute(tmp_path):
    """The quickstart as a user runs it: default executor (local Dask cluster), 2 workers."""
    t0 = time.perf_counter()
    r = _cli(
        "run",
        ROOT / "workflows" / "quickstart.yaml",
        "--out",
        tmp_path / "runs",
        "--workers",
        "2",
        "--no-progress",
        cwd=tmp_path,
    )
    wall = time.perf_counter() - t0
    assert r.returncode == 0, r.stderr[-2000:]
    runs = list_runs(tmp_path / "runs")
    assert len(runs) == 1
    summary = pd.read_parquet(Path(runs["path"].iloc[0]) / "summary.parquet")
    assert (summary["n"] == 1000).all()
    assert {"atenolol", "bisoprolol", "metoprolol", "propranolol", "placebo"} <= set(
        summary["compound_id"]
    )
    print(f"quickstart wall time {wall:.1f} s")
    assert wall < 90  # about 60 s on 2 cores; more when numba compiles on a cold cache


def _compound_csv(tmp_path):
    p = tmp_path / "compounds.csv"
    p.write_text(
        "id,name,smiles,cl_mL_min_kg,vdss_L_per_kg,fu,f_bio,ka_per_h,potency_nM\n"
        "atenolol,Atenolol,CC(C)NCC(O)COc1ccc(CC(N)=O)cc1,2.5,0.95,0.94,0.58,0.8,700\n"
        "bad,Broken,C1CC(,1,1,0.5,0.5,1,10\n"
    )
    return p


def test_compounds_from_csv_file(tmp_path, capsys):
    data = small_trial(n_patients=100)
    data["compounds"] = {"path": "compounds.csv"}  # relative to the workflow file
    _compound_csv(tmp_path)
    out = tmp_path / "runs"
    assert (
        main(
            ["run", str(_workflow(tmp_path, data)), "--out", str(out), "--serial", "--no-progress"]
        )
        == 0
    )
    assert "failed compound bad" in capsys.readouterr().out
    summary = pd.read_parquet(Path(list_runs(out)["path"].iloc[0]) / "summary.parquet")
    assert set(summary["compound_id"]) == {"atenolol", "placebo"}


def test_featurize_and_predict_pk_commands(tmp_path, capsys):
    csv = _compound_csv(tmp_path)
    assert main(["featurize", str(csv), "-o", str(tmp_path / "f.parquet")]) == 0
    feats = pd.read_parquet(tmp_path / "f.parquet")
    assert feats["valid"].tolist() == [True, False]
    assert main(["predict-pk", str(csv), "--out", str(tmp_path / "p.csv")]) == 0
    pred = pd.read_csv(tmp_path / "p.csv")
    assert len(pred) == 2 and pred["cl_mL_min_kg"].notna().tolist() == [True, False]
    assert main(["featurize", str(tmp_path / "none.csv"), "-o", str(tmp_path / "x.parquet")]) == 2


def test_app_command_binds_localhost(tmp_path, monkeypatch):
    import insilico.cli as cli

    calls = []
    monkeypatch.setattr(cli, "run_child", lambda cmd, env=None: calls.append((cmd, env)) or 0)
    assert main(["app", "--port", "8999", "--root", str(tmp_path)]) == 0
    cmd, env = calls[0]
    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[4].endswith("streamlit_app.py")
    assert cmd[cmd.index("--server.address") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--server.port") + 1] == "8999"
    assert env["INSILICO_RUNS"] == str(tmp_path.resolve())
    assert cmd[cmd.index("--server.maxUploadSize") + 1] == "5"
    assert cmd[cmd.index("--client.showErrorDetails") + 1] == "none"
    assert main(["app", "--address", "0.0.0.0", "--root", str(tmp_path)]) == 0
    assert calls[1][0][calls[1][0].index("--server.address") + 1] == "0.0.0.0"


def test_stopping_the_app_command_stops_the_server(tmp_path):
    """SIGTERM to ``insilico app`` (a service manager stopping it) stops the Streamlit server
    too: it used to keep running, still listening, after its parent was gone."""
    import signal
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = subprocess.Popen(
        [sys.executable, "-m", "insilico.cli", "app", "--port", str(port), "--root", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )

    def listening() -> bool:
        with socket.socket() as c:
            return c.connect_ex(("127.0.0.1", port)) == 0

    try:
        deadline = time.time() + 60
        while not listening() and time.time() < deadline:
            time.sleep(0.25)
        assert listening(), "the app did not start"
        app.send_signal(signal.SIGTERM)
        app.wait(timeout=30)
        deadline = time.time() + 15
        while listening() and time.time() < deadline:
            time.sleep(0.25)
        assert not listening(), "the Streamlit server outlived insilico app"
    finally:
        try:
            os.killpg(app.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_unreachable_scheduler_is_bad_input(tmp_path, capsys, monkeypatch):
    import insilico.engine.executors as executors

    monkeypatch.setattr(executors, "CONNECT_TIMEOUT_S", 2.0)
    wf = _workflow(tmp_path, small_trial(n_patients=50, compounds=[ATENOLOL]))
    out = tmp_path / "runs"
    code = main(["run", str(wf), "--out", str(out), "--scheduler", str(tmp_path / "no.json")])
    assert code == 2 and "scheduler" in capsys.readouterr().err
    code = main(["run", str(wf), "--out", str(out), "--scheduler", "tcp://127.0.0.1:9"])
    err = capsys.readouterr().err
    assert code == 2 and "a Dask scheduler answering within 2 s" in err, err
    _no_complete_run(out)
