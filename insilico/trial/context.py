"""Everything a task needs, resolved once from a :class:`TrialSpec` (small and picklable).

:func:`build_context` loads the cohort spec, profiles the compounds (failed ones are kept with
their reasons), expands the arms (compound x regimen, plus placebo), fixes the output grid and
the band grids. Tasks receive the context and a block of patient ids; nothing in it depends on
how the run is chunked or where it runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from insilico.cohort import CohortSpec, load_cohort_spec
from insilico.cohort.from_data import DatasetCohortSpec, load_dataset_cohort
from insilico.errors import CompoundError, SpecError
from insilico.pk.regimen import Regimen, parse_regimen
from insilico.rng import stream
from insilico.trial.spec import PLACEBO, AdverseEventSpec, BiomarkerSpec, PDSpec, TrialSpec
from insilico.trial.spec_design import DesignSpec, SuccessSpec
from insilico.trial.spec_endpoints import EndpointSpec, SafetySpec
from insilico.twin import IIV

#: Most output times per patient (the regular grid ``0, interval_h, ... duration`` or
#: ``output.times_h``, plus endpoint and visit times). Every output time costs a row of
#: concentration and biomarker values per patient and a row of band counts per arm.
MAX_OUTPUT_TIMES = 100_000

#: Most arms in one trial (compound x regimen, dose-scan doses and placebo included).
MAX_ARMS = 1_000

#: Most arm x output-time cells. The percentile bands hold about 10 kB of counts per arm
#: and output time, so this bounds them to about 2 GB whatever the number of patients.
MAX_ARM_OUTPUT_TIMES = 200_000

#: Typical parameters that carry compound uncertainty (profile field -> twin parameter).
UNCERTAIN_PARAMETERS = {
    "cl_L_per_h": "cl_L_per_h",
    "v_L": "v1_L",
    "ka_per_h": "ka_per_h",
    "fu": "fu",
    "f_bio": "f_bio",
}

#: PD parameter that the potency fills, per PD kind (``c50_from: potency``).
C50_NAME = {
    "emax": "ec50_mg_per_L",
    "sigmoid_emax": "ec50_mg_per_L",
    "irm1": "ic50_mg_per_L",
    "irm2": "ic50_mg_per_L",
    "irm3": "sc50_mg_per_L",
    "irm4": "sc50_mg_per_L",
}


@dataclass(frozen=True)
class BandGrid:
    """Fixed histogram bins for percentile bands (mergeable by adding counts).

    ``log`` grids have ``bins_per_decade`` log10-spaced bins from ``10**lo`` to ``10**hi``;
    linear grids have bins of ``width`` from ``lo`` to ``hi``. Bin 0 holds values below the
    lowest edge (and zeros of a log grid), the last bin values at or above the highest edge.
    """

    quantity: str
    scale: str  # "log" or "linear"
    lo: float
    hi: float
    width: float  # log10 units for "log", the quantity's unit for "linear"

    @property
    def n_inner(self) -> int:
        return int(round((self.hi - self.lo) / self.width))

    @property
    def n_bins(self) -> int:
        return self.n_inner + 2


#: Concentration bands: 1e-6 to 1e4 mg/L, 50 bins per decade (bin ratio 10**0.02 = 1.047).
CONC_GRID = BandGrid("conc_mg_per_L", "log", -6.0, 4.0, 0.02)
#: Biomarker bands: change from baseline -100 % to +300 % in 0.5 percentage-point bins.
BIOMARKER_GRID = BandGrid("biomarker_change_pct", "linear", -100.0, 300.0, 0.5)


@dataclass(frozen=True)
class Arm:
    """One resolved arm.

    ``typical`` holds the compound's typical PK values for a 70 kg adult with reference renal
    function (``cl_L_per_h``, ``v1_L`` = Vss, ``ka_per_h``, ``f_bio``, ``fu``, ``fe``) plus the
    PD parameters with a non-negative value (those can carry IIV); ``pd_fixed`` holds PD
    parameters used as given (e.g. a negative ``emax``). ``single_dose``: the regimen gives one
    dose (``once``), so its exposure is the AUC from 0 to infinity, not an AUC over a dosing
    interval.
    """

    index: int
    name: str
    compound_id: str
    regimen_name: str
    regimen: Regimen | None  # parsed once here; None for placebo
    typical: dict[str, float] = field(default_factory=dict)
    pd_kind: str = "none"
    pd_effect_compartment: bool = False
    pd_fixed: dict[str, float] = field(default_factory=dict)
    potency_mg_per_L: float = float("nan")
    herg_ic50_mg_per_L: float = float("nan")
    last_interval_h: tuple[float, float] = (0.0, 0.0)
    single_dose: bool = False
    dose_mg: float = float("nan")
    dose_days: float = 1.0
    clogp: float = float("nan")
    structural_alerts: tuple[str, ...] = ()
    log_multipliers: dict[str, tuple[float, ...]] = field(default_factory=dict)
    model: Any = None

    @property
    def is_placebo(self) -> bool:
        return self.compound_id == PLACEBO

    @property
    def regimen_text(self) -> str:
        """The regimen as written ("" for placebo)."""
        return self.regimen.text if self.regimen is not None else ""


@dataclass(frozen=True)
class TrialContext:
    """Resolved trial: what every task reads (see module docstring)."""

    name: str
    seed: int
    n_patients: int
    cohort: Any  # CohortSpec, or a DatasetCohort (a study's subjects)
    arms: tuple[Arm, ...]
    iiv: IIV
    output_times_h: np.ndarray
    duration_h: float
    design: str
    ratios: tuple[float, ...]
    endpoints: tuple[EndpointSpec, ...]
    adverse_events: tuple[AdverseEventSpec, ...]
    has_biomarker: bool
    biomarker_name: str
    biomarker: BiomarkerSpec | None = None
    primary: str | None = None
    safety: SafetySpec = field(default_factory=SafetySpec)
    conduct: DesignSpec = field(default_factory=DesignSpec)
    n_per_trial: int = 0
    n_trials: int = 1
    compound_draws: int = 0
    success: SuccessSpec | None = None
    compound_warnings: tuple[dict[str, str], ...] = ()
    conc_grid: BandGrid = CONC_GRID
    biomarker_grid: BandGrid = BIOMARKER_GRID

    @property
    def responder(self) -> EndpointSpec | None:
        """The primary yes/no endpoint (None without one)."""
        return next((e for e in self.endpoints if e.name == self.primary), None)

    @property
    def declared_events(self) -> tuple[str, ...]:
        """Per-patient event columns (without ``ae_``) of every adverse event the protocol
        declares, serious or not: its ``adverse_events`` and the serious safety events."""
        names = [a.name for a in self.adverse_events] + list(self.serious_events)
        return tuple(dict.fromkeys(names))

    @property
    def serious_events(self) -> tuple[str, ...]:
        """Per-patient event columns (without ``ae_``) that count as serious."""
        out = [a.name for a in self.adverse_events if a.serious]
        if self.safety.qt:
            out += [e for e in self.safety.serious if e.startswith("qt_")]
        if self.safety.liver and "dili" in self.safety.serious:
            out.append("dili")
        return tuple(out)


def _pd_for(spec: TrialSpec, compound_id: str) -> PDSpec | None:
    if spec.biomarker is None:
        return None
    return spec.biomarker.by_compound.get(compound_id, spec.biomarker.pd)


def _typical_from_profile(profile) -> dict[str, float]:
    typ = {"cl_L_per_h": profile.cl_L_per_h.value, "v1_L": profile.v_L.value}
    for name, key in (("ka_per_h", "ka_per_h"), ("f_bio", "f_bio"), ("fu", "fu"), ("fe", "fe")):
        p = getattr(profile, key)
        if p is not None:
            typ[name] = float(p.value)
    return typ


def scale_regimen_text(text: str, dose_mg: float) -> str:
    """The regimen with every dose scaled so that its first dose is ``dose_mg`` (mg or mg/kg
    as written): ``scale_regimen_text("200 mg PO once then 100 mg PO q12h x13", 50)`` gives
    ``"50 mg PO once then 25 mg PO q12h x13"`` (see :meth:`Regimen.scaled`)."""
    regimen = parse_regimen(text)
    first = regimen.series[0].amount
    if not first > 0:
        raise SpecError("dose_scan", text, "a regimen whose first dose is > 0 to scale")
    return regimen.scaled(dose_mg / first).text


def _log_multipliers(seed: int, profile, draws: int) -> dict[str, tuple[float, ...]]:
    """Per compound draw, log multipliers of the typical parameters (``sd_log * z``)."""
    if draws <= 0:
        return {}
    g = stream(seed, f"compound:{profile.id}", 0)
    z = g.standard_normal((draws, len(UNCERTAIN_PARAMETERS)))
    out = {}
    for j, (field_name, name) in enumerate(UNCERTAIN_PARAMETERS.items()):
        p = getattr(profile, field_name)
        sd = float(p.sd_log) if p is not None else 0.0
        if sd > 0:
            out[name] = tuple(float(v) for v in sd * z[:, j])
    return out


def _compound_chemistry(smiles: str) -> tuple[float, tuple[str, ...]]:
    """Crippen logP and the reactive-metabolite alerts of a structure (for the DILI model)."""
    from insilico.chem.alerts import match_alerts
    from insilico.chem.descriptors import compute_descriptors

    clogp = float(compute_descriptors([smiles])["clogp"].iloc[0])
    return clogp, tuple(match_alerts(smiles))


def compound_warnings(profiles) -> list[dict[str, str]]:
    """Compounds whose predicted PK comes from outside the structure model's applicability
    domain (their nearest training structures are too dissimilar or their descriptors out of
    the training ranges): the prediction may be far off."""
    out = []
    for p in profiles:
        predicted = [
            name
            for name in ("cl_L_per_h", "v_L", "fu", "ka_per_h", "f_bio")
            if getattr(p, name, None) is not None and getattr(p, name).source == "predicted"
        ]
        if predicted and p.in_domain is False:
            out.append(
                {
                    "id": p.id,
                    "warning": "outside the PK model's applicability domain; predicted "
                    f"{', '.join(predicted)} may be far off (give measured values)",
                }
            )
    return out


def _c50_name(kind: str) -> str:
    """The PD parameter a compound's potency fills (EC50, IC50 or SC50 of ``kind``)."""
    if kind in C50_NAME:
        return C50_NAME[kind]
    from insilico.pd.registry import get_pd_model

    return next(p for p in get_pd_model(kind).parameters if "c50" in p)


