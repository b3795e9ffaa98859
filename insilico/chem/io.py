"""Read compound tables (CSV, SDF) into one standardized DataFrame.

Input formats
-------------
CSV
    Header row; a ``smiles`` column is required. ``id`` and ``name`` are recommended (``id``
    defaults to ``compound_<row number>``, ``name`` to the id). Other columns are kept.
SDF
    Records separated by ``$$$$``; SDF data items become columns; ``id`` and ``name`` data
    items are used when present, otherwise the record title (first line). A broken record
    is reported (``valid`` False with its reason) and the other records are read.

Recognized measured columns (optional, any subset; units are in the names):

=================================  =======================================================
column                             meaning
=================================  =======================================================
cl_L_per_h                         total plasma clearance, L/h (for a 70 kg adult)
cl_mL_min_kg                       total plasma clearance, mL/min/kg
vdss_L_per_kg                      volume of distribution at steady state, L/kg
v_L                                volume of distribution at steady state, L (70 kg adult)
fu                                 fraction unbound in plasma, 0-1
t_half_h                           terminal half-life, h
ka_per_h                           first-order absorption rate constant, 1/h
f_bio                              oral bioavailability, 0-1
fe                                 fraction of the dose excreted unchanged in urine, 0-1
potency_nM                         EC50/IC50 at the efficacy target, nmol/L
herg_ic50_uM                       hERG IC50, µmol/L
clint_hep_uL_min_per_1e6_cells     hepatocyte intrinsic clearance, µL/min/10^6 cells
clint_mic_uL_min_per_mg            liver microsome intrinsic clearance, µL/min/mg protein
blood_plasma_ratio                 blood-to-plasma concentration ratio
logd74                             octanol/buffer distribution coefficient at pH 7.4, log10
pka                                pKa of the main ionizable group (acid or base per class)
use_known_pk                       ``true`` (default) or ``false``: whether a known drug's
                                   measured PK (:mod:`insilico.chem.known_drugs`) fills
                                   what the row does not give (``false`` for a marketed
                                   drug's structure used as a stand-in for a new compound)
=================================  =======================================================

Added columns: ``input_smiles`` (the SMILES as given, or from the SDF mol block),
``smiles`` (standardized), ``inchikey``, ``mw_g_per_mol`` (RDKit average MW),
``potency_mg_per_L`` and ``herg_ic50_mg_per_L`` (when the molar columns exist, converted
with the MW), ``valid`` and ``error``. A non-numeric or out-of-range measured value makes
the row invalid with a reason naming the column and value.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from insilico.chem.descriptors import molecular_weight
from insilico.chem.standardize import read_sdf, standardize_smiles_batch
from insilico.errors import SpecError
from insilico.units import nM_to_mg_per_L, uM_to_mg_per_L

# column -> (lower bound, upper bound) allowed, inclusive
MEASURED_COLUMNS: dict[str, tuple[float, float]] = {
    "cl_L_per_h": (0.0, np.inf),
    "cl_mL_min_kg": (0.0, np.inf),
    "vdss_L_per_kg": (0.0, np.inf),
    "v_L": (0.0, np.inf),
    "fu": (0.0, 1.0),
    "t_half_h": (0.0, np.inf),
    "ka_per_h": (0.0, np.inf),
    "f_bio": (0.0, 1.0),
    "fe": (0.0, 1.0),
    "potency_nM": (0.0, np.inf),
    "herg_ic50_uM": (0.0, np.inf),
    "clint_hep_uL_min_per_1e6_cells": (0.0, np.inf),
    "clint_mic_uL_min_per_mg": (0.0, np.inf),
    "blood_plasma_ratio": (0.0, np.inf),
    "logd74": (-np.inf, np.inf),
    "pka": (-5.0, 20.0),
}
# strictly positive (a zero would be a division by zero or an infinite exposure)
_POSITIVE = {
    "cl_L_per_h",
    "vdss_L_per_kg",
    "v_L",
    "fu",
    "t_half_h",
    "ka_per_h",
    "potency_nM",
    "herg_ic50_uM",
    "blood_plasma_ratio",
}


def _read_csv(path: Path) -> pd.DataFrame:
    from insilico.io.csv_table import read_text_csv

    df = read_text_csv(path, what="compounds")
    if "smiles" not in df.columns:
        raise SpecError("smiles", list(df.columns), "a CSV with a 'smiles' column", str(path))
    std = standardize_smiles_batch(df["smiles"].tolist())
    # the standardization columns replace same-named input columns
    kept = df.drop(columns=[c for c in df.columns if c in std.columns or c == "smiles"])
    return pd.concat([kept.reset_index(drop=True), std], axis=1)


def _read_sdf(path: Path) -> pd.DataFrame:
    df = read_sdf(path)
    if "id" not in df.columns:
        df["id"] = df["title"]
    if "name" not in df.columns:
        df["name"] = df["title"]
    return df


def _check_measured(df: pd.DataFrame) -> pd.DataFrame:
    """Convert recognized measured columns to float; flag bad values in valid/error."""
    valid = df["valid"].to_numpy(dtype=bool).copy()
    error = df["error"].astype(str).to_numpy(dtype=object).copy()
    for col, (lo, hi) in MEASURED_COLUMNS.items():
        if col not in df.columns:
            continue
        raw = df[col]
        text = raw.astype(str).str.strip()
        num = pd.to_numeric(text.where(text != "", None), errors="coerce").astype(float)
        blank = raw.isna().to_numpy() | (text == "").to_numpy() | (text.str.lower() == "nan")
        bad_text = np.isnan(num.to_numpy()) & ~blank
        x = num.to_numpy()
        with np.errstate(invalid="ignore"):
            out = (x < lo) | (x > hi) | ((x <= 0) & (col in _POSITIVE))
        for i in np.flatnonzero(bad_text | out):
            if not valid[i]:
                continue
            valid[i] = False
            what = "not a number" if bad_text[i] else "out of range"
            allowed = (
                f"> 0{f' and <= {hi:g}' if np.isfinite(hi) else ''}"
                if col in (_POSITIVE)
                else f"between {lo:g} and {hi:g}"
            )
            error[i] = f"{col}: {what} {raw.iloc[i]!r}; allowed: a number {allowed}"
        df[col] = num
    if "use_known_pk" in df.columns:
        flags = [_flag(v) for v in df["use_known_pk"]]
        for i in np.flatnonzero([f is None for f in flags]):
            if valid[i]:
                valid[i] = False
                error[i] = (
                    f"use_known_pk: {df['use_known_pk'].iloc[i]!r} is not a yes/no value; "
                    f"allowed: true, false (or 1, 0, yes, no; empty means true)"
                )
        df["use_known_pk"] = [True if f is None else f for f in flags]
    df["valid"] = valid
    df["error"] = error.astype(str)
    return df


_TRUE = {"true", "1", "1.0", "yes", "y", "t", ""}
_FALSE = {"false", "0", "0.0", "no", "n", "f"}


def _flag(value) -> bool | None:
    """A yes/no cell: True, False, or None when it is neither (empty or NaN means True)."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return True
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


