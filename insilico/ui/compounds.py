"""Compounds for the app: uploads and pasted SMILES -> the table a pharmacologist reads.

Uploads are parsed as data only (CSV text or SDF text, never pickle) and size-limited
(:data:`MAX_UPLOAD_BYTES`). Everything goes through the library's reader and profile builder
(:func:`insilico.chem.io.read_compounds`, :func:`insilico.chem.profile.build_profiles`), so a
compound looks the same here as in a trial run.

The working copy of the compounds is the *raw* table (strings: ``id``, ``name``, ``smiles`` and
measured columns as typed); :func:`assemble` turns it into the displayed table and inline edits
(:func:`apply_edits`) change the raw table only.
"""

from __future__ import annotations

import base64
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from insilico.errors import DatasetError, SpecError
from insilico.trial.spec import MEASURED_FIELDS
from insilico.twin import FRACTIONS

#: Largest accepted upload (bytes).
MAX_UPLOAD_BYTES = 5 * 2**20
#: Largest number of compounds handled in the app at once.
MAX_COMPOUNDS = 500
#: Measured values editable inline (name -> label with unit).
EDITABLE = {
    "potency_nM": "Potency (nM)",
    "fu": "fu (fraction unbound)",
    "herg_ic50_uM": "hERG IC50 (µM)",
}
#: Columns kept from an upload into the raw table (besides id, name, smiles): the measured
#: fields a protocol compound may carry, then in-vitro inputs and provenance.
RAW_COLUMNS = (
    *MEASURED_FIELDS,
    "clint_hep_uL_min_per_1e6_cells",
    "clint_mic_uL_min_per_mg",
    "blood_plasma_ratio",
    "logd74",
    "pka",
    "source",
)
#: Two-sided 90 % normal quantile (intervals of the PK values from their log-scale SD).
Z90 = 1.6448536269514722
#: PK fields shown with value, 90 % interval and source (field -> label with unit).
PK_DISPLAY = {
    "cl_L_per_h": "CL (L/h)",
    "v_L": "Vss (L)",
    "t_half_h": "t½ (h)",
    "fu": "fu",
    "f_bio": "F oral",
    "ka_per_h": "ka (1/h)",
}
#: Descriptors shown (column -> label with unit).
DESCRIPTORS = {
    "mw_g_per_mol": "MW (g/mol)",
    "clogp": "cLogP",
    "tpsa_A2": "TPSA (Å²)",
    "hbd": "HBD",
    "hba": "HBA",
    "ionization_class": "ionization",
}


def _check_size(data: bytes) -> None:
    if len(data) > MAX_UPLOAD_BYTES:
        raise SpecError(
            "upload",
            f"{len(data) / 2**20:.1f} MB",
            f"a file of at most {MAX_UPLOAD_BYTES // 2**20} MB",
        )


def read_upload(data: bytes, filename: str) -> pd.DataFrame:
    """Parse an uploaded ``.csv`` or ``.sdf``/``.sd`` file into the raw compound table.

    Returns strings: ``id``, ``name``, ``smiles`` (as given, or from the SDF mol block), the
    known measured columns present, and ``upload_error`` (an SDF record that could not be read;
    '' otherwise).
    """
    _check_size(data)
    suffix = Path(str(filename)).suffix.lower()
    if suffix not in (".csv", ".sdf", ".sd"):
        raise SpecError("upload", str(filename), "a file ending in .csv, .sdf or .sd")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SpecError("upload", str(filename), "a UTF-8 text file (CSV or SDF)") from None
    n = _count_records(text, suffix)
    if n > MAX_COMPOUNDS:
        raise SpecError("upload", f"{n} compounds", f"at most {MAX_COMPOUNDS} compounds")
    from insilico.chem.io import read_compounds

    with tempfile.TemporaryDirectory(prefix="insilico-upload-") as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_text(text, encoding="utf-8")
        try:
            table = read_compounds(path)
        except DatasetError as exc:  # name the user's file, not the temporary copy
            raise DatasetError(str(filename), exc.row, exc.column, exc.value, exc.allowed) from None
    raw = pd.DataFrame(
        {
            "id": table["id"].astype(str),
            "name": table["name"].astype(str),
            "smiles": table["input_smiles"].fillna("").astype(str),
        }
    )
    for c in RAW_COLUMNS:
        if c in table:
            v = table[c]
            raw[c] = v.astype(str) if c == "source" else _num_text(v)
    sdf = suffix != ".csv"
    raw["upload_error"] = np.where(
        sdf & (raw["smiles"] == "") & ~table["valid"].to_numpy(bool), table["error"].astype(str), ""
    )
    return raw