def _protocol_model(spec: TrialSpec):
    """The protocol's model (``model:`` file or inline mapping), or None."""
    if spec.model is None:
        return None
    from insilico.model import load_model, model_from_dict

    if isinstance(spec.model, str):
        return load_model(spec.model)
    return model_from_dict(spec.model, source="model")


def _cohort(spec: TrialSpec, n: int):
    """The trial's cohort: a dataset's subjects (at least ``n`` of them), an inline cohort
    or a cohort file."""
    if isinstance(spec.cohort, DatasetCohortSpec):
        cohort = load_dataset_cohort(spec.cohort)
        if n > cohort.n_subjects:
            raise SpecError(
                "n_patients",
                n,
                f"at most the {cohort.n_subjects} subjects of {Path(cohort.source).name}",
            )
        return cohort
    if isinstance(spec.cohort, CohortSpec):
        return spec.cohort
    return load_cohort_spec(spec.cohort)


def _arm_pairs(
    spec: TrialSpec,
    profile_ids: list[str],
    all_ids: list[str],
    regimens: dict[str, str],
    dose_scan: list[float] | None,
) -> list[tuple[str, str, str | None]]:
    """(compound id, regimen name or text, arm name or None) of every drug arm: the spec's
    arms, every compound with every regimen, or with a dose scan (``dose_scan``, else the
    spec's) each compound's first regimen scaled to each dose."""
    pairs: list[tuple[str, str, str | None]]
    if spec.arms is None:
        pairs = [(cid, rname, None) for cid in profile_ids for rname in regimens]
    else:
        pairs = []
        for k, a in enumerate(spec.arms):
            if a.compound not in all_ids:
                raise SpecError(
                    f"arms[{k}].compound", a.compound, f"one of the compound ids {sorted(all_ids)}"
                )
            pairs.append((a.compound, a.regimen, a.name))
    if dose_scan is None and spec.dose_scan is not None:
        dose_scan = list(spec.dose_scan.doses_mg)
    if not dose_scan:
        return pairs
    first: dict[str, str] = {}
    for cid, reg, _ in pairs:
        first.setdefault(cid, regimens.get(reg, reg))
    return [
        (cid, scale_regimen_text(text, float(d)), None)
        for cid, text in first.items()
        for d in dose_scan
    ]


