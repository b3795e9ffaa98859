"""PK models for the app's trial design: the built-in twin, a model file shipped in ``models/``,
or a custom structure built from a few numbers; and the checks that a protocol's model fits
its cohort, regimens and biomarker before anything runs.

A design's ``model`` is absent (built-in one-compartment twins with their allometry), a path
relative to the ``workflows/`` folder (``../models/<name>.yaml``, as the shipped protocols name
their cohorts) or an inline mapping (``kind: model``) written by :func:`custom_model`.

A custom structure's covariate effect is allometric weight scaling (Anderson & Holford 2008,
doi:10.1146/annurev.pharmtox.48.113006.094708): clearances (and ``vmax_mg_per_h``) times
``(weight_kg / 70) ** 0.75``, volumes times ``weight_kg / 70``, on the cohort column
``weight_kg``. Its variability is given as a coefficient of variation per parameter and
written as the log-normal variance ``omega² = ln(1 + CV²)``.
"""

from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from insilico.errors import InsilicoError, SpecError
from insilico.model import catalogue as cat
from insilico.ui.cohorts import REPO_DIR, WORKFLOWS_DIR

MODELS_DIR = REPO_DIR / "models"

#: Choices of the "PK model" control besides the shipped files (their references).
BUILTIN = "builtin"
CUSTOM = "custom"
OTHER_FILE = "file"

#: Allometric weight scaling of a custom structure.
ALLOMETRY_COLUMN = "weight_kg"
ALLOMETRY_REFERENCE_KG = 70.0
CLEARANCE_EXPONENT = 0.75
VOLUME_EXPONENT = 1.0
CLEARANCES: tuple[str, ...] = ("cl_L_per_h", "q2_L_per_h", "q3_L_per_h", "vmax_mg_per_h")
VOLUMES: tuple[str, ...] = ("v1_L", "v2_L", "v3_L")
#: Column names read as body weight in kg when a custom structure starts from a model file.
_WEIGHT_COLUMNS = ("weight_kg", "wt", "weight")

#: Values a custom structure starts from (compounds replace CL, ka, F and fu and share their
#: Vss among the volumes in these proportions).
STARTING_VALUES: dict[str, float] = {
    "cl_L_per_h": 10.0,
    "v1_L": 50.0,
    "q2_L_per_h": 10.0,
    "v2_L": 100.0,
    "q3_L_per_h": 5.0,
    "v3_L": 200.0,
    "vmax_mg_per_h": 10.0,
    "km_mg_per_L": 1.0,
    "ka_per_h": 1.0,
    "mtt_h": 2.0,
    "n_transit": 3,
    "d1_h": 1.0,
    "tlag_h": 0.0,
}
#: Optional parameters the custom editor offers with every structure (0 = left out).
CUSTOM_OPTIONAL: tuple[str, ...] = ("tlag_h",)
#: Keys of an inline model the custom editor writes; the others are kept as they are.
_EDITED_KEYS = ("kind", "schema_version", "pk", "parameters", "covariates", "iiv")


@dataclass(frozen=True)
class ShippedModel:
    """A model file of ``models/``.

    Parameters
    ----------
    name : str
        The model's ``name`` (the file stem if it does not load).
    reference : str
        Its path relative to ``workflows/`` (what a design's ``model:`` holds).
    path : Path
        The file.
    description : str
        The model's ``description`` ('' if none).
    structure : str
        Its PK structure in words (:func:`structure_text`).
    error : str
        Why the file does not load ('' if it does).
    """

    name: str
    reference: str
    path: Path
    description: str = ""
    structure: str = ""
    error: str = ""

    @property
    def label(self) -> str:
        """``name — structure`` for a list."""
        return f"{self.name} — {self.structure or 'does not load'}"


def structure_text(pk: Any) -> str:
    """A PK structure in words: ``1 compartment, first_order absorption, linear elimination``.

    ``pk`` is a :class:`insilico.model.PKSpec` or a mapping with the same keys.
    """

    def get(key: str) -> Any:
        return pk.get(key) if isinstance(pk, dict) else getattr(pk, key)

    n = int(get("compartments"))
    return (
        f"{n} compartment{'s' if n > 1 else ''}, {get('absorption')} absorption, "
        f"{get('elimination')} elimination"
    )


def model_reference(path: str | Path, base_dir: str | Path = WORKFLOWS_DIR) -> str:
    """``path`` relative to ``base_dir`` (``../models/<name>.yaml`` for a shipped file)."""
    return Path(os.path.relpath(Path(path).resolve(), Path(base_dir).resolve())).as_posix()


