"""The engine gives bit-identical tables for any chunk size, executor and scheduler."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pandas.testing import assert_frame_equal

from insilico.engine.plan import effective_chunk_size, plan_tasks
from insilico.engine.run import run_trial
from insilico.errors import SpecError
from insilico.rng import PATIENT_BLOCK
from insilico.trial.examples import ATENOLOL, small_trial
from insilico.trial.spec import trial_spec_from_dict

N = 5000  # > 4096 so that every chunk size below splits the cohort differently


@pytest.fixture(scope="module")
def spec():
    return trial_spec_from_dict(small_trial(n_patients=N, compounds=[ATENOLOL], duration_h=24))


@pytest.fixture(scope="module")
def serial(spec):
    return run_trial(spec, executor="serial", chunk_size=1000)


def _same(a, b):
    for name in ("patients", "bands", "summary"):
        assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True)


def test_plan_is_pure_and_block_aligned():
    tasks = plan_tasks(3, 5000, 1000)
    assert tasks == plan_tasks(3, 5000, 1000)
    assert effective_chunk_size(1000) == PATIENT_BLOCK
    assert all(t.start % PATIENT_BLOCK == 0 for t in tasks)
    for arm in range(3):
        ranges = [(t.start, t.stop) for t in tasks if t.arm == arm]
        assert ranges[0][0] == 0 and ranges[-1][1] == 5000
        assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))


def test_serial_result_shape(serial):
    p = serial.patients
    assert len(p) == N * 3  # 2 regimens + placebo, paired design
    assert (
        p.groupby("arm", sort=False)["patient_id"]
        .apply(lambda s: (s.to_numpy() == np.arange(N)).all())
        .all()
    )
    assert np.all(np.isfinite(p["cmax_mg_per_L"]))
    assert set(serial.bands["quantity"]) == {"conc_mg_per_L", "biomarker_change_pct"}
    assert (serial.bands["n"] == N).all()


@pytest.mark.parametrize("chunk", [4096, 10000])
def test_chunk_sizes_identical(spec, serial, chunk):
    _same(serial, run_trial(spec, executor="serial", chunk_size=chunk))


def test_local_cluster_matches_serial(spec, serial):
    two = run_trial(spec, executor="dask", workers=2, chunk_size=1000)
    _same(serial, two)
    assert two.manifest["execution"]["n_workers"] == 2


def test_one_worker_matches_serial(spec, serial):
    _same(serial, run_trial(spec, executor="dask", workers=1, chunk_size=4096))


@pytest.mark.cluster
def test_real_scheduler_and_workers_match_serial(spec, serial, tmp_path, monkeypatch):
    """Separately started ``dask scheduler`` and ``dask worker`` processes on 127.0.0.1; a
    cluster with another version of insilico is refused up front, naming both versions."""
    bindir = os.path.dirname(sys.executable)
    sched_file = tmp_path / "scheduler.json"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [
                str(__import__("pathlib").Path(__file__).resolve().parents[2]),
                os.environ.get("PYTHONPATH", ""),
            ]
        ),
    }
    procs = []
    try:
        procs.append(
            subprocess.Popen(
                [
                    os.path.join(bindir, "dask"),
                    "scheduler",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    "0",
                    "--scheduler-file",
                    str(sched_file),
                    "--no-dashboard",
                ],
                start_new_session=True,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        deadline = time.time() + 60
        while not sched_file.exists() and time.time() < deadline:
            time.sleep(0.2)
        assert sched_file.exists(), "scheduler did not start"
        procs.append(
            subprocess.Popen(
                [
                    os.path.join(bindir, "dask"),
                    "worker",
                    "--scheduler-file",
                    str(sched_file),
                    "--nworkers",
                    "2",
                    "--nthreads",
                    "1",
                    "--host",
                    "127.0.0.1",
                    "--no-dashboard",
                    "--death-timeout",
                    "60",
                ],
                start_new_session=True,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        address = json.loads(sched_file.read_text())["address"]
        from dask.distributed import Client

        with Client(address, timeout="30s") as c:
            c.wait_for_workers(2, timeout=60)
        remote = run_trial(spec, executor="dask", scheduler=address, chunk_size=1000)
        _same(serial, remote)
        # the environment variable works the same way
        os.environ["DASK_SCHEDULER_ADDRESS"] = address
        try:
            via_env = run_trial(spec, executor="dask", chunk_size=10000)
        finally:
            del os.environ["DASK_SCHEDULER_ADDRESS"]
        _same(serial, via_env)

        # killing one worker process mid-run loses nothing (the nanny restarts it and the
        # scheduler recomputes its tasks): same tables as the serial run
        with Client(address, timeout="30s") as c:
            pids = sorted(c.run(os.getpid).values())
        killed = []

        def kill_one(done, total):
            if done == 2 and not killed:
                os.kill(pids[0], signal.SIGKILL)
                killed.append((done, total))

        big = trial_spec_from_dict(
            small_trial(n_patients=8000, compounds=[ATENOLOL], duration_h=336)
        )
        ref = run_trial(big, executor="serial", chunk_size=10000)
        after_kill = run_trial(
            big, executor="dask", scheduler=address, chunk_size=1024, callback=kill_one
        )
        assert killed and killed[0][1] > 2 + 4, killed  # killed with many tasks still to run
        _same(ref, after_kill)
        with Client(address, timeout="30s") as c:
            c.wait_for_workers(2, timeout=60)
            assert pids[0] not in c.run(os.getpid).values()  # that process is gone
        # this process pretends to be another release: the cluster's version is named
        from insilico.engine import executors

        theirs = executors.installed_version()
        monkeypatch.setattr(executors, "installed_version", lambda: "99.0")
        with pytest.raises(SpecError, match=rf"insilico 99\.0 \(it has {re.escape(theirs)}\)"):
            run_trial(spec, executor="dask", scheduler=address, chunk_size=1000)
    finally:
        for p in reversed(procs):
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def test_different_seed_changes_results(spec, serial):
    other = run_trial(spec, executor="serial", seed=spec.seed + 1)
    assert not serial.patients["cmax_mg_per_L"].equals(other.patients["cmax_mg_per_L"])


def test_parallel_design_partitions_patients():
    data = small_trial(n_patients=3000, compounds=[ATENOLOL], duration_h=24)
    data["design"] = {"type": "parallel", "ratios": {"placebo": 2.0}}
    spec = trial_spec_from_dict(data)
    a = run_trial(spec, executor="serial", chunk_size=1024)
    b = run_trial(spec, executor="serial", chunk_size=3000)
    _same(a, b)
    p = a.patients
    assert p["patient_id"].is_unique and sorted(p["patient_id"]) == list(range(3000))
    counts = p["arm"].value_counts()
    # ratios 1:1:2 -> expected 750, 750, 1500; binomial SD ~ 24-27 -> 4 SD
    assert abs(counts["placebo"] - 1500) < 4 * np.sqrt(3000 * 0.5 * 0.5)
    assert isinstance(p, pd.DataFrame)


def test_parallel_arm_without_patients_is_summarized_with_n_zero():
    data = small_trial(n_patients=3, compounds=[ATENOLOL], duration_h=24)
    data["design"] = {"type": "parallel", "ratios": {"placebo": 50.0}}
    r = run_trial(trial_spec_from_dict(data), executor="serial")
    s = r.summary.set_index("arm")
    assert list(s.index) == [a.name for a in r.context.arms]
    assert s["n"].sum() == 3
    empty = s[s["n"] == 0]
    assert len(empty) >= 1 and empty["cmax_p50"].isna().all()
    assert empty["responder_rate"].isna().all()


@pytest.fixture(scope="module")
def ref_2500():
    spec = trial_spec_from_dict(small_trial(n_patients=2500, compounds=[ATENOLOL], duration_h=24))
    return spec, run_trial(spec, executor="serial")


@settings(
    deadline=None, max_examples=6, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(chunk=st.integers(1, 6000))
def test_any_chunk_size_gives_identical_tables(ref_2500, chunk):
    spec, ref = ref_2500
    _same(ref, run_trial(spec, executor="serial", chunk_size=chunk))
