"""Unit conversions. Internal units: h, mg, L, mg/L, L/h, kg.

Every conversion factor in the package lives here, never inline.
"""

from __future__ import annotations

import numpy as np

MIN_PER_H = 60.0
H_PER_DAY = 24.0
ML_PER_L = 1000.0
MG_PER_G = 1000.0
NMOL_PER_MOL = 1e9


def nM_to_mg_per_L(conc_nM, mw_g_per_mol):
    """Convert a molar concentration in nmol/L to mg/L.

    ``mg/L = nM * 1e-9 mol/nmol * MW g/mol * 1000 mg/g``.
    """
    return np.asarray(conc_nM, dtype=float) * 1e-9 * np.asarray(mw_g_per_mol) * MG_PER_G


def mg_per_L_to_nM(conc_mg_per_L, mw_g_per_mol):
    """Convert mg/L to nmol/L (inverse of :func:`nM_to_mg_per_L`)."""
    return np.asarray(conc_mg_per_L, dtype=float) / (np.asarray(mw_g_per_mol) * 1e-9 * MG_PER_G)


def uM_to_mg_per_L(conc_uM, mw_g_per_mol):
    """Convert µmol/L to mg/L."""
    return nM_to_mg_per_L(np.asarray(conc_uM, dtype=float) * 1000.0, mw_g_per_mol)


def mL_min_kg_to_L_per_h(cl_mL_min_kg, weight_kg):
    """Clearance in mL/min/kg times body weight (kg) to L/h."""
    return np.asarray(cl_mL_min_kg, dtype=float) * np.asarray(weight_kg) * MIN_PER_H / ML_PER_L


def L_per_h_to_mL_min_kg(cl_L_per_h, weight_kg):
    """Clearance in L/h to mL/min/kg for a body weight in kg."""
    return np.asarray(cl_L_per_h, dtype=float) * ML_PER_L / MIN_PER_H / np.asarray(weight_kg)


def mL_per_min_to_L_per_h(x_mL_per_min):
    """mL/min to L/h."""
    return np.asarray(x_mL_per_min, dtype=float) * MIN_PER_H / ML_PER_L


def days_to_h(days):
    """Days to hours."""
    return np.asarray(days, dtype=float) * H_PER_DAY


#: mg per unit of a dataset's ``AMT`` (``data.amt_unit`` of a model)
MG_PER_AMOUNT_UNIT = {"mg": 1.0, "ug": 1e-3, "ng": 1e-6}
#: a dataset's ``DV`` unit per mg/L (``data.dv_unit`` of a model)
DV_UNIT_PER_MG_PER_L = {"mg/L": 1.0, "ug/L": 1e3, "ng/mL": 1e3}


def amount_to_mg_factor(amt_unit: str) -> float:
    """mg per unit of amount (``mg``, ``ug`` or ``ng``)."""
    return MG_PER_AMOUNT_UNIT[amt_unit]


def mg_per_L_to_dv_factor(dv_unit: str) -> float:
    """Units of ``dv_unit`` (``mg/L``, ``ug/L`` or ``ng/mL``) per mg/L."""
    return DV_UNIT_PER_MG_PER_L[dv_unit]
