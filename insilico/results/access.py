"""Run directories as readers use them: safe resolution of a run id, the small tables read
once, patients' columns and rows read from Parquet on demand. Nothing here writes (runs are
written by :mod:`insilico.results.rundir`).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from insilico.errors import SpecError
from insilico.results.rundir import FILES, is_complete, list_runs

#: A run id: what :func:`insilico.results.rundir.new_run_id` makes (no path separators, no
#: leading dot, no ``..``).
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")


def runs_root() -> Path:
    """The runs folder of the app: ``$INSILICO_RUNS`` or ``runs`` (what ``insilico app`` sets)."""
    return Path(os.environ.get("INSILICO_RUNS", "runs"))


def safe_run_path(run_id: object, root: str | Path) -> Path:
    """The directory of a complete run ``run_id`` directly under ``root``, or a SpecError.

    Only a plain run id is accepted (letters, digits, ``_ . -``; no leading dot, no ``..``, no
    separators); the resolved path must be a child of the resolved ``root`` (so a symlink cannot
    lead outside it either). Use this for ids from a URL or a form; paths are refused.
    """
    allowed = f"a run id (letters, digits, '_', '.', '-') of a complete run under {root}"
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.match(run_id) or ".." in run_id:
        raise SpecError("run", run_id, allowed)
    base = Path(root).resolve()
    path = (base / run_id).resolve()
    if path.parent != base or not is_complete(path):
        raise SpecError("run", run_id, allowed)
    return path


@dataclass(frozen=True)
class RunData:
    """A run read once: manifest, summary and bands (small); patients stay on disk."""

    run_id: str
    path: Path
    manifest: dict
    summary: pd.DataFrame
    bands: pd.DataFrame

    @property
    def patients_path(self) -> Path:
        return self.path / "patients.parquet"


def load_run(run_id: str, root: str | Path) -> RunData:
    """Read a run's manifest, summary and bands (safe resolution, see :func:`safe_run_path`)."""
    path = safe_run_path(run_id, root)
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    return RunData(
        run_id,
        path,
        manifest,
        pd.read_parquet(path / "summary.parquet"),
        pd.read_parquet(path / "bands.parquet"),
    )


def run_list(root: str | Path) -> pd.DataFrame:
    """Complete runs under ``root``, newest first (see :func:`insilico.results.list_runs`)."""
    return list_runs(root).drop(columns=["path"])


def root_stamp(root: str | Path) -> float:
    """Modification time of the runs folder (changes when a run is added); 0 if absent."""
    p = Path(root)
    return p.stat().st_mtime if p.is_dir() else 0.0


def run_stamp(run_id: str, root: str | Path) -> float:
    """Modification time of the run's manifest (a cache key that changes if the run does)."""
    return (safe_run_path(run_id, root) / "manifest.json").stat().st_mtime


def read_patient_columns(run: RunData, columns: list[str]) -> pd.DataFrame:
    """Only the given columns of patients.parquet (those that exist); text columns as
    categoricals (a 100,000-patient run has millions of repeated arm names)."""
    import pyarrow.parquet as pq

    names = set(pq.read_schema(run.patients_path).names)
    cols = [c for c in columns if c in names]
    text = [c for c in ("arm", "compound_id", "regimen") if c in cols]
    table = pq.read_table(run.patients_path, columns=cols, read_dictionary=text)
    return table.to_pandas()


def patient_ids(run: RunData, arm: str) -> np.ndarray:
    """Patient ids simulated in an arm (all of them in a paired design)."""
    df = _first_trial(read_patient_columns(run, ["arm", "patient_id", "trial"]))
    return np.sort(df.loc[df["arm"] == arm, "patient_id"].to_numpy())


def _first_trial(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of the first replicate trial (runs with ``replicates`` repeat patient ids)."""
    if "trial" in df and len(df):
        return df[df["trial"] == df["trial"].min()]
    return df


def patient_rows(run: RunData, patient_id: int) -> pd.DataFrame:
    """Every row of patients.parquet of one patient (one per arm the patient received; the
    first replicate trial when the run has several)."""
    rows = pd.read_parquet(run.patients_path, filters=[("patient_id", "==", int(patient_id))])
    return _first_trial(rows).reset_index(drop=True)


def run_file_bytes(run: RunData, name: str) -> bytes:
    """Bytes of one of the run's files (``manifest.json`` or a Parquet file)."""
    if name not in (*FILES, "manifest.json"):
        raise SpecError("file", name, f"one of {[*FILES, 'manifest.json']}")
    return (run.path / name).read_bytes()