def _arm_pd(pdspec, prof, typical: dict[str, float]) -> tuple[str, bool, dict[str, float]]:
    """The arm's PD model kind, whether it has an effect compartment, and its fixed PD
    parameters (those that take no variability); the others go into ``typical``."""
    pd_fixed: dict[str, float] = {}
    if pdspec is None:
        return "none", False, pd_fixed
    params = dict(pdspec.params)
    if pdspec.c50_from == "potency":
        params[_c50_name(pdspec.kind)] = float(prof.potency_mg_per_L.value)
    for k, v in params.items():
        if k == "fu":
            typical["fu"] = float(v)
        elif v >= 0 and k not in ("emax",):
            typical[k] = float(v)
        else:
            pd_fixed[k] = float(v)
    return pdspec.kind, pdspec.effect_compartment, pd_fixed


def _output_times(spec: TrialSpec, arms: list[Arm]) -> tuple[float, np.ndarray]:
    """The trial's duration (h) and output times (h): the output grid or ``times_h``, the
    end, and every endpoint and titration time, within the limits on output size."""
    duration = spec.duration_h or max(
        a.regimen.end_h for a in arms if a.regimen is not None
    )
    step = spec.output.interval_h
    if spec.output.times_h is not None:
        times = np.asarray(spec.output.times_h, dtype=float)
        if times[-1] > duration:
            raise SpecError(
                "output.times_h", float(times[-1]), f"times within the trial ({duration:g} h)"
            )
    else:
        n_grid = math.floor(duration / step * (1 + 1e-9)) + 1
        if n_grid > MAX_OUTPUT_TIMES:
            raise SpecError(
                "output.interval_h",
                step,
                f"at most {MAX_OUTPUT_TIMES:,} output times per patient; every {step:g} h over "
                f"{duration:g} h gives {n_grid:,} (raise output.interval_h or shorten duration_h)",
            )
        times = np.arange(0.0, duration + 1e-9 * duration, step)
    endpoints = tuple(spec.all_endpoints())
    extra = []
    for k, e in enumerate(endpoints):
        for attr in ("time_h", "sustained_from_h"):
            v = getattr(e, attr)
            if v is None:
                continue
            if v > duration:
                raise SpecError(
                    f"endpoints[{k}].{attr}",
                    v,
                    f"a time within the trial duration ({duration:g} h)",
                )
            extra.append(v)
    titration = spec.design.titration
    if titration is not None:
        if titration.visits_h[-1] >= duration:
            raise SpecError(
                "design.titration.visits_h", titration.visits_h, f"times before {duration:g} h"
            )
        extra += list(titration.visits_h)
    times = np.unique(np.concatenate([times, [duration], extra]))
    if len(times) > MAX_OUTPUT_TIMES:
        raise SpecError(
            "output", f"{len(times):,} output times", f"at most {MAX_OUTPUT_TIMES:,} per patient"
        )
    return duration, times


