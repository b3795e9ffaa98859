"""AppTest runs the app script as ``__main__`` and leaves it in ``sys.modules``; a later
``LocalCluster`` (spawned processes) would then re-run the app in every worker. Restore the
real ``__main__`` after each app test.

Shared fixtures: a runs folder with two small runs (serial executor, measured-PK compounds).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "app" / "streamlit_app.py"


@pytest.fixture(autouse=True)
def _restore_main_module():
    main = sys.modules.get("__main__")
    yield
    if main is not None:
        sys.modules["__main__"] = main


@pytest.fixture(autouse=True)
def _fresh_app_server():
    """Each test is a new app server: no design remembered, no jobs started before."""
    from insilico.ui import design, jobs

    design._LAST_DESIGN = None
    with jobs._STARTED_LOCK:
        jobs._STARTED.clear()
    yield


@pytest.fixture(scope="session")
def runs_root(tmp_path_factory):
    """Two complete runs (seeds 1 and 2) of a small paired trial under one folder."""
    from insilico.engine.run import run_and_write
    from insilico.trial.examples import ATENOLOL, PROPRANOLOL, small_trial
    from insilico.trial.spec import trial_spec_from_dict

    root = tmp_path_factory.mktemp("runs")
    for seed in (1, 2):
        data = small_trial(n_patients=100, seed=seed, compounds=[ATENOLOL, PROPRANOLOL])
        data["compounds"][1]["herg_ic50_uM"] = 3.0
        run_and_write(root=root, spec=trial_spec_from_dict(data), executor="serial")
    return root
