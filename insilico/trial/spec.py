"""TrialSpec: a trial protocol as data (YAML ``kind: trial``, ``schema_version: 1``).

A protocol names the cohort (a ``kind: cohort`` file or an inline mapping), the compounds
(a CSV/SDF path or inline records with measured PK), the dosing regimens, the arms
(compound x regimen, plus an optional placebo), the simulation horizon and output grid, the
inter-individual variability, the biomarker (PD) model, the responder endpoint, the adverse-event
models and the design (every twin receives every arm, or parallel groups randomized with given
ratios). Unknown keys are errors; every error names the file, the field path, the value and
what is allowed (:class:`insilico.errors.SpecError`).

Relative paths (``cohort``, ``compounds.path``) are resolved against the directory of the YAML
file by :func:`load_trial_spec`, which stores absolute paths in the returned spec.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, StrictBool, StrictInt, field_validator, model_validator

from insilico.cohort import CohortSpec
from insilico.cohort.from_data import DatasetCohortSpec
from insilico.errors import SpecError
from insilico.io.specs import FrozenSpec, read_yaml, spec_error_from_validation
from insilico.pd.models import REQUIRED as PD_REQUIRED
from insilico.pk.regimen import parse_regimen
from insilico.trial.spec_design import (
    DesignSpec,
    DoseScanSpec,
    ReplicatesSpec,
    SuccessSpec,
    UncertaintySpec,
)
from insilico.trial.spec_endpoints import BaselineSpec, EndpointSpec, PlaceboSpec, SafetySpec

#: Measured columns an inline compound may carry (same names as :mod:`insilico.chem.io`).
MEASURED_FIELDS = (
    "cl_L_per_h",
    "cl_mL_min_kg",
    "vdss_L_per_kg",
    "v_L",
    "fu",
    "t_half_h",
    "ka_per_h",
    "f_bio",
    "fe",
    "potency_nM",
    "herg_ic50_uM",
)

#: Adverse-event drivers: what ``x`` is in ``logit p = intercept + slope * x``.
AE_DRIVERS = (
    "cmax_mg_per_L",
    "cmax_unbound_mg_per_L",
    "auc_total_mg_h_per_L",
    "cavg_mg_per_L",
    "cmax_unbound_over_potency",
    "cmax_unbound_over_herg_ic50",
)

PLACEBO = "placebo"


class CompoundSpec(FrozenSpec):
    """An inline compound: structure plus any measured values (units in the names).

    Values go through the same reader and profile builder as a CSV file
    (:func:`insilico.chem.io.read_compounds`, :func:`insilico.chem.profile.build_profiles`).
    ``source`` is free text naming where the measured values come from. ``use_known_pk``
    false keeps a known drug's measured PK (:mod:`insilico.chem.known_drugs`) out: for a
    marketed drug's structure standing in for a new compound.
    """

    id: str = Field(min_length=1)
    name: str = ""
    smiles: str
    cl_L_per_h: float | None = None
    cl_mL_min_kg: float | None = None
    vdss_L_per_kg: float | None = None
    v_L: float | None = None
    fu: float | None = None
    t_half_h: float | None = None
    ka_per_h: float | None = None
    f_bio: float | None = None
    fe: float | None = None
    potency_nM: float | None = None
    herg_ic50_uM: float | None = None
    use_known_pk: StrictBool = True
    source: str = ""


class CompoundFileSpec(FrozenSpec):
    """Compounds from a file: ``.csv`` (``id``, ``name``, ``smiles``, measured columns) or SDF."""

    path: str


class RegimenSpec(FrozenSpec):
    """A named dosing regimen in the compact text form (``100 mg PO q12h x14``)."""

    name: str = Field(min_length=1)
    text: str

    @field_validator("text")
    @classmethod
    def _parse(cls, v: str) -> str:
        try:
            parse_regimen(v)
        except SpecError as exc:  # "regimen: cannot parse ... expected ..." -> drop the prefix
            first = str(exc.args[0]).splitlines()[0]
            raise ValueError(first.removeprefix("regimen: ")) from None
        return v


class ArmSpec(FrozenSpec):
    """One arm: a compound id and a regimen (a name from ``regimens`` or a regimen text)."""

    compound: str
    regimen: str
    name: str | None = None


class IIVSpec(FrozenSpec):
    """Inter-individual variability: log-normal CVs (fractions) and eta correlations."""

    cv: dict[str, float] = Field(default_factory=dict)
    correlation: list[tuple[str, str, float]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> IIVSpec:
        for k, v in self.cv.items():
            if not (math.isfinite(v) and 0 <= v <= 5):
                raise ValueError(f"cv.{k}: a CV between 0 and 5 (fraction, 0.3 = 30 %)")
        for a, b, r in self.correlation:
            if a not in self.cv or b not in self.cv:
                raise ValueError(f"correlation ({a}, {b}): both names need a cv")
            if not -1 < r < 1:
                raise ValueError(f"correlation ({a}, {b}): -1 < r < 1")
        return self


class PDSpec(FrozenSpec):
    """A PD model with typical parameter values.

    ``kind`` is a model of the PD registry (:mod:`insilico.pd.registry`): the built-in direct
    and indirect-response models, or a user-defined one (which, like an effect compartment in
    front of an indirect response, needs the trial's ``model:``). ``c50_from: potency`` takes
    the potency concentration (EC50/IC50/SC50 by kind) from each compound's
    ``potency_mg_per_L`` (measured ``potency_nM`` converted with the RDKit MW).
    """

    kind: str
    effect_compartment: StrictBool = False
    params: dict[str, float] = Field(default_factory=dict)
    c50_from: Literal["params", "potency"] = "params"

    @model_validator(mode="after")
    def _check(self) -> PDSpec:
        if self.kind in PD_REQUIRED and self.kind != "none":
            required = set(PD_REQUIRED[self.kind])
        else:
            from insilico.pd.registry import get_pd_model, pd_model_names

            try:
                required = set(get_pd_model(self.kind).required)
            except SpecError:
                raise ValueError(f"kind: one of {list(pd_model_names())}") from None
        need = required | ({"ke0_per_h"} if self.effect_compartment else set())
        c50 = [n for n in need if "c50" in n]
        if self.c50_from == "potency" and not c50:
            raise ValueError(
                f"c50_from: 'params' for kind {self.kind!r} (it has no EC50/IC50/SC50 for the "
                "potency to fill)"
            )
        allowed = need | {"hill", "fu"}
        if self.kind not in PD_REQUIRED:
            from insilico.pd.registry import get_pd_model

            allowed |= set(get_pd_model(self.kind).parameters)
        for k, v in self.params.items():
            if k not in allowed:
                raise ValueError(
                    f"params.{k}: not a parameter of {self.kind!r}; one of {sorted(allowed)}"
                )
            if not math.isfinite(v):
                raise ValueError(f"params.{k}: a finite number")
        missing = sorted(
            need - set(self.params) - (set(c50) if self.c50_from == "potency" else set())
        )
        if missing:
            raise ValueError(f"params: missing {missing} (required by kind {self.kind!r})")
        return self


class BiomarkerSpec(FrozenSpec):
    """The biomarker: a name, its unit, a default PD model and per-compound overrides, the
    disease baseline drawn per patient, the placebo response and the residual (assessment)
    error ``residual_sd_pct`` (SD in % of baseline, independent at each assessment; it enters
    endpoints, not the percentile bands, which show the model prediction). Assessments (clinic
    visits) are every ``assessment_interval_h`` from time 0 and at every endpoint time; time to
    response and sustained response look at assessments only."""

    name: str = "biomarker"
    unit: str = ""
    pd: PDSpec
    by_compound: dict[str, PDSpec] = Field(default_factory=dict)
    baseline: BaselineSpec | None = None
    placebo: PlaceboSpec | None = None
    residual_sd_pct: float = Field(0.0, ge=0)
    assessment_interval_h: float = Field(24.0, gt=0)


class ResponderSpec(FrozenSpec):
    """A responder: biomarker change from baseline at ``time_h`` beyond ``change_pct``.

    A negative ``change_pct`` (e.g. -15) means a decrease of at least 15 %; a positive one an
    increase of at least that much.
    """

    time_h: float = Field(ge=0)
    change_pct: float

    @field_validator("change_pct")
    @classmethod
    def _nonzero(cls, v: float) -> float:
        if v == 0 or not math.isfinite(v):
            raise ValueError("a non-zero finite change in % (negative: decrease)")
        return v


class AdverseEventSpec(FrozenSpec):
    """An adverse event, ``logit P = intercept + slope * x`` with ``x`` given by ``driver``.

    ``cmax_mg_per_L``: total Cmax over the whole treatment; ``cmax_unbound_mg_per_L``:
    ``fu * Cmax``; ``auc_total_mg_h_per_L``: AUC over the whole treatment; ``cavg_mg_per_L``:
    average concentration over the last dosing interval; ``cmax_unbound_over_potency``:
    ``fu * Cmax / potency``; ``cmax_unbound_over_herg_ic50``: ``fu * Cmax / hERG IC50``.
    ``serious: true`` counts it in "response without a serious adverse event".
    Each patient's event is drawn from ``P`` with a uniform keyed by (seed, event, patient block),
    the same for every arm (a twin's susceptibility does not change with the arm).
    """

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_]+$")
    driver: Literal[AE_DRIVERS]  # type: ignore[valid-type]
    intercept: float
    slope: float = Field(ge=0)
    serious: StrictBool = False


class OutputSpec(FrozenSpec):
    """Output times: every ``interval_h`` hours from 0 to the trial duration, or the sampling
    times ``times_h`` (h, increasing, from 0 to the duration)."""

    interval_h: float = Field(1.0, gt=0, allow_inf_nan=False)
    times_h: list[float] | None = None

    @field_validator("times_h")
    @classmethod
    def _times(cls, v: list[float] | None) -> list[float] | None:
        if v is None:
            return v
        if not v or len(v) > 100_000:
            raise ValueError("between 1 and 100000 sampling times (h)")
        if any(not math.isfinite(t) or t < 0 for t in v):
            raise ValueError("finite sampling times >= 0 h")
        if any(b <= a for a, b in zip(v, v[1:], strict=False)):
            raise ValueError("increasing sampling times (h)")
        return v


class TrialSpec(FrozenSpec):
    """A trial protocol (see module docstring)."""

    kind: Literal["trial"] = "trial"
    schema_version: Literal[1] = 1
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    seed: StrictInt = Field(ge=0, lt=2**63)
    n_patients: StrictInt = Field(gt=0, le=100_000_000)
    cohort: str | CohortSpec | DatasetCohortSpec
    model: str | dict[str, Any] | None = None
    compounds: list[CompoundSpec] | CompoundFileSpec
    regimens: list[RegimenSpec] = Field(default_factory=list)
    arms: list[ArmSpec] | None = None
    placebo: StrictBool = False
    duration_h: float | None = Field(None, gt=0, allow_inf_nan=False)
    output: OutputSpec = Field(default_factory=OutputSpec)
    iiv: IIVSpec = Field(default_factory=IIVSpec)
    biomarker: BiomarkerSpec | None = None
    responder: ResponderSpec | None = None
    endpoints: list[EndpointSpec] = Field(default_factory=list)
    primary: str | None = None
    adverse_events: list[AdverseEventSpec] = Field(default_factory=list)
    safety: SafetySpec = Field(default_factory=SafetySpec)
    design: DesignSpec = Field(default_factory=DesignSpec)
    replicates: ReplicatesSpec | None = None
    success: SuccessSpec | None = None
    uncertainty: UncertaintySpec | None = None
    dose_scan: DoseScanSpec | None = None

    @model_validator(mode="after")
    def _check(self) -> TrialSpec:
        if isinstance(self.compounds, list):
            if not self.compounds:
                raise ValueError("compounds: at least one compound")
            ids = [c.id for c in self.compounds]
            dup = sorted({i for i in ids if ids.count(i) > 1})
            if dup:
                raise ValueError(f"compounds: each id once (repeated: {dup})")
        names = [r.name for r in self.regimens]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"regimens: each name once (repeated: {dup})")
        if self.arms is None and not self.regimens:
            raise ValueError("regimens: at least one regimen (or explicit arms)")
        if self.arms is not None:
            if not self.arms:
                raise ValueError("arms: at least one arm")
            for k, arm in enumerate(self.arms):
                if arm.regimen not in names:
                    try:
                        parse_regimen(arm.regimen)
                    except SpecError as exc:
                        raise ValueError(
                            f"arms[{k}].regimen: neither a regimen name {names} nor a regimen "
                            f"({exc.args[0].splitlines()[0]})"
                        ) from None
            if isinstance(self.compounds, list):
                known = {c.id for c in self.compounds}
                for k, arm in enumerate(self.arms):
                    if arm.compound not in known:
                        raise ValueError(
                            f"arms[{k}].compound: {arm.compound!r} is not among "
                            f"the compound ids {sorted(known)}"
                        )
        if self.responder is not None and self.biomarker is None:
            raise ValueError("responder: needs a biomarker model")
        if self.model is None:
            known = {"cl_L_per_h", "v1_L", "ka_per_h", "f_bio", "fu"}
            if self.biomarker is not None:
                for pd in [self.biomarker.pd, *self.biomarker.by_compound.values()]:
                    known |= set(PD_REQUIRED.get(pd.kind, ())) | {"hill", "ke0_per_h"}
            for name in self.iiv.cv:
                if name not in known:
                    near = [k for k in known if k.lower() == name.lower()]
                    hint = f" (did you mean {near[0]!r}?)" if near else ""
                    raise ValueError(
                        f"iiv.cv.{name}: a parameter of the twins {sorted(known)}{hint}"
                    )
        if self.model is None and self.biomarker is not None:
            for key, pd in [("pd", self.biomarker.pd), *self.biomarker.by_compound.items()]:
                field = "biomarker.pd" if key == "pd" else f"biomarker.by_compound.{key}"
                if pd.kind not in PD_REQUIRED:
                    raise ValueError(
                        f"{field}.kind: a built-in kind {[k for k in PD_REQUIRED if k != 'none']}"
                        " (user-defined PD models need the trial's model: file)"
                    )
                if pd.effect_compartment and pd.kind.startswith("irm"):
                    raise ValueError(
                        f"{field}.effect_compartment: false without a model: file (an effect "
                        "compartment in front of an indirect response needs the trial's model:)"
                    )
        ae = [a.name for a in self.adverse_events]
        if len(set(ae)) != len(ae):
            dup = sorted({n for n in ae if ae.count(n) > 1})
            raise ValueError(f"adverse_events: each name once (repeated: {dup})")
        self._check_endpoints()
        return self

    def _check_endpoints(self) -> None:
        eps = self.all_endpoints()
        names = [e.name for e in eps]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"endpoints: each name once (repeated: {dup})")
        for k, e in enumerate(self.endpoints):
            if e.kind != "target_attainment" and self.biomarker is None:
                raise ValueError(f"endpoints[{k}]: kind {e.kind!r} needs a biomarker model")
        binary = [e.name for e in eps if e.is_binary]
        if self.primary is not None and self.primary not in binary:
            raise ValueError(f"primary: one of the yes/no endpoints {binary}")
        if self.success is not None and self.success.endpoint not in binary:
            raise ValueError(f"success.endpoint: one of the yes/no endpoints {binary}")
        if self.design.titration is not None and self.biomarker is None:
            raise ValueError("design.titration: needs a biomarker model")
        if self.uncertainty is not None:
            m = self.replicates.n_trials if self.replicates is not None else 1
            d = self.uncertainty.compound_draws
            if m < 2 * d or m % d:
                raise ValueError(
                    f"uncertainty.compound_draws: replicates.n_trials ({m}) must be a multiple "
                    f"of the draws ({d}), with at least 2 trials per draw"
                )

    def all_endpoints(self) -> list[EndpointSpec]:
        """``endpoints`` plus the legacy ``responder`` section as an endpoint ``responder``."""
        eps = list(self.endpoints)
        if self.responder is not None:
            eps.insert(
                0,
                EndpointSpec(
                    name="responder",
                    kind="responder",
                    time_h=self.responder.time_h,
                    threshold=self.responder.change_pct,
                ),
            )
        return eps

    def primary_endpoint(self) -> str | None:
        """The endpoint for P(response without serious AE), success and dose selection:
        ``primary``, else the first yes/no endpoint."""
        if self.primary is not None:
            return self.primary
        return next((e.name for e in self.all_endpoints() if e.is_binary), None)

    def canonical_json(self) -> str:
        """Canonical JSON of the spec (sorted keys, no whitespace): what the hash covers."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def sha256(self) -> str:
        """SHA-256 of :meth:`canonical_json`."""
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()


def _resolve_paths(data: dict[str, Any], base: Path) -> dict[str, Any]:
    data = dict(data)
    cohort = data.get("cohort")
    if isinstance(cohort, str):
        data["cohort"] = str((base / cohort).resolve())
    elif isinstance(cohort, dict) and isinstance(cohort.get("data"), str):
        data["cohort"] = {**cohort, "data": str((base / cohort["data"]).resolve())}
    model = data.get("model")
    if isinstance(model, str):
        data["model"] = str((base / model).resolve())
    comp = data.get("compounds")
    if isinstance(comp, dict) and isinstance(comp.get("path"), str):
        data["compounds"] = {**comp, "path": str((base / comp["path"]).resolve())}
    return data


def trial_spec_from_dict(
    data: dict[str, Any], source: str | None = None, base_dir: str | Path | None = None
) -> TrialSpec:
    """Validate a mapping as a :class:`TrialSpec` (relative paths against ``base_dir``)."""
    if base_dir is not None:
        data = _resolve_paths(data, Path(base_dir))
    from pydantic import ValidationError

    try:
        return TrialSpec.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = str(err.get("msg", ""))
        if msg.startswith("Value error, "):
            # our own checks: the message starts with the field path below the error's loc
            from insilico.io.specs import field_path

            text = msg[len("Value error, ") :]
            base = field_path(tuple(p for p in err.get("loc", ()) if "[" not in str(p)))
            base = "" if base == "<root>" else base
            m = _SUBFIELD.match(text)
            if m:
                sub, allowed = m.group(1), m.group(2)
                field = f"{base}.{sub}" if base else sub
                value = _lookup(data, re.sub(r" \(.*\)$", "", field))
            else:
                field, allowed = base or "<root>", text
                value = _lookup(data, field) if base else None
            n_more = len(exc.errors()) - 1
            if n_more:
                allowed += f" (and {n_more} more error{'s' if n_more > 1 else ''})"
            raise SpecError(field, value, allowed, source) from None
        raise spec_error_from_validation(exc, source, model=TrialSpec) from None


#: ``field.path[0] (detail): message`` at the start of our validators' messages.
_SUBFIELD = re.compile(r"^([A-Za-z_][\w.\[\]]*(?: \([^)]*\))?): (.*)$", re.S)


def _lookup(data: Any, field: str) -> Any:
    """Value at a dotted/indexed field path of ``data`` (None when absent)."""
    cur = data
    for part in re.findall(r"[^.\[\]]+", field):
        try:
            cur = cur[int(part)] if part.isdigit() else cur[part]
        except (KeyError, IndexError, TypeError, ValueError):
            return None
    if isinstance(cur, dict | list) and len(json.dumps(cur, default=str)) > 200:
        return f"<{type(cur).__name__} of {len(cur)} items>"
    return cur


def load_trial_spec(path: str | Path) -> TrialSpec:
    """Load a trial YAML file (``kind: trial``, ``schema_version: 1``)."""
    data = read_yaml(path)
    if data.get("kind") != "trial":
        raise SpecError("kind", data.get("kind"), "'trial'", str(path))
    if data.get("schema_version") != 1:
        raise SpecError("schema_version", data.get("schema_version"), "one of [1]", str(path))
    return trial_spec_from_dict(data, str(path), Path(path).resolve().parent)
