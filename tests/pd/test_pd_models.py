"""PD models against closed forms.

Direct effects are algebraic in the unbound concentration ``fu C`` (Holford & Sheiner 1981);
the effect compartment after a one-compartment IV bolus is
``Ce = D/V ke0/(ke0 - k) (e^{-kt} - e^{-ke0 t})`` (Sheiner et al. 1979); an indirect-response
model under a constant concentration settles at ``R_ss`` (Dayneka, Garner & Jusko 1993):
irm1 ``kin (1 - I)/kout``, irm2 ``kin/(kout (1 - I))``, irm3 ``kin (1 + S)/kout``, irm4
``kin/(kout (1 + S))``. Accuracy against Radau for every model: tests/pk/test_against_radau.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from insilico.errors import SpecError
from insilico.pd.models import PDModel
from insilico.pk.models import PKModel
from insilico.pk.regimen import build_event_table
from insilico.pk.simulate import simulate

CL = np.array([5.0, 2.0, 9.0])
V = np.array([50.0, 20.0, 70.0])
FU = np.array([1.0, 0.4, 0.05])
N = 3
T = np.array([0.0, 0.2, 1.0, 3.0, 7.0, 12.0, 20.0, 36.0])
PK = {"cl_L_per_h": CL, "v1_L": V, "fu": FU}


def conc_bolus(dose=100.0):
    return dose / V[:, None] * np.exp(-(CL / V)[:, None] * T[None, :])


@pytest.mark.parametrize(
    ("kind", "extra", "formula"),
    [
        ("linear", {"e0": 3.0, "slope_L_per_mg": 2.5}, lambda cu: 3.0 + 2.5 * cu),
        (
            "emax",
            {"e0": 1.0, "emax": 40.0, "ec50_mg_per_L": 0.3},
            lambda cu: 1.0 + 40.0 * cu / (0.3 + cu),
        ),
        (
            "sigmoid_emax",
            {"e0": 1.0, "emax": 40.0, "ec50_mg_per_L": 0.3, "hill": 2.7},
            lambda cu: 1.0 + 40.0 * cu**2.7 / (0.3**2.7 + cu**2.7),
        ),
    ],
)
def test_direct_effect_of_unbound_concentration(kind, extra, formula):
    res = simulate(
        PKModel(1), {**PK, **extra}, build_event_table("100 mg IV once", N), T, pd=PDModel(kind)
    )
    np.testing.assert_allclose(res.conc_mg_per_L, conc_bolus(), rtol=1e-10)
    np.testing.assert_allclose(res.effect, formula(FU[:, None] * conc_bolus()), rtol=1e-10)


def test_effect_compartment_closed_form():
    ke0 = np.array([0.5, 2.0, 0.05])
    k = CL / V
    p = {**PK, "ke0_per_h": ke0, "e0": 2.0, "slope_L_per_mg": 3.0}
    res = simulate(
        PKModel(1),
        p,
        build_event_table("100 mg IV once", N),
        T,
        pd=PDModel("linear", effect_compartment=True),
        return_states=True,
    )
    ce = (
        100.0
        / V[:, None]
        * (ke0 / (ke0 - k))[:, None]
        * (np.exp(-k[:, None] * T) - np.exp(-ke0[:, None] * T))
    )
    np.testing.assert_allclose(res.states["ce_mg_per_L"], ce, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(res.effect, 2.0 + 3.0 * FU[:, None] * ce, rtol=1e-10)


IRM = {"kin_per_h": np.array([10.0, 4.0, 1.0]), "kout_per_h": np.array([0.2, 0.5, 0.1])}


@pytest.mark.parametrize("kind", ["irm1", "irm2", "irm3", "irm4"])
def test_indirect_response_baseline_without_drug(kind):
    mag = (
        {"imax": 0.8, "ic50_mg_per_L": 0.5}
        if kind in ("irm1", "irm2")
        else {"smax": 2.0, "sc50_mg_per_L": 0.5}
    )
    res = simulate(
        PKModel(1),
        {**PK, **IRM, **mag},
        build_event_table("0 mg IV q12h x3", N),
        T,
        pd=PDModel(kind),
    )
    np.testing.assert_allclose(
        res.effect,
        np.broadcast_to((IRM["kin_per_h"] / IRM["kout_per_h"])[:, None], res.effect.shape),
        rtol=1e-14,
    )


@pytest.mark.parametrize("kind", ["irm1", "irm2", "irm3", "irm4"])
def test_indirect_response_steady_state_under_constant_infusion(kind):
    """A 10000-h infusion: after 4000 h C = Css and R = R_ss (slowest rate 0.01 /h: e^{-40})."""
    rate = 10.0
    css = rate / CL
    hill = 1.7
    t = np.array([0.0, 4000.0, 4500.0])
    if kind in ("irm1", "irm2"):
        mag = {"imax": np.array([0.8, 0.5, 0.9]), "ic50_mg_per_L": np.array([0.5, 3.0, 0.02])}
        c50, emag = mag["ic50_mg_per_L"], mag["imax"]
    else:
        mag = {"smax": np.array([2.0, 0.5, 7.0]), "sc50_mg_per_L": np.array([0.5, 3.0, 0.02])}
        c50, emag = mag["sc50_mg_per_L"], mag["smax"]
    cu = FU * css
    f = emag * cu**hill / (c50**hill + cu**hill)
    kin, kout = IRM["kin_per_h"], IRM["kout_per_h"]
    r_ss = {
        "irm1": kin * (1 - f) / kout,
        "irm2": kin / (kout * (1 - f)),
        "irm3": kin * (1 + f) / kout,
        "irm4": kin / (kout * (1 + f)),
    }[kind]
    ev = build_event_table(f"{rate * 10000} mg IV over 10000 h once", N)
    res = simulate(PKModel(1), {**PK, **IRM, **mag, "hill": hill}, ev, t, pd=PDModel(kind))
    np.testing.assert_allclose(res.conc_mg_per_L[:, 1:], np.repeat(css[:, None], 2, 1), rtol=1e-12)
    np.testing.assert_allclose(res.effect[:, 1:], np.repeat(r_ss[:, None], 2, 1), rtol=1e-9)


@pytest.mark.parametrize(
    ("kind", "params", "ec"),
    [
        ("irm1", {"kin_per_h": 1.0, "kout_per_h": 1.0, "imax": 1.5, "ic50_mg_per_L": 1.0}, False),
        ("irm1", {"kin_per_h": -1.0, "kout_per_h": 1.0, "imax": 0.5, "ic50_mg_per_L": 1.0}, False),
        ("emax", {"e0": 0.0, "emax": 1.0, "ec50_mg_per_L": 0.0}, False),
        ("emax", {"e0": 0.0, "emax": 1.0, "ec50_mg_per_L": 1.0, "fu": 0.0}, False),
        ("emax", {"e0": 0.0, "emax": 1.0, "ec50_mg_per_L": 1.0, "fu": 1.5}, False),
        ("emax", {"e0": 0.0, "emax": 1.0}, False),  # missing ec50
        ("linear", {"e0": 0.0, "slope_L_per_mg": 1.0}, True),  # missing ke0
    ],
)
def test_pd_parameters_validated(kind, params, ec):
    with pytest.raises(SpecError):
        simulate(
            PKModel(1),
            {"cl_L_per_h": 5.0, "v1_L": 50.0, **params},
            build_event_table("100 mg IV once", 1),
            [0.0, 1.0],
            pd=PDModel(kind, effect_compartment=ec),
        )


def test_pd_model_spec_errors():
    with pytest.raises(SpecError):
        PDModel("hill")
    with pytest.raises(SpecError):
        PDModel("irm1", effect_compartment=True)


def test_effect_compartment_at_steady_state():
    """'ss' with a ke0 link: Ce = sum over all past doses of the single-dose Ce (1 cmt bolus)."""
    ke0 = np.array([0.5, 2.0, 0.05])
    k = CL / V
    tau = 12.0
    t = np.array([0.0, 1.0, 6.0, 11.9])
    p = {**PK, "ke0_per_h": ke0, "e0": 2.0, "slope_L_per_mg": 3.0}
    res = simulate(
        PKModel(1),
        p,
        build_event_table("100 mg IV q12h x1 ss", N),
        t,
        pd=PDModel("linear", effect_compartment=True),
        return_states=True,
    )
    doses = -tau * np.arange(0, 2000)
    ce = sum(
        100.0
        / V[:, None]
        * (ke0 / (ke0 - k))[:, None]
        * (np.exp(-k[:, None] * (t - d)) - np.exp(-ke0[:, None] * (t - d)))
        for d in doses
    )
    np.testing.assert_allclose(res.states["ce_mg_per_L"], ce, rtol=1e-10)
    np.testing.assert_allclose(res.effect, 2.0 + 3.0 * FU[:, None] * ce, rtol=1e-10)
