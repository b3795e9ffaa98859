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

Observations below the lower limit of quantification (a ``BLQ``/``CENS`` flag or an ``LLOQ``
column, see :func:`insilico.dataset.read_dataset`) are handled as nlmixr2's and PsN's VPCs do:
an observation is below the limit when it is flagged or its ``DV`` is below its ``LLOQ``, and
a simulated value when it is below the ``LLOQ`` of its record; such values count as lower than
every quantified one, and a percentile that falls among them is reported as below the limit
(NaN) rather than given a value. The same censoring is applied to the percentiles of every
replicate and to their interval. Each bin also gets the observed fraction of observations
below the limit against the simulated interval of that fraction.
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import pandas as pd

from insilico.errors import SpecError
from insilico.fit.posterior import censored_records

PERCENTILES = (5.0, 50.0, 95.0)


def censored_percentiles(values: np.ndarray, below: np.ndarray, q, axis: int = -1) -> np.ndarray:
    """Percentiles of values some of which are only known to be below a limit.

    Parameters
    ----------
    values : ndarray
        The values (any where ``below``, NaN included, is ignored).
    below : ndarray of bool, same shape
        Values below their quantification limit: they rank under every other value.
    q : float or sequence of float
        Percentiles in [0, 100].
    axis : int
        Axis along which to compute.

    Returns
    -------
    ndarray
        As :func:`numpy.percentile` (linear interpolation) where the percentile falls among
        the quantified values, NaN where it falls among (or next to) the values below the
        limit. Without values below the limit, exactly :func:`numpy.percentile`.
    """
    values = np.asarray(values, dtype=float)
    below = np.asarray(below, dtype=bool)
    if not below.any():
        return np.percentile(values, q, axis=axis)
    known = values[~below]
    floor = (float(known.min()) if known.size else 0.0) - 1.0
    filled = np.where(below, floor, values)
    out = np.percentile(filled, q, axis=axis)
    lower = np.percentile(filled, q, axis=axis, method="lower")
    return np.where(lower <= floor, np.nan, out)


def _inside(observed: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Whether observed percentiles fall in simulated intervals, NaN meaning below the limit.

    Below the limit is lower than any value: an observed percentile below the limit is inside
    when the interval reaches below the limit; a quantified one needs ``hi`` above it and
    ``lo`` below it (or below the limit).
    """
    obs_below, lo_below, hi_below = np.isnan(observed), np.isnan(lo), np.isnan(hi)
    with np.errstate(invalid="ignore"):
        quantified = ~obs_below & ~hi_below & (lo_below | (lo <= observed)) & (observed <= hi)
    return np.where(obs_below, lo_below, quantified)


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

    Parameters
    ----------
    model : Model
        The model (typical values, variability, residual error) to simulate.
    dataset : Dataset
        The observations and the records to simulate at.
    n_replicates : int
        Simulated replicates of the dataset.
    n_bins : int
        Time bins holding about equal numbers of observations.
    seed : int
        Seed of the simulations.
    prediction_corrected : bool
        Scale observations, simulations and limits by ``PRED_bin / PRED`` (pcVPC).
    interval : float
        Coverage of the simulated intervals (0.9: the 5th-95th percentiles of replicates).

    Returns
    -------
    DataFrame
        Per bin and percentile: ``bin``, ``time_h`` (median time of the bin's observations),
        ``n``, ``percentile``, ``observed``, ``sim_lo``, ``sim_median``, ``sim_hi``,
        ``inside``. A percentile below the quantification limit is NaN. When the dataset has
        quantification limits (a ``BLQ`` or ``LLOQ`` column), also, per bin (repeated on its
        rows): ``lloq`` (median limit of the bin's observations, DV units, prediction
        corrected in a pcVPC), ``blq_observed`` (fraction of the bin's observations below
        the limit), ``blq_sim_lo``, ``blq_sim_median``, ``blq_sim_hi`` (the simulated
        fraction's interval over replicates) and ``blq_inside``.
    """
    from insilico.dataset.simulate import simulate_dataset

    table = dataset.table
    dv = table["DV"].to_numpy(dtype=float)
    flagged = censored_records(table)
    obs = (table["EVID"].to_numpy() == 0) & (table["MDV"].to_numpy() == 0)
    obs &= np.isfinite(dv) | flagged
    if not obs.any():
        raise SpecError("data", dataset.source, "records with observations (EVID 0, a DV)")
    if model.residual_error is None:
        raise SpecError("residual_error", None, "a residual error model to simulate observations")
    has_limits = "BLQ" in table or "LLOQ" in table
    lloq_all = table["LLOQ"].to_numpy(dtype=float) if "LLOQ" in table else np.full(len(dv), np.nan)
    sims = simulate_dataset(model, dataset, replicates=n_replicates, seed=seed)
    n = len(table)
    dv_sim = sims["DV"].to_numpy().reshape(n_replicates, n)[:, obs]
    pred = sims["PRED"].to_numpy()[:n][obs]
    y = dv[obs]
    lloq = lloq_all[obs]
    with np.errstate(invalid="ignore"):
        y_below = flagged[obs] | (y < lloq)
        sim_below = dv_sim < lloq[None, :]
    t = table["TIME"].to_numpy(dtype=float)[obs]
    edges = _bins(t, n_bins)
    which = np.searchsorted(edges, t, side="right") - 1
    rows = []
    a = 50 * (1 - interval)
    bounds = [a, 50.0, 100.0 - a]
    for b in range(len(edges) - 1):
        sel = which == b
        if sel.sum() < 3:
            continue
        yb = y[sel]
        sb = dv_sim[:, sel]
        lb = lloq[sel]
        if prediction_corrected:
            p = pred[sel]
            positive = p > 0
            # observations with no typical prediction (before any dose) stay uncorrected
            ref = np.median(p[positive]) if positive.any() else 1.0
            factor = np.where(positive, ref / np.where(positive, p, 1.0), 1.0)
            yb = yb * factor
            sb = sb * factor
            lb = lb * factor
        observed = censored_percentiles(yb, y_below[sel], PERCENTILES)
        simulated = censored_percentiles(sb, sim_below[:, sel], PERCENTILES, axis=1)
        # (3 percentiles, n_replicates); a replicate's percentile below the limit is NaN
        lo, med, hi = censored_percentiles(simulated, np.isnan(simulated), bounds, axis=1)
        inside = _inside(observed, lo, hi)
        extra = {}
        if has_limits:
            fraction = sim_below[:, sel].mean(axis=1)
            f_lo, f_med, f_hi = np.percentile(fraction, bounds)
            f_obs = float(y_below[sel].mean())
            finite = np.isfinite(lb)
            extra = {
                "lloq": float(np.median(lb[finite])) if finite.any() else float("nan"),
                "blq_observed": f_obs,
                "blq_sim_lo": float(f_lo),
                "blq_sim_median": float(f_med),
                "blq_sim_hi": float(f_hi),
                "blq_inside": bool(f_lo <= f_obs <= f_hi),
            }
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
                    "inside": bool(inside[k]),
                    **extra,
                }
            )
    return pd.DataFrame(rows)


