"""One registry of pharmacodynamic and disease models, one record per model.

A record names the model's parameters (units in the names), says whether it has state, and
carries its numba-compiled functions:

- a *direct* model has no state: ``direct(c, p) -> response`` gives the response at the
  driving concentration ``c`` (mg/L) for the parameter vector ``p`` (the record's
  ``parameters`` in order);
- a *stateful* model (indirect response, disease, toxicity) has ODE states:
  ``initial(p, y0)`` writes the states before any dose into ``y0`` and
  ``rhs(c, y, p, dydt)`` writes ``dy/dt`` (per h) given the driving concentration ``c``.

Adding a model means adding one record with :func:`register_pd_model`; the simulation engine
compiles a batch kernel around the record's functions (see
:mod:`insilico.model.engine`). Built-in records (Holford & Sheiner 1981,
doi:10.2165/00003088-198106060-00002; Dayneka, Garner & Jusko 1993,
doi:10.1007/BF01059644)::

    linear        E = E0 + slope · C
    emax          E = E0 + Emax · C / (EC50 + C)
    sigmoid_emax  E = E0 + Emax · C^h / (EC50^h + C^h)
    irm1          dR/dt = kin (1 - I(C)) - kout R
    irm2          dR/dt = kin - kout (1 - I(C)) R
    irm3          dR/dt = kin (1 + S(C)) - kout R
    irm4          dR/dt = kin - kout (1 + S(C)) R

with ``R(0) = kin / kout``, ``I(C) = Imax C^h / (IC50^h + C^h)`` and
``S(C) = Smax C^h / (SC50^h + C^h)``; ``h`` (``hill``) defaults to 1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numba as nb

from insilico.errors import SpecError


@dataclass(frozen=True)
class PDRecord:
    """A pharmacodynamic or disease model.

    Parameters
    ----------
    name : str
        Registry name used in model files (``pd: {model: NAME}``).
    parameters : tuple of str
        Parameter names in the order of the packed vector ``p`` the functions receive.
    states : tuple of str
        ODE state names, ``()`` for a direct model. Each state is observable by its name.
    direct : callable, optional
        ``direct(c, p) -> float`` (numba ``njit``) for a direct model.
    rhs : callable, optional
        ``rhs(c, y, p, dydt)`` (numba ``njit``) for a stateful model.
    initial : callable, optional
        ``initial(p, y0)`` (numba ``njit``): the states before any dose.
    defaults : mapping, optional
        Values of optional parameters that a model file may omit (``{"hill": 1.0}``).
    output : str
        Name of the model's main output: ``"response"`` for direct models, a state name
        otherwise (the first state by default).
    description : str
        One line for listings.
    """

    name: str
    parameters: tuple[str, ...]
    states: tuple[str, ...] = ()
    direct: Callable | None = None
    rhs: Callable | None = None
    initial: Callable | None = None
    defaults: Mapping[str, float] = field(default_factory=dict)
    output: str = ""
    description: str = ""

    def __post_init__(self):
        if self.states:
            if self.rhs is None or self.initial is None:
                raise SpecError(
                    f"pd model {self.name!r}", "missing rhs/initial", "both for a stateful model"
                )
        elif self.direct is None:
            raise SpecError(f"pd model {self.name!r}", "no direct function", "one")
        if not self.output:
            object.__setattr__(self, "output", self.states[0] if self.states else "response")

    @property
    def has_state(self) -> bool:
        """Whether the model has ODE states."""
        return bool(self.states)

    @property
    def required(self) -> tuple[str, ...]:
        """Parameters a model file must give (those without a default)."""
        return tuple(p for p in self.parameters if p not in self.defaults)

    @property
    def outputs(self) -> tuple[str, ...]:
        """Names an observation may refer to: the states, or ``response``."""
        return self.states if self.states else ("response",)


_REGISTRY: dict[str, PDRecord] = {}


def register_pd_model(record: PDRecord, *, replace: bool = False) -> PDRecord:
    """Add ``record`` to the registry (a new name, or ``replace=True``)."""
    if record.name in _REGISTRY and not replace and _REGISTRY[record.name] is not record:
        raise SpecError("pd.model", record.name, "a name not yet registered (or replace=True)")
    _REGISTRY[record.name] = record
    return record


def import_pd_module(name: str, search: str | None = None) -> tuple[str, ...]:
    """Import the module ``name`` (dotted) and register the :class:`PDRecord` objects it defines.

    Parameters
    ----------
    name : str
        A module importable from ``sys.path`` or from ``search``.
    search : str, optional
        A directory to look in first (a model file's directory); it is added to ``sys.path``
        for the rest of the process, as the generated kernels import the module by name.

    Returns
    -------
    tuple of str
        Names of the records registered.
    """
    import importlib
    import sys

    if not all(part.isidentifier() for part in name.split(".")):
        raise SpecError("pd.module", name, "a dotted Python module name (friberg_model)")
    if search is not None and search not in sys.path:
        sys.path.insert(0, search)
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        where = f" (looked beside the model file, in {search}, and on the path)" if search else ""
        raise SpecError("pd.module", name, f"an importable Python module{where}: {exc}") from None
    found = []
    for value in vars(module).values():
        if isinstance(value, PDRecord):
            known = _REGISTRY.get(value.name)
            if known is not None and known is not value and known.rhs is not value.rhs:
                if getattr(known.rhs, "__module__", None) != module.__name__:
                    raise SpecError(
                        "pd.module", name, f"records whose names are not taken ({value.name!r})"
                    )
            _REGISTRY[value.name] = value
            found.append(value.name)
    if not found:
        raise SpecError("pd.module", name, "a module that defines PDRecord objects")
    return tuple(found)


def get_pd_model(name: str) -> PDRecord:
    """The registered record called ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise SpecError("pd.model", name, f"one of {sorted(_REGISTRY)}") from None


def pd_model_names() -> tuple[str, ...]:
    """Names of every registered model, sorted."""
    return tuple(sorted(_REGISTRY))


# --- built-in direct models ------------------------------------------------------------------


@nb.njit(cache=True)
def _linear(c, p):
    return p[0] + p[1] * c


@nb.njit(cache=True)
def _emax(c, p):
    return p[0] + p[1] * c / (p[2] + c)


@nb.njit(cache=True)
def _sigmoid_emax(c, p):
    ch = c ** p[3] if c > 0.0 else 0.0
    return p[0] + p[1] * ch / (p[2] ** p[3] + ch)


# --- built-in indirect responses: p = (kin, kout, imax|smax, ic50|sc50, hill) ----------------


@nb.njit(cache=True)
def _hill_fraction(c, p):
    ch = c ** p[4] if c > 0.0 else 0.0
    return p[2] * ch / (p[3] ** p[4] + ch)


@nb.njit(cache=True)
def _irm_initial(p, y0):
    y0[0] = p[0] / p[1]


@nb.njit(cache=True)
def _irm1(c, y, p, dydt):
    dydt[0] = p[0] * (1.0 - _hill_fraction(c, p)) - p[1] * y[0]


@nb.njit(cache=True)
def _irm2(c, y, p, dydt):
    dydt[0] = p[0] - p[1] * (1.0 - _hill_fraction(c, p)) * y[0]


@nb.njit(cache=True)
def _irm3(c, y, p, dydt):
    dydt[0] = p[0] * (1.0 + _hill_fraction(c, p)) - p[1] * y[0]


@nb.njit(cache=True)
def _irm4(c, y, p, dydt):
    dydt[0] = p[0] - p[1] * (1.0 + _hill_fraction(c, p)) * y[0]


register_pd_model(
    PDRecord("linear", ("e0", "slope_L_per_mg"), direct=_linear, description="E0 + slope C")
)
register_pd_model(
    PDRecord(
        "emax", ("e0", "emax", "ec50_mg_per_L"), direct=_emax, description="E0 + Emax C/(EC50+C)"
    )
)
register_pd_model(
    PDRecord(
        "sigmoid_emax",
        ("e0", "emax", "ec50_mg_per_L", "hill"),
        direct=_sigmoid_emax,
        description="E0 + Emax C^h/(EC50^h+C^h)",
    )
)
_INHIBITION = ("kin_per_h", "kout_per_h", "imax", "ic50_mg_per_L", "hill")
_STIMULATION = ("kin_per_h", "kout_per_h", "smax", "sc50_mg_per_L", "hill")
for _name, _rhs, _parameters, _what in (
    ("irm1", _irm1, _INHIBITION, "inhibition of production"),
    ("irm2", _irm2, _INHIBITION, "inhibition of loss"),
    ("irm3", _irm3, _STIMULATION, "stimulation of production"),
    ("irm4", _irm4, _STIMULATION, "stimulation of loss"),
):
    register_pd_model(
        PDRecord(
            _name,
            _parameters,
            states=("response",),
            rhs=_rhs,
            initial=_irm_initial,
            defaults={"hill": 1.0},
            description=f"indirect response: {_what}",
        )
    )
