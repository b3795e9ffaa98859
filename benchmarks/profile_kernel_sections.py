"""Where the linear kernel spends its time on the reference workload, section by section.

Copies the working tree to a temporary directory, inserts cycle-counter reads
(``llvm.readcyclecounter``) between the sections of ``insilico.pk.kernel.linear_kernel``,
runs ``benchmarks/bench_engine.py``'s reference workload in that copy (summaries only and
hourly time courses; best of ``--repeats`` per section) and prints µs per patient:

=============  ===============================================================
transitions    per-block transition matrices (batched exponentials and squarings)
coefficients   per-block quadrature coefficients of the response (Lobatto rules)
buffers        per-block buffers and copies of the block's parameters
fused          the generated plain-node step (PK transition, inner points, response step)
outputs        writing output rows at plain nodes
hermite        dR/dt sign changes and their Hermite candidates
track+above    window trackers at plain nodes (C and response extrema, time above)
nonplain       nodes with events or window bounds (the general path)
refine C       refinement of the C (or Ce) extrema after the node loop
refine R       refinement of the response's extrema (and the loop over patients)
=============  ===============================================================

The copy is instrumented by matching source lines: when the kernel changes, update
``MARKS``. The ticks are converted with ``--ghz`` (the machine's TSC rate; default 2.5); the
sections need not add up to the CPU time of ``simulate`` (Python around it).

Usage: ``python benchmarks/profile_kernel_sections.py [--n 10000] [--repeats 5]``; to rank
two versions, alternate ``--src A --keep /tmp/prof_a`` and ``--src B --keep /tmp/prof_b``
(the machine's speed drifts by more than most changes: only side-by-side runs rank them).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

RDTSC = """
from llvmlite import ir as _ir
from numba.core import cgutils as _cgutils
from numba.core import types as _types
from numba.extending import intrinsic as _intrinsic


@_intrinsic
def rdtsc(typingctx):
    def codegen(context, builder, signature, args):
        fnty = _ir.FunctionType(_ir.IntType(64), [])
        fn = _cgutils.get_or_insert_function(builder.module, fnty, "llvm.readcyclecounter")
        return builder.call(fn, [])

    return _types.uint64(), codegen
