"""Output stores (:mod:`insilico.pk.stream`): the rows they write into float64 or float32 arrays
given as bytes equal those of ordinary assignments into the arrays, bit for bit, for every
alignment, length and dtype, with and without non-temporal stores; the compiled streaming
store is a non-temporal vector instruction; and a simulation large enough to stream gives the
same time courses as the same patients simulated in chunks too small to stream."""

from __future__ import annotations

import math

import numba as nb
import numpy as np
import pytest
from test_buffers import params

from insilico.pd.models import PDModel
from insilico.pk import PKModel, Window, build_event_table, simulate
from insilico.pk.stream import STREAM_MIN_BYTES, as_bytes, store_fence, store_row, store_value


@nb.njit
def _write_rows(out_bytes, f32, src, stream, block):
    """Rows of ``out_bytes`` written block by block from ``src`` (as the kernel writes its
    outputs), ``src`` changed between rows."""
    n_rows = out_bytes.shape[0]
    n = out_bytes.shape[1] // (4 if f32 else 8)
    for b0 in range(0, n, block):
        nb_ = min(block, n - b0)
        for o in range(n_rows):
            for j in range(nb_):
                src[j] = src[j] * 1.25 + o
            store_row(out_bytes[o], b0, src, nb_, stream, f32)
    store_fence()


@nb.njit
def _assign_rows(out, src, block):
    """The same values by ordinary assignment into the typed array (float32: numba rounds
    each once)."""
    n_rows, n = out.shape
    for b0 in range(0, n, block):
        nb_ = min(block, n - b0)
        for o in range(n_rows):
            for j in range(nb_):
                src[j] = src[j] * 1.25 + o
                out[o, b0 + j] = src[j]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("block", [1, 3, 4, 7, 64, 997])
@pytest.mark.parametrize("offset", [0, 1, 3])
@pytest.mark.parametrize("stream", [True, False])
def test_rows_equal_ordinary_assignment(dtype, block, offset, stream):
    """Rows of 1,003 values starting ``offset`` elements into an allocation (so neither the
    rows nor the blocks are 32-byte aligned), written in blocks of ``block``: the same bits
    as assigning them to the typed array, and nothing outside the rows is touched."""
    rng = np.random.default_rng(block + 10 * offset)
    base = np.full((9, 1003 + offset), -7.0, dtype=dtype)
    ref = np.full((9, 1003), -7.0, dtype=dtype)
    src0 = rng.standard_normal(max(block, 1))
    _write_rows(base[:, offset:].view(np.uint8), dtype == np.float32, src0.copy(), stream, block)
    _assign_rows(ref, src0.copy(), block)
    np.testing.assert_array_equal(base[:, offset:], ref)
    assert np.all(base[:, :offset] == -7.0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_store_value_equals_assignment(dtype):
    """Single values (the Michaelis-Menten kernel's stores), including ones float32 rounds,
    overflows and underflows: the bits of an assignment."""
    values = np.array([1.0, 1.0 + 2.0**-30, 1e39, 1e-46, -0.0, np.pi, np.nan, np.inf])
    out = np.zeros(values.size, dtype=dtype)
    raw, f32 = as_bytes(out), dtype == np.float32

    @nb.njit
    def put(raw, values, f32):
        for i in range(values.shape[0]):
            store_value(raw, i, values[i], f32)

    put(raw, values, f32)
    with np.errstate(over="ignore"):  # 1e39 overflows float32 to inf, as the kernel's store
        expected = values.astype(dtype)
    np.testing.assert_array_equal(out.view(np.uint8), expected.view(np.uint8))


def test_as_bytes_refuses_what_the_kernels_cannot_write():
    """A strided or non-float array is refused with the dtype in the message (the kernels
    write contiguous rows of float64 or float32)."""
    with pytest.raises(ValueError, match="strided float64"):
        as_bytes(np.zeros((4, 6))[:, ::2])
    with pytest.raises(ValueError, match="int64"):
        as_bytes(np.zeros(3, dtype=np.int64))


def test_streaming_compiles_to_non_temporal_stores():
    """The streamed path is a non-temporal store instruction (``movntpd``/``movntps``, AVX
    ``vmovnt...``), one for float64 rows and one for float32 rows, not an ordinary one:
    without the ``!nontemporal`` metadata the row would be read into the cache before it is
    written, which is the traffic the module avoids."""
    sig = (nb.uint8[::1], nb.int64, nb.float64[::1], nb.int64, nb.boolean, nb.boolean)
    uncached = nb.njit(store_row.py_func)  # machine code of a disk-cached function is not kept
    uncached.compile(sig)
    asm = uncached.inspect_asm(sig)
    assert sum("movnt" in line for line in asm.splitlines()) >= 2


T_OUT = np.arange(0.0, 28 * 24 + 0.5, 1.0)
CASES = {
    "oral_irm1": (PKModel(2), PDModel("irm1")),
    "oral_emax": (PKModel(2), PDModel("emax")),
    "oral_pk_only": (PKModel(2), PDModel("none")),
}


def _params(n: int) -> dict[str, np.ndarray]:
    """``test_buffers.params`` (30 % log-normal IIV) with the direct Emax model's too."""
    p = params(7, n)
    p.update(e0=np.ones(n), emax=2.0 * p["kin_per_h"] / 10.0, ec50_mg_per_L=p["ic50_mg_per_L"])
    return p


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
