"""A user-written disease model: chemotherapy-induced myelosuppression (Friberg et al. 2002).

Friberg LE, Henningsson A, Maas H, Nguyen L, Karlsson MO. Model of chemotherapy-induced
myelosuppression with parameter consistency across drugs. J Clin Oncol 2002;20:4713-21,
doi:10.1200/JCO.2002.02.140.

Proliferating cells (``prol``) feed three transit compartments and the circulating pool
(``circ``, 10^9 cells/L), each at ``ktr = 4 / mtt_wbc_h``; the drug kills proliferating cells
in proportion to its concentration (``Edrug = slope_L_per_mg · C``) and a feedback
``(circ0 / circ)^gamma`` raises proliferation while circulating counts are low::

    dProl/dt = ktr · Prol · (1 - Edrug) · (Circ0 / Circ)^gamma - ktr · Prol
    dT1/dt   = ktr · (Prol - T1)
    dT2/dt   = ktr · (T1 - T2)
    dT3/dt   = ktr · (T2 - T3)
    dCirc/dt = ktr · (T3 - Circ)

Every state starts at ``circ0``. This module is what a user writes to add the model: the
numba functions at the top level of a module and one :class:`PDRecord`; a model file beside
it names it with ``pd: {model: friberg, module: friberg_model}``.
"""

from __future__ import annotations

import numba as nb

from insilico.pd.registry import PDRecord

#: parameters in the order ``rhs``/``initial`` receive them
PARAMETERS = ("circ0", "mtt_wbc_h", "slope_L_per_mg", "gamma")
#: ODE states, observable by name
STATES = ("prol", "transit1_wbc", "transit2_wbc", "transit3_wbc", "circ")


@nb.njit(cache=True)
def friberg_rhs(c, y, p, dydt):
    """dy/dt (per h) at the driving concentration ``c`` (mg/L)."""
    circ0, mtt, slope, gamma = p[0], p[1], p[2], p[3]
    ktr = 4.0 / mtt
    edrug = slope * c
    feedback = (circ0 / y[4]) ** gamma
    dydt[0] = ktr * y[0] * (1.0 - edrug) * feedback - ktr * y[0]
    dydt[1] = ktr * (y[0] - y[1])
    dydt[2] = ktr * (y[1] - y[2])
    dydt[3] = ktr * (y[2] - y[3])
    dydt[4] = ktr * (y[3] - y[4])


@nb.njit(cache=True)
def friberg_initial(p, y0):
    """Every compartment at the baseline count ``circ0``."""
    for i in range(5):
        y0[i] = p[0]


FRIBERG = PDRecord(
    name="friberg",
    parameters=PARAMETERS,
    states=STATES,
    rhs=friberg_rhs,
    initial=friberg_initial,
    output="circ",
    description="Friberg 2002 myelosuppression: proliferation, 3 transits, circulation",
)
