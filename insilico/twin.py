"""Twin parameters: typical value x covariate effects x exp(eta), vectorized over patients.

For a patient with body weight ``WT`` and renal function ``RF`` (eGFR or creatinine clearance
relative to its reference value)::

    CL_i   = CL_typ (WT/70)^0.75 [(1 - fe) m_hep,i + fe RF_i] exp(eta_CL,i)
    Q_i    = Q_typ  (WT/70)^0.75 exp(eta_Q,i)            (also Vmax)
    V_i    = V_typ  (WT/70)^1    exp(eta_V,i)
    other  = typ exp(eta)                                (ka, tlag, ke0, kin, kout, EC50, ...)
    p_i    = expit(logit(p_typ) + eta)                   (fractions: f_bio, fu, imax)

Allometric exponents 0.75 and 1 (Holford 1996, doi:10.2165/00003088-199630050-00001); renal
scaling of the renally excreted fraction ``fe`` follows the FDA renal-impairment guidance's
proportional model (Dettli 1976). ``m_hep`` is the hook for multiplicative effects on
non-renal clearance (CYP phenotype, hepatic impairment) that the population layer fills.

``eta ~ N(0, Omega)`` with ``omega_k^2 = ln(1 + CV_k^2)`` (log-normal CV) and the stated
correlations; draws are keyed by ``(seed, purpose, fixed patient block)`` so a patient's
parameters do not depend on how the cohort is chunked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from insilico.errors import SpecError
from insilico.rng import draw_by_block

#: Parameters scaled like clearances (allometric exponent 0.75).
CLEARANCE_LIKE = ("cl_L_per_h", "q2_L_per_h", "q3_L_per_h", "vmax_mg_per_h")
#: Parameters scaled like volumes (allometric exponent 1).
VOLUME_LIKE = ("v1_L", "v2_L", "v3_L")
#: Parameters in (0, 1]: variability on the logit scale.
FRACTIONS = ("f_bio", "fu", "imax", "fe")

REFERENCE_WEIGHT_KG = 70.0
#: Reference renal function for RF = 1 (eGFR in mL/min/1.73 m2, CrCl in mL/min).
REFERENCE_RENAL = {"egfr_mL_min_1_73m2": 100.0, "crcl_mL_per_min": 100.0}


@dataclass(frozen=True)
class IIV:
    """Inter-individual variability.

    Attributes
    ----------
    cv : mapping of parameter name to CV (fraction, e.g. 0.3 for 30 %)
    correlation : mapping of ``(name_a, name_b)`` to the correlation of their etas
    """

    cv: Mapping[str, float] = field(default_factory=dict)
    correlation: Mapping[tuple[str, str], float] = field(default_factory=dict)

    def __post_init__(self):
        for k, v in self.cv.items():
            if not (np.isfinite(v) and v >= 0):
                raise SpecError(f"iiv.cv.{k}", v, "a CV >= 0 (fraction, 0.3 = 30 %)")
        for (a, b), r in self.correlation.items():
            if a not in self.cv or b not in self.cv:
                raise SpecError(f"iiv.correlation.{a},{b}", r, "names that have a CV")
            if not (-1 < r < 1):
                raise SpecError(f"iiv.correlation.{a},{b}", r, "-1 < r < 1")

    @property
    def names(self) -> list[str]:
        """Parameters with variability, in a fixed (sorted) order."""
        return sorted(self.cv)

    def omega(self) -> np.ndarray:
        """Covariance matrix of the etas (log scale)."""
        names = self.names
        sd = np.sqrt(np.log1p(np.array([self.cv[k] for k in names]) ** 2))
        corr = np.eye(len(names))
        for (a, b), r in self.correlation.items():
            i, j = names.index(a), names.index(b)
            corr[i, j] = corr[j, i] = r
        cov = corr * np.outer(sd, sd)
        try:
            np.linalg.cholesky(cov + 1e-300 * np.eye(len(names)))
        except np.linalg.LinAlgError:
            raise SpecError(
                "iiv.correlation", dict(self.correlation), "a positive-definite correlation matrix"
            ) from None
        return cov


def sample_etas(iiv: IIV, seed: int, purpose: str, start: int, stop: int) -> dict[str, np.ndarray]:
    """Etas for patient ids ``[start, stop)``, shape (stop - start,) each.

    Standard normals are drawn per fixed patient block (``insilico.rng``) and correlated with
    the Cholesky factor of ``Omega``.
    """
    names = iiv.names
    if not names:
        return {}
    cov = iiv.omega()
    # zero-variance parameters get exactly zero etas
    active = np.diag(cov) > 0
    L = np.zeros_like(cov)
    if active.any():
        L[np.ix_(active, active)] = np.linalg.cholesky(cov[np.ix_(active, active)])
    z = draw_by_block(seed, purpose, start, stop, lambda g, n: g.standard_normal((n, len(names))))
    # eta_i = sum_j L[i, j] z_j, accumulated in a fixed order for every patient. Not
    # ``z @ L.T``: a BLAS product may pick its kernel (hence its rounding) by the number of
    # rows, so a patient's etas could depend on how many patients are requested with it,
    # and its threads keep spinning on the other cores after each call (measured: 10 µs of
    # CPU per patient burned beside the simulation that followed).
    etas = {}
    for i, k in enumerate(names):
        eta = np.zeros(z.shape[0])
        for j in range(i + 1):
            if L[i, j] != 0.0:
                eta += L[i, j] * z[:, j]
        etas[k] = eta
    return etas


def _logit(p):
    return np.log(p) - np.log1p(-p)


def _expit(x):
    return 1.0 / (1.0 + np.exp(-x))


def individual_parameters(
    typical: Mapping[str, float],
    covariates: Mapping[str, np.ndarray],
    etas: Mapping[str, np.ndarray] | None = None,
    renal_covariate: str = "egfr_mL_min_1_73m2",
    nonrenal_cl_multiplier: np.ndarray | None = None,
    multipliers: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Individual parameters of a block of patients.

    Parameters
    ----------
    typical : mapping of str to float
        Typical values for a 70 kg adult with reference renal function. ``fe`` (fraction of
        CL excreted unchanged by the kidney, default 0) controls renal scaling.
    covariates : mapping of str to ndarray, shape (n,)
        At least ``weight_kg``; the ``renal_covariate`` column when ``fe > 0``.
    etas : mapping of str to ndarray, shape (n,), optional
        Random effects (from :func:`sample_etas`).
    renal_covariate : str
        ``"egfr_mL_min_1_73m2"`` or ``"crcl_mL_per_min"``.
    nonrenal_cl_multiplier : ndarray, shape (n,), optional
        Multiplies the non-renal part of CL (CYP phenotype, hepatic impairment).
    multipliers : mapping of str to ndarray, optional
        Extra multiplicative covariate effects on any parameter.

    Returns
    -------
    dict of str to ndarray, shape (n,)
    """
    weight = np.asarray(covariates["weight_kg"], dtype=float)
    n = weight.shape[0]
    if np.any(~np.isfinite(weight)) or np.any(weight <= 0):
        raise SpecError("covariates.weight_kg", float(np.nanmin(weight)), "weights > 0 kg")
    etas = etas or {}
    multipliers = multipliers or {}
    size = weight / REFERENCE_WEIGHT_KG
    fe = float(typical.get("fe", 0.0))
    if not 0.0 <= fe <= 1.0:
        raise SpecError("fe", fe, "0 <= fe <= 1")
    out: dict[str, np.ndarray] = {}
    for name, tv in typical.items():
        if name == "fe":
            continue
        tv = float(tv)
        if name in FRACTIONS:
            if not 0.0 < tv <= 1.0:
                raise SpecError(name, tv, "a fraction in (0, 1]")
            if name in etas and tv < 1.0:
                value = _expit(_logit(tv) + etas[name])
            else:
                value = np.full(n, tv)
        else:
            if not (np.isfinite(tv) and tv >= 0):
                raise SpecError(name, tv, "a finite value >= 0")
            value = np.full(n, tv)
            if name in CLEARANCE_LIKE:
                value = value * size**0.75
            elif name in VOLUME_LIKE:
                value = value * size
            if name == "cl_L_per_h":
                nonrenal = np.full(n, 1.0 - fe)
                if nonrenal_cl_multiplier is not None:
                    nonrenal = nonrenal * np.asarray(nonrenal_cl_multiplier, dtype=float)
                renal: float | np.ndarray = 0.0
                if fe > 0:
                    if renal_covariate not in covariates:
                        raise SpecError("covariates", renal_covariate, "a renal function column")
                    rf = np.asarray(covariates[renal_covariate], dtype=float)
                    renal = fe * rf / REFERENCE_RENAL[renal_covariate]
                value = value * (nonrenal + renal)
            if name in etas:
                value = value * np.exp(etas[name])
        if name in multipliers:
            value = value * np.asarray(multipliers[name], dtype=float)
        out[name] = value
    return out
