"""Population estimation by first-order conditional estimation with interaction (FOCE-I).

Each subject's marginal likelihood is approximated around its conditional mode ``eta_i``
(:mod:`insilico.fit.posterior`) by the Laplace approximation with the Gauss-Newton (Fisher)
information ``H_i = J_i' W_i J_i + Omega^-1``, the residual variance evaluated at the
individual prediction (the interaction), as in NONMEM's FOCE-I:

    OFV = -2 log L = sum_i [ 2 obj_i(eta_i) + log |Omega| + log |H_i| ]

with ``obj_i`` the subject's negative log posterior (observations' -log likelihood, including
``log(2 pi v)``, plus ``eta' Omega^-1 eta / 2``). The population parameters — the typical
values of the model's parameters (log scale), its covariate effects (power, linear and
exponential coefficients as they are, categorical factors on the log scale), the IIV
variances (log scale) and block covariances (through each block's Cholesky factor with a log
diagonal, so that Omega stays positive definite) and the residual error SDs (log scale) — are
estimated by L-BFGS-B; the names a model lists under ``fixed:`` are held at their values.
Gradients are central differences at the current conditional modes plus the modes' own
response to the parameters (implicit function theorem: the subject's objective is stationary
at its mode but ``log |H_i|`` is not), and every objective evaluation re-solves the
conditional modes from the previous ones. Standard errors come from the inverse of the
Hessian of the OFV by second differences, the conditional modes re-solved at every point (the
observed Fisher information of the marginal likelihood), carried to the reported values
(variances, covariances, factors) by the delta method; where it is singular they are NaN and
the result says so.

Inter-occasion variability is kept at its model values.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from insilico.errors import SpecError
from insilico.fit.posterior import SubjectProblem, solve_map

if TYPE_CHECKING:
    from insilico.model.spec import Model

#: finite-difference step of the gradient on the (scaled) population parameters
STEP = 1e-4
#: second-difference step of the Hessian for the standard errors
HESSIAN_STEP = 1e-2
#: step of the delta method's derivatives of the reported values
DELTA_STEP = 1e-6
#: finite-difference step on the conditional modes (log scale) in the gradient
ETA_STEP = 1e-4


@dataclass
class FitResult:
    """A population fit.

    Attributes
    ----------
    model : Model
        The model with the estimates in place (``fit.yaml``).
    estimates : DataFrame
        ``parameter, estimate, se, rse_pct`` for every estimated value, named as in
        :meth:`~insilico.model.spec.Model.estimate_names`: typical values by parameter name,
        covariate effects ``beta_<parameter>_<column>[_<category>]``, IIV variances
        ``omega2_<p>`` and block covariances ``omega_<p1>_<p2>``, residual SDs
        ``sigma_<kind>``. ``rse_pct`` is ``100 se / |estimate|``.
    ofv : float
        -2 log likelihood (FOCE-I), including ``log(2 pi)`` terms.
    eta : ndarray, shape (n_subjects, n_eta)
        Conditional modes at the estimates.
    converged : bool
    iterations : int
    runtime_s : float
    n_subjects, n_observations : int
    messages : list of str
    fixed : dict of str to float
        Values held at the model's values (``fixed:`` of the model, and covariate effects
        the data cannot inform), by name; not in ``estimates``.
    method : str
        ``FOCE-I`` or ``SAEM`` (:func:`insilico.fit.saem.fit_saem`).
    trace : DataFrame, optional
        The estimates at every iteration, where the method keeps them (SAEM).
    """

    model: Model
    estimates: pd.DataFrame
    ofv: float
    eta: np.ndarray
    converged: bool
    iterations: int
    runtime_s: float
    n_subjects: int
    n_observations: int
    messages: list[str] = field(default_factory=list)
    fixed: dict[str, float] = field(default_factory=dict)
    method: str = "FOCE-I"
    trace: pd.DataFrame | None = None

    @property
    def aic(self) -> float:
        """Akaike's information criterion, OFV + 2 p (p: estimated values)."""
        return self.ofv + 2 * len(self.estimates)

    @property
    def bic(self) -> float:
        """Schwarz's criterion, OFV + p log(n observations)."""
        return self.ofv + len(self.estimates) * math.log(max(self.n_observations, 1))


