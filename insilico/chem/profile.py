"""Compound profiles: the PK parameters a twin needs, each with its source and uncertainty.

Per parameter, field by field, the first available of:

1. ``measured`` — a value in the compound table (``insilico.chem.io`` columns). Two of CL,
   Vss and t½ measured give the third (``t½ = ln2 Vss / CL``), also ``measured``.
   Uncertainty 0 unless the table has a ``<field>_sd_log`` column.
   ``literature`` — a known drug's published human value (:mod:`insilico.chem.known_drugs`,
   matched by InChIKey) for CL, Vss, fu and t½ the table leaves empty (unless the row says
   ``use_known_pk`` false), with what is derived from it; the method names the drug.
2. ``in-vitro`` — mechanism from in-vitro inputs (:mod:`insilico.chem.mechanistic`):
   CL from hepatocyte or microsomal intrinsic clearance by the well-stirred model plus the
   renal route (``fu x GFR``, or ``fe`` when measured); Vss from Schmitt tissue partitioning
   when ``fu`` is measured (logP from ``logd74`` when measured, else Crippen; pKa from
   ``pka`` when measured, else the class value). Schmitt Vss is not used when logP >= 4
   (measured on 722 Lombardo 2018 drugs with measured fu: RMS log error 1.2 and GMFE 2.5
   below logP 4, 2.7 and GMFE 6.9 above) if a structure-based prediction exists.
3. ``predicted`` — the structure-based model
   :func:`insilico.chem.pk_model.predict_human_pk` (VDss, CL, fu, t½ with log-scale
   uncertainty), and structure rules for oral absorption (Fa from TPSA, ka from Fa, see
   ``mechanistic.fraction_absorbed_tpsa``/``ka_from_fa``), F = Fa·Fg·Fh with Fh from CL.

A compound needs at least CL and V; otherwise it is returned in ``failed`` with
``missing PK parameter cl_L_per_h (no measured value, no prediction)``.

All uncertainties ``sd_log`` are standard deviations on the natural-log scale of the
parameter's typical value (uncertainty about the compound, not between-patient variability).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from insilico.chem import mechanistic as mech
from insilico.chem.descriptors import compute_descriptors
from insilico.chem.known_drugs import REFERENCE, match_known_drugs
from insilico.errors import InsilicoError
from insilico.units import mL_min_kg_to_L_per_h

log = logging.getLogger(__name__)

#: Where a value comes from, most direct first: the user's measurement, a known drug's
#: published human value (:mod:`insilico.chem.known_drugs`), in-vitro scaling, prediction.
SOURCES = ("measured", "literature", "in-vitro", "predicted")
REFERENCE_WEIGHT_KG = mech.REFERENCE_WEIGHT_KG
LN2 = math.log(2.0)
Z90 = 1.6448536269514722  # standard normal 95th percentile (90 % two-sided interval)

# Uncertainty of the mechanistic estimates (natural-log scale), with where it comes from.
IVIVE_CL_SD_LOG = 0.9
"""Well-stirred IVIVE of hepatic clearance: typically within 2-3 fold with a systematic
under-prediction (Hallifax, Foster & Houston 2010, Pharm Res 27:2150); GMFE ~2 -> 0.9."""
SCHMITT_VSS_SD_LOG = 1.2
"""Schmitt + Pearce 2017 Vss, logP < 4, measured here on 577 Lombardo 2018 drugs with
measured fu (root-mean-square log error; GMFE 2.5, bias 1.14x, +-1.645 sd covers 90 %)."""
SCHMITT_VSS_SD_LOG_HIGH_LOGP = 2.7
"""The same for logP >= 4 (145 drugs; GMFE 6.9, systematic over-prediction ~2.5x)."""
SCHMITT_MAX_LOGP = 4.0

PK_FIELDS = (
    "cl_L_per_h",
    "v_L",
    "fu",
    "ka_per_h",
    "f_bio",
    "t_half_h",
    "fe",
    "potency_mg_per_L",
    "herg_ic50_mg_per_L",
)

MISSING_REASON = "missing PK parameter {field} (no measured value, no prediction)"


@dataclass(frozen=True)
class PKParameter:
    """One PK parameter of a compound.

    Attributes
    ----------
    value : float
        Typical value, in the unit of the field name that holds it.
    source : str
        ``measured``, ``in-vitro`` or ``predicted``.
    sd_log : float
        Uncertainty of ``value``: SD on the natural-log scale (0 for a measured value).
    method : str
        How it was obtained (free text, for reports).
    """

    value: float
    source: str
    sd_log: float = 0.0
    method: str = ""

    def __post_init__(self):
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {self.source!r}")
        if not (self.sd_log >= 0 and math.isfinite(self.sd_log)):
            raise ValueError(f"sd_log must be finite and >= 0, got {self.sd_log!r}")


@dataclass(frozen=True)
class CompoundProfile:
    """Everything the twin needs to know about one compound (70 kg reference adult).

    ``cl_L_per_h`` and ``v_L`` (Vss) are always present; the other parameters are ``None``
    when unknown. ``in_domain`` is the structure model's applicability-domain flag (``None``
    when the model was not used).
    """

    id: str
    name: str
    smiles: str
    mw_g_per_mol: float
    cl_L_per_h: PKParameter
    v_L: PKParameter
    fu: PKParameter | None = None
    ka_per_h: PKParameter | None = None
    f_bio: PKParameter | None = None
    t_half_h: PKParameter | None = None
    fe: PKParameter | None = None
    potency_mg_per_L: PKParameter | None = None
    herg_ic50_mg_per_L: PKParameter | None = None
    in_domain: bool | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_record(self) -> dict[str, object]:
        """Flat dict: ``<field>``, ``<field>_source``, ``<field>_sd_log`` per PK field."""
        rec: dict[str, object] = {
            "id": self.id,
            "name": self.name,
            "smiles": self.smiles,
            "mw_g_per_mol": self.mw_g_per_mol,
        }
        for f in PK_FIELDS:
            p = getattr(self, f)
            rec[f] = p.value if p is not None else np.nan
            rec[f"{f}_source"] = p.source if p is not None else ""
            rec[f"{f}_sd_log"] = p.sd_log if p is not None else np.nan
        rec["in_domain"] = self.in_domain
        rec["notes"] = "; ".join(self.notes)
        return rec


def profiles_to_frame(profiles: list[CompoundProfile]) -> pd.DataFrame:
    """One row per profile (see :meth:`CompoundProfile.to_record`)."""
    return pd.DataFrame([p.to_record() for p in profiles])


# ------------------------------------------------------------------ structure model
PREDICTED_ENDPOINTS = ("vdss_L_per_kg", "cl_mL_min_kg", "fu", "t_half_h")


def _empty_predictions(n: int, error: str) -> pd.DataFrame:
    df = pd.DataFrame({c: np.full(n, np.nan) for c in PREDICTED_ENDPOINTS})
    for c in PREDICTED_ENDPOINTS:
        df[f"{c}_sd_log"] = np.nan
    df["in_domain"] = pd.array([None] * n, dtype="boolean")
    df["error"] = error
    return df


def run_structure_model(smiles: list[str]) -> pd.DataFrame:
    """Call ``insilico.chem.pk_model.predict_human_pk``; never raises.

    Returns the model's frame (one row per SMILES) with ``<endpoint>_sd_log`` filled from
    the 90 % interval when the model does not give it; if the model cannot be imported or
    fails, a frame of NaN whose ``error`` says why.
    """
    if not smiles:
        return _empty_predictions(0, "")
    try:
        from insilico.chem.pk_model import predict_human_pk
    except Exception as exc:  # not written yet, or a broken artifact
        log.warning("structure-based PK model unavailable: %s", exc)
        return _empty_predictions(len(smiles), f"PK model unavailable: {exc}")
    try:
        pred = predict_human_pk(list(smiles)).reset_index(drop=True)
    except Exception as exc:
        log.warning("structure-based PK model failed: %s", exc)
        return _empty_predictions(len(smiles), f"PK model failed: {exc}")
    if len(pred) != len(smiles):
        return _empty_predictions(len(smiles), "PK model returned the wrong number of rows")
    pred = pred.copy()
    for c in PREDICTED_ENDPOINTS:
        if c not in pred.columns:
            pred[c] = np.nan
        sd = f"{c}_sd_log"
        if sd not in pred.columns or pred[sd].isna().all():
            lo, hi = f"{c}_lo", f"{c}_hi"
            if lo in pred.columns and hi in pred.columns:
                with np.errstate(divide="ignore", invalid="ignore"):
                    pred[sd] = np.log(pred[hi].astype(float) / pred[lo].astype(float)) / (2 * Z90)
            else:
                pred[sd] = np.nan
    if "error" not in pred.columns:
        pred["error"] = ""
    pred["error"] = pred["error"].fillna("").astype(str)
    if "in_domain" not in pred.columns:
        pred["in_domain"] = pd.array([None] * len(pred), dtype="boolean")
    return pred


# ------------------------------------------------------------------ helpers
def _num(row: pd.Series, col: str) -> float:
    if col not in row.index:
        return math.nan
    try:
        x = float(row[col])
    except (TypeError, ValueError):
        return math.nan
    return x


def _ok(x: float) -> bool:
    return math.isfinite(x) and x > 0


def _measured(row: pd.Series, col: str, value: float, method: str = "") -> PKParameter:
    sd = _num(row, f"{col}_sd_log")
    return PKParameter(
        float(value), "measured", sd if math.isfinite(sd) and sd >= 0 else 0.0, method
    )


def _pred_param(pred: pd.Series | None, col: str, scale: float, method: str):
    if pred is None or pred.get("error", ""):
        return None
    v = _num(pred, col)
    sd = _num(pred, f"{col}_sd_log")
    if not _ok(v):
        return None
    return PKParameter(v * scale, "predicted", sd if math.isfinite(sd) else 1.0, method)


def _logp_and_pka(row: pd.Series, desc: pd.Series) -> tuple[float, float, float, str]:
    pka_a, pka_b = float(desc["pka_acid_approx"]), float(desc["pka_base_approx"])
    cls = str(desc["ionization_class"])
    pka = _num(row, "pka")
    if math.isfinite(pka):
        if cls == "acid":
            pka_a = pka
        elif cls == "base":
            pka_b = pka
    logd = _num(row, "logd74")
    if math.isfinite(logd):
        return float(mech.logp_from_logd(logd, pka_a, pka_b)), pka_a, pka_b, "logD7.4"
    return float(desc["clogp"]), pka_a, pka_b, "Crippen logP"


# ------------------------------------------------------------------ one compound
def _profile_one(
    row: pd.Series, desc: pd.Series, pred: pd.Series | None
) -> tuple[CompoundProfile | None, str]:
    notes: list[str] = []
    w = REFERENCE_WEIGHT_KG

    # fu
    fu_m = _num(row, "fu")
    fu = (
        _measured(row, "fu", fu_m) if _ok(fu_m) else _pred_param(pred, "fu", 1.0, "structure model")
    )

    # measured CL, V, t1/2 (with unit variants) and their derivations
    cl_m = _num(row, "cl_L_per_h")
    if not _ok(cl_m) and _ok(_num(row, "cl_mL_min_kg")):
        cl_m = float(mL_min_kg_to_L_per_h(_num(row, "cl_mL_min_kg"), w))
    v_m = _num(row, "v_L")
    if not _ok(v_m) and _ok(_num(row, "vdss_L_per_kg")):
        v_m = _num(row, "vdss_L_per_kg") * w
    th_m = _num(row, "t_half_h")
    cl = _measured(row, "cl_L_per_h", cl_m) if _ok(cl_m) else None
    v = _measured(row, "v_L", v_m) if _ok(v_m) else None
    if cl is None and v is not None and _ok(th_m):
        cl = PKParameter(LN2 * v.value / th_m, "measured", 0.0, "ln2 Vss / t1/2")
    if v is None and cl is not None and cl.source == "measured" and _ok(th_m):
        v = PKParameter(cl.value * th_m / LN2, "measured", 0.0, "CL t1/2 / ln2")

    logp, pka_a, pka_b, logp_from = _logp_and_pka(row, desc)
    bp_m = _num(row, "blood_plasma_ratio")
    fe_m = _num(row, "fe")

    def blood_plasma(fu_value: float) -> float:
        if _ok(bp_m):
            return bp_m
        if math.isfinite(logp):
            return float(mech.blood_plasma_ratio_schmitt(logp, fu_value, pka_a, pka_b))
        return 1.0

    # in-vitro CL
    if cl is None and fu is not None:
        clint_h = _num(row, "clint_hep_uL_min_per_1e6_cells")
        clint_m = _num(row, "clint_mic_uL_min_per_mg")
        clint, how = math.nan, ""
        if math.isfinite(clint_h) and clint_h >= 0:
            clint, how = float(mech.scale_clint_hepatocyte(clint_h)), "hepatocyte CLint"
        elif math.isfinite(clint_m) and clint_m >= 0:
            clint, how = float(mech.scale_clint_microsomal(clint_m)), "microsomal CLint"
        if math.isfinite(clint):
            bp = blood_plasma(fu.value)
            clh = float(mech.well_stirred_hepatic_cl(clint, fu.value, blood_plasma_ratio=bp))
            fe_arg = fe_m if math.isfinite(fe_m) else None
            cl_tot = float(mech.total_cl_from_hepatic(clh, fe=fe_arg, fu=fu.value))
            sd = math.hypot(IVIVE_CL_SD_LOG, fu.sd_log)
            renal = "fe" if fe_arg is not None else "fu x GFR"
            if _ok(cl_tot):
                cl = PKParameter(cl_tot, "in-vitro", sd, f"well-stirred ({how}) + renal {renal}")

    # in-vitro Vss (Schmitt), needs measured fu
    if v is None and fu is not None and fu.source == "measured" and math.isfinite(logp):
        has_pred = _pred_param(pred, "vdss_L_per_kg", w, "") is not None
        if logp < SCHMITT_MAX_LOGP or not has_pred:
            vss = mech.vss_schmitt_L_per_kg(logp, fu.value, pka_a, pka_b) * w
            sd = SCHMITT_VSS_SD_LOG if logp < SCHMITT_MAX_LOGP else SCHMITT_VSS_SD_LOG_HIGH_LOGP
            v = PKParameter(vss, "in-vitro", sd, f"Schmitt/Pearce tissue partition ({logp_from})")
        else:
            notes.append(f"Schmitt Vss skipped: logP {logp:.1f} >= {SCHMITT_MAX_LOGP:g}")

    # structure-based predictions
    if cl is None:
        cl = _pred_param(
            pred, "cl_mL_min_kg", float(mL_min_kg_to_L_per_h(1.0, w)), "structure model"
        )
    if v is None:
        v = _pred_param(pred, "vdss_L_per_kg", w, "structure model")

    if _ok(th_m):
        t_half = _measured(row, "t_half_h", th_m)
    elif cl is not None and v is not None and cl.source == v.source == "measured":
        # measured CL and Vss give t1/2: a measurement beats the structure model
        t_half = PKParameter(LN2 * v.value / cl.value, "measured", 0.0, "ln2 Vss / CL")
    else:
        t_half = _pred_param(pred, "t_half_h", 1.0, "structure model (direct)")
        if t_half is None and cl is not None and v is not None:
            t_half = PKParameter(
                LN2 * v.value / cl.value,
                max(cl.source, v.source, key=SOURCES.index),  # the least direct one
                math.hypot(cl.sd_log, v.sd_log),
                "ln2 Vss / CL",
            )

    missing = [
        MISSING_REASON.format(field=name)
        for name, p in (("cl_L_per_h", cl), ("v_L", v))
        if p is None
    ]
    if missing:
        return None, "; ".join(missing)

    # oral absorption
    fe = _measured(row, "fe", fe_m) if math.isfinite(fe_m) else None
    ka_m = _num(row, "ka_per_h")
    fa = float(mech.fraction_absorbed_tpsa(desc["tpsa_A2"], desc["hbd"]))
    if _ok(ka_m):
        ka = _measured(row, "ka_per_h", ka_m)
    else:
        ka = PKParameter(
            float(mech.ka_from_fa(fa)), "predicted", mech.KA_SD_LOG, "CAT model from Fa(TPSA)"
        )
    fb_m = _num(row, "f_bio")
    if _ok(fb_m):
        f_bio = _measured(row, "f_bio", fb_m)
    else:
        fu_val = fu.value if fu is not None else 1.0
        bp = blood_plasma(fu_val)
        if math.isfinite(fe_m):
            clh = cl.value * (1.0 - fe_m)
        elif fu is not None:
            clh = max(cl.value - float(mech.renal_cl_filtration(fu.value)), 0.0)
        else:
            clh = cl.value
        e_h = float(mech.hepatic_extraction(clh, blood_plasma_ratio=bp))
        fh = 1.0 - e_h
        sd = math.hypot(mech.FA_SD_LOG, e_h / fh * cl.sd_log)
        f_bio = PKParameter(
            float(mech.bioavailability(fa, fh)),
            "predicted",
            sd,
            f"Fa(TPSA)={fa:.2f} x Fg=1 x Fh={fh:.2f}",
        )

    pot = _num(row, "potency_mg_per_L")
    herg = _num(row, "herg_ic50_mg_per_L")
    in_domain = None
    if pred is not None and not pred.get("error", "") and "in_domain" in pred.index:
        val = pred["in_domain"]
        in_domain = None if pd.isna(val) else bool(val)
    mw = float(desc["mw_g_per_mol"])
    return (
        CompoundProfile(
            id=str(row["id"]),
            name=str(row.get("name", row["id"])),
            smiles=str(row["smiles"]),
            mw_g_per_mol=mw,
            cl_L_per_h=cl,
            v_L=v,
            fu=fu,
            ka_per_h=ka,
            f_bio=f_bio,
            t_half_h=t_half,
            fe=fe,
            potency_mg_per_L=_measured(row, "potency_nM", pot) if _ok(pot) else None,
            herg_ic50_mg_per_L=_measured(row, "herg_ic50_uM", herg) if _ok(herg) else None,
            in_domain=in_domain,
            notes=tuple(notes),
        ),
        "",
    )


#: Compound-table columns a known drug's values may fill, and the quantity each gives.
_KNOWN_FILL = {
    "cl_mL_min_kg": ("cl_L_per_h", ("cl_L_per_h", "cl_mL_min_kg")),
    "vdss_L_per_kg": ("v_L", ("v_L", "vdss_L_per_kg")),
    "fu": ("fu", ("fu",)),
    "t_half_h": ("t_half_h", ("t_half_h",)),
}
_DERIVABLE = frozenset({"cl_L_per_h", "v_L", "t_half_h"})


def _with_known(row: pd.Series, known: pd.Series | None) -> tuple[pd.Series, frozenset[str]]:
    """The row with a known drug's values in the quantities it leaves empty, and which
    quantities (profile fields) were filled. The published t1/2 only fills in when CL or Vss
    is still missing (to derive it); otherwise t1/2 is ``ln2 Vss / CL``."""
    if known is None or not known.get("known_match", ""):
        return row, frozenset()
    if "use_known_pk" in row.index and not bool(row["use_known_pk"]):
        return row, frozenset()
    row = row.copy()
    filled = set()
    # the quantities the row has: its own, then each one filled (CL and Vss before t1/2)
    has = {q for q, given in _KNOWN_FILL.values() if any(_ok(_num(row, c)) for c in given)}
    for col, (quantity, _) in _KNOWN_FILL.items():
        value = _num(known, col)
        if quantity == "t_half_h" and {"cl_L_per_h", "v_L"} <= has:
            continue  # t1/2 then follows from CL and Vss, as the simulated twin's does
        if _ok(value) and quantity not in has:
            row[col] = value
            filled.add(quantity)
            has.add(quantity)
    return row, frozenset(filled)


def _mark_literature(prof: CompoundProfile, filled: frozenset[str], known: pd.Series):
    """Relabel the profile's values that came from a known drug's published values (directly,
    or derived from one of them) as ``literature``, naming the drug."""
    what = f"{REFERENCE}: {known['known_drug']} ({known['known_match']} match)"
    changes = {}
    for name in ("cl_L_per_h", "v_L", "fu", "t_half_h"):
        p = getattr(prof, name)
        if p is None or p.source != "measured":
            continue
        derived = bool(p.method) and name in _DERIVABLE and bool(filled & _DERIVABLE)
        if name in filled or derived:
            method = f"{what}; {p.method}" if p.method else what
            changes[name] = replace(p, source="literature", method=method)
    if not changes:
        return prof
    note = f"known drug {known['known_drug']}: measured human PK from {REFERENCE}"
    return replace(prof, **changes, notes=(*prof.notes, note))


def _needs_prediction(row: pd.Series) -> bool:
    has_cl = any(_ok(_num(row, c)) for c in ("cl_L_per_h", "cl_mL_min_kg"))
    has_v = any(_ok(_num(row, c)) for c in ("v_L", "vdss_L_per_kg"))
    # measured CL and Vss give t1/2 (and any two of the three give the third)
    has_th = _ok(_num(row, "t_half_h")) or (has_cl and has_v)
    has_fu = _ok(_num(row, "fu"))
    return not (has_cl and has_v and has_th and has_fu)


def build_profiles(
    compounds: pd.DataFrame, *, use_structure_model: bool = True
) -> tuple[list[CompoundProfile], pd.DataFrame]:
    """Build a profile per usable compound; report the others with the reason.

    Parameters
    ----------
    compounds : pandas.DataFrame
        As returned by :func:`insilico.chem.io.read_compounds` (``id``, ``name``,
        standardized ``smiles``, ``valid``, ``error`` and any measured columns).
    use_structure_model : bool
        Call the structure-based PK model for compounds that lack measured parameters.

    Returns
    -------
    profiles : list of CompoundProfile
        In input order.
    failed : pandas.DataFrame
        Columns ``id``, ``error``: compounds that could not be used and why.
    """
    df = compounds.reset_index(drop=True)
    if not {"valid", "error", "inchikey"} <= set(df.columns):
        # a hand-made frame: standardize it the way read_compounds does
        from insilico.chem.standardize import standardize_smiles_batch

        std = standardize_smiles_batch(df["smiles"].tolist())
        df = pd.concat([df.drop(columns=[c for c in std.columns if c in df.columns]), std], axis=1)
        if "id" not in df.columns:
            df["id"] = [f"compound_{i + 1}" for i in range(len(df))]
    valid = df["valid"].to_numpy(dtype=bool)
    desc = compute_descriptors(df["smiles"].fillna("").astype(str).tolist())
    known = match_known_drugs(df["inchikey"].where(df["valid"].astype(bool), ""))
    rows = [_with_known(df.iloc[i], known.iloc[i]) for i in range(len(df))]
    want = [i for i in range(len(df)) if valid[i] and _needs_prediction(rows[i][0])]
    preds: dict[int, pd.Series] = {}
    if use_structure_model and want:
        table = run_structure_model([str(df.at[i, "smiles"]) for i in want])
        preds = {i: table.iloc[k] for k, i in enumerate(want)}
    profiles: list[CompoundProfile] = []
    failed: list[dict[str, str]] = []
    for i in range(len(df)):
        row = df.iloc[i]
        cid = str(row["id"])
        if not valid[i]:
            failed.append({"id": cid, "error": str(row.get("error", "")) or "invalid compound"})
            continue
        filled_row, filled = rows[i]
        try:
            prof, err = _profile_one(filled_row, desc.iloc[i], preds.get(i))
        except (ValueError, ArithmeticError) as exc:
            prof, err = None, f"PK profile failed: {exc}"
        if prof is not None and filled:
            prof = _mark_literature(prof, filled, known.iloc[i])
        if prof is None:
            failed.append({"id": cid, "error": err})
        else:
            profiles.append(prof)
    return profiles, pd.DataFrame(failed, columns=["id", "error"])


# ------------------------------------------------------------------ CLI: predict-pk
PREDICT_PK_COLUMNS = tuple(
    [f"{c}{s}" for c in PREDICTED_ENDPOINTS for s in ("", "_lo", "_hi")] + ["in_domain", "error"]
)


def predict_pk_table(
    input_csv: str | Path, out_csv: str | Path, *, chunk_size: int = 500, progress: bool = True
) -> pd.DataFrame:
    """``insilico predict-pk INPUT.csv --out OUT.csv``.

    Reads a CSV with a ``smiles`` column (other columns kept; input columns whose names
    collide with output columns are renamed ``<name>_input``), standardizes the structures
    and writes ``vdss_L_per_kg``, ``cl_mL_min_kg``, ``fu``, ``t_half_h``, each with ``_lo``
    and ``_hi`` (90 % interval), ``in_domain`` and ``error`` ("" when fine). Text cells that a
    spreadsheet would run as a formula get a leading ``'`` (see
    :func:`insilico.io.csv_table.write_safe_csv`); numbers are written as numbers. Predictions run
    in chunks behind a tqdm progress bar (stderr).

    Returns
    -------
    pandas.DataFrame
        The table written.

    Raises
    ------
    insilico.errors.SpecError
        Missing file, no ``smiles`` column, or ``out_csv`` an existing directory.
    insilico.errors.DatasetError
        An empty, header-only, non-UTF-8 or ragged CSV (names the file and row).
    insilico.errors.InsilicoError
        The structure-based model cannot be loaded.
    """
    from tqdm.auto import tqdm

    from insilico.chem.standardize import standardize_smiles_batch
    from insilico.errors import SpecError

    path = Path(input_csv)
    if not path.is_file():
        raise SpecError("input", str(path), "an existing CSV file")
    from insilico.io.csv_table import read_text_csv, write_safe_csv

    out_csv = Path(out_csv)
    if out_csv.is_dir():
        raise SpecError("--out", str(out_csv), "a file path, not an existing directory")
    data = read_text_csv(path, what="compounds")
    if "smiles" not in data.columns:
        raise SpecError("smiles", list(data.columns), "a CSV with a 'smiles' column", str(path))
    try:
        from insilico.chem.pk_model import predict_human_pk
    except Exception as exc:
        msg = f"predict-pk: the structure-based PK model is unavailable: {exc}"
        raise InsilicoError(msg) from exc
    data = data.rename(columns={c: f"{c}_input" for c in data.columns if c in PREDICT_PK_COLUMNS})
    std = standardize_smiles_batch(data["smiles"].tolist())
    out = pd.DataFrame({c: np.full(len(data), np.nan) for c in PREDICT_PK_COLUMNS[:-2]})
    in_domain = pd.array([None] * len(data), dtype="boolean")
    error = std["error"].astype(str).to_numpy(dtype=object)
    ok = np.flatnonzero(std["valid"].to_numpy(dtype=bool))
    with tqdm(total=len(ok), desc="predict-pk", unit="mol", disable=not progress) as bar:
        for start in range(0, len(ok), chunk_size):
            idx = ok[start : start + chunk_size]
            try:
                pred = predict_human_pk(std["smiles"].iloc[idx].tolist()).reset_index(drop=True)
            except Exception as exc:
                error[idx] = f"PK model failed: {exc}"
                bar.update(len(idx))
                continue
            for c in PREDICT_PK_COLUMNS[:-2]:
                if c in pred.columns:
                    out.loc[idx, c] = pred[c].astype(float).to_numpy()
            if "in_domain" in pred.columns:
                in_domain[idx] = pred["in_domain"].astype("boolean").to_numpy()
            if "error" in pred.columns:
                error[idx] = pred["error"].fillna("").astype(str).to_numpy()
            bar.update(len(idx))
    out["in_domain"] = in_domain
    out["error"] = error.astype(str)
    table = pd.concat([data.reset_index(drop=True), out], axis=1)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    write_safe_csv(table, out_csv)
    return table


__all__ = [
    "CompoundProfile",
    "PKParameter",
    "build_profiles",
    "predict_pk_table",
    "profiles_to_frame",
    "run_structure_model",
]
