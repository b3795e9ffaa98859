"""AppTest runs the app script as ``__main__`` and leaves it in ``sys.modules``; a later
``LocalCluster`` (spawned processes) would then re-run the app in every worker. Restore the
real ``__main__`` after each app test."""

from __future__ import annotations

import sys

import pytest


@pytest.fixture(autouse=True)
def _restore_main_module():
    main = sys.modules.get("__main__")
    yield
    if main is not None:
        sys.modules["__main__"] = main
