"""Predictions of every model structure against an independent scipy Radau solution.

The reference (``structures.reference_batch``) integrates the model equations written in
numpy with ``solve_ivp(method="Radau", rtol=1e-12, atol=1e-14)`` and an analytic Jacobian,
restarted at every event and record, reading the records itself. Cases of one family are
integrated together as one block-diagonal system (see ``structures._Batch``), so each
family costs one Radau run; closed-form sentinels in the same batch check the reference.

Compared at every record (observations of every PK compartment, the effect compartment and
the PD output; dose records report the central concentration before their own dose) and on
every state: relative error on values above 1e-6 of the largest value of that output,
absolute error in units of that floor below it (``structures.max_rel_error``).

Tolerances: the engine solves linear systems exactly (matrix exponential, error ~1e-15
relative) and the reference's own error is below 1e-12 (sentinels: ~1e-14), so linear PK
(and direct PD on it) must agree to 1e-9 (measured ~1e-13). Michaelis-Menten elimination
and indirect responses go through the engine's Dormand-Prince 5(4) at the per-step
tolerances ``insilico.pk.event_kernel.RTOL``/``ATOL``; they must agree to 1e-6 (measured
~1e-8, and ~5e-7 for an indirect response with Hill exponent 0.8, whose right-hand side is
not smooth where the concentration leaves zero).
"""

from __future__ import annotations

import numpy as np
import pytest

from .structures import (
    BASE,
    CMT,
    Case,
    bateman,
    dose,
    errors_by_output,
    make_case,
    make_model,
    max_rel_error,
    observations,
    one_cpt_bolus,
    reference_batch,
    run_engine,
    two_cpt_bolus,
)

LINEAR_RTOL = 1e-9
NONLINEAR_RTOL = 1e-6
#: the reference against closed forms: 1e-12 per step over thousands of steps (measured 1e-14)
SENTINEL_RTOL = 1e-10

ABSORPTIONS = ("none", "first_order", "zero_order", "transit")
ELIMINATIONS = ("linear", "michaelis_menten", "linear_and_michaelis_menten")
GRID = [(c, a, e) for c in (1, 2, 3) for a in ABSORPTIONS for e in ELIMINATIONS]

#: observation times (h); none falls on a dose, an infusion end or a lag-shifted dose
OBS_TIMES_H = (0.25, 0.5, 1.0, 1.7, 2.5, 4.0, 6.0, 9.0, 11.9, 13.0, 16.0, 20.0, 25.0, 30.0)
LATE_OBS_TIMES_H = (31.0, 32.9, 34.0, 40.0, 48.0)
OBSERVED = ("central", "peripheral1", "peripheral2", "absorption", "effect", "response")


def regimen(case: Case) -> list[dict]:
    """Two subjects: 100 mg q12h x3 (ADDL 2) into the default compartment (with the case's
    F and lag), then 50 mg infused into central at 20 mg/h from 30.5 h (F and lag only if
    central is the default compartment; RATE wins over zero-order input); 250 mg once at
    1 h. Every observable compartment is observed."""
    names = set(case.state_names()) | ({"response"} if case.pd else set())
    cmts = [c for c in OBSERVED if c in names]
    first = case.default_cmt
    rows = [dose(0.0, 100.0, first, ii=12.0, addl=2)]
    rows += observations(OBS_TIMES_H, cmts)
    rows += [dose(30.5, 50.0, "central", rate=20.0)]
    rows += observations(LATE_OBS_TIMES_H, cmts)
    rows += [dose(1.0, 250.0, first, id=2)]
    rows += observations((1.5, 3.0, 8.0, 24.0), cmts, id=2)
    return rows


def grid_case(compartments: int, absorption: str, elimination: str) -> Case:
    """A structure with F 0.8 and a 0.35 h lag on its default dosing compartment."""
    return make_case(compartments, absorption, elimination, f_bio=0.8, tlag_h=0.35)


# -- routes, overlapping inputs and units, integrated in the same batch as the grid --------

LATE = (0.5, 1.0, 2.0, 5.0, 9.0, 13.0, 16.5, 20.0, 26.0, 30.0, 40.0)


