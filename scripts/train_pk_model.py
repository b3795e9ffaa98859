"""Train the structure-based human PK model shipped in ``insilico/data/pk_model``.

Usage::

    PYTHONPATH=. python scripts/train_pk_model.py            # rewrites insilico/data/pk_model
    PYTHONPATH=. python scripts/train_pk_model.py --out /tmp/pk --n-trees 20 --limit 200

Reads ``../shared/data/human_pk_lombardo2018.csv`` (next to the repository root). Every step is
deterministic (fixed seeds; GroupKFold without shuffling), so the same inputs and
scikit-learn version give the same artifact. Writes

* ``model.npz``  -- forests as node arrays + packed training fingerprints (no pickles),
* ``meta.json``  -- feature names, calibration, applicability domain, CV metrics, provenance,
* ``oof_predictions.csv`` -- grouped 5-fold out-of-fold predictions with cross-conformal 90 %
  intervals and the training-median baseline, used by the tests and the benchmark.

See :mod:`insilico.chem.pk_model` for the method.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor
from sklearn.model_selection import GroupKFold

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from insilico.chem.model_features import (  # noqa: E402
    N_BITS,
    ModelFeatures,
    compute_model_features,
    feature_names,
    tanimoto_matrix,
)
from insilico.chem.pk_model import (  # noqa: E402
    ENDPOINTS,
    Forest,
    forest_to_arrays,
    interval_bounds,
    interval_sigma,
    inverse_transform,
    transform,
)

DATA_PATH = ROOT / ".." / "shared" / "data" / "human_pk_lombardo2018.csv"
OUT_DIR = ROOT / "insilico" / "data" / "pk_model"

SEED = 20180601
N_TREES = 150  # per forest type: the ensemble has 2 * N_TREES trees
N_SPLITS = 5
MIN_SAMPLES_LEAF = 3
MAX_FEATURES = 0.2
#: Applicability domain: nearest training neighbour at least this similar (Morgan-2, 2048 bits)
AD_MIN_TANIMOTO = 0.30
#: and these features inside the training range
AD_RANGE_FEATURES = ("MolWt", "MolLogP", "TPSA")
COVERAGE = 0.90


def group_of(inchikey: pd.Series) -> np.ndarray:
    """Cross-validation group: the InChIKey skeleton (first 14 characters)."""
    return inchikey.str[:14].to_numpy()


def fit_forest(x: np.ndarray, y: np.ndarray, n_trees: int, seed: int) -> Forest:
    """Random forest + extra-trees (``n_trees`` each), flattened to a :class:`Forest`."""
    common = dict(
        n_estimators=n_trees,
        max_features=MAX_FEATURES,
        min_samples_leaf=MIN_SAMPLES_LEAF,
        n_jobs=2,
    )
    rf = RandomForestRegressor(random_state=seed, **common).fit(x, y)
    et = ExtraTreesRegressor(random_state=seed + 1, **common).fit(x, y)
    trees = [e.tree_ for e in rf.estimators_] + [e.tree_ for e in et.estimators_]
    return Forest(**forest_to_arrays(trees))


def fit_sigma(r: np.ndarray, sd_trees: np.ndarray, nn_sim: np.ndarray) -> tuple[float, ...]:
    """Least squares of ln|residual| on (1, ln sd_trees, nn similarity)."""
    a = np.column_stack([np.ones_like(r), np.log(np.maximum(sd_trees, 1e-3)), nn_sim])
    coef, *_ = np.linalg.lstsq(a, np.log(np.abs(r) + 1e-6), rcond=None)
    return tuple(float(c) for c in coef)


def conformal_quantile(scores: np.ndarray, coverage: float = COVERAGE) -> float:
    """Finite-sample conformal quantile: the ceil((n+1) coverage)-th smallest score."""
    s = np.sort(scores)
    k = min(int(np.ceil((s.size + 1) * coverage)), s.size)
    return float(s[k - 1])


def calibrate(oof: pd.DataFrame) -> tuple[tuple[float, ...], float]:
    """Difficulty model and conformal quantile from out-of-fold residuals (transformed scale)."""
    r = (oof["obs_t"] - oof["pred_t"]).to_numpy()
    coef = fit_sigma(r, oof["sd_trees"].to_numpy(), oof["nn_tanimoto"].to_numpy())
    sigma = interval_sigma(coef, oof["sd_trees"].to_numpy(), oof["nn_tanimoto"].to_numpy())
    return coef, conformal_quantile(np.abs(r) / sigma)


def cross_validate(
    endpoint: str,
    y_t: np.ndarray,
    x: np.ndarray,
    bits: np.ndarray,
    groups: np.ndarray,
    rows: np.ndarray,
    n_trees: int,
    n_splits: int = N_SPLITS,
) -> pd.DataFrame:
    """Grouped K-fold out-of-fold predictions for one endpoint, with cross-conformal intervals.

    The interval of a compound in fold k uses a difficulty model and quantile fitted on the
    out-of-fold residuals of the other folds only, so the reported coverage is honest.
    """
    parts = []
    for fold, (trn, tst) in enumerate(GroupKFold(n_splits).split(x, y_t, groups)):
        forest = fit_forest(x[trn], y_t[trn], n_trees, SEED + 10 * fold)
        per_tree = forest.predict_trees(x[tst])
        nn = tanimoto_matrix(bits[tst], bits[trn]).max(axis=1)
        parts.append(
            pd.DataFrame(
                {
                    "endpoint": endpoint,
                    "row": rows[tst],
                    "fold": fold,
                    "obs_t": y_t[tst],
                    "pred_t": per_tree.mean(axis=1),
                    "sd_trees": per_tree.std(axis=1),
                    "nn_tanimoto": nn,
                    "baseline_t": np.median(y_t[trn]),
                }
            )
        )
    oof = pd.concat(parts, ignore_index=True)
    lo_t = np.empty(len(oof))
    hi_t = np.empty(len(oof))
    for fold in range(n_splits):
        here = (oof["fold"] == fold).to_numpy()
        coef, q = calibrate(oof[~here])
        half = q * interval_sigma(
            coef, oof.loc[here, "sd_trees"].to_numpy(), oof.loc[here, "nn_tanimoto"].to_numpy()
        )
        lo_t[here] = oof.loc[here, "pred_t"].to_numpy() - half
        hi_t[here] = oof.loc[here, "pred_t"].to_numpy() + half
    oof["lo_t"] = lo_t
    oof["hi_t"] = hi_t
    return oof


def _ad_flags(oof: pd.DataFrame, x: np.ndarray, ranges: dict[str, list[float]]) -> np.ndarray:
    names = feature_names()
    flag = oof["nn_tanimoto"].to_numpy() >= AD_MIN_TANIMOTO
    for feat, (lo, hi) in ranges.items():
        col = x[oof["row"].to_numpy(), names.index(feat)]
        flag &= (col >= lo) & (col <= hi)
    return flag


def metrics(obs: np.ndarray, pred: np.ndarray, endpoint: str) -> dict[str, float]:
    """Fold-error metrics on the original scale and R^2 on the log10 scale."""
    fe = np.abs(np.log10(pred / obs))
    lo, lp = np.log10(obs), np.log10(pred)
    return {
        "n": int(obs.size),
        "pct_within_2fold": float(100 * np.mean(fe <= np.log10(2))),
        "pct_within_3fold": float(100 * np.mean(fe <= np.log10(3))),
        "gmfe": float(10 ** np.mean(fe)),
        "r2_log10": float(1 - np.sum((lo - lp) ** 2) / np.sum((lo - lo.mean()) ** 2)),
    }


def summarize_oof(oof: pd.DataFrame) -> pd.DataFrame:
    """Benchmark table rows (model and training-median baseline) from out-of-fold results."""
    rows = []
    for ep in ENDPOINTS:
        o = oof[oof["endpoint"] == ep]
        if o.empty:
            continue
        obs = o["observed"].to_numpy()
        cover = (obs >= o["lo"].to_numpy()) & (obs <= o["hi"].to_numpy())
        dom = o["in_domain"].to_numpy(bool)
        m = metrics(obs, o["predicted"].to_numpy(), ep)
        m.update(
            endpoint=ep,
            model="ensemble",
            coverage_90=float(100 * cover.mean()),
            coverage_90_in_domain=float(100 * cover[dom].mean()) if dom.any() else np.nan,
            pct_in_domain=float(100 * dom.mean()),
            gmfe_in_domain=float(
                10 ** np.mean(np.abs(np.log10(o["predicted"] / o["observed"]))[dom])
            )
            if dom.any()
            else np.nan,
            median_interval_fold_width=float(np.median(o["hi"] / o["lo"])),
        )
        rows.append(m)
        b = metrics(obs, o["baseline"].to_numpy(), ep)
        b.update(endpoint=ep, model="training median")
        rows.append(b)
    return pd.DataFrame(rows)


def train(
    data: pd.DataFrame,
    feats: ModelFeatures,
    n_trees: int = N_TREES,
    n_splits: int = N_SPLITS,
) -> tuple[dict[str, np.ndarray], dict, pd.DataFrame]:
    """Cross-validate, calibrate and fit the final forests on all rows.

    Parameters
    ----------
    data : DataFrame
        The Lombardo table (``inchikey`` and the endpoint columns).
    feats : ModelFeatures
        Features of ``data.smiles`` (all valid).
    n_trees : int
        Trees per forest type.

    Returns
    -------
    arrays : dict of ndarray
        Contents of ``model.npz``.
    meta : dict
        Contents of ``meta.json``.
    oof : DataFrame
        Out-of-fold predictions (contents of ``oof_predictions.csv``).
    """
    if not feats.valid.all():
        raise ValueError("every training structure must featurize")
    groups = group_of(data["inchikey"])
    names = feature_names()
    ranges = {
        f: [float(np.min(feats.x[:, names.index(f)])), float(np.max(feats.x[:, names.index(f)]))]
        for f in AD_RANGE_FEATURES
    }
    arrays: dict[str, np.ndarray] = {}
    meta_eps: dict[str, dict] = {}
    oofs = []
    for ep in ENDPOINTS:
        has = data[ep].notna().to_numpy()
        rows = np.flatnonzero(has)
        y_t = transform(ep, data[ep].to_numpy()[has])
        x = feats.x[has]
        bits = feats.fp_bits[has]
        oof = cross_validate(ep, y_t, x, bits, groups[has], rows, n_trees, n_splits)
        coef, q = calibrate(oof)
        forest = fit_forest(x, y_t, n_trees, SEED)
        for k in Forest.__dataclass_fields__:
            arrays[f"{ep}__{k}"] = getattr(forest, k)
        oof["observed"] = data[ep].to_numpy()[oof["row"].to_numpy()]
        oof["predicted"] = inverse_transform(ep, oof["pred_t"].to_numpy())
        oof["lo"], oof["hi"] = interval_bounds(ep, oof["lo_t"].to_numpy(), oof["hi_t"].to_numpy())
        oof["baseline"] = inverse_transform(ep, oof["baseline_t"].to_numpy())
        oof["in_domain"] = _ad_flags(oof, feats.x, ranges)
        oofs.append(oof)
        meta_eps[ep] = {
            "transform": "logit10" if ep == "fu" else "log10",
            "n_train": int(has.sum()),
            "n_trees": int(forest.roots.size),
            "n_nodes": int(forest.left.size),
            "sigma_coef": list(coef),
            "q90": q,
        }
    oof_all = pd.concat(oofs, ignore_index=True)
    cols = ["endpoint", "row", "fold", "observed", "predicted", "lo", "hi", "baseline"]
    cols += ["nn_tanimoto", "sd_trees", "in_domain"]
    oof_all = oof_all[cols]
    arrays["train_bits_packed"] = np.packbits(feats.fp_bits, axis=1)
    summary = summarize_oof(oof_all)
    meta = {
        "model": "random forest + extra trees on RDKit descriptors and Morgan counts",
        "feature_names": names,
        "n_bits": N_BITS,
        "endpoints": meta_eps,
        "applicability_domain": {"min_nn_tanimoto": AD_MIN_TANIMOTO, "ranges": ranges},
        "training": {
            "seed": SEED,
            "n_trees_per_forest_type": n_trees,
            "n_splits": n_splits,
            "min_samples_leaf": MIN_SAMPLES_LEAF,
            "max_features": MAX_FEATURES,
            "n_compounds": len(data),
        },
        "cv_metrics": json.loads(summary.to_json(orient="records")),
    }
    return arrays, meta, oof_all


def write_artifact(out_dir: Path, arrays: dict, meta: dict, oof: pd.DataFrame) -> None:
    """Write ``model.npz``, ``meta.json`` and ``oof_predictions.csv`` to ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out_dir / "model.npz", **arrays)
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    oof.to_csv(out_dir / "oof_predictions.csv", index=False, float_format="%.6g")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=DATA_PATH)
    p.add_argument("--out", type=Path, default=OUT_DIR)
    p.add_argument("--n-trees", type=int, default=N_TREES)
    p.add_argument("--limit", type=int, default=None, help="use only the first N rows")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    raw = args.data.read_bytes()
    data = pd.read_csv(args.data)
    if args.limit:
        data = data.iloc[: args.limit].reset_index(drop=True)
    feats = compute_model_features(list(data["smiles"]))
    arrays, meta, oof = train(data, feats, n_trees=args.n_trees)
    meta["training"]["data_file"] = args.data.name
    meta["training"]["data_sha256"] = hashlib.sha256(raw).hexdigest()
    meta["training"]["limit"] = args.limit
    meta["training"]["scikit_learn_version"] = sklearn.__version__
    write_artifact(args.out, arrays, meta, oof)
    pd.set_option("display.width", 200)
    print(pd.DataFrame(meta["cv_metrics"]).round(3).to_string(index=False))
    print(f"wrote {args.out} in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
