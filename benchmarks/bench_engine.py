"""Speed and accuracy of the simulation core on its reference workload.

2-compartment oral PK (ka 1 /h, CL 5 L/h, V1 50 L, Q 10 L/h, V2 100 L, F 0.7), 100 mg q12h for
28 days (56 doses), hourly output (673 points), indirect response with inhibition of
production (kin 10 /h, kout 0.1 /h, Imax 0.9, IC50 0.5 mg/L), 30 % CV log-normal IIV on every
parameter but Imax. Per patient: Cmax, Cmin and AUC over the last interval, minimum response and
% change of response at day 28.

Compared in the same run: the naive approach (scipy ``solve_ivp`` LSODA per patient, rtol 1e-6,
restarted at every dose) on a small sample, and a Radau reference (rtol 1e-10, atol 1e-12) for
the errors of both. Prints a table; the last line is
``RESULT patients_per_s=... speedup_vs_scipy=... max_rel_err=... peak_mb=...``.

Speed is measured as CPU time of this process (``time.process_time``) over the ``simulate``
calls, the best of ``--repeats`` runs: the machine may be shared, and wall time then counts other
processes' work. Wall time is printed too.

The one-core rate is measured twice: with the hourly time courses of the reference workload
(the RESULT line's ``patients_per_s``) and summaries only (the only output time is day 28,
for the response's % change; the exposure metrics come from the windows, not from the
output grid). Output times are hard nodes of the grid; on this workload the hourly ones fall
on nodes the graded grid has anyway, and the table prints the largest difference between the
two modes' summaries (0 when the grids coincide). Both are checked against Radau.

Hourly time courses are timed twice as well: as a chunked pipeline runs them, the chunks
reusing one :class:`insilico.pk.OutputBuffers` (the RESULT line's ``patients_per_s``), and
with fresh memory for every chunk (``patients_per_s_hourly_fresh_memory``). The difference is
the operating system zeroing the pages of the time courses on their first write, system CPU
time that ``process_time`` counts. A third hourly row stores the time courses in float32
(``output_dtype="float32"``; the kernel computes in float64 and rounds each stored value once).

``--n-big 1000000 --workers 2``: one million patients summaries-only, run twice
(``--big-mode both``; or ``threads`` / ``processes``), after compiling the kernels into
numba's on-disk cache in a throwaway process (a cold cache would otherwise put the compiler's
memory into the runs' peak). On two threads of one fresh process
(the kernels release the GIL): its wall time, peak RSS and peak PSS are the run's. And on two
worker processes
(``multiprocessing``, spawn; each worker simulates a contiguous half in chunks of
``--chunk`` patients, drawing its patients' parameters from the seed by patient id, so the
result does not depend on the split). Reported: wall time from the start signal to the last
summaries received in the parent (workers started and compiled code loaded beforehand, as a
running cluster would be; the start-up time is printed too), the peak resident memory of
the parent and the workers (their sum and the largest), and the peak of their summed
proportional set size (PSS, sampled every 50 ms): RSS counts the ~90 MB of library pages
every process maps (numba, LLVM, numpy) once per process, PSS splits them, so the summed PSS
is the physical memory of the run and the summed peak RSS an upper bound. Why not Dask: a
LocalCluster adds about 1.3 s of start-up and a scheduler process (~100 MB) to a run of under
10 s and 500 MB, and two long tasks gain nothing from its scheduling.

Usage: ``python benchmarks/bench_engine.py [--n 100000] [--n-ref 20] [--n-naive 20]
[--repeats 3] [--n-big 1000000 --workers 2 --big-mode both]``
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from insilico.pd.models import PDModel
from insilico.pk.buffers import OutputBuffers
from insilico.pk.models import PKModel
from insilico.pk.regimen import build_event_table
from insilico.pk.simulate import Window, simulate
from insilico.twin import IIV, individual_parameters, sample_etas

TYPICAL = {
    "ka_per_h": 1.0,
    "cl_L_per_h": 5.0,
    "v1_L": 50.0,
    "q2_L_per_h": 10.0,
    "v2_L": 100.0,
    "f_bio": 0.7,
    "kin_per_h": 10.0,
    "kout_per_h": 0.1,
    "imax": 0.9,
    "ic50_mg_per_L": 0.5,
}
IIV_NAMES = [k for k in TYPICAL if k != "imax"]
DOSE_MG, TAU_H, N_DOSES = 100.0, 12.0, 56
T_END = TAU_H * N_DOSES
LAST = (T_END - TAU_H, T_END)
#: Per-patient summaries of the workload (see the module docstring).
SUMMARIES = ("cmax", "cmin", "auc", "rmin", "pct")


def parameters(n: int, seed: int = 1, start: int = 0) -> dict[str, np.ndarray]:
    """Parameters of patients ``start .. start + n - 1`` (reproducible by patient id)."""
    etas = sample_etas(IIV({k: 0.3 for k in IIV_NAMES}), seed, "bench", start, start + n)
    # f_bio: 30 % CV on the log scale like the other parameters (capped at 1)
    typ = {k: v for k, v in TYPICAL.items() if k != "f_bio"}
    p = individual_parameters(typ, {"weight_kg": np.full(n, 70.0)}, etas)
    p["f_bio"] = np.minimum(1.0, 0.7 * np.exp(etas["f_bio"]))
    return p


def run_insilico(
    p: dict[str, np.ndarray],
    chunk: int = 10_000,
    timing: list | None = None,
    time_courses: bool = False,
    reuse_memory: bool = True,
    output_dtype: str = "float64",
):
    """Simulate in chunks (memory bounded by the chunk), keep per-patient summaries only;
    ``timing`` receives the CPU and wall seconds spent inside ``simulate``;
    ``time_courses``: output every hour (then dropped here) instead of at day 28 only;
    ``reuse_memory``: the chunks' time courses reuse one :class:`OutputBuffers` (else every
    chunk writes them into fresh pages); ``output_dtype``: of the time courses."""
    n = p["cl_L_per_h"].shape[0]
    cpu = wall = 0.0
    out = {k: np.empty(n) for k in SUMMARIES}
    times = np.arange(0.0, T_END + 0.5, 1.0) if time_courses else np.array([T_END])
    buffers = OutputBuffers() if reuse_memory else None
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        pc = {k: v[a:b] for k, v in p.items()}
        ev = build_event_table(f"{DOSE_MG} mg PO q12h x{N_DOSES}", b - a)
        c0, w0 = time.process_time(), time.perf_counter()
        res = simulate(
            PKModel(2),
            pc,
            ev,
            times,
            pd=PDModel("irm1"),
            windows=[
                Window(*LAST, name="last", metrics=("cmax", "cmin", "auc")),
                Window(0.0, T_END, name="all", metrics=("emin",)),
            ],
            buffers=buffers,
            output_dtype=output_dtype,
        )
        cpu += time.process_time() - c0
        wall += time.perf_counter() - w0
        r0 = pc["kin_per_h"] / pc["kout_per_h"]
        out["cmax"][a:b] = res.metrics["cmax_mg_per_L_last"]
        out["cmin"][a:b] = res.metrics["cmin_mg_per_L_last"]
        out["auc"][a:b] = res.metrics["auc_mg_h_per_L_last"]
        out["rmin"][a:b] = res.metrics["effect_min_all"]
        out["pct"][a:b] = 100.0 * (res.effect[:, -1] - r0) / r0
        del res  # the time courses are consumed: their memory serves the next chunk
    if timing is not None:
        timing.append((cpu, wall))
    return out


def _rhs(t, y, p):
    d, c, q2, r = y
    conc = c / p["v1_L"]
    inh = p["imax"] * conc / (p["ic50_mg_per_L"] + conc)
    return [
        -p["ka_per_h"] * d,
        p["ka_per_h"] * d
        - (p["cl_L_per_h"] + p["q2_L_per_h"]) * conc
        + p["q2_L_per_h"] * q2 / p["v2_L"],
        p["q2_L_per_h"] * (conc - q2 / p["v2_L"]),
        p["kin_per_h"] * (1 - inh) - p["kout_per_h"] * r,
    ]


def run_scipy(p_i: dict[str, float], method: str, rtol: float, atol: float):
    """One patient, restarted at every dose; extrema in the last interval from dense output."""
    from scipy.integrate import solve_ivp

    y = np.array([0.0, 0.0, 0.0, p_i["kin_per_h"] / p_i["kout_per_h"]])
    rmin = y[3]
    for k in range(N_DOSES):
        y[0] += DOSE_MG * p_i["f_bio"]
        t0 = k * TAU_H
        sol = solve_ivp(
            _rhs,
            (t0, t0 + TAU_H),
            y,
            method=method,
            rtol=rtol,
            atol=atol,
            args=(p_i,),
            dense_output=True,
        )
        tt = np.linspace(t0, t0 + TAU_H, 4001)
        dense = sol.sol(tt)
        rmin = min(rmin, dense[3].min())
        y = sol.y[:, -1].copy()
    conc = dense[1] / p_i["v1_L"]
    from scipy.integrate import quad
    from scipy.optimize import minimize_scalar

    f = lambda t: sol.sol(t)[1] / p_i["v1_L"]  # noqa: E731
    j = int(np.argmax(conc))
    lo, hi = tt[max(j - 1, 0)], tt[min(j + 1, tt.size - 1)]
    cmax = -minimize_scalar(
        lambda t: -f(t), bounds=(lo, hi), method="bounded", options={"xatol": 1e-12}
    ).fun
    cmin = min(conc[0], conc[-1], conc.min())
    auc = quad(f, *LAST, epsabs=0, epsrel=1e-12, limit=200)[0]
    r0 = p_i["kin_per_h"] / p_i["kout_per_h"]
    return {"cmax": cmax, "cmin": cmin, "auc": auc, "rmin": rmin, "pct": 100.0 * (y[3] - r0) / r0}


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _big_worker(start: int, stop: int, chunk: int, ready, go, results) -> None:
    """Worker process: load the compiled code, wait for ``go``, simulate patients
    ``[start, stop)`` summaries-only in chunks, send back the summaries, CPU s and peak MB."""
    run_insilico(parameters(64))  # compiled code from the on-disk cache
    ready.put(_peak_mb())
    go.wait()
    c0 = time.process_time()
    parts = []
    for a in range(start, stop, chunk):
        b = min(stop, a + chunk)
        parts.append(run_insilico(parameters(b - a, start=a), chunk=chunk))
    out = {k: np.concatenate([q[k] for q in parts]) for k in parts[0]}
    results.put((start, out, time.process_time() - c0, _peak_mb()))


def _pss_mb(pid: int) -> float:
    """Proportional set size of a process (MB; 0 when unavailable): pages shared between
    processes (the interpreter, numpy, numba and LLVM libraries every worker maps) are split
    among them instead of counted once per process as RSS counts them."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


