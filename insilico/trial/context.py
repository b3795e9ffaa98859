"""Everything a task needs, resolved once from a :class:`TrialSpec` (small and picklable).

:func:`build_context` loads the cohort spec, profiles the compounds (failed ones are kept with
their reasons), expands the arms (compound x regimen, plus placebo), fixes the output grid and
the band grids. Tasks receive the context and a block of patient ids; nothing in it depends on
how the run is chunked or where it runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from insilico.cohort import CohortSpec, load_cohort_spec
from insilico.errors import CompoundError, SpecError
from insilico.pk.regimen import parse_regimen
from insilico.trial.spec import PLACEBO, AdverseEventSpec, PDSpec, ResponderSpec, TrialSpec
from insilico.twin import IIV

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
    parameters used as given (e.g. a negative ``emax``).
    """

    index: int
    name: str
    compound_id: str
    regimen_name: str
    regimen_text: str
    typical: dict[str, float] = field(default_factory=dict)
    pd_kind: str = "none"
    pd_effect_compartment: bool = False
    pd_fixed: dict[str, float] = field(default_factory=dict)
    potency_mg_per_L: float = float("nan")
    herg_ic50_mg_per_L: float = float("nan")
    last_interval_h: tuple[float, float] = (0.0, 0.0)

    @property
    def is_placebo(self) -> bool:
        return self.compound_id == PLACEBO


@dataclass(frozen=True)
class TrialContext:
    """Resolved trial: what every task reads (see module docstring)."""

    name: str
    seed: int
    n_patients: int
    cohort: CohortSpec
    arms: tuple[Arm, ...]
    iiv: IIV
    output_times_h: np.ndarray
    duration_h: float
    design: str
    ratios: tuple[float, ...]
    responder: ResponderSpec | None
    adverse_events: tuple[AdverseEventSpec, ...]
    has_biomarker: bool
    biomarker_name: str
    conc_grid: BandGrid = CONC_GRID
    biomarker_grid: BandGrid = BIOMARKER_GRID


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


def build_context(
    spec: TrialSpec,
    profiles: list,
    failed: pd.DataFrame,
    n_patients: int | None = None,
    seed: int | None = None,
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
    cohort = spec.cohort if isinstance(spec.cohort, CohortSpec) else load_cohort_spec(spec.cohort)
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
    if spec.arms is None:
        pairs = [(cid, rname, None) for cid in by_id for rname in regimens]
    else:
        pairs = []
        for k, a in enumerate(spec.arms):
            if a.compound not in all_ids:
                raise SpecError(
                    f"arms[{k}].compound", a.compound, f"one of the compound ids {sorted(all_ids)}"
                )
            pairs.append((a.compound, a.regimen, a.name))
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
        pd_fixed: dict[str, float] = {}
        pd_kind, eff = "none", False
        if pdspec is not None:
            pd_kind, eff = pdspec.kind, pdspec.effect_compartment
            params = dict(pdspec.params)
            if pdspec.c50_from == "potency":
                params[C50_NAME[pd_kind]] = float(prof.potency_mg_per_L.value)
            for k, v in params.items():
                if k == "fu":
                    typical["fu"] = float(v)
                elif v >= 0 and k not in ("emax",):
                    typical[k] = float(v)
                else:
                    pd_fixed[k] = float(v)
        arms.append(
            Arm(
                index=len(arms),
                name=name,
                compound_id=cid,
                regimen_name=rname,
                regimen_text=text,
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
                regimen_text="",
            )
        )
    duration = spec.duration_h or max(
        parse_regimen(a.regimen_text).end_h for a in arms if not a.is_placebo
    )
    step = spec.output.interval_h
    times = np.arange(0.0, duration + 1e-9 * duration, step)
    extra = [spec.responder.time_h] if spec.responder is not None else []
    if spec.responder is not None and spec.responder.time_h > duration:
        raise SpecError(
            "responder.time_h",
            spec.responder.time_h,
            f"a time within the trial duration ({duration:g} h)",
        )
    times = np.unique(np.concatenate([times, [duration], extra]))
    ratios: tuple[float, ...] = ()
    if spec.design.type == "parallel":
        given = spec.design.ratios or {}
        unknown = sorted(set(given) - {a.name for a in arms})
        if unknown:
            raise SpecError("design.ratios", unknown, f"arm names among {[a.name for a in arms]}")
        ratios = tuple(float(given.get(a.name, 1.0)) for a in arms)
    cv = dict(spec.iiv.cv)
    corr = {(a, b): r for a, b, r in spec.iiv.correlation}
    ctx = TrialContext(
        name=spec.name,
        seed=seed,
        n_patients=n,
        cohort=cohort,
        arms=tuple(arms),
        iiv=IIV(cv=cv, correlation=corr),
        output_times_h=times,
        duration_h=float(duration),
        design=spec.design.type,
        ratios=ratios,
        responder=spec.responder,
        adverse_events=tuple(spec.adverse_events),
        has_biomarker=spec.biomarker is not None,
        biomarker_name=spec.biomarker.name if spec.biomarker is not None else "",
    )
    ctx.iiv.omega()  # a bad correlation matrix is a SpecError now, not in a worker
    return ctx, pd.DataFrame(failed_rows, columns=["id", "error"])