def shipped_models(models_dir: str | Path = MODELS_DIR) -> list[ShippedModel]:
    """Every ``*.yaml`` model file of ``models_dir``, by file name (loading one that names a
    user PD module registers that PD model)."""
    from insilico.model import load_model

    out: list[ShippedModel] = []
    folder = Path(models_dir)
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.yaml")):
        ref = model_reference(path)
        try:
            m = load_model(path)
        except InsilicoError as exc:
            out.append(ShippedModel(path.stem, ref, path, error=str(exc).splitlines()[0]))
            continue
        out.append(ShippedModel(m.name, ref, path, m.description or "", structure_text(m.pk), ""))
    return out


def model_choice(
    value: Any, shipped: list[ShippedModel] | None = None, base_dir: str | Path = WORKFLOWS_DIR
) -> str:
    """The "PK model" choice a design's ``model`` value stands for: :data:`BUILTIN`,
    :data:`CUSTOM` (an inline mapping), a shipped model's reference, or :data:`OTHER_FILE`."""
    if value is None:
        return BUILTIN
    if isinstance(value, dict):
        return CUSTOM
    shipped = shipped_models() if shipped is None else shipped
    target = (Path(base_dir) / str(value)).resolve()
    for m in shipped:
        if m.path.resolve() == target:
            return m.reference
    return OTHER_FILE


def load_design_model(value: Any, base_dir: str | Path = WORKFLOWS_DIR):
    """A design's ``model`` (path relative to ``base_dir`` or inline mapping) as a
    :class:`insilico.model.Model`.

    Raises
    ------
    SpecError
        Field ``model.<key path>``, the value, what is allowed, and the file (``source``).
    """
    from insilico.model import load_model, model_from_dict

    if isinstance(value, str | Path):
        path = (Path(base_dir) / value).resolve()
        try:
            return load_model(path)
        except SpecError as exc:
            raise _prefixed(exc, str(path)) from None
    if not isinstance(value, dict):
        raise SpecError("model", value, "a model file path or a mapping (kind: model)", "design")
    try:
        return model_from_dict(copy.deepcopy(value), source="design")
    except SpecError as exc:
        raise _prefixed(exc, "design (inline model)") from None


def _prefixed(exc: SpecError, source: str) -> SpecError:
    name = exc.field if exc.field.startswith("model") else f"model.{exc.field}"
    return SpecError(name, exc.value, exc.allowed, source)


def check_model(value: Any, base_dir: str | Path = WORKFLOWS_DIR) -> str:
    """'' if the design's ``model`` loads, else the first line of the reason (file, key,
    value, what is allowed); '' for no model."""
    if value is None:
        return ""
    try:
        load_design_model(value, base_dir)
    except SpecError as exc:
        return str(exc).splitlines()[0]
    return ""


def describe_model(model) -> list[str]:
    """Lines about a model for the design page: typical values with units, covariate effects,
    IIV as CV %, residual error."""
    lines = []
    params = ", ".join(
        f"{k} {v:g}{(' ' + cat.PARAMETERS[k].unit) if k in cat.PARAMETERS else ''}".rstrip()
        for k, v in model.parameters.items()
    )
    lines.append(f"Typical values: {params}")
    effects = []
    for name, by_column in (model.covariates or {}).items():
        for column, eff in by_column.items():
            if eff.kind == "categorical":
                effects.append(f"{name} by {column} (categories)")
            else:
                effects.append(
                    f"{name} × f({column}; {eff.kind} {getattr(eff, eff.kind):g}, "
                    f"reference {eff.reference:g})"
                )
    if effects:
        lines.append("Covariates: " + "; ".join(effects))
    if model.iiv is not None and model.eta_names():
        omega = model.omega_matrix()
        cvs = ", ".join(
            f"{n} {100 * cv_from_omega2(omega[i, i]):.3g} %"
            for i, n in enumerate(model.eta_names())
        )
        lines.append(f"IIV (CV): {cvs}")
    if model.residual_error is not None:
        res = model.residual_error.model_dump(exclude_none=True)
        lines.append("Residual error (SD): " + ", ".join(f"{k} {v:g}" for k, v in res.items()))
    return lines


# ------------------------------------------------------------------ custom structure
def omega2_from_cv(cv: float) -> float:
    """Log-normal variance for a coefficient of variation (fraction): ``ln(1 + cv²)``."""
    return math.log1p(float(cv) ** 2)