class _PssSampler(threading.Thread):
    """Largest sum of the processes' PSS, sampled every ``interval_s`` (the physical memory
    of the run: the sum of per-process peak RSS counts the shared libraries once per
    process and adds peaks that need not coincide)."""

    def __init__(self, pids: list[int], interval_s: float = 0.05):
        super().__init__(daemon=True)
        self.pids = pids
        self.interval_s = interval_s
        self.peak_mb = 0.0
        self._halt = threading.Event()

    def _sample(self) -> None:
        self.peak_mb = max(self.peak_mb, sum(_pss_mb(p) for p in self.pids))

    def run(self) -> None:
        while not self._halt.is_set():
            self._sample()
            self._halt.wait(self.interval_s)

    def stop(self) -> float:
        self._halt.set()
        self.join()
        self._sample()
        return self.peak_mb


def run_big(n: int, workers: int, chunk: int) -> dict:
    """``n`` patients summaries-only on ``workers`` processes; wall time and peak memory."""
    ctx = mp.get_context("spawn")
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    bounds = np.linspace(0, n, workers + 1).astype(int)
    t0 = time.perf_counter()
    procs = [
        ctx.Process(target=_big_worker, args=(int(a), int(b), chunk, ready, go, results))
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]
    for pr in procs:
        pr.start()
    sampler = _PssSampler([os.getpid()] + [pr.pid for pr in procs])
    sampler.start()
    for _ in procs:
        ready.get()
    startup = time.perf_counter() - t0
    t1 = time.perf_counter()
    go.set()
    got = [results.get() for _ in procs]
    wall = time.perf_counter() - t1
    for pr in procs:
        pr.join()
    got.sort(key=lambda r: r[0])
    summaries = {k: np.concatenate([r[1][k] for r in got]) for k in got[0][1]}
    pss_mb = sampler.stop()
    worker_mb = [r[3] for r in got]
    parent_mb = _peak_mb()
    return {
        "pss_mb": pss_mb,
        "wall_s": wall,
        "startup_s": startup,
        "cpu_s": [r[2] for r in got],
        "worker_mb": worker_mb,
        "parent_mb": parent_mb,
        "sum_mb": parent_mb + sum(worker_mb),
        "max_mb": max([parent_mb, *worker_mb]),
        "summaries": summaries,
    }


