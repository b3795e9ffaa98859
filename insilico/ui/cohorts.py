"""Cohorts for the app: the shipped presets, a preview sample and its tables.

A cohort in a design is either a preset path (``../cohorts/<name>.yaml``, relative to the
``workflows/`` folder, as in the shipped protocols) or, once criteria are added, the preset's
mapping with the criteria appended (an inline cohort, which the trial YAML accepts).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from insilico.cohort import COLUMN_DESCRIPTIONS, CohortSpec, load_cohort_spec, sample_cohort
from insilico.cohort.spec import CATEGORICAL_FIELDS, NUMERIC_FIELDS
from insilico.errors import SpecError
from insilico.io.specs import read_yaml

#: The repository's folders (a source checkout).
REPO_DIR = Path(__file__).resolve().parents[2]
COHORTS_DIR = REPO_DIR / "cohorts"
WORKFLOWS_DIR = REPO_DIR / "workflows"
#: Largest preview sample.
MAX_PREVIEW = 20_000

#: Histograms of the preview (column -> axis label with unit).
HISTOGRAM_COLUMNS = {
    "age_years": "Age (years)",
    "weight_kg": "Body weight (kg)",
    "egfr_mL_min_1_73m2": "eGFR (mL/min/1.73 m²)",
    "albumin_g_per_L": "Albumin (g/L)",
}
PHENOTYPE_COLUMNS = ("cyp2d6_phenotype", "cyp2c19_phenotype", "cyp2c9_phenotype")
GROUP_COLUMNS = ("race_ethnicity", "sex", "renal_category", "child_pugh")


def presets() -> dict[str, Path]:
    """Shipped cohort presets: name (file stem) -> path, sorted by name."""
    if not COHORTS_DIR.is_dir():
        return {}
    return {p.stem: p for p in sorted(COHORTS_DIR.glob("*.yaml"))}


def preset_reference(name: str) -> str:
    """The design's ``cohort`` value for a preset: a path relative to ``workflows/``."""
    if name not in presets():
        raise SpecError("cohort", name, f"one of {sorted(presets())}")
    return f"../cohorts/{name}.yaml"


def preset_of(cohort: object) -> str | None:
    """The preset name a design's ``cohort`` value refers to (None for other values)."""
    if isinstance(cohort, str):
        stem = Path(cohort).stem
        return stem if stem in presets() and Path(cohort).name == f"{stem}.yaml" else None
    if isinstance(cohort, dict):
        name = cohort.get("name")
        return name if name in presets() else None
    return None


def preset_mapping(name: str) -> dict:
    """The preset file as a mapping."""
    if name not in presets():
        raise SpecError("cohort", name, f"one of {sorted(presets())}")
    return read_yaml(presets()[name])


def cohort_value(name: str, criteria: list[dict] | None = None) -> str | dict:
    """The design's ``cohort`` value: the preset path, or with criteria the preset mapping
    with the criteria added (validated here, so a bad criterion fails early)."""
    if not criteria:
        return preset_reference(name)
    data = preset_mapping(name)
    data["criteria"] = list(data.get("criteria", [])) + list(criteria)
    load_cohort_spec(data)  # validate: SpecError names the field
    return data


def criteria_from_rows(rows: list[dict]) -> list[dict]:
    """Criteria from editor rows ``field, op, value`` (text value: a number, a word, or a
    comma-separated list for ``between``/``in``/``not_in``). Empty rows are skipped."""
    out = []
    for k, r in enumerate(rows):
        field = str(r.get("field") or "").strip()
        op = str(r.get("op") or "").strip()
        text = str(r.get("value") if r.get("value") is not None else "").strip()
        if not field and not op and not text:
            continue
        if field not in NUMERIC_FIELDS and field not in CATEGORICAL_FIELDS:
            allowed = list(NUMERIC_FIELDS) + list(CATEGORICAL_FIELDS)
            raise SpecError(f"criteria[{k}].field", field, f"one of {allowed}")
        parts = [p.strip() for p in text.split(",") if p.strip()]
        if field in NUMERIC_FIELDS:
            try:
                nums = [float(p) for p in parts]
            except ValueError:
                raise SpecError(
                    f"criteria[{k}].value", text, "a number (two for 'between')"
                ) from None
            value: object = nums if op == "between" else (nums[0] if len(nums) == 1 else nums)
        else:
            value = parts if op in ("in", "not_in") else text
        out.append({"field": field, "op": op, "value": value})
    return out


