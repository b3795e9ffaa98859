"""Fused per-step kernels, specialised per state layout: the generator of ``_fused_generated``.

On a *plain* grid node (no event but doses into the depot, which the kernel adds to the
state first; no window boundary, no per-patient lag) the linear kernel needs, per patient:
the concentration at the node, dR/dt at the node (for the Hermite search of the response's
extrema), one exact PK transition to the next node, and one step of the indirect response:
for I and III (forcing independent of R) exponential 4-point Lobatto quadrature on the exact
concentration at the step's two inner Lobatto points, for II and IV the same points feeding
``kernel.rate_lobatto_step`` (the weights depend on each patient's rate over the step: the
layout's loop stores the concentrations, a shared function takes the step). Done as separate
passes over ``(S, block)`` arrays
this costs ~10 sweeps over memory per step, and with the state size a run-time value none of
those loops vectorizes. Here they are one loop over patients whose body is straight-line code
for one layout (state size, depot, infusion column), which LLVM turns into SIMD code over
patients (see :mod:`insilico.pk._llvm_options`): LLVM vectorizes only innermost loops, and
small loops over the states inside the loop over patients are not unrolled early enough, so
the body is generated unrolled, one function per layout, into
:mod:`insilico.pk._fused_generated` (a plain module, so numba caches it on disk). With Hill
exponents other than 1 the layout's loop stores the central amounts and one shared loop
(``lobatto_any_hill``) takes the step: a loop with the Hill power is
slow to compile, and there are 16 layouts. The kernel calls a layout's step through a function
pointer (:mod:`insilico.pk.steps`).

Regenerate after editing this file: ``python -m insilico.pk.fused`` (a test checks that the
generated module is up to date).

The floating-point operations and their order per patient are those of the unfused code in
:mod:`insilico.pk.kernel` (``_matvec``, the Lobatto updates), so results do not depend on the
block size or on which path ran.
"""

from __future__ import annotations

from pathlib import Path

from insilico.pk.steps import ARGS

#: Largest state size of a linear model: depot, central, periph2, periph3, ce, auc.
MAX_STATES = 6

GENERATED = Path(__file__).with_name("_fused_generated.py")

#: Arguments of the shared response steps for any Hill exponent (``_tail``).
TAIL_ARGS = "cbuf, R, rnew, fnode, etd, k, emb, c50a, kinb, koutb, hill, ap, al"


def layouts() -> list[tuple[int, int, bool, bool, bool]]:
    """Every layout of a linear model and step: (state size, depot index or -1, infusion
    column, whether the step updates the AUC state, whether it steps an indirect response
    too). A step without the response is PK only: much less code to compile for the trials
    that need none (:func:`insilico.pk.kernel.kernel_variant`)."""
    out = []
    for dep in (-1, 0):
        lo = 3 if dep == 0 else 2
        for S in range(lo, MAX_STATES + 1 + dep):
            for aug in (False, True):
                for auc in (True, False):
                    for irm in (True, False):
                        out.append((S, dep, aug, auc, irm))
    return out


def _name(S: int, depot: int, aug: bool, auc: bool, irm: bool) -> str:
    return (
        f"step_{S}{'_depot' if depot == 0 else ''}{'_inf' if aug else ''}"
        f"{'' if auc else '_noauc'}{'' if irm else '_pk'}"
    )


