"""``insilico``: the command line, a thin shell over the package's public functions.

Commands::

    insilico run WORKFLOW [--out DIR] [--scheduler ADDR] [--workers N] [--chunk-size N]
                          [--n-patients N] [--seed S] [--serial] [--no-progress]
    insilico runs list [--root DIR]
    insilico runs show RUN [--root DIR]
    insilico cohort COHORT.yaml -n N --seed S -o FILE.parquet
    insilico simulate MODEL.yaml --data DATA.csv --out OUT.csv [--replicates N] [--seed S]
                      [--chunk-records N]
    insilico fit MODEL.yaml --data DATA.csv --out DIR [--method focei]
    insilico vpc MODEL.yaml --data DATA.csv --out DIR [--replicates N] [--bins K]
    insilico twin MODEL.yaml --data DATA.csv --out DIR [--until T]
                  [--target METRIC=LO..HI --regimen "X mg PO q12h x14"]
    insilico featurize INPUT -o OUT.parquet
    insilico predict-pk INPUT.csv --out OUT.csv
    insilico app [--port P] [--root DIR]

Bad input (:class:`insilico.errors.SpecError`, :class:`insilico.errors.CompoundError`) exits
with code 2 and a one-line reason on stderr; no run directory is left that looks complete.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import NoReturn

EXIT_BAD_INPUT = 2


class _ArgumentError(Exception):
    """A command line argparse refuses (unknown option, missing or mistyped value)."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one ``insilico: error:`` line and exit code 2,
    like every other bad input (argparse prints the usage and exits by itself)."""

    def error(self, message: str) -> NoReturn:
        usage = " ".join(self.format_usage().split()[1:])
        raise _ArgumentError(f"{self.prog}: {message} (usage: {usage})")


def _fail(message: str) -> int:
    print(f"insilico: error: {message.splitlines()[0] if message else 'failed'}", file=sys.stderr)
    return EXIT_BAD_INPUT


def cmd_run(args: argparse.Namespace) -> int:
    from insilico.engine.run import run_and_write
    from insilico.errors import SpecError
    from insilico.results.summary import format_summary

    if args.workers is not None and args.workers < 1:
        raise SpecError("--workers", args.workers, "a number of local workers >= 1")
    if args.n_patients is not None and args.n_patients < 1:
        raise SpecError("--n-patients", args.n_patients, "a number of patients >= 1")
    if args.seed is not None and args.seed < 0:
        raise SpecError("--seed", args.seed, "a non-negative integer")
    if args.chunk_size is not None and args.chunk_size < 1:
        raise SpecError("--chunk-size", args.chunk_size, "a whole number of patients >= 1")
    if args.serial and (args.workers is not None or args.scheduler is not None):
        given = "--workers" if args.workers is not None else "--scheduler"
        raise SpecError("--serial", given, "--serial alone (it runs in this process, no workers)")
    executor = "serial" if args.serial else "auto"
    dose_scan = None
    if args.dose_scan:
        try:
            dose_scan = [float(x) for x in args.dose_scan.split(",") if x.strip()]
        except ValueError:
            return _fail(
                f"--dose-scan: {args.dose_scan!r} is not a comma-separated list of doses in mg "
                "(e.g. 10,30,100,300)"
            )
        if not dose_scan or any(not (d > 0 and d < float("inf")) for d in dose_scan):
            return _fail(f"--dose-scan: {args.dose_scan!r}; allowed: doses > 0 mg")
        if sorted(set(dose_scan)) != sorted(dose_scan):
            return _fail(f"--dose-scan: {args.dose_scan!r}; allowed: distinct doses")
    result, path = run_and_write(
        root=args.out,
        spec=args.workflow,
        executor=executor,
        n_patients=args.n_patients,
        seed=args.seed,
        chunk_size=args.chunk_size,
        scheduler=args.scheduler,
        workers=args.workers,
        progress=not args.no_progress,
        dose_scan=dose_scan,
    )
    execution = result.manifest["execution"]
    if args.serial is False and execution["executor"] == "serial":
        print(f"note: {execution['executor_reason']}")
    print(format_summary(result.summary))
    for row in result.failed.to_dict("records"):
        print(f"failed compound {row['id']}: {row['error']}")
    for warning in result.context.compound_warnings:
        print(f"warning: compound {warning['id']}: {warning['warning']}")
    t = result.manifest["timings_s"]
    compiling = (
        f"; {t['compile']:.1f} s of it compiling kernels, cached for the next runs"
        if t.get("compile", 0.0) >= 1.0
        else ""
    )
    print(
        f"run: {path}  ({result.context.n_patients} patients x {len(result.context.arms)} "
        f"arms, {t['total']:.1f} s{compiling})"
    )
    return 0


def cmd_runs_list(args: argparse.Namespace) -> int:
    from insilico.results.rundir import list_runs

    runs = list_runs(args.root)
    if runs.empty:
        print(f"no runs under {args.root}")
        return 0
    print(runs.drop(columns=["path"]).to_string(index=False))
    return 0


def cmd_runs_show(args: argparse.Namespace) -> int:
    from insilico.errors import SpecError
    from insilico.results.rundir import read_run
    from insilico.results.summary import format_summary

    try:
        run = read_run(args.run, args.root)
        m = run.manifest
        header = (
            f"run {m['run_id']}  name={m['name']}  created={m['created_utc']}  "
            f"n_patients={m['n_patients']}  seed={m['seed']}  "
            f"spec_sha256={m['spec_sha256'][:12]}"
        )
    except SpecError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        # a run directory someone truncated or edited: its manifest, summary or bands
        what = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        raise SpecError(
            "run", args.run, f"a complete, readable run under {args.root} ({what})"
        ) from None
    print(header)
    print(format_summary(run.summary))
    for row in m.get("failed_compounds", []):
        print(f"failed compound {row['id']}: {row['error']}")
    return 0


def cmd_cohort(args: argparse.Namespace) -> int:
    from insilico.cohort import load_cohort_spec, write_cohort
    from insilico.cohort.writer import MAX_COHORT_SIZE, check_cohort_output
    from insilico.errors import SpecError

    if not 1 <= args.n <= MAX_COHORT_SIZE:
        raise SpecError("-n", args.n, f"a number of patients from 1 to {MAX_COHORT_SIZE:,}")
    if args.seed < 0:
        raise SpecError("--seed", args.seed, "a non-negative integer")
    check_cohort_output(args.n, args.output, field="-o/--output")
    spec = load_cohort_spec(args.cohort)
    path = write_cohort(spec, args.n, args.seed, args.output)
    print(f"wrote {args.n} patients to {path}")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    import time

    from insilico.dataset.stream import simulate_file
    from insilico.errors import SpecError
    from insilico.model import load_model

    if args.replicates is not None and not 1 <= args.replicates <= 10_000:
        raise SpecError("--replicates", args.replicates, "an integer from 1 to 10000")
    if args.seed < 0:
        raise SpecError("--seed", args.seed, "a non-negative integer")
    if args.chunk_records < 1:
        raise SpecError("--chunk-records", args.chunk_records, "an integer >= 1")
    out = Path(args.out)
    if not out.parent.is_dir() or out.is_dir():
        raise SpecError("--out", args.out, "a file path in an existing directory")
    start = time.perf_counter()
    model = load_model(args.model)
    summary = simulate_file(
        model,
        args.data,
        out,
        replicates=args.replicates,
        seed=args.seed,
        chunk_records=args.chunk_records,
    )
    seconds = time.perf_counter() - start
    reps = f" x {args.replicates} replicates" if args.replicates else ""
    print(
        f"simulated {summary.records} records of {summary.subjects} subjects{reps} "
        f"with {model.name} in {seconds:.1f} s -> {out}"
    )
    return 0


def cmd_featurize(args: argparse.Namespace) -> int:
    from insilico.chem.descriptors import write_features

    table = write_features(args.input, args.output)
    n_ok = int(table["valid"].sum())
    print(
        f"wrote {len(table)} compounds ({n_ok} valid, {len(table) - n_ok} failed) to {args.output}"
    )
    return 0


def cmd_predict_pk(args: argparse.Namespace) -> int:
    from insilico.chem.profile import predict_pk_table

    table = predict_pk_table(args.input, args.out)
    n_bad = int((table["error"].astype(str) != "").sum())
    print(f"wrote {len(table)} predictions ({n_bad} failed) to {args.out}")
    return 0


def cmd_app(args: argparse.Namespace) -> int:
    app = Path(__file__).resolve().parents[1] / "app" / "streamlit_app.py"
    if not app.is_file():
        return _fail(f"app: {app} not found (run from a source checkout)")
    env = {**os.environ, "INSILICO_RUNS": str(Path(args.root).resolve())}
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.address",
        args.address,
        "--server.port",
        str(args.port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        # Uploads are compound tables (CSV/SDF): 5 MB is ~20,000 structures.
        "--server.maxUploadSize",
        "5",
        # A pharmacologist sees the message the app writes, never a traceback.
        "--client.showErrorDetails",
        "none",
    ]
    return run_child(cmd, env)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the child gets SIGTERM when its parent dies, even by SIGKILL."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def run_child(cmd: list[str], env: dict[str, str]) -> int:
    """Run ``cmd`` as a child that lives and dies with this process: SIGTERM, SIGHUP and
    SIGINT are passed on to it (and on Linux it is terminated if this process is killed), so
    stopping ``insilico app`` never leaves the server running. Returns its exit code."""
    preexec = _die_with_parent if sys.platform.startswith("linux") else None
    child = subprocess.Popen(cmd, env=env, preexec_fn=preexec)
    forwarded = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
    previous = {s: signal.signal(s, lambda sig, _frame: child.send_signal(sig)) for s in forwarded}
    try:
        return child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="insilico", description="In-silico clinical trials.")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run a trial protocol (workflows/*.yaml)")
    r.add_argument("workflow")
    r.add_argument("--out", default="runs", help="directory of run directories (default runs)")
    r.add_argument(
        "--scheduler",
        default=None,
        help="Dask scheduler address or scheduler JSON file (default: "
        "DASK_SCHEDULER_ADDRESS, else a local cluster for a large trial and this process "
        "for a small one)",
    )
    r.add_argument(
        "--workers",
        type=int,
        default=None,
        help="local cluster worker processes (starts a cluster whatever the trial's size)",
    )
    r.add_argument("--chunk-size", type=int, default=None, help="patients per task")
    r.add_argument("--n-patients", type=int, default=None)
    r.add_argument("--seed", type=int, default=None)
    r.add_argument("--serial", action="store_true", help="run in this process, no Dask")
    r.add_argument(
        "--dose-scan",
        default=None,
        metavar="D1,D2,...",
        help="doses in mg to scan for every compound (its first regimen, scaled)",
    )
    r.add_argument("--no-progress", action="store_true")
    r.set_defaults(func=cmd_run)

    runs = sub.add_parser("runs", help="list or show runs")
    rs = runs.add_subparsers(dest="runs_command", required=True)
    rl = rs.add_parser("list")
    rl.add_argument("--root", default="runs")
    rl.set_defaults(func=cmd_runs_list)
    rsh = rs.add_parser("show")
    rsh.add_argument("run")
    rsh.add_argument("--root", default="runs")
    rsh.set_defaults(func=cmd_runs_show)

    c = sub.add_parser("cohort", help="sample a cohort to Parquet")
    c.add_argument("cohort")
    c.add_argument("-n", type=int, required=True)
    c.add_argument("--seed", type=int, required=True)
    c.add_argument("-o", "--output", required=True)
    c.set_defaults(func=cmd_cohort)

    sm = sub.add_parser(
        "simulate", help="simulate a model at the records of a NONMEM-format dataset"
    )
    sm.add_argument("model", help="model file (kind: model)")
    sm.add_argument("--data", required=True, help="NONMEM-format CSV")
    sm.add_argument("--out", required=True, help="output CSV: input rows + PRED, IPRED (, DV)")
    sm.add_argument(
        "--replicates", type=int, default=None, help="simulated replicates with residual error"
    )
    sm.add_argument("--seed", type=int, default=0)
    sm.add_argument(
        "--chunk-records",
        type=int,
        default=200_000,
        metavar="N",
        help="records read and simulated at a time, in whole subjects (default 200000); "
        "bounds the memory, not the results",
    )
    sm.set_defaults(func=cmd_simulate)

    from insilico.fit.commands import add_fit_parser, add_twin_parser, add_vpc_parser

    add_fit_parser(sub)
    add_twin_parser(sub)
    add_vpc_parser(sub)

    f = sub.add_parser("featurize", help="RDKit features of a CSV/SDF to Parquet")
    f.add_argument("input")
    f.add_argument("-o", "--output", required=True)
    f.set_defaults(func=cmd_featurize)

    pk = sub.add_parser("predict-pk", help="structure-based human PK predictions")
    pk.add_argument("input")
    pk.add_argument("--out", required=True)
    pk.set_defaults(func=cmd_predict_pk)

    a = sub.add_parser("app", help="start the Streamlit app on 127.0.0.1")
    a.add_argument("--port", type=int, default=8501)
    a.add_argument(
        "--address",
        default="127.0.0.1",
        help="interface to bind (default 127.0.0.1; 0.0.0.0 exposes the app to the network)",
    )
    a.add_argument("--root", default="runs")
    a.set_defaults(func=cmd_app)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``insilico`` console script; returns the exit code."""
    from insilico.errors import InsilicoError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except _ArgumentError as exc:
        code = _fail(str(exc))
        if argv is None:
            sys.exit(code)
        return code
    try:
        code = args.func(args)
    except InsilicoError as exc:  # SpecError, CompoundError, ...
        code = _fail(str(exc))
    except KeyboardInterrupt:
        code = 130
    if argv is None:
        sys.exit(code)
    return code


if __name__ == "__main__":
    main()
