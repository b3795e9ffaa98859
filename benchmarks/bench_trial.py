"""Trial engine at scale: serial vs local Dask cluster, and client memory for 1,000,000 patients.

Workload: one compound (atenolol, measured PK) x 2 regimens (50 and 100 mg PO q12h for 14
days), hourly output for 14 days (337 points), Emax biomarker, one adverse event, 30 % IIV on
CL; paired design (every patient receives both arms).

1. 100,000 patients x 2 arms with the serial executor and with a local cluster of 2 worker
   processes (1 thread each), in the same run, after a warm-up run that compiles/loads the
   kernels in every process: wall time, speedup (serial / warm cluster), and that the tables
   are identical. Also the cold end-to-end time (``run_trial`` starting its own cluster,
   worker imports and cohort tables included), which is what a one-off ``insilico run`` pays.
2. 1,000,000 patients x 2 arms written to a run directory through a local cluster (2
   workers), in a fresh process whose peak RSS is the client's peak memory (the workers are
   separate processes).

The last line is ``RESULT speedup=<float> client_peak_mb_1e6=<float>``.

Usage: ``python benchmarks/bench_trial.py [--n 100000] [--n-big 1000000] [--workers 2]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd


def workload(n: int) -> dict:
    from insilico.trial.examples import ATENOLOL, small_trial

    data = small_trial(
        n_patients=n,
        compounds=[ATENOLOL],
        duration_h=336.0,
        placebo=False,
        regimens=[
            {"name": "50mg", "text": "50 mg PO q12h x28"},
            {"name": "100mg", "text": "100 mg PO q12h x28"},
        ],
    )
    data["output"] = {"interval_h": 1.0}
    data["name"] = "bench"
    return data


def peak_rss_mb() -> float:
    """Peak resident memory of this process (MB; ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def child_big(n: int, workers: int) -> None:
    """Run the big workload into a temporary run directory; print a JSON line."""
    from insilico.engine.run import run_and_write
    from insilico.trial.spec import trial_spec_from_dict

    spec = trial_spec_from_dict(workload(n))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result, path = run_and_write(root=tmp, spec=spec, executor="dask", workers=workers)
        wall = time.perf_counter() - t0
        rows = len(pd.read_parquet(path / "summary.parquet"))
    print(
        json.dumps(
            {
                "wall_s": wall,
                "peak_mb": peak_rss_mb(),
                "summary_rows": rows,
                "n": n,
                "timings": result.manifest["timings_s"],
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--n-big", type=int, default=1_000_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--child-big", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_big:
        child_big(args.n_big, args.workers)
        return

    from pandas.testing import assert_frame_equal

    from insilico.engine.executors import local_cluster
    from insilico.engine.run import run_trial
    from insilico.trial.spec import trial_spec_from_dict

    spec = trial_spec_from_dict(workload(args.n))
    small = spec.model_copy(update={"n_patients": 4 * 1024})
    run_trial(small, executor="serial")  # warm-up: kernels compiled/loaded in this process
    t0 = time.perf_counter()
    serial = run_trial(spec, executor="serial")
    t_serial = time.perf_counter() - t0
    t0 = time.perf_counter()
    cold = run_trial(spec, executor="dask", workers=args.workers)
    t_cold = time.perf_counter() - t0
    cluster = local_cluster(args.workers)
    try:
        address = cluster.scheduler_address
        run_trial(small, executor="dask", scheduler=address, chunk_size=1024)  # warm workers
        t0 = time.perf_counter()
        dask = run_trial(spec, executor="dask", scheduler=address)
        t_dask = time.perf_counter() - t0
    finally:
        cluster.close()
    for name in ("patients", "bands", "summary"):
        assert_frame_equal(getattr(serial, name), getattr(dask, name), check_exact=True)
        assert_frame_equal(getattr(serial, name), getattr(cold, name), check_exact=True)
    speedup = t_serial / t_dask
    pa = 2 * args.n

    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child-big",
            "--n-big",
            str(args.n_big),
            "--workers",
            str(args.workers),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    big = json.loads(out.stdout.strip().splitlines()[-1])

    rows = [
        (f"serial, {args.n:,} x 2 arms", t_serial, pa),
        (f"dask {args.workers} warm workers, {args.n:,} x 2 arms", t_dask, pa),
        (f"dask {args.workers} workers, cold start, {args.n:,} x 2", t_cold, pa),
        (
            f"dask {args.workers} workers, {args.n_big:,} x 2 (to disk)",
            big["wall_s"],
            2 * args.n_big,
        ),
    ]
    print(f"{'workload':<46} {'wall s':>8} {'patient-arms/s':>15}")
    for label, wall, n in rows:
        print(f"{label:<46} {wall:8.1f} {n / wall:15,.0f}")
    print(
        f"serial and dask tables identical: yes; speedup (warm cluster) {speedup:.2f}, "
        f"cold start {t_serial / t_cold:.2f}; load average {os.getloadavg()}"
    )
    print(
        f"client peak RSS, {args.n_big:,} patients x 2 arms: {big['peak_mb']:.0f} MB "
        f"(timings {big['timings']})"
    )
    print(f"RESULT speedup={speedup:.3f} client_peak_mb_1e6={big['peak_mb']:.1f}")


if __name__ == "__main__":
    main()
