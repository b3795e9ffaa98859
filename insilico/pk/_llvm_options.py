"""LLVM options for the compiled kernels (set once per process, before anything compiles).

numba cannot mark array arguments ``noalias``, so LLVM's loop vectorizer must check at run
time that the arrays of a loop do not overlap before it runs the SIMD version. Its default
budget (8 pointer-pair checks) is exhausted by the kernels' loops over patients, which touch
a dozen arrays, and those loops then stay scalar. Raising the budget lets them vectorize:
the checks cost a few comparisons per loop entry, and when they fail the scalar loop runs.
The SIMD and scalar loops perform the same IEEE operations on each patient (no fast-math,
no reassociation), so results are bit-identical whichever runs and whatever the block size.

Why at import, not on the first simulation: numba's on-disk cache is keyed by function,
signature and source, not by LLVM options. A kernel compiled once without these options (say,
a helper called directly before the first simulation) would be cached and reused, scalar, by
every later process. Setting them when the compiled modules are imported makes every compile
that can reach the cache see the same options. They change only how much runtime overlap
checking LLVM's vectorizer may emit, never what a loop computes.

Reference: LLVM ``LoopAccessAnalysis`` options ``runtime-memory-check-threshold`` and
``vectorize-memory-check-threshold`` (llvm/lib/Analysis/LoopAccessAnalysis.cpp).
"""

from __future__ import annotations

import llvmlite.binding as _llvm

#: Pointer-pair checks the vectorizer may emit per loop (LLVM's default: 8).
MEMORY_CHECKS = 1000

_llvm.set_option("insilico", f"-runtime-memory-check-threshold={MEMORY_CHECKS}")
_llvm.set_option("insilico", f"-vectorize-memory-check-threshold={MEMORY_CHECKS}")
