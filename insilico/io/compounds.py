"""Compounds of a trial: a CSV/SDF file or inline records -> profiles + failed compounds.

Inline records go through exactly the same code as a file: they are written to a temporary
CSV and read with :func:`insilico.chem.io.read_compounds` (standardization, RDKit molecular
weight, potency nM -> mg/L, range checks of measured values), then profiled with
:func:`insilico.chem.profile.build_profiles` (measured values first, then in-vitro scaling,
then the structure-based predictor). A compound that cannot be used is returned in ``failed``
with its reason; the others go on.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd

from insilico.errors import SpecError

#: Extra per-compound columns a CSV may carry and the trial layer uses (not PK).
TRIAL_COLUMNS = ("source",)


def compounds_table(compounds, source: str | None = None) -> pd.DataFrame:
    """Read the trial's compounds into the standardized table of ``read_compounds``.

    Parameters
    ----------
    compounds : list of CompoundSpec or CompoundFileSpec
        Inline records, or a file spec with an absolute ``path``.
    source : str, optional
        The protocol file (for error messages).
    """
    from insilico.chem.io import read_compounds

    if hasattr(compounds, "path"):
        path = Path(compounds.path)
        if not path.is_file():
            raise SpecError("compounds.path", str(path), "an existing .csv or .sdf file", source)
        table = read_compounds(path)
    else:
        if not compounds:
            raise SpecError("compounds", [], "at least one compound", source)
        rows = [c.model_dump(exclude_none=True) for c in compounds]
        frame = pd.DataFrame(rows)
        with tempfile.TemporaryDirectory(prefix="insilico-compounds-") as tmp:
            csv = Path(tmp) / "compounds.csv"
            frame.to_csv(csv, index=False)
            table = read_compounds(csv)
    if len(table) == 0:
        raise SpecError("compounds", "an empty table", "at least one compound", source)
    return table


def resolve_compounds(compounds, source: str | None = None):
    """Profiles of the usable compounds and the failed ones with their reasons.

    Returns
    -------
    profiles : list of insilico.chem.profile.CompoundProfile
        In input order.
    failed : pandas.DataFrame
        Columns ``id``, ``error``.
    table : pandas.DataFrame
        The standardized compound table (for the manifest).
    """
    from insilico.chem.profile import build_profiles

    table = compounds_table(compounds, source)
    profiles, failed = build_profiles(table)
    return profiles, failed.reset_index(drop=True), table
