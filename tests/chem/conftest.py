"""Shared fixtures for the chem tests."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """The shared reference-data folder; skip the test when it is absent."""
    if not (DATA / "human_pk_lombardo2018.csv").is_file():
        pytest.skip(f"shared reference data not found at {DATA}")
    return DATA
