"""Between-subject (IIV) and between-occasion (IOV) variability: log-normal random effects.

An individual parameter is ``P_i = TV_i · exp(eta_i + kappa_io)``, with
``eta_i ~ N(0, Omega)`` per subject and ``kappa_io ~ N(0, diag(iov))`` per subject and
occasion (Karlsson & Sheiner 1993, doi:10.1007/BF01113502).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from insilico.errors import SpecError
from insilico.model.spec import Model
from insilico.rng import draw_by_block


def covariance_factor(cov: np.ndarray) -> np.ndarray:
    """A matrix ``L`` with ``L @ L.T == cov`` for a positive semi-definite ``cov``.

    Cholesky on the rows with non-zero variance; an eigen-decomposition when that block is
    singular. Rows with zero variance are zero.
    """
    cov = np.asarray(cov, dtype=float)
    k = cov.shape[0]
    out = np.zeros((k, k))
    pos = np.flatnonzero(np.diag(cov) > 0)
    if pos.size == 0:
        return out
    sub = cov[np.ix_(pos, pos)]
    try:
        factor = np.linalg.cholesky(sub)
    except np.linalg.LinAlgError:
        w, v = np.linalg.eigh(sub)
        factor = v * np.sqrt(np.clip(w, 0.0, None))
    out[np.ix_(pos, pos)] = factor
    return out


def sample_eta(model: Model, n: int, rng: np.random.Generator) -> np.ndarray:
    """Draw etas for ``n`` subjects.

    Parameters
    ----------
    model : Model
        Its :meth:`~insilico.model.spec.Model.omega_matrix` is the covariance.
    n : int
        Number of subjects.
    rng : numpy.random.Generator
        Source of the draws; row ``i`` depends only on the first ``i + 1`` rows' draws, so a
        larger ``n`` extends a smaller one.

    Returns
    -------
    ndarray, shape (n, n_eta)
        Columns in :meth:`~insilico.model.spec.Model.eta_names` order (log scale).
    """
    omega = model.omega_matrix()
    k = omega.shape[0]
    if k == 0:
        return np.zeros((n, 0))
    z = rng.standard_normal((n, k))
    return z @ covariance_factor(omega).T


def sample_eta_for_patients(
    model: Model, seed: int, start: int, stop: int, purpose: str | None = None
) -> np.ndarray:
    """Etas of patients ``start <= i < stop``, the same whatever the range or chunking.

    Parameters
    ----------
    model : Model
        The model.
    seed : int
        The run's seed.
    start, stop : int
        Patient id range.
    purpose : str, optional
        Stream label; ``"iiv:<model name>"`` by default.

    Returns
    -------
    ndarray, shape (stop - start, n_eta)
    """
    label = purpose if purpose is not None else f"iiv:{model.name}"
    return draw_by_block(seed, label, start, stop, lambda g, m: sample_eta(model, m, g))


def apply_eta(
    params: Mapping[str, np.ndarray], model: Model, eta: np.ndarray
) -> dict[str, np.ndarray]:
    """Individual values ``P · exp(eta)`` for the model's IIV parameters.

    Parameters
    ----------
    params : mapping of str to ndarray, shape (n,)
        Typical values (for example from
        :func:`~insilico.model.covariates.typical_parameters`); not modified.
    model : Model
        Gives the eta order.
    eta : ndarray, shape (n, n_eta) or (n_eta,)
        Etas, columns in :meth:`~insilico.model.spec.Model.eta_names` order; a single row
        applies to every record.

    Returns
    -------
    dict of str to ndarray
        A new mapping; parameters without IIV are passed through.
    """
    return _apply_log_normal(params, model.eta_names(), eta, "eta")


def sample_kappa(model: Model, n_occasions: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Draw between-occasion effects.

    Parameters
    ----------
    model : Model
        Its ``iov`` variances (log scale).
    n_occasions : int
        Occasions per subject.
    n : int
        Number of subjects.
    rng : numpy.random.Generator
        Source of the draws.

    Returns
    -------
    ndarray, shape (n, n_occasions, n_iov)
        Independent normal draws, columns in :meth:`~insilico.model.spec.Model.iov_names`
        order.
    """
    sd = np.sqrt(model.iov_variances())
    if sd.size == 0:
        return np.zeros((n, n_occasions, 0))
    return rng.standard_normal((n, n_occasions, sd.size)) * sd


def occasion_kappa(kappa: np.ndarray, occasion: np.ndarray) -> np.ndarray:
    """Each record's kappas for its occasion.

    Parameters
    ----------
    kappa : ndarray, shape (n, n_occasions, n_iov)
        From :func:`sample_kappa`.
    occasion : ndarray of int, shape (n,)
        Occasion index of each record, ``0 <= occasion < n_occasions`` (0-based).

    Returns
    -------
    ndarray, shape (n, n_iov)
    """
    occasion = np.asarray(occasion)
    n_occ = kappa.shape[1]
    if occasion.shape != (kappa.shape[0],) or occasion.dtype.kind not in "iu":
        raise SpecError("occasion", occasion.shape, f"integers, shape ({kappa.shape[0]},)")
    if occasion.size and (occasion.min() < 0 or occasion.max() >= n_occ):
        raise SpecError("occasion", int(occasion.max()), f"indices in [0, {n_occ - 1}]")
    return kappa[np.arange(kappa.shape[0]), occasion]


def apply_kappa(
    params: Mapping[str, np.ndarray], model: Model, kappa: np.ndarray
) -> dict[str, np.ndarray]:
    """Values ``P · exp(kappa)`` for the model's IOV parameters.

    Parameters
    ----------
    params : mapping of str to ndarray, shape (n,)
        Individual values; not modified.
    model : Model
        Gives the kappa order.
    kappa : ndarray, shape (n, n_iov) or (n_iov,)
        Kappas of each record's occasion (see :func:`occasion_kappa`).

    Returns
    -------
    dict of str to ndarray
    """
    return _apply_log_normal(params, model.iov_names(), kappa, "kappa")


def _apply_log_normal(params, names, effects, what: str) -> dict[str, np.ndarray]:
    effects = np.asarray(effects, dtype=float)
    if effects.ndim not in (1, 2) or effects.shape[-1] != len(names):
        raise SpecError(
            what,
            effects.shape,
            f"shape (n, {len(names)}) or ({len(names)},), columns {list(names)}",
        )
    out = dict(params)
    for i, name in enumerate(names):
        if name not in params:
            raise SpecError(f"params.{name}", None, f"a value for {name} (it has a {what})")
        out[name] = np.asarray(params[name], dtype=float) * np.exp(effects[..., i])
    return out
