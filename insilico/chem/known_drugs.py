"""Known drugs: measured human PK of marketed drugs, matched by structure.

A compound whose structure is a drug of the Lombardo 2018 intravenous PK database (Lombardo
F, Berellini G, Obach RS, Drug Metab Dispos 2018;46:1466, doi:10.1124/dmd.118.082966; the
table the structure-based model is trained on) gets that drug's measured clearance, volume
of distribution at steady state, fraction unbound and half-life wherever the user gives no
value of their own: a measurement beats a prediction from structure (warfarin's predicted
clearance is 3.4-fold off its measured one). The profile marks these values with the source
``literature`` and names the drug.

Matching is by standardized InChIKey (:mod:`insilico.chem.standardize`); when no key matches
exactly, by its first block (the connectivity "skeleton", stereochemistry and charge layers
ignored): the median of the stereoisomers listed. The table is derived by
``scripts/derive_known_drugs.py`` (see ``insilico/data/known_drugs/SOURCE.md``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

KNOWN_DRUGS_CSV = Path(__file__).resolve().parents[1] / "data" / "known_drugs" / "human_pk.csv"
#: Measured columns of the table (units in the names; the compound-table columns they fill).
VALUE_COLUMNS = ("cl_mL_min_kg", "vdss_L_per_kg", "fu", "t_half_h")
#: Length of an InChIKey's first block (the connectivity skeleton).
SKELETON_CHARS = 14
REFERENCE = "Lombardo 2018"


@lru_cache(maxsize=1)
def known_drugs() -> pd.DataFrame:
    """The shipped table: ``inchikey``, ``name`` and :data:`VALUE_COLUMNS`."""
    table = pd.read_csv(KNOWN_DRUGS_CSV, dtype={"inchikey": str, "name": str})
    table["name"] = table["name"].fillna("")
    return table


def match_known_drugs(inchikeys) -> pd.DataFrame:
    """The known drug of each InChIKey, one row per key, in order.

    Returns
    -------
    pandas.DataFrame
        :data:`VALUE_COLUMNS` (NaN where the drug's value is missing or nothing matched),
        ``known_drug`` (the drug's name, else its InChIKey; "" when nothing matched) and
        ``known_match`` (``InChIKey``, ``skeleton of N stereoisomers`` or "").
    """
    table = known_drugs()
    keys = pd.Series(list(inchikeys), dtype=object).fillna("").astype(str)
    out = pd.DataFrame(np.nan, index=range(len(keys)), columns=list(VALUE_COLUMNS))
    drug = np.full(len(keys), "", dtype=object)
    how = np.full(len(keys), "", dtype=object)
    exact = table.set_index("inchikey")
    skeleton = table["inchikey"].str[:SKELETON_CHARS]
    for i, key in enumerate(keys):
        if not key:
            continue
        if key in exact.index:
            row = exact.loc[key]
            out.loc[i, list(VALUE_COLUMNS)] = row[list(VALUE_COLUMNS)].to_numpy(dtype=float)
            drug[i], how[i] = row["name"] or key, "InChIKey"
            continue
        same = table[skeleton == key[:SKELETON_CHARS]]
        if len(same):
            out.loc[i, list(VALUE_COLUMNS)] = same[list(VALUE_COLUMNS)].median().to_numpy()
            names = sorted({n for n in same["name"] if n})
            drug[i] = " / ".join(names) if names else same["inchikey"].iloc[0]
            how[i] = f"skeleton of {len(same)} stereoisomer{'s' if len(same) > 1 else ''}"
    out["known_drug"] = drug
    out["known_match"] = how
    return out


__all__ = ["KNOWN_DRUGS_CSV", "REFERENCE", "VALUE_COLUMNS", "known_drugs", "match_known_drugs"]
