"""Virtual patients from population statistics (NHANES demographics, organ function, CYP
phenotypes, special populations, inclusion criteria).

>>> from insilico.cohort import CohortSpec, sample_cohort
>>> df = sample_cohort(CohortSpec(name="us_adults"), n=10, seed=1)
>>> list(df.patient_id)
[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
"""

from insilico.cohort.sampler import (
    COLUMN_DESCRIPTIONS,
    COLUMNS,
    iter_cohort_blocks,
    sample_cohort,
    sample_cohort_range,
)
from insilico.cohort.spec import CohortSpec, Criterion, load_cohort_spec
from insilico.cohort.summary import summarize_cohort
from insilico.cohort.writer import write_cohort

__all__ = [
    "COLUMN_DESCRIPTIONS",
    "COLUMNS",
    "CohortSpec",
    "Criterion",
    "iter_cohort_blocks",
    "load_cohort_spec",
    "sample_cohort",
    "sample_cohort_range",
    "summarize_cohort",
    "write_cohort",
]
