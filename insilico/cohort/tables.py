"""The shipped population tables (``insilico/data/population``) as numpy arrays.

The tables are derived from ``../shared/data`` by ``scripts/derive_population_tables.py``; see
``insilico/data/population/SOURCE.md``. Nothing here reads ``../shared`` at run time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import ndtri

from insilico.cohort.pgx import GENES, PHENOTYPES
from insilico.cohort.spec import ANCESTRY_GROUPS, RACE_GROUPS

DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "population"

AGE_BANDS: tuple[tuple[int, int], ...] = (
    (18, 29),
    (30, 39),
    (40, 49),
    (50, 59),
    (60, 69),
    (70, 79),
)
#: Copula variables, in this order.
COPULA_VARIABLES = ("age_years", "weight_kg", "height_cm", "serum_creatinine_mg_dL")
#: Marginal variables (index into ``PopulationTables.log_knots`` axis 1).
MARGINAL_VARIABLES = ("weight_kg", "height_cm", "serum_creatinine_mg_dL")
SEXES = ("F", "M")
N_BANDS = len(AGE_BANDS)
N_RACES = len(RACE_GROUPS)


def band_index(age_years) -> np.ndarray:
    """Index of the 10-year age band (18-29, 30-39, ..., 70-79) of whole-year ages."""
    return np.clip((np.asarray(age_years, dtype=np.int64) - 20) // 10, 0, N_BANDS - 1)


def stratum_index(sex_code, race_code, band) -> np.ndarray:
    """Marginal stratum: sex x race x age band."""
    return (np.asarray(sex_code) * N_RACES + np.asarray(race_code)) * N_BANDS + np.asarray(band)


@dataclass(frozen=True)
class PopulationTables:
    """Arrays derived from the shipped tables.

    Attributes
    ----------
    cell_sex, cell_race, cell_age : ndarray, shape (n_cells,)
        Sex code (0 F, 1 M), race code (index into ``RACE_GROUPS``), whole-year age.
    cell_fraction : ndarray, shape (n_cells,)
        Survey-weighted fraction of US adults 18-79 in the cell.
    cell_z_age : ndarray, shape (n_cells,)
        Normal score of the cell's age within its sex x race x band stratum (mid-rank).
    z_knots : ndarray, shape (n_knots,)
        Standard-normal quantiles of the marginal probabilities.
    log_knots : ndarray, shape (n_strata, 3, n_knots)
        log of the weighted quantiles of weight, height, creatinine per stratum.
    corr : ndarray, shape (2 * n_bands, 4, 4)
        Copula correlation per sex x band (index ``sex * n_bands + band``).
    pgx_freq : dict of str to ndarray, shape (n_ancestries, 5)
        Phenotype frequencies (columns ``PHENOTYPES``) per ancestry (``ANCESTRY_GROUPS``).
    ancestry_of_race : ndarray, shape (5,)
        Default ancestry code for each race code.
    """

    cell_sex: np.ndarray
    cell_race: np.ndarray
    cell_age: np.ndarray
    cell_fraction: np.ndarray
    cell_z_age: np.ndarray
    z_knots: np.ndarray
    log_knots: np.ndarray
    corr: np.ndarray
    pgx_freq: dict[str, np.ndarray]
    ancestry_of_race: np.ndarray


def _mid_rank_z(weights: np.ndarray) -> np.ndarray:
    cw = np.cumsum(weights)
    return ndtri((cw - 0.5 * weights) / cw[-1])


@lru_cache(maxsize=1)
def load_population_tables(data_dir: str | None = None) -> PopulationTables:
    """Read and index the shipped tables (cached)."""
    d = Path(data_dir) if data_dir else DATA_DIR
    demo = pd.read_csv(d / "nhanes_demographics.csv")
    demo = demo.sort_values(["sex", "race_ethnicity", "age_years"], kind="stable")
    sex = demo["sex"].map({s: i for i, s in enumerate(SEXES)}).to_numpy(np.int64)
    race = demo["race_ethnicity"].map({r: i for i, r in enumerate(RACE_GROUPS)}).to_numpy(np.int64)
    age = demo["age_years"].to_numpy(np.int64)
    frac = demo["fraction"].to_numpy(float)
    frac = frac / frac.sum()
    strat = stratum_index(sex, race, band_index(age))
    z_age = np.empty(len(demo))
    for s in np.unique(strat):
        idx = np.flatnonzero(strat == s)  # already sorted by age
        z_age[idx] = _mid_rank_z(frac[idx])

    marg = pd.read_csv(d / "nhanes_marginals.csv")
    qcols = [c for c in marg.columns if c.startswith("q")]
    probs = np.array([float(c[1:]) for c in qcols])
    n_strata = 2 * N_RACES * N_BANDS
    log_knots = np.full((n_strata, len(MARGINAL_VARIABLES), len(qcols)), np.nan)
    m_sex = marg["sex"].map({s: i for i, s in enumerate(SEXES)}).to_numpy(np.int64)
    m_race = (
        marg["race_ethnicity"].map({r: i for i, r in enumerate(RACE_GROUPS)}).to_numpy(np.int64)
    )
    m_strat = stratum_index(m_sex, m_race, band_index(marg["age_min_years"].to_numpy()))
    m_var = (
        marg["variable"].map({v: i for i, v in enumerate(MARGINAL_VARIABLES)}).to_numpy(np.int64)
    )
    logq = np.log(marg[qcols].to_numpy(float))
    # strictly increasing knots so that the quantile map is invertible
    logq = np.maximum.accumulate(logq + 1e-9 * np.arange(len(qcols)), axis=1)
    log_knots[m_strat, m_var] = logq
    if np.isnan(log_knots).any():
        raise RuntimeError(f"{d / 'nhanes_marginals.csv'}: missing strata")

    cop = json.loads((d / "nhanes_copula.json").read_text())
    corr = np.full((2 * N_BANDS, 4, 4), np.nan)
    for s in cop["strata"]:
        i = SEXES.index(s["sex"]) * N_BANDS + int(band_index(s["age_min_years"]))
        corr[i] = np.asarray(s["corr"], dtype=float)

    pgx = pd.read_csv(d / "pgx_phenotype_frequencies.csv")
    pgx_freq = {}
    for gene in GENES:
        sub = pgx[pgx["gene"].str.lower() == gene]
        f = np.zeros((len(ANCESTRY_GROUPS), len(PHENOTYPES)))
        for a, p, v in zip(sub["ancestry"], sub["phenotype"], sub["frequency"], strict=True):
            f[ANCESTRY_GROUPS.index(a), PHENOTYPES.index(p)] = v
        pgx_freq[gene] = f / f.sum(axis=1, keepdims=True)
    amap = pd.read_csv(d / "pgx_ancestry_map.csv")
    anc = np.zeros(N_RACES, dtype=np.int64)
    for r, a in zip(amap["race_ethnicity"], amap["ancestry"], strict=True):
        anc[RACE_GROUPS.index(r)] = ANCESTRY_GROUPS.index(a)

    return PopulationTables(
        cell_sex=sex,
        cell_race=race,
        cell_age=age,
        cell_fraction=frac,
        cell_z_age=z_age,
        z_knots=ndtri(probs),
        log_knots=log_knots,
        corr=corr,
        pgx_freq=pgx_freq,
        ancestry_of_race=anc,
    )


def quantile_map(z: np.ndarray, stratum: np.ndarray, var: int, t: PopulationTables) -> np.ndarray:
    """Marginal value for normal score ``z`` in each row's stratum.

    Piecewise-linear interpolation of log(quantile) against the knots' normal scores; beyond
    the outer knots (probabilities 0.001 and 0.999) the line through the knots at 0.01/0.001
    (lower) or 0.99/0.999 (upper) is extended, a log-normal-like tail.
    """
    zk = t.z_knots
    k = len(zk)
    j = np.clip(np.searchsorted(zk, z) - 1, 0, k - 2)
    lo = np.where(z < zk[0], 0, np.where(z > zk[-1], k - 3, j))
    hi = np.where(z < zk[0], 2, np.where(z > zk[-1], k - 1, j + 1))
    y = t.log_knots[stratum, var]
    y_lo = np.take_along_axis(y, lo[:, None], axis=1)[:, 0]
    y_hi = np.take_along_axis(y, hi[:, None], axis=1)[:, 0]
    frac = (z - zk[lo]) / (zk[hi] - zk[lo])
    return np.exp(y_lo + frac * (y_hi - y_lo))


def inverse_quantile_map(x: float, stratum: int, var: int, t: PopulationTables) -> float:
    """Normal score whose :func:`quantile_map` is ``x`` (scalar; ``x <= 0`` gives -inf)."""
    if x <= 0:
        return -np.inf
    if not np.isfinite(x):
        return np.inf
    zk = t.z_knots
    y = t.log_knots[stratum, var]
    lx = np.log(x)
    if lx < y[0]:
        a, b = 0, 2
    elif lx > y[-1]:
        a, b = len(zk) - 3, len(zk) - 1
    else:
        return float(np.interp(lx, y, zk))
    return float(zk[a] + (lx - y[a]) * (zk[b] - zk[a]) / (y[b] - y[a]))
