"""Run directory (atomic write, list, read) and summary statistics."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from insilico.engine.run import run_and_write
from insilico.errors import SpecError
from insilico.results.rundir import is_complete, list_runs, read_run, write_run
from insilico.results.summary import summarize_patients, wilson_interval
from insilico.trial.examples import ATENOLOL, small_trial
from insilico.trial.spec import trial_spec_from_dict


def test_wilson_closed_forms():
    # k = 0: upper bound z^2 / (n + z^2) (Wilson 1927)
    z2 = 1.959963984540054**2
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(z2 / (10 + z2), rel=1e-12)
    lo, hi = wilson_interval(10, 10)
    assert hi == pytest.approx(1.0, abs=1e-15) and lo == pytest.approx(10 / (10 + z2), rel=1e-12)
    # symmetric around 1/2 for k = n/2
    lo, hi = wilson_interval(50, 100)
    assert lo + hi == pytest.approx(1.0, abs=1e-12)
    # published example: 81/263 -> (0.2553, 0.3662) (Newcombe 1998, Stat Med 17:857, method 3)
    lo, hi = wilson_interval(81, 263)
    assert (round(float(lo), 4), round(float(hi), 4)) == (0.2553, 0.3662)
    assert np.isnan(wilson_interval(0, 0)[0])


def test_wilson_coverage_by_simulation():
    rng = np.random.default_rng(0)
    p, n, reps = 0.1, 200, 4000
    k = rng.binomial(n, p, size=reps)
    lo, hi = wilson_interval(k, n)
    cover = np.mean((lo <= p) & (p <= hi))
    se = np.sqrt(0.95 * 0.05 / reps)
    assert abs(cover - 0.95) < 4 * se + 0.01  # Wilson is close to nominal at n p = 20


def test_summarize_percentiles_and_rates():
    df = pd.DataFrame(
        {
            "arm": ["a"] * 4 + ["b"] * 2,
            "compound_id": ["x"] * 4 + ["y"] * 2,
            "regimen": ["r"] * 6,
            "cmax_mg_per_L": [1.0, 2.0, 3.0, 4.0, 5.0, 5.0],
            "auc_last_mg_h_per_L": [1.0] * 6,
            "trough_mg_per_L": [0.5] * 6,
            "responder": [True, False, True, True, False, False],
            "ae_x": pd.array([True, False, None, False, True, True], dtype="boolean"),
        }
    )
    s = summarize_patients(df, ["x"])
    assert s["arm"].tolist() == ["a", "b"] and s["n"].tolist() == [4, 2]
    assert s["cmax_p50"].iloc[0] == pytest.approx(2.5)
    assert s["responder_rate"].iloc[0] == pytest.approx(0.75)
    assert s["ae_x_n"].iloc[0] == 3 and s["ae_x_events"].iloc[0] == 1  # NA not counted
    assert s["ae_x_rate"].iloc[1] == 1.0


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    spec = trial_spec_from_dict(small_trial(n_patients=200, compounds=[ATENOLOL]))
    result, path = run_and_write(root=root, spec=spec, executor="serial")
    return root, result, path


def test_run_directory_contents(written):
    root, result, path = written
    assert is_complete(path)
    assert sorted(p.name for p in path.iterdir()) == [
        "bands.parquet",
        "manifest.json",
        "patients.parquet",
        "summary.parquet",
    ]
    m = json.loads((path / "manifest.json").read_text())
    for key in ("spec", "spec_sha256", "seed", "packages", "timings_s", "failed_compounds"):
        assert key in m
    assert m["spec_sha256"] == result.spec.sha256()
    assert m["packages"]["numpy"] == np.__version__
    run = read_run(path.name, root)
    pd.testing.assert_frame_equal(run.summary, result.summary, check_exact=True)
    patients = run.patients()
    # in memory the label columns are categoricals over the trial's arms (bounded memory)
    labels = ["arm", "compound_id", "regimen"]
    assert all(isinstance(result.patients[c].dtype, pd.CategoricalDtype) for c in labels)
    kept = result.patients.astype({c: patients[c].dtype for c in labels})
    pd.testing.assert_frame_equal(patients[kept.columns], kept, check_exact=True)
    pd.testing.assert_frame_equal(run.bands, result.bands, check_exact=True)
    # summary agrees with the patients it summarizes
    s = run.summary.set_index("arm")
    for arm, g in patients.groupby("arm"):
        assert s.loc[arm, "n"] == len(g)
        assert s.loc[arm, "cmax_p50"] == np.percentile(g["cmax_mg_per_L"], 50)


def test_list_and_prefix_lookup(written, tmp_path):
    root, result, path = written
    runs = list_runs(root)
    assert path.name in runs["run_id"].tolist()
    assert read_run(path.name[:15], root).path == path
    with pytest.raises(SpecError):
        read_run("no-such-run", root)
    assert list_runs(tmp_path / "absent").empty


def test_failed_write_leaves_no_complete_directory(tmp_path, written):
    _, result, _ = written

    class Boom(pd.DataFrame):
        def to_parquet(self, *a, **k):
            raise OSError("disk full")

    with pytest.raises(OSError):
        write_run(
            tmp_path, "x", result.manifest, result.patients, result.bands, Boom(result.summary)
        )
    assert list(tmp_path.iterdir()) == []
    assert list_runs(tmp_path).empty


def test_streamed_files_equal_in_memory_tables_for_any_chunk_size(tmp_path):
    """patients.parquet streamed task by task equals the in-memory table, and the files of
    chunk sizes 1000 / 4096 / 10000 are equal."""
    from insilico.engine.run import run_trial

    spec = trial_spec_from_dict(small_trial(n_patients=5000, compounds=[ATENOLOL], duration_h=24))
    ref = run_trial(spec, executor="serial")
    frames = {}
    for chunk in (1000, 4096, 10000):
        result, path = run_and_write(
            root=tmp_path / str(chunk), spec=spec, executor="serial", chunk_size=chunk
        )
        frames[chunk] = {
            f: pd.read_parquet(path / f"{f}.parquet") for f in ("patients", "bands", "summary")
        }
        assert set(result.patients.columns) < set(ref.patients.columns)  # summary columns
    for chunk in (1000, 4096, 10000):
        pd.testing.assert_frame_equal(frames[chunk]["patients"], ref.patients, check_exact=True)
        pd.testing.assert_frame_equal(frames[chunk]["bands"], ref.bands, check_exact=True)
        pd.testing.assert_frame_equal(frames[chunk]["summary"], ref.summary, check_exact=True)


def test_error_mid_run_leaves_no_directory(tmp_path):
    spec = trial_spec_from_dict(small_trial(n_patients=3000, compounds=[ATENOLOL]))

    def explode(done, total):
        if done == 2:
            raise RuntimeError("worker lost")

    with pytest.raises(RuntimeError, match="worker lost"):
        run_and_write(
            root=tmp_path, spec=spec, executor="serial", chunk_size=1024, callback=explode
        )
    assert list(tmp_path.iterdir()) == []


def test_the_next_run_removes_what_killed_runs_left_behind(tmp_path):
    """A run killed mid-way leaves its temporary directory; the next run in the folder removes
    it once its process is gone, and leaves a live run's and another host's alone."""
    import subprocess
    import sys

    from insilico.results.rundir import RunWriter, _host

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = _host()
    stale = tmp_path / f".old-run.partial-{host}-{dead.pid}-0123abcd"
    live = tmp_path / f".busy-run.partial-{host}-{__import__('os').getpid()}-0123abcd"
    other = tmp_path / f".far-run.partial-otherhost-{dead.pid}-0123abcd"
    for d in (stale, live, other):
        d.mkdir()
        (d / "patients.parquet").write_bytes(b"x" * 10)
    writer = RunWriter(tmp_path, "20990101-000000-new-00000000")
    try:
        assert not stale.exists()
        assert live.exists() and other.exists()
        assert writer.tmp.name.startswith(f".20990101-000000-new-00000000.partial-{host}-")
    finally:
        writer.abort()


def test_best_dose_and_ranking_count_adverse_events_that_are_not_serious():
    """A dose whose non-serious adverse event hits most patients is not the best dose: the
    net benefit, P(response without any declared adverse event), selects doses and ranks
    compounds (the best dose used to ignore every event not marked serious)."""
    from insilico.engine.run import run_trial

    data = small_trial(n_patients=300, compounds=[ATENOLOL], duration_h=24)
    data["regimens"] = [
        {"name": "low", "text": "100 mg PO q12h x2"},
        {"name": "high", "text": "400 mg PO q12h x2"},
    ]
    data["adverse_events"][0].update({"intercept": -6.0, "slope": 3.0})  # steep, not serious
    summary = run_trial(trial_spec_from_dict(data), executor="serial").summary
    drug = summary[summary["compound_id"] == "atenolol"].set_index("regimen")
    assert drug.loc["high", "ae_bradycardia_rate"] > 0.8
    assert drug.loc["high", "responder_rate"] > drug.loc["low", "responder_rate"] + 0.2
    assert (drug["response_no_sae_rate"] == drug["responder_rate"]).all()  # nothing serious
    assert drug.loc["high", "response_no_ae_rate"] < drug.loc["low", "response_no_ae_rate"]
    assert drug["best_dose_mg"].iloc[0] == 100.0