def cohort_spec(cohort: str | dict, base_dir: Path = WORKFLOWS_DIR) -> CohortSpec:
    """A design's ``cohort`` value as a :class:`CohortSpec` (paths relative to ``base_dir``)."""
    if isinstance(cohort, str):
        path = (Path(base_dir) / cohort).resolve()
        return load_cohort_spec(path)
    return load_cohort_spec(dict(cohort))


def preview(cohort: str | dict, n: int, seed: int) -> pd.DataFrame:
    """A sample of the cohort to look at before running (at most :data:`MAX_PREVIEW`)."""
    n = int(n)
    if not 1 <= n <= MAX_PREVIEW:
        raise SpecError("preview n", n, f"between 1 and {MAX_PREVIEW}")
    return sample_cohort(cohort_spec(cohort), n=n, seed=int(seed))


def histogram_table(cohort: pd.DataFrame, n_bins: int = 30) -> pd.DataFrame:
    """Binned covariates of a preview: ``column, label, bin_lo, bin_hi, n, fraction``."""
    out = []
    for col, label in HISTOGRAM_COLUMNS.items():
        x = cohort[col].to_numpy(dtype=float)
        x = x[np.isfinite(x)]
        if x.size == 0:
            continue
        lo, hi = float(x.min()), float(x.max())
        edges = np.linspace(lo, hi if hi > lo else lo + 1.0, n_bins + 1)
        counts, _ = np.histogram(x, bins=edges)
        out.append(
            pd.DataFrame(
                {
                    "column": col,
                    "label": label,
                    "bin_lo": edges[:-1],
                    "bin_hi": edges[1:],
                    "n": counts,
                    "fraction": counts / x.size,
                }
            )
        )
    return pd.concat(out, ignore_index=True)


def phenotype_frequencies(cohort: pd.DataFrame, by: str = "race_ethnicity") -> pd.DataFrame:
    """Phenotype frequencies per group: ``gene, group, phenotype, n, fraction``."""
    if by not in GROUP_COLUMNS:
        raise SpecError("group by", by, f"one of {list(GROUP_COLUMNS)}")
    out = []
    groups = cohort[by].astype(str)
    for col in PHENOTYPE_COLUMNS:
        gene = col.split("_")[0].upper()
        ct = pd.crosstab(groups, cohort[col].astype(str))
        counts = ct.to_numpy()
        fractions = ct.div(ct.sum(axis=1), axis=0).to_numpy(dtype=float)
        for i, g in enumerate(ct.index):
            for j, ph in enumerate(ct.columns):
                out.append(
                    {
                        "gene": gene,
                        "group": g,
                        "phenotype": ph,
                        "n": int(counts[i, j]),
                        "fraction": float(fractions[i, j]),
                    }
                )
    return pd.DataFrame(out)


def describe_columns() -> pd.DataFrame:
    """What each cohort column holds (units in the names)."""
    return pd.DataFrame(
        {"column": list(COLUMN_DESCRIPTIONS), "meaning": list(COLUMN_DESCRIPTIONS.values())}
    )


CRITERION_FIELDS = tuple(NUMERIC_FIELDS) + tuple(CATEGORICAL_FIELDS)
CRITERION_OPS = ("<", "<=", ">", ">=", "between", "==", "!=", "in", "not_in")
