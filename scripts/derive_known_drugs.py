"""Derive the table of known drugs' measured human PK shipped in ``insilico/data/known_drugs``.

Usage::

    PYTHONPATH=. python scripts/derive_known_drugs.py     # rewrites the table (about 10 s)

Reads ``../shared/data/human_pk_lombardo2018.csv`` (next to the repository root: Lombardo F,
Berellini G, Obach RS, Drug Metab Dispos 2018;46:1466, doi:10.1124/dmd.118.082966, as curated
in the PKSmart project, Apache-2.0), standardizes every structure with insilico's own
standardizer (so that the keys are the InChIKeys a user's compound gets) and writes one row
per standardized InChIKey: ``inchikey``, ``name``, ``cl_mL_min_kg``, ``vdss_L_per_kg``,
``fu``, ``t_half_h`` (missing values left empty). Rows whose structure does not standardize
are dropped; two rows with the same standardized key keep the first. Deterministic.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from insilico.chem.known_drugs import KNOWN_DRUGS_CSV, VALUE_COLUMNS  # noqa: E402
from insilico.chem.standardize import standardize_smiles_batch  # noqa: E402

SOURCE = ROOT.parent / "shared" / "data" / "human_pk_lombardo2018.csv"


def main() -> None:
    raw = pd.read_csv(SOURCE)
    std = standardize_smiles_batch(raw["smiles"].tolist())
    table = pd.DataFrame(
        {
            "inchikey": std["inchikey"],
            "name": raw["name"].fillna("").astype(str).str.strip(),
            **{c: pd.to_numeric(raw[c], errors="coerce") for c in VALUE_COLUMNS},
        }
    )
    table = table[std["valid"].to_numpy(dtype=bool)]
    table = table.drop_duplicates("inchikey", keep="first").sort_values("inchikey")
    KNOWN_DRUGS_CSV.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(KNOWN_DRUGS_CSV, index=False, float_format="%.6g")
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()
    print(f"{len(table)} drugs from {len(raw)} rows -> {KNOWN_DRUGS_CSV} (source sha256 {digest})")


if __name__ == "__main__":
    main()
