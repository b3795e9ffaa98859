"""Adversarial command-line input: exit code 2, one ``insilico: error:`` line naming the
field and value, no traceback, nothing half written."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from insilico.cli import main
from insilico.errors import SpecError
from insilico.results.rundir import RunWriter, is_complete, new_run_id
from insilico.trial.examples import ATENOLOL, small_trial

ROOT = Path(__file__).resolve().parents[2]
COHORT = str(ROOT / "cohorts" / "healthy_adults_us.yaml")
GOOD_CSV = "id,name,smiles\natenolol,Atenolol,CC(C)NCC(O)COc1ccc(CC(N)=O)cc1\n"


def _workflow(tmp_path, **changes):
    data = small_trial(n_patients=20, compounds=[ATENOLOL])
    data.update(changes)
    p = tmp_path / "w.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


def _run(tmp_path, **changes):
    wf = _workflow(tmp_path, **changes)
    return ["run", str(wf), "--out", str(tmp_path / "runs"), "--serial", "--no-progress"]


def _cohort(n="10", out="c.parquet"):
    return lambda t: ["cohort", COHORT, "-n", n, "--seed", "1", "-o", str(t / out)]


def _cohort_into_dir(t):
    (t / "d").mkdir()
    return _cohort(out="d")(t)


def _runs_root(t):
    (t / "runs" / "20250101-000000-small-abcdef12").mkdir(parents=True)
    (t / "runs" / "20250101-000000-small-abcdef12" / "manifest.json").write_text("{}")
    return t / "runs"


def _show(run):
    return lambda t: ["runs", "show", run, "--root", str(_runs_root(t))]


def _csv_bytes(name, data):
    def build(t):
        p = t / name
        p.write_bytes(data)
        return p

    return build


_CSVS = {
    "empty": b"",
    "header-only": b"id,name,smiles\n",
    "latin1": "id,name,smiles\ncaf\xe9,Caf\xe9,CCO\n".encode("latin-1"),
    "binary": bytes(range(256)) * 4,
    "ragged-more": b"id,name,smiles\na,A,CCO,extra\n",
    "ragged-fewer": b"id,name,smiles\na,A,CCO\nb,CCC\n",
}
_CSV_NEEDLES = {
    "empty": "empty file",
    "header-only": "only a header",
    "latin1": "row 2, encoding",
    "binary": "binary data",
    "ragged-more": "row 2, fields: got '4 cells'",
    "ragged-fewer": "row 3, fields: got '2 cells'",
}


def _workflow_csv(kind):
    def build(t):
        path = _csv_bytes("c.csv", _CSVS[kind])(t)
        return _run(t, compounds={"path": str(path)})

    return build


def _predict_csv(kind):
    def build(t):
        path = _csv_bytes("c.csv", _CSVS[kind])(t)
        return ["predict-pk", str(path), "--out", str(t / "o.csv")]

    return build


def _regimens(text, n=1):
    return [{"name": f"r{i}", "text": text.format(i=i + 1)} for i in range(n)]


CASES = [
    # id, build(tmp_path) -> argv, exit code, needle in the error line
    ("cohort-out-is-dir", _cohort_into_dir, 2, "not an existing directory"),
    ("cohort-out-parent-missing", _cohort(out="missing/dir/x.parquet"), 2, "existing directory"),
    ("cohort-n-zero", _cohort(n="0"), 2, "-n: got 0"),
    ("cohort-n-negative", _cohort(n="-5"), 2, "-n: got -5"),
    ("cohort-n-huge", _cohort(n="1000000000"), 2, "10,000,000"),
    ("runs-show-glob", _show("run*["), 2, "'run*['"),
    ("runs-show-star", _show("*"), 2, "run: got '*'"),
    ("runs-show-question", _show("2025????"), 2, "'2025????'"),
    ("runs-show-missing", _show("nope"), 2, "run: got 'nope'"),
    (
        "runs-show-no-root",
        lambda t: ["runs", "show", "x", "--root", str(t / "absent")],
        2,
        "--root",
    ),
    ("duration-inf", lambda t: _run(t, duration_h=float("inf")), 2, "duration_h: got inf"),
    (
        "duration-1e7",
        lambda t: _run(t, duration_h=1e7, responder={"time_h": 48.0, "change_pct": -15}),
        2,
        "100,000 output times",
    ),
    ("interval-1e-4", lambda t: _run(t, output={"interval_h": 1e-4}), 2, "output.interval_h"),
    (
        "doses-1e9",
        lambda t: _run(t, regimens=_regimens("50 mg PO q12h x1000000000")),
        2,
        "from 1 to 100000",
    ),
    (
        "doses-over-series",
        lambda t: _run(t, regimens=_regimens("5 mg PO q1h x60000 then 5 mg PO q1h x60000")),
        2,
        "at most 100000 doses",
    ),
    (
        "arms-20000",
        lambda t: _run(t, regimens=_regimens("{i} mg PO q12h x4", 20_000)),
        2,
        "at most 1,000 arms",
    ),
    *[(f"workflow-csv-{k}", _workflow_csv(k), 2, _CSV_NEEDLES[k]) for k in _CSVS],
    *[(f"predict-pk-csv-{k}", _predict_csv(k), 2, _CSV_NEEDLES[k]) for k in _CSVS],
]


@pytest.mark.parametrize(
    ("build", "code", "needle"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input(tmp_path, capsys, build, code, needle):
    argv = build(tmp_path)
    assert main(argv) == code
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("insilico: error: ") and len(err.splitlines()) == 1, err
    assert needle in err
    assert "Traceback" not in captured.err + captured.out
    runs = tmp_path / "runs"
    if argv[0] == "run":
        assert not runs.exists() or not any(is_complete(p) for p in runs.iterdir())
    assert not list(tmp_path.rglob("*.partial*"))
    assert not (tmp_path / "o.csv").exists()


def test_csv_formula_cells_are_quoted_but_numbers_stay_numbers(tmp_path, capsys):
    src = tmp_path / "in.csv"
    src.write_text(
        "id,name,smiles,potency_nM\n"
        "=cmd|' /C calc'!A0,+SUM(1),CCO,-5\n"
        "@x,-neg,CCC,10\n"
        "-3,\tt,CCN,+2\n"
    )
    out = tmp_path / "o.csv"
    assert main(["predict-pk", str(src), "--out", str(out)]) == 0
    back = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert back["id"].tolist() == ["'=cmd|' /C calc'!A0", "'@x", "-3"]
    assert back["name"].tolist() == ["'+SUM(1)", "'-neg", "'\tt"]
    assert back["potency_nM"].tolist() == ["-5", "10", "+2"]
    assert "Traceback" not in capsys.readouterr().err


def test_same_workflow_same_second_other_seed_gets_another_id(tmp_path):
    root = tmp_path / "runs"
    a = new_run_id("small", "ab" * 32, root, seed=1)
    b = new_run_id("small", "ab" * 32, root, seed=2)
    c = new_run_id("small", "ab" * 32, root, n_patients=50)
    assert len({a.rsplit("-", 1)[-1], b.rsplit("-", 1)[-1], c.rsplit("-", 1)[-1]}) == 3


def test_concurrent_runs_of_one_id_both_complete(tmp_path):
    root = tmp_path / "runs"
    run_id = new_run_id("small", "ab" * 32, root)
    rows = pd.DataFrame({"patient_id": [0, 1]})
    frame = pd.DataFrame({"x": [1.0]})
    first, second = RunWriter(root, run_id), RunWriter(root, run_id)  # same second, same id
    for w in (first, second):
        w.write_patients(rows)
    p1 = first.finish({"seed": 1}, frame, frame)
    p2 = second.finish({"seed": 2}, frame, frame)
    assert p1.name == run_id and p2.name == f"{run_id}-2"
    assert is_complete(p1) and is_complete(p2)
    assert '"run_id": "' + p2.name in (p2 / "manifest.json").read_text()
    assert '"seed": 2' in (p2 / "manifest.json").read_text()


def test_two_cli_runs_same_second_other_seed(tmp_path, capsys, monkeypatch):
    import time

    monkeypatch.setattr(time, "gmtime", lambda *a: time.struct_time((2025, 1, 1, 0, 0, 0, 2, 1, 0)))
    argv = _run(tmp_path, n_patients=10)
    assert main([*argv, "--seed", "1"]) == 0
    assert main([*argv, "--seed", "2"]) == 0
    ids = sorted(p.name for p in (tmp_path / "runs").iterdir() if is_complete(p))
    assert len(ids) == 2 and ids[0] != ids[1]


def test_a_scheduler_address_that_does_not_speak_dask_is_refused_in_time(monkeypatch):
    """A server that accepts the connection and never answers (not a Dask scheduler) is
    refused after the connect timeout instead of keeping the client waiting."""
    import socket
    import threading
    import time

    from insilico.engine import executors

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    accepted = []
    threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()
    monkeypatch.setattr(executors, "CONNECT_TIMEOUT_S", 1.0)
    address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    t0 = time.perf_counter()
    try:
        with pytest.raises(SpecError, match="a Dask scheduler answering within 1 s"):
            executors.existing_client(address)
    finally:
        server.close()
    assert time.perf_counter() - t0 < 10.0
    assert accepted  # it did connect: the handshake is what timed out