def model_values(model) -> dict[str, float]:
    """Every value a fit may estimate, by name (:meth:`Model.estimate_names` order).

    Categorical effects give one value per category (its factor); an IIV block gives its
    variances and covariances.
    """
    out: dict[str, float] = {}
    integer = set(model.parameters) - set(model.estimate_names())
    for p, v in model.parameters.items():
        if p not in integer:
            out[p] = float(v)
    for name, (param, column, category) in model.covariate_effect_names().items():
        effect = model.covariates[param][column]
        if category is None:
            out[name] = float(getattr(effect, effect.kind))
        else:
            out[name] = float(effect.categorical[category])
    omega = model.omega_matrix()
    etas = list(model.eta_names())
    for i, p in enumerate(etas):
        out[f"omega2_{p}"] = float(omega[i, i])
    for block in model.iiv.blocks if model.iiv is not None else ():
        ps = block.parameters
        for i, a in enumerate(ps):
            for b in ps[i + 1 :]:
                out[f"omega_{a}_{b}"] = float(omega[etas.index(a), etas.index(b)])
    if model.residual_error is not None:
        for k, v in model.residual_error.model_dump(exclude_none=True).items():
            out[f"sigma_{k}"] = float(v)
    return {name: out[name] for name in model.estimate_names()}


def _column(table: pd.DataFrame, name: str) -> np.ndarray:
    """A data column matched ignoring case, as floats (NaN where not a number)."""
    key = next((c for c in table.columns if str(c).lower() == name.lower()), None)
    if key is None:
        return np.full(len(table), np.nan)
    return pd.to_numeric(table[key], errors="coerce").to_numpy(dtype=float)


@dataclass(frozen=True)
class _Slot:
    """One free value of the optimization vector ``phi``.

    ``kind``: ``theta`` (typical value, ``phi = log v``), ``coef`` (power, linear or
    exponential coefficient, ``phi = v · scale`` with ``scale`` the covariate's largest
    distance from its reference, so that ``phi`` is about the log factor's range), ``factor``
    (categorical factor, ``phi = log v``), ``omega`` (diagonal IIV variance, ``phi = log v``),
    ``chol`` (element ``(i, j)`` of an IIV block's Cholesky factor ``L``: ``phi = log L_ii``
    on the diagonal, ``L_ij / scale`` below it, ``scale`` the starting ``L_jj``) and
    ``sigma`` (residual SD, ``phi = log v``).
    """

    kind: str
    key: str = ""
    scale: float = 1.0
    #: ``chol`` only: (block index in ``_Objective.blocks``, row, column) of the element
    cell: tuple[int, int, int] = (-1, -1, -1)


