from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / ".." / "shared" / "data"
COHORTS = REPO / "cohorts"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (DATA / "population_nhanes_2013_2018_individuals.csv").is_file():
        pytest.skip(f"reference data not found at {DATA} (../shared/data next to the repo)")
    return DATA