def _compile_only() -> None:
    run_insilico(parameters(64))


def warm_cache() -> None:
    """Compile the kernels into numba's on-disk cache in a throwaway process, so that the
    million-patient runs load compiled code instead of compiling it: on a cold cache (a fresh
    clone) the compiler's own memory (~450 MB) would otherwise be counted as the run's
    peak RSS."""
    pr = mp.get_context("spawn").Process(target=_compile_only)
    pr.start()
    pr.join()
    if pr.exitcode != 0:
        raise SystemExit(f"compiling the kernels failed (exit code {pr.exitcode})")


def run_big_threads(n: int, workers: int, chunk: int) -> dict:
    """``n`` patients summaries-only on ``workers`` threads of one fresh process (the kernels
    release the GIL): its wall time, peak RSS and peak PSS are the run's."""
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    pr = ctx.Process(target=_threads_main, args=(n, workers, chunk, results))
    pr.start()
    got = results.get()
    pr.join()
    return got


def _threads_main(n: int, workers: int, chunk: int, results) -> None:
    results.put(_simulate_on_threads(n, workers, chunk))


def _simulate_on_threads(n: int, workers: int, chunk: int) -> dict:
    run_insilico(parameters(64))  # compiled code from the on-disk cache
    startup_mb = _peak_mb()
    out = {k: np.empty(n) for k in SUMMARIES}
    bounds = np.linspace(0, n, workers + 1).astype(int)
    cpu = [0.0] * workers

    def part(w: int) -> None:
        c0 = time.thread_time()
        for a in range(int(bounds[w]), int(bounds[w + 1]), chunk):
            b = min(int(bounds[w + 1]), a + chunk)
            got = run_insilico(parameters(b - a, start=a), chunk=chunk)
            for k, v in got.items():
                out[k][a:b] = v
        cpu[w] = time.thread_time() - c0

    sampler = _PssSampler([os.getpid()])
    sampler.start()
    t1 = time.perf_counter()
    with ThreadPoolExecutor(workers) as ex:
        list(ex.map(part, range(workers)))  # list(): re-raises a worker's exception
    wall = time.perf_counter() - t1
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "startup_mb": startup_mb,
        "peak_mb": _peak_mb(),
        "pss_mb": sampler.stop(),
        "summaries": out,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--n-ref", type=int, default=20)
    ap.add_argument("--n-naive", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n-big", type=int, default=0, help="patients of the multi-process run")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--chunk", type=int, default=10_000)
    ap.add_argument(
        "--big-mode",
        choices=("threads", "processes", "both"),
        default="both",
        help="the million-patient run on threads of this process, on worker processes, or both",
    )
    args = ap.parse_args()

    big = big_t = None
    if args.n_big > 0:  # first, while this process is small (its peak RSS is counted too)
        warm_cache()
        if args.big_mode in ("threads", "both"):
            big_t = run_big_threads(args.n_big, args.workers, args.chunk)
        if args.big_mode in ("processes", "both"):
            big = run_big(args.n_big, args.workers, args.chunk)
        for run in (big_t, big):
            if run is not None and not all(
                np.all(np.isfinite(v)) for v in run["summaries"].values()
            ):
                raise SystemExit("non-finite summaries in the million-patient run")

    run_insilico(parameters(64))  # compile (cached on disk after the first run)
    run_insilico(parameters(64), time_courses=True)
    run_insilico(parameters(64), time_courses=True, output_dtype="float32")
    p = parameters(args.n)
    # the two modes alternate, so that both see the same phases of a machine whose speed
    # drifts between runs
    timing_tc: list[tuple[float, float]] = []
    timing_fresh: list[tuple[float, float]] = []
    timing_f32: list[tuple[float, float]] = []
    timing: list[tuple[float, float]] = []
    for _ in range(max(1, args.repeats)):
        ours_tc = run_insilico(p, timing=timing_tc, time_courses=True)
        ours_fresh = run_insilico(p, timing=timing_fresh, time_courses=True, reuse_memory=False)
        ours_f32 = run_insilico(p, timing=timing_f32, time_courses=True, output_dtype="float32")
        ours = run_insilico(p, timing=timing)
    rate_fresh = args.n / min(t[0] for t in timing_fresh)
    rate_f32 = args.n / min(t[0] for t in timing_f32)
    cpu = min(t[0] for t in timing_tc)
    wall = min(t[1] for t in timing_tc)
    rate_tc = args.n / cpu
    rate = args.n / min(t[0] for t in timing)
    mode_diff = max(
        float(np.max(np.abs(ours[k] - ours_tc[k]) / np.maximum(np.abs(ours_tc[k]), 1.0)))
        for k in ours
    )

    idx = np.arange(min(args.n_ref, args.n))
    ref = [run_scipy({k: float(v[i]) for k, v in p.items()}, "Radau", 1e-10, 1e-12) for i in idx]
    t1 = time.process_time()
    naive = [
        run_scipy({k: float(v[i]) for k, v in p.items()}, "LSODA", 1e-6, 1e-9)
        for i in idx[: args.n_naive]
    ]
    naive_rate = len(naive) / (time.process_time() - t1)

    def max_err(values, sel):
        errs = {}
        for key in SUMMARIES:
            a = np.array(
                [values[i][key] if isinstance(values, list) else values[key][i] for i in sel]
            )
            b = np.array([ref[i][key] for i in sel])
            scale = np.abs(b) if key != "pct" else np.maximum(np.abs(b), 1.0)
            errs[key] = float(np.max(np.abs(a - b) / scale))
        return errs

    e_tc = max_err(ours_tc, idx)
    e_ours = max_err(ours, idx)
    e_naive = max_err(naive, range(len(naive)))
    err = max(max(e_tc.values()), max(e_ours.values()))
    peak_mb = _peak_mb()
    print(f"{'approach':<40}{'patients/s':>12}{'max rel err':>14}")
    print(
        f"{'insilico, hourly time courses':<40}{rate_tc:>12.0f}{max(e_tc.values()):>14.2e}"
        "   (exact PK + exponential Lobatto PD, numba; CPU time of simulate, best of repeats)"
    )
    print(
        f"{'  the same, fresh memory every chunk':<40}{rate_fresh:>12.0f}"
        f"{max(max_err(ours_fresh, idx).values()):>14.2e}"
        "   (no OutputBuffers: the OS zeroes every page of the time courses on first write;"
        f" summaries identical: {all(np.array_equal(ours_fresh[k], ours_tc[k]) for k in ours)})"
    )
    print(
        f"{'  the same, float32 time courses':<40}{rate_f32:>12.0f}"
        f"{max(max_err(ours_f32, idx).values()):>14.2e}"
        "   (output_dtype='float32': each value rounded once when stored; % change at day 28"
        " from the float32 response)"
    )
    print(
        f"{'insilico, summaries only':<40}{rate:>12.0f}{max(e_ours.values()):>14.2e}"
        f"   (largest relative difference from the hourly run: {mode_diff:.1e})"
    )
    print(
        f"{'scipy solve_ivp LSODA per patient':<40}{naive_rate:>12.1f}"
        f"{max(e_naive.values()):>14.2e}"
    )
    print()
    print(f"{'metric':<10}{'hourly err':>12}{'summ. err':>12}{'LSODA err':>12}")
    for k in e_ours:
        print(f"{k:<10}{e_tc[k]:>12.2e}{e_ours[k]:>12.2e}{e_naive[k]:>12.2e}")
    print(
        f"\nn={args.n} hourly time courses: cpu={cpu:.2f} s, wall={wall:.2f} s (best of "
        f"{len(timing_tc)}; one core; patients/s from CPU time: {args.n / cpu:.0f}, from wall "
        f"time: {args.n / wall:.0f})"
    )
    print(
        "patients/s of every repeat (CPU time), hourly: "
        + ", ".join(f"{args.n / t[0]:.0f}" for t in timing_tc)
        + "; hourly, fresh memory: "
        + ", ".join(f"{args.n / t[0]:.0f}" for t in timing_fresh)
        + "; hourly, float32: "
        + ", ".join(f"{args.n / t[0]:.0f}" for t in timing_f32)
        + "; summaries only: "
        + ", ".join(f"{args.n / t[0]:.0f}" for t in timing)
    )
    print(f"reference: Radau rtol 1e-10 on {len(idx)} patients")
    extra = (
        f" patients_per_s_summaries={rate:.1f} patients_per_s_hourly_fresh_memory={rate_fresh:.1f}"
        f" patients_per_s_hourly_float32={rate_f32:.1f}"
    )
    # the first patients of the big runs are those of the one-core run: same summaries
    k = min(args.n, args.n_big)
    if big_t is not None:
        same_t = all(np.array_equal(big_t["summaries"][q][:k], ours[q][:k]) for q in ours)
        same_modes = big is None or all(
            np.array_equal(big_t["summaries"][q], big["summaries"][q]) for q in ours
        )
        print(
            f"\nn={args.n_big} summaries only on {args.workers} threads of one process: "
            f"wall={big_t['wall_s']:.2f} s, thread CPU "
            + ", ".join(f"{c:.2f}" for c in big_t["cpu_s"])
            + f" s; peak RSS {big_t['peak_mb']:.0f} MB ({big_t['startup_mb']:.0f} MB with the "
            f"compiled code loaded, before simulating), peak PSS {big_t['pss_mb']:.0f} MB; "
            f"summaries identical to the one-core run: {same_t}, to the process run: "
            f"{same_modes if big is not None else 'not run'}"
        )
        extra += (
            f" wall_s_1e6_threads={big_t['wall_s']:.2f} peak_mb_1e6_threads={big_t['peak_mb']:.1f}"
        )
    if big is not None:
        same_big = all(np.array_equal(big["summaries"][q][:k], ours[q][:k]) for q in ours)
        print(
            f"\nn={args.n_big} summaries only on {args.workers} worker processes: "
            f"wall={big['wall_s']:.2f} s (start-up before it {big['startup_s']:.2f} s), "
            f"worker CPU " + ", ".join(f"{c:.2f}" for c in big["cpu_s"]) + " s; "
            f"peak RSS parent {big['parent_mb']:.0f} MB, workers "
            + ", ".join(f"{m:.0f}" for m in big["worker_mb"])
            + f" MB: sum {big['sum_mb']:.0f} MB, largest {big['max_mb']:.0f} MB; "
            f"peak of the summed PSS (shared libraries counted once, sampled every 50 ms) "
            f"{big['pss_mb']:.0f} MB; summaries identical to the one-core run: {same_big}"
        )
        extra += (
            f" wall_s_1e6={big['wall_s']:.2f} peak_mb_1e6={big['sum_mb']:.1f}"
            f" peak_pss_mb_1e6={big['pss_mb']:.1f}"
        )
    print(
        f"RESULT patients_per_s={rate_tc:.1f} speedup_vs_scipy={rate_tc / naive_rate:.1f} "
        f"max_rel_err={err:.3e} peak_mb={peak_mb:.1f}{extra}"
    )


if __name__ == "__main__":
    main()
