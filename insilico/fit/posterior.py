"""Each subject's twin updated from their own measurements: empirical Bayes (MAP) estimates.

For subject ``i`` with observations ``y_ij`` (``EVID`` 0, ``MDV`` 0, a ``DV``), predictions
``f_ij(eta_i)`` of the model and the population prior ``eta_i ~ N(0, Omega)``, the MAP estimate
minimizes the negative log posterior

    -log p(eta_i | y_i) = sum_j [ (y_ij - f_ij)^2 / (2 v_ij) + log(2 pi v_ij) / 2 ]
                          + eta_i' Omega^-1 eta_i / 2 + const,

with ``v_ij = additive^2 + (proportional f_ij)^2`` (or, for ``exponential`` error, the same on
``log y`` and ``log f``). An observation below its lower limit of quantification ``LLOQ_ij``
(``BLQ`` 1, see :func:`insilico.dataset.read_dataset`) contributes instead the probability
of a value below the limit, Beal's M3 method (Beal 2001, J Pharmacokinet Pharmacodyn 28:481):

    -log Phi((LLOQ_ij - f_ij) / sqrt(v_ij)),

with ``Phi`` the standard normal distribution function (for ``exponential`` error,
``Phi((log LLOQ_ij - log f_ij) / exponential)``). All subjects are updated together by Fisher
scoring (the Gauss-Newton step of NONMEM's and nlmixr2's inner problem, with the Fisher
information of ``v``; for a censored observation, the Gauss-Newton weight of its M3 term): one
pass of the event kernel per eta and direction gives every subject's Jacobian by central
differences; each subject takes a damped step that must lower its own objective. The
approximate posterior covariance is the inverse of that information at the optimum (Laplace
approximation).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import log_ndtr

from insilico.errors import SpecError
from insilico.model.covariates import typical_parameters
from insilico.model.layout import model_layout
from insilico.model.predict import predict_records, prepare_records
from insilico.model.variability import apply_eta

#: central-difference step on eta (log scale)
EPS_ETA = 1e-5


@dataclass(frozen=True)
class Posterior:
    """MAP estimates of every subject.

    Attributes
    ----------
    eta : ndarray, shape (n_subjects, n_eta)
        MAP random effects, columns in ``model.eta_names()`` order.
    covariance : ndarray, shape (n_subjects, n_eta, n_eta)
        Approximate posterior covariance (inverse Fisher information at the MAP).
    objective : ndarray, shape (n_subjects,)
        Negative log posterior at the MAP (up to a constant).
    n_observations : ndarray of int, shape (n_subjects,)
        Observations used per subject.
    converged : ndarray of bool, shape (n_subjects,)
        Whether the step and the gradient fell below tolerance.
    iterations : int
        Fisher-scoring iterations.
    """

    eta: np.ndarray
    covariance: np.ndarray
    objective: np.ndarray
    n_observations: np.ndarray
    converged: np.ndarray
    iterations: int


class SubjectProblem:
    """The pieces of the posterior that do not change with eta, for a dataset and a model."""

    def __init__(self, model, table: pd.DataFrame, until_h: float | None = None):
        if not model.eta_names():
            raise SpecError("iiv", None, "a model with between-subject variability (iiv)")
        if model.residual_error is None:
            raise SpecError("residual_error", None, "a model with a residual error model")
        self.table = table
        self.layout = model_layout(model)
        self.records = prepare_records(model, table, self.layout)
        n = len(table)
        self._set_model(model)
        self.subject = table["SUBJECT"].to_numpy()
        self.n_subjects = int(self.subject[-1]) + 1 if n else 0
        dv = table["DV"].to_numpy(dtype=float)
        mdv = table["MDV"].to_numpy(dtype=float)
        below = censored_records(table)
        lloq = table["LLOQ"].to_numpy(dtype=float) if "LLOQ" in table else np.full(n, np.nan)
        obs = (table["EVID"].to_numpy() == 0) & (mdv == 0) & (np.isfinite(dv) | below)
        if until_h is not None:
            obs &= table["TIME"].to_numpy(dtype=float) <= until_h
        no_limit = obs & below & ~np.isfinite(lloq)
        if no_limit.any():
            i = int(np.flatnonzero(no_limit)[0])
            where = f"line {int(table['ROW'].iloc[i]) + 2}" if "ROW" in table else f"record {i}"
            raise SpecError(
                f"LLOQ ({where})",
                float(lloq[i]),
                "a finite quantification limit (DV units) on an observation below it (BLQ 1)",
            )
        self.obs = obs
        self.y = np.where(below, lloq, dv)
        #: per observation (in ``self.obs`` order): whether it is below its limit (M3)
        self.censored = below[obs]
        self.n_observations = np.bincount(self.subject[obs], minlength=self.n_subjects)
        self.n_censored = np.bincount(
            self.subject[obs], weights=self.censored, minlength=self.n_subjects
        ).astype(np.int64)
        names = model.eta_names()
        keep = np.diag(self.omega) > 0
        if not keep.all():
            fixed = [n for n, k in zip(names, keep, strict=True) if not k]
            raise SpecError("iiv", fixed, "variances > 0 for every parameter with IIV")
        y = self.y[obs]
        if self.exponential and (y[~self.censored] <= 0).any():
            bad = float(y[~self.censored].min())
            raise SpecError("DV", bad, "> 0 for an exponential error model")
        if self.exponential and (y[self.censored] <= 0).any():
            bad = float(y[self.censored].min())
            raise SpecError("LLOQ", bad, "> 0 for an exponential error model")

    def with_model(self, model) -> SubjectProblem:
        """The same records under another model of the same structure (new typical values,
        covariate effects, IIV or residual error): nothing is read or prepared again."""
        new = copy.copy(self)
        new._set_model(model)
        return new

    def _set_model(self, model) -> None:
        """What depends on the model's values: typical parameters, Omega, the error model."""
        self.model = model
        self.typical = typical_parameters(model, self.table, len(self.table))
        self.omega = model.omega_matrix()
        # a zero variance is refused by the constructor, which names the parameter
        ok = (np.diag(self.omega) > 0).all()
        self._omega_inv = np.linalg.inv(self.omega) if ok else None
        self.exponential = model.residual_error.exponential is not None

    @property
    def omega_inv(self) -> np.ndarray:
        """Inverse of Omega (every IIV variance > 0)."""
        if self._omega_inv is None:
            raise SpecError(
                "iiv", np.diag(self.omega).tolist(), "variances > 0 for every parameter with IIV"
            )
        return self._omega_inv

    def predictions(self, eta: np.ndarray) -> np.ndarray:
        """Predictions at every record for per-subject ``eta`` (n_subjects, n_eta)."""
        values = apply_eta(self.typical, self.model, eta[self.subject])
        try:
            return predict_records(self.model, self.records, values, self.layout)
        except np.linalg.LinAlgError:
            # parameters so extreme that a steady state does not exist (no elimination):
            # no likelihood, so a step there is refused
            return np.full(len(self.table), np.nan)

    def residual_terms(self, f: np.ndarray):
        """Per observation: -log likelihood, its derivative in f and the Fisher weight.

        Parameters
        ----------
        f : ndarray, shape (n_records,)
            Predictions at every record, in the data's DV units.

        Returns
        -------
        nll, g, w : ndarray, shape (n_observations,)
            For every observation of ``self.obs`` in record order: the negative log
            likelihood, its derivative in ``f`` and the weight of ``(df/deta)^2`` in the
            Fisher (Gauss-Newton) information. A quantified observation has the normal
            density (``w`` its expected information in ``f``, with that of the variance); an
            observation below its limit has Beal's M3 term ``-log Phi(z)``,
            ``z = (LLOQ - f) / sqrt(v)`` (on the log scale for exponential error), and
            ``w = lambda (z + lambda) (dz/df)^2`` with ``lambda = phi(z) / Phi(z)``: the
            second derivative of ``-log Phi`` in ``z`` (in (0, 1), ``-log Phi`` being convex)
            times the squared derivative of ``z``, the Gauss-Newton weight of the term.
        """
        err = self.model.residual_error
        y = self.y[self.obs]
        f = f[self.obs]
        cens = self.censored
        if self.exponential:
            s2 = err.exponential**2
            with np.errstate(divide="ignore", invalid="ignore"):
                r = np.log(y) - np.log(f)
                nll = 0.5 * (r * r / s2 + np.log(2 * np.pi * s2))
                g = -r / (s2 * f)
                w = 1.0 / (s2 * f * f)
                if cens.any():
                    sd = np.sqrt(s2)
                    z = r[cens] / sd
                    dz = -1.0 / (sd * f[cens])
                    nll[cens], g[cens], w[cens] = m3_terms(z, dz)
            return nll, g, w
        add = err.additive or 0.0
        prop = err.proportional or 0.0
        v = add * add + (prop * f) ** 2
        dv = 2.0 * prop * prop * f
        r = y - f
        with np.errstate(divide="ignore", invalid="ignore"):
            nll = 0.5 * (r * r / v + np.log(2 * np.pi * v))
            g = -r / v + 0.5 * (1.0 / v - r * r / (v * v)) * dv
            w = 1.0 / v + 0.5 * (dv / v) ** 2
            if cens.any():
                sd = np.sqrt(v[cens])
                z = r[cens] / sd
                # z = (LLOQ - f) / sd(f): dz/df = -1/sd - z (dsd/df) / sd, dsd/df = dv / (2 sd)
                dz = -1.0 / sd - z * dv[cens] / (2.0 * v[cens])
                nll[cens], g[cens], w[cens] = m3_terms(z, dz)
        return nll, g, w

    def objective(self, eta: np.ndarray, f: np.ndarray | None = None) -> np.ndarray:
        """Negative log posterior of each subject, shape (n_subjects,)."""
        f = self.predictions(eta) if f is None else f
        nll, _, _ = self.residual_terms(f)
        data = np.bincount(self.subject[self.obs], weights=nll, minlength=self.n_subjects)
        prior = 0.5 * np.einsum("ij,jk,ik->i", eta, self.omega_inv, eta)
        out = data + prior
        out[~np.isfinite(out)] = np.inf
        return out

    def jacobian(self, eta: np.ndarray) -> np.ndarray:
        """d f / d eta at every record by central differences, shape (n_records, n_eta)."""
        k = eta.shape[1]
        J = np.empty((len(self.table), k))
        for j in range(k):
            up = eta.copy()
            dn = eta.copy()
            up[:, j] += EPS_ETA
            dn[:, j] -= EPS_ETA
            J[:, j] = (self.predictions(up) - self.predictions(dn)) / (2 * EPS_ETA)
        return J

    def information(self, eta: np.ndarray, f: np.ndarray, J: np.ndarray):
        """Gradient (n_subjects, n_eta) and Fisher information (n_subjects, n_eta, n_eta)."""
        _, g, w = self.residual_terms(f)
        Jo = J[self.obs]
        s = self.subject[self.obs]
        k = eta.shape[1]
        grad = np.zeros((self.n_subjects, k))
        np.add.at(grad, s, Jo * g[:, None])
        grad += eta @ self.omega_inv
        info = np.zeros((self.n_subjects, k, k))
        np.add.at(info, s, Jo[:, :, None] * Jo[:, None, :] * w[:, None, None])
        info += self.omega_inv
        return grad, info


