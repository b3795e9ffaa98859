"""Workers lost on an existing cluster: a run finishes on the workers left, identical to a
serial run; with none left it stops with one clear error instead of waiting forever."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pandas.testing import assert_frame_equal

from insilico.engine import executors
from insilico.engine.run import run_trial
from insilico.errors import SpecError
from insilico.trial.examples import ATENOLOL, small_trial
from insilico.trial.spec import trial_spec_from_dict

pytestmark = pytest.mark.cluster
DASK = os.path.join(os.path.dirname(sys.executable), "dask")
ROOT = Path(__file__).resolve().parents[2]


def _env():
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }


def _start(args, log):
    return subprocess.Popen(
        [DASK, *args], start_new_session=True, env=_env(), stdout=log, stderr=log
    )


def _kill(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


@pytest.fixture
def scheduler(tmp_path):
    """A ``dask scheduler`` on 127.0.0.1; yields its scheduler file and a function that starts
    one worker process (without a nanny: killed, it stays dead)."""
    file = tmp_path / "scheduler.json"
    log = open(tmp_path / "cluster.log", "w")  # closed below
    procs = [
        _start(
            [
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(file),
            ],
            log,
        )
    ]

    def worker():
        procs.append(
            _start(
                [
                    "worker",
                    "--scheduler-file",
                    str(file),
                    "--nthreads",
                    "1",
                    "--no-nanny",
                    "--host",
                    "127.0.0.1",
                    "--no-dashboard",
                    "--death-timeout",
                    "60",
                ],
                log,
            )
        )
        return procs[-1]

    deadline = time.time() + 60
    while not file.exists() and time.time() < deadline:
        time.sleep(0.2)
    assert file.exists(), "scheduler did not start"
    try:
        yield str(file), worker
    finally:
        for p in reversed(procs):
            _kill(p)
        log.close()


def _spec(n):
    return trial_spec_from_dict(small_trial(n_patients=n, compounds=[ATENOLOL], duration_h=24))


def test_a_cluster_without_workers_is_refused_after_the_wait(scheduler, monkeypatch):
    monkeypatch.setattr(executors, "NO_WORKER_TIMEOUT_S", 2.0)
    t0 = time.monotonic()
    with pytest.raises(SpecError, match="at least one worker") as err:
        run_trial(_spec(200), executor="dask", scheduler=scheduler[0])
    assert time.monotonic() - t0 < 30
    assert "none at the start for 2 s" in str(err.value)


@pytest.mark.slow
def test_losing_a_worker_mid_run_changes_nothing_and_losing_all_stops_the_run(
    scheduler, monkeypatch
):
    file, start_worker = scheduler
    spec = _spec(6000)
    serial = run_trial(spec, executor="serial", chunk_size=500)
    first, second = start_worker(), start_worker()

    def kill_first(done, total):
        if done == 1:
            _kill(first)

    result = run_trial(spec, executor="dask", scheduler=file, chunk_size=500, callback=kill_first)
    assert_frame_equal(
        result.patients.reset_index(drop=True), serial.patients.reset_index(drop=True)
    )
    assert_frame_equal(result.summary, serial.summary)

    # now the last worker goes too: the run stops with the cluster named, not a traceback
    monkeypatch.setattr(executors, "NO_WORKER_TIMEOUT_S", 3.0)

    def kill_all(done, total):
        if done == 1:
            _kill(second)

    with pytest.raises(SpecError, match="it had none for 3 s; 1 of") as err:
        run_trial(spec, executor="dask", scheduler=file, chunk_size=500, callback=kill_all)
    assert "nothing was written" in str(err.value)
