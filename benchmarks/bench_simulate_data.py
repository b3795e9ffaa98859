"""Throughput and memory of ``insilico simulate`` on large NONMEM-format datasets.

Writes a dataset of each ``--rows`` records (oral doses every 12 h with ADDL, observations
every hour, a weight covariate), then runs the command line ``insilico simulate`` on it in a
fresh process ``--repeat`` times (``/usr/bin/time``-style peak memory from ``resource``) and
prints rows per second: every run, then the best and the spread. A first run on a small file
compiles the kernel and writes bytecode caches, so the table shows the command's steady cost
(imports, reading, both predictions, writing), not one-off compilation. The file is read and
simulated in chunks of whole subjects, so the peak memory should be the same for 1e5 and 1e6
rows once the file is larger than a chunk.

    python benchmarks/bench_simulate_data.py                  # 1e5 and 1e6 rows, 3 runs each
    python benchmarks/bench_simulate_data.py --rows 1000000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "oral_1cpt_lag_allometric.yaml"


def make_dataset(path: Path, rows: int, seed: int = 1) -> int:
    """A dataset of about ``rows`` records; returns the number of subjects."""
    per_subject = 1 + 168  # one dose record (ADDL 13, II 12) and hourly samples for 7 days
    n = max(1, rows // per_subject)
    rng = np.random.default_rng(seed)
    wt = np.round(rng.normal(75, 12, n).clip(40, 140), 1)
    t_obs = np.arange(1, 169, dtype=float)
    ids = np.repeat(np.arange(1, n + 1), per_subject)
    time_h = np.tile(np.r_[0.0, t_obs], n)
    evid = np.tile(np.r_[1, np.zeros(168, dtype=int)], n)
    df = pd.DataFrame(
        {
            "ID": ids,
            "TIME": time_h,
            "EVID": evid,
            "AMT": np.where(evid == 1, 100.0, 0.0),
            "CMT": np.where(evid == 1, 1, 2),
            "II": np.where(evid == 1, 12.0, 0.0),
            "ADDL": np.where(evid == 1, 13, 0),
            "DV": 0.0,
            "WT": np.repeat(wt, per_subject),
        }
    )
    df.to_csv(path, index=False)
    return n


def run(args: list[str]) -> tuple[float, float]:
    """Wall time (s) and peak RSS (MB) of ``insilico`` with ``args`` in a child process."""
    code = (
        "import resource, sys, time; from insilico.cli import main; t = time.perf_counter();"
        f" rc = main({args!r}); dt = time.perf_counter() - t;"
        " mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024;"
        " print(f'BENCH {dt} {mb}'); sys.exit(rc)"
    )
    # bytecode caches as an installed package has them (some shells set PYTHONDONTWRITEBYTECODE)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout
    line = [x for x in out.splitlines() if x.startswith("BENCH")][-1].split()
    return float(line[1]), float(line[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--replicates", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=3, help="runs per dataset (default 3)")
    parser.add_argument("--chunk-records", type=int, default=None)
    opts = parser.parse_args()
    reps = opts.replicates or 1
    extra = ["--replicates", str(opts.replicates)] if opts.replicates else []
    if opts.chunk_records:
        extra += ["--chunk-records", str(opts.chunk_records)]
    header = (
        f"{'rows':>10} {'subjects':>9} {'replicates':>10} {'seconds':>8} "
        f"{'rows/s':>10} {'peak MB':>8}"
    )
    summary = []
    with tempfile.TemporaryDirectory() as tmp:
        small = Path(tmp) / "small.csv"
        make_dataset(small, 2000)
        run(["simulate", str(MODEL), "--data", str(small), "--out", str(Path(tmp) / "w.csv")])
        print(header)
        for n_rows in opts.rows:
            data = Path(tmp) / f"data{n_rows}.csv"
            n_subjects = make_dataset(data, n_rows)
            rows = len(pd.read_csv(data, usecols=["ID"]))
            out = Path(tmp) / "out.csv"
            speeds, peaks = [], []
            for _ in range(opts.repeat):
                args = ["simulate", str(MODEL), "--data", str(data), "--out", str(out), *extra]
                wall, mb = run(args)
                speeds.append(rows * reps / wall)
                peaks.append(mb)
                print(
                    f"{rows:>10} {n_subjects:>9} {reps:>10} {wall:>8.2f} "
                    f"{rows * reps / wall:>10.0f} {mb:>8.0f}"
                )
            summary.append((rows, speeds, peaks))
            data.unlink()
    print("(simulate = imports + read + PRED + IPRED + write, in a fresh process)")
    for rows, speeds, peaks in summary:
        print(
            f"{rows:>10} rows: best {max(speeds):,.0f} rows/s (spread {min(speeds):,.0f}-"
            f"{max(speeds):,.0f} over {len(speeds)} runs); peak RSS {min(peaks):.0f}-"
            f"{max(peaks):.0f} MB"
        )


if __name__ == "__main__":
    main()