def _extras() -> dict[str, tuple[Case, list[dict]]]:
    both = ("central", "peripheral1")
    oral2 = make_case(2, "first_order", "linear", f_bio=0.7, tlag_h=0.3)
    transit = make_case(1, "transit", "linear", f_bio=0.7, tlag_h=0.3)
    iv = make_case(2, "none", "linear", f_bio=0.9, tlag_h=0.3)
    zero_mm = make_case(2, "zero_order", "michaelis_menten", d1_h=15.0)
    units = make_case(1, "transit", "linear", amt_unit="ug", dv_unit="ng/mL")
    emax = make_case(1, "first_order", "linear", pd="emax", effect=True, dv_unit="ug/L")
    return {
        # a dose into a peripheral compartment (no F, no lag), then one into the depot
        "bolus-into-peripheral1": (
            oral2,
            [dose(0.0, 100.0, "peripheral1")]
            + observations(LATE[:2], both)
            + [dose(1.5, 50.0, "depot")]
            + observations(LATE[2:], both),
        ),
        # an infusion into the depot (F shortens it: 70 mg at 30 mg/h), repeated
        "infusion-into-depot": (
            transit,
            [dose(0.0, 100.0, "depot", rate=30.0, ii=12.0, addl=1)]
            + observations(LATE, ("central", "absorption")),
        ),
        # infusions of 13.5 h every 12 h overlap: their rates add
        "overlapping-infusions": (
            iv,
            [dose(0.0, 150.0, "central", rate=10.0, ii=12.0, addl=2)] + observations(LATE, both),
        ),
        "overlapping-zero-order-mm": (
            zero_mm,
            [dose(0.0, 150.0, "central", ii=12.0, addl=2)] + observations(LATE, both),
        ),
        # AMT and RATE in ug, DV in ng/mL, amounts reported in ug
        "units-ug-ng_per_mL": (
            units,
            [dose(0.0, 100000.0, "depot", ii=8.0, addl=1)]
            + observations(LATE[:7], ("central", "absorption"))
            + [dose(17.0, 40000.0, "central", rate=20000.0)]
            + observations(LATE[7:], ("central", "absorption")),
        ),
        # the effect compartment reported in the DV unit, the response in its own
        "effect-ug_per_L": (
            emax,
            [dose(0.0, 100.0, "depot")] + observations(LATE, ("central", "effect", "response")),
        ),
    }


EXTRAS = _extras()


# -- closed-form sentinels, integrated in the same batch as the cases -------------------------

SENTINEL_TIMES_H = (0.1, 0.3, 0.5, 1.0, 2.0, 4.0, 8.0, 12.0, 24.0, 36.0)


def sentinels() -> list[tuple[str, Case, list[dict], np.ndarray]]:
    p = BASE
    times = np.array(SENTINEL_TIMES_H)
    bolus = make_case(1, "none", "linear")
    oral = make_case(1, "first_order", "linear", f_bio=0.8, tlag_h=0.35)
    two = make_case(2, "none", "linear")
    c2, _ = two_cpt_bolus(times, 100.0, p["cl_L_per_h"], p["v1_L"], p["q2_L_per_h"], p["v2_L"])
    oral_c = bateman(times, 100.0, 0.8, p["ka_per_h"], p["cl_L_per_h"], p["v1_L"], 0.35)
    return [
        (
            "bolus",
            bolus,
            [dose(0.0, 100.0, "central")] + observations(times),
            one_cpt_bolus(times, 100.0, p["cl_L_per_h"], p["v1_L"]),
        ),
        ("oral", oral, [dose(0.0, 100.0, "depot")] + observations(times), oral_c),
        ("two", two, [dose(0.0, 100.0, "central")] + observations(times), c2),
    ]


def _check_sentinels(found, refs) -> float:
    worst = 0.0
    for (name, _, _, want), ref in zip(found, refs, strict=True):
        err = max_rel_error(ref.pred[1:], want)
        assert err <= SENTINEL_RTOL, f"reference vs closed form ({name}): {err:.2e}"
        worst = max(worst, err)
    return worst


@pytest.fixture(scope="module")
def grid():
    """The reference for every structure of :data:`GRID` and every :data:`EXTRAS` case (one
    Radau run)."""
    cases = {key: grid_case(*key) for key in GRID}
    rows = {key: regimen(case) for key, case in cases.items()}
    for name, (case, extra_rows) in EXTRAS.items():
        cases[name], rows[name] = case, extra_rows
    found = sentinels()
    refs = reference_batch(
        [(cases[key], rows[key]) for key in cases] + [(c, r) for _, c, r, _ in found]
    )
    _check_sentinels(found, refs[len(cases) :])
    return {
        key: (cases[key], rows[key], ref)
        for key, ref in zip(cases, refs[: len(cases)], strict=True)
    }