class _Objective:
    """The FOCE-I OFV as a function of the free population parameters ``phi``."""

    def __init__(self, model, table: pd.DataFrame, backend=None):
        if not model.eta_names():
            raise SpecError("iiv", None, "a model with between-subject variability for a fit")
        self.base = model
        self.problem = SubjectProblem(model, table)
        #: where the subjects' parts are computed: this process (:class:`SubjectTerms`) or
        #: Dask workers (:class:`insilico.fit.distributed.DaskTerms`)
        self.backend = backend or SubjectTerms.from_problem(self.problem)
        if (self.problem.n_observations == 0).any():
            i = int(np.flatnonzero(self.problem.n_observations == 0)[0])
            who = table.loc[table["SUBJECT"] == i, "ID"].iloc[0]
            raise SpecError(f"subject {who}", "no observations", "observations in every subject")
        self.eta_names = list(model.eta_names())
        self.messages: list[str] = []
        self.held = set(model.fixed or ())
        self.values0 = model_values(model)
        slots: list[_Slot] = []
        for p in model.parameters:
            if p in self.values0 and p not in self.held:
                slots.append(_Slot("theta", p))
        slots += self._covariate_slots(model, table)
        n_diag = len(model.iiv.variances)
        for p in self.eta_names[:n_diag]:
            if f"omega2_{p}" not in self.held:
                slots.append(_Slot("omega", p))
        omega0 = model.omega_matrix()
        self.blocks: list[tuple[int, int, np.ndarray]] = []  # (start, size, L0) of free blocks
        k = n_diag
        for b, block in enumerate(model.iiv.blocks):
            m = len(block.parameters)
            if not set(model.block_estimate_names(b)) <= self.held:
                try:
                    L0 = np.linalg.cholesky(omega0[k : k + m, k : k + m])
                except np.linalg.LinAlgError:
                    raise SpecError(
                        f"iiv.blocks[{b}].covariance",
                        block.matrix().tolist(),
                        "a positive definite starting covariance for a fit",
                    ) from None
                for i in range(m):
                    for j in range(i + 1):
                        slots.append(
                            _Slot("chol", scale=float(L0[j, j]), cell=(len(self.blocks), i, j))
                        )
                self.blocks.append((k, m, L0))
            k += m
        for key, value in model.residual_error.model_dump(exclude_none=True).items():
            if value and f"sigma_{key}" not in self.held:
                slots.append(_Slot("sigma", key))
        self.slots = slots
        free = {s.key for s in slots if s.kind in ("theta", "coef", "factor")}
        free |= {f"omega2_{s.key}" for s in slots if s.kind == "omega"}
        free |= {f"sigma_{s.key}" for s in slots if s.kind == "sigma"}
        for b in range(len(model.iiv.blocks)):
            if not set(model.block_estimate_names(b)) <= self.held:
                free |= set(model.block_estimate_names(b))
        #: names of the estimated values, in :meth:`Model.estimate_names` order
        self.names = [n for n in model.estimate_names() if n in free]
        self.eta = np.zeros((self.problem.n_subjects, len(self.eta_names)))
        self.calls = 0

    def _covariate_slots(self, model, table: pd.DataFrame) -> list[_Slot]:
        slots = []
        names = model.covariate_effect_names()
        user_fixed = set(self.held)
        # each categorical effect's reference: its first category present in the data, held
        # unless the typical value or one of its present categories is fixed (the typical
        # value and every factor are not all identifiable)
        present: dict[str, bool] = {}
        reference: set[str] = set()
        for param, effects in (model.covariates or {}).items():
            for column, effect in effects.items():
                if effect.kind != "categorical":
                    continue
                mine = [n for n, v in names.items() if v[:2] == (param, column)]
                for n in mine:
                    present[n] = self._category_present(table, column, names[n][2])
                seen = [n for n in mine if present[n]]
                if seen and param not in user_fixed and not user_fixed & set(seen):
                    reference.add(seen[0])
        for name, (param, column, category) in names.items():
            if name in user_fixed:
                continue
            effect = model.covariates[param][column]
            if category is not None:
                if not present[name]:
                    self.messages.append(
                        f"{name}: no record has {column} = {category!r}; held at "
                        f"{self.values0[name]:g}"
                    )
                    self.held.add(name)
                elif name in reference:
                    self.messages.append(
                        f"{name}: the reference category of {column}, held at "
                        f"{self.values0[name]:g}; fix another category to estimate it"
                    )
                    self.held.add(name)
                else:
                    slots.append(_Slot("factor", name))
                continue
            x = _column(table, column)
            ref = effect.reference
            with np.errstate(divide="ignore", invalid="ignore"):
                span = np.abs(np.log(x / ref)) if effect.kind == "power" else np.abs(x - ref)
            span = span[np.isfinite(span)]
            scale = float(span.max()) if span.size else 0.0
            if scale <= 0:
                self.messages.append(
                    f"{name}: {column} does not vary from its reference in the data; held at "
                    f"{self.values0[name]:g}"
                )
                self.held.add(name)
                continue
            slots.append(_Slot("coef", name, scale))
        return slots

    @staticmethod
    def _category_present(table: pd.DataFrame, column: str, category) -> bool:
        """Whether some record has ``column`` (matched ignoring case) equal to ``category``."""
        if isinstance(category, str):
            key = next((c for c in table.columns if str(c).lower() == column.lower()), None)
            return key is not None and bool((table[key].astype(str) == category).any())
        return bool((_column(table, column) == category).any())

    def start(self) -> np.ndarray:
        """``phi`` at the model's values."""
        phi = []
        for s in self.slots:
            if s.kind == "coef":
                phi.append(self.values0[s.key] * s.scale)
            elif s.kind == "chol":
                b, i, j = s.cell
                L0 = self.blocks[b][2]
                phi.append(math.log(L0[i, i]) if i == j else float(L0[i, j]) / s.scale)
            elif s.kind == "omega":
                phi.append(math.log(self.values0[f"omega2_{s.key}"]))
            elif s.kind == "sigma":
                phi.append(math.log(self.values0[f"sigma_{s.key}"]))
            else:
                phi.append(math.log(self.values0[s.key]))
        return np.array(phi, dtype=float)

    def model_at(self, phi: np.ndarray):
        """The model with the values of ``phi`` (the others at the model's values).

        Raises
        ------
        SpecError
            When a value is outside what the model allows.
        """
        m = self.base
        params: dict[str, float] = {}
        covs: dict[str, float] = {}
        sigma = m.residual_error.model_dump(exclude_none=True)
        omega = m.omega_matrix()
        chol = [L0.copy() for _, _, L0 in self.blocks]
        for s, v in zip(self.slots, phi, strict=True):
            v = float(v)
            if s.kind == "theta":
                params[s.key] = math.exp(v)
            elif s.kind == "coef":
                covs[s.key] = v / s.scale
            elif s.kind == "factor":
                covs[s.key] = math.exp(v)
            elif s.kind == "omega":
                i = self.eta_names.index(s.key)
                omega[i, i] = math.exp(v)
            elif s.kind == "chol":
                b, i, j = s.cell
                chol[b][i, j] = math.exp(v) if i == j else v * s.scale
            else:
                sigma[s.key] = math.exp(v)
        for (k, size, _), L in zip(self.blocks, chol, strict=True):
            omega[k : k + size, k : k + size] = L @ L.T
        return m.with_estimates(
            parameters=params or None,
            covariates=covs or None,
            omega=omega,
            residual_error=sigma,
        )

    def _model_or_none(self, phi: np.ndarray):
        """The model at ``phi``; None where the values are not allowed."""
        try:
            return self.model_at(phi)
        except (SpecError, OverflowError, np.linalg.LinAlgError):
            return None

    def ofv_value(self, model, eta: np.ndarray) -> float:
        """OFV of ``model`` with the conditional modes at ``eta`` (inf where undefined)."""
        ofv = self.backend.ofv_terms(model, eta)
        if ofv is None:
            return math.inf
        total = float(ofv.sum())
        return total if math.isfinite(total) else math.inf

    def __call__(self, phi: np.ndarray) -> float:
        self.calls += 1
        model = self._model_or_none(phi)
        if model is None:
            return math.inf
        solved = self.backend.solve(model, self.eta)
        if solved is None:
            return math.inf
        eta, ofv = solved
        value = float(ofv.sum())
        if not math.isfinite(value):
            return math.inf
        self.eta = eta
        return value

    def gradient(self, phi: np.ndarray) -> np.ndarray:
        """The OFV's derivatives in ``phi``, the conditional modes following ``phi``.

        Central differences at the current modes, plus the modes' own response (implicit
        function theorem): ``d eta_i / d phi = -K_i^-1 d g_i / d phi`` with ``g_i`` the
        eta-gradient of ``obj_i`` and ``K_i`` its Hessian in eta (differences of ``g_i``; the
        information where that is not positive definite), times ``d OFV_i / d eta_i``
        (``obj_i`` is stationary at its mode but ``log |H_i|`` is not). One-sided next to a
        value the model does not allow. The subjects' parts come from :class:`SubjectTerms`
        (in chunks on Dask workers) and are summed here, in subject order.
        """
        g = np.zeros_like(phi)
        model0 = self._model_or_none(phi)
        if model0 is None:
            return g
        ups, dns = [], []
        for j in range(phi.size):
            up, dn = phi.copy(), phi.copy()
            up[j] += STEP
            dn[j] -= STEP
            ups.append(self._model_or_none(up))
            dns.append(self._model_or_none(dn))
        # Omega and the residual error leave the predictions as they are
        same = [slot.kind in ("omega", "chol", "sigma") for slot in self.slots]
        parts = self.backend.gradient_parts(model0, ups, dns, same, self.eta)
        if parts is None or not np.isfinite(parts["base"]).all():
            return g
        f0, grad0 = float(parts["base"].sum()), parts["grad0"]
        d_eta, hess_inv = parts["d_eta"], parts["hess_inv"]

        def total(t):
            if t is None or not np.isfinite(t[0]).all():
                return None
            return float(t[0].sum()), t[1]

        for j in range(phi.size):
            hi, lo = total(parts["up"][j]), total(parts["dn"][j])
            if hi is not None and lo is not None:
                df, dg, h = hi[0] - lo[0], hi[1] - lo[1], 2 * STEP
            elif hi is not None:
                df, dg, h = hi[0] - f0, hi[1] - grad0, STEP
            elif lo is not None:
                df, dg, h = f0 - lo[0], grad0 - lo[1], STEP
            else:
                continue
            moves = -np.einsum("ikl,il->ik", hess_inv, dg / h)
            g[j] = df / h + float(np.sum(d_eta * moves))
        return g

    def report(self, phi: np.ndarray) -> np.ndarray:
        """The estimated values at ``phi`` (:attr:`names` order), on their natural scale."""
        values = model_values(self.model_at(phi))
        return np.array([values[n] for n in self.names], dtype=float)