def _pk_lines(S: int, depot: int, aug: bool, auc: bool, ind: str) -> list[str]:
    """``xn = phk x (+ phk[:, S] rate)`` in the operation order of ``kernel._matvec``: the
    AUC state (the last) as its increment over the step, stored in ``dauc`` for the kernel's
    window sums, plus the state. Without ``auc`` the AUC state is neither read nor written:
    its row of ``xn`` keeps what it held (see ``linear_kernel``: outside the windows that
    report an AUC its value is never used)."""
    auc_i = S - 1
    lines = [f"{ind}x{c} = x[{c}, j]" for c in range(S) if auc or c != auc_i]
    for r in range(S if auc else S - 1):
        if r == depot:
            lines.append(f"{ind}xn[{r}, j] = phk[{r}, {r}, j] * x{r}")
            continue
        c0 = 0 if auc_i != 0 else 1
        terms = [f"phk[{r}, {c0}, j] * x{c0}"]
        terms += [f"phk[{r}, {c}, j] * x{c}" for c in range(c0 + 1, S) if c != auc_i]
        if aug:
            terms.append(f"phk[{r}, {S}, j] * rate[j]")
        if r == auc_i:  # the increment, then the state
            lines.append(f"{ind}d{r} = " + " + ".join(terms))
            lines.append(f"{ind}dauc[j] = d{r}")
            lines.append(f"{ind}xn[{r}, j] = x{r} + d{r}")
            continue
        lines.append(f"{ind}y{r} = " + " + ".join(terms))
        lines.append(f"{ind}xn[{r}, j] = y{r}")
    return lines


def _mid_expr(S: int, depot: int, aug: bool, ph: str = "phm") -> str:
    """Central row of a partial-step transition ``ph`` (its AUC column is exactly zero)."""
    central = depot + 1
    terms = [f"{ph}[{central}, {c}, j] * x{c}" for c in range(S - 1)]
    if aug:
        terms.append(f"{ph}[{central}, {S}, j] * rate[j]")
    return " + ".join(terms)


def _hill_expr(hill_one: bool) -> str:
    """The Hill exponent of the drug-effect fractions: the constant 1 when every exponent of
    the block is 1 (no power), else the patient's. Both go through ``hill_fraction``, so a
    patient whose exponent is 1 gets the same bits whether or not its block holds other
    exponents (results must not depend on the block's patients)."""
    return "1.0" if hill_one else "hill[j]"


def _lobatto_lines(hill_one: bool, ind: str) -> list[str]:
    """Exponential 4-point Lobatto step of an indirect response whose forcing does not depend
    on R (``kernel._lobatto_coefficients``: the weights carry ``kin``, the drug-effect weights
    also ``ap Emax``) from the central amounts ``ca``, ``cb`` (inner points) and ``c1`` (end)
    and the drug-effect fraction ``f0`` at the start, in the operation order of the unfused
    path."""
    h = _hill_expr(hill_one)
    frac = [f"f{p} = hill_fraction(c{p}, c50, {h})" for p in ("a", "b", "1")]
    body = [
        "c50 = c50a[j]",
        *frac,
        "rnew[j] = etd[0, k, j] * u + (",
        "    etd[5, k, j]",
        "    + (etd[1, k, j] * f0 + etd[2, k, j] * fa + etd[3, k, j] * fb + etd[4, k, j] * f1)",
        ")",
        "fnode[j] = f1",
    ]
    return [ind + b for b in body]


def _conc_lines(S: int, depot: int, aug: bool, ind: str) -> list[str]:
    """Central amounts at the inner Lobatto points (``ca``, ``cb``) and at the end of the step
    (``c1``); the drug effect takes them against ``C50`` expressed as a central amount
    (``c50a = C50 V1 / fu``), a multiplication per point less than the unbound
    concentration."""
    central = depot + 1
    inner = [("ca", "pha"), ("cb", "phb")]
    body = [f"{c} = {_mid_expr(S, depot, aug, ph)}" for c, ph in inner]
    body.append(f"c1 = y{central}")
    return [ind + b for b in body]


def _tail() -> str:
    """The Lobatto step of IRM I and III for any Hill exponent from the central amounts a
    layout's function stored in ``cbuf`` (rows: inner points, end). Compiled once, not per
    layout: a loop with the Hill power takes ~1.5 s to compile, and there are 16 layouts."""
    i2 = " " * 8
    return "\n".join(
        [
            "",
            "",
            '@nb.njit(cache=True, error_model="numpy", boundscheck=False)',
            f"def lobatto_any_hill({TAIL_ARGS}):",
            '    """Lobatto step of the response from ``cbuf`` (see ``fused._tail``)."""',
            "    for j in range(R.shape[0]):",
            f"{i2}u = R[j]",
            f"{i2}f0 = fnode[j]",
            f"{i2}ca = cbuf[0, j]",
            f"{i2}cb = cbuf[1, j]",
            f"{i2}c1 = cbuf[2, j]",
            *_lobatto_lines(False, i2),
        ]
    )


