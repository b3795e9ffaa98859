"""Population estimation by the stochastic approximation EM algorithm (SAEM).

Kuhn E, Lavielle M (2004), "Coupling a stochastic approximation version of EM with an MCMC
procedure", ESAIM: Probability and Statistics 8:115-131, as implemented in Monolix, saemix
and nlmixr2. Every iteration ``k``:

1. **Simulation** (E-step): each subject's random effects ``eta_i`` move along a Markov chain
   whose stationary law is their conditional distribution given the subject's data and the
   current population parameters. Three Metropolis-Hastings kernels, as in saemix: proposals
   from the prior ``N(0, Omega)``, a random walk on all components and a random walk on one
   component at a time; the random walks' step sizes adapt towards an acceptance rate of 0.4.
   All subjects move together: one pass of the event kernel per proposal.
2. **Stochastic approximation** of the complete-data sufficient statistics with step
   ``gamma_k``: 1 during the exploration phase, then ``1 / (k - K1)`` (the smoothing phase,
   which makes the estimates converge).
3. **Maximization**: parameters with IIV are mu-referenced (``log P_i = log P + covariate
   terms + eta_i``), so their typical values and ``Omega`` are closed-form functions of the
   statistics (``Omega`` restricted to the model's diagonal and blocks). During exploration
   the variances shrink by at most 5 % per iteration (simulated annealing, as in Monolix and
   saemix), which keeps the chains exploring. Residual error SDs and typical values without
   IIV have no closed form: they are optimized on the current simulated individual
   predictions and approximated with the same step (as saemix does for the combined error
   model).

Covariate effects are kept at their model values. The objective function value is the FOCE-I
approximation of ``-2 log L`` at the final estimates and the standard errors come from its
observed information (:mod:`insilico.fit.population`), as nlmixr2 reports for SAEM fits;
individual estimates are the MAP (empirical Bayes) estimates at the final parameters.

The random numbers are drawn for all subjects in subject order from one seeded generator:
the same data, model and seed give the same estimates, bit for bit.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from insilico.errors import SpecError
from insilico.fit.posterior import SubjectProblem
from insilico.model.covariates import typical_parameters

#: target acceptance rate of the random-walk kernels, and their adaptation rate (saemix)
TARGET_ACCEPTANCE = 0.4
ADAPTATION = 0.4
#: largest shrinkage of a variance per exploration iteration (simulated annealing)
ANNEALING = 0.95


@dataclass(frozen=True)
class SaemSettings:
    """Iterations and Markov-chain settings of :func:`fit_saem`.

    Attributes
    ----------
    burn_in : int
        Simulation-only iterations before the first update of the parameters.
    exploration : int
        Iterations with step 1 (K1).
    smoothing : int
        Iterations with step ``1 / (k - K1)`` (K2).
    prior_moves, walk_moves, component_moves : int
        Proposals per iteration of each Metropolis-Hastings kernel (per component for the
        last).
    seed : int
        Seed of the random numbers.
    """

    burn_in: int = 5
    exploration: int = 150
    smoothing: int = 100
    prior_moves: int = 2
    walk_moves: int = 2
    component_moves: int = 2
    seed: int = 20041201


def _draws(rng: np.random.Generator, n: int, k: int, settings: SaemSettings) -> dict:
    """One iteration's random numbers for ``n`` subjects, drawn in a fixed order."""
    return {
        "prior_z": rng.standard_normal((settings.prior_moves, n, k)),
        "prior_u": rng.random((settings.prior_moves, n)),
        "walk_z": rng.standard_normal((settings.walk_moves, n, k)),
        "walk_u": rng.random((settings.walk_moves, n)),
        "comp_z": rng.standard_normal((settings.component_moves, k, n)),
        "comp_u": rng.random((settings.component_moves, k, n)),
    }


def slice_draws(draws: dict, a: int, b: int) -> dict:
    """The random numbers of subjects ``a`` to ``b - 1`` (see :func:`_draws` for the axes)."""
    out = {}
    for key, value in draws.items():
        if key in ("prior_z", "walk_z"):
            out[key] = value[:, a:b, :]
        else:
            out[key] = value[..., a:b]
    return out


def data_nll(problem: SubjectProblem, f: np.ndarray) -> np.ndarray:
    """Each subject's -log likelihood of its data at the predictions ``f``."""
    nll, _, _ = problem.residual_terms(f)
    out = np.bincount(problem.subject[problem.obs], weights=nll, minlength=problem.n_subjects)
    out[~np.isfinite(out)] = np.inf
    return out