class SubjectTerms:
    """Each subject's part of the FOCE-I objective, for a set of subjects (all of them, or
    one chunk on a Dask worker: :mod:`insilico.fit.distributed`).

    Every array returned has one row per subject of the set; a subject's values depend only
    on its own records and its own conditional mode, so the parts of any split into chunks,
    put together, are the parts of the whole.
    """

    def __init__(self, model, table: pd.DataFrame):
        self.problem = SubjectProblem(model, table)

    @classmethod
    def from_problem(cls, problem: SubjectProblem) -> SubjectTerms:
        """The terms of an already prepared problem."""
        new = cls.__new__(cls)
        new.problem = problem
        return new

    def at(self, model) -> SubjectProblem | None:
        """The problem under ``model``; None where the model is not defined on these records
        (a linear covariate effect that makes a parameter <= 0, an overflow)."""
        if model is None:
            return None
        try:
            return self.problem.with_model(model)
        except (SpecError, OverflowError, np.linalg.LinAlgError):
            return None

    @staticmethod
    def terms(problem: SubjectProblem | None, eta: np.ndarray, fj=None):
        """Per subject at the modes ``eta``: the OFV contribution ``2 obj_i + log |Omega| +
        log |H_i|`` (inf where undefined), the eta-gradient of ``obj_i`` and the information
        ``H_i``; None for a problem that is not defined. ``fj``: the predictions and their
        Jacobian when known (they do not depend on Omega or the residual error)."""
        if problem is None:
            return None
        f, J = fj if fj is not None else (problem.predictions(eta), problem.jacobian(eta))
        obj = problem.objective(eta, f)
        grad, info = problem.information(eta, f, J)
        sign, logdet_info = np.linalg.slogdet(info)
        _, logdet_omega = np.linalg.slogdet(problem.omega)
        with np.errstate(invalid="ignore"):
            ofv = 2.0 * obj + logdet_omega + logdet_info
        ofv = np.where((sign > 0) & np.isfinite(ofv), ofv, math.inf)
        return ofv, grad, info

    def ofv_terms(self, model, eta: np.ndarray):
        """The subjects' OFV contributions at ``eta`` (None where undefined)."""
        t = self.terms(self.at(model), eta)
        return None if t is None else t[0]

    def solve(self, model, eta0: np.ndarray):
        """The conditional modes from ``eta0`` and the OFV contributions there (None where
        undefined)."""
        problem = self.at(model)
        if problem is None:
            return None
        try:
            post = solve_map(problem, eta0, max_iterations=50, tolerance=1e-7)
        except SpecError:
            return None
        return post.eta, self.terms(problem, post.eta)[0]

    def gradient_parts(self, model0, ups, dns, same, eta: np.ndarray):
        """What :meth:`_Objective.gradient` needs of these subjects: their terms at
        ``model0`` (``base``, ``grad0``), ``d OFV_i / d eta_i`` (``d_eta``), the inverse of
        the Hessian of ``obj_i`` in eta (``hess_inv``), and their terms (OFV contributions,
        eta-gradients) at each model of ``ups`` and ``dns`` (None where undefined)."""
        problem0 = self.at(model0)
        if problem0 is None:
            return None
        fj = (problem0.predictions(eta), problem0.jacobian(eta))
        base = self.terms(problem0, eta, fj)
        k = eta.shape[1]
        d_eta = np.zeros_like(eta)
        hess = np.zeros_like(base[2])
        for c in range(k):
            up, dn = eta.copy(), eta.copy()
            up[:, c] += ETA_STEP
            dn[:, c] -= ETA_STEP
            t_up, t_dn = self.terms(problem0, up), self.terms(problem0, dn)
            with np.errstate(invalid="ignore"):
                d = (t_up[0] - t_dn[0]) / (2 * ETA_STEP)
            d_eta[:, c] = np.where(np.isfinite(d), d, 0.0)
            hess[:, :, c] = (t_up[1] - t_dn[1]) / (2 * ETA_STEP)
        hess = 0.5 * (hess + hess.transpose(0, 2, 1))
        # where the Hessian is not positive definite (or not finite), the information
        ok = np.isfinite(hess).all(axis=(1, 2))
        ok[ok] = np.linalg.eigvalsh(hess[ok]).min(axis=1) > 0
        hess[~ok] = base[2][~ok]

        def at(model, reuse):
            t = self.terms(self.at(model), eta, fj if reuse else None)
            return None if t is None else (t[0], t[1])

        return {
            "base": base[0],
            "grad0": base[1],
            "d_eta": d_eta,
            "hess_inv": np.linalg.inv(hess),
            "up": [at(m, r) for m, r in zip(ups, same, strict=True)],
            "dn": [at(m, r) for m, r in zip(dns, same, strict=True)],
        }


