"""The task function run by every executor (lives in the package so Dask workers import it)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from insilico.engine.bands import accumulate
from insilico.engine.plan import Task
from insilico.rng import PATIENT_BLOCK
from insilico.trial.block import simulate_arm_block
from insilico.trial.context import TrialContext


@dataclass
class Partial:
    """What one task returns.

    Attributes
    ----------
    task : Task
    rows : pandas.DataFrame
        Per-patient summary rows of the task's patients, sorted by ``patient_id``.
    conc_counts : ndarray of int64, shape (n_times, n_bins)
        Band accumulator of the concentration.
    biomarker_counts : ndarray of int64, shape (n_times, n_bins) or None
    """

    task: Task
    rows: pd.DataFrame
    conc_counts: np.ndarray
    biomarker_counts: np.ndarray | None


def run_task(ctx: TrialContext, task: Task) -> Partial:
    """Simulate one task, one fixed patient block at a time (chunking never changes numbers)."""
    arm = ctx.arms[task.arm]
    frames = []
    conc_counts = np.zeros((ctx.output_times_h.size, ctx.conc_grid.n_bins), dtype=np.int64)
    bio_counts = (
        np.zeros((ctx.output_times_h.size, ctx.biomarker_grid.n_bins), dtype=np.int64)
        if ctx.has_biomarker
        else None
    )
    lo = task.start
    while lo < task.stop:
        hi = min((lo // PATIENT_BLOCK + 1) * PATIENT_BLOCK, task.stop)
        rows, conc, bio = simulate_arm_block(ctx, arm, lo, hi)
        frames.append(rows)
        conc_counts += accumulate(ctx.conc_grid, conc)
        if bio_counts is not None and bio is not None:
            bio_counts += accumulate(ctx.biomarker_grid, bio)
        lo = hi
    rows = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return Partial(task, rows, conc_counts, bio_counts)
