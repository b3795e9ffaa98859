"""Model definitions as data: YAML ``kind: model``, ``schema_version: 1``, and the same object.

A model names its PK structure, the typical values of its parameters (units in the names, see
:mod:`insilico.model.catalogue`), how doses enter each compartment, covariate effects,
between-subject (IIV) and between-occasion (IOV) variability, the residual error model, an
optional PD model from :mod:`insilico.pd.registry`, and how data files number compartments::

    kind: model
    schema_version: 1
    name: oral_1cpt_lag_allometric
    pk: {compartments: 1, absorption: first_order, elimination: linear}
    parameters: {cl_L_per_h: 0.2, v1_L: 10.0, ka_per_h: 1.0, tlag_h: 0.5}
    covariates:
      cl_L_per_h: {WT: {power: 0.75, reference: 70}}
    iiv:
      ka_per_h: 0.5
      blocks:
        - {parameters: [cl_L_per_h, v1_L], covariance: [[0.1, 0.05], [0.05, 0.1]]}
    residual_error: {proportional: 0.15, additive: 0.5}
    data: {amt_unit: mg, dv_unit: mg/L}

A population fit (``insilico fit``) estimates every value of the model by name (see
:meth:`Model.estimate_names`): the typical values by parameter name, covariate effects as
``beta_<parameter>_<column>`` (``beta_<parameter>_<column>_<category>`` for each factor of a
categorical effect), IIV variances ``omega2_<parameter>``, block covariances
``omega_<parameter>_<parameter>`` and residual SDs ``sigma_<kind>``. ``fixed:`` lists the
names held at their model values, e.g. ``fixed: [beta_cl_L_per_h_WT]``; an IIV block is
fixed whole or not at all.

Model files are read with a strict YAML loader: duplicate keys, anchors and aliases are errors.
Every error is a :class:`insilico.errors.SpecError` naming the file, the key path, the value and
what is allowed.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import math
import numbers
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import yaml
from pydantic import (
    BeforeValidator,
    StrictBool,
    ValidationError,
    model_serializer,
    model_validator,
)

from insilico.errors import SpecError
from insilico.io.specs import FrozenSpec, field_path, spec_error_from_validation
from insilico.model import catalogue as cat

#: Amount units a data file may use for ``AMT``.
AMT_UNITS: tuple[str, ...] = ("mg", "ug", "ng")
#: Concentration units a data file may use for ``DV``.
DV_UNITS: tuple[str, ...] = ("mg/L", "ug/L", "ng/mL")
#: Residual error keys (standard deviations).
RESIDUAL_KEYS: tuple[str, ...] = ("additive", "proportional", "exponential")
#: Keys of one dosing compartment's entry.
DOSING_KEYS: tuple[str, ...] = ("tlag_h", "f_bio", "duration_h", "rate_mg_per_h")
#: Data column that numbers occasions for inter-occasion variability.
OCCASION_COLUMN = "OCC"

# relative tolerances for symmetric / positive semi-definite covariance matrices
_SYMMETRY_RTOL = 1e-10
_PSD_RTOL = 1e-10


class _Invalid(ValueError):
    """A value below the current validation location is invalid (``field`` is relative)."""

    def __init__(self, field: str, value: object, allowed: str):
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(f"{field}: got {value!r}; allowed: {allowed}")


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool | np.bool_)


def _number(v: Any) -> Any:
    if v is None:
        return v
    if not _is_number(v):
        raise ValueError("a number")
    return float(v)


def _number_or_column(v: Any) -> Any:
    if v is None:
        return v
    if isinstance(v, str):
        if not v.strip():
            raise ValueError("a number or the name of a data column (a non-empty string)")
        return v
    if not _is_number(v):
        raise ValueError("a number or the name of a data column (a string)")
    return float(v)


def _whole(v: Any) -> Any:
    if isinstance(v, bool | np.bool_):
        raise ValueError("a whole number")
    if isinstance(v, numbers.Integral):
        return int(v)
    if isinstance(v, numbers.Real) and float(v).is_integer():
        return int(float(v))
    raise ValueError("a whole number")


def _category(v: Any) -> Any:
    if isinstance(v, str):
        if not v:
            raise ValueError("a category value: a whole number or a non-empty string")
        return v
    return _whole(v)


Number = Annotated[float, BeforeValidator(_number)]
NumberOrColumn = Annotated[float | str, BeforeValidator(_number_or_column)]
Whole = Annotated[int, BeforeValidator(_whole)]
Category = Annotated[int | str, BeforeValidator(_category)]


class PKSpec(FrozenSpec):
    """PK structure.

    Parameters
    ----------
    compartments : {1, 2, 3}
        Number of disposition compartments (central plus peripherals).
    absorption : {"none", "first_order", "zero_order", "transit"}
        ``none``: doses enter ``central`` directly; ``first_order``: through a ``depot``
        (``ka_per_h``); ``zero_order``: infused into ``central`` over ``d1_h``; ``transit``:
        from the depot through ``n_transit`` transit compartments and an ``absorption``
        compartment (``mtt_h``, ``ka_per_h``).
    elimination : {"linear", "michaelis_menten", "linear_and_michaelis_menten"}
        From ``central``: ``cl_L_per_h`` · C, ``vmax_mg_per_h`` · C / (``km_mg_per_L`` + C),
        or their sum (mg/h).
    """

    compartments: Annotated[Literal[1, 2, 3], BeforeValidator(_whole)]
    absorption: Literal[cat.ABSORPTIONS]  # type: ignore[valid-type]
    elimination: Literal[cat.ELIMINATIONS]  # type: ignore[valid-type]


class DosingSpec(FrozenSpec):
    """How doses enter one compartment; each value is a number or a data column name.

    Parameters
    ----------
    tlag_h : float or str, optional
        Lag time (h, >= 0).
    f_bio : float or str, optional
        Bioavailability (> 0; relative bioavailability above 1 is allowed).
    duration_h : float or str, optional
        Modelled infusion duration (h, > 0); NONMEM ``RATE = -2``.
    rate_mg_per_h : float or str, optional
        Modelled infusion rate (mg/h, > 0); NONMEM ``RATE = -1``. Excludes ``duration_h``.

    A string names a data column (matched when data are read) and is kept as given.
    """

    tlag_h: NumberOrColumn | None = None
    f_bio: NumberOrColumn | None = None
    duration_h: NumberOrColumn | None = None
    rate_mg_per_h: NumberOrColumn | None = None

    @model_validator(mode="after")
    def _check(self) -> DosingSpec:
        for key in DOSING_KEYS:
            v = getattr(self, key)
            if not isinstance(v, float):
                continue
            if key == "tlag_h":
                if not (math.isfinite(v) and v >= 0):
                    raise _Invalid(key, v, "a finite number >= 0 (h) or a data column name")
            elif not (math.isfinite(v) and v > 0):
                raise _Invalid(key, v, "a finite number > 0 or a data column name")
        if self.duration_h is not None and self.rate_mg_per_h is not None:
            raise _Invalid(
                "rate_mg_per_h",
                self.rate_mg_per_h,
                "not together with duration_h (a dose has a modelled rate or duration)",
            )
        return self


class CovariateEffect(FrozenSpec):
    """Effect of one data column on one parameter; exactly one of the four forms.

    The parameter's typical value is multiplied by a factor of the covariate ``x``:

    - ``power``: ``(x / reference) ** power`` (``x`` and ``reference`` > 0);
    - ``linear``: ``1 + linear · (x - reference)``;
    - ``exponential``: ``exp(exponential · (x - reference))``;
    - ``categorical``: ``{category: factor}``, factor > 0 (no ``reference``).

    ``reference`` is in the column's unit.
    """

    power: Number | None = None
    linear: Number | None = None
    exponential: Number | None = None
    categorical: dict[Category, Number] | None = None
    reference: Number | None = None

    @model_validator(mode="after")
    def _check(self) -> CovariateEffect:
        forms = [
            k
            for k in ("power", "linear", "exponential", "categorical")
            if getattr(self, k) is not None
        ]
        if len(forms) != 1:
            raise ValueError(
                f"exactly one of power, linear, exponential, categorical (got {forms or 'none'})"
            )
        kind = forms[0]
        if kind == "categorical":
            if self.reference is not None:
                raise _Invalid("reference", self.reference, "no reference for a categorical effect")
            if not self.categorical:
                raise _Invalid("categorical", {}, "a non-empty mapping {category: factor}")
            for key, factor in self.categorical.items():
                if not (math.isfinite(factor) and factor > 0):
                    raise _Invalid(f"categorical.{key}", factor, "a finite factor > 0")
            return self
        coef = getattr(self, kind)
        if not math.isfinite(coef):
            raise _Invalid(kind, coef, "a finite number")
        if self.reference is None:
            raise _Invalid("reference", None, f"a reference value of the covariate for {kind}")
        ref_ok = self.reference > 0 if kind == "power" else True
        if not (math.isfinite(self.reference) and ref_ok):
            allowed = "a finite number > 0" if kind == "power" else "a finite number"
            raise _Invalid("reference", self.reference, allowed)
        return self

    @property
    def kind(self) -> str:
        """``power``, ``linear``, ``exponential`` or ``categorical``."""
        for k in ("power", "linear", "exponential", "categorical"):
            if getattr(self, k) is not None:
                return k
        raise AssertionError("unreachable: validated effects have one form")


class IIVBlock(FrozenSpec):
    """A full covariance block of log-normal random effects.

    Parameters
    ----------
    parameters : tuple of str
        Parameters of the block, in the order of ``covariance``'s rows.
    covariance : tuple of tuple of float
        Symmetric positive semi-definite matrix of the etas (log scale, variances on the
        diagonal), shape ``(len(parameters), len(parameters))``.
    """

    parameters: tuple[str, ...]
    covariance: tuple[tuple[Number, ...], ...]

    @model_validator(mode="after")
    def _check(self) -> IIVBlock:
        n = len(self.parameters)
        if n == 0:
            raise _Invalid("parameters", [], "a non-empty list of parameter names")
        if len(set(self.parameters)) != n:
            raise _Invalid("parameters", list(self.parameters), "each parameter once")
        shape = [len(row) for row in self.covariance]
        if len(shape) != n or any(m != n for m in shape):
            raise _Invalid(
                "covariance",
                [list(r) for r in self.covariance],
                f"a {n} x {n} matrix (one row and column per parameter)",
            )
        c = np.array(self.covariance, dtype=float)
        if not np.all(np.isfinite(c)):
            raise _Invalid("covariance", c.tolist(), "finite numbers")
        scale = max(1.0, float(np.max(np.abs(c))))
        if np.any(np.abs(c - c.T) > _SYMMETRY_RTOL * scale):
            raise _Invalid("covariance", c.tolist(), "a symmetric matrix")
        if np.any(np.diag(c) < 0) or np.linalg.eigvalsh(c).min() < -_PSD_RTOL * scale:
            raise _Invalid("covariance", c.tolist(), "a positive semi-definite matrix")
        return self

    def matrix(self) -> np.ndarray:
        """The covariance as an array, shape ``(n, n)``."""
        return np.array(self.covariance, dtype=float)


class IIV(FrozenSpec):
    """Between-subject variability: log-normal etas, ``P_i = P · exp(eta_i)``.

    In YAML, a mapping ``parameter: variance`` (omega², log scale) plus an optional
    ``blocks:`` list of :class:`IIVBlock` for correlated etas. A parameter appears at most
    once. In Python, ``IIV(variances={...}, blocks=(...))``.
    """

    variances: dict[str, Number] = {}
    blocks: tuple[IIVBlock, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _from_flat(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        if "variances" in data:
            variances, rest = data["variances"], data
        else:
            if "block" in data:
                raise _Invalid(
                    "block",
                    data["block"],
                    "'blocks:', a list of {parameters: [...], covariance: [[...]]}",
                )
            variances = {k: v for k, v in data.items() if k != "blocks"}
            rest = {"blocks": data["blocks"]} if "blocks" in data else {}
        if isinstance(variances, Mapping):
            for key, v in variances.items():
                if not (_is_number(v) and math.isfinite(v) and v >= 0):
                    raise _Invalid(
                        str(key), v, "a variance (omega², log scale): a finite number >= 0"
                    )
        return {**rest, "variances": variances}

    @model_validator(mode="after")
    def _check(self) -> IIV:
        seen = set(self.variances)
        for i, block in enumerate(self.blocks):
            for name in block.parameters:
                if name in seen:
                    raise _Invalid(
                        f"blocks[{i}].parameters",
                        name,
                        "a parameter not already in iiv (each parameter at most once)",
                    )
                seen.add(name)
        return self

    @model_serializer(mode="wrap")
    def _to_flat(self, handler) -> dict[str, Any]:
        d = handler(self)
        out = dict(d.get("variances") or {})
        if d.get("blocks"):
            out["blocks"] = d["blocks"]
        return out

    def names(self) -> tuple[str, ...]:
        """Parameters with an eta: the mapping's order, then the blocks'."""
        return tuple(self.variances) + tuple(p for b in self.blocks for p in b.parameters)

    def matrix(self) -> np.ndarray:
        """Omega, shape ``(n_eta, n_eta)``, rows in :meth:`names` order."""
        n = len(self.names())
        omega = np.zeros((n, n))
        k = len(self.variances)
        omega[np.arange(k), np.arange(k)] = list(self.variances.values())
        for block in self.blocks:
            m = len(block.parameters)
            omega[k : k + m, k : k + m] = block.matrix()
            k += m
        return omega


class ResidualError(FrozenSpec):
    """Residual error standard deviations (at least one).

    Parameters
    ----------
    additive : float, optional
        SD in the data's ``dv_unit`` (>= 0).
    proportional : float, optional
        SD relative to the prediction (>= 0); combined with ``additive`` as
        ``sqrt(additive² + (proportional · f)²)``.
    exponential : float, optional
        SD on the log scale, ``y = f · exp(eps)``; excludes the other two.
    """

    additive: Number | None = None
    proportional: Number | None = None
    exponential: Number | None = None

    @model_validator(mode="after")
    def _check(self) -> ResidualError:
        given = [k for k in RESIDUAL_KEYS if getattr(self, k) is not None]
        if not given:
            raise ValueError(f"at least one of {list(RESIDUAL_KEYS)}")
        for key in given:
            v = getattr(self, key)
            if not (math.isfinite(v) and v >= 0):
                raise _Invalid(key, v, "a standard deviation: a finite number >= 0")
        if self.exponential is not None and len(given) > 1:
            raise _Invalid(
                "exponential", self.exponential, "alone (it excludes additive and proportional)"
            )
        return self


#: the directory of the model file being loaded (where ``pd.module`` is looked for first)
_MODULE_SEARCH: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "insilico_model_dir", default=None
)


class PDSpec(FrozenSpec):
    """PD model.

    Parameters
    ----------
    model : str
        Name of a record in :mod:`insilico.pd.registry` (``emax``, ``irm1``, ...).
    effect_compartment : bool
        Drive the PD model by an effect-compartment concentration
        (``dCe/dt = ke0_per_h · (C - Ce)``); needs ``ke0_per_h``.
    module : str, optional
        A user module (dotted name, found beside the model file or on the path) that defines
        the :class:`~insilico.pd.registry.PDRecord` of ``model``; importing it runs its code,
        as loading any Python model does.
    """

    model: str
    effect_compartment: StrictBool = False
    module: str | None = None

    @model_validator(mode="after")
    def _check(self) -> PDSpec:
        try:
            if self.module is not None:
                from insilico.pd.registry import import_pd_module

                import_pd_module(self.module, _MODULE_SEARCH.get())
            cat.pd_record(self.model)
        except ImportError:
            raise _Invalid(
                "model", self.model, "a registered PD model (insilico.pd.registry is unavailable)"
            ) from None
        except SpecError as exc:
            raise _Invalid("model", self.model, exc.allowed) from None
        return self


class DataSpec(FrozenSpec):
    """How data files number compartments and which units they use.

    Parameters
    ----------
    compartments : dict of int to str, optional
        ``CMT`` number -> compartment or output name; NONMEM ADVAN numbering when absent
        (see :meth:`Model.compartment_map`).
    amt_unit : {"mg", "ug", "ng"}
        Unit of ``AMT``.
    dv_unit : {"mg/L", "ug/L", "ng/mL"}
        Unit of ``DV`` (and of the additive residual error SD).
    """

    compartments: dict[Whole, str] | None = None
    amt_unit: Literal[AMT_UNITS] = "mg"  # type: ignore[valid-type]
    dv_unit: Literal[DV_UNITS] = "mg/L"  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _check(self) -> DataSpec:
        if self.compartments is None:
            return self
        seen: dict[str, int] = {}
        for number, name in self.compartments.items():
            if number < 1:
                raise _Invalid(f"compartments.{number}", name, "CMT numbers >= 1")
            if name in seen:
                raise _Invalid(
                    f"compartments.{number}",
                    name,
                    f"a name not already given to CMT {seen[name]} (each name once)",
                )
            seen[name] = number
        return self


class Model(FrozenSpec):
    """A model definition (YAML ``kind: model``); see the module docstring for the schema.

    Parameters
    ----------
    name : str
        Model name.
    description : str, optional
        Free text.
    pk : PKSpec
        PK structure.
    parameters : dict of str to float
        Typical values, units in the names (see :mod:`insilico.model.catalogue`).
    dosing : dict of str to DosingSpec, optional
        Per dosing compartment (``depot``, ``central``, ``peripheral1``, ``peripheral2``).
    covariates : dict, optional
        ``parameter -> data column -> CovariateEffect``.
    iiv : IIV, optional
        Between-subject variability.
    iov : dict of str to float, optional
        Between-occasion variances (log scale), occasions numbered by the ``OCC`` column.
    residual_error : ResidualError, optional
        Residual error SDs.
    fixed : tuple of str, optional
        Names of :meth:`estimate_names` a population fit holds at their model values.
    pd : PDSpec, optional
        PD model.
    data : DataSpec
        Compartment numbering and units of data files.
    """

    kind: Literal["model"] = "model"
    schema_version: Annotated[Literal[1], BeforeValidator(_whole)] = 1
    name: str
    description: str | None = None
    pk: PKSpec
    parameters: dict[str, Number]
    dosing: dict[str, DosingSpec] | None = None
    covariates: dict[str, dict[str, CovariateEffect]] | None = None
    iiv: IIV | None = None
    iov: dict[str, Number] | None = None
    residual_error: ResidualError | None = None
    fixed: tuple[str, ...] | None = None
    pd: PDSpec | None = None
    data: DataSpec = DataSpec()

    @model_validator(mode="after")
    def _check(self) -> Model:
        if not self.name.strip():
            raise SpecError("name", self.name, "a non-empty name")
        self._check_parameters()
        self._check_dosing()
        self._check_variability()
        self._check_compartment_names()
        self._check_fixed()
        return self

    @model_serializer(mode="wrap")
    def _without_unset_fixed(self, handler) -> dict[str, Any]:
        # a model without ``fixed`` serializes (and hashes) as it did before the key existed
        d = handler(self)
        if d.get("fixed") is None:
            d.pop("fixed", None)
        return d

    # -- validation ----------------------------------------------------------------------------

    def _structure_text(self) -> str:
        pk = self.pk
        text = (
            f"compartments {pk.compartments}, absorption {pk.absorption}, "
            f"elimination {pk.elimination}"
        )
        if self.pd is not None:
            text += f", pd {self.pd.model}"
            if self.pd.effect_compartment:
                text += " with an effect compartment"
        return text

    def _check_parameters(self) -> None:
        required = self.required_parameters()
        allowed = required + tuple(p for p in self.optional_parameters() if p not in required)
        for name, value in self.parameters.items():
            field = f"parameters.{name}"
            if name not in allowed:
                if name in cat.PARAMETERS:
                    why = f"a parameter this structure uses ({self._structure_text()})"
                    if name == "ke0_per_h":
                        why = "ke0_per_h only with pd.effect_compartment: true"
                    raise SpecError(field, value, f"{why}; this model takes {list(allowed)}")
                hint = cat.suggest(name, allowed)
                did_you_mean = f"did you mean {hint!r}? " if hint else ""
                raise SpecError(
                    field, value, f"{did_you_mean}a parameter name among {list(allowed)}"
                )
            if not math.isfinite(value):
                raise SpecError(field, value, "a finite number")
            info = cat.PARAMETERS.get(name)
            if info is not None and info.integer:
                if not (float(value).is_integer() and value >= 1):
                    raise SpecError(field, value, "a whole number >= 1")
            elif (info is not None or name == "hill") and value <= 0:
                unit = f" ({info.unit})" if info is not None and info.unit else ""
                raise SpecError(field, value, f"a finite number > 0{unit}")
        for name in required:
            if name not in self.parameters:
                raise SpecError(
                    f"parameters.{name}",
                    None,
                    f"a value: required by this structure ({self._structure_text()})",
                )

    def _check_dosing(self) -> None:
        if not self.dosing:
            return
        allowed = self.dosing_compartments()
        default = self.default_dosing_compartment()
        for cmt, entry in self.dosing.items():
            if cmt not in allowed:
                hint = cat.suggest(cmt, allowed)
                did_you_mean = f"did you mean {hint!r}? " if hint else ""
                raise SpecError(
                    f"dosing.{cmt}",
                    cmt,
                    f"{did_you_mean}a dosing compartment of this structure, one of {list(allowed)}",
                )
            if cmt == default:
                for key in ("tlag_h", "f_bio"):
                    if getattr(entry, key) is not None and key in self.parameters:
                        raise SpecError(
                            f"dosing.{cmt}.{key}",
                            getattr(entry, key),
                            f"not together with parameters.{key} (both apply to {cmt!r})",
                        )
            if cmt == "central" and "d1_h" in self.parameters:
                for key in ("duration_h", "rate_mg_per_h"):
                    if getattr(entry, key) is not None:
                        raise SpecError(
                            f"dosing.central.{key}",
                            getattr(entry, key),
                            "not with zero-order absorption (d1_h sets the input duration)",
                        )

    def _check_variability(self) -> None:
        params = list(self.parameters)
        integer = {n for n, info in cat.PARAMETERS.items() if info.integer}

        def check(field: str, name: str, what: str) -> None:
            if name not in self.parameters:
                known = name in cat.PARAMETERS or name in self.optional_parameters()
                hint = None if known else cat.suggest(name, params)
                did_you_mean = f"did you mean {hint!r}? " if hint else ""
                raise SpecError(
                    field, name, f"{did_you_mean}a parameter given in parameters, one of {params}"
                )
            if name in integer:
                raise SpecError(field, name, f"a non-integer parameter ({name} takes no {what})")

        for name, effects in (self.covariates or {}).items():
            check(f"covariates.{name}", name, "covariate effects")
            seen: dict[str, str] = {}
            for column in effects:
                if not column.strip():
                    raise SpecError(f"covariates.{name}", column, "a non-empty data column name")
                if column.lower() in seen:
                    raise SpecError(
                        f"covariates.{name}.{column}",
                        column,
                        f"a column not already used for {name} ({seen[column.lower()]!r}; "
                        "column names are matched ignoring case)",
                    )
                seen[column.lower()] = column
        if self.iiv is not None:
            for name in self.iiv.variances:
                check(f"iiv.{name}", name, "random effects")
            for i, block in enumerate(self.iiv.blocks):
                for name in block.parameters:
                    check(f"iiv.blocks[{i}].parameters", name, "random effects")
        for name, variance in (self.iov or {}).items():
            check(f"iov.{name}", name, "random effects")
            if not (math.isfinite(variance) and variance >= 0):
                raise SpecError(
                    f"iov.{name}", variance, "a variance (log scale): a finite number >= 0"
                )

    def _check_fixed(self) -> None:
        if self.fixed is None:
            return
        names = self.estimate_names()
        seen: set[str] = set()
        for i, name in enumerate(self.fixed):
            if name in seen:
                raise SpecError(f"fixed[{i}]", name, "each name once")
            seen.add(name)
            if name not in names:
                hint = cat.suggest(name, names)
                did_you_mean = f"did you mean {hint!r}? " if hint else ""
                raise SpecError(
                    f"fixed[{i}]",
                    name,
                    f"{did_you_mean}the name of a value a fit estimates, one of {list(names)}",
                )
        for i in range(len(self.iiv.blocks) if self.iiv is not None else 0):
            entries = self.block_estimate_names(i)
            held = [n for n in entries if n in seen]
            if held and len(held) != len(entries):
                raise SpecError(
                    "fixed",
                    held,
                    f"all of iiv.blocks[{i}]'s values {list(entries)} or none "
                    "(a block is estimated or fixed whole)",
                )

    def _check_compartment_names(self) -> None:
        if self.data.compartments is None:
            return
        names = self.compartment_names()
        for number, name in self.data.compartments.items():
            if name not in names:
                hint = cat.suggest(name, names)
                did_you_mean = f"did you mean {hint!r}? " if hint else ""
                raise SpecError(
                    f"data.compartments.{number}",
                    name,
                    f"{did_you_mean}a compartment or output of this model, one of {list(names)}",
                )

    # -- structure -----------------------------------------------------------------------------

    def required_parameters(self) -> tuple[str, ...]:
        """Parameters the model must give: its structure's, then the PD model's."""
        return cat.structure_parameters(self.pk) + cat.pd_parameters(self.pd)[0]

    def optional_parameters(self) -> tuple[str, ...]:
        """Parameters the model may give: ``tlag_h``, ``f_bio`` and PD defaults (``hill``)."""
        return cat.OPTIONAL_PK + cat.pd_parameters(self.pd)[1]

    @property
    def n_transit(self) -> int:
        """Number of transit compartments (0 unless absorption is ``transit``)."""
        if self.pk.absorption != "transit":
            return 0
        return int(self.parameters.get("n_transit", 0))

    def pk_compartments(self) -> tuple[str, ...]:
        """PK compartment names: ``depot``, ``transit1``.., ``absorption``, ``central``, ..."""
        return cat.pk_compartments(self.pk, self.n_transit)

    def compartment_names(self) -> tuple[str, ...]:
        """Every name a data file may number: PK compartments, ``effect``, PD outputs."""
        names = self.pk_compartments()
        if self.pd is not None and self.pd.effect_compartment:
            names += ("effect",)
        return names + cat.pd_outputs(self.pd)

    def dosing_compartments(self) -> tuple[str, ...]:
        """Compartments a dose may enter: ``depot`` (with one), ``central``, peripherals."""
        return tuple(
            n for n in self.pk_compartments() if not n.startswith("transit") and n != "absorption"
        )

    def default_dosing_compartment(self) -> str:
        """``depot`` with first-order or transit absorption, else ``central``."""
        return cat.default_dosing_compartment(self.pk)

    def compartment_map(self) -> dict[int, str]:
        """``CMT`` number -> compartment name: ``data.compartments``, else NONMEM ADVAN order.

        NONMEM numbering: with a depot 1 = depot, 2 = central, 3 = peripheral1,
        4 = peripheral2; otherwise 1 = central, 2 = peripheral1, 3 = peripheral2.
        """
        if self.data.compartments is not None:
            return dict(self.data.compartments)
        return cat.default_compartment_map(self.pk)

    # -- variability ---------------------------------------------------------------------------

    def eta_names(self) -> tuple[str, ...]:
        """Parameters with IIV: the ``iiv`` mapping's order, then the blocks'."""
        return self.iiv.names() if self.iiv is not None else ()

    def omega_matrix(self) -> np.ndarray:
        """IIV covariance (log scale), shape ``(n_eta, n_eta)``, rows in :meth:`eta_names`."""
        return self.iiv.matrix() if self.iiv is not None else np.zeros((0, 0))

    def iov_names(self) -> tuple[str, ...]:
        """Parameters with IOV, in the ``iov`` mapping's order."""
        return tuple(self.iov or {})

    def iov_variances(self) -> np.ndarray:
        """IOV variances (log scale), shape ``(n_iov,)``, in :meth:`iov_names` order."""
        return np.array(list((self.iov or {}).values()), dtype=float)

    # -- estimated values ----------------------------------------------------------------------

    def covariate_effect_names(self) -> dict[str, tuple[str, str, int | str | None]]:
        """Names of the covariate-effect values: name -> ``(parameter, column, category)``.

        ``beta_<parameter>_<column>`` for a power, linear or exponential coefficient (category
        None); ``beta_<parameter>_<column>_<category>`` for each factor of a categorical
        effect. In the order of ``covariates``.
        """
        out: dict[str, tuple[str, str, int | str | None]] = {}
        for param, effects in (self.covariates or {}).items():
            for column, effect in effects.items():
                if effect.categorical is not None:
                    for category in effect.categorical:
                        out[f"beta_{param}_{column}_{category}"] = (param, column, category)
                else:
                    out[f"beta_{param}_{column}"] = (param, column, None)
        return out

    def block_estimate_names(self, index: int) -> tuple[str, ...]:
        """Names of the values of ``iiv.blocks[index]``: its variances ``omega2_<p>``, then its
        covariances ``omega_<p1>_<p2>`` (row-wise, upper triangle)."""
        blocks = self.iiv.blocks if self.iiv is not None else ()
        ps = blocks[index].parameters
        return tuple(f"omega2_{p}" for p in ps) + tuple(
            f"omega_{a}_{b}" for i, a in enumerate(ps) for b in ps[i + 1 :]
        )

    def estimate_names(self) -> tuple[str, ...]:
        """Every value a population fit may estimate, by name.

        Typical values (by parameter name; not ``n_transit``), covariate effects
        (:meth:`covariate_effect_names`), IIV variances ``omega2_<parameter>`` in
        :meth:`eta_names` order, then each block's covariances ``omega_<p1>_<p2>`` (row-wise,
        upper triangle), and residual SDs ``sigma_<kind>``.
        """
        integer = {n for n, info in cat.PARAMETERS.items() if info.integer}
        names = [p for p in self.parameters if p not in integer]
        names += list(self.covariate_effect_names())
        names += [f"omega2_{p}" for p in self.eta_names()]
        for i in range(len(self.iiv.blocks) if self.iiv is not None else 0):
            names += [n for n in self.block_estimate_names(i) if not n.startswith("omega2_")]
        if self.residual_error is not None:
            names += [
                f"sigma_{k}" for k in RESIDUAL_KEYS if getattr(self.residual_error, k) is not None
            ]
        return tuple(names)

    # -- variants ------------------------------------------------------------------------------

    def with_parameters(self, **values: float) -> Model:
        """A copy with updated (or added) typical values, validated again.

        Examples
        --------
        >>> m2 = m.with_parameters(cl_L_per_h=0.3)  # doctest: +SKIP
        """
        return self._replace(parameters={**self.parameters, **values})

    def with_estimates(
        self,
        parameters: Mapping[str, float] | None = None,
        omega: np.ndarray | None = None,
        residual_error: Mapping[str, float] | None = None,
        covariates: Mapping[str, float] | None = None,
    ) -> Model:
        """A copy with estimated values, validated again.

        Parameters
        ----------
        parameters : mapping, optional
            Typical values to update (units in the names).
        omega : ndarray, shape (n_eta, n_eta), optional
            IIV covariance in :meth:`eta_names` order; it must be zero outside the model's
            blocks (the structure of ``iiv`` is kept).
        residual_error : mapping, optional
            Residual error standard deviations (keys as in ``residual_error``); replaces the
            current residual error model.
        covariates : mapping, optional
            Covariate-effect values by name (:meth:`covariate_effect_names`, e.g.
            ``{"beta_cl_L_per_h_WT": 0.75}``): the coefficient of a power, linear or
            exponential effect, or one factor of a categorical effect. The effects' forms and
            references are kept.
        """
        update: dict[str, Any] = {}
        if parameters is not None:
            update["parameters"] = {**self.parameters, **dict(parameters)}
        if covariates is not None:
            update["covariates"] = self._covariates_with(covariates)
        if omega is not None:
            update["iiv"] = self._iiv_from_omega(np.asarray(omega, dtype=float))
        if residual_error is not None:
            update["residual_error"] = dict(residual_error)
        return self._replace(**update)

    def _covariates_with(self, values: Mapping[str, float]) -> dict[str, Any]:
        names = self.covariate_effect_names()
        effects = self.covariates or {}
        out = {
            param: {column: effect.model_dump(exclude_none=True) for column, effect in e.items()}
            for param, e in effects.items()
        }
        for name, value in values.items():
            if name not in names:
                hint = cat.suggest(name, list(names))
                did_you_mean = f"did you mean {hint!r}? " if hint else ""
                raise SpecError(
                    f"covariates.{name}",
                    value,
                    f"{did_you_mean}a covariate effect of the model, one of {list(names)}",
                )
            param, column, category = names[name]
            entry = out[param][column]
            if category is None:
                kind = effects[param][column].kind
                entry[kind] = value
            else:
                entry["categorical"] = {**entry["categorical"], category: value}
        return out

    def _iiv_from_omega(self, omega: np.ndarray) -> dict[str, Any]:
        names = self.eta_names()
        n = len(names)
        if omega.shape != (n, n):
            raise SpecError("omega", omega.shape, f"shape ({n}, {n}), rows in order {list(names)}")
        variances = self.iiv.variances if self.iiv is not None else {}
        blocks = self.iiv.blocks if self.iiv is not None else ()
        allowed = np.eye(n, dtype=bool)
        k = len(variances)
        spans = []
        for block in blocks:
            m = len(block.parameters)
            allowed[k : k + m, k : k + m] = True
            spans.append((block, k, k + m))
            k += m
        if np.any(omega[~allowed] != 0):
            raise SpecError(
                "omega", omega.tolist(), "zero outside the diagonal and the model's iiv blocks"
            )
        out: dict[str, Any] = {name: float(omega[i, i]) for i, name in enumerate(variances)}
        if spans:
            out["blocks"] = [
                {"parameters": list(b.parameters), "covariance": omega[a:z, a:z].tolist()}
                for b, a, z in spans
            ]
        return out

    def _replace(self, **update: Any) -> Model:
        return model_from_dict({**self.model_dump(), **update})

    # -- identity ------------------------------------------------------------------------------

    def canonical_json(self) -> str:
        """Canonical JSON of the model (sorted keys, no whitespace): what the hash covers."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def sha256(self) -> str:
        """SHA-256 of :meth:`canonical_json`."""
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()


# -- conversion of validation errors ---------------------------------------------------------


def _spec_error(exc: ValidationError, source: str | None) -> SpecError:
    errors = exc.errors()
    err = errors[0]
    n_more = len(errors) - 1
    more = f" (and {n_more} more error{'s' if n_more > 1 else ''})" if n_more else ""
    cause = (err.get("ctx") or {}).get("error")
    loc = tuple(p for p in err.get("loc", ()) if not (isinstance(p, str) and "[" in p))
    base = field_path(loc)
    if isinstance(cause, SpecError):
        return SpecError(cause.field, cause.value, cause.allowed + more, source)
    if isinstance(cause, _Invalid):
        field = cause.field if base == "<root>" else f"{base}.{cause.field}"
        return SpecError(field, cause.value, cause.allowed + more, source)
    out = spec_error_from_validation(exc, source, model=Model)
    allowed = out.allowed.removeprefix("Value error, ")
    return SpecError(out.field, out.value, allowed, source)


# -- strict YAML ------------------------------------------------------------------------------


def read_model_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping strictly (:func:`insilico.io.specs.read_yaml`: no duplicate keys,
    anchors or aliases)."""
    from insilico.io.specs import read_yaml

    return read_yaml(path, "model")