def merge_parts(parts: list):
    """The parts of chunks of subjects (in subject order) put together as one set's: arrays
    concatenated along the subjects; None if any chunk's part is None."""
    if any(p is None for p in parts):
        return None
    first = parts[0]
    if isinstance(first, np.ndarray):
        return np.concatenate(parts)
    if isinstance(first, tuple):
        return tuple(merge_parts(list(items)) for items in zip(*parts, strict=True))
    if isinstance(first, dict):
        out = {}
        for key in first:
            if isinstance(first[key], list):
                out[key] = [merge_parts([p[key][j] for p in parts]) for j in range(len(first[key]))]
            else:
                out[key] = merge_parts([p[key] for p in parts])
        return out
    raise TypeError(type(first))


def focei_ofv(model, dataset) -> float:
    """The FOCE-I OFV of ``model`` at its own values (-2 log likelihood with ``log(2 pi)``).

    Parameters
    ----------
    model : Model
        A model with ``iiv`` and ``residual_error`` (e.g. a fit's ``fit.yaml``).
    dataset : Dataset
        NONMEM-format data with observations.
    """
    problem = _Objective(model, dataset.table)
    phi = problem.start()
    problem(phi)
    # the conditional modes solved again from where the first pass stopped
    return problem(phi)


def fit_focei(model, dataset, *, max_iterations: int = 200, backend=None) -> FitResult:
    """Estimate the population parameters of ``model`` from ``dataset`` by FOCE-I.

    Estimated: the typical values, every covariate effect (power, linear and exponential
    coefficients unconstrained, categorical factors on the log scale), the IIV variances and
    each block's full covariance (through its Cholesky factor, so it stays positive definite)
    and the residual SDs; the names in the model's ``fixed:`` are held at their values.
    A categorical effect's first category present in the data is its reference, held at its
    value, unless the parameter's typical value or another category is fixed; a category
    absent from the data and a covariate constant at its reference are held too
    (``FitResult.messages`` says so).
    Inter-occasion variances are kept at their model values.

    Parameters
    ----------
    model : Model
        The model with starting values.
    dataset : Dataset
        NONMEM-format data with observations (and the covariate columns).
    max_iterations : int
        L-BFGS-B iterations at most.
    backend : DaskTerms, optional
        Compute the subjects' parts on Dask workers (:mod:`insilico.fit.distributed`); the
        estimates are the same, bit for bit, as in this process.
    """
    start = time.perf_counter()
    problem = _Objective(model, dataset.table, backend)
    phi0 = problem.start()
    first = problem(phi0)
    if not np.isfinite(first):
        raise SpecError("model", model.name, "finite likelihood at the starting values")
    messages = list(problem.messages)
    if phi0.size:
        res = minimize(
            problem,
            phi0,
            jac=problem.gradient,
            method="L-BFGS-B",
            options={"maxiter": max_iterations, "ftol": 1e-10, "gtol": 1e-4},
        )
        phi, success, nit, why = res.x, bool(res.success), int(res.nit), res.message
    else:
        phi, success, nit, why = phi0, True, 0, ""
    final = problem(phi)
    if not success:
        messages.append(f"the estimation did not converge: {why}")
    se = _standard_errors(problem, phi, messages)
    fitted = problem.model_at(phi)
    return FitResult(
        model=fitted,
        estimates=_estimates_table(problem, phi, se),
        ofv=final,
        eta=problem.eta,
        converged=success,
        iterations=nit,
        runtime_s=time.perf_counter() - start,
        n_subjects=problem.problem.n_subjects,
        n_observations=int(problem.problem.n_observations.sum()),
        messages=messages,
        fixed={n: v for n, v in model_values(fitted).items() if n in problem.held},
    )


