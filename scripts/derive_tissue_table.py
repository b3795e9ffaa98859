"""Derive the shipped human tissue-composition table for tissue partition (Vss) models.

Reads ``../shared/data/population_tissue_composition_human.csv`` (long format, the US EPA
httk ``tissue.data`` table: composition mostly from Schmitt 2008, doi:10.1016/j.tiv.2007.09.010;
volumes from ILSI-RSI 1994) and writes ``insilico/data/tissues/tissue_composition_human.csv``
with one row per tissue and the columns the Schmitt model needs:

- ``fcell``, ``fint``: cellular and interstitial volume fractions of the tissue
- ``fw_cell``, ``fl_cell``, ``fp_cell``: water, lipid, protein volume fractions of the cells
- ``fnl_of_lipid``, ``fnpl_of_lipid``, ``fapl_of_lipid``: neutral lipid, neutral
  phospholipid, acidic phospholipid fractions of the cellular lipid
- ``ph``: cellular pH
- ``volume_L_per_kg``: tissue volume per kg body weight (ILSI-RSI 1994); NaN for tissues
  that are not whole-body compartments (placenta, red blood cells)

A ``rest`` row (remaining body volume, 0.0518 L/kg) gets the mean composition of the
tissues that have a volume, as httk does. Run from the repository root:

    python scripts/derive_tissue_table.py
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / ".." / "shared" / "data" / "population_tissue_composition_human.csv"
OUT = ROOT / "insilico" / "data" / "tissues" / "tissue_composition_human.csv"

RENAME = {
    "Fcell": "fcell",
    "Fint": "fint",
    "FWc": "fw_cell",
    "FLc": "fl_cell",
    "FPc": "fp_cell",
    "Fn_Lc": "fnl_of_lipid",
    "Fn_PLc": "fnpl_of_lipid",
    "Fa_PLc": "fapl_of_lipid",
    "pH": "ph",
    "Vol (L/kg)": "volume_L_per_kg",
}
COMPOSITION = [c for c in RENAME.values() if c != "volume_L_per_kg"]


def derive(source: Path = SOURCE) -> pd.DataFrame:
    """Wide table, one row per tissue, rounded to the source's precision."""
    long = pd.read_csv(source)
    long = long[(long["Species"] == "Human") & long["variable"].isin(list(RENAME))]
    if long.duplicated(["Tissue", "variable"]).any():
        raise ValueError("source has several values for one tissue and variable")
    wide = long.pivot(index="Tissue", columns="variable", values="value").rename(columns=RENAME)
    wide = wide[list(RENAME.values())].astype(float)
    wide.index.name = "tissue"
    with_volume = wide["volume_L_per_kg"].notna() & wide["fcell"].notna()
    wide.loc["rest", COMPOSITION] = wide.loc[with_volume, COMPOSITION].mean().round(5)
    return wide.reset_index()


def main() -> None:
    table = derive()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(OUT, index=False, float_format="%.6g")
    print(f"wrote {OUT.relative_to(ROOT)}: {len(table)} tissues")


if __name__ == "__main__":
    main()