def _labels(rows) -> np.ndarray:
    names = {v: k for k, v in CMT.items()}
    return np.array(["central" if r["EVID"] == 1 else names[r["CMT"]] for r in rows])


def _compare(case: Case, rows, ref, tol: float) -> dict[str, float]:
    run = run_engine(make_model(case), rows)
    errors = errors_by_output(rows, run.pred, ref.pred)
    for name in case.state_names():
        errors[f"state {name}"] = max_rel_error(run.state(name), ref.state(name))
    bad = {k: f"{v:.2e}" for k, v in errors.items() if not v <= tol}
    assert not bad, f"{case.label()}: max relative error above {tol:g}: {bad}"
    return errors


def test_reference_meets_closed_forms():
    """The reference alone (no batch) against the closed forms it is checked with."""
    found = sentinels()
    refs = reference_batch([(c, r) for _, c, r, _ in found])
    assert _check_sentinels(found, refs) <= SENTINEL_RTOL


@pytest.mark.parametrize(
    ("compartments", "absorption", "elimination"),
    GRID,
    ids=[f"{c}cpt-{a}-{e}" for c, a, e in GRID],
)
def test_structure_matches_radau(grid, compartments, absorption, elimination):
    case, rows, ref = grid[(compartments, absorption, elimination)]
    tol = LINEAR_RTOL if elimination == "linear" else NONLINEAR_RTOL
    errors = _compare(case, rows, ref, tol)
    # every PK compartment with a volume (and transit's absorption) is observed and is
    # nonzero somewhere: the comparison compares something
    outputs = {name for name in errors if not name.startswith("state ")}
    assert outputs == {name for name in OBSERVED if name in case.state_names()}
    for name in outputs:
        assert np.max(ref.pred[_labels(rows) == name]) > 0, name


@pytest.mark.parametrize("name", list(EXTRAS))
def test_route_and_unit_cases_match_radau(grid, name):
    case, rows, ref = grid[name]
    ode = case.elimination != "linear"
    _compare(case, rows, ref, NONLINEAR_RTOL if ode else LINEAR_RTOL)


# -- pharmacodynamics ---------------------------------------------------------------------

#: indirect responses (one compiled kernel per model), each driven by an effect compartment
#: and, on the same kernel, by the central concentration; structures vary across models
PD_CASES = {
    "irm1-effect": make_case(1, "first_order", "linear", pd="irm1", effect=True),
    "irm1-central": make_case(1, "first_order", "linear", pd="irm1"),
    "irm2-effect": make_case(2, "none", "linear", pd="irm2", effect=True),
    "irm2-central": make_case(2, "zero_order", "michaelis_menten", pd="irm2"),
    "irm3-effect": make_case(1, "transit", "michaelis_menten", pd="irm3", effect=True, hill=1.7),
    "irm3-central": make_case(3, "first_order", "linear", pd="irm3", hill=0.8),
    "irm4-effect": make_case(
        3, "zero_order", "linear_and_michaelis_menten", pd="irm4", effect=True, hill=2.0
    ),
    "irm4-central": make_case(2, "transit", "linear", pd="irm4"),
    # direct models on linear PK: the exact (matrix exponential) path
    "emax-effect": make_case(2, "first_order", "linear", pd="emax", effect=True),
    "sigmoid_emax-central": make_case(1, "none", "linear", pd="sigmoid_emax"),
    "linear-effect": make_case(1, "transit", "linear", pd="linear", effect=True),
}


@pytest.fixture(scope="module")
def pd_grid():
    """The reference for every case of :data:`PD_CASES` (one Radau run)."""
    rows = {name: regimen(case) for name, case in PD_CASES.items()}
    refs = reference_batch([(PD_CASES[name], rows[name]) for name in PD_CASES])
    return {
        name: (PD_CASES[name], rows[name], ref) for name, ref in zip(PD_CASES, refs, strict=True)
    }


@pytest.mark.parametrize("name", list(PD_CASES))
def test_pd_matches_radau(pd_grid, name):
    case, rows, ref = pd_grid[name]
    ode = case.pd.startswith("irm") or case.elimination != "linear"
    errors = _compare(case, rows, ref, NONLINEAR_RTOL if ode else LINEAR_RTOL)
    assert "response" in errors
    # the drug moves the response away from its baseline by more than the tolerance
    response = ref.pred[_labels(rows) == "response"]
    assert np.ptp(response) > 0.1 * np.max(np.abs(response))