def cv_from_omega2(omega2: float) -> float:
    """Coefficient of variation (fraction) of a log-normal variance: ``sqrt(exp(ω²) - 1)``."""
    return math.sqrt(math.expm1(float(omega2)))


def structure_parameters(compartments: int, absorption: str, elimination: str) -> tuple[str, ...]:
    """Typical parameters a structure needs, in catalogue order (names with units)."""
    pk = SimpleNamespace(
        compartments=int(compartments), absorption=absorption, elimination=elimination
    )
    return cat.structure_parameters(pk)


def parameter_label(name: str) -> str:
    """``cl_L_per_h (L/h)`` for a number input."""
    info = cat.PARAMETERS.get(name)
    return f"{name} ({info.unit})" if info is not None and info.unit else name


def parameter_help(name: str) -> str:
    """What a parameter is (the catalogue's words)."""
    info = cat.PARAMETERS.get(name)
    return info.meaning if info is not None else ""


def is_integer_parameter(name: str) -> bool:
    """Whether a parameter takes whole numbers only (``n_transit``: no IIV, no covariates)."""
    info = cat.PARAMETERS.get(name)
    return bool(info is not None and info.integer)


@dataclass(frozen=True)
class CustomStructure:
    """What the custom-structure editor shows and edits.

    Parameters
    ----------
    compartments : int
        1, 2 or 3.
    absorption, elimination : str
        :data:`insilico.model.catalogue.ABSORPTIONS`, :data:`~.ELIMINATIONS`.
    parameters : dict
        Typical values by name (units in the names); more than the structure needs is fine.
    cv_pct : dict
        IIV per parameter as CV in % (0 or absent = none).
    allometric : bool
        Allometric weight scaling on ``weight_kg``.
    rest : dict
        The rest of the model mapping, written back unchanged (name, residual error, ...).
    """

    compartments: int = 1
    absorption: str = "first_order"
    elimination: str = "linear"
    parameters: dict[str, float] = field(default_factory=dict)
    cv_pct: dict[str, float] = field(default_factory=dict)
    allometric: bool = True
    rest: dict[str, Any] = field(default_factory=dict)

    def needed(self) -> tuple[str, ...]:
        """Parameters the structure needs."""
        return structure_parameters(self.compartments, self.absorption, self.elimination)

    def value(self, name: str) -> float:
        """A parameter's value (its starting value when not set)."""
        return self.parameters.get(name, STARTING_VALUES.get(name, 1.0))


def _canonical_exponent(name: str) -> float | None:
    if name in CLEARANCES:
        return CLEARANCE_EXPONENT
    if name in VOLUMES:
        return VOLUME_EXPONENT
    return None


def _is_allometric(column: str, effect: Any, exponent: float | None) -> bool:
    """Whether ``effect`` of ``column`` is the canonical allometry (None: the parameter has
    no canonical exponent)."""
    return (
        exponent is not None
        and isinstance(effect, dict)
        and column.lower() in _WEIGHT_COLUMNS
        and set(effect) == {"power", "reference"}
        and math.isclose(float(effect["power"]), exponent)
        and math.isclose(float(effect["reference"]), ALLOMETRY_REFERENCE_KG)
    )


def custom_fields(value: Any, base_dir: str | Path = WORKFLOWS_DIR) -> CustomStructure:
    """The custom editor's starting point from a design's ``model``: an inline mapping (all of
    it: what the editor does not show is kept), a model file (its structure, values,
    allometry, IIV and residual error), or nothing (a one-compartment oral structure)."""
    if value is None:
        return CustomStructure()
    if isinstance(value, dict):
        data = copy.deepcopy(value)
        rest = {k: v for k, v in data.items() if k not in _EDITED_KEYS}
    else:
        try:
            from insilico.model import model_to_dict

            data = model_to_dict(load_design_model(value, base_dir))
        except SpecError:
            return CustomStructure()
        rest = {k: data[k] for k in ("residual_error",) if k in data}
    pk = data.get("pk") or {}
    fields_ = CustomStructure()
    try:
        compartments = int(pk.get("compartments", fields_.compartments))
    except (TypeError, ValueError):
        compartments = fields_.compartments
    absorption = str(pk.get("absorption", fields_.absorption))
    elimination = str(pk.get("elimination", fields_.elimination))
    params = {k: v for k, v in (data.get("parameters") or {}).items() if isinstance(v, int | float)}
    # IIV: plain variances become CV widgets; blocks stay as they are
    iiv = dict(data.get("iiv") or {})
    blocks = iiv.pop("blocks", None)
    cv_pct, other_iiv = {}, {}
    for k, v in iiv.items():
        if isinstance(v, int | float) and v >= 0 and not is_integer_parameter(k):
            cv_pct[k] = 100.0 * cv_from_omega2(v)
        else:
            other_iiv[k] = v
    if blocks is not None or other_iiv:
        rest["iiv"] = {**other_iiv, **({"blocks": blocks} if blocks is not None else {})}
    # covariates: allometry on every clearance and volume becomes the checkbox; any other
    # effect is kept as it is
    covs = copy.deepcopy(data.get("covariates") or {})
    weight_params = [n for n in (*CLEARANCES, *VOLUMES) if n in params]
    allometric = bool(weight_params) and all(
        any(_is_allometric(c, e, _canonical_exponent(n)) for c, e in (covs.get(n) or {}).items())
        for n in weight_params
    )
    if allometric:
        for n in weight_params:
            exponent = _canonical_exponent(n)
            covs[n] = {c: e for c, e in covs[n].items() if not _is_allometric(c, e, exponent)}
            if not covs[n]:
                del covs[n]
    if covs:
        rest["covariates"] = covs
    return CustomStructure(
        compartments=compartments,
        absorption=absorption,
        elimination=elimination,
        parameters=params,
        cv_pct=cv_pct,
        allometric=allometric,
        rest=rest,
    )


