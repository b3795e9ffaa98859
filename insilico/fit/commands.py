"""``insilico twin``: update each patient's twin from their data, forecast, choose a dose."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from insilico.errors import SpecError


def _model_and_data(args: argparse.Namespace):
    """The model file and its dataset (with observations) named on the command line; the
    output directory checked first."""
    from insilico.dataset import read_dataset
    from insilico.model import load_model

    out = Path(args.out)
    if (out.exists() and not out.is_dir()) or not out.parent.is_dir():
        raise SpecError("--out", args.out, "a directory in an existing directory")
    model = load_model(args.model)
    dataset = read_dataset(args.data, compartments=model.compartment_map())
    table = dataset.table
    measured = table["DV"].notna()
    if "BLQ" in table.columns:
        measured |= table["BLQ"] == 1
    obs = (table["EVID"] == 0) & (table["MDV"] == 0) & measured
    if not obs.any():
        raise SpecError("--data", args.data, "records with observations (EVID 0, a DV or BLQ 1)")
    return model, dataset, out


def add_twin_parser(sub) -> None:
    """Register ``insilico twin`` on the CLI's sub-parsers."""
    t = sub.add_parser(
        "twin",
        help="update each patient's twin from their data (MAP), forecast, choose a dose",
    )
    t.add_argument("model", help="population model (a fit.yaml or any kind: model file)")
    t.add_argument("--data", required=True, help="NONMEM-format CSV of the patients' records")
    t.add_argument("--out", required=True, help="output directory (created)")
    t.add_argument("--until", type=float, default=None, help="use observations up to T h")
    t.add_argument("--target", default=None, help="e.g. trough_mg_per_L=1.5..2.5")
    t.add_argument(
        "--regimen", default=None, help='template with X for the dose: "X mg PO q12h x14"'
    )
    t.add_argument("--draws", type=int, default=500, help="posterior draws (default 500)")
    t.add_argument("--seed", type=int, default=0)
    t.set_defaults(func=cmd_twin)


METHODS = {"focei": "FOCE-I", "saem": "SAEM"}


def add_fit_parser(sub) -> None:
    """Register ``insilico fit`` on the CLI's sub-parsers."""
    f = sub.add_parser("fit", help="estimate a model's population parameters from a dataset")
    f.add_argument("model", help="model file with starting values (kind: model)")
    f.add_argument("--data", required=True, help="NONMEM-format CSV with observations")
    f.add_argument("--out", required=True, help="output directory (created)")
    f.add_argument(
        "--method",
        default="focei",
        help="focei (FOCE with interaction, default) or saem (stochastic approximation EM)",
    )
    f.add_argument(
        "--max-iterations",
        type=int,
        default=200,
        help="FOCE-I's optimizer iterations at most (default 200)",
    )
    f.add_argument("--seed", type=int, default=None, help="SAEM's random numbers")
    f.add_argument(
        "--iterations",
        default=None,
        metavar="K1,K2",
        help="SAEM's exploration and smoothing iterations (default 150,100)",
    )
    f.add_argument(
        "--scheduler",
        default=None,
        help="compute the subjects' parts on this Dask scheduler (address or scheduler file)",
    )
    f.add_argument(
        "--workers",
        type=int,
        default=None,
        help="compute the subjects' parts on N local Dask workers (same estimates)",
    )
    f.add_argument("--vpc-replicates", type=int, default=200)
    f.set_defaults(func=cmd_fit)


def _saem_settings(args: argparse.Namespace):
    """SAEM's settings from ``--seed`` and ``--iterations K1,K2``."""
    from insilico.fit.saem import SaemSettings

    options: dict = {}
    if args.seed is not None:
        options["seed"] = args.seed
    if args.iterations is not None:
        parts = args.iterations.split(",")
        try:
            k1, k2 = (int(p) for p in parts)
        except ValueError:
            k1 = k2 = -1
        if len(parts) != 2 or k1 < 1 or k2 < 1:
            raise SpecError("--iterations", args.iterations, "K1,K2: two whole numbers >= 1")
        options.update(exploration=k1, smoothing=k2)
    return SaemSettings(**options)