@dataclass
class ChainStep:
    """A chunk of subjects after one simulation step.

    Attributes
    ----------
    eta : ndarray, shape (n, n_eta)
        The chains' new states.
    f : ndarray, shape (n_records,)
        Predictions at every record of the chunk at ``eta``.
    walk_accepted : int
        Accepted proposals of the all-component random walk (over subjects and moves).
    component_accepted : ndarray of int, shape (n_eta,)
        Accepted proposals of the one-component random walk, per component.
    """

    eta: np.ndarray
    f: np.ndarray
    walk_accepted: int
    component_accepted: np.ndarray


def simulation_step(
    problem: SubjectProblem, eta: np.ndarray, step: np.ndarray, draws: dict
) -> ChainStep:
    """Move every subject's chain by the three Metropolis-Hastings kernels.

    Each subject's moves depend only on its own data, its state and its random numbers, so
    the result of a subject is the same whatever chunk it is simulated in.
    """
    n, k = eta.shape
    f = problem.predictions(eta)
    nll = data_nll(problem, f)
    omega_inv = problem.omega_inv
    chol = np.linalg.cholesky(problem.omega)
    rows = problem.subject

    def prior(x):
        return 0.5 * np.einsum("ij,jk,ik->i", x, omega_inv, x)

    def accept(proposal, extra, u):
        nonlocal eta, f, nll
        f_new = problem.predictions(proposal)
        nll_new = data_nll(problem, f_new)
        with np.errstate(invalid="ignore"):
            log_ratio = nll - nll_new + extra
        ok = np.isfinite(nll_new) & (np.log(u) < log_ratio)
        eta = np.where(ok[:, None], proposal, eta)
        f = np.where(ok[rows], f_new, f)
        nll = np.where(ok, nll_new, nll)
        return ok

    for m in range(draws["prior_z"].shape[0]):
        # independent proposals from the prior: the prior terms cancel
        accept(draws["prior_z"][m] @ chol.T, np.zeros(n), draws["prior_u"][m])
    walk = 0
    for m in range(draws["walk_z"].shape[0]):
        proposal = eta + draws["walk_z"][m] * step[0]
        walk += int(accept(proposal, prior(eta) - prior(proposal), draws["walk_u"][m]).sum())
    component = np.zeros(k, dtype=np.int64)
    for m in range(draws["comp_z"].shape[0]):
        for j in range(k):
            proposal = eta.copy()
            proposal[:, j] += draws["comp_z"][m, j] * step[1, j]
            ok = accept(proposal, prior(eta) - prior(proposal), draws["comp_u"][m, j])
            component[j] += int(ok.sum())
    return ChainStep(eta, f, walk, component)


