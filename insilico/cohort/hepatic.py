"""Hepatic impairment by Child-Pugh class: typical changes of clearance, albumin and fu.

Values per class (``none`` = no impairment):

* ``cl_hepatic_multiplier``: unbound hepatic (intrinsic) clearance relative to healthy.
  Steelandt J et al., "A prediction model of drug exposure in cirrhotic patients according to
  Child-Pugh classification", Clin Pharmacokinet 2015;54:1245-1258,
  doi:10.1007/s40262-015-0288-9: across 45 drugs the typical unbound AUC ratio is about 2
  (class A) and 3.5 (class B), i.e. multipliers 0.5 and 0.29. Class C: 0.2 (unbound AUC ratio
  about 5), an extrapolation of the A -> B trend consistent with the larger, drug-dependent
  increases reported for class C in that paper (assumption; use drug data when available).
* ``albumin_g_per_L``: typical serum albumin, chosen inside the Child-Pugh scoring bands
  (> 35 g/L: 1 point, 28-35: 2, < 28: 3; Pugh RNH et al., Br J Surg 1973;60:646-649,
  doi:10.1002/bjs.1800600817): healthy 41.8 g/L (reference physiology table, httk), A 38,
  B 31, C 26 g/L.
* ``fu_multiplier``: fu change of an albumin-bound drug for ``fu -> 0``, the reciprocal of the
  albumin ratio; for a given fu use :func:`fu_with_albumin` (McNamara PJ, Alcorn J, AAPS
  PharmSci 2002;4:E4, doi:10.1208/ps040104: ``fu' = 1 / (1 + (1 - fu) P' / (P fu))``).
"""

from __future__ import annotations

import numpy as np

CHILD_PUGH_CLASSES: tuple[str, ...] = ("none", "A", "B", "C")

ALBUMIN_REFERENCE_G_PER_L = 41.8

#: Typical values per Child-Pugh class (see module docstring for sources).
CHILD_PUGH_EFFECTS: dict[str, dict[str, float]] = {
    "none": {"cl_hepatic_multiplier": 1.0, "albumin_g_per_L": 41.8},
    "A": {"cl_hepatic_multiplier": 0.5, "albumin_g_per_L": 38.0},
    "B": {"cl_hepatic_multiplier": 1.0 / 3.5, "albumin_g_per_L": 31.0},
    "C": {"cl_hepatic_multiplier": 0.2, "albumin_g_per_L": 26.0},
}

#: Between-patient SD of albumin (g/L) within a class, an assumption: the healthy reference
#: interval 35-50 g/L is about mean +/- 2 SD.
ALBUMIN_SD_G_PER_L: dict[str, float] = {"none": 3.5, "A": 3.5, "B": 3.5, "C": 3.5}

SOURCES: dict[str, str] = {
    "cl_hepatic_multiplier": "Steelandt et al. 2015, doi:10.1007/s40262-015-0288-9",
    "albumin_g_per_L": "Child-Pugh albumin bands, Pugh et al. 1973, doi:10.1002/bjs.1800600817",
    "fu_multiplier": "McNamara & Alcorn 2002, doi:10.1208/ps040104 (limit fu -> 0)",
}


def child_pugh_codes(child_pugh) -> np.ndarray:
    """Index into :data:`CHILD_PUGH_CLASSES` for each value; unknown values are errors."""
    from insilico.cohort.pgx import category_codes

    return category_codes(child_pugh, CHILD_PUGH_CLASSES, "child_pugh")


def fu_with_albumin(fu, albumin_ratio) -> np.ndarray:
    """Unbound fraction when the binding protein changes by ``albumin_ratio`` (= P'/P).

    ``fu' = 1 / (1 + (1 - fu) * albumin_ratio / fu)`` (McNamara & Alcorn 2002,
    doi:10.1208/ps040104).
    """
    fu = np.asarray(fu, dtype=float)
    return 1.0 / (1.0 + (1.0 - fu) * np.asarray(albumin_ratio, dtype=float) / fu)


def hepatic_impairment_effects(child_pugh) -> dict[str, np.ndarray]:
    """Typical PK changes for each patient's Child-Pugh class.

    Parameters
    ----------
    child_pugh : array of str, shape (n,)
        ``"none"``, ``"A"``, ``"B"`` or ``"C"``.

    Returns
    -------
    dict of str to ndarray, each shape (n,)
        ``cl_hepatic_multiplier`` (unbound hepatic clearance / healthy), ``albumin_ratio``
        (typical albumin / 41.8 g/L) and ``fu_multiplier`` (fu / healthy fu for an
        albumin-bound drug with small fu: ``1 / albumin_ratio``). Sources in :data:`SOURCES`.
    """
    codes = child_pugh_codes(child_pugh)
    cl = np.array([CHILD_PUGH_EFFECTS[c]["cl_hepatic_multiplier"] for c in CHILD_PUGH_CLASSES])
    alb = np.array([CHILD_PUGH_EFFECTS[c]["albumin_g_per_L"] for c in CHILD_PUGH_CLASSES])
    ratio = alb[codes] / ALBUMIN_REFERENCE_G_PER_L
    return {
        "cl_hepatic_multiplier": cl[codes],
        "albumin_ratio": ratio,
        "fu_multiplier": 1.0 / ratio,
    }