def _count_records(text: str, suffix: str) -> int:
    """Compounds in an upload, counted before any is read (a 5 MB CSV holds ~400,000 short
    rows: reading them all before refusing took minutes): CSV records after the header
    (quoted newlines respected, blank lines skipped), or SDF ``$$$$`` terminators (a last
    record without one counts too)."""
    if suffix == ".csv":
        import csv
        import io

        rows = sum(1 for row in csv.reader(io.StringIO(text)) if any(c.strip() for c in row))
        return max(rows - 1, 0)
    lines = text.splitlines()
    ends = [i for i, line in enumerate(lines) if line.strip() == "$$$$"]
    tail = lines[ends[-1] + 1 :] if ends else lines
    return len(ends) + (1 if any(line.strip() for line in tail) else 0)


def _num_text(v: pd.Series) -> pd.Series:
    """Measured values as text for the raw table ('' for missing)."""
    return v.map(lambda x: "" if x is None or (isinstance(x, float) and math.isnan(x)) else str(x))


def parse_smiles_text(text: str) -> pd.DataFrame:
    """Pasted lines ``SMILES [id [name ...]]`` (whitespace- or comma-separated) -> raw table."""
    data = str(text).encode("utf-8")
    _check_size(data)
    rows: list[dict[str, str]] = []
    for line in str(text).splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p for p in line.replace(",", " ").replace("\t", " ").split(" ") if p]
        smi = parts[0]
        cid = parts[1] if len(parts) > 1 else f"compound_{len(rows) + 1}"
        name = " ".join(parts[2:]) if len(parts) > 2 else cid
        rows.append({"id": cid, "name": name, "smiles": smi})
    if len(rows) > MAX_COMPOUNDS:
        raise SpecError("smiles", f"{len(rows)} lines", f"at most {MAX_COMPOUNDS} compounds")
    return pd.DataFrame(rows, columns=["id", "name", "smiles"]).assign(upload_error="")


def raw_from_records(records: list[dict]) -> pd.DataFrame:
    """Raw table from inline compound records (a trial YAML's ``compounds`` list)."""
    raw = pd.DataFrame(
        {
            "id": [str(r.get("id", "")) for r in records],
            "name": [str(r.get("name", "") or r.get("id", "")) for r in records],
            "smiles": [str(r.get("smiles", "")) for r in records],
        }
    )
    for c in RAW_COLUMNS:
        if any(c in r for r in records):
            raw[c] = ["" if r.get(c) is None else str(r.get(c)) for r in records]
    raw["upload_error"] = ""
    return raw


@dataclass(frozen=True)
class CompoundSet:
    """The assembled compounds.

    Attributes
    ----------
    table : DataFrame
        One row per input compound, display-ready: ``id``, ``name``, ``valid``, ``problem``
        (the reason a row cannot be used), ``structure`` (SVG data URI), descriptors, per PK
        field value / 90 % interval / source, the editable measured values, ``warnings``.
    records : list of dict
        Inline compound records of the valid compounds (for a trial design).
    """

    table: pd.DataFrame
    records: list[dict]

    @property
    def n_valid(self) -> int:
        return int(self.table["valid"].sum()) if len(self.table) else 0


def svg_data_uri(smiles: str, width: int = 220, height: int = 150) -> str:
    """RDKit 2D depiction as a ``data:image/svg+xml;base64,...`` URI."""
    from insilico.chem.descriptors import depict_svg

    svg = depict_svg(str(smiles), width=width, height=height)
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def _interval(value: float, sd_log: float, fraction: bool = False) -> str:
    """``value (lo–hi)``: the 90 % interval ``value·exp(±1.645·sd_log)``; a fraction's upper
    limit is at most 1, as in the trial's compound draws (:func:`insilico.trial.block`)."""
    if not np.isfinite(value):
        return ""
    if not np.isfinite(sd_log) or sd_log <= 0:
        return f"{value:.3g}"
    lo, hi = value * math.exp(-Z90 * sd_log), value * math.exp(Z90 * sd_log)
    if fraction:
        hi = min(hi, 1.0)
    return f"{value:.3g} ({lo:.3g}–{hi:.3g})"