class _Parameters:
    """The population parameters being estimated and how they map onto the model.

    Parameters with IIV are mu-referenced: each subject's ``log P_i = log P + sum_c beta_c
    g_c(x_i) + eta_i``, linear in ``log P`` and in the coefficients of power
    (``g = log(x / reference)``), exponential (``g = x - reference``) and categorical
    (``g = 1[x = category]``, coefficient ``log factor``) covariate effects, which are then
    estimated by regression in the M-step. Effects that are not of this form (linear effects,
    effects on parameters without IIV, covariates that change within a subject), the first
    category of a categorical effect (its reference) and the names in the model's ``fixed``
    are held at their values; ``messages`` says which.
    """

    def __init__(self, model, table):
        if model.iiv is None or not model.eta_names():
            raise SpecError("iiv", None, "a model with between-subject variability for SAEM")
        if model.iov:
            raise SpecError("iov", dict(model.iov), "no inter-occasion variability for SAEM")
        self.model = model
        self.held = set(model.fixed or ())
        self.messages: list[str] = []
        err = model.residual_error.model_dump(exclude_none=True)
        self.sigma_names = [k for k, v in err.items() if v and f"sigma_{k}" not in self.held]
        self.eta_names = list(model.eta_names())
        integer = set(model.parameters) - set(model.estimate_names())
        self.fixed_names = [
            p
            for p in model.parameters
            if p not in self.eta_names and p not in integer and p not in self.held
        ]
        n = len(self.eta_names)
        self.allowed = np.eye(n, dtype=bool)
        self.held_omega = np.zeros((n, n), dtype=bool)
        k = len(model.iiv.variances)
        for i, p in enumerate(self.eta_names[:k]):
            self.held_omega[i, i] = f"omega2_{p}" in self.held
        for b, block in enumerate(model.iiv.blocks):
            m = len(block.parameters)
            self.allowed[k : k + m, k : k + m] = True
            if set(model.block_estimate_names(b)) <= self.held:
                self.held_omega[k : k + m, k : k + m] = True
            k += m
        first = table.groupby("SUBJECT", sort=True).head(1).reset_index(drop=True)
        self.baseline = first
        self.regressors = self._regressors(model, table, first)

    def _regressors(self, model, table, first) -> dict[str, list[tuple[str, np.ndarray]]]:
        """Per parameter with IIV: ``(effect name, g per subject)`` of its estimated effects."""
        out: dict[str, list[tuple[str, np.ndarray]]] = {p: [] for p in self.eta_names}
        names = model.covariate_effect_names()
        seen: set[tuple[str, str]] = set()
        subject = table["SUBJECT"].to_numpy()
        for name, (param, column, category) in names.items():
            effect = model.covariates[param][column]
            reason = None
            if name in self.held:
                continue
            if param not in self.eta_names:
                reason = "its parameter has no IIV"
            elif effect.kind == "linear":
                reason = "a linear effect is not linear in log P"
            elif category is not None and (param, column) not in seen:
                seen.add((param, column))
                if f"{param}" not in self.held:
                    reason = "the reference category (the first listed)"
            if reason is None:
                g = self._regressor(model, table, name, param)
                per_subject = g[_first_rows(subject)]
                if np.ptp(g - per_subject[subject]) > 1e-9:
                    reason = "its covariate changes within a subject"
                elif np.ptp(per_subject) == 0.0:
                    reason = "its covariate has one value in these data"
                else:
                    out[param].append((name, per_subject))
                    continue
            value = _effect_value(model, name)
            self.messages.append(f"{name}: held at {value:g} by SAEM ({reason})")
            self.held.add(name)
        return out

    @staticmethod
    def _regressor(model, table, name, param) -> np.ndarray:
        """``d log P / d beta`` per record (exact for these forms: one unit of beta)."""
        value = _effect_value(model, name)
        effect = model.covariates[param][model.covariate_effect_names()[name][1]]
        step = math.log(value) + 1.0 if effect.kind == "categorical" else value + 1.0
        moved = model.with_estimates(
            covariates={name: math.exp(step) if effect.kind == "categorical" else step}
        )
        n = len(table)
        base = np.log(typical_parameters(model, table, n)[param])
        return np.log(typical_parameters(moved, table, n)[param]) - base

    def log_typical(self, model) -> np.ndarray:
        """Each subject's log typical value (covariates at their first record), (n, n_eta)."""
        values = typical_parameters(model, self.baseline, len(self.baseline))
        return np.column_stack([np.log(values[p]) for p in self.eta_names])

    def sigma(self, model) -> np.ndarray:
        err = model.residual_error.model_dump(exclude_none=True)
        return np.array([err[k] for k in self.sigma_names], dtype=float)

    def fixed(self, model) -> np.ndarray:
        return np.array([model.parameters[p] for p in self.fixed_names], dtype=float)

    def regression(self, model, mean_phi: np.ndarray) -> tuple[dict, dict]:
        """Typical values and covariate effects that best explain the subjects' mean
        individual log parameters ``mean_phi`` (n, n_eta), least squares per parameter."""
        current = self.log_typical(model)
        params: dict[str, float] = {}
        effects: dict[str, float] = {}
        for j, p in enumerate(self.eta_names):
            terms = self.regressors[p]
            log_p = math.log(model.parameters[p])
            free = [g for _, g in terms]
            coef = [
                math.log(_effect_value(model, n))
                if _categorical(model, n)
                else _effect_value(model, n)
                for n, _ in terms
            ]
            # what the held effects add, as the model gives it now
            offset = current[:, j] - log_p - sum(c * g for c, g in zip(coef, free, strict=True))
            target = mean_phi[:, j] - offset
            if p in self.held:
                target = target - log_p
                X = np.column_stack(free) if free else np.zeros((len(target), 0))
            else:
                X = np.column_stack([np.ones(len(target)), *free])
            beta = np.linalg.lstsq(X, target, rcond=None)[0] if X.shape[1] else np.zeros(0)
            if p not in self.held:
                params[p] = float(math.exp(beta[0]))
                beta = beta[1:]
            for (name, _), value in zip(terms, beta, strict=True):
                effects[name] = (
                    float(math.exp(value)) if _categorical(model, name) else float(value)
                )
        return params, effects

    def build(self, model, params, effects, omega, sigma, fixed):
        params = dict(params)
        params.update({p: float(v) for p, v in zip(self.fixed_names, fixed, strict=True)})
        return model.with_estimates(
            parameters=params,
            covariates=effects or None,
            omega=np.where(self.allowed, omega, 0.0),
            residual_error={
                **model.residual_error.model_dump(exclude_none=True),
                **{
                    k: float(v)
                    for k, v in zip(self.sigma_names, sigma, strict=True)
                    if f"sigma_{k}" not in self.held
                },
            },
        )


