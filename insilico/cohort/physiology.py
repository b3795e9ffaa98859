"""Derived covariates: body size and renal function formulas (vectorized numpy).

All functions take and return arrays; ``female`` is a boolean array (True for sex "F").
"""

from __future__ import annotations

import numpy as np

#: FDA renal-impairment categories by eGFR (mL/min/1.73 m^2): name -> [low, high).
#: FDA guidance "Pharmacokinetics in Patients with Impaired Renal Function" (2020 draft /
#: 2024 final): normal >= 90, mild 60-89, moderate 30-59, severe 15-29, kidney failure < 15.
RENAL_CATEGORIES: dict[str, tuple[float, float]] = {
    "normal": (90.0, np.inf),
    "mild": (60.0, 90.0),
    "moderate": (30.0, 60.0),
    "severe": (15.0, 30.0),
    "kidney_failure": (0.0, 15.0),
}
RENAL_CATEGORY_NAMES: tuple[str, ...] = tuple(RENAL_CATEGORIES)


def bmi_kg_m2(weight_kg, height_cm) -> np.ndarray:
    """Body mass index, kg/m^2: ``weight / (height_m)^2``."""
    h_m = np.asarray(height_cm, dtype=float) / 100.0
    return np.asarray(weight_kg, dtype=float) / (h_m * h_m)


def bsa_mosteller_m2(weight_kg, height_cm) -> np.ndarray:
    """Body surface area, m^2, Mosteller: ``sqrt(height_cm * weight_kg / 3600)``.

    Mosteller RD, N Engl J Med 1987;317:1098, doi:10.1056/NEJM198710223171717.
    """
    return np.sqrt(np.asarray(height_cm, dtype=float) * np.asarray(weight_kg, dtype=float) / 3600.0)


def lbw_janmahasatian_kg(weight_kg, bmi, female) -> np.ndarray:
    """Lean body weight, kg (Janmahasatian et al. 2005).

    ``LBW = 9270 W / (6680 + 216 BMI)`` (men), ``9270 W / (8780 + 244 BMI)`` (women).
    Janmahasatian S et al., Clin Pharmacokinet 2005;44:1051-1065,
    doi:10.2165/00003088-200544100-00004.
    """
    w = np.asarray(weight_kg, dtype=float)
    b = np.asarray(bmi, dtype=float)
    f = np.asarray(female, dtype=bool)
    return 9270.0 * w / np.where(f, 8780.0 + 244.0 * b, 6680.0 + 216.0 * b)


def _ckd_epi_constants(female):
    f = np.asarray(female, dtype=bool)
    kappa = np.where(f, 0.7, 0.9)
    alpha = np.where(f, -0.241, -0.302)
    sex_factor = np.where(f, 1.012, 1.0)
    return kappa, alpha, sex_factor


def egfr_ckd_epi_2021(serum_creatinine_mg_dL, age_years, female) -> np.ndarray:
    """Race-free CKD-EPI 2021 creatinine equation, mL/min/1.73 m^2.

    ``eGFR = 142 min(Scr/k, 1)^a max(Scr/k, 1)^-1.200 0.9938^age (1.012 if female)`` with
    k = 0.7 (F) / 0.9 (M), a = -0.241 (F) / -0.302 (M).
    Inker LA et al., N Engl J Med 2021;385:1737-1749, doi:10.1056/NEJMoa2102953.
    """
    scr = np.asarray(serum_creatinine_mg_dL, dtype=float)
    kappa, alpha, sex_factor = _ckd_epi_constants(female)
    r = scr / kappa
    return (
        142.0
        * np.minimum(r, 1.0) ** alpha
        * np.maximum(r, 1.0) ** -1.200
        * 0.9938 ** np.asarray(age_years, dtype=float)
        * sex_factor
    )


def scr_from_egfr_ckd_epi_2021(egfr_mL_min_1_73m2, age_years, female) -> np.ndarray:
    """Serum creatinine (mg/dL) giving ``egfr`` in :func:`egfr_ckd_epi_2021` (its inverse).

    eGFR is strictly decreasing in creatinine, so the inverse is unique; ``egfr = inf`` gives 0
    and ``egfr = 0`` gives ``inf``.
    """
    kappa, alpha, sex_factor = _ckd_epi_constants(female)
    g = np.asarray(egfr_mL_min_1_73m2, dtype=float) / (
        142.0 * 0.9938 ** np.asarray(age_years, dtype=float) * sex_factor
    )
    with np.errstate(divide="ignore", over="ignore"):
        r = np.where(g >= 1.0, g ** (1.0 / alpha), g ** (-1.0 / 1.200))
    return r * kappa


def crcl_cockcroft_gault_mL_per_min(serum_creatinine_mg_dL, age_years, weight_kg, female):
    """Creatinine clearance, mL/min, Cockcroft-Gault with total body weight.

    ``CrCL = (140 - age) W / (72 Scr) (x 0.85 if female)``.
    Cockcroft DW, Gault MH, Nephron 1976;16:31-41, doi:10.1159/000180580.
    """
    scr = np.asarray(serum_creatinine_mg_dL, dtype=float)
    crcl = (140.0 - np.asarray(age_years, dtype=float)) * np.asarray(weight_kg, dtype=float)
    crcl = crcl / (72.0 * scr)
    return np.where(np.asarray(female, dtype=bool), 0.85 * crcl, crcl)


def renal_category_codes(egfr_mL_min_1_73m2) -> np.ndarray:
    """Index into :data:`RENAL_CATEGORY_NAMES` for each eGFR (FDA categories)."""
    e = np.asarray(egfr_mL_min_1_73m2, dtype=float)
    # thresholds descending: >=90 -> 0, >=60 -> 1, >=30 -> 2, >=15 -> 3, else 4
    return 4 - np.searchsorted(np.array([15.0, 30.0, 60.0, 90.0]), e, side="right")