# -- public API ------------------------------------------------------------------------------


def model_from_dict(data: Mapping[str, Any] | Model, source: str | None = None) -> Model:
    """Validate a mapping (the YAML form) as a :class:`Model`.

    Parameters
    ----------
    data : mapping or Model
        The model's keys; ``kind`` and ``schema_version`` may be omitted. A ``Model`` is
        returned as is.
    source : str, optional
        File the mapping came from, named in errors.

    Raises
    ------
    SpecError
        Naming the source, the key path, the value and what is allowed.
    """
    if isinstance(data, Model):
        return data
    if not isinstance(data, Mapping):
        raise SpecError("<root>", type(data).__name__, "a mapping", source)
    if "kind" in data and data["kind"] != "model":
        raise SpecError("kind", data["kind"], "'model'", source)
    try:
        return Model.model_validate(dict(data))
    except ValidationError as exc:
        raise _spec_error(exc, source) from None


def load_model(path: str | Path) -> Model:
    """Load a model file (``kind: model``, ``schema_version: 1``).

    Parameters
    ----------
    path : str or Path
        YAML file.

    Returns
    -------
    Model

    Raises
    ------
    SpecError
        With ``source`` the file path.
    """
    data = read_model_yaml(path)
    source = str(path)
    if data.get("kind") != "model":
        raise SpecError("kind", data.get("kind"), "'model'", source)
    version = data.get("schema_version")
    if isinstance(version, bool) or version != 1:
        raise SpecError("schema_version", version, "one of [1]", source)
    token = _MODULE_SEARCH.set(str(Path(path).resolve().parent))
    try:
        return model_from_dict(data, source)
    finally:
        _MODULE_SEARCH.reset(token)


def _plain(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


def model_to_dict(model: Model) -> dict[str, Any]:
    """The YAML form of ``model``: plain dicts, lists, numbers and strings; absent keys left out.

    ``model_from_dict(model_to_dict(m)) == m``.
    """
    return _plain(model.model_dump(mode="python", exclude_none=True))


def dump_model(model: Model, path: str | Path) -> Path:
    """Write ``model`` as a YAML model file; ``load_model(dump_model(m, p)) == m``.

    Returns
    -------
    Path
        The file written.
    """
    p = Path(path)
    text = yaml.safe_dump(model_to_dict(model), sort_keys=False, allow_unicode=True)
    p.write_text(text, encoding="utf-8")
    return p
