"""Hypothesis properties of the simulation core: dose linearity of linear PK;
results invariant (bit-identical) to the order of patients and to the ``block`` argument."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from insilico.errors import SpecError
from insilico.pd.models import PDModel
from insilico.pk.models import PKModel
from insilico.pk.regimen import build_event_table
from insilico.pk.simulate import METRIC_UNITS, Window, simulate

SETTINGS = settings(deadline=None, max_examples=15, derandomize=True)
T_OUT = np.linspace(0.0, 48.0, 49)
WINDOWS = [Window(36.0, 48.0, 0.5, "last"), Window(0.0, 48.0, 0.3, "all")]
REGIMENS = [
    "100 mg IV q12h x4",
    "100 mg IV over 1.5 h q12h x4",
    "100 mg IV over 20 h q12h x4",
    "100 mg PO q12h x4",
    "200 mg PO once then 100 mg PO q12h x3",
]


def make_params(seed: int, n: int, n_cmt: int, lag: str):
    rng = np.random.default_rng(seed)

    def ln(mu):
        return mu * np.exp(0.35 * rng.standard_normal(n))

    p = {
        "cl_L_per_h": ln(5.0),
        "v1_L": ln(50.0),
        "ka_per_h": ln(1.0),
        "f_bio": rng.uniform(0.4, 1.0, n),
        "q2_L_per_h": ln(10.0),
        "v2_L": ln(100.0),
        "q3_L_per_h": ln(2.0),
        "v3_L": ln(200.0),
        "kin_per_h": ln(10.0),
        "kout_per_h": ln(0.2),
        "imax": rng.uniform(0.3, 0.9, n),
        "ic50_mg_per_L": ln(0.5),
    }
    if lag == "common":
        p["tlag_h"] = np.full(n, 0.6)
    elif lag == "per_patient":
        p["tlag_h"] = rng.uniform(0.0, 2.0, n)
    if n_cmt < 3:
        del p["q3_L_per_h"], p["v3_L"]
    if n_cmt < 2:
        del p["q2_L_per_h"], p["v2_L"]
    return p


cases = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**31 - 1),
        "n": st.integers(1, 9),
        "n_cmt": st.sampled_from([1, 2, 3]),
        "regimen": st.sampled_from(REGIMENS),
        "lag": st.sampled_from(["none", "common", "per_patient"]),
    }
)


@SETTINGS
@given(case=cases, factor=st.floats(1e-3, 1e3))
def test_dose_linearity(case, factor):
    """Linear PK: scaling every dose by ``factor`` scales C, Cmax, Cmin, AUC by ``factor`` and
    leaves Tmax unchanged (rtol 1e-10)."""
    p = make_params(case["seed"], case["n"], case["n_cmt"], case["lag"])
    ev = build_event_table(case["regimen"], case["n"])
    base = simulate(PKModel(case["n_cmt"]), p, ev, T_OUT, windows=WINDOWS[:1])
    scaled = simulate(
        PKModel(case["n_cmt"]), p, ev.with_amount_factor(factor), T_OUT, windows=WINDOWS[:1]
    )
    np.testing.assert_allclose(
        scaled.conc_mg_per_L, factor * base.conc_mg_per_L, rtol=1e-10, atol=1e-300
    )
    for name in ("cmax_mg_per_L_last", "cmin_mg_per_L_last", "auc_mg_h_per_L_last"):
        np.testing.assert_allclose(scaled.metrics[name], factor * base.metrics[name], rtol=1e-10)
    np.testing.assert_allclose(
        scaled.metrics["tmax_h_last"], base.metrics["tmax_h_last"], rtol=1e-8
    )


def _patients(p, ev, i):
    """Parameters and event table of patients ``i`` (an index array or a slice)."""
    return {k: v[i] for k, v in p.items()}, ev.take(i)


def _all_arrays(res):
    out = {"conc": res.conc_mg_per_L}
    if res.effect is not None:
        out["effect"] = res.effect
    out.update({f"m:{k}": v for k, v in res.metrics.items()})
    out.update({f"s:{k}": v for k, v in res.states.items()})
    return out


@SETTINGS
@given(case=cases, data=st.data())
def test_patient_order_invariance(case, data):
    """Permuting patients permutes the results, bit for bit (PK, PD, metrics, states)."""
    n = case["n"]
    perm = np.array(data.draw(st.permutations(range(n))), dtype=int)
    p = make_params(case["seed"], n, case["n_cmt"], case["lag"])
    ev = build_event_table(case["regimen"], n)
    ev = ev.with_amount_factor(np.random.default_rng(case["seed"]).uniform(0.5, 2.0, (n, 1)))
    kw = {"pd": PDModel("irm1"), "windows": WINDOWS, "return_states": True}
    a = simulate(PKModel(case["n_cmt"]), p, ev, T_OUT, **kw)
    b = simulate(PKModel(case["n_cmt"]), *_patients(p, ev, perm), T_OUT, **kw)
    ra, rb = _all_arrays(a), _all_arrays(b)
    assert ra.keys() == rb.keys()
    for k in ra:
        np.testing.assert_array_equal(rb[k], ra[k][perm], err_msg=k)


@SETTINGS
@given(case=cases, block=st.integers(1, 12))
def test_block_size_invariance(case, block):
    """Results do not depend on the ``block`` argument of simulate, bit for bit."""
    n = case["n"] + 5
    p = make_params(case["seed"], n, case["n_cmt"], case["lag"])
    ev = build_event_table(case["regimen"], n)
    kw = {"pd": PDModel("irm1"), "windows": WINDOWS, "return_states": True}
    a = _all_arrays(simulate(PKModel(case["n_cmt"]), p, ev, T_OUT, block=256, **kw))
    b = _all_arrays(simulate(PKModel(case["n_cmt"]), p, ev, T_OUT, block=block, **kw))
    for k in a:
        np.testing.assert_array_equal(b[k], a[k], err_msg=k)


@pytest.mark.parametrize("pd_kind", ["irm1", "irm2", "irm3", "irm4"])
@pytest.mark.parametrize("regimen", ["100 mg PO q12h x4", "100 mg IV over 1.5 h q12h x4"])
def test_hill_one_patients_do_not_depend_on_their_blocks_other_exponents(pd_kind, regimen):
    """A block whose Hill exponents are all 1 takes a step without powers; one with other
    exponents takes the general step. A patient whose exponent is 1 must get the same bits
    either way: simulated in one block with patients of exponent 1.5 and 0.8 (block 256),
    and each patient alone (block 1). Before the fix the drug-effect fraction was computed
    as ``em c / (c50 + c)`` in one step and ``em (c / (c50 + c))`` in the other: 6e-16 apart
    on the response, which broke bit-for-bit results across chunkings."""
    n = 12
    p = make_params(3, n, 2, "none")
    if pd_kind in ("irm3", "irm4"):
        p.update(smax=p.pop("imax") * 3.0, sc50_mg_per_L=p.pop("ic50_mg_per_L"))
    p["hill"] = np.where(np.arange(n) % 3 == 1, 1.5, np.where(np.arange(n) % 3 == 2, 0.8, 1.0))
    ev = build_event_table(regimen, n)
    kw = {"pd": PDModel(pd_kind), "windows": WINDOWS}
    mixed = _all_arrays(simulate(PKModel(2), p, ev, T_OUT, block=256, **kw))
    alone = _all_arrays(simulate(PKModel(2), p, ev, T_OUT, block=1, **kw))
    assert "effect" in mixed and "m:effect_min_all" in mixed
    for k in mixed:
        np.testing.assert_array_equal(mixed[k], alone[k], err_msg=k)


@SETTINGS
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(2, 9), split=st.integers(1, 8))
def test_splitting_the_cohort(seed, n, split):
    """Simulating the cohort in two calls (as the engine does, one task per block of patients)
    gives the same numbers, bit for bit, as one call (DESIGN: results identical whatever the
    chunk size)."""
    split = min(split, n - 1)
    p = make_params(seed, n, 2, "common")
    ev = build_event_table("100 mg PO q12h x4", n)
    kw = {"pd": PDModel("irm1"), "windows": WINDOWS}
    whole = simulate(PKModel(2), p, ev, T_OUT, **kw)
    idx = [np.arange(split), np.arange(split, n)]
    parts = [simulate(PKModel(2), *_patients(p, ev, i), T_OUT, **kw) for i in idx]
    np.testing.assert_array_equal(
        np.concatenate([r.conc_mg_per_L for r in parts]), whole.conc_mg_per_L
    )
    np.testing.assert_array_equal(np.concatenate([r.effect for r in parts]), whole.effect)


@pytest.mark.parametrize(
    "case",
    ["fast_ka", "distinct_lags", "shared_lag_in_part"],
)
def test_patient_result_does_not_depend_on_the_other_patients(case):
    """A patient's numbers are the same whoever shares the call: one fast-absorbing patient
    (ka 30 /h) or other lag times must not change the grid of the others (bit for bit)."""
    n = 3
    p = {
        "cl_L_per_h": np.full(n, 5.0),
        "v1_L": np.full(n, 50.0),
        "ka_per_h": np.array([1.0, 1.0, 30.0 if case == "fast_ka" else 1.0]),
        "f_bio": np.ones(n),
        "kin_per_h": np.full(n, 10.0),
        "kout_per_h": np.full(n, 0.2),
        "imax": np.full(n, 0.8),
        "ic50_mg_per_L": np.full(n, 0.5),
    }
    if case == "distinct_lags":
        p["tlag_h"] = np.array([0.2, 0.5, 1.9])
    elif case == "shared_lag_in_part":
        p["tlag_h"] = np.array([0.5, 0.5, 1.9])
    ev = build_event_table("100 mg PO q12h x4", n)
    kw = {"pd": PDModel("irm1"), "windows": WINDOWS[:1]}
    whole = simulate(PKModel(1), p, ev, T_OUT, **kw)
    part = simulate(PKModel(1), *_patients(p, ev, slice(0, 2)), T_OUT, **kw)
    np.testing.assert_array_equal(part.conc_mg_per_L, whole.conc_mg_per_L[:2])
    np.testing.assert_array_equal(part.effect, whole.effect[:2])


@SETTINGS
@given(case=cases)
def test_window_metrics_do_not_depend_on_the_other_windows(case):
    """Nested windows that share an extremum have it refined once (``linear_kernel`` reuses
    the first window's refinement): every window's metrics must equal, bit for bit, those of
    the same window requested alone on the same grid (the other windows' bounds given as
    output times, so the nodes are the same)."""
    p = make_params(case["seed"], case["n"], case["n_cmt"], case["lag"])
    ev = build_event_table(case["regimen"], case["n"])
    windows = [*WINDOWS, Window(10.5, 30.0, 0.4, "mid"), Window(24.0, 48.0, name="late")]
    bounds = [t for w in windows for t in (w.start_h, w.end_h)]
    t_out = np.union1d(T_OUT, bounds)
    pd = PDModel("irm1")
    together = simulate(PKModel(case["n_cmt"]), p, ev, t_out, pd=pd, windows=windows)
    for w in windows:
        alone = simulate(PKModel(case["n_cmt"]), p, ev, t_out, pd=pd, windows=[w])
        for key, value in alone.metrics.items():
            np.testing.assert_array_equal(together.metrics[key], value, err_msg=key)


@pytest.mark.parametrize("elimination", ["linear", "linear+michaelis_menten"])
def test_concurrent_threads_give_the_numbers_of_one_call(elimination):
    """The kernels release the GIL (threaded Dask workers, the benchmark's one-process
    million-patient run): 8 blocks of patients simulated on 4 threads at once must give, bit
    for bit, the arrays of one call over all patients. Fails if a kernel shared a buffer
    between calls."""
    from concurrent.futures import ThreadPoolExecutor

    n, parts = 64, 8
    p = make_params(7, n, 2, "common")
    if elimination != "linear":
        p["vmax_mg_per_h"] = np.full(n, 8.0)
        p["km_mg_per_L"] = np.full(n, 0.7)
    ev = build_event_table("100 mg PO q12h x4", n)
    kw = {"pd": PDModel("irm1"), "windows": WINDOWS, "return_states": True}
    model = PKModel(2, elimination)
    whole = _all_arrays(simulate(model, p, ev, T_OUT, **kw))
    idx = np.array_split(np.arange(n), parts)

    def run(i):
        return _all_arrays(simulate(model, *_patients(p, ev, i), T_OUT, **kw))

    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(run, idx))
    for k in whole:
        np.testing.assert_array_equal(np.concatenate([g[k] for g in got]), whole[k], err_msg=k)


SELECTIONS = [("emin",), ("cmax", "cmin", "auc"), ("tmax", "emax", "cavg"), ()]


@SETTINGS
@given(case=cases, pd_kind=st.sampled_from(["irm1", "irm3", "emax_ce", "none"]))
def test_selected_window_metrics_equal_those_of_the_full_window(case, pd_kind):
    """A window that reports only some metrics (and so tracks less at every node) gives
    those metrics bit for bit as the window with every metric, and no others; a full window
    next to it (sharing refinements) keeps its numbers."""
    p = make_params(case["seed"], case["n"], case["n_cmt"], case["lag"])
    pd = PDModel("emax", effect_compartment=True) if pd_kind == "emax_ce" else PDModel(pd_kind)
    if pd.kind == "emax":
        n = case["n"]
        p.update(e0=np.full(n, 10.0), emax=np.full(n, 5.0), ec50_mg_per_L=np.full(n, 0.4))
        p["ke0_per_h"] = np.full(n, 0.7)
    elif pd.kind == "irm3":
        p.update(smax=p.pop("imax") * 3.0, sc50_mg_per_L=p.pop("ic50_mg_per_L"))
    ev = build_event_table(case["regimen"], case["n"])
    model = PKModel(case["n_cmt"])
    full = simulate(model, p, ev, T_OUT, pd=pd, windows=[Window(36.0, 48.0, name="a")])
    whole = simulate(model, p, ev, T_OUT, pd=pd, windows=[Window(0.0, 48.0, name="b")])
    for sel in SELECTIONS:
        w = Window(36.0, 48.0, name="a", metrics=sel)
        both = [w, Window(0.0, 48.0, name="b")]
        got = simulate(model, p, ev, T_OUT, pd=pd, windows=both).metrics
        for k, v in whole.metrics.items():
            np.testing.assert_array_equal(got[k], v, err_msg=f"{sel} {k}")
        expected = {
            k
            for k in full.metrics
            if k.endswith("_a") and any(k.startswith(METRIC_UNITS.get(m, m)) for m in sel)
        }
        assert {k for k in got if k.endswith("_a")} == expected, sel
        for k in expected:
            np.testing.assert_array_equal(got[k], full.metrics[k], err_msg=f"{sel} {k}")


@pytest.mark.parametrize(
    ("kwargs", "value"),
    [
        ({"metrics": ("cmax", "cmaxx")}, "cmaxx"),
        ({"metrics": "cmax"}, "cmax"),
        ({"metrics": ("time_above",)}, "['time_above']"),
        ({"metrics": ("cmax",), "threshold_mg_per_L": 0.5}, "['cmax']"),
    ],
)
def test_bad_window_metrics_are_named(kwargs, value):
    with pytest.raises(SpecError) as err:
        Window(0.0, 12.0, **kwargs)
    assert err.value.field == "window.metrics"
    assert value in str(err.value)
