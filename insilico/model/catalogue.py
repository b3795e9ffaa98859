"""Parameter catalogue of model definitions: names, units, meaning, and what needs them.

Internal units are h, mg, L (see :mod:`insilico.units`); every name carries its unit. Which
parameters a model must give follows from its PK structure (``pk.compartments``,
``pk.absorption``, ``pk.elimination``) and its PD model (a record of
:mod:`insilico.pd.registry`):

- ``v1_L``: always;
- ``cl_L_per_h``: elimination ``linear`` or ``linear_and_michaelis_menten``;
- ``vmax_mg_per_h``, ``km_mg_per_L``: elimination ``michaelis_menten`` or
  ``linear_and_michaelis_menten``;
- ``q2_L_per_h``, ``v2_L``: 2 or 3 compartments; ``q3_L_per_h``, ``v3_L``: 3 compartments;
- ``ka_per_h``: absorption ``first_order``; ``ka_per_h``, ``mtt_h``, ``n_transit``:
  absorption ``transit``; ``d1_h``: absorption ``zero_order`` (doses into ``central`` are
  infused over ``d1_h``);
- ``tlag_h``, ``f_bio``: optional with any structure; they apply to the default dosing
  compartment (``depot`` with first-order or transit absorption, else ``central``);
- the PD record's parameters (those with a default, such as ``hill``, are optional), and
  ``ke0_per_h`` with an effect compartment.

Transit absorption (Savic et al. 2007, doi:10.1007/s10928-007-9066-0) uses a whole number of
transit compartments: a dose enters ``depot`` and passes ``depot``, ``transit1`` ..
``transitN`` at ``ktr = (n_transit + 1) / mtt_h`` into ``absorption``, which empties into
``central`` at ``ka_per_h`` (see :mod:`insilico.model.layout`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

#: Allowed values of ``pk.absorption``.
ABSORPTIONS: tuple[str, ...] = ("none", "first_order", "zero_order", "transit")
#: Allowed values of ``pk.elimination``.
ELIMINATIONS: tuple[str, ...] = ("linear", "michaelis_menten", "linear_and_michaelis_menten")
#: Allowed values of ``pk.compartments``.
COMPARTMENTS: tuple[int, ...] = (1, 2, 3)
#: Absorptions that dose into a depot compartment.
DEPOT_ABSORPTIONS: tuple[str, ...] = ("first_order", "transit")


@dataclass(frozen=True)
class ParameterInfo:
    """One catalogued parameter.

    Parameters
    ----------
    name : str
        Name used in model files, with its unit (``cl_L_per_h``).
    unit : str
        Unit in words (``"L/h"``); ``""`` for a dimensionless quantity.
    meaning : str
        What the parameter is.
    integer : bool
        Whether the value must be a whole number (``n_transit``); such a parameter cannot
        carry random effects or covariate effects.
    """

    name: str
    unit: str
    meaning: str
    integer: bool = False


_INFO = (
    ParameterInfo("cl_L_per_h", "L/h", "linear clearance from the central compartment"),
    ParameterInfo("v1_L", "L", "volume of the central compartment"),
    ParameterInfo("q2_L_per_h", "L/h", "inter-compartmental clearance, central <-> peripheral1"),
    ParameterInfo("v2_L", "L", "volume of the first peripheral compartment"),
    ParameterInfo("q3_L_per_h", "L/h", "inter-compartmental clearance, central <-> peripheral2"),
    ParameterInfo("v3_L", "L", "volume of the second peripheral compartment"),
    ParameterInfo("vmax_mg_per_h", "mg/h", "maximum rate of saturable elimination"),
    ParameterInfo("km_mg_per_L", "mg/L", "concentration at half-maximum saturable elimination"),
    ParameterInfo("ka_per_h", "1/h", "first-order absorption rate constant, depot -> central"),
    ParameterInfo("mtt_h", "h", "mean transit time from the depot to the absorption compartment"),
    ParameterInfo("n_transit", "", "number of transit compartments after the depot", True),
    ParameterInfo("d1_h", "h", "duration of zero-order input into the central compartment"),
    ParameterInfo("tlag_h", "h", "absorption lag time of the default dosing compartment"),
    ParameterInfo("f_bio", "", "(relative) bioavailability of the default dosing compartment"),
    ParameterInfo("fu", "", "fraction unbound in plasma; a PD model is driven by fu * C"),
    ParameterInfo("ke0_per_h", "1/h", "effect-compartment equilibration rate constant"),
)

#: Every catalogued PK and link parameter, by name.
PARAMETERS: dict[str, ParameterInfo] = {p.name: p for p in _INFO}

#: Parameters any structure may give.
OPTIONAL_PK: tuple[str, ...] = ("tlag_h", "f_bio", "fu")


def structure_parameters(pk: Any) -> tuple[str, ...]:
    """Required PK parameters of a structure, in catalogue order.

    Parameters
    ----------
    pk : object
        Anything with ``compartments``, ``absorption`` and ``elimination`` attributes.

    Returns
    -------
    tuple of str
    """
    need = {"v1_L"}
    if pk.elimination in ("linear", "linear_and_michaelis_menten"):
        need.add("cl_L_per_h")
    if pk.elimination in ("michaelis_menten", "linear_and_michaelis_menten"):
        need |= {"vmax_mg_per_h", "km_mg_per_L"}
    if pk.compartments >= 2:
        need |= {"q2_L_per_h", "v2_L"}
    if pk.compartments >= 3:
        need |= {"q3_L_per_h", "v3_L"}
    if pk.absorption == "first_order":
        need.add("ka_per_h")
    elif pk.absorption == "transit":
        need |= {"ka_per_h", "mtt_h", "n_transit"}
    elif pk.absorption == "zero_order":
        need.add("d1_h")
    return tuple(name for name in PARAMETERS if name in need)


def pd_parameters(pd: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Required and optional parameters of a PD specification.

    Parameters
    ----------
    pd : object or None
        Anything with ``model`` (a :mod:`insilico.pd.registry` name) and
        ``effect_compartment`` attributes; ``None`` for no PD.

    Returns
    -------
    required, optional : tuple of str
        ``ke0_per_h`` is required with an effect compartment; parameters with a default in
        the record (``hill`` of the indirect-response models) are optional.
    """
    if pd is None:
        return (), ()
    record = pd_record(pd.model)
    defaults = getattr(record, "defaults", {}) or {}
    required = tuple(p for p in record.parameters if p not in defaults)
    optional = tuple(p for p in record.parameters if p in defaults)
    if pd.effect_compartment:
        required += ("ke0_per_h",)
    return required, optional