def _round(x: float) -> float:
    return float(f"{float(x):.10g}")


def custom_model(fields_: CustomStructure, name: str = "custom") -> dict[str, Any]:
    """The inline model mapping (``kind: model``) of a custom structure.

    Parameters are the structure's (their starting values when not given) plus the optional
    ones given non-zero (``tlag_h``) or kept from an imported model (``f_bio``, ``fu``);
    allometry adds ``weight_kg`` power effects; each CV > 0 adds ``omega² = ln(1 + CV²)``.
    Whatever else ``fields_.rest`` holds (residual error, other covariates, IIV blocks,
    dosing) is written back unchanged, so the model's own validation judges it.
    """
    needed = fields_.needed()
    params: dict[str, Any] = {}
    for n in needed:
        v = fields_.value(n)
        params[n] = int(v) if is_integer_parameter(n) and float(v).is_integer() else float(v)
    for n, v in fields_.parameters.items():
        if n in needed or n not in cat.OPTIONAL_PK:
            continue
        if n in CUSTOM_OPTIONAL and float(v) == 0.0:
            continue
        params[n] = float(v)
    rest = copy.deepcopy(fields_.rest)
    out: dict[str, Any] = {
        "kind": "model",
        "schema_version": 1,
        "name": str(rest.pop("name", None) or name),
    }
    if "description" in rest:
        out["description"] = rest.pop("description")
    out["pk"] = {
        "compartments": int(fields_.compartments),
        "absorption": fields_.absorption,
        "elimination": fields_.elimination,
    }
    out["parameters"] = params
    covs = {
        n: dict(effects)
        for n, effects in (rest.pop("covariates", None) or {}).items()
        if n in params
    }
    if fields_.allometric:
        # the canonical scaling replaces any power effect of body weight on these parameters
        for n in params:
            exponent = _canonical_exponent(n)
            if exponent is None:
                continue
            effects = {
                c: e
                for c, e in covs.get(n, {}).items()
                if not (c.lower() in _WEIGHT_COLUMNS and isinstance(e, dict) and "power" in e)
            }
            effects[ALLOMETRY_COLUMN] = {"power": exponent, "reference": ALLOMETRY_REFERENCE_KG}
            covs[n] = effects
    if covs:
        out["covariates"] = covs
    iiv: dict[str, Any] = {}
    for n, cv in fields_.cv_pct.items():
        if n in params and not is_integer_parameter(n) and float(cv) > 0:
            iiv[n] = _round(omega2_from_cv(float(cv) / 100.0))
    kept_iiv = rest.pop("iiv", None) or {}
    for k, v in kept_iiv.items():
        if k == "blocks":
            blocks = [b for b in v if all(p in params for p in b.get("parameters", []))]
            if blocks:
                iiv["blocks"] = blocks
        elif k in params:
            iiv.setdefault(k, v)
    if iiv:
        out["iiv"] = iiv
    out.update(rest)
    return out


# ------------------------------------------------------------------ fit to the protocol
def _cohort_columns(cohort: Any) -> tuple[str, ...] | None:
    """Columns of a sampled cohort's twins; None when they are not known here."""
    from insilico.cohort import COLUMNS, CohortSpec, load_cohort_spec

    if isinstance(cohort, CohortSpec):
        return COLUMNS
    if isinstance(cohort, str):
        try:
            load_cohort_spec(cohort)
        except (InsilicoError, OSError):
            return None
        return COLUMNS
    return None


