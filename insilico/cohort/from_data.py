"""A cohort taken from a real study: the subjects of a NONMEM-format dataset.

Each subject of the dataset becomes one patient (patient ``i`` is the dataset's subject
``i mod n_subjects``), with the covariates of its first record (after the dataset's carrying
forward and backward of missing values): every numeric data column under its own name, so a
model's covariate effects (``WT``, ``CRCL``, ...) find them, plus the cohort's standard columns
where the data have them (``weight_kg`` from ``WT``/``WEIGHT``, ``age_years`` from ``AGE``,
``height_cm`` from ``HT``/``HEIGHT``, or as mapped by ``columns``). Standard columns the data
lack are NaN (``sex`` is ``"unknown"``): a protocol that needs them (a mg/kg dose without a
weight, the built-in renal scaling without eGFR) is refused when it runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from insilico.errors import SpecError
from insilico.io.specs import FrozenSpec

#: standard cohort column -> data column names tried, in order (case does not matter)
DEFAULT_NAMES = {
    "weight_kg": ("WT", "WEIGHT", "BW"),
    "age_years": ("AGE",),
    "height_cm": ("HT", "HEIGHT"),
    "egfr_mL_min_1_73m2": ("EGFR",),
    "crcl_mL_per_min": ("CRCL", "CLCR"),
    "bsa_m2": ("BSA",),
}
_NUMERIC = (*DEFAULT_NAMES, "bmi_kg_m2")


class DatasetCohortSpec(FrozenSpec):
    """``cohort: {data: FILE.csv, columns: {weight_kg: WT}}`` in a trial protocol.

    Parameters
    ----------
    data : str
        A NONMEM-format CSV (resolved against the protocol's directory).
    columns : dict of str to str
        Standard cohort column (``weight_kg``, ``age_years``, ...) -> data column, where the
        defaults (:data:`DEFAULT_NAMES`) do not fit.
    """

    data: str
    columns: dict[str, str] = {}


@dataclass(frozen=True)
class DatasetCohort:
    """The subjects of a dataset, one row each (see the module docstring)."""

    source: str
    subjects: pd.DataFrame

    @property
    def n_subjects(self) -> int:
        """Number of subjects in the dataset."""
        return len(self.subjects)


def load_dataset_cohort(spec: DatasetCohortSpec) -> DatasetCohort:
    """Read the dataset of ``spec`` and keep each subject's first-record covariates."""
    from insilico.dataset import read_dataset

    path = Path(spec.data)
    dataset = read_dataset(path, require_dv=False)
    table = dataset.table
    first = table.groupby("SUBJECT", sort=True).head(1).reset_index(drop=True)
    standard = {"ID", "TIME", "EVID", "AMT", "RATE", "CMT", "SS", "II", "ADDL", "MDV", "DV"}
    keep = [c for c in first.columns if c not in standard | {"SUBJECT", "ROW"}]
    out = first[keep].copy()
    out.insert(0, "subject_id", first["ID"].to_numpy())
    folded = {str(c).upper(): c for c in keep}
    for name in spec.columns:
        if name not in _NUMERIC:
            raise SpecError(
                f"cohort.columns.{name}", spec.columns[name], f"one of {sorted(_NUMERIC)}"
            )
    for name, guesses in DEFAULT_NAMES.items():
        given = spec.columns.get(name)
        column: str | None
        if given is not None:
            if given.upper() not in folded:
                raise SpecError(
                    f"cohort.columns.{name}", given, f"a column of {path.name} ({sorted(keep)})"
                )
            column = folded[given.upper()]
        else:
            column = next((folded[g] for g in guesses if g in folded), None)
        values = out[column].to_numpy(dtype=float) if column is not None else np.nan
        out[name] = values
    if "sex" not in out:
        out["sex"] = "unknown"
    for name in ("weight_kg", "age_years"):
        bad = out[name].notna() & ~(out[name] > 0)
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise SpecError(
                f"cohort: {path.name}, subject {out['subject_id'].iloc[i]}, {name}",
                float(out[name].iloc[i]),
                "a value > 0",
            )
    return DatasetCohort(str(path), out)


def dataset_cohort_range(cohort: DatasetCohort, start: int, stop: int) -> pd.DataFrame:
    """Patients ``start <= patient_id < stop``: subject ``patient_id mod n_subjects`` each."""
    ids = np.arange(start, stop, dtype=np.int64)
    rows = cohort.subjects.iloc[ids % cohort.n_subjects].reset_index(drop=True)
    rows.insert(0, "patient_id", ids)
    return rows
