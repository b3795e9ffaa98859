"""Stores of time-course values into output rows given as bytes: float64 or float32 chosen at
run time (one compiled kernel serves both), with non-temporal stores for rows too large to
stay in the cache.

**One kernel for both output dtypes.** The kernels receive their output arrays as ``uint8``
views (:func:`as_bytes`) and a flag ``f32``; :func:`store_row` and :func:`store_value` write
each value as float64, or round it once to float32 exactly as an assignment into a float32
array would. A float32 array argument would otherwise type a second specialization
of the kernels, one to two and a half minutes more of compiling (at every first float32 call,
and in the test suite).

**Non-temporal stores.** The linear kernel writes a block's values at every output time into
one row of the ``(n_out, n)`` output arrays. For hourly concentration and response over 28
days in chunks of 10,000 patients these are two 54 MB arrays: larger than a 32 MB L3
cache, so an ordinary store first reads the cache line it writes into ("read for ownership") and
later writes it back, twice the traffic of the data itself. A non-temporal store writes whole
lines through the processor's write-combining buffers without reading them. Measured with 673
rows of 10,000 float64 written in blocks of 1,000, as the kernel does:
0.87-1.10 µs per patient per array with ordinary stores, 0.45-0.60 with non-temporal ones.

numba has no non-temporal store, so :func:`_nt_store` emits one with llvmlite: a 32-byte
vector (4 float64 or 8 float32) with LLVM's ``!nontemporal`` metadata, which x86-64 compiles
to ``vmovntpd`` / ``vmovntps``. Those need 32-byte aligned addresses: :func:`store_row` writes
the unaligned head and the tail of a row with ordinary stores. The stored values are the same
either way, so results do not depend on which stores ran. Non-temporal stores are weakly
ordered: :func:`store_fence` must run before another thread may read the rows; the kernel
calls it before it returns.

Rows that fit in the cache are better written with ordinary stores (the caller reads them back
from cache): the kernel streams only when its output arrays together exceed
:data:`STREAM_MIN_BYTES`.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

#: Output arrays (together) at least this large are written with non-temporal stores: half of
#: a 32 MB L3 cache (smaller ones may still be in cache when the caller reads them).
STREAM_MIN_BYTES = 16 * 2**20

#: Bytes of one non-temporal vector store (AVX: ``vmovntpd`` / ``vmovntps``).
VECTOR_BYTES = 32


def as_bytes(a: np.ndarray) -> np.ndarray:
    """A C-contiguous float64 or float32 array of at least one dimension as the ``uint8``
    view the kernels write (last axis in bytes; they are told the dtype by a flag)."""
    if a.dtype not in (np.float64, np.float32) or not a.flags.c_contiguous:
        layout = "C-contiguous" if a.flags.c_contiguous else "strided"
        raise ValueError(
            f"output arrays must be C-contiguous float64 or float32, not {layout} {a.dtype}"
        )
    return a.view(np.uint8)


def _byte_pointer(context, builder, aryty, ary_val, byte_index):
    """LLVM pointer to byte ``byte_index`` of a contiguous 1-D uint8 array."""
    ary = context.make_array(aryty)(context, builder, ary_val)
    return cgutils.get_item_pointer(context, builder, aryty, ary, [byte_index], wraparound=False)


def _is_bytes(row) -> bool:
    return isinstance(row, types.Array) and row.ndim == 1 and row.dtype == types.uint8


def _store_codegen(single: bool):
    def codegen(context, builder, signature, args):
        ptr = _byte_pointer(context, builder, signature.args[0], args[0], args[1])
        val = args[2]
        elem = ir.FloatType() if single else ir.DoubleType()
        if single:
            val = builder.fptrunc(val, elem)
        builder.store(val, builder.bitcast(ptr, elem.as_pointer()), align=4 if single else 8)
        return context.get_dummy_value()

    return codegen


@intrinsic
def _store64(typingctx, row, byte_index, value):
    """Store ``value`` at byte ``byte_index`` of ``row`` as float64; no bounds checks."""
    if not _is_bytes(row):
        return None
    return types.void(row, byte_index, value), _store_codegen(False)


@intrinsic
def _store32(typingctx, row, byte_index, value):
    """Store ``value`` (float64) at byte ``byte_index`` of ``row`` as float32, rounded once
    (what assigning it to a float32 array element does); no bounds checks."""
    if not _is_bytes(row):
        return None
    return types.void(row, byte_index, value), _store_codegen(True)


def _nt_codegen(single: bool):
    def codegen(context, builder, signature, args):
        dst = _byte_pointer(context, builder, signature.args[0], args[0], args[1])
        srcty = signature.args[2]
        src_arr = context.make_array(srcty)(context, builder, args[2])
        item = cgutils.get_item_pointer
        ptr = item(context, builder, srcty, src_arr, [args[3]], wraparound=False)
        elem = ir.FloatType() if single else ir.DoubleType()
        w = VECTOR_BYTES // (4 if single else 8)
        src_vec = builder.bitcast(ptr, ir.VectorType(ir.DoubleType(), w).as_pointer())
        vec = builder.load(src_vec, align=8)
        if single:
            vec = builder.fptrunc(vec, ir.VectorType(elem, w))
        dst_vec = builder.bitcast(dst, ir.VectorType(elem, w).as_pointer())
        store = builder.store(vec, dst_vec, align=VECTOR_BYTES)
        one = builder.module.add_metadata([ir.Constant(ir.IntType(32), 1)])
        store.set_metadata("nontemporal", one)
        return context.get_dummy_value()

    return codegen


def _nt_typing(row, src):
    return _is_bytes(row) and (
        isinstance(src, types.Array) and src.ndim == 1 and src.dtype == types.float64
    )


@intrinsic
def _nt_store64(typingctx, row, byte_index, src, j):
    """``src[j : j + 4]`` stored at byte ``byte_index`` of ``row`` as one non-temporal
    32-byte vector of float64. The address must be 32-byte aligned; no bounds checks."""
    if not _nt_typing(row, src):
        return None
    return types.void(row, byte_index, src, j), _nt_codegen(False)


@intrinsic
def _nt_store32(typingctx, row, byte_index, src, j):
    """``src[j : j + 8]`` (float64) stored at byte ``byte_index`` of ``row`` as one
    non-temporal 32-byte vector of float32, each rounded once. The address must be 32-byte
    aligned; no bounds checks."""
    if not _nt_typing(row, src):
        return None
    return types.void(row, byte_index, src, j), _nt_codegen(True)


@intrinsic
def _fence(typingctx):
    sig = types.void()

    def codegen(context, builder, signature, args):
        builder.fence("seq_cst")
        return context.get_dummy_value()

    return sig, codegen


@nb.njit(cache=True)
def store_fence():
    """Order every earlier store, non-temporal ones included, before any later one (a full
    fence: ``mfence`` on x86-64, which also orders non-temporal stores)."""
    _fence()


@nb.njit(cache=True, inline="always")
def store_value(row, i, value, f32):
    """Element ``i`` of a float64 (``f32`` false) or float32 row given as bytes ``= value``
    (float32: rounded once)."""
    if f32:
        _store32(row, 4 * i, value)
    else:
        _store64(row, 8 * i, value)


@nb.njit(cache=True, inline="always")
def _nt_vector(row, i, src, j, f32):
    """Elements ``i ..`` of the row ``= src[j ..]``, one non-temporal 32-byte vector (8
    float32 or 4 float64); element ``i`` must be 32-byte aligned."""
    if f32:
        _nt_store32(row, 4 * i, src, j)
    else:
        _nt_store64(row, 8 * i, src, j)


@nb.njit(cache=True, boundscheck=False)
def store_row(row, b0, src, n, stream, f32):
    """Elements ``b0 .. b0 + n - 1`` of a float64 (``f32`` false) or float32 row given as
    contiguous bytes ``= src[:n]`` (float32: each value rounded once): non-temporal stores
    when ``stream`` (ordinary ones for the unaligned head and the tail), else ordinary."""
    size = 4 if f32 else 8
    j = 0
    if stream:
        w = VECTOR_BYTES // size
        addr = row.ctypes.data + size * b0
        while j < n and (addr + size * j) % VECTOR_BYTES != 0:
            store_value(row, b0 + j, src[j], f32)
            j += 1
        while j + w <= n:
            _nt_vector(row, b0 + j, src, j, f32)
            j += w
    for jj in range(j, n):
        store_value(row, b0 + jj, src[jj], f32)