def _rate_tails() -> str:
    """The step of IRM II and IV (``kernel.rate_lobatto_step``: its weights depend on each
    patient's rate over the step, so it runs as its own passes over the block, not inside a
    layout's loop; the step size in ``etd[0, k]``). ``rate_lobatto_tail`` takes the
    drug-effect fractions at the inner points and the end from ``cbuf``;
    ``rate_lobatto_any_hill`` takes central amounts there and turns them into fractions with
    each patient's Hill exponent first (a loop with the power is not SIMD code: a layout's
    loop computes the fractions itself when every exponent of the block is 1)."""
    i2 = " " * 8
    return "\n".join(
        [
            "",
            "",
            '@nb.njit(cache=True, error_model="numpy", boundscheck=False)',
            f"def rate_lobatto_tail({TAIL_ARGS}):",
            '    """IRM II, IV step from the fractions in ``cbuf`` (see ``fused._rate_tails``)."""',
            "    nbk = R.shape[0]",
            "    for j in range(nbk):",
            f"{i2}rnew[j] = R[j]",
            "    buf = np.empty((5, nbk))",
            "    h = etd[0, k, 0]",
            "    fa, fb, f1 = cbuf[0], cbuf[1], cbuf[2]",
            "    rate_lobatto_step(h, al, emb, kinb, koutb, fnode, fa, fb, f1, rnew, buf)",
            "    for j in range(nbk):",
            f"{i2}fnode[j] = cbuf[2, j]",
            "",
            "",
            '@nb.njit(cache=True, error_model="numpy", boundscheck=False)',
            f"def rate_lobatto_any_hill({TAIL_ARGS}):",
            '    """IRM II, IV step from the amounts in ``cbuf`` (see ``fused._rate_tails``)."""',
            "    for j in range(R.shape[0]):",
            f"{i2}c50 = c50a[j]",
            f"{i2}for q in range(3):",
            f"{i2}    cbuf[q, j] = hill_fraction(cbuf[q, j], c50, hill[j])",
            f"    rate_lobatto_tail({TAIL_ARGS})",
        ]
    )


def _node_lines(lob: bool, ind: str) -> list[str]:
    """dR/dt at the node (``fcur``), its sign changes (``change``) and their count; with
    Lobatto (IRM I, III: ``al`` = 0) from ``kae = kin ap Emax`` and the drug-effect
    fraction, otherwise from the drug effect ``Emax f``, in the operation order of the
    unfused path."""
    if lob:
        rate = ["f0 = fnode[j]", "k1 = kin + kae[j] * f0 - kout * u"]
    else:
        rate = ["f0 = emb[j] * fnode[j]", "k1 = kin * (1.0 + ap * f0) - kout * (1.0 + al * f0) * u"]
    body = [
        "u = R[j]",
        "kin = kinb[j]",
        "kout = koutb[j]",
        *rate,
        "fcur[j] = k1",
        "fp = f_prev[j]",
        "changed = (fp * k1 < 0.0) & (fp * sel >= 0.0)",
        "change[j] = np.int32(changed)",
        "n_change += changed",
    ]
    return [ind + b for b in body]