def _estimates_table(problem: _Objective, phi: np.ndarray, se: np.ndarray) -> pd.DataFrame:
    """``parameter, estimate, se, rse_pct`` of the estimated values at ``phi``, ``se`` from
    :func:`_standard_errors`; ``rse_pct = 100 se / |estimate|``."""
    est = problem.report(phi)
    with np.errstate(divide="ignore", invalid="ignore"):
        rse = 100.0 * se / np.abs(est)
    return pd.DataFrame({"parameter": problem.names, "estimate": est, "se": se, "rse_pct": rse})


def _standard_errors(problem: _Objective, phi: np.ndarray, messages: list[str]) -> np.ndarray:
    """SEs of the reported values (:attr:`_Objective.names`).

    The covariance of ``phi`` is twice the inverse Hessian of the OFV by second differences,
    the conditional modes re-solved at every point (the marginal, observed information); the
    reported values' covariance follows by the delta method, ``G C G'`` with ``G`` the
    derivatives of the values in ``phi`` (for a log-scale value, ``SE = value · SE(phi)``).
    """
    n = phi.size
    m = len(problem.names)
    if n == 0:
        return np.full(m, np.nan)
    h = HESSIAN_STEP
    eta_hat = problem.eta.copy()

    def ofv(x):
        problem.eta = eta_hat.copy()
        return problem(x)

    f0 = ofv(phi)
    H = np.zeros((n, n))
    plus = np.empty(n)
    minus = np.empty(n)
    for j in range(n):
        e = np.zeros(n)
        e[j] = h
        plus[j], minus[j] = ofv(phi + e), ofv(phi - e)
        H[j, j] = (plus[j] - 2 * f0 + minus[j]) / h**2
    for j in range(n):
        for k in range(j + 1, n):
            e = np.zeros(n)
            e[j] = e[k] = h
            fpp, fmm = ofv(phi + e), ofv(phi - e)
            # (f(+j+k) + f(-j-k) - f(+j) - f(-j) - f(+k) - f(-k) + 2 f0) / (2 h^2)
            H[j, k] = H[k, j] = (fpp + fmm - plus[j] - minus[j] - plus[k] - minus[k] + 2 * f0) / (
                2 * h**2
            )
    problem.eta = eta_hat
    try:
        if not np.isfinite(H).all():
            raise np.linalg.LinAlgError("non-finite")
        w = np.linalg.eigvalsh(H)
        if w.min() <= 1e-8 * max(w.max(), 1.0):
            raise np.linalg.LinAlgError("singular")
        # OFV = -2 log L: the covariance is 2 H^-1
        cov = 2.0 * np.linalg.inv(H)
    except np.linalg.LinAlgError:
        messages.append(
            "the observed information matrix is singular: standard errors are not available "
            "(a parameter may not be identifiable from these data)"
        )
        return np.full(m, np.nan)
    G = np.empty((m, n))
    for j in range(n):
        e = np.zeros(n)
        e[j] = DELTA_STEP
        G[:, j] = (problem.report(phi + e) - problem.report(phi - e)) / (2 * DELTA_STEP)
    return np.sqrt(np.clip(np.einsum("ij,jk,ik->i", G, cov, G), 0.0, None))