def censored_records(table: pd.DataFrame) -> np.ndarray:
    """Whether each record is an observation below its quantification limit (``BLQ`` 1).

    Parameters
    ----------
    table : DataFrame
        A dataset's normalized table; without a ``BLQ`` column nothing is censored.

    Returns
    -------
    ndarray of bool, shape (n_records,)
    """
    if "BLQ" not in table:
        return np.zeros(len(table), dtype=bool)
    return table["BLQ"].to_numpy(dtype=float) == 1.0


def m3_terms(z: np.ndarray, dz_df: np.ndarray):
    """Beal's M3 terms of censored observations: ``-log Phi(z)``, its derivative and weight.

    Parameters
    ----------
    z : ndarray
        Standardized distance of the limit above the prediction, ``(LLOQ - f) / sd`` (or on
        the log scale); dimensionless.
    dz_df : ndarray
        Derivative of ``z`` in the prediction ``f`` (per DV unit).

    Returns
    -------
    nll, g, w : ndarray
        ``-log Phi(z)``; its derivative in ``f``, ``-lambda dz/df`` with the inverse Mills
        ratio ``lambda = phi(z) / Phi(z)``; and the Gauss-Newton weight
        ``lambda (z + lambda) (dz/df)^2``. ``log Phi`` is evaluated by
        :func:`scipy.special.log_ndtr`, accurate far into both tails.
    """
    log_cdf = log_ndtr(z)
    with np.errstate(invalid="ignore", over="ignore"):
        lam = np.exp(-0.5 * z * z - 0.5 * np.log(2 * np.pi) - log_cdf)
        # d2(-log Phi)/dz2 = lambda (z + lambda), in (0, 1); clipped against rounding far left
        curvature = np.clip(lam * (z + lam), 0.0, 1.0)
        # a limit infinitely far above the prediction (a zero prediction with a proportional
        # or exponential error, before the first dose) is certain: no slope, no information
        flat = lam == 0.0
        g = np.where(flat, 0.0, -lam * dz_df)
        w = np.where(flat, 0.0, curvature * dz_df * dz_df)
    return -log_cdf, g, w


