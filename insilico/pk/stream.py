"""Row stores that bypass the cache (non-temporal stores) for time courses too large to stay
in it.

The linear kernel writes a block's values at every output time into one row of the
``(n_out, n)`` output arrays. For hourly concentration and response over 28 days in chunks of
10,000 patients these are two 54 MB arrays: larger than this machine's 32 MB L3, so an
ordinary store first reads the cache line it writes into ("read for ownership") and later
writes it back, twice the traffic of the data itself. A non-temporal store writes whole lines
through the processor's write-combining buffers without reading them. Measured on this
project's VM (673 rows of 10,000 float64 written in blocks of 1,000, as the kernel does):
0.87-0.96 µs per patient per array with ordinary stores, 0.45-0.53 with non-temporal ones.

numba has no non-temporal store, so :func:`_nt_store` emits one with llvmlite: a 32-byte
vector (4 float64 or 8 float32) with LLVM's ``!nontemporal`` metadata, which x86-64 compiles to
``vmovntpd`` / ``vmovntps``. Those need 32-byte aligned addresses: :func:`store_row` writes
the unaligned head and the tail of a row with ordinary stores. The stored values are the
same either way (float32 rows: each float64 rounded once, as an ordinary store rounds it),
so results do not depend on which stores ran. Non-temporal stores are weakly ordered:
:func:`store_fence` (``sfence``) must run before another thread may read the rows; the kernel
calls it before it returns.

Rows that fit in the cache are better written with ordinary stores (the caller reads them back
from cache): the kernel streams only when its output arrays together exceed
:data:`STREAM_MIN_BYTES`.
"""

from __future__ import annotations

import numba as nb
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

#: Output arrays (together) at least this large are written with non-temporal stores: half of
#: this machine's 32 MB L3 (smaller ones may still be in cache when the caller reads them).
STREAM_MIN_BYTES = 16 * 2**20

#: Bytes of one non-temporal vector store (AVX: ``vmovntpd`` / ``vmovntps``).
VECTOR_BYTES = 32


@intrinsic
def _nt_store(typingctx, row, i, src, j):
    """``row[i : i + w] = src[j : j + w]`` as one non-temporal 32-byte vector store, ``w`` =
    32 / itemsize of ``row`` (float32 or float64); ``src`` is float64 (converted by rounding,
    like an ordinary store). ``&row[i]`` must be 32-byte aligned; no bounds checks."""
    floats = (types.float64, types.float32)
    if not (isinstance(row, types.Array) and row.ndim == 1 and row.dtype in floats):
        return None
    if not (isinstance(src, types.Array) and src.ndim == 1 and src.dtype == types.float64):
        return None
    sig = types.void(row, i, src, j)

    def codegen(context, builder, signature, args):
        rowty, _, srcty, _ = signature.args
        row_arr = context.make_array(rowty)(context, builder, args[0])
        src_arr = context.make_array(srcty)(context, builder, args[2])
        item = cgutils.get_item_pointer
        dst = item(context, builder, rowty, row_arr, [args[1]], wraparound=False)
        ptr = item(context, builder, srcty, src_arr, [args[3]], wraparound=False)
        f64 = ir.DoubleType()
        elem = context.get_data_type(rowty.dtype)
        w = VECTOR_BYTES // (8 if rowty.dtype == types.float64 else 4)
        vec = builder.load(builder.bitcast(ptr, ir.VectorType(f64, w).as_pointer()), align=8)
        if rowty.dtype != types.float64:
            vec = builder.fptrunc(vec, ir.VectorType(elem, w))
        dst_vec = builder.bitcast(dst, ir.VectorType(elem, w).as_pointer())
        store = builder.store(vec, dst_vec, align=VECTOR_BYTES)
        one = builder.module.add_metadata([ir.Constant(ir.IntType(32), 1)])
        store.set_metadata("nontemporal", one)
        return context.get_dummy_value()

    return sig, codegen


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


@nb.njit(cache=True, boundscheck=False)
def store_row(row, b0, src, n, stream):
    """``row[b0 : b0 + n] = src[:n]``: non-temporal stores when ``stream`` is true and ``row``
    is contiguous (ordinary ones for the unaligned head and the tail), else ordinary stores."""
    size = row.itemsize
    if not stream or row.strides[0] != size:
        for j in range(n):
            row[b0 + j] = src[j]
        return
    w = VECTOR_BYTES // size
    j = 0
    addr = row.ctypes.data + size * b0
    while j < n and (addr + size * j) % VECTOR_BYTES != 0:
        row[b0 + j] = src[j]
        j += 1
    while j + w <= n:
        _nt_store(row, b0 + j, src, j)
        j += w
    while j < n:
        row[b0 + j] = src[j]
        j += 1
