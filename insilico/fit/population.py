"""Population estimation by first-order conditional estimation with interaction (FOCE-I).

Each subject's marginal likelihood is approximated around its conditional mode ``eta_i``
(:mod:`insilico.fit.posterior`) by the Laplace approximation with the Gauss-Newton (Fisher)
information ``H_i = J_i' W_i J_i + Omega^-1``, the residual variance evaluated at the
individual prediction (the interaction), as in NONMEM's FOCE-I:

    OFV = -2 log L = sum_i [ 2 obj_i(eta_i) + log |Omega| + log |H_i| ]

with ``obj_i`` the subject's negative log posterior (observations' -log likelihood, including
``log(2 pi v)``, plus ``eta' Omega^-1 eta / 2``). The population parameters — the typical
values of the model's parameters, the IIV variances (diagonal ``iiv``) and the residual error
SDs — are estimated on the log scale by L-BFGS-B. Gradients are central differences with each
subject's conditional mode held fixed (its objective is stationary there), and every
objective evaluation re-solves the conditional modes from the previous ones. Standard errors
come from the inverse of the Hessian of the OFV by second differences, the conditional modes
re-solved at every point (the observed Fisher information of the marginal likelihood); where
it is singular they are NaN and the result says so.

Covariate effects, IIV blocks and inter-occasion variability are kept at their model values.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from insilico.errors import SpecError
from insilico.fit.posterior import SubjectProblem, solve_map

#: finite-difference step on the log-scale population parameters
STEP = 1e-4


@dataclass
class FitResult:
    """A population fit.

    Attributes
    ----------
    model : Model
        The model with the estimates in place (``fit.yaml``).
    estimates : DataFrame
        ``parameter, estimate, se, rse_pct`` (typical values by name, ``omega2_<p>``,
        ``sigma_<kind>`` as SDs).
    ofv : float
        -2 log likelihood (FOCE-I), including ``log(2 pi)`` terms.
    eta : ndarray, shape (n_subjects, n_eta)
        Conditional modes at the estimates.
    converged : bool
    iterations : int
    runtime_s : float
    n_subjects, n_observations : int
    messages : list of str
    """

    model: object
    estimates: pd.DataFrame
    ofv: float
    eta: np.ndarray
    converged: bool
    iterations: int
    runtime_s: float
    n_subjects: int
    n_observations: int
    messages: list[str] = field(default_factory=list)

    @property
    def aic(self) -> float:
        """Akaike's information criterion, OFV + 2 p."""
        return self.ofv + 2 * len(self.estimates)

    @property
    def bic(self) -> float:
        """Schwarz's criterion, OFV + p log(n observations)."""
        return self.ofv + len(self.estimates) * math.log(max(self.n_observations, 1))


class _Objective:
    """The FOCE-I OFV as a function of the log-scale population parameters."""

    def __init__(self, model, table: pd.DataFrame):
        if model.iiv is None or model.iiv.blocks:
            raise SpecError("iiv", None, "diagonal IIV (no blocks) for a FOCE-I fit")
        self.base = model
        self.problem = SubjectProblem(model, table)
        if (self.problem.n_observations == 0).any():
            i = int(np.flatnonzero(self.problem.n_observations == 0)[0])
            who = table.loc[table["SUBJECT"] == i, "ID"].iloc[0]
            raise SpecError(f"subject {who}", "no observations", "observations in every subject")
        self.theta_names = [p for p in model.parameters if p != "n_transit"]
        self.eta_names = list(model.eta_names())
        err = model.residual_error.model_dump(exclude_none=True)
        self.sigma_names = [k for k, v in err.items() if v]
        self.eta = np.zeros((self.problem.n_subjects, len(self.eta_names)))
        self.calls = 0

    def start(self) -> np.ndarray:
        m = self.base
        theta = [math.log(m.parameters[p]) for p in self.theta_names]
        omega = [math.log(m.iiv.variances[p]) for p in self.eta_names]
        err = m.residual_error.model_dump(exclude_none=True)
        sigma = [math.log(err[k]) for k in self.sigma_names]
        return np.array(theta + omega + sigma, dtype=float)

    def model_at(self, phi: np.ndarray):
        nt, ne = len(self.theta_names), len(self.eta_names)
        params = {p: float(math.exp(v)) for p, v in zip(self.theta_names, phi[:nt], strict=True)}
        omega = np.diag(np.exp(phi[nt : nt + ne]))
        sigma = {
            k: float(math.exp(v)) for k, v in zip(self.sigma_names, phi[nt + ne :], strict=True)
        }
        return self.base.with_estimates(parameters=params, omega=omega, residual_error=sigma)

    def ofv_at(self, problem: SubjectProblem, eta: np.ndarray) -> float:
        f = problem.predictions(eta)
        obj = problem.objective(eta, f)
        J = problem.jacobian(eta)
        _, info = problem.information(eta, f, J)
        sign, logdet_info = np.linalg.slogdet(info)
        _, logdet_omega = np.linalg.slogdet(problem.omega)
        total = 2.0 * obj.sum() + problem.n_subjects * logdet_omega + logdet_info.sum()
        return float(total) if np.isfinite(total) and (sign > 0).all() else math.inf

    def __call__(self, phi: np.ndarray) -> float:
        self.calls += 1
        try:
            problem = self.problem.with_model(self.model_at(phi))
        except SpecError:
            return math.inf
        post = solve_map(problem, self.eta, max_iterations=50, tolerance=1e-7)
        value = self.ofv_at(problem, post.eta)
        if np.isfinite(value):
            self.eta = post.eta
        return value

    def gradient(self, phi: np.ndarray) -> np.ndarray:
        """Central differences with the conditional modes held at their current values."""
        g = np.zeros_like(phi)
        for j in range(phi.size):
            up, dn = phi.copy(), phi.copy()
            up[j] += STEP
            dn[j] -= STEP
            fu = self.ofv_at(self.problem.with_model(self.model_at(up)), self.eta)
            fd = self.ofv_at(self.problem.with_model(self.model_at(dn)), self.eta)
            g[j] = (fu - fd) / (2 * STEP)
        return g