def plot_vpc(vpc: pd.DataFrame, path, title: str = "VPC", ylabel: str = "DV") -> None:
    """A PNG of a VPC table: simulated intervals as bands, observed percentiles as lines.

    With quantification limits (the ``blq_*`` columns of :func:`vpc_table`), the limit is
    drawn as a dashed line, a band whose end is below the limit is drawn down to it, an
    observed percentile below the limit is left out, and a second panel shows the observed
    fraction of observations below the limit against its simulated interval.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    blq = "blq_observed" in vpc.columns
    if blq:
        fig, (ax, ax_blq) = plt.subplots(
            2, 1, figsize=(7, 6.5), dpi=110, sharex=True, gridspec_kw={"height_ratios": [3, 1.3]}
        )
    else:
        fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    colours: dict[Hashable, str] = {5.0: "tab:blue", 50.0: "tab:red", 95.0: "tab:blue"}
    for q, g in vpc.groupby("percentile"):
        c = colours.get(q, "grey")
        lo, hi = g["sim_lo"], g["sim_hi"]
        if blq:
            # an interval end below the quantification limit is drawn at the limit
            lo, hi = lo.fillna(g["lloq"]), hi.fillna(g["lloq"])
        ax.fill_between(g["time_h"], lo, hi, color=c, alpha=0.2, lw=0)
        ax.plot(g["time_h"], g["observed"], color=c, lw=1.8, label=f"observed P{q:g}")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if blq:
        per_bin = vpc.drop_duplicates("bin")
        if per_bin["lloq"].notna().any():
            ax.plot(per_bin["time_h"], per_bin["lloq"], color="k", lw=1, ls="--", label="LLOQ")
        ax_blq.fill_between(
            per_bin["time_h"],
            per_bin["blq_sim_lo"],
            per_bin["blq_sim_hi"],
            color="tab:grey",
            alpha=0.3,
            lw=0,
            label="simulated",
        )
        ax_blq.plot(
            per_bin["time_h"],
            per_bin["blq_observed"],
            color="k",
            lw=1.8,
            marker="o",
            ms=3,
            label="observed",
        )
        ax_blq.set_ylim(-0.02, 1.02)
        ax_blq.set_ylabel("fraction < LLOQ")
        ax_blq.set_xlabel("time (h)")
        ax_blq.legend(fontsize=8)
    else:
        ax.set_xlabel("time (h)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