def diagnostics(fit: FitResult, dataset) -> pd.DataFrame:
    """Per record: ``PRED``, ``IPRED``, ``IWRES`` and ``CWRES`` at the estimates.

    ``CWRES`` are the conditional weighted residuals of Hooker et al. 2007
    (doi:10.1007/s11095-007-9361-x): each subject's residuals about the first-order
    prediction at its conditional mode, ``y - f(eta_i) + J_i eta_i``, decorrelated by the
    Cholesky factor of ``J_i Omega J_i' + diag(v)``. NaN on records that are not observations.

    An observation below its quantification limit (``BLQ`` 1) has a prediction but NaN
    ``IWRES`` and ``CWRES``: its value is unknown, so it has no residual. A subject's other
    ``CWRES`` are decorrelated over its quantified observations alone (their eta is still the
    conditional mode given every observation, the censored ones included).
    """
    problem = SubjectProblem(fit.model, dataset.table)
    eta = fit.eta
    pred = problem.predictions(np.zeros_like(eta))
    ipred = problem.predictions(eta)
    err = fit.model.residual_error
    if err is None:  # SubjectProblem refuses such a model already
        raise SpecError("residual_error", None, "a model with a residual error model")
    obs = problem.obs.copy()
    obs[obs] = ~problem.censored
    y = problem.y
    if err.exponential is not None:
        var_i = np.full(len(y), err.exponential**2)
        resid_i = np.log(y) - np.log(ipred)
    else:
        var_i = (err.additive or 0.0) ** 2 + ((err.proportional or 0.0) * ipred) ** 2
        resid_i = y - ipred
    with np.errstate(divide="ignore", invalid="ignore"):
        iwres = np.where(obs, resid_i / np.sqrt(var_i), np.nan)
    J = problem.jacobian(eta)
    cwres = np.full(len(y), np.nan)
    omega = problem.omega
    for i in range(problem.n_subjects):
        rows = np.flatnonzero(obs & (problem.subject == i))
        if rows.size == 0:
            continue
        Ji = J[rows]
        cov = Ji @ omega @ Ji.T + np.diag(var_i[rows])
        r = resid_i[rows] + Ji @ eta[i]
        L = np.linalg.cholesky(cov)
        cwres[rows] = np.linalg.solve(L, r)
    return pd.DataFrame({"PRED": pred, "IPRED": ipred, "IWRES": iwres, "CWRES": cwres})