def fit_focei(model, dataset, *, max_iterations: int = 200) -> FitResult:
    """Estimate the population parameters of ``model`` from ``dataset`` by FOCE-I.

    Parameters
    ----------
    model : Model
        The model with starting values (typical values, diagonal ``iiv``, ``residual_error``).
    dataset : Dataset
        NONMEM-format data with observations.
    max_iterations : int
        L-BFGS-B iterations at most.
    """
    start = time.perf_counter()
    problem = _Objective(model, dataset.table)
    phi0 = problem.start()
    first = problem(phi0)
    if not np.isfinite(first):
        raise SpecError("model", model.name, "finite likelihood at the starting values")
    res = minimize(
        problem,
        phi0,
        jac=problem.gradient,
        method="L-BFGS-B",
        options={"maxiter": max_iterations, "ftol": 1e-10, "gtol": 1e-4},
    )
    phi = res.x
    final = problem(phi)
    messages = []
    if not res.success:
        messages.append(f"the estimation did not converge: {res.message}")
    se = _standard_errors(problem, phi, messages)
    names = (
        problem.theta_names
        + [f"omega2_{p}" for p in problem.eta_names]
        + [f"sigma_{k}" for k in problem.sigma_names]
    )
    est = np.exp(phi)
    # delta method: SE of exp(phi) = exp(phi) SE(phi)
    se_est = est * se
    estimates = pd.DataFrame(
        {
            "parameter": names,
            "estimate": est,
            "se": se_est,
            "rse_pct": 100.0 * se_est / est,
        }
    )
    return FitResult(
        model=problem.model_at(phi),
        estimates=estimates,
        ofv=final,
        eta=problem.eta,
        converged=bool(res.success),
        iterations=int(res.nit),
        runtime_s=time.perf_counter() - start,
        n_subjects=problem.problem.n_subjects,
        n_observations=int(problem.problem.n_observations.sum()),
        messages=messages,
    )


def _standard_errors(problem: _Objective, phi: np.ndarray, messages: list[str]) -> np.ndarray:
    """SEs of the log-scale parameters from the Hessian of the OFV (second differences, the
    conditional modes re-solved at every point: the marginal, observed information)."""
    n = phi.size
    h = 1e-2
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
        return np.sqrt(np.diag(cov))
    except np.linalg.LinAlgError:
        messages.append(
            "the observed information matrix is singular: standard errors are not available "
            "(a parameter may not be identifiable from these data)"
        )
        return np.full(n, np.nan)


def diagnostics(fit: FitResult, dataset) -> pd.DataFrame:
    """Per record: ``PRED``, ``IPRED``, ``IWRES`` and ``CWRES`` at the estimates.

    ``CWRES`` are the conditional weighted residuals of Hooker et al. 2007
    (doi:10.1007/s11095-007-9361-x): each subject's residuals about the first-order
    prediction at its conditional mode, ``y - f(eta_i) + J_i eta_i``, decorrelated by the
    Cholesky factor of ``J_i Omega J_i' + diag(v)``. NaN on records that are not observations.
    """
    problem = SubjectProblem(fit.model, dataset.table)
    eta = fit.eta
    pred = problem.predictions(np.zeros_like(eta))
    ipred = problem.predictions(eta)
    err = fit.model.residual_error
    obs = problem.obs
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
