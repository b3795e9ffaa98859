"""Pharmacogenetic phenotypes: activity relative to normal metabolizers and CL multipliers.

The twin turns a patient's phenotype into a clearance multiplier for a compound whose fraction
of clearance by the enzyme is ``fm``::

    CL_patient / CL_NM = 1 - fm + fm * activity(phenotype)

(the standard fm-based scaling used for drug-drug interactions and pharmacogenetics, e.g.
Rowland & Matin, J Pharmacokinet Biopharm 1973;1:553, doi:10.1007/BF01059791).

Activity ratios (phenotype activity / NM activity) come from the CPIC activity-score systems:
the representative activity score of each phenotype divided by that of normal metabolizers.
They are population-typical values, not drug-specific measurements:

* CYP2D6 (Caudle KE et al., Clin Transl Sci 2020;13:116-124, doi:10.1111/cts.12692): activity
  score PM 0, IM 0.25-1 (representative 0.75), NM 1.25-2.25 (representative 1.75),
  UM > 2.25 (representative 3). Ratios: PM 0, IM 0.43, NM 1, UM 1.71. RM is not a CYP2D6
  phenotype; it is treated as NM.
* CYP2C19 (Lima JJ et al., Clin Pharmacol Ther 2021;109:1417-1423, doi:10.1002/cpt.2015):
  PM two no-function alleles (0), IM one no-function allele (0.5), NM (1), RM one *17
  increased-function allele (1.25), UM *17/*17 (1.5); the increased-function steps are an
  assumption (the *17 effect is modest and substrate-dependent).
* CYP2C9 (Theken KN et al., Clin Pharmacol Ther 2020;108:191-200, doi:10.1002/cpt.1830):
  activity score PM 0-0.5 (representative 0.25), IM 1-1.5 (1.25), NM 2. Ratios: PM 0.125,
  IM 0.625, NM 1. RM and UM are not CYP2C9 phenotypes; treated as NM.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from insilico.errors import SpecError

PHENOTYPES: tuple[str, ...] = ("PM", "IM", "NM", "RM", "UM")
GENES: tuple[str, ...] = ("cyp2d6", "cyp2c19", "cyp2c9")

#: Activity relative to normal metabolizers, per enzyme and phenotype (see module docstring).
ACTIVITY_RATIO: dict[str, dict[str, float]] = {
    "cyp2d6": {"PM": 0.0, "IM": 0.75 / 1.75, "NM": 1.0, "RM": 1.0, "UM": 3.0 / 1.75},
    "cyp2c19": {"PM": 0.0, "IM": 0.5, "NM": 1.0, "RM": 1.25, "UM": 1.5},
    "cyp2c9": {"PM": 0.125, "IM": 0.625, "NM": 1.0, "RM": 1.0, "UM": 1.0},
}

ACTIVITY_SOURCE: dict[str, str] = {
    "cyp2d6": "CPIC activity score, Caudle et al. 2020, doi:10.1111/cts.12692",
    "cyp2c19": "CPIC CYP2C19 phenotypes, Lima et al. 2021, doi:10.1002/cpt.2015",
    "cyp2c9": "CPIC CYP2C9 activity score, Theken et al. 2020, doi:10.1002/cpt.1830",
}


def _enzyme_key(enzyme: str) -> str:
    key = enzyme.strip().lower()
    if key not in ACTIVITY_RATIO:
        raise SpecError("enzyme", enzyme, f"one of {list(ACTIVITY_RATIO)}")
    return key


def phenotype_activity(phenotype, enzyme: str) -> np.ndarray:
    """Activity of each phenotype relative to normal metabolizers (NM = 1).

    Parameters
    ----------
    phenotype : array of str, shape (n,)
        Values among ``"PM", "IM", "NM", "RM", "UM"``.
    enzyme : str
        ``"cyp2d6"``, ``"cyp2c19"`` or ``"cyp2c9"`` (case-insensitive).
    """
    table = ACTIVITY_RATIO[_enzyme_key(enzyme)]
    codes = category_codes(phenotype, PHENOTYPES, f"{enzyme}_phenotype")
    values = np.array([table[p] for p in PHENOTYPES])
    return values[codes]


def category_codes(values, allowed: tuple[str, ...], field: str) -> np.ndarray:
    """Index of each value in ``allowed`` (hash-based; categorical input maps its codes)."""
    index = pd.Index(list(allowed))
    cat = getattr(values, "cat", None) if isinstance(values, pd.Series) else None
    if isinstance(values, pd.Categorical) or cat is not None:
        c = values if isinstance(values, pd.Categorical) else values.array
        lookup = np.append(index.get_indexer(c.categories), -1)  # code -1 (NaN) stays -1
        codes = lookup[np.asarray(c.codes)]
        arr = None
    else:
        arr = np.asarray(values, dtype=object)
        codes = index.get_indexer(pd.Index(arr.ravel(), dtype=object)).reshape(arr.shape)
    if (codes < 0).any():
        flat = np.asarray(values, dtype=object).ravel() if arr is None else arr.ravel()
        bad = flat[np.flatnonzero(codes.ravel() < 0)[0]]
        raise SpecError(field, bad, f"one of {list(allowed)}")
    return codes.astype(np.int64)


def phenotype_cl_multiplier(phenotype, fm: float, enzyme: str) -> np.ndarray:
    """Clearance multiplier ``1 - fm + fm * activity(phenotype)`` (dimensionless).

    Parameters
    ----------
    phenotype : array of str, shape (n,)
        Metabolizer phenotype per patient (``"PM"`` ... ``"UM"``).
    fm : float
        Fraction of the compound's clearance (in NM patients) due to ``enzyme``, in [0, 1].
    enzyme : str
        ``"cyp2d6"``, ``"cyp2c19"`` or ``"cyp2c9"``.

    Returns
    -------
    ndarray, shape (n,)
        ``CL_patient / CL_NM``; equals 1 for NM and for ``fm = 0``; ``1 - fm`` for a PM of an
        enzyme with no residual activity.
    """
    fm = float(fm)
    if not 0.0 <= fm <= 1.0:
        raise SpecError("fm", fm, "a fraction in [0, 1]")
    return 1.0 - fm + fm * phenotype_activity(phenotype, enzyme)