"""

#: (source text, section closed there, indentation, insert before (True) or after it)
MARKS = [
    ("        x = np.empty((S, nbk))\n        for r in range(S):\n", 8, 8, True),
    ("        lob = pd_kind == 4 or pd_kind == 6\n", 9, 8, True),
    ("        xa = np.empty(nbk)\n", 10, 8, True),
    (
        "                for m in range(2):\n"
        "                    if not win_track[w] & (TRACK_EMIN << m):\n",
        11,
        16,
        True,
    ),
    (
        "                a_ = win_a[w]\n                b_ = win_b[w]\n"
        "                met[i, w, 5] = t_above[w, j]\n",
        7,
        16,
        True,
    ),
    ("        for g in range(G):\n            if plain[g]:\n", 1, 8, True),
    (
        "                while o < n_out and out_node[o] == g:\n"
        "                    for j in range(nbk):\n"
        "                        obuf[j] = x[central, j] / v1b[j]\n"
        "                    store_row(out_conc[o], b0, obuf, nbk, stream, out_f32)\n",
        2,
        16,
        True,
    ),
    (
        "                if irm and W > 0:\n                    if n_change > 0 and herm_node[g]:",
        3,
        16,
        True,
    ),
    ("                    r_prev, rcur = rcur, r_prev\n", 4, 16, False),
    ("                # rotate:", 5, 16, True),
]
#: (column, timer index): the buffers timer also runs from the coefficients to the node loop
#: (index 1); the refine-R timer runs from each window's start in the loop over patients, so
#: it holds that loop's overhead too
SECTIONS = [
    ("transitions", 8),
    ("coefficients", 10),
    ("buffers", 9),
    ("fused", 2),
    ("outputs", 3),
    ("hermite", 4),
    ("track+above", 5),
    ("nonplain", 6),
    ("refine C", 11),
    ("refine R", 7),
]


def _tick(k: int, ind: int) -> str:
    return " " * ind + f"t_ = rdtsc(); timers[{k}] += t_ - t_last; t_last = t_\n"


def _write(path: Path, data: bytes) -> None:
    """Write ``data`` unless ``path`` holds it already (an unchanged file keeps its time
    stamp, and with it numba's disk cache of what it defines)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)


def instrument(src: Path, dst: Path) -> None:
    """Copy the tracked files of ``src`` to ``dst`` and add the section timers."""
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=src, capture_output=True, check=True
    ).stdout.split(b"\0")
    for f in filter(None, files):
        if f.decode() not in ("insilico/pk/kernel.py", "insilico/pk/simulate.py"):
            _write(dst / f.decode(), (src / f.decode()).read_bytes())
    s = (src / "insilico/pk/kernel.py").read_text()

    def put(pattern: str, text: str, before: bool) -> str:
        if s.count(pattern) != 1:
            raise SystemExit(f"kernel changed: update MARKS ({pattern[:60]!r})")
        return s.replace(pattern, text + pattern if before else pattern + text)

    s = put("    for b0 in range(0, n, block):\n", "        t_last = rdtsc()\n", False)
    for pattern, k, ind, before in MARKS:
        s = put(pattern, _tick(k, ind), before)
    end_node = (
        "            x, xn = xn, x  # xn keeps the state at node g for the Hermite candidates\n"
    )
    s = put(end_node, _tick(6, 12) + _tick(6, 8), False)
    last = "                        met[i, w, 7] = max(e_ext[w, 1, j], ee)\n"
    s = put(last, _tick(7, 8), False)
    s = put("    step_fn,\n    step_fn_noauc,\n):\n", "    timers,\n", True)
    s = s.replace("\nMETRICS = ", RDTSC + "\n\nMETRICS = ", 1)
    _write(dst / "insilico/pk/kernel.py", s.encode())
    t = (src / "insilico/pk/simulate.py").read_text()
    for pattern, text in (
        (
            "        step_function(layout.size, layout.depot, has_inf, irm=irm),\n",
            "        TIMERS,\n",
        ),
        ("\ndef simulate(", "\nTIMERS = np.zeros(12, dtype=np.uint64)\n\n"),
    ):
        if t.count(pattern) != 1:
            raise SystemExit(f"simulate changed: update instrument() ({pattern[:60]!r})")
        t = t.replace(pattern, text + pattern)
    _write(dst / "insilico/pk/simulate.py", t.encode())


RUNNER = """
import sys, numpy as np
sys.path.insert(0, {root!r}); sys.path.insert(0, {root!r} + "/benchmarks")
import bench_engine as be
sm = sys.modules["insilico.pk.simulate"]
n, repeats, ghz = {n}, {repeats}, {ghz}
p = be.parameters(n)
for tc in (False, True):
    be.run_insilico(be.parameters(64), time_courses=tc)
    best = None
    for _ in range(repeats):
        sm.TIMERS[:] = 0
        be.run_insilico(p, time_courses=tc)
        best = sm.TIMERS.copy() if best is None else np.minimum(best, sm.TIMERS)
    us = best / (ghz * 1e3) / n
    print(("hourly" if tc else "summaries") + " " + " ".join(f"{{v:.2f}}" for v in us))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--ghz", type=float, default=2.5, help="cycle-counter rate (GHz)")
    ap.add_argument("--src", type=Path, default=ROOT, help="the tree to profile (a git checkout)")
    ap.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="instrument into this directory and keep it: later runs reuse its numba cache "
        "(the first run compiles for ~2 minutes); for side-by-side runs of two trees",
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        dst = args.keep if args.keep is not None else Path(tmp) / "tree"
        instrument(args.src.resolve(), dst)
        code = RUNNER.format(root=str(dst), n=args.n, repeats=args.repeats, ghz=args.ghz)
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=dst)
        if run.returncode != 0:
            raise SystemExit(f"the instrumented run failed:\n{run.stderr[-3000:]}")
        out = run.stdout
    print(f"{'µs per patient':<16}" + "".join(f"{c:>13}" for c, _ in SECTIONS) + f"{'sum':>9}")
    for line in out.splitlines():
        mode, *vals = line.split()
        t = [float(x) for x in vals]
        v = [t[k] + (t[1] if k == 9 else 0.0) for _, k in SECTIONS]
        print(f"{mode:<16}" + "".join(f"{x:>13.2f}" for x in v) + f"{sum(v):>9.2f}")


if __name__ == "__main__":
    main()
