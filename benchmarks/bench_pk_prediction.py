"""How good is the structure-based human PK model? Prints its accuracy table.

Per endpoint, from grouped (InChIKey skeleton) 5-fold cross-validation on the Lombardo 2018
set: n, % within 2-fold, % within 3-fold, geometric mean fold error (GMFE), R^2 of log10
values, coverage of the 90 % intervals, for the model and for the training-median baseline;
then GMFE and coverage by similarity to the training set, half-life derived from predicted
VDss and CL for comparison, and prediction speed.

Usage::

    PYTHONPATH=. python benchmarks/bench_pk_prediction.py              # stored OOF results
    PYTHONPATH=. python benchmarks/bench_pk_prediction.py --recompute  # rerun the CV (~4 min)

Anchor: PKSmart (random forest, same data; Seal et al. 2024, doi:10.1186/s13321-024-00914-7)
reached GMFE about 2.7 (VDss, CL), 4.1 (fu) and 3.3 (t1/2) on compounds outside its training set.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from insilico.chem.pk_model import DEFAULT_MODEL_DIR, ENDPOINTS, predict_human_pk  # noqa: E402

DATA = ROOT / ".." / "shared" / "data" / "human_pk_lombardo2018.csv"
ANCHOR_GMFE = {"vdss_L_per_kg": 2.7, "cl_mL_min_kg": 2.7, "fu": 4.1, "t_half_h": 3.3}
TARGET_GMFE = {"vdss_L_per_kg": 2.2, "cl_mL_min_kg": 2.2, "fu": 2.3, "t_half_h": 2.3}


def _train_module():
    spec = importlib.util.spec_from_file_location(
        "train_pk_model", ROOT / "scripts" / "train_pk_model.py"
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules["train_pk_model"] = mod
    spec.loader.exec_module(mod)
    return mod


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--recompute", action="store_true", help="rerun the training CV")
    p.add_argument("--n-speed", type=int, default=5000, help="compounds for the speed test")
    args = p.parse_args(argv)
    train = _train_module()
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 30)

    if args.recompute:
        with tempfile.TemporaryDirectory() as tmp:
            train.main(["--out", tmp])
            oof = pd.read_csv(Path(tmp) / "oof_predictions.csv")
    else:
        oof = pd.read_csv(DEFAULT_MODEL_DIR / "oof_predictions.csv")

    table = train.summarize_oof(oof)
    table["anchor_gmfe"] = table["endpoint"].map(ANCHOR_GMFE).where(table["model"] == "ensemble")
    table["target_gmfe"] = table["endpoint"].map(TARGET_GMFE).where(table["model"] == "ensemble")
    cols = ["endpoint", "model", "n", "pct_within_2fold", "pct_within_3fold", "gmfe", "r2_log10"]
    cols += ["coverage_90", "median_interval_fold_width", "anchor_gmfe", "target_gmfe"]
    print("Grouped 5-fold CV (groups: InChIKey skeleton), Lombardo 2018 human IV PK\n")
    print(table[cols].round(2).to_string(index=False))

    print("\nApplicability domain (out-of-fold):")
    dom = table[table["model"] == "ensemble"][
        ["endpoint", "pct_in_domain", "gmfe_in_domain", "coverage_90_in_domain"]
    ]
    out_rows = []
    for ep in ENDPOINTS:
        o = oof[(oof["endpoint"] == ep) & ~oof["in_domain"]]
        fe = np.abs(np.log10(o["predicted"] / o["observed"]))
        cov = (o["observed"] >= o["lo"]) & (o["observed"] <= o["hi"])
        out_rows.append(
            {
                "endpoint": ep,
                "gmfe_out_of_domain": 10 ** fe.mean(),
                "coverage_90_out": 100 * cov.mean(),
            }
        )
    print(dom.merge(pd.DataFrame(out_rows), on="endpoint").round(2).to_string(index=False))

    print("\nBy Tanimoto similarity to the nearest training compound (out-of-fold):")
    rows = []
    bins = [0, 0.3, 0.4, 0.6, 1.01]
    for ep in ENDPOINTS:
        o = oof[oof["endpoint"] == ep]
        fe = np.abs(np.log10(o["predicted"] / o["observed"]))
        cov = (o["observed"] >= o["lo"]) & (o["observed"] <= o["hi"])
        b = pd.cut(o["nn_tanimoto"], bins, right=False)
        g = pd.DataFrame({"fe": fe, "cov": cov, "w": o["hi"] / o["lo"], "b": b}).groupby(
            "b", observed=True
        )
        for interval, d in g:
            rows.append(
                {
                    "endpoint": ep,
                    "similarity": str(interval),
                    "n": len(d),
                    "gmfe": 10 ** d["fe"].mean(),
                    "coverage_90": 100 * d["cov"].mean(),
                    "median_width_fold": d["w"].median(),
                }
            )
    print(pd.DataFrame(rows).round(2).to_string(index=False))

    # half-life derived from predicted VDss and CL (t1/2 = ln2 VDss / CL), for comparison
    v = oof[oof["endpoint"] == "vdss_L_per_kg"].set_index("row")
    c = oof[oof["endpoint"] == "cl_mL_min_kg"].set_index("row")
    t = oof[oof["endpoint"] == "t_half_h"].set_index("row")
    common = t.index.intersection(v.index).intersection(c.index)
    cl_L_per_h_kg = c.loc[common, "predicted"] * 60.0 / 1000.0
    derived = np.log(2) * v.loc[common, "predicted"] / cl_L_per_h_kg
    obs = t.loc[common, "observed"]
    ratio = np.log10(derived / obs)
    direct = np.log10(t.loc[common, "predicted"] / obs)
    print(
        f"\nHalf-life on {len(common)} compounds: direct GMFE {10 ** np.abs(direct).mean():.2f} "
        f"(median pred/obs {10 ** np.median(direct):.2f}); derived from predicted VDss/CL GMFE "
        f"{10 ** np.abs(ratio).mean():.2f} (median pred/obs {10 ** np.median(ratio):.2f})"
    )

    if DATA.exists() and args.n_speed > 0:
        smiles = pd.read_csv(DATA)["smiles"].tolist()
        smiles = (smiles * (args.n_speed // len(smiles) + 1))[: args.n_speed]
        predict_human_pk(smiles[:10])  # load the artifact once
        t0 = time.perf_counter()
        predict_human_pk(smiles)
        dt = time.perf_counter() - t0
        print(
            f"\npredict_human_pk: {len(smiles)} compounds in {dt:.1f} s ({len(smiles) / dt:.0f}/s)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