def read_compounds(path: str | Path) -> pd.DataFrame:
    """Read a CSV or SDF of compounds, standardize them, add MW and converted potencies.

    Parameters
    ----------
    path : str or Path
        ``.csv`` or ``.sdf``/``.sd`` file (see module docstring for columns).

    Returns
    -------
    pandas.DataFrame
        One row per input compound, in input order, with the input columns kept plus
        ``input_smiles``, ``smiles``, ``inchikey``, ``mw_g_per_mol``, ``valid``, ``error``
        (and ``potency_mg_per_L``, ``herg_ic50_mg_per_L`` when the molar columns exist).

    Raises
    ------
    SpecError
        The file is missing, of an unknown type, or a CSV without a ``smiles`` column.
    DatasetError
        A CSV that is empty, has no data row, is not UTF-8 text or has a row with more or
        fewer cells than the header (see :func:`insilico.io.csv_table.read_text_csv`).
        Bad individual compounds never raise: see ``valid`` and ``error``.
    """
    path = Path(path)
    if not path.is_file():
        raise SpecError("compounds", str(path), "an existing .csv or .sdf file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        df = _read_csv(path)
    elif suffix in (".sdf", ".sd"):
        df = _read_sdf(path)
    else:
        raise SpecError("compounds", str(path), "a file ending in .csv, .sdf or .sd")
    n = len(df)
    if "id" not in df.columns:
        df.insert(0, "id", [f"compound_{i + 1}" for i in range(n)])
    ids = df["id"].astype(str).str.strip()
    ids = ids.where(ids != "", pd.Series([f"compound_{i + 1}" for i in range(n)]))
    df["id"] = ids
    if "name" not in df.columns:
        df["name"] = df["id"]
    df["name"] = df["name"].astype(str).where(df["name"].astype(str).str.strip() != "", ids)
    df["valid"] = df["valid"].astype(bool)
    df["error"] = df["error"].astype(str)
    dup = df["id"].duplicated(keep="first").to_numpy()
    if dup.any():
        df.loc[dup & df["valid"].to_numpy(), "error"] = "duplicate id (an earlier row has it)"
        df.loc[dup, "valid"] = False
    df = _check_measured(df)
    mw = molecular_weight(df["smiles"].tolist())
    df["mw_g_per_mol"] = mw  # NaN where the structure is unusable
    if "potency_nM" in df.columns:
        df["potency_mg_per_L"] = nM_to_mg_per_L(df["potency_nM"].to_numpy(), df["mw_g_per_mol"])
    if "herg_ic50_uM" in df.columns:
        df["herg_ic50_mg_per_L"] = uM_to_mg_per_L(df["herg_ic50_uM"].to_numpy(), df["mw_g_per_mol"])
    front = ["id", "name", "smiles", "inchikey", "mw_g_per_mol", "valid", "error"]
    rest = [c for c in df.columns if c not in front]
    return df[front + rest].reset_index(drop=True)