def build_context(
    spec: TrialSpec,
    profiles: list,
    failed: pd.DataFrame,
    n_patients: int | None = None,
    seed: int | None = None,
    dose_scan: list[float] | None = None,
) -> tuple[TrialContext, pd.DataFrame]:
    """Resolve a spec and compound profiles into a :class:`TrialContext`.

    Compounds that the biomarker or an arm cannot use (no potency for a potency-driven PD
    model) are added to ``failed``.

    Returns
    -------
    context : TrialContext
    failed : pandas.DataFrame
        ``id``, ``error`` of every compound that is not run.

    Raises
    ------
    SpecError
        Bad cohort, regimen or design; an arm naming an unknown compound.
    CompoundError
        No compound is usable.
    """
    n = int(n_patients if n_patients is not None else spec.n_patients)
    if n <= 0:
        raise SpecError("n_patients", n, "a number of patients > 0")
    seed = int(spec.seed if seed is None else seed)
    if seed < 0:
        raise SpecError("seed", seed, "a non-negative integer")
    cohort = _cohort(spec, n)
    failed_rows = [dict(r) for r in failed.to_dict("records")]
    failed_ids = {r["id"] for r in failed_rows}
    by_id = {p.id: p for p in profiles}
    usable = {}
    for p in profiles:
        pdspec = _pd_for(spec, p.id)
        if pdspec is not None and pdspec.c50_from == "potency" and p.potency_mg_per_L is None:
            failed_rows.append(
                {
                    "id": p.id,
                    "error": "the biomarker model needs a potency "
                    "(potency_nM) and the compound has none",
                }
            )
            continue
        usable[p.id] = p
    all_ids = list(by_id) + [i for i in failed_ids if i not in by_id]
    regimens = {r.name: r.text for r in spec.regimens}
    pairs = _arm_pairs(spec, list(by_id), all_ids, regimens, dose_scan)
    n_arms = len(pairs) + (1 if spec.placebo else 0)
    if n_arms > MAX_ARMS:
        raise SpecError(
            "arms",
            f"{n_arms:,} arms",
            f"at most {MAX_ARMS:,} arms (compounds x regimens or dose-scan doses, plus placebo)",
        )
    n_trials = spec.replicates.n_trials if spec.replicates is not None else 1
    draws = spec.uncertainty.compound_draws if spec.uncertainty is not None else 0
    chemistry: dict[str, tuple[float, tuple[str, ...]]] = {}
    base_model = _protocol_model(spec)
    if base_model is not None and spec.design.titration is not None:
        raise SpecError(
            "design.titration", "titration", "no titration in a protocol with a model: file"
        )
    arms: list[Arm] = []
    names: set[str] = set()
    for cid, reg, arm_name in pairs:
        if cid not in usable:
            continue
        text = regimens.get(reg, reg)
        rname = reg if reg in regimens else text
        regimen = parse_regimen(text)
        name = arm_name or f"{cid}:{rname}"
        if name in names or name == PLACEBO:
            raise SpecError("arms", name, "unique arm names (give arms a name)")
        names.add(name)
        prof = usable[cid]
        typical = _typical_from_profile(prof)
        pdspec = _pd_for(spec, cid)
        pd_kind, eff, pd_fixed = _arm_pd(pdspec, prof, typical)
        model = None
        if base_model is not None:
            from insilico.trial.model_arm import arm_model

            pd_params = dict(pdspec.params) if pdspec is not None else {}
            if pdspec is not None and pdspec.c50_from == "potency":
                pd_params[_c50_name(pd_kind)] = float(prof.potency_mg_per_L.value)
            model = arm_model(base_model, typical, pdspec, pd_params, dict(spec.iiv.cv))
        if spec.safety.liver and cid not in chemistry:
            chemistry[cid] = _compound_chemistry(prof.smiles)
        clogp, alerts = chemistry.get(cid, (math.nan, ()))
        arms.append(
            Arm(
                index=len(arms),
                name=name,
                compound_id=cid,
                regimen_name=rname,
                regimen=regimen,
                dose_mg=float(regimen.series[0].amount),
                dose_days=max(regimen.last_interval_h[1], 24.0) / 24.0,
                clogp=clogp,
                structural_alerts=alerts,
                log_multipliers=_log_multipliers(seed, prof, draws),
                typical=typical,
                pd_kind=pd_kind,
                pd_effect_compartment=eff,
                pd_fixed=pd_fixed,
                potency_mg_per_L=float(prof.potency_mg_per_L.value)
                if prof.potency_mg_per_L is not None
                else float("nan"),
                herg_ic50_mg_per_L=float(prof.herg_ic50_mg_per_L.value)
                if prof.herg_ic50_mg_per_L is not None
                else float("nan"),
                last_interval_h=regimen.last_interval_h,
                single_dose=regimen.is_single_dose,
                model=model,
            )
        )
    if not arms:
        reasons = "; ".join(f"{r['id']}: {r['error']}" for r in failed_rows) or "no arms"
        raise CompoundError("*", f"no usable compound ({reasons})")
    if spec.placebo:
        arms.append(
            Arm(
                index=len(arms),
                name=PLACEBO,
                compound_id=PLACEBO,
                regimen_name=PLACEBO,
                regimen=None,
            )
        )
    duration, times = _output_times(spec, arms)
    if len(arms) * len(times) > MAX_ARM_OUTPUT_TIMES:
        raise SpecError(
            "arms x output times",
            f"{len(arms):,} x {len(times):,}",
            f"at most {MAX_ARM_OUTPUT_TIMES:,} arm x output-time cells (fewer arms or a "
            "coarser output.interval_h)",
        )
    ratios: tuple[float, ...] = ()
    if spec.design.type == "parallel":
        given = spec.design.ratios or {}
        unknown = sorted(set(given) - {a.name for a in arms})
        if unknown:
            raise SpecError("design.ratios", unknown, f"arm names among {[a.name for a in arms]}")
        ratios = tuple(float(given.get(a.name, 1.0)) for a in arms)
    if spec.success is not None and spec.success.comparator not in {a.name for a in arms}:
        raise SpecError(
            "success.comparator", spec.success.comparator, f"an arm among {[a.name for a in arms]}"
        )
    cv = dict(spec.iiv.cv)
    corr = {(a, b): r for a, b, r in spec.iiv.correlation}
    ctx = TrialContext(
        name=spec.name,
        seed=seed,
        n_patients=n * n_trials,
        n_per_trial=n,
        n_trials=n_trials,
        compound_draws=draws,
        success=spec.success,
        biomarker=spec.biomarker,
        primary=spec.primary_endpoint(),
        safety=spec.safety,
        conduct=spec.design,
        cohort=cohort,
        arms=tuple(arms),
        iiv=IIV(cv=cv, correlation=corr),
        output_times_h=times,
        duration_h=float(duration),
        design=spec.design.type,
        ratios=ratios,
        endpoints=tuple(spec.all_endpoints()),
        adverse_events=tuple(spec.adverse_events),
        has_biomarker=spec.biomarker is not None,
        biomarker_name=spec.biomarker.name if spec.biomarker is not None else "",
    )
    ctx = replace(ctx, compound_warnings=tuple(compound_warnings(profiles)))
    ctx.iiv.omega()  # a bad correlation matrix is a SpecError now, not in a worker
    return ctx, pd.DataFrame(failed_rows, columns=["id", "error"])
