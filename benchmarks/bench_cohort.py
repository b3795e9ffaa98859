"""Cohort sampling speed and streaming memory.

Run from the repository root::

    PYTHONPATH=. python benchmarks/bench_cohort.py [--n 1000000] [--stream-n 10000000]

Prints a table: seconds for ``sample_cohort(spec, n)`` per preset, and time and peak RSS for
streaming ``--stream-n`` patients to Parquet with ``write_cohort``. The last line is
``RESULT sample_1e6_s=<float> stream_peak_mb=<float> stream_patients_per_s=<float>``.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from insilico.cohort import load_cohort_spec, sample_cohort, write_cohort

ROOT = Path(__file__).resolve().parents[1]


def rss_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--stream-n", type=int, default=10_000_000)
    ap.add_argument("--block-size", type=int, default=100_000)
    args = ap.parse_args()

    # Streaming first, in a fresh process, so the peak RSS is that of the stream alone.
    spec = load_cohort_spec(ROOT / "cohorts" / "healthy_adults_us.yaml")
    before = rss_peak_mb()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cohort.parquet"
        t0 = time.perf_counter()
        write_cohort(spec, args.stream_n, 7, out, block_size=args.block_size)
        dt_stream = time.perf_counter() - t0
        size_mb = out.stat().st_size / 1e6
    peak = rss_peak_mb()
    print(
        f"write_cohort {args.stream_n} patients, block {args.block_size}: {dt_stream:.1f} s "
        f"({args.stream_n / dt_stream:.0f} patients/s), file {size_mb:.0f} MB, "
        f"peak RSS {peak:.0f} MB (before the stream {before:.0f} MB)"
    )
    print(f"{'preset':32s} {'n':>10s} {'seconds':>8s} {'patients/s':>12s}")
    t_healthy = None
    for path in sorted((ROOT / "cohorts").glob("*.yaml")):
        spec = load_cohort_spec(path)
        sample_cohort(spec, 10, 0)  # plan (pilot) and tables, cached
        t0 = time.perf_counter()
        df = sample_cohort(spec, args.n, 7)
        dt = time.perf_counter() - t0
        assert len(df) == args.n
        del df
        if path.stem == "healthy_adults_us":
            t_healthy = dt
        print(f"{path.stem:32s} {args.n:>10d} {dt:>8.2f} {args.n / dt:>12.0f}")

    print(
        f"RESULT sample_1e6_s={t_healthy * 1e6 / args.n:.3f} stream_peak_mb={peak:.1f} "
        f"stream_patients_per_s={args.stream_n / dt_stream:.0f}"
    )


if __name__ == "__main__":
    main()
