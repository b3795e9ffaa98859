"""Mass balance and non-negativity: at every output time, drug in all compartments
plus the cumulative eliminated amount equals the dose given so far (bioavailable fraction for
extravascular doses, the infused part of running infusions), rtol 1e-9; concentrations are
never negative, also far in the tail where they underflow towards 0."""

from __future__ import annotations

import numpy as np
import pytest

from insilico.pk.models import PKModel
from insilico.pk.regimen import BOLUS_CENTRAL, BOLUS_DEPOT, INFUSION, build_event_table
from insilico.pk.simulate import simulate

RTOL = 1e-9  # mass balance holds to 1e-9 relative
N = 6
REGIMENS = {
    "bolus": "100 mg IV q12h x5",
    "infusion": "100 mg IV over 2.5 h q12h x5",
    "long_infusion": "100 mg IV over 20 h q12h x5",
    "oral": "100 mg PO q12h x5",
    "loading": "300 mg PO once then 100 mg PO q8h x6",
}
T_OUT = np.concatenate([np.linspace(0.0, 72.0, 289), [72.3, 100.0, 150.0]])
try:  # the Michaelis-Menten tests need insilico.pk.nonlinear: skipped if it does not import
    import insilico.pk.nonlinear  # noqa: F401

    HAS_NONLINEAR = True
except ImportError:
    HAS_NONLINEAR = False


def random_params(seed, n_cmt, elimination="linear"):
    rng = np.random.default_rng(seed)

    def ln(mu):
        return mu * np.exp(0.4 * rng.standard_normal(N))

    p = {
        "v1_L": ln(40.0),
        "ka_per_h": ln(1.2),
        "f_bio": rng.uniform(0.3, 1.0, N),
        "tlag_h": np.full(N, 0.35),
    }
    if elimination != "michaelis_menten":
        p["cl_L_per_h"] = ln(4.0)
    if "michaelis_menten" in elimination:
        p["vmax_mg_per_h"] = ln(15.0)
        p["km_mg_per_L"] = ln(0.8)
    if n_cmt >= 2:
        p.update(q2_L_per_h=ln(8.0), v2_L=ln(90.0))
    if n_cmt == 3:
        p.update(q3_L_per_h=ln(1.5), v3_L=ln(250.0))
    return p


def dose_given(events, params, t):
    """Amount that has entered the body (depot included) by each time, shape (n, n_t)."""
    f = np.asarray(params.get("f_bio", 1.0)) * np.ones(events.n_patients)
    lag = np.asarray(params.get("tlag_h", 0.0)) * np.ones(events.n_patients)
    out = np.zeros((events.n_patients, t.size))
    for e in range(events.time_h.size):
        te, kind, amt = events.time_h[e], events.kind[e], events.amount_mg[:, e][:, None]
        if kind == BOLUS_CENTRAL:
            out += amt * (t[None, :] >= te)
        elif kind == BOLUS_DEPOT:
            out += amt * f[:, None] * (t[None, :] >= te + lag[:, None])
        elif kind == INFUSION:
            dur = events.duration_h[e]
            out += amt * np.clip((t[None, :] - te) / dur, 0.0, 1.0)
    return out


def check_balance(res, events, params):
    body = sum(v for k, v in res.states.items() if k.endswith("_mg") and k != "eliminated_mg")
    total = body + res.states["eliminated_mg"]
    given = dose_given(events, params, res.time_h)
    np.testing.assert_allclose(total, given, rtol=RTOL, atol=1e-12)
    for k, v in res.states.items():
        assert np.all(v >= 0.0), f"negative amount in {k}"
    assert np.all(res.conc_mg_per_L >= 0.0)


@pytest.mark.parametrize("route", list(REGIMENS))
@pytest.mark.parametrize("n_cmt", [1, 2, 3])
def test_mass_balance_linear(n_cmt, route):
    params = random_params(n_cmt * 7 + len(route), n_cmt)
    events = build_event_table(REGIMENS[route], N)
    res = simulate(PKModel(n_cmt), params, events, T_OUT, return_states=True)
    expected = {"central_mg", "eliminated_mg"} | (
        {"depot_mg"} if "PO" in REGIMENS[route] else set()
    )
    expected |= {"periph2_mg"} if n_cmt >= 2 else set()
    expected |= {"periph3_mg"} if n_cmt == 3 else set()
    assert set(res.states) >= expected
    check_balance(res, events, params)


@pytest.mark.parametrize("n_cmt", [1, 3])
def test_mass_balance_per_patient_lag(n_cmt):
    """Different lag times per patient (absorption starts between grid nodes)."""
    params = random_params(99 + n_cmt, n_cmt)
    params["tlag_h"] = np.random.default_rng(5).uniform(0.05, 13.0, N)
    events = build_event_table(REGIMENS["oral"], N)
    res = simulate(PKModel(n_cmt), params, events, T_OUT, return_states=True)
    check_balance(res, events, params)


@pytest.mark.skipif(not HAS_NONLINEAR, reason="insilico.pk.nonlinear not importable yet")
@pytest.mark.parametrize("elimination", ["michaelis_menten", "linear+michaelis_menten"])
@pytest.mark.parametrize(("n_cmt", "route"), [(1, "bolus"), (2, "oral"), (3, "long_infusion")])
def test_mass_balance_michaelis_menten(elimination, n_cmt, route):
    params = random_params(3 * n_cmt + len(elimination), n_cmt, elimination)
    events = build_event_table(REGIMENS[route], N)
    res = simulate(PKModel(n_cmt, elimination), params, events, T_OUT, return_states=True)
    check_balance(res, events, params)


@pytest.mark.parametrize("n_cmt", [1, 2, 3])
@pytest.mark.parametrize("route", ["bolus", "oral"])
def test_concentrations_never_negative_in_the_far_tail(n_cmt, route):
    """Out to 3000 h (C ~ 1e-100 and below): no negative value from cancellation."""
    params = random_params(1000 + n_cmt, n_cmt)
    events = build_event_table(REGIMENS[route], N)
    t = np.concatenate([np.linspace(0, 100, 201), np.geomspace(101, 3000, 200)])
    res = simulate(PKModel(n_cmt), params, events, t, return_states=True)
    assert np.all(res.conc_mg_per_L >= 0.0)
    for k, v in res.states.items():
        assert np.all(v >= 0.0), f"negative amount in {k}"
    assert np.all(np.isfinite(res.conc_mg_per_L))
