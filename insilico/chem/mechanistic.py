"""Mechanistic (in-vitro to in-vivo) PK: hepatic and renal clearance, Vss, oral absorption.

Pure numpy, no RDKit, no fitted model. All functions accept scalars or arrays (broadcast)
and return float arrays (0-d for scalar input). Reference adult: 70 kg.

Physiological scaling factors (defaults, overridable per call)
------------------------------------------------------------
- Hepatocellularity 120e6 cells/g liver, the value most IVIVE uses (Barter et al. 2007,
  Curr Drug Metab 8:33, doi:10.2174/138920007779315053, give a meta-analysis mean of
  about 99e6 cells/g: using it lowers the scaled hepatocyte CLint by ~18 %).
- Microsomal protein per gram liver (MPPGL) 40 mg/g: between Barter et al. 2007 (geometric
  mean 32 mg/g, 95 % CI 29-35) and the 45 mg/g used by Houston 1994 (Biochem Pharmacol
  47:1469) and Obach 1999 (Drug Metab Dispos 27:1350). Literature range about 32-45 mg/g,
  i.e. -20 %/+13 % on the scaled intrinsic clearance.
- Liver weight 21.4 g/kg body weight (1.5 kg for 70 kg), the value Obach 1999 used.
  Davies & Morris 1993 (Pharm Res 10:1093, doi:10.1023/A:1018943613122) give 1.8 kg
  (25.7 g/kg), the other common choice: pass ``liver_g_per_kg=25.7`` (+20 % CLint).
- Hepatic blood flow 90 L/h for 70 kg (21.4 mL/min/kg; Davies & Morris 1993 give
  20.7 mL/min/kg = 87 L/h).
- GFR 125 mL/min = 7.5 L/h for 70 kg (5.165 mL/min/kg^0.75, ``population_physiology_
  reference_human.csv``).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd

from insilico.units import MIN_PER_H

REFERENCE_WEIGHT_KG = 70.0
HEPATOCYTES_PER_G_LIVER = 120e6
MPPGL_MG_PER_G = 40.0
LIVER_G_PER_KG = 21.4
QH_L_PER_H = 90.0
GFR_L_PER_H = 7.5
UL_PER_L = 1e6

# Plasma and blood (population_physiology_reference_human.csv, httk physiology.data)
PLASMA_VOLUME_L_PER_KG = 0.04286
HEMATOCRIT = 0.44
PLASMA_PROTEIN_VOLUME_FRACTION = 0.06951
PH_PLASMA = 7.4
SMALL_INTESTINE_TRANSIT_H = 199.2 / MIN_PER_H  # mean residence time, 199.2 min (Yu 1999)


def _f(x) -> np.ndarray:
    return np.asarray(x, dtype=float)


# ---------------------------------------------------------------- hepatic clearance
def scale_clint_hepatocyte(
    clint_uL_min_per_1e6_cells,
    *,
    hepatocytes_per_g: float = HEPATOCYTES_PER_G_LIVER,
    liver_g_per_kg: float = LIVER_G_PER_KG,
    weight_kg: float = REFERENCE_WEIGHT_KG,
) -> np.ndarray:
    """Whole-liver intrinsic clearance (L/h) from a hepatocyte assay.

    ``CLint (L/h) = CLint,cells (µL/min/1e6 cells) x cells/g / 1e6 x g liver x 60 / 1e6``
    """
    liver_g = liver_g_per_kg * weight_kg
    ul_min = _f(clint_uL_min_per_1e6_cells) * (hepatocytes_per_g / 1e6) * liver_g
    return ul_min * MIN_PER_H / UL_PER_L


def scale_clint_microsomal(
    clint_uL_min_per_mg,
    *,
    mppgl_mg_per_g: float = MPPGL_MG_PER_G,
    liver_g_per_kg: float = LIVER_G_PER_KG,
    weight_kg: float = REFERENCE_WEIGHT_KG,
) -> np.ndarray:
    """Whole-liver intrinsic clearance (L/h) from a liver-microsome assay.

    ``CLint (L/h) = CLint,mic (µL/min/mg) x MPPGL (mg/g) x g liver x 60 / 1e6``
    """
    liver_g = liver_g_per_kg * weight_kg
    return _f(clint_uL_min_per_mg) * mppgl_mg_per_g * liver_g * MIN_PER_H / UL_PER_L


def well_stirred_hepatic_cl(
    clint_L_per_h,
    fu,
    *,
    blood_plasma_ratio=1.0,
    fu_inc=1.0,
    qh_L_per_h: float = QH_L_PER_H,
) -> np.ndarray:
    """Hepatic plasma clearance (L/h) by the well-stirred liver model.

    ``CLh,b = Qh fu_b CLint,u / (Qh + fu_b CLint,u)`` with ``fu_b = fu / B:P`` and
    ``CLint,u = CLint / fu_inc``; the plasma clearance is ``CLh = CLh,b x B:P``
    (Rowland, Benet & Graham 1973, J Pharmacokinet Biopharm 1:123,
    doi:10.1007/BF01059626; Obach 1999, Drug Metab Dispos 27:1350).

    Parameters
    ----------
    clint_L_per_h : array_like
        Scaled whole-liver intrinsic clearance (L/h), e.g. from ``scale_clint_*``.
    fu : array_like
        Fraction unbound in plasma.
    blood_plasma_ratio : array_like
        Blood-to-plasma concentration ratio.
    fu_inc : array_like
        Unbound fraction in the in-vitro incubation (1 if not corrected).
    qh_L_per_h : float
        Hepatic blood flow (L/h).
    """
    bp = _f(blood_plasma_ratio)
    fu_b = _f(fu) / bp
    clint_u = _f(clint_L_per_h) / _f(fu_inc)
    cl_blood = qh_L_per_h * fu_b * clint_u / (qh_L_per_h + fu_b * clint_u)
    return cl_blood * bp


def hepatic_extraction(
    cl_hepatic_L_per_h, *, blood_plasma_ratio=1.0, qh_L_per_h: float = QH_L_PER_H
) -> np.ndarray:
    """Hepatic extraction ratio ``E = CLh,blood / Qh`` (plasma CL divided by B:P), clipped
    to [0, 0.99]."""
    return np.clip(_f(cl_hepatic_L_per_h) / _f(blood_plasma_ratio) / qh_L_per_h, 0.0, 0.99)


# ---------------------------------------------------------------- renal clearance
def renal_cl_filtration(fu, *, gfr_L_per_h: float = GFR_L_PER_H) -> np.ndarray:
    """Renal clearance by filtration only (L/h): ``CLr = fu x GFR`` (no secretion or
    reabsorption; underestimates actively secreted drugs)."""
    return _f(fu) * gfr_L_per_h


def total_cl_from_hepatic(cl_hepatic_L_per_h, *, fe=None, fu=None) -> np.ndarray:
    """Total plasma clearance (L/h) from hepatic clearance and the renal route.

    With a measured fraction excreted unchanged ``fe`` (= CLr/CL, hepatic the rest):
    ``CL = CLh / (1 - fe)``; otherwise ``CL = CLh + fu x GFR``.
    """
    clh = _f(cl_hepatic_L_per_h)
    if fe is not None:
        fe_a = _f(fe)
        with np.errstate(invalid="ignore", divide="ignore"):
            via_fe = clh / (1.0 - np.minimum(fe_a, 0.99))
        if fu is None:
            return via_fe
        return np.where(np.isfinite(fe_a), via_fe, clh + renal_cl_filtration(fu))
    if fu is None:
        raise ValueError("total_cl_from_hepatic: give fe or fu")
    return clh + renal_cl_filtration(fu)


# ---------------------------------------------------------------- distribution
def vss_oie_tozer_L(
    fu,
    fu_tissue,
    *,
    weight_kg: float = REFERENCE_WEIGHT_KG,
) -> np.ndarray:
    """Vss (L) by Øie & Tozer 1979 (J Pharm Sci 68:1203, doi:10.1002/jps.2600680948).

    ``Vss = Vp (1 + R) + fu Vp (Ve/Vp - R) + Vr fu / fu_t`` with, for 70 kg, plasma
    Vp = 3 L, extracellular fluid outside plasma Ve = 12 L, remaining (intracellular)
    Vr = 27 L, and R = 1.4 the extravascular/intravascular ratio of binding proteins;
    volumes scale with body weight.
    """
    s = weight_kg / REFERENCE_WEIGHT_KG
    vp, ve, vr, r = 3.0 * s, 12.0 * s, 27.0 * s, 1.4
    fu = _f(fu)
    return vp * (1 + r) + fu * vp * (ve / vp - r) + vr * fu / _f(fu_tissue)


@lru_cache(maxsize=1)
def tissue_table() -> pd.DataFrame:
    """Shipped human tissue composition (see ``insilico/data/tissues/SOURCE.md``)."""
    path = resources.files("insilico") / "data" / "tissues" / "tissue_composition_human.csv"
    with path.open("r") as fh:
        return pd.read_csv(fh).set_index("tissue")


def ionized_fractions(ph, pka_acid=np.nan, pka_base=np.nan) -> dict[str, np.ndarray]:
    """Fractions neutral / zwitterionic / positive / negative (Henderson-Hasselbalch,
    one acidic and one basic site, independent). NaN pKa means no such group."""
    ph = _f(ph)
    pka_a, pka_b = _f(pka_acid), _f(pka_base)
    pa = np.where(np.isnan(pka_a), 1.0, 1.0 / (1.0 + 10.0 ** (ph - np.nan_to_num(pka_a))))
    # probability that the acidic site is protonated (neutral) and the basic site protonated
    # (cationic): both are 1 / (1 + 10^(pH - pKa))
    pb = np.where(np.isnan(pka_b), 0.0, 1.0 / (1.0 + 10.0 ** (ph - np.nan_to_num(pka_b))))
    return {
        "neutral": pa * (1 - pb),
        "zwitter": (1 - pa) * pb,
        "positive": pa * pb,
        "negative": (1 - pa) * (1 - pb),
    }


def logp_from_logd(logd, pka_acid=np.nan, pka_base=np.nan, *, alpha: float = 0.001):
    """Octanol/water logP of the neutral form from logD at pH 7.4 (``D = P (fn + fz +
    alpha fc)``, the same relation the Schmitt model uses)."""
    f = ionized_fractions(PH_PLASMA, pka_acid, pka_base)
    fc = f["positive"] + f["negative"]
    return _f(logd) - np.log10(f["neutral"] + f["zwitter"] + alpha * fc)


@lru_cache(maxsize=1)
def _tissue_arrays() -> dict[str, np.ndarray]:
    t = tissue_table()
    ftot = (t["fcell"] + t["fint"]).to_numpy()
    names = list(t.index)
    slope = np.array([PEARCE2017_REGRESSION.get(n, (np.nan, np.nan))[1] for n in names])
    icept = np.array([PEARCE2017_REGRESSION.get(n, (np.nan, np.nan))[0] for n in names])
    has_reg = np.isfinite(slope)
    return {
        "names": np.array(names),
        "fcell": t["fcell"].to_numpy() / ftot,
        "fint": t["fint"].to_numpy() / ftot,
        "fw": t["fw_cell"].to_numpy(),
        "fp": t["fp_cell"].to_numpy(),
        "fn_l": (t["fl_cell"] * t["fnl_of_lipid"]).to_numpy(),
        "fn_pl": (t["fl_cell"] * t["fnpl_of_lipid"]).to_numpy(),
        "fa_pl": (t["fl_cell"] * t["fapl_of_lipid"]).to_numpy(),
        "ph": t["ph"].to_numpy(),
        "volume": t["volume_L_per_kg"].to_numpy(),
        "slope": slope,
        "intercept": icept,
        "has_reg": has_reg,
        # tissues whose calibrated mean stands in for those without coefficients (httk)
        "mean_of": has_reg & (np.array(names) != "red blood cells"),
        "rbc": np.array(names) == "red blood cells",
        "body": np.isfinite(t["volume_L_per_kg"].to_numpy()),
    }


def _kp_schmitt_array(logp, fu, pka_acid, pka_base, alpha: float = 0.001) -> np.ndarray:
    a = _tissue_arrays()
    logp, fu = float(logp), float(fu)
    fr = ionized_fractions(a["ph"], pka_acid, pka_base)
    fc = fr["positive"] + fr["negative"]
    d_cell = fr["neutral"] + fr["zwitter"] + alpha * fc
    kn_l = 10.0**logp * d_cell
    kn_pl = 10.0 ** (1.294 + 0.304 * logp)
    kp_prot = 0.163 + 0.0221 * kn_pl
    ka_pl = kn_pl * (fr["neutral"] + fr["zwitter"] + 20 * fr["positive"] + 0.05 * fr["negative"])
    fw_pl = 1.0 - PLASMA_PROTEIN_VOLUME_FRACTION
    k_int = fw_pl + 0.37 * (1.0 / fu - fw_pl)
    k_cell = (
        a["fw"] + kn_l * a["fn_l"] + kn_pl * a["fn_pl"] + ka_pl * a["fa_pl"] + kp_prot * a["fp"]
    )
    fpl = ionized_fractions(PH_PLASMA, pka_acid, pka_base)
    d_pl = fpl["neutral"] + fpl["zwitter"] + alpha * (fpl["positive"] + fpl["negative"])
    kappa = d_pl / d_cell
    return (a["fint"] * k_int + kappa * a["fcell"] * k_cell) * fu


def _calibrate_array(kp: np.ndarray) -> np.ndarray:
    a = _tissue_arrays()
    with np.errstate(divide="ignore"):
        cal = 10.0 ** (a["intercept"] + a["slope"] * np.log10(kp))
    out = np.where(a["has_reg"], cal, np.nan)
    return np.where(a["has_reg"], out, np.mean(out[a["mean_of"]]))


def kp_schmitt(
    logp,
    fu,
    pka_acid=np.nan,
    pka_base=np.nan,
    *,
    alpha: float = 0.001,
) -> pd.DataFrame:
    """Tissue:plasma partition coefficients (total plasma) by Schmitt 2008.

    Schmitt W., Toxicol In Vitro 22:457 (2008), doi:10.1016/j.tiv.2007.09.010, in the
    generalized form of the httk package (Pearce et al. 2017, doi:10.1007/s10928-017-9548-7,
    without their empirical regression): per tissue

    - ``Kn_L = P (fn + fz + alpha fc)`` neutral lipid:water;
    - ``Kn_PL = 10^(1.294 + 0.304 log P)`` membrane affinity (Yun & Edginton 2013,
      Xenobiotica 43:839);
    - ``KP = 0.163 + 0.0221 Kn_PL`` protein:water; ``Ka_PL = Kn_PL (fn + fz + 20 f+ + 0.05 f-)``;
    - ``Kcell = FW + Kn_L Fn_L + Kn_PL Fn_PL + Ka_PL Fa_PL + KP FP``;
    - ``Kint = FWpl + 0.37 (1/fu - FWpl)`` (interstitial protein 37 % of plasma);
    - pH partition ``kappa = D(7.4)/D(pH_cell)``; ``Kt:pu = Fint Kint + kappa Fcell Kcell``;
    - ``Kp = Kt:pu x fu``.

    Parameters
    ----------
    logp : float
        log10 octanol/water partition coefficient of the neutral species.
    fu : float
        Fraction unbound in plasma.
    pka_acid, pka_base : float
        pKa of the acidic / basic group; NaN when absent.

    Returns
    -------
    pandas.DataFrame
        Index tissue, columns ``kp`` (tissue:plasma) and ``volume_L_per_kg``.
    """
    kp = _kp_schmitt_array(logp, fu, pka_acid, pka_base, alpha)
    a = _tissue_arrays()
    return pd.DataFrame(
        {"kp": kp, "volume_L_per_kg": a["volume"]}, index=pd.Index(a["names"], name="tissue")
    )


# Pearce et al. 2017 (doi:10.1007/s10928-017-9548-7), unadjusted-fu coefficients as
# distributed with httk (``pearce2017regression``):
# log10 Kp,calibrated = intercept + slope log10 Kp,Schmitt, fitted to measured rat Kp.
PEARCE2017_REGRESSION: dict[str, tuple[float, float]] = {
    "brain": (-0.117, 0.377),
    "adipose": (-0.324, 0.544),
    "red blood cells": (-0.022, 0.196),
    "gut": (0.14, 0.735),
    "heart": (0.12, 0.534),
    "kidney": (0.443, 0.631),
    "liver": (0.487, 0.513),
    "lung": (0.113, 0.75),
    "muscle": (-0.025, 0.537),
    "skin": (-0.086, 0.498),
    "spleen": (0.011, 0.675),
    "bone": (0.025, 0.758),
}


def calibrate_kp_pearce(kp: pd.DataFrame) -> pd.DataFrame:
    """Apply the Pearce 2017 per-tissue log-log calibration to Schmitt Kp values.

    Tissues without coefficients (``rest``, ``thyroid``, ``placenta``) get the mean of the
    calibrated non-erythrocyte tissues, as httk does for ``rest``.
    """
    a = _tissue_arrays()
    out = kp.copy()
    out["kp"] = _calibrate_array(kp.loc[a["names"], "kp"].to_numpy())
    return out


def vss_schmitt_L_per_kg(
    logp, fu, pka_acid=np.nan, pka_base=np.nan, *, calibrated: bool = True
) -> float:
    """Vss (L/kg) from Schmitt tissue partition coefficients.

    ``Vss = Vp + Ve E:P + sum_t Vt Kp_t`` with plasma volume 0.0429 L/kg, erythrocyte
    volume ``Vp Hct/(1 - Hct)`` (Hct 0.44) and tissue volumes of the shipped table (ILSI 1994).
    Measured against the Lombardo 2018 set (measured fu, Crippen logP, class pKa): see
    ``SCHMITT_VSS_SD_LOG``.
    """
    a = _tissue_arrays()
    kp = _kp_schmitt_array(logp, fu, pka_acid, pka_base)
    if calibrated:
        kp = _calibrate_array(kp)
    v_rbc = PLASMA_VOLUME_L_PER_KG * HEMATOCRIT / (1 - HEMATOCRIT)
    ep = float(kp[a["rbc"]][0])
    body = a["body"]
    return float(PLASMA_VOLUME_L_PER_KG + v_rbc * ep + np.sum(a["volume"][body] * kp[body]))


def blood_plasma_ratio_schmitt(logp, fu, pka_acid=np.nan, pka_base=np.nan) -> float:
    """Blood:plasma ratio ``1 - Hct + Hct x E:P`` with E:P the Pearce-calibrated Schmitt
    erythrocyte Kp."""
    a = _tissue_arrays()
    kp = _calibrate_array(_kp_schmitt_array(logp, fu, pka_acid, pka_base))
    return 1.0 - HEMATOCRIT + HEMATOCRIT * float(kp[a["rbc"]][0])


# ---------------------------------------------------------------- oral absorption
PALM_TPSA50_A2 = 91.7
PALM_HILL = 5.19
FA_SD_LOG = 0.35
KA_SD_LOG = 0.8


def fraction_absorbed_tpsa(tpsa_A2, hbd=None) -> np.ndarray:
    """Fraction absorbed (Fa) from polar surface area.

    ``Fa = 1 / (1 + (TPSA / 91.7 Å²)^5.19)``: a sigmoid through the two anchors of Palm et al.
    1997 (Pharm Res 14:568, doi:10.1023/A:1012188625088; PSA <= 60 Å² -> Fa >= 90 %,
    PSA >= 140 Å² -> Fa <= 10 %), consistent with Veber et al. 2002 (TPSA <= 140 Å²,
    doi:10.1021/jm020017n). More than 5 H-bond donors (Lipinski 2001,
    doi:10.1016/S0169-409X(00)00129-0) halves the estimate.

    Uncertainty: a rule, not a fit; passive transcellular absorption only (no transporters,
    solubility or dissolution limits). Treat as +/- about 40 % (``FA_SD_LOG`` = 0.35 on the
    natural-log scale, values capped at 1 when sampled).
    """
    tpsa = np.maximum(_f(tpsa_A2), 0.0)
    fa = 1.0 / (1.0 + (tpsa / PALM_TPSA50_A2) ** PALM_HILL)
    if hbd is not None:
        fa = np.where(_f(hbd) > 5, 0.5 * fa, fa)
    return fa


def ka_from_fa(fa, *, transit_h: float = SMALL_INTESTINE_TRANSIT_H) -> np.ndarray:
    """Absorption rate constant (1/h) consistent with Fa in the compartmental absorption
    and transit model.

    CAT model (Yu & Amidon 1999, Int J Pharm 186:119, doi:10.1016/S0378-5173(99)00147-7):
    ``Fa = 1 - (1 + ka T / 7)^-7`` with small-intestine transit T = 199 min, inverted:
    ``ka = 7/T ((1 - Fa)^(-1/7) - 1)``, Fa clipped to [0.05, 0.98] (Fa = 0.9 gives
    0.82 /h). Uncertainty ``KA_SD_LOG`` = 0.8: dissolution, gastric emptying and formulation
    are ignored; observed ka of immediate-release drugs span about 0.2-5 /h.
    """
    f = np.clip(_f(fa), 0.05, 0.98)
    return 7.0 / transit_h * ((1.0 - f) ** (-1.0 / 7.0) - 1.0)


def bioavailability(fa, fh, fg=1.0) -> np.ndarray:
    """Oral bioavailability ``F = Fa x Fg x Fh`` (Fg = 1 unless gut metabolism is known)."""
    return _f(fa) * _f(fg) * _f(fh)
