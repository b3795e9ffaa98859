"""Normalized prediction distribution errors (NPDE; Brendel et al. 2006,
doi:10.1007/s11095-006-9067-5; Comets et al. 2008, doi:10.1016/j.cmpb.2007.12.002).

The model simulates the dataset ``K`` times. For each subject, its observations and every
simulated vector are decorrelated with the Cholesky factor of the simulated covariance
(``y* = L^-1 (y - E)``); the prediction discrepancy of an observation is the fraction of
simulated values below it (kept inside ``[1/(2K), 1 - 1/(2K)]``), and the NPDE is its normal
quantile. Under the model, NPDE are independent standard normal.

Observations below their quantification limit (``BLQ`` 1) have no value to compare: their NPDE
is NaN and they are left out of their subject's decorrelation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

from insilico.dataset.simulate import simulate_dataset
from insilico.fit.posterior import censored_records


def npde(model, dataset, *, n_replicates: int = 500, seed: int = 0) -> np.ndarray:
    """NPDE of every record (NaN where the record is not a quantified observation), shape (n,)."""
    table = dataset.table
    n = len(table)
    obs = (table["EVID"].to_numpy() == 0) & (table["MDV"].to_numpy() == 0)
    y = table["DV"].to_numpy(dtype=float)
    obs &= np.isfinite(y) & ~censored_records(table)
    sims = simulate_dataset(model, dataset, replicates=n_replicates, seed=seed)
    ysim = sims["DV"].to_numpy().reshape(n_replicates, n)
    out = np.full(n, np.nan)
    subject = table["SUBJECT"].to_numpy()
    K = n_replicates
    positions = np.flatnonzero(obs)
    for rows in pd.Series(positions).groupby(subject[obs]).groups.values():
        idx = positions[np.asarray(rows)]
        s = ysim[:, idx]
        mean = s.mean(axis=0)
        cov = np.atleast_2d(np.cov(s, rowvar=False))
        try:
            L = np.linalg.cholesky(cov)
        except np.linalg.LinAlgError:
            L = np.diag(np.sqrt(np.clip(np.diag(cov), 1e-300, None)))
        y_star = np.linalg.solve(L, y[idx] - mean)
        s_star = np.linalg.solve(L, (s - mean).T).T
        pde = (s_star < y_star).mean(axis=0)
        pde = np.clip(pde, 1.0 / (2 * K), 1.0 - 1.0 / (2 * K))
        out[idx] = norm.ppf(pde)
    return out