def _first_rows(subject: np.ndarray) -> np.ndarray:
    """Index of each subject's first record (records sorted by subject)."""
    return np.flatnonzero(np.r_[True, subject[1:] != subject[:-1]])


def _categorical(model, name: str) -> bool:
    return model.covariate_effect_names()[name][2] is not None


def _effect_value(model, name: str) -> float:
    param, column, category = model.covariate_effect_names()[name]
    effect = model.covariates[param][column]
    if category is not None:
        return float(effect.categorical[category])
    return float(getattr(effect, effect.kind))


def _residual_update(problem: SubjectProblem, par: _Parameters, model, f, sigma):
    """Residual SDs that minimize the data's -log likelihood at the predictions ``f``.

    One error component and no censored observation: the closed form (the mean squared
    scaled residual); otherwise a numerical minimization.
    """
    censored = getattr(problem, "censored", None)
    if len(par.sigma_names) == 1 and (censored is None or not censored.any()):
        y, fo = problem.y[problem.obs], f[problem.obs]
        kind = par.sigma_names[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            if kind == "proportional":
                r = (y - fo) / fo
            elif kind == "exponential":
                r = np.log(y) - np.log(fo)
            else:
                r = y - fo
        value = math.sqrt(float(np.mean(r * r)))
        if math.isfinite(value) and value > 0:
            return np.array([value])

    def nll(log_sigma):
        try:
            trial = model.with_estimates(
                residual_error={
                    **model.residual_error.model_dump(exclude_none=True),
                    **dict(zip(par.sigma_names, np.exp(log_sigma).tolist(), strict=True)),
                }
            )
        except (SpecError, ValueError):
            return math.inf
        value, _, _ = problem.with_model(trial).residual_terms(f)
        total = float(value.sum())
        return total if math.isfinite(total) else math.inf

    res = minimize(nll, np.log(sigma), method="Nelder-Mead", options={"xatol": 1e-6})
    return np.exp(res.x)


def _fixed_update(problem: SubjectProblem, par: _Parameters, model, eta, fixed):
    """Typical values without IIV that minimize the data's -log likelihood at ``eta``."""

    def nll(log_values):
        params = dict(zip(par.fixed_names, np.exp(log_values).tolist(), strict=True))
        try:
            trial = problem.with_model(model.with_estimates(parameters=params))
        except (SpecError, ValueError):
            return math.inf
        value, _, _ = trial.residual_terms(trial.predictions(eta))
        total = float(value.sum())
        return total if math.isfinite(total) else math.inf

    n = len(fixed)
    res = minimize(
        nll, np.log(fixed), method="Nelder-Mead", options={"maxfev": 8 * (n + 1), "xatol": 1e-4}
    )
    return np.exp(res.x)


class LocalChains:
    """Simulation steps in this process, all subjects at once."""

    def __init__(self, model, table):
        self.problem = SubjectProblem(model, table)
        self.n_subjects = self.problem.n_subjects

    def step(self, model, eta: np.ndarray, step: np.ndarray, draws: dict) -> ChainStep:
        return simulation_step(self.problem.with_model(model), eta, step, draws)

    def close(self) -> None:
        """Nothing to release."""


def run_saem(model, table, settings: SaemSettings | None = None, chains=None):
    """The SAEM iterations.

    Returns the model at the final estimates, the last chain state (eta), the trace of the
    estimates (a DataFrame, one row per iteration), the messages about values held, and the
    names SAEM held besides the model's ``fixed``.

    Parameters
    ----------
    model : Model
        Starting values.
    table : DataFrame
        A dataset's normalized table (:attr:`insilico.dataset.Dataset.table`).
    settings : SaemSettings, optional
    chains : LocalChains or DaskChains, optional
        Where the simulation steps run (this process by default).
    """
    settings = settings or SaemSettings()
    par = _Parameters(model, table)
    problem = SubjectProblem(model, table)
    if (problem.n_observations == 0).any():
        i = int(np.flatnonzero(problem.n_observations == 0)[0])
        who = table.loc[table["SUBJECT"] == i, "ID"].iloc[0]
        raise SpecError(f"subject {who}", "no observations", "observations in every subject")
    n, k = problem.n_subjects, len(par.eta_names)
    eta = np.zeros((n, k))
    start_nll = data_nll(problem, problem.predictions(eta))
    if not np.isfinite(start_nll).all():
        bad = int(np.flatnonzero(~np.isfinite(start_nll))[0])
        who = table.loc[table["SUBJECT"] == bad, "ID"].iloc[0]
        raise SpecError(
            f"subject {who}",
            "non-finite likelihood at the starting values",
            "predictions > 0 where observations are (check units, doses and CMT)",
        )
    chains = chains or LocalChains(model, table)
    rng = np.random.default_rng(settings.seed)
    current = model
    log_typical = par.log_typical(model)
    omega = problem.omega.copy()
    sigma = par.sigma(model)
    fixed = par.fixed(model)
    step = np.tile(np.sqrt(np.diag(omega)), (2, 1))
    s_phi = log_typical.copy()
    s_phi2 = omega + s_phi.T @ s_phi / n
    effect_names = [name for p in par.eta_names for name, _ in par.regressors[p]]
    total = settings.burn_in + settings.exploration + settings.smoothing
    names = (
        par.eta_names
        + effect_names
        + par.fixed_names
        + [f"omega2_{p}" for p in par.eta_names]
        + [f"sigma_{k}" for k in par.sigma_names]
    )
    trace = np.empty((total, len(names)))
    for it in range(total):
        moved = chains.step(current, eta, step, _draws(rng, n, k, settings))
        eta = moved.eta
        if settings.walk_moves:
            rate = moved.walk_accepted / (n * settings.walk_moves)
            step[0] *= 1.0 + ADAPTATION * (rate - TARGET_ACCEPTANCE)
        if settings.component_moves:
            rate = moved.component_accepted / (n * settings.component_moves)
            step[1] *= 1.0 + ADAPTATION * (rate - TARGET_ACCEPTANCE)
        if it >= settings.burn_in:
            k_sa = it - settings.burn_in + 1
            gamma = 1.0 if k_sa <= settings.exploration else 1.0 / (k_sa - settings.exploration)
            # the subjects' individual log parameters, and their stochastic approximations
            phi = log_typical + eta
            s_phi = s_phi + gamma * (phi - s_phi)
            s_phi2 = s_phi2 + gamma * (phi.T @ phi / n - s_phi2)
            params, effects = par.regression(current, s_phi)
            mu = par.log_typical(
                current.with_estimates(parameters=params, covariates=effects or None)
            )
            new_omega = s_phi2 - (s_phi.T @ mu + mu.T @ s_phi) / n + mu.T @ mu / n
            new_omega = np.where(par.allowed, new_omega, 0.0)
            if k_sa <= settings.exploration:
                d = np.diag(new_omega)
                floor = ANNEALING * np.diag(omega)
                scale = np.sqrt(np.maximum(d, floor) / np.maximum(d, 1e-300))
                new_omega = new_omega * np.outer(scale, scale)
            new_omega = np.where(par.held_omega, omega, new_omega)
            problem = problem.with_model(current)
            if sigma.size:
                sigma_star = _residual_update(problem, par, current, moved.f, sigma)
                sigma = np.sqrt(sigma**2 + gamma * (sigma_star**2 - sigma**2))
            if fixed.size:
                fixed_star = _fixed_update(problem, par, current, eta, fixed)
                fixed = np.exp(np.log(fixed) + gamma * (np.log(fixed_star) - np.log(fixed)))
            # each subject keeps its individual parameters: eta moves with its typical value
            eta = eta + (log_typical - mu)
            log_typical, omega = mu, new_omega
            current = par.build(current, params, effects, omega, sigma, fixed)
        trace[it] = np.concatenate(
            [
                [current.parameters[p] for p in par.eta_names],
                [_effect_value(current, name) for name in effect_names],
                fixed,
                np.diag(omega),
                sigma,
            ]
        )
    frame = pd.DataFrame(trace, columns=names)
    frame.index = pd.RangeIndex(1, total + 1, name="iteration")
    return current, eta, frame, par.messages, sorted(par.held - set(model.fixed or ()))


#: stationarity check at the end of exploration: windows of this many iterations, and the
#: largest relative change of a window's mean value allowed between the last two
SETTLE_WINDOW = 25
SETTLE_TOLERANCE = {"typical": 0.05, "omega2": 0.25, "sigma": 0.05}


def drifting_parameters(trace: pd.DataFrame, settings: SaemSettings) -> list[str]:
    """Parameters still moving at the end of exploration.

    A parameter drifts when the mean over the last ``SETTLE_WINDOW`` exploration iterations
    differs from the mean over the window before by more than ``SETTLE_TOLERANCE`` (relative)
    and by more than twice the spread (SD) of its values over those iterations: a trend, not
    the chains' noise, which is large with few subjects.
    """
    end = settings.burn_in + settings.exploration
    if settings.exploration < 2 * SETTLE_WINDOW:
        return []
    values = trace.to_numpy()
    window = values[end - 2 * SETTLE_WINDOW : end]
    last = window[SETTLE_WINDOW:].mean(axis=0)
    before = window[:SETTLE_WINDOW].mean(axis=0)
    spread = np.sqrt(
        0.5 * (window[SETTLE_WINDOW:].var(axis=0) + window[:SETTLE_WINDOW].var(axis=0))
    )
    out = []
    for name, a, b, sd in zip(trace.columns, last, before, spread, strict=True):
        kind = name.split("_")[0] if name.startswith(("omega2_", "sigma_")) else "typical"
        change = abs(a - b)
        if change > SETTLE_TOLERANCE[kind] * max(abs(a), 1e-12) and change > 2.0 * sd:
            out.append(name)
    return out


def fit_saem(model, dataset, settings: SaemSettings | None = None, chains=None, backend=None):
    """Estimate the population parameters of ``model`` from ``dataset`` by SAEM.

    Parameters
    ----------
    model : Model
        The model with starting values (typical values, ``iiv`` with optional blocks,
        ``residual_error``).
    dataset : Dataset
        NONMEM-format data with observations.
    settings : SaemSettings, optional
        Iterations and seed.
    chains : DaskChains, optional
        Run the simulation steps on a Dask cluster (:mod:`insilico.fit.distributed`).
    backend : DaskTerms, optional
        Compute the FOCE-I objective and standard errors at the estimates there too.

    Returns
    -------
    FitResult
        ``method`` "SAEM"; ``ofv`` the FOCE-I approximation of -2 log L at the estimates (with
        standard errors from its observed information); ``eta`` the MAP estimates;
        ``iterations`` the SAEM iterations; ``trace`` the estimates at every iteration.
    """
    from insilico.fit.population import FitResult, marginal_fit

    settings = settings or SaemSettings()
    start = time.perf_counter()
    final, _, trace, notes, held = run_saem(model, dataset.table, settings, chains)
    messages: list[str] = list(notes)
    drifting = drifting_parameters(trace, settings)
    if drifting:
        messages.append(
            "SAEM did not settle during exploration (still moving: "
            f"{', '.join(drifting)}): give more exploration iterations or better starting values"
        )
    ofv, eta, estimates, map_converged, fixed = marginal_fit(final, dataset.table, messages, held)
    if not map_converged:
        messages.append("the individual (MAP) estimates did not all converge")
    return FitResult(
        model=final,
        estimates=estimates,
        ofv=ofv,
        eta=eta,
        converged=bool(np.isfinite(ofv)) and map_converged and not drifting,
        iterations=settings.burn_in + settings.exploration + settings.smoothing,
        runtime_s=time.perf_counter() - start,
        n_subjects=int(eta.shape[0]),
        n_observations=int(np.count_nonzero(SubjectProblem(final, dataset.table).obs)),
        messages=messages,
        fixed=fixed,
        method="SAEM",
        trace=trace,
    )