def _oral_route(text: str) -> bool:
    from insilico.pk.regimen import parse_regimen

    try:
        return any(s.route != "iv" for s in parse_regimen(text).series)
    except SpecError:
        return False


def check_trial_model(spec) -> None:
    """Check that a validated protocol's ``model:`` fits the rest of it, as the trial will
    build each arm: the model loads; its covariates are columns of the cohort; doses it
    parameterises come from numbers (a trial has no data columns); extravascular regimens
    have an absorption; the biomarker's PD model, its parameters and the protocol's
    ``iiv.cv`` combine with the model (:func:`insilico.trial.model_arm.arm_model`).

    Parameters
    ----------
    spec : TrialSpec
        With paths resolved (``model`` absolute when it is a file).

    Raises
    ------
    SpecError
        The first problem, field ``model.<key path>`` (or the protocol's field).
    """
    if spec.model is None:
        return
    model = load_design_model(spec.model)
    source = spec.model if isinstance(spec.model, str) else "design (inline model)"
    for cmt, entry in (model.dosing or {}).items():
        for key, v in entry.model_dump(exclude_none=True).items():
            if isinstance(v, str):
                raise SpecError(
                    f"model.dosing.{cmt}.{key}",
                    v,
                    "a number: a trial's twins have no data columns to read it from",
                    source,
                )
    columns = _cohort_columns(spec.cohort)
    if columns is not None:
        from insilico.trial.model_arm import COVARIATE_ALIASES

        lower = {c.lower() for c in columns}
        lower |= {a.lower() for a, c in COVARIATE_ALIASES.items() if c.lower() in lower}
        for name, effects in (model.covariates or {}).items():
            for column in effects:
                if column.lower() not in lower:
                    raise SpecError(
                        f"model.covariates.{name}.{column}",
                        column,
                        f"a column of the cohort (case ignored), one of {list(columns)}",
                        source,
                    )
    if model.pk.absorption == "none":
        names = {r.name: r.text for r in spec.regimens}
        texts = [names.get(a.regimen, a.regimen) for a in spec.arms or []] or list(names.values())
        oral = next((t for t in texts if _oral_route(t)), None)
        if oral is not None:
            raise SpecError(
                "model.pk.absorption",
                "none",
                f"an absorption (first_order, zero_order, transit) for the extravascular "
                f"regimen {oral!r}, or IV regimens only",
                source,
            )
    from insilico.trial.context import C50_NAME
    from insilico.trial.model_arm import arm_model

    pds: list[tuple[str, Any]] = [("biomarker.pd", None)]
    if spec.biomarker is not None:
        pds = [("biomarker.pd", spec.biomarker.pd)]
        pds += [(f"biomarker.by_compound.{k}", p) for k, p in spec.biomarker.by_compound.items()]
    for where, pd in pds:
        params = dict(pd.params) if pd is not None else {}
        if pd is not None and pd.c50_from == "potency" and pd.kind in C50_NAME:
            params[C50_NAME[pd.kind]] = 1.0  # each compound's potency, any positive value here
        try:
            arm_model(model, {}, pd, params, dict(spec.iiv.cv))
        except SpecError as exc:
            if exc.field.startswith("iiv."):
                raise
            allowed = exc.allowed
            if pd is not None:
                allowed += f" (with {where}: kind {pd.kind!r})"
            raise SpecError(_prefixed(exc, source).field, exc.value, allowed, source) from None


def check_pd_potency(spec) -> None:
    """A biomarker PD model whose C50 comes from the compounds' potency must have a C50.

    Raises
    ------
    SpecError
        Field ``biomarker.pd.c50_from`` (or ``biomarker.by_compound.<id>.c50_from``).
    """
    if spec.biomarker is None:
        return
    from insilico.trial.context import C50_NAME

    pds = [("biomarker.pd", spec.biomarker.pd)]
    pds += [(f"biomarker.by_compound.{k}", p) for k, p in spec.biomarker.by_compound.items()]
    for where, pd in pds:
        if pd.c50_from == "potency" and pd.kind not in C50_NAME:
            raise SpecError(
                f"{where}.c50_from",
                "potency",
                f"params: kind {pd.kind!r} has no C50 that the compounds' potency could set "
                f"(kinds with one: {sorted(C50_NAME)})",
            )
