"""What the client keeps per patient: only the summary columns, in memory of their own."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from insilico.engine.memory import release_free_memory
from insilico.engine.merge import slim
from insilico.results.summary import arm_groups


def _rows(n: int = 1000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "arm": np.repeat(["a:low", "a:high"], n // 2),
            "compound_id": "a",
            "regimen": np.repeat(["low", "high"], n // 2),
            "patient_id": np.tile(np.arange(n // 2), 2),
            "weight_kg": rng.normal(80, 10, n),  # a covariate: dropped
            "cl_L_per_h": rng.lognormal(1, 0.3, n),  # a parameter: dropped
            "cmax_mg_per_L": rng.lognormal(0, 0.3, n),
            "auc_last_mg_h_per_L": rng.lognormal(2, 0.3, n),
            "ae_nausea_prob": rng.uniform(0, 1, n),  # a probability: dropped
            "ae_nausea": rng.uniform(0, 1, n) < 0.2,
        }
    )


def test_slim_keeps_summary_columns_in_their_own_memory():
    rows = _rows()
    kept = slim(rows, {"arm": ["a:low", "a:high"], "regimen": ["low", "high"]})
    assert list(kept.columns) == [
        "arm",
        "compound_id",
        "regimen",
        "patient_id",
        "cmax_mg_per_L",
        "auc_last_mg_h_per_L",
        "ae_nausea",
    ]
    # no view into the rows' float block (which would keep the dropped columns alive)
    for col in ("cmax_mg_per_L", "auc_last_mg_h_per_L"):
        assert not np.shares_memory(kept[col].to_numpy(), rows[col].to_numpy())
        np.testing.assert_array_equal(kept[col].to_numpy(), rows[col].to_numpy())
    assert isinstance(kept["arm"].dtype, pd.CategoricalDtype)
    assert list(kept["arm"].cat.categories) == ["a:low", "a:high"]
    assert (kept["arm"].astype(str) == rows["arm"]).all()


def test_arm_groups_equal_groupby_for_contiguous_and_shuffled_rows():
    rows = _rows()
    for frame in (rows, rows.sample(frac=1.0, random_state=1)):
        got = arm_groups(frame)
        want = dict(list(frame.groupby("arm", sort=False)))
        assert list(got) == list(want)
        for k in want:
            pd.testing.assert_frame_equal(got[k], want[k])
    assert arm_groups(rows.iloc[:0]) == {}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc_trim is Linux")
def test_freed_heap_memory_can_be_returned_on_linux():
    assert release_free_memory() is True
