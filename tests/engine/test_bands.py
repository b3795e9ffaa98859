"""Percentile bands from the histogram accumulators agree with exact percentiles within the
stated resolution (the exact order statistic lies in the reported bin)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from insilico.engine.bands import (
    BAND_PERCENTILES,
    accumulate,
    bin_edges,
    bin_index,
    histogram_percentiles,
)
from insilico.engine.merge import Merger
from insilico.engine.plan import plan_tasks
from insilico.engine.task import run_task
from insilico.io.compounds import resolve_compounds
from insilico.trial.block import simulate_arm_block
from insilico.trial.context import BIOMARKER_GRID, CONC_GRID, build_context
from insilico.trial.examples import small_trial
from insilico.trial.spec import trial_spec_from_dict


def exact_percentile(x: np.ndarray, q: int) -> float:
    """Inverted-CDF percentile: the k-th smallest value, k = ceil(q n / 100) >= 1."""
    s = np.sort(x)
    k = max(-((-q * s.size) // 100), 1)
    return float(s[k - 1])


def within_resolution(grid, reported, exact):
    """The reported value is the representative of the bin that holds the exact value."""
    b = int(bin_index(grid, np.array([exact]))[0])
    lo, hi = bin_edges(grid)
    if b == 0:
        return reported == (0.0 if grid.scale == "log" else grid.lo)
    if b == grid.n_bins - 1:
        return reported == (10.0**grid.hi if grid.scale == "log" else grid.hi)
    ok_bin = lo[b] <= reported < hi[b]
    if grid.scale == "log":
        return ok_bin and abs(np.log10(reported / exact)) <= grid.width / 2 + 1e-12
    return ok_bin and abs(reported - exact) <= grid.width / 2 + 1e-9


@settings(deadline=None, max_examples=60)
@given(
    n=st.integers(1, 400),
    mu=st.floats(-4, 2),
    sd=st.floats(0.01, 2),
    zeros=st.floats(0, 0.3),
    seed=st.integers(0, 2**32 - 1),
)
def test_log_grid_percentiles_within_resolution(n, mu, sd, zeros, seed):
    rng = np.random.default_rng(seed)
    x = 10 ** rng.normal(mu, sd, size=(n, 3))
    x[rng.random((n, 3)) < zeros] = 0.0
    pct = histogram_percentiles(CONC_GRID, accumulate(CONC_GRID, x))
    for t in range(3):
        for j, q in enumerate(BAND_PERCENTILES):
            assert within_resolution(CONC_GRID, pct[t, j], exact_percentile(x[:, t], q))


@settings(deadline=None, max_examples=60)
@given(n=st.integers(1, 400), seed=st.integers(0, 2**32 - 1))
def test_linear_grid_percentiles_within_resolution(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(-20, 40, size=(n, 2))
    pct = histogram_percentiles(BIOMARKER_GRID, accumulate(BIOMARKER_GRID, x))
    for t in range(2):
        for j, q in enumerate(BAND_PERCENTILES):
            assert within_resolution(BIOMARKER_GRID, pct[t, j], exact_percentile(x[:, t], q))


def test_merging_counts_equals_counting_everything():
    rng = np.random.default_rng(3)
    x = 10 ** rng.normal(-1, 1, size=(1000, 4))
    whole = accumulate(CONC_GRID, x)
    parts = accumulate(CONC_GRID, x[:317]) + accumulate(CONC_GRID, x[317:])
    np.testing.assert_array_equal(whole, parts)
    assert whole.dtype == np.int64 and whole.sum() == x.size


def test_resolution_statement():
    # 50 bins per decade: adjacent edges differ by 10**0.02 = 4.7 %, centres within 2.3 %
    lo, hi = bin_edges(CONC_GRID)
    np.testing.assert_allclose(hi[1:-1] / lo[1:-1], 10**0.02, rtol=1e-12)


def test_run_bands_match_exact_percentiles_of_the_time_courses():
    """Small run: bands from the merged task accumulators vs exact percentiles of the full
    time courses of the same patients (simulated again block by block)."""
    spec = trial_spec_from_dict(small_trial(n_patients=1500, duration_h=24))
    profiles, failed, _ = resolve_compounds(spec.compounds)
    ctx, _ = build_context(spec, profiles, failed)
    tasks = plan_tasks(len(ctx.arms), ctx.n_patients, 1024)
    merger = Merger(ctx, len(tasks))
    for i, task in enumerate(tasks):
        merger.add(i, run_task(ctx, task))
    bands = merger.bands()
    arm = ctx.arms[1]
    conc = np.vstack(
        [simulate_arm_block(ctx, arm, lo, min(lo + 1024, 1500))[1] for lo in (0, 1024)]
    )
    bio = np.vstack([simulate_arm_block(ctx, arm, lo, min(lo + 1024, 1500))[2] for lo in (0, 1024)])
    checked = 0
    for grid, values in ((CONC_GRID, conc), (BIOMARKER_GRID, bio)):
        b = bands[(bands["arm"] == arm.name) & (bands["quantity"] == grid.quantity)]
        assert len(b) == ctx.output_times_h.size
        for t in range(ctx.output_times_h.size):
            for q in BAND_PERCENTILES:
                rep = float(b[f"p{q}"].iloc[t])
                assert within_resolution(grid, rep, exact_percentile(values[:, t], q)), (t, q)
                checked += 1
    assert checked == 2 * 5 * ctx.output_times_h.size


def test_empty_time_gives_nan():
    counts = np.zeros((1, CONC_GRID.n_bins), dtype=np.int64)
    assert np.isnan(histogram_percentiles(CONC_GRID, counts)).all()


@pytest.mark.parametrize("value, expected_bin", [(0.0, 0), (1e-9, 0), (1e5, -1), (np.nan, 0)])
def test_under_and_overflow(value, expected_bin):
    b = bin_index(CONC_GRID, np.array([value]))[0]
    assert b == (CONC_GRID.n_bins - 1 if expected_bin == -1 else expected_bin)
