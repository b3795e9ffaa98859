"""Reused time-course memory (``simulate(..., buffers=OutputBuffers())``): results are
bit-identical to fresh memory, memory is reused only once the caller dropped the earlier
result, and a held result is never overwritten."""

from __future__ import annotations

import numpy as np
import pytest

from insilico.pd.models import PDModel
from insilico.pk import OutputBuffers, PKModel, Window, build_event_table, simulate

T_OUT = np.arange(0.0, 49.0, 1.0)
WINDOWS = [Window(36.0, 48.0, name="last")]
MODELS = {
    "linear": (PKModel(2), PDModel("irm1")),
    "michaelis_menten": (PKModel(1, "michaelis_menten"), PDModel("irm3")),
}


def params(seed: int, n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)

    def ln(mu):
        return mu * np.exp(0.3 * rng.standard_normal(n))

    return {
        "cl_L_per_h": ln(5.0),
        "v1_L": ln(50.0),
        "q2_L_per_h": ln(10.0),
        "v2_L": ln(100.0),
        "ka_per_h": ln(1.0),
        "vmax_mg_per_h": ln(15.0),
        "km_mg_per_L": ln(0.8),
        "kin_per_h": ln(10.0),
        "kout_per_h": ln(0.2),
        "imax": np.full(n, 0.9),
        "smax": np.full(n, 2.0),
        "ic50_mg_per_L": ln(0.5),
        "sc50_mg_per_L": ln(0.5),
    }


def run(kind: str, seed: int, n: int, dose_mg: float, buffers=None):
    model, pd_model = MODELS[kind]
    ev = build_event_table(f"{dose_mg} mg PO q12h x4", n)
    return simulate(
        model, params(seed, n), ev, T_OUT, pd=pd_model, windows=WINDOWS, buffers=buffers
    )


def address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


@pytest.mark.parametrize("kind", MODELS)
def test_chunks_reuse_memory_with_identical_results(kind):
    """Three chunks (7, 7, then 3 patients) through one OutputBuffers, each result dropped
    before the next call: the second and third write into the first one's memory, and every
    chunk's time courses and metrics equal those of a call with fresh memory, bit for bit."""
    buf = OutputBuffers()
    first = None
    for i, (seed, n) in enumerate([(1, 7), (2, 7), (3, 3)]):
        fresh = run(kind, seed, n, 100.0)
        res = run(kind, seed, n, 100.0, buf)
        conc_address = address(res.conc_mg_per_L)
        if i == 0:
            first = conc_address
        else:
            assert conc_address == first, f"chunk {i} did not reuse the buffer"
        np.testing.assert_array_equal(res.conc_mg_per_L, fresh.conc_mg_per_L)
        np.testing.assert_array_equal(res.effect, fresh.effect)
        for key, v in fresh.metrics.items():
            np.testing.assert_array_equal(res.metrics[key], v, err_msg=key)
        del res


@pytest.mark.parametrize("kind", MODELS)
def test_held_result_is_never_overwritten(kind):
    """A result still held when the next call runs keeps its values: the next call gets fresh
    memory (a different address) even with the same shape, and a buffer that grows for a
    larger chunk leaves the held result alone too."""
    buf = OutputBuffers()
    held = run(kind, 1, 5, 100.0, buf)
    conc, effect = held.conc_mg_per_L.copy(), held.effect.copy()
    other = run(kind, 2, 5, 300.0, buf)
    bigger = run(kind, 3, 9, 300.0, buf)
    assert address(other.conc_mg_per_L) != address(held.conc_mg_per_L)
    assert address(bigger.conc_mg_per_L) != address(other.conc_mg_per_L)
    np.testing.assert_array_equal(held.conc_mg_per_L, conc)
    np.testing.assert_array_equal(held.effect, effect)
    # and the differences are real: the later calls simulated other patients and doses
    assert np.max(np.abs(other.conc_mg_per_L - conc)) > 1.0


def test_take_grows_and_reuses_a_prefix():
    """A request larger than the buffer replaces it; a smaller one is a C-contiguous view of
    its start."""
    buf = OutputBuffers()
    buf.take("x", (2, 3))
    assert buf.nbytes == 2 * 3 * 8
    b = buf.take("x", (4, 5))
    assert buf.nbytes == 4 * 5 * 8
    grown = address(b)
    del b
    c = buf.take("x", (3, 2))
    assert c.shape == (3, 2) and c.flags.c_contiguous and address(c) == grown