def map_estimates(
    model,
    table: pd.DataFrame,
    *,
    until_h: float | None = None,
    max_iterations: int = 100,
    tolerance: float = 1e-8,
) -> Posterior:
    """Every subject's MAP random effects under the model's population prior.

    Parameters
    ----------
    model : Model
        The population model (typical values, covariates, ``iiv``, ``residual_error``), e.g.
        a fit's ``fit.yaml``.
    table : DataFrame
        A dataset's normalized table (:attr:`insilico.dataset.Dataset.table`).
    until_h : float, optional
        Use only the observations at or before this time (h); all when absent.
    max_iterations : int
        Fisher-scoring iterations at most.
    tolerance : float
        Convergence: a subject's step (in eta), its scaled gradient or its objective's gain in
        an iteration below this.
    """
    problem = SubjectProblem(model, table, until_h)
    return solve_map(problem, max_iterations=max_iterations, tolerance=tolerance)


def solve_map(
    problem: SubjectProblem,
    eta0: np.ndarray | None = None,
    *,
    max_iterations: int = 100,
    tolerance: float = 1e-8,
) -> Posterior:
    """:func:`map_estimates` on a prepared problem, from ``eta0`` (zeros by default)."""
    model, table = problem.model, problem.table
    k = len(model.eta_names())
    eta = np.zeros((problem.n_subjects, k)) if eta0 is None else np.array(eta0, dtype=float)
    f = problem.predictions(eta)
    obj = problem.objective(eta, f)
    if not np.isfinite(obj).all() and eta0 is not None:
        # subjects whose starting point has no likelihood start again from the typical values
        # (each subject on its own: the others' results do not depend on it)
        eta = np.where(np.isfinite(obj)[:, None], eta, 0.0)
        f = problem.predictions(eta)
        obj = problem.objective(eta, f)
    if not np.isfinite(obj).all():
        bad = int(np.flatnonzero(~np.isfinite(obj))[0])
        raise SpecError(
            f"subject {table.loc[table['SUBJECT'] == bad, 'ID'].iloc[0]}",
            "non-finite likelihood at the typical parameters",
            "predictions > 0 where observations are (check units, doses and CMT)",
        )
    converged = np.zeros(problem.n_subjects, dtype=bool)
    stuck = np.zeros(problem.n_subjects, dtype=bool)
    it = 0
    for it in range(1, max_iterations + 1):  # noqa: B007 - reported in Posterior.iterations
        J = problem.jacobian(eta)
        grad, info = problem.information(eta, f, J)
        step = -np.linalg.solve(info, grad[:, :, None])[:, :, 0]
        # at most 2 on the log scale per iteration: far steps leave the model's valid range
        big = np.abs(step).max(axis=1, keepdims=True)
        step = np.where(big > 2.0, step * 2.0 / np.maximum(big, 1e-300), step)
        scaled = np.abs(np.einsum("ij,ij->i", grad, step))
        converged = (np.abs(step).max(axis=1) < tolerance) | (scaled < tolerance**2) | stuck
        if converged.all():
            break
        active = ~converged
        lam = np.ones(problem.n_subjects)
        better = ~active
        for _ in range(30):
            trial = eta + np.where(active[:, None], lam[:, None] * step, 0.0)
            f_trial = problem.predictions(trial)
            obj_trial = problem.objective(trial, f_trial)
            better = (obj_trial <= obj) | ~active
            if better.all():
                break
            lam = np.where(better, lam, lam * 0.5)
        # a subject whose step no longer lowers its objective sits at its (numerical) minimum
        stuck |= ~better
        take = better & active
        eta = np.where(take[:, None], trial, eta)
        # an accepted step that gains less than `tolerance` in the objective ends the search
        stuck |= take & (obj - obj_trial < tolerance)
        obj = np.where(take, obj_trial, obj)
        f = np.where(take[problem.subject], f_trial, f)
    converged = converged | stuck
    J = problem.jacobian(eta)
    _, info = problem.information(eta, f, J)
    return Posterior(
        eta=eta,
        covariance=np.linalg.inv(info),
        objective=obj,
        n_observations=problem.n_observations,
        converged=converged,
        iterations=it,
    )