def individual_table(fit: FitResult, dataset) -> pd.DataFrame:
    """Per subject: ``ID``, individual parameters by name and ``eta_<parameter>``."""
    from insilico.model.variability import apply_eta

    problem = SubjectProblem(fit.model, dataset.table)
    table = dataset.table
    first = table.groupby("SUBJECT", sort=True).head(1)
    rows = first.index.to_numpy()
    values = apply_eta(problem.typical, fit.model, fit.eta[problem.subject])
    out = pd.DataFrame({"ID": first["ID"].to_numpy()})
    for name in fit.model.parameters:
        out[name] = np.asarray(values[name])[rows]
    for j, name in enumerate(fit.model.eta_names()):
        out[f"eta_{name}"] = fit.eta[:, j]
    return out


def marginal_fit(model, table: pd.DataFrame, messages: list[str], held=(), backend=None):
    """The FOCE-I objective at ``model``'s values, the MAP estimates there and the standard
    errors from the observed information (for estimates found by another method, SAEM).

    ``held``: names (as in :meth:`Model.estimate_names`) the other method kept at their
    values, besides the model's ``fixed``; they get no standard error. ``backend``: as in
    :func:`fit_focei`.

    Returns
    -------
    ofv : float
    eta : ndarray, shape (n_subjects, n_eta)
    estimates : DataFrame
        ``parameter, estimate, se, rse_pct``, as :func:`fit_focei` reports them.
    converged : bool
        Whether every subject's MAP estimate converged.
    fixed : dict of str to float
        The values held, by name.
    """
    from insilico.model import model_from_dict, model_to_dict

    if held:
        data = model_to_dict(model)
        data["fixed"] = sorted(set(data.get("fixed") or ()) | set(held))
        model = model_from_dict(data)
    objective = _Objective(model, table, backend)
    phi = objective.start()
    problem = objective.problem.with_model(objective.model_at(phi))
    post = solve_map(problem, max_iterations=100, tolerance=1e-8)
    objective.eta = post.eta
    ofv = objective.ofv_value(problem.model, post.eta)
    se = _standard_errors(objective, phi, messages)
    objective.eta = post.eta
    fixed = {n: v for n, v in model_values(model).items() if n in objective.held}
    estimates = _estimates_table(objective, phi, se)
    return ofv, post.eta, estimates, bool(post.converged.all()), fixed
