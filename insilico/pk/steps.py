"""The fused per-step kernels at run time: their signature and the step of a layout.

The step functions themselves are generated into :mod:`insilico.pk._fused_generated` by
:mod:`insilico.pk.fused` (which documents what they compute); this module is what the
simulation imports, so that ``python -m insilico.pk.fused`` runs without importing itself.
"""

from __future__ import annotations

import numba as nb

#: Arguments of every step function, in order.
ARGS = (
    "phk, phm, pha, phb, x, xn, rate, irm, lob, hill_one, R, fnode, rnew, fcur, "
    "f_prev, sel, etd, k, emb, c50a, kinb, koutb, kae, hill, ap, al, cbuf, dauc, change"
)

_ARR1 = nb.types.float64[::1]
_ARR2 = nb.types.float64[:, ::1]
_ARR3 = nb.types.float64[:, :, ::1]
_KINDS = {
    **dict.fromkeys(("phk", "phm", "pha", "phb", "etd"), _ARR3),
    **dict.fromkeys(("x", "xn", "cbuf"), _ARR2),
    **dict.fromkeys(("irm", "lob", "hill_one"), nb.types.boolean),
    "k": nb.types.int64,
    **dict.fromkeys(("ap", "al", "sel"), nb.types.float64),
    "change": nb.types.int32[::1],
}
#: Signature of every step function: the linear kernel calls the one of its layout through a
#: function pointer of this type (:func:`step_function`).
STEP_SIGNATURE = nb.types.int64(*(_KINDS.get(a, _ARR1) for a in ARGS.split(", ")))
STEP_TYPE = nb.types.FunctionType(STEP_SIGNATURE)


def step_function(
    S: int, depot: int, aug: bool, auc: bool = True, irm: bool = True, compiled: bool = True
):
    """The compiled step of a layout, for :func:`insilico.pk.kernel.linear_kernel`.

    Plain node ``g`` and the step ``g -> g + 1`` for every patient of a block: writes the
    node's dR/dt ``fcur``, the new state ``xn``, response ``rnew`` and drug-effect fraction
    ``fnode`` (``Cu^h / (C50^h + Cu^h)``, from the central amount against ``c50a = C50 V1 /
    fu``; with Lobatto, ``etd`` holds the weights with ``kin`` and ``kae = kin ap Emax``
    folded in, see ``kernel._fold_lobatto_weights``; for IRM II and IV ``etd[0, k]`` holds
    the step size, see ``kernel.rate_lobatto_step``)
    (``irm``: indirect response, by exponential Lobatto quadrature with the partial steps
    ``pha``, ``phb``: of the forcing when ``lob`` (I, III), of the loss rate otherwise
    (II, IV); ``phm``, the half step, is not used; ``hill_one``:
    every Hill exponent of the block is 1); returns the number of patients whose dR/dt
    changed sign since the previous node (``f_prev``) towards an extremum some window
    tracks: towards a minimum (``f_prev < 0``) when ``sel`` is -1, a maximum when 1, either
    when 0, and marks them in ``change`` (int32: 1 for such a patient, else 0; the kernel
    visits only the marked patients, two flags at a time). ``R`` (the response at the node) is
    left as it was: the kernel swaps the two buffers, a store per patient and node less than
    copying it aside. The node's concentration is left to the kernel, which needs it only at
    output nodes and in windows that track C (a load, a division and a store per patient and
    node less on most nodes).
    With ``auc`` the step writes the AUC state's increment into ``dauc`` as well (the kernel
    sums it per window); without, it leaves the AUC state (the last) as it was and ``dauc``
    untouched: the kernel takes that variant on the steps outside every window that reports
    an AUC, the AUC row's loads and its store less per patient and node (see
    ``linear_kernel``). Without ``irm`` the step is PK only (it is called with ``irm``
    false), for the kernel variants without an indirect response.

    The kernel takes it as a function pointer (:data:`STEP_TYPE`), not as a direct call: a
    direct call links every layout's code into the kernel, which numba then optimizes and
    compiles again (the cold compile took twice as long). Only the layouts used are compiled:
    here, or by the caller when not ``compiled`` (the simulation compiles them with the
    kernel, see :mod:`insilico.pk.precompile`).
    """
    from insilico.pk._fused_generated import STEPS

    fn = STEPS.get((S, depot, aug, auc, irm))
    if fn is None:
        raise ValueError(
            f"no fused step for {S} states, depot index {depot}, infusion {aug}, AUC {auc}, "
            f"indirect response {irm}"
        )
    if compiled:
        fn.compile(STEP_SIGNATURE)
    return fn
