"""Human intravenous PK parameters predicted from structure, with 90 % prediction intervals.

Model
-----
Per endpoint (VDss, total plasma clearance, fraction unbound in plasma, terminal half-life)
one tree ensemble -- a random forest and an extremely randomized forest with the same number of
trees, averaged -- regresses the transformed value (log10 for VDss, CL and t1/2; logit10 for
fu) on RDKit descriptors, ionizable-group counts and Morgan count fingerprints
(:mod:`insilico.chem.model_features`). Half-life is predicted directly, not derived from the
predicted VDss and CL (the derived value is biased about 2x low on this data).

Training data: Lombardo F, Berellini G, Obach RS. Trend analysis of a database of intravenous
pharmacokinetic parameters in humans for 1352 drug compounds. Drug Metab Dispos 2018;
46:1466-1477, doi:10.1124/dmd.118.082966, as curated in PKSmart (Seal S et al., doi:
10.1186/s13321-024-00914-7). Trees: Breiman L, doi:10.1023/A:1010933404324; Geurts P et al.,
doi:10.1007/s10994-006-6226-1.

Uncertainty
-----------
Normalized cross-conformal intervals (Papadopoulos H et al. 2011,
doi:10.1613/jair.3198): out-of-fold residuals of a grouped 5-fold cross-validation (groups =
first 14 characters of the InChIKey) are divided by a per-compound difficulty
``sigma = exp(b0 + b1 ln(sd_trees) + b2 s_nn)`` (``sd_trees``: spread of the tree predictions,
``s_nn``: Tanimoto similarity to the nearest training compound), and the 90 % quantile ``q``
of those scores gives the interval ``pred +- q sigma`` on the transformed scale.
``X_sd_log`` is the natural-log SD of the lognormal with the same 90 % interval,
``(ln X_hi - ln X_lo) / (2 * 1.645)``, for sampling in the trial. For fu the model scale
saturates at 0.99 (measured values of 1 are clipped there), so an upper end at or above 0.99
is reported as 1.

Applicability domain: a structure is in domain when its nearest training neighbour has
Morgan-2 Tanimoto similarity of at least the stored threshold (0.30) and its molecular weight,
Crippen logP and TPSA lie within the training range.

The artifact is plain NPZ + JSON (no pickle): the forests are stored as node arrays and
evaluated here with numpy, so loading does not depend on the scikit-learn version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from insilico.chem.model_features import (
    N_BITS,
    compute_model_features,
    feature_names,
    tanimoto_matrix,
)

#: Endpoints, in output column order.
ENDPOINTS: tuple[str, ...] = ("vdss_L_per_kg", "cl_mL_min_kg", "fu", "t_half_h")
#: Standard-normal 95th percentile: a two-sided 90 % interval is +-Z90 SD.
Z90 = 1.6448536269514722
#: Bounds applied to fu before the logit transform (fu = 1 is common in the data).
FU_CLIP = (1e-4, 0.99)

DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[1] / "data" / "pk_model"


def transform(endpoint: str, value: np.ndarray) -> np.ndarray:
    """Value on the modelling scale: logit10 for fu, log10 otherwise."""
    value = np.asarray(value, dtype=np.float64)
    if endpoint == "fu":
        v = np.clip(value, *FU_CLIP)
        return np.log10(v / (1.0 - v))
    return np.log10(value)


def inverse_transform(endpoint: str, t: np.ndarray) -> np.ndarray:
    """Inverse of :func:`transform`."""
    t = np.asarray(t, dtype=np.float64)
    if endpoint == "fu":
        return 1.0 / (1.0 + 10.0 ** (-t))
    return 10.0**t


def interval_bounds(endpoint: str, lo_t: np.ndarray, hi_t: np.ndarray) -> tuple[np.ndarray, ...]:
    """Interval ends on the original scale from ends on the transformed scale.

    For fu the model scale saturates at ``FU_CLIP[1]`` (training values of 1 were clipped
    there), so an upper end at or above it means "up to 1": it is reported as 1.0.
    """
    lo = inverse_transform(endpoint, lo_t)
    hi = inverse_transform(endpoint, hi_t)
    if endpoint == "fu":
        hi = np.where(hi >= FU_CLIP[1], 1.0, hi)
    return lo, hi


@dataclass(frozen=True)
class Forest:
    """A fitted tree ensemble as flat node arrays (all trees concatenated).

    Attributes
    ----------
    left, right : ndarray of int32, shape (n_nodes,)
        Global index of the children; -1 at leaves.
    feature : ndarray of int16, shape (n_nodes,)
        Feature column tested at the node (0 at leaves).
    threshold : ndarray of float32, shape (n_nodes,)
        Go left when ``x[feature] <= threshold``. Stored rounded down to float32, which
        gives the same decisions as scikit-learn's float64 threshold on float32 features.
    value : ndarray of float32, shape (n_nodes,)
        Node prediction (used at leaves).
    roots : ndarray of int32, shape (n_trees,)
        Index of each tree's root.
    """

    left: np.ndarray
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    value: np.ndarray
    roots: np.ndarray

    def predict_trees(self, x: np.ndarray, chunk: int = 2048) -> np.ndarray:
        """Per-tree predictions, shape (n_samples, n_trees), vectorized over samples and trees.

        Parameters
        ----------
        x : ndarray of float32, shape (n_samples, n_features)
        """
        x = np.asarray(x, dtype=np.float32)
        n_trees = self.roots.size
        out = np.empty((x.shape[0], n_trees), dtype=np.float64)
        left, right, feature, threshold = self.left, self.right, self.feature, self.threshold
        for start in range(0, x.shape[0], chunk):
            xc = np.ascontiguousarray(x[start : start + chunk])
            n, n_feat = xc.shape
            x_flat = xc.ravel()
            node = np.tile(self.roots, n).astype(np.int64)  # (sample, tree) flattened
            row_offset = np.repeat(np.arange(n, dtype=np.int64) * n_feat, n_trees)
            active = np.flatnonzero(left[node] >= 0)
            while active.size:
                nd = node[active]
                go_left = x_flat[row_offset[active] + feature[nd]] <= threshold[nd]
                nxt = np.where(go_left, left[nd], right[nd])
                node[active] = nxt
                active = active[left[nxt] >= 0]
            node = node.reshape(n, n_trees)
            out[start : start + chunk] = self.value[node]
        return out


@dataclass(frozen=True)
class EndpointModel:
    """One endpoint: forest, conformal calibration and fit statistics."""

    endpoint: str
    forest: Forest
    sigma_coef: tuple[float, float, float]  # b0, b1 (ln sd_trees), b2 (nn similarity)
    q90: float  # conformal quantile of |residual| / sigma


@dataclass(frozen=True)
class StructurePKModel:
    """The structure-based PK predictor as loaded from its artifact (see :func:`load_pk_model`;
    not the compartment model, :class:`insilico.pk.models.PKModel`)."""

    endpoints: dict[str, EndpointModel]
    train_bits: np.ndarray  # bool, (n_train, N_BITS)
    ad_similarity_threshold: float
    ad_ranges: dict[str, tuple[float, float]]  # feature name -> (min, max) in training
    meta: dict


def _sd_floor(sd: np.ndarray) -> np.ndarray:
    return np.maximum(sd, 1e-3)


def interval_sigma(
    coef: tuple[float, float, float], sd_trees: np.ndarray, nn_sim: np.ndarray
) -> np.ndarray:
    """Per-compound difficulty ``sigma = exp(b0 + b1 ln(sd_trees) + b2 s_nn)``."""
    b0, b1, b2 = coef
    return np.exp(b0 + b1 * np.log(_sd_floor(sd_trees)) + b2 * nn_sim)


def forest_to_arrays(trees: list) -> dict[str, np.ndarray]:
    """Flatten fitted scikit-learn regression trees (``tree_`` objects) into node arrays.

    Parameters
    ----------
    trees : list of sklearn.tree._tree.Tree
        The ``tree_`` attribute of each fitted ``DecisionTreeRegressor``/``ExtraTreeRegressor``.

    Returns
    -------
    dict of ndarray
        ``left, right, feature, threshold, value, roots`` as in :class:`Forest`.
    """
    lefts, rights, feats, thrs, vals, roots = [], [], [], [], [], []
    offset = 0
    for t in trees:
        leaf = t.children_left < 0
        lefts.append(np.where(leaf, -1, t.children_left + offset))
        rights.append(np.where(leaf, -1, t.children_right + offset))
        feats.append(np.where(leaf, 0, t.feature))
        thr64 = np.where(leaf, 0.0, t.threshold)
        thr32 = thr64.astype(np.float32)
        # float32 x <= thr64  <=>  x <= largest float32 not above thr64
        above = thr32.astype(np.float64) > thr64
        thr32[above] = np.nextafter(thr32[above], np.float32(-np.inf))
        thrs.append(thr32)
        vals.append(t.value[:, 0, 0].astype(np.float32))
        roots.append(offset)
        offset += t.node_count
    return {
        "left": np.concatenate(lefts).astype(np.int32),
        "right": np.concatenate(rights).astype(np.int32),
        "feature": np.concatenate(feats).astype(np.int16),
        "threshold": np.concatenate(thrs).astype(np.float32),
        "value": np.concatenate(vals).astype(np.float32),
        "roots": np.asarray(roots, dtype=np.int32),
    }


def load_pk_model(model_dir: str | Path | None = None) -> StructurePKModel:
    """Load the PK model artifact (``model.npz`` + ``meta.json``) without unpickling.

    Parameters
    ----------
    model_dir : path, optional
        Folder with the artifact; default: the one shipped in ``insilico/data/pk_model``.

    Returns
    -------
    StructurePKModel

    Raises
    ------
    ValueError
        If the artifact was trained with a different feature layout.
    """
    model_dir = Path(model_dir) if model_dir is not None else DEFAULT_MODEL_DIR
    return _load_cached(str(model_dir.resolve()))


@lru_cache(maxsize=4)
def _load_cached(model_dir: str) -> StructurePKModel:
    d = Path(model_dir)
    meta = json.loads((d / "meta.json").read_text())
    if meta["feature_names"] != feature_names():
        raise ValueError(
            f"{d}: the model's feature layout differs from insilico.chem.model_features; "
            "retrain with scripts/train_pk_model.py"
        )
    with np.load(d / "model.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    endpoints = {}
    for ep in ENDPOINTS:
        forest = Forest(**{k: arrays[f"{ep}__{k}"] for k in Forest.__dataclass_fields__})
        cal = meta["endpoints"][ep]
        endpoints[ep] = EndpointModel(
            endpoint=ep,
            forest=forest,
            sigma_coef=tuple(cal["sigma_coef"]),
            q90=float(cal["q90"]),
        )
    bits = np.unpackbits(arrays["train_bits_packed"], axis=1, count=N_BITS).astype(bool)
    return StructurePKModel(
        endpoints=endpoints,
        train_bits=bits,
        ad_similarity_threshold=float(meta["applicability_domain"]["min_nn_tanimoto"]),
        ad_ranges={k: tuple(v) for k, v in meta["applicability_domain"]["ranges"].items()},
        meta=meta,
    )


def predict_endpoint(
    model: EndpointModel, x: np.ndarray, nn_sim: np.ndarray
) -> dict[str, np.ndarray]:
    """Point prediction and 90 % interval for one endpoint, on the original scale.

    Parameters
    ----------
    model : EndpointModel
    x : ndarray of float32, shape (n, n_features)
    nn_sim : ndarray, shape (n,)
        Tanimoto similarity to the nearest training compound.

    Returns
    -------
    dict
        ``pred, lo, hi, sd_log`` (original units; ``sd_log`` natural-log scale) and
        ``pred_t, sd_trees, sigma`` on the transformed scale.
    """
    per_tree = model.forest.predict_trees(x)
    pred_t = per_tree.mean(axis=1)
    sd_trees = per_tree.std(axis=1)
    sigma = interval_sigma(model.sigma_coef, sd_trees, nn_sim)
    half = model.q90 * sigma
    lo, hi = interval_bounds(model.endpoint, pred_t - half, pred_t + half)
    with np.errstate(divide="ignore"):
        sd_log = (np.log(hi) - np.log(lo)) / (2.0 * Z90)
    return {
        "pred": inverse_transform(model.endpoint, pred_t),
        "lo": lo,
        "hi": hi,
        "sd_log": sd_log,
        "pred_t": pred_t,
        "sd_trees": sd_trees,
        "sigma": sigma,
    }


def predict_human_pk(
    smiles: list[str] | tuple[str, ...] | pd.Series, model_dir: str | Path | None = None
) -> pd.DataFrame:
    """Predict human IV PK parameters from structures, with 90 % prediction intervals.

    Parameters
    ----------
    smiles : sequence of str
        One SMILES per compound; salts are stripped and charges neutralized first.
    model_dir : path, optional
        Artifact folder (default: the shipped model).

    Returns
    -------
    pandas.DataFrame
        One row per input, same order and index 0..n-1, with columns
        ``vdss_L_per_kg`` (L/kg), ``cl_mL_min_kg`` (total plasma clearance, mL/min/kg),
        ``fu`` (fraction unbound in plasma, 0-1), ``t_half_h`` (terminal half-life, h); for
        each ``X`` also ``X_lo``/``X_hi`` (90 % prediction interval) and ``X_sd_log``
        (natural-log SD of the predictive lognormal); ``nn_tanimoto`` (similarity to the
        nearest training compound), ``in_domain`` (bool) and ``error`` (``""`` when fine,
        else the reason; predictions are NaN then).

    Examples
    --------
    >>> df = predict_human_pk(["CC(=O)Oc1ccccc1C(=O)O"])  # doctest: +SKIP
    >>> df.loc[0, "vdss_L_per_kg"]  # doctest: +SKIP
    """
    smiles = list(smiles)
    model = load_pk_model(model_dir)
    feats = compute_model_features(smiles)
    n = len(smiles)
    ok = feats.valid
    xv = feats.x[ok]
    nn_sim = np.full(n, np.nan)
    if ok.any():
        sim = tanimoto_matrix(feats.fp_bits[ok], model.train_bits)
        nn_sim[ok] = sim.max(axis=1)
    out: dict[str, np.ndarray] = {}
    for ep in ENDPOINTS:
        cols = {c: np.full(n, np.nan) for c in ("pred", "lo", "hi", "sd_log")}
        if ok.any():
            r = predict_endpoint(model.endpoints[ep], xv, nn_sim[ok])
            for c in cols:
                cols[c][ok] = r[c]
        out[ep] = cols["pred"]
        out[f"{ep}_lo"] = cols["lo"]
        out[f"{ep}_hi"] = cols["hi"]
        out[f"{ep}_sd_log"] = cols["sd_log"]
    in_domain = ok & (nn_sim >= model.ad_similarity_threshold)
    names = feature_names()
    for feat, (lo, hi) in model.ad_ranges.items():
        col = feats.x[:, names.index(feat)]
        in_domain &= (col >= lo) & (col <= hi)
    out["nn_tanimoto"] = nn_sim
    df = pd.DataFrame(out)
    df["in_domain"] = in_domain
    df["error"] = pd.Series(feats.error, dtype=object)
    return df
