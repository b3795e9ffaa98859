"""Residual (intra-individual) error around individual predictions.

With ``f`` the individual prediction in the data's ``dv_unit``:

- additive and/or proportional: ``y = f + sd · eps``, ``sd = sqrt(additive² + (proportional ·
  f)²)``, ``eps ~ N(0, 1)``; the additive SD is in ``dv_unit``, the proportional SD is
  relative;
- exponential: ``y = f · exp(exponential · eps)``; the SD is on the log scale.
"""

from __future__ import annotations

import numpy as np

from insilico.model.spec import Model


def residual_sd(model: Model, ipred: np.ndarray) -> np.ndarray:
    """Residual error standard deviation at each prediction.

    Parameters
    ----------
    model : Model
        Its ``residual_error``; none means zero.
    ipred : ndarray
        Individual predictions ``f``, in the data's ``dv_unit``.

    Returns
    -------
    ndarray, same shape as ``ipred``
        ``sqrt(additive² + (proportional · f)²)`` in ``dv_unit``, or for an exponential error
        the log-scale SD (constant).
    """
    f = np.asarray(ipred, dtype=float)
    err = model.residual_error
    if err is None:
        return np.zeros(f.shape)
    if err.exponential is not None:
        return np.full(f.shape, err.exponential)
    add = err.additive or 0.0
    prop = err.proportional or 0.0
    return np.sqrt(add**2 + (prop * f) ** 2)


def add_residual_error(model: Model, ipred: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Observations: predictions with residual error drawn.

    Parameters
    ----------
    model : Model
        Its ``residual_error``; none returns a copy of ``ipred`` and draws nothing.
    ipred : ndarray
        Individual predictions ``f``, in the data's ``dv_unit``.
    rng : numpy.random.Generator
        Source of one standard normal per prediction.

    Returns
    -------
    ndarray, same shape as ``ipred``
        ``f + sd · eps``, or ``f · exp(exponential · eps)`` (in ``dv_unit``).
    """
    f = np.asarray(ipred, dtype=float)
    if model.residual_error is None:
        return f.copy()
    return observations_from_normals(model, f, rng.standard_normal(f.shape))


def observations_from_normals(model: Model, ipred: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """Observations from predictions ``ipred`` and standard normal draws ``eps`` (same shape).

    ``f + sd(f) · eps``, or ``f · exp(exponential · eps)``; ``ipred`` in the data's
    ``dv_unit``.
    """
    f = np.asarray(ipred, dtype=float)
    err = model.residual_error
    if err is None:
        return f.copy()
    if err.exponential is not None:
        return f * np.exp(err.exponential * eps)
    return f + residual_sd(model, f) * eps