def _function(S: int, depot: int, aug: bool, auc: bool, irm: bool) -> str:
    i2, i3 = " " * 8, " " * 12
    pk = _pk_lines(S, depot, aug, auc, i3)
    src = [
        "",
        "",
        '@nb.njit(cache=True, error_model="numpy", boundscheck=False)',
        f"def {_name(S, depot, aug, auc, irm)}(",
        *[f"    {a}," for a in ARGS.split(", ")],
        "):",
        f'    """{S} states{", depot" if depot == 0 else ""}'
        f"{', infusion input' if aug else ''}{'' if auc else ', AUC state left as it was'}"
        f"{'' if irm else ', PK only'}: "
        'see ``steps.step_function``."""',
        "    nbk = x.shape[1]",
    ]
    if not irm:
        return "\n".join([*src, "    for j in range(nbk):", *[ln[4:] for ln in pk], "    return 0"])
    src += [
        "    n_change = 0",
        "    if not irm:",
        f"{i2}for j in range(nbk):",
        *pk,
        f"{i2}return 0",
        "    if hill_one and lob:",
        f"{i2}for j in range(nbk):",
        *_node_lines(True, i3),
        *pk,
        *_conc_lines(S, depot, aug, i3),
        *_lobatto_lines(True, i3),
        f"{i2}return n_change",
        "    # any Hill exponent: store the central amounts, then one shared loop for the step",
        "    if lob:",
        f"{i2}for j in range(nbk):",
        *_node_lines(True, i3),
        *pk,
        *_conc_lines(S, depot, aug, i3),
        f"{i3}cbuf[0, j] = ca",
        f"{i3}cbuf[1, j] = cb",
        f"{i3}cbuf[2, j] = c1",
        f"{i2}lobatto_any_hill({TAIL_ARGS})",
        f"{i2}return n_change",
        "    # IRM II, IV: store the drug-effect fractions (Hill exponents 1) or the central",
        "    # amounts, then the rate Lobatto step",
        "    if hill_one:",
        f"{i2}for j in range(nbk):",
        *_node_lines(False, i3),
        *pk,
        *_conc_lines(S, depot, aug, i3),
        f"{i3}c50 = c50a[j]",
        f"{i3}cbuf[0, j] = hill_fraction(ca, c50, 1.0)",
        f"{i3}cbuf[1, j] = hill_fraction(cb, c50, 1.0)",
        f"{i3}cbuf[2, j] = hill_fraction(c1, c50, 1.0)",
        f"{i2}rate_lobatto_tail({TAIL_ARGS})",
        f"{i2}return n_change",
        "    for j in range(nbk):",
        *[line[4:] for line in _node_lines(False, i3) + pk + _conc_lines(S, depot, aug, i3)],
        f"{i2}cbuf[0, j] = ca",
        f"{i2}cbuf[1, j] = cb",
        f"{i2}cbuf[2, j] = c1",
        f"    rate_lobatto_any_hill({TAIL_ARGS})",
        "    return n_change",
    ]
    return "\n".join(src)


def generate_source() -> str:
    """Source text of :mod:`insilico.pk._fused_generated`."""
    head = [
        '"""Generated by ``python -m insilico.pk.fused`` (see :mod:`insilico.pk.fused`); do not',
        'edit by hand."""',
        "",
        "# ruff: noqa: E501",
        "# fmt: off",
        "from __future__ import annotations",
        "",
        "import numba as nb",
        "import numpy as np",
        "",
        "import insilico.pk._llvm_options  # noqa: F401  (before anything compiles)",
        "from insilico.pd.models import hill_fraction",
        "from insilico.pk.kernel import rate_lobatto_step",
    ]
    funcs = [_tail(), _rate_tails()] + [_function(*lay) for lay in layouts()]
    table = [
        "",
        "",
        "#: The step of each layout (state size, depot index or -1, infusion column, AUC state",
        "#: updated, indirect response stepped too).",
    ]
    table.append("STEPS = {")
    table += [f"    {lay!r}: {_name(*lay)}," for lay in layouts()]
    table.append("}")
    return "\n".join(head + funcs + table) + "\n"


def write_generated() -> None:
    """(Re)write :mod:`insilico.pk._fused_generated`."""
    GENERATED.write_text(generate_source())


if __name__ == "__main__":
    write_generated()
