"""Covariate effects on typical values, vectorised over records.

For a parameter with typical value ``P`` and effects ``f_k`` of data columns ``x_k``, the
record's typical value is ``P · prod_k f_k(x_k)`` with

- power: ``f = (x / reference) ** power`` (allometry: ``power = 0.75`` for clearance and 1
  for volume, Anderson & Holford 2008, doi:10.1146/annurev.pharmtox.48.113006.094708);
- linear: ``f = 1 + linear · (x - reference)``;
- exponential: ``f = exp(exponential · (x - reference))``;
- categorical: ``f = factor[x]``.

Data columns are matched to the model's column names without regard to case.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from insilico.errors import SpecError
from insilico.model.spec import CovariateEffect, Model


def covariate_columns(model: Model) -> tuple[str, ...]:
    """Data columns the model's covariate effects read, in order of first use.

    Columns named alike but for case count once (the first spelling is kept).
    """
    out: list[str] = []
    seen: set[str] = set()
    for effects in (model.covariates or {}).values():
        for column in effects:
            if column.lower() not in seen:
                seen.add(column.lower())
                out.append(column)
    return tuple(out)


def _resolve_column(covariates: Any, column: str, field: str) -> Any:
    keys = list(covariates.keys())
    if column in keys:
        return column
    matches = [k for k in keys if isinstance(k, str) and k.lower() == column.lower()]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise SpecError(
            field, column, f"one data column matching {column!r} ignoring case; found {matches}"
        )
    raise SpecError(
        field,
        column,
        f"a data column named {column!r} (case ignored); the data lacks it (it has {keys})",
    )


def _column_values(values: Any, n: int, field: str) -> np.ndarray:
    x = np.asarray(values)
    if x.ndim == 0:
        x = np.full(n, x.item(), dtype=x.dtype if x.dtype.kind != "U" else object)
    if x.shape != (n,):
        raise SpecError(field, x.shape, f"one value per record: shape ({n},)")
    missing = np.asarray(pd.isna(x), dtype=bool)
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise SpecError(field, x[i], f"a value in every record (missing at record {i})")
    return x


def _numeric(x: np.ndarray, field: str) -> np.ndarray:
    if x.dtype.kind in "fiu":
        return x.astype(float)
    try:
        return x.astype(float)
    except (TypeError, ValueError):
        bad = next(v for v in x if not _is_float(v))
        raise SpecError(field, bad, "numbers") from None


def _is_float(v: Any) -> bool:
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True


def _equals(x: np.ndarray, category: int | str) -> np.ndarray:
    if isinstance(category, str):
        if x.dtype.kind in "fiub":
            return np.zeros(x.shape, dtype=bool)
    elif x.dtype.kind in "US":
        return np.zeros(x.shape, dtype=bool)
    return np.asarray(x == category, dtype=bool)


def covariate_factor(
    effect: CovariateEffect, x: np.ndarray, field: str = "covariate"
) -> np.ndarray:
    """Multiplicative factor of one covariate effect.

    Parameters
    ----------
    effect : CovariateEffect
        The effect.
    x : ndarray, shape (n,)
        Covariate values, in the unit of ``effect.reference`` (categories for a categorical
        effect).
    field : str
        Key path named in errors (``covariates.cl_L_per_h.WT``).

    Returns
    -------
    ndarray, shape (n,)
        Factors, all > 0.

    Raises
    ------
    SpecError
        For a category not listed, non-positive values under a power effect, or a linear
        effect whose factor is not positive.
    """
    # a validated effect has exactly one form, and a reference unless it is categorical
    if effect.categorical is not None:
        factor = np.ones(x.shape)
        matched = np.zeros(x.shape, dtype=bool)
        for category, value in effect.categorical.items():
            hit = _equals(x, category) & ~matched
            factor[hit] = value
            matched |= hit
        if not matched.all():
            bad = x[~matched][0]
            bad = bad.item() if hasattr(bad, "item") else bad
            raise SpecError(field, bad, f"one of the categories {list(effect.categorical)}")
        return factor
    xf = _numeric(x, field)
    ref = effect.reference
    if ref is None:
        raise SpecError(f"{field}.reference", None, "a reference value of the covariate")
    if effect.power is not None:
        if np.any(xf <= 0):
            raise SpecError(field, float(xf[xf <= 0][0]), "values > 0 (power effect)")
        return (xf / ref) ** effect.power
    if effect.linear is not None:
        factor = 1.0 + effect.linear * (xf - ref)
        if np.any(factor <= 0):
            bad = float(xf[factor <= 0][0])
            raise SpecError(
                field, bad, f"values with 1 + {effect.linear:g}·(x - {ref:g}) > 0 (linear effect)"
            )
        return factor
    if effect.exponential is None:
        raise SpecError(field, None, "one of power, linear, exponential or categorical")
    return np.exp(effect.exponential * (xf - ref))


def typical_parameters(
    model: Model, covariates: Mapping[str, Any] | pd.DataFrame, n: int
) -> dict[str, np.ndarray]:
    """Typical values of every parameter for ``n`` records, covariate effects applied.

    Parameters
    ----------
    model : Model
        The model.
    covariates : mapping or DataFrame
        Data columns (arrays of length ``n``, or scalars); names are matched to the model's
        covariate columns without regard to case.
    n : int
        Number of records.

    Returns
    -------
    dict of str to ndarray, shape (n,)
        Each of ``model.parameters`` (units in the names) times its covariate factors.

    Raises
    ------
    SpecError
        ``covariates.<parameter>.<COLUMN>`` for a column the data lack, a missing (NaN)
        value, a category not listed, or a value outside an effect's domain.

    Examples
    --------
    >>> typical_parameters(model, {"WT": np.array([70.0, 35.0])}, 2)  # doctest: +SKIP
    {'cl_L_per_h': array([0.2, 0.1189...]), ...}
    """
    if n < 0:
        raise SpecError("n", n, "a number of records >= 0")
    out = {name: np.full(n, value) for name, value in model.parameters.items()}
    for param, effects in (model.covariates or {}).items():
        for column, effect in effects.items():
            field = f"covariates.{param}.{column}"
            key = _resolve_column(covariates, column, field)
            x = _column_values(covariates[key], n, field)
            out[param] = out[param] * covariate_factor(effect, x, field)
    return out
