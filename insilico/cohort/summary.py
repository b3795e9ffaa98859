"""Compact description of a sampled cohort (for the CLI and the app)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from insilico.cohort.sampler import CODE_VALUES, COLUMNS


def summarize_cohort(cohort: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Numeric and categorical summaries of a cohort.

    Returns
    -------
    numeric : pandas.DataFrame
        One row per numeric column (index = column name) with ``mean``, ``sd``, ``p5``,
        ``p50``, ``p95``.
    categorical : pandas.DataFrame
        Rows ``(column, value, n, fraction)`` for every categorical column and allowed value.
    """
    num_cols = [c for c in COLUMNS if c not in CODE_VALUES and c != "patient_id"]
    rows = {}
    for c in num_cols:
        x = cohort[c].to_numpy(dtype=float)
        p5, p50, p95 = np.percentile(x, [5, 50, 95]) if len(x) else (np.nan,) * 3
        rows[c] = {
            "mean": x.mean() if len(x) else np.nan,
            "sd": x.std(ddof=1) if len(x) > 1 else np.nan,
            "p5": p5,
            "p50": p50,
            "p95": p95,
        }
    numeric = pd.DataFrame.from_dict(rows, orient="index")
    cat_rows = []
    n = len(cohort)
    for c, values in CODE_VALUES.items():
        counts = cohort[c].astype(object).value_counts()
        for v in values:
            k = int(counts.get(v, 0))
            cat_rows.append({"column": c, "value": v, "n": k, "fraction": k / n if n else np.nan})
    return numeric, pd.DataFrame(cat_rows)
