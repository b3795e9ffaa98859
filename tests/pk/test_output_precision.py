"""``simulate(..., output_dtype="float32")``: the time courses are the float64 ones rounded
once to float32, bit for bit; metrics are unchanged; anything else is refused by name."""

from __future__ import annotations

import numpy as np
import pytest
from test_buffers import MODELS, T_OUT, params

from insilico.errors import SpecError
from insilico.pd.models import PDModel
from insilico.pk import OutputBuffers, PKModel, Window, build_event_table, simulate

CASES = {
    **{k: (*v, "100 mg PO q12h x4") for k, v in MODELS.items()},
    "linear_iv_infusion_emax": (PKModel(3), PDModel("emax"), "100 mg IV over 2 h q12h x4"),
    "linear_pk_only": (PKModel(1), PDModel(), "100 mg IV q12h x4"),
}


def extra(n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(9)
    return {
        "q3_L_per_h": 2.0 * np.exp(0.3 * rng.standard_normal(n)),
        "v3_L": 200.0 * np.exp(0.3 * rng.standard_normal(n)),
        "e0": np.full(n, 1.0),
        "emax": np.full(n, 3.0),
        "ec50_mg_per_L": np.full(n, 0.7),
    }


@pytest.mark.parametrize("case", CASES)
def test_float32_time_courses_are_the_float64_ones_rounded(case):
    model, pd_model, regimen = CASES[case]
    n = 6
    p = {**params(4, n), **extra(n)}
    ev = build_event_table(regimen, n)
    windows = [Window(36.0, 48.0, name="last")]
    r64 = simulate(model, p, ev, T_OUT, pd=pd_model, windows=windows)
    r32 = simulate(
        model,
        p,
        ev,
        T_OUT,
        pd=pd_model,
        windows=windows,
        output_dtype="float32",
        buffers=OutputBuffers(),
    )
    assert r32.conc_mg_per_L.dtype == np.float32
    np.testing.assert_array_equal(r32.conc_mg_per_L, r64.conc_mg_per_L.astype(np.float32))
    if pd_model.kind == "none":
        assert r32.effect is None
    else:
        assert r32.effect.dtype == np.float32
        np.testing.assert_array_equal(r32.effect, r64.effect.astype(np.float32))
    assert r32.metrics.keys() == r64.metrics.keys()
    for key, v in r64.metrics.items():
        np.testing.assert_array_equal(r32.metrics[key], v, err_msg=key)
    # and the rounding is real: float32 differs from float64 somewhere, by <= 2^-24 relative
    c64 = r64.conc_mg_per_L
    rel = np.abs(r32.conc_mg_per_L.astype(np.float64) - c64) / np.maximum(np.abs(c64), 1e-300)
    assert 0.0 < rel.max() <= 2.0**-24


def test_numpy_dtypes_are_accepted_and_others_refused_by_name():
    p = params(1, 2)
    ev = build_event_table("100 mg PO q12h x2", 2)
    res = simulate(PKModel(2), p, ev, T_OUT, output_dtype=np.float32)
    assert res.conc_mg_per_L.dtype == np.float32
    for bad in ("float16", "mg", np.int32, None):
        with pytest.raises(SpecError, match="output_dtype.*'float64' or 'float32'"):
            simulate(PKModel(2), p, ev, T_OUT, output_dtype=bad)
