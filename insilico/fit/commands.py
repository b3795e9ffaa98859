"""``insilico twin``: update each patient's twin from their data, forecast, choose a dose."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from insilico.errors import SpecError


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


def cmd_twin(args: argparse.Namespace) -> int:
    """Run ``insilico twin``; returns the exit code."""
    from insilico.dataset import read_dataset, write_dataset
    from insilico.fit.forecast import forecast, parse_target, recommend_dose
    from insilico.model import load_model

    if (args.target is None) != (args.regimen is None):
        raise SpecError("--target/--regimen", args.target or args.regimen, "both or neither")
    target = parse_target(args.target) if args.target else None
    if not 20 <= args.draws <= 100_000:
        raise SpecError("--draws", args.draws, "an integer from 20 to 100000")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise SpecError("--out", args.out, "a directory (created if missing)")
    if not out.parent.is_dir():
        raise SpecError("--out", args.out, "a directory in an existing directory")
    start = time.perf_counter()
    model = load_model(args.model)
    dataset = read_dataset(args.data, compartments=model.compartment_map())
    table = dataset.table
    obs = (table["EVID"] == 0) & (table["MDV"] == 0) & table["DV"].notna()
    if not obs.any():
        raise SpecError("--data", args.data, "records with observations (EVID 0, a DV)")
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
    if doses is not None:
        for row in doses.to_dict("records"):
            p = row[f"p_{target.metric}_in_range"]
            print(
                f"ID {row['ID']}: {row['regimen']}  P({target.metric} in "
                f"{target.lo:g}..{target.hi:g}) = {p:.0%}"
            )
    return 0