def assemble(raw: pd.DataFrame) -> CompoundSet:
    """Read, standardize, describe and profile the raw compounds (see :class:`CompoundSet`).

    Invalid rows keep their reason in ``problem``; the valid ones are profiled. PK values are
    shown as ``value (90 % interval)`` from each parameter's log-scale uncertainty
    (``exp(±1.645·sd_log)``), with its source (measured / literature / in-vitro / predicted).
    """
    from insilico.chem.descriptors import compute_descriptors
    from insilico.chem.io import read_compounds
    from insilico.chem.profile import build_profiles

    raw = raw.reset_index(drop=True)
    if len(raw) == 0:
        return CompoundSet(pd.DataFrame(columns=["id", "name", "valid", "problem"]), [])
    csv_cols = [c for c in raw.columns if c != "upload_error"]
    with tempfile.TemporaryDirectory(prefix="insilico-compounds-") as tmp:
        path = Path(tmp) / "compounds.csv"
        raw[csv_cols].to_csv(path, index=False)
        table = read_compounds(path)
    upload_error = raw.get("upload_error", pd.Series([""] * len(raw))).fillna("").astype(str)
    table.loc[upload_error != "", "error"] = upload_error[upload_error != ""]
    profiles, failed = build_profiles(table)
    by_id = {p.id: p for p in profiles}
    reasons = dict(zip(failed["id"].astype(str), failed["error"].astype(str), strict=True))
    desc = compute_descriptors(table["smiles"].fillna("").astype(str).tolist())

    out = pd.DataFrame(
        {
            "id": table["id"].astype(str),
            "name": table["name"].astype(str),
            "valid": [str(i) in by_id for i in table["id"]],
            "problem": [reasons.get(str(i), "") for i in table["id"]],
            "structure": [
                svg_data_uri(s) if ok else ""
                for s, ok in zip(table["smiles"], table["valid"], strict=True)
            ],
            "smiles": table["smiles"].fillna("").astype(str),
        }
    )
    # duplicated ids: the reason belongs to the later row only
    dup = table["id"].duplicated(keep="first").to_numpy()
    out.loc[dup, "valid"] = False
    out.loc[dup, "problem"] = table.loc[dup, "error"].astype(str)
    for c, label in DESCRIPTORS.items():
        out[label] = desc[c].to_numpy() if c in desc else np.nan
    for f, label in PK_DISPLAY.items():
        vals, srcs = [], []
        for cid, ok in zip(out["id"], out["valid"], strict=True):
            p = getattr(by_id[cid], f, None) if ok else None
            vals.append(_interval(p.value, p.sd_log, f in FRACTIONS) if p is not None else "")
            srcs.append(p.source if p is not None else "")
        out[f"{label} (90 % interval)"] = vals
        out[f"{label} source"] = srcs
    for c, label in EDITABLE.items():
        out[label] = pd.to_numeric(table[c], errors="coerce") if c in table else np.nan
    warnings = []
    for cid, ok in zip(out["id"], out["valid"], strict=True):
        w = []
        p = by_id.get(cid) if ok else None
        if p is not None:
            if p.in_domain is False:
                w.append("outside the structure model's applicability domain")
            if p.potency_mg_per_L is None:
                w.append("no potency: no potency-driven PD or AE model")
            if p.herg_ic50_mg_per_L is None:
                w.append("no hERG IC50")
            w.extend(n for n in p.notes if n)
        warnings.append("; ".join(w))
    out["warnings"] = warnings
    records = [_record(raw.iloc[i]) for i in range(len(raw)) if bool(out.at[i, "valid"])]
    return CompoundSet(out, records)


def _record(row: pd.Series) -> dict:
    """Inline trial record of a raw row: id, name, smiles and the trial's measured fields."""
    from insilico.trial.spec import MEASURED_FIELDS

    rec: dict = {"id": str(row["id"]), "name": str(row.get("name", "") or row["id"])}
    rec["smiles"] = str(row["smiles"])
    for f in MEASURED_FIELDS:
        v = row.get(f)
        if v is None or str(v).strip() in ("", "nan", "None"):
            continue
        rec[f] = float(v)
    src = row.get("source")
    if isinstance(src, str) and src.strip() and src != "nan":
        rec["source"] = src.strip()
    return rec


def apply_edits(raw: pd.DataFrame, edits: dict[int, dict[str, object]]) -> pd.DataFrame:
    """A copy of the raw table with edited measured values.

    ``edits`` maps a row position to ``{label or column: value}`` (labels of :data:`EDITABLE`
    are accepted, as a data editor reports them); ``None``/NaN clears the value.
    """
    label_to_col = {v: k for k, v in EDITABLE.items()}
    out = raw.copy()
    for i, changes in edits.items():
        for key, value in changes.items():
            col = label_to_col.get(key, key)
            if col not in EDITABLE:
                raise SpecError("edit", key, f"one of {list(EDITABLE.values())}")
            if col not in out:
                out[col] = ""
            missing = value is None or (isinstance(value, float) and math.isnan(value))
            out.loc[int(i), col] = "" if missing else str(value)
    return out


def merge_raw(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``a`` then ``b`` (columns united, missing values '')."""
    out = pd.concat([a, b], ignore_index=True)
    return out.astype(object).where(out.notna(), "")