def _estimate(args: argparse.Namespace, model, dataset):
    """The fit by the method asked for, on a Dask cluster when one is asked for."""
    from insilico.fit.population import fit_focei
    from insilico.fit.saem import fit_saem

    if args.method not in METHODS:
        raise SpecError("--method", args.method, f"one of {', '.join(METHODS)}")
    distributed = args.scheduler is not None or args.workers is not None
    if args.workers is not None and args.workers < 1:
        raise SpecError("--workers", args.workers, "a number of workers >= 1")
    if args.max_iterations < 1:
        raise SpecError("--max-iterations", args.max_iterations, "a whole number >= 1")
    if args.method == "focei" and args.iterations is not None:
        raise SpecError(
            "--iterations",
            args.iterations,
            "SAEM's iterations with --method saem (FOCE-I: --max-iterations)",
        )
    if not distributed:
        if args.method == "focei":
            return fit_focei(model, dataset, max_iterations=args.max_iterations), None
        return fit_saem(model, dataset, _saem_settings(args)), None
    from insilico.engine.executors import connect
    from insilico.fit.distributed import DaskChains, DaskTerms
    from insilico.fit.posterior import SubjectProblem

    # compile (or load) the kernels here first: the workers then load them from the cache
    SubjectProblem(model, dataset.table).predictions(
        np.zeros((dataset.subjects(), len(model.eta_names())))
    )
    client, cluster = connect(args.scheduler, args.workers)
    try:
        n_workers = len(client.scheduler_info().get("workers", {}))
        terms = DaskTerms(model, dataset.table, client)
        if args.method == "focei":
            return (
                fit_focei(model, dataset, max_iterations=args.max_iterations, backend=terms),
                n_workers,
            )
        chains = DaskChains(model, dataset.table, client)
        return fit_saem(model, dataset, _saem_settings(args), chains, terms), n_workers
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def cmd_fit(args: argparse.Namespace) -> int:
    """Run ``insilico fit``; returns the exit code (2 when the fit did not converge)."""
    from insilico.dataset import write_dataset
    from insilico.fit.npde import npde
    from insilico.fit.population import diagnostics, individual_table
    from insilico.fit.vpc import plot_vpc, vpc_table
    from insilico.model import dump_model

    model, dataset, out = _model_and_data(args)
    fit, n_workers = _estimate(args, model, dataset)
    out.mkdir(exist_ok=True)
    fit.estimates.to_csv(out / "estimates.csv", index=False)
    dump_model(fit.model, out / "fit.yaml")
    individual_table(fit, dataset).to_csv(out / "individual.csv", index=False)
    diag = diagnostics(fit, dataset)
    diag["NPDE"] = npde(fit.model, dataset, n_replicates=args.vpc_replicates * 2)
    write_dataset(dataset.raw, diag, out / "predictions.csv")
    _gof_plot(dataset, diag, out / "gof.png", model.data.dv_unit)
    if fit.trace is not None:
        fit.trace.to_csv(out / "saem_trace.csv")
        _trace_plot(fit.trace, out / "saem_trace.png")
    vpc = vpc_table(fit.model, dataset, n_replicates=args.vpc_replicates, prediction_corrected=True)
    vpc.to_csv(out / "pcvpc.csv", index=False)
    plot_vpc(vpc, out / "pcvpc.png", title=f"{model.name}: prediction-corrected VPC")
    summary = {
        "method": fit.method,
        "model": model.name,
        "ofv": fit.ofv,
        "ofv_method": "FOCE-I",
        "aic": fit.aic,
        "bic": fit.bic,
        "subjects": fit.n_subjects,
        "observations": fit.n_observations,
        "observations_blq": _n_blq(dataset.table),
        "iterations": fit.iterations,
        "converged": fit.converged,
        "standard_errors": bool(fit.estimates["se"].notna().all()),
        "runtime_s": round(fit.runtime_s, 3),
        "workers": n_workers,
        "fixed": fit.fixed,
        "messages": fit.messages,
    }
    if fit.method == "SAEM":
        settings = _saem_settings(args)
        summary["seed"] = settings.seed
        summary["saem_iterations"] = [settings.exploration, settings.smoothing]
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(fit.estimates.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    where = f" on {n_workers} Dask workers" if n_workers else ""
    print(
        f"{fit.method}: OFV {fit.ofv:.3f} (FOCE-I), {fit.n_subjects} subjects, "
        f"{fit.n_observations} observations, {fit.iterations} iterations, "
        f"{fit.runtime_s:.1f} s{where} -> {out}"
    )
    for message in fit.messages:
        print(f"warning: {message}")
    if not fit.converged:
        print(
            f"insilico: error: the {fit.method} fit did not converge (see {out}/summary.json)",
            file=sys.stderr,
        )
        return 2
    if fit.estimates["se"].isna().any():
        # the estimates are written, but the data do not determine every value
        print(
            "insilico: error: standard errors are not available: a value is not identifiable "
            f"from these data (see {out}/summary.json); fix it or simplify the model",
            file=sys.stderr,
        )
        return 2
    return 0


def _n_blq(table) -> int:
    """Observations below their quantification limit (fitted by M3)."""
    if "BLQ" not in table.columns:
        return 0
    rows = (table["EVID"] == 0) & (table["MDV"] == 0) & (table["BLQ"] == 1)
    return int(rows.sum())


def _trace_plot(trace, path) -> None:
    """The SAEM estimates at every iteration, one panel per parameter."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(trace.columns)
    cols = min(k, 4)
    rows = -(-k // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 2.4 * rows), dpi=100, squeeze=False)
    for ax, name, values in zip(axes.flat, trace.columns, trace.to_numpy().T, strict=False):
        ax.plot(np.arange(1, len(values) + 1), values, lw=1)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("iteration", fontsize=8)
    for ax in list(axes.flat)[k:]:
        ax.set_visible(False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _gof_plot(dataset, diag, path, unit: str) -> None:
    """Goodness of fit: observations against PRED and IPRED, CWRES against time and PRED."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = dataset.table
    obs = ((t["EVID"] == 0) & (t["MDV"] == 0) & t["DV"].notna()).to_numpy()
    dv = t["DV"].to_numpy()[obs]
    fig, axes = plt.subplots(2, 2, figsize=(9, 8), dpi=100)
    for ax, col in zip(axes[0], ("PRED", "IPRED"), strict=True):
        x = diag[col].to_numpy()[obs]
        ax.scatter(x, dv, s=6, alpha=0.5)
        hi = max(np.nanmax(x), np.nanmax(dv))
        ax.plot([0, hi], [0, hi], color="k", lw=1)
        ax.set_xlabel(f"{col} ({unit})")
        ax.set_ylabel(f"DV ({unit})")
    cw = diag["CWRES"].to_numpy()[obs]
    for ax, x, label in (
        (axes[1][0], t["TIME"].to_numpy()[obs], "time (h)"),
        (axes[1][1], diag["PRED"].to_numpy()[obs], f"PRED ({unit})"),
    ):
        ax.scatter(x, cw, s=6, alpha=0.5)
        ax.axhline(0, color="k", lw=1)
        ax.set_xlabel(label)
        ax.set_ylabel("CWRES")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def add_vpc_parser(sub) -> None:
    """Register ``insilico vpc`` on the CLI's sub-parsers."""
    v = sub.add_parser("vpc", help="visual predictive check of a model against a dataset")
    v.add_argument("model", help="model file (kind: model), e.g. a fit's fit.yaml")
    v.add_argument("--data", required=True, help="NONMEM-format CSV with observations")
    v.add_argument("--out", required=True, help="output directory (created)")
    v.add_argument("--replicates", type=int, default=200)
    v.add_argument("--bins", type=int, default=8, help="time bins (equal numbers of points)")
    v.add_argument("--seed", type=int, default=0)
    v.set_defaults(func=cmd_vpc)


def cmd_vpc(args: argparse.Namespace) -> int:
    """Run ``insilico vpc``; returns the exit code."""
    from insilico.fit.vpc import plot_vpc, vpc_table

    if not 20 <= args.replicates <= 10_000:
        raise SpecError("--replicates", args.replicates, "an integer from 20 to 10000")
    if not 1 <= args.bins <= 100:
        raise SpecError("--bins", args.bins, "an integer from 1 to 100")
    model, dataset, out = _model_and_data(args)
    tables = {}
    for name, corrected in (("vpc", False), ("pcvpc", True)):
        tables[name] = vpc_table(
            model,
            dataset,
            n_replicates=args.replicates,
            n_bins=args.bins,
            seed=args.seed,
            prediction_corrected=corrected,
        )
    out.mkdir(exist_ok=True)
    unit = model.data.dv_unit
    for name, table in tables.items():
        table.to_csv(out / f"{name}.csv", index=False)
        title = f"{model.name}: {'prediction-corrected ' if name == 'pcvpc' else ''}VPC"
        plot_vpc(table, out / f"{name}.png", title=title, ylabel=f"DV ({unit})")
    for name, table in tables.items():
        share = table["inside"].mean() if len(table) else float("nan")
        print(
            f"{name}: {int(table['inside'].sum())} of {len(table)} observed percentiles "
            f"({share:.0%}) inside the simulated 90 % intervals"
        )
    print(f"-> {out}")
    return 0


def cmd_twin(args: argparse.Namespace) -> int:
    """Run ``insilico twin``; returns the exit code."""
    from insilico.dataset import write_dataset
    from insilico.fit.forecast import forecast, parse_target, recommend_dose

    if (args.target is None) != (args.regimen is None):
        raise SpecError("--target/--regimen", args.target or args.regimen, "both or neither")
    target = parse_target(args.target) if args.target else None
    if not 20 <= args.draws <= 100_000:
        raise SpecError("--draws", args.draws, "an integer from 20 to 100000")
    if args.until is not None and not 0 <= args.until < float("inf"):
        raise SpecError("--until", args.until, "a time >= 0 h (observations up to it are used)")
    start = time.perf_counter()
    model, dataset, out = _model_and_data(args)
    fc, individual, post = forecast(
        model, dataset, until_h=args.until, n_draws=args.draws, seed=args.seed
    )
    doses = None
    if target is not None:
        rows = []
        for s in range(dataset.subjects()):
            r = recommend_dose(
                model, dataset, s, args.regimen, target, posterior=post, seed=args.seed
            )
            rows.append(
                {
                    "ID": individual["ID"].iloc[s],
                    "regimen": args.regimen.replace("X", f"{r['dose_mg']:.4g}"),
                    "dose_mg": r["dose_mg"],
                    f"p_{target.metric}_in_range": r["probability"],
                    f"median_{target.metric}": r["median"],
                }
            )
        import pandas as pd

        doses = pd.DataFrame(rows)
    out.mkdir(exist_ok=True)
    write_dataset(dataset.raw, fc, out / "forecast.csv")
    individual.to_csv(out / "individual.csv", index=False)
    if doses is not None:
        doses.to_csv(out / "dose.csv", index=False)
    summary = {
        "model": model.name,
        "subjects": dataset.subjects(),
        "observations_used": int(post.n_observations.sum()),
        "until_h": args.until,
        "converged": bool(post.converged.all()),
        "iterations": post.iterations,
        "runtime_s": round(time.perf_counter() - start, 3),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    n_bad = int((~post.converged).sum())
    note = f"; {n_bad} subject(s) did not converge (see individual.csv)" if n_bad else ""
    print(
        f"updated {dataset.subjects()} twin(s) from {summary['observations_used']} observations "
        f"in {summary['runtime_s']:.1f} s{note} -> {out}"
    )
    if target is not None and doses is not None:
        for row in doses.to_dict("records"):
            p = row[f"p_{target.metric}_in_range"]
            print(
                f"ID {row['ID']}: {row['regimen']}  P({target.metric} in "
                f"{target.lo:g}..{target.hi:g}) = {p:.0%}"
            )
    return 0
