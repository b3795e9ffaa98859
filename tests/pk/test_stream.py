"""Non-temporal output stores (:mod:`insilico.pk.stream`): the rows they write equal those of
ordinary stores, bit for bit, for every alignment, length and dtype; the compiled store is a
non-temporal vector instruction; and a simulation large enough to stream gives the same time
courses as the same patients simulated in chunks too small to stream."""

from __future__ import annotations

import math

import numba as nb
import numpy as np
import pytest

from insilico.pd.models import PDModel
from insilico.pk import PKModel, Window, build_event_table, simulate
from insilico.pk.stream import STREAM_MIN_BYTES, store_fence, store_row


@nb.njit
def _write_rows(out, src, stream, block):
    """Rows of ``out`` written block by block from ``src`` (as the kernel writes its outputs),
    ``src`` changed between rows."""
    n_rows, n = out.shape
    for b0 in range(0, n, block):
        nb_ = min(block, n - b0)
        for o in range(n_rows):
            for j in range(nb_):
                src[j] = src[j] * 1.25 + o
            store_row(out[o], b0, src, nb_, stream)
    store_fence()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("block", [1, 3, 4, 7, 64, 997])
@pytest.mark.parametrize("offset", [0, 1, 3])
def test_streamed_rows_equal_ordinary_stores(dtype, block, offset):
    """Rows of 1,003 values starting ``offset`` elements into an allocation (so neither the
    rows nor the blocks are 32-byte aligned), written in blocks of ``block``: the same bits
    as ordinary stores (float32: each value rounded once), and nothing outside the rows is
    touched."""
    rng = np.random.default_rng(block + 10 * offset)
    base = np.full((9, 1003 + offset), -7.0, dtype=dtype)
    out = base[:, offset:]
    ref = np.full((9, 1003), -7.0, dtype=dtype)
    src0 = rng.standard_normal(max(block, 1))
    _write_rows(out, src0.copy(), True, block)
    _write_rows(ref, src0.copy(), False, block)
    np.testing.assert_array_equal(out, ref)
    assert np.all(base[:, :offset] == -7.0)


def test_strided_rows_fall_back_to_ordinary_stores():
    """A row whose elements are not contiguous (a view with a step) is written element by
    element: every second value changes, the others stay."""
    base = np.zeros((5, 2 * 101))
    _write_rows(base[:, ::2], np.ones(101), True, 101)
    ref = np.zeros((5, 101))
    _write_rows(ref, np.ones(101), False, 101)
    np.testing.assert_array_equal(base[:, ::2], ref)
    assert np.all(base[:, 1::2] == 0.0)


@pytest.mark.parametrize("dtype", [nb.float64, nb.float32])
def test_streaming_compiles_to_non_temporal_stores(dtype):
    """The streamed path is a non-temporal store instruction (``movntpd``/``movntps``, AVX
    ``vmovnt...``), not an ordinary one: without the ``!nontemporal`` metadata the row would be
    read into the cache before it is written, which is the traffic the module avoids."""
    sig = (dtype[::1], nb.int64, nb.float64[::1], nb.int64, nb.boolean)
    uncached = nb.njit(store_row.py_func)  # machine code of a disk-cached function is not kept
    uncached.compile(sig)
    asm = uncached.inspect_asm(sig)
    assert "movntp" in asm


T_OUT = np.arange(0.0, 28 * 24 + 0.5, 1.0)
CASES = {
    "oral_irm1": (PKModel(2), PDModel("irm1")),
    "oral_emax": (PKModel(2), PDModel("emax")),
    "oral_pk_only": (PKModel(2), PDModel("none")),
}


def _params(n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)

    def ln(mu):
        return mu * np.exp(0.3 * rng.standard_normal(n))

    return {
        "cl_L_per_h": ln(5.0),
        "v1_L": ln(50.0),
        "q2_L_per_h": ln(10.0),
        "v2_L": ln(100.0),
        "ka_per_h": ln(1.0),
        "kin_per_h": ln(10.0),
        "kout_per_h": ln(0.1),
        "imax": np.full(n, 0.9),
        "e0": np.full(n, 1.0),
        "emax": ln(2.0),
        "ec50_mg_per_L": ln(0.5),
        "ic50_mg_per_L": ln(0.5),
    }


@pytest.mark.parametrize("case", CASES)
def test_streamed_simulation_equals_chunks_below_the_threshold(case):
    """28 days of hourly output for enough patients that the two output arrays exceed
    ``STREAM_MIN_BYTES`` (so the kernel streams) against the same patients in chunks whose
    arrays stay below it (ordinary stores): identical time courses and metrics, bit for bit."""
    model, pd_model = CASES[case]
    n_arrays = 1 if pd_model.kind == "none" else 2
    n = math.ceil(STREAM_MIN_BYTES / (n_arrays * 8 * T_OUT.size)) + 37
    chunk = n // 4
    assert n_arrays * 8 * T_OUT.size * chunk < STREAM_MIN_BYTES
    p = _params(n)
    windows = [Window(660.0, 672.0, name="last")]

    def run(sl: slice):
        part = {k: v[sl] for k, v in p.items()}
        m = part["cl_L_per_h"].shape[0]
        ev = build_event_table("100 mg PO q12h x56", m)
        return simulate(model, part, ev, T_OUT, pd=pd_model, windows=windows)

    whole = run(slice(None))
    for a in range(0, n, chunk):
        part = run(slice(a, a + chunk))
        np.testing.assert_array_equal(whole.conc_mg_per_L[a : a + chunk], part.conc_mg_per_L)
        if pd_model.kind != "none":
            np.testing.assert_array_equal(whole.effect[a : a + chunk], part.effect)
        for k, v in part.metrics.items():
            np.testing.assert_array_equal(whole.metrics[k][a : a + chunk], v)
    assert np.all(np.isfinite(whole.conc_mg_per_L)) and whole.conc_mg_per_L.max() > 0.1
