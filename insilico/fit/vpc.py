"""Visual predictive checks: does a model reproduce the spread of the observations?

The model simulates the dataset ``n_replicates`` times (new random effects and residual errors
each time, :func:`insilico.dataset.simulate.simulate_dataset`). Observations are binned by
time (bins with equal numbers of observations, or given edges); in each bin the observed 5th,
50th and 95th percentiles are compared with the distribution of the same percentiles over
the replicates (their 5th-95th percentile interval by default). The prediction-corrected
VPC (Bergstrand et al. 2011, doi:10.1208/s12248-011-9255-z) first scales every observation
and simulation by the typical prediction of its bin over its own (``PRED_bin / PRED``), so
that doses and covariates that differ between subjects do not widen the intervals.

The table has one row per bin and percentile; ``inside`` says whether the observed
percentile falls in the simulated interval.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from insilico.errors import SpecError

PERCENTILES = (5.0, 50.0, 95.0)


def _bins(t: np.ndarray, n_bins: int) -> np.ndarray:
    """Edges of ``n_bins`` bins holding about equal numbers of the times ``t``."""
    edges = np.unique(np.quantile(t, np.linspace(0, 1, n_bins + 1)))
    edges[0] = -np.inf
    edges[-1] = np.inf
    return edges


def vpc_table(
    model,
    dataset,
    *,
    n_replicates: int = 200,
    n_bins: int = 8,
    seed: int = 0,
    prediction_corrected: bool = False,
    interval: float = 0.9,
) -> pd.DataFrame:
    """The VPC of ``model`` against the observations of ``dataset``.

    Returns
    -------
    DataFrame
        Per bin and percentile: ``bin``, ``time_h`` (median time of the bin's observations),
        ``n``, ``percentile``, ``observed``, ``sim_lo``, ``sim_median``, ``sim_hi``,
        ``inside``.
    """
    from insilico.dataset.simulate import simulate_dataset

    table = dataset.table
    obs = (table["EVID"].to_numpy() == 0) & (table["MDV"].to_numpy() == 0)
    obs &= np.isfinite(table["DV"].to_numpy(dtype=float))
    if not obs.any():
        raise SpecError("data", dataset.source, "records with observations (EVID 0, a DV)")
    if model.residual_error is None:
        raise SpecError("residual_error", None, "a residual error model to simulate observations")
    sims = simulate_dataset(model, dataset, replicates=n_replicates, seed=seed)
    n = len(table)
    dv_sim = sims["DV"].to_numpy().reshape(n_replicates, n)[:, obs]
    pred = sims["PRED"].to_numpy()[:n][obs]
    y = table["DV"].to_numpy(dtype=float)[obs]
    t = table["TIME"].to_numpy(dtype=float)[obs]
    edges = _bins(t, n_bins)
    which = np.searchsorted(edges, t, side="right") - 1
    rows = []
    a = 50 * (1 - interval)
    for b in range(len(edges) - 1):
        sel = which == b
        if sel.sum() < 3:
            continue
        yb = y[sel]
        sb = dv_sim[:, sel]
        if prediction_corrected:
            p = pred[sel]
            positive = p > 0
            # observations with no typical prediction (before any dose) stay uncorrected
            ref = np.median(p[positive]) if positive.any() else 1.0
            factor = np.where(positive, ref / np.where(positive, p, 1.0), 1.0)
            yb = yb * factor
            sb = sb * factor
        observed = np.percentile(yb, PERCENTILES)
        simulated = np.percentile(sb, PERCENTILES, axis=1)  # (3, n_replicates)
        lo, med, hi = np.percentile(simulated, [a, 50.0, 100.0 - a], axis=1)
        for k, q in enumerate(PERCENTILES):
            rows.append(
                {
                    "bin": b,
                    "time_h": float(np.median(t[sel])),
                    "n": int(sel.sum()),
                    "percentile": q,
                    "observed": float(observed[k]),
                    "sim_lo": float(lo[k]),
                    "sim_median": float(med[k]),
                    "sim_hi": float(hi[k]),
                    "inside": bool(lo[k] <= observed[k] <= hi[k]),
                }
            )
    return pd.DataFrame(rows)


def plot_vpc(vpc: pd.DataFrame, path, title: str = "VPC", ylabel: str = "DV") -> None:
    """A PNG of a VPC table: simulated intervals as bands, observed percentiles as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    colours = {5.0: "tab:blue", 50.0: "tab:red", 95.0: "tab:blue"}
    for q, g in vpc.groupby("percentile"):
        c = colours.get(q, "grey")
        ax.fill_between(g["time_h"], g["sim_lo"], g["sim_hi"], color=c, alpha=0.2, lw=0)
        ax.plot(g["time_h"], g["observed"], color=c, lw=1.8, label=f"observed P{q:g}")
    ax.set_xlabel("time (h)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