def pd_record(name: str) -> Any:
    """The :class:`insilico.pd.registry.PDRecord` called ``name``.

    Raises
    ------
    SpecError
        If no PD model of that name is registered.
    """
    from insilico.pd.registry import get_pd_model

    return get_pd_model(name)


def pd_outputs(pd: Any) -> tuple[str, ...]:
    """Observable PD names: the record's states, or ``response`` for a direct model."""
    if pd is None:
        return ()
    record = pd_record(pd.model)
    outputs = getattr(record, "outputs", None)
    if outputs is None:
        outputs = tuple(record.states) or ("response",)
    return tuple(outputs)


def pk_compartments(pk: Any, n_transit: int = 0) -> tuple[str, ...]:
    """PK compartment names of a structure, in NONMEM ADVAN order.

    ``depot`` (first-order or transit absorption), ``transit1`` .. ``transitN`` and
    ``absorption`` (transit absorption), ``central``, ``peripheral1``, ``peripheral2``.
    """
    names: list[str] = []
    if pk.absorption in DEPOT_ABSORPTIONS:
        names.append("depot")
    if pk.absorption == "transit":
        names += [f"transit{k}" for k in range(1, n_transit + 1)] + ["absorption"]
    names.append("central")
    names += [f"peripheral{k}" for k in range(1, pk.compartments)]
    return tuple(names)


def default_dosing_compartment(pk: Any) -> str:
    """``depot`` for first-order or transit absorption, else ``central``."""
    return "depot" if pk.absorption in DEPOT_ABSORPTIONS else "central"


def default_compartment_map(pk: Any) -> dict[int, str]:
    """NONMEM ADVAN numbering of the dosing and PK observation compartments.

    With a depot: 1 = depot, 2 = central, 3 = peripheral1, 4 = peripheral2; otherwise
    1 = central, 2 = peripheral1, 3 = peripheral2.
    """
    names = ["depot"] if pk.absorption in DEPOT_ABSORPTIONS else []
    names += ["central"] + [f"peripheral{k}" for k in range(1, pk.compartments)]
    return {i: name for i, name in enumerate(names, start=1)}


def suggest(name: str, allowed: Iterable[str]) -> str | None:
    """The allowed name ``name`` most likely meant (same letters ignoring case, or close)."""
    allowed = list(allowed)
    for a in allowed:
        if a.lower() == name.lower():
            return a
    lowered = {a.lower(): a for a in allowed}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.75)
    return lowered[close[0]] if close else None
