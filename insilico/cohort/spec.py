"""CohortSpec: a virtual population as data (YAML ``kind: cohort``, ``schema_version: 1``).

Every field has a default, so ``CohortSpec(name="x")`` is US adults 18-79 as NHANES 2013-2018
sees them. Fractions (sex, race/ethnicity, renal category, Child-Pugh class, phenotypes) must
sum to 1; criteria are data (field, operator, value), never evaluated strings.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from insilico.cohort.hepatic import CHILD_PUGH_CLASSES
from insilico.cohort.pgx import GENES, PHENOTYPES
from insilico.cohort.physiology import RENAL_CATEGORY_NAMES
from insilico.io.specs import FrozenSpec, load_spec

#: NHANES race/ethnicity groups (the values of the ``race_ethnicity`` column).
RACE_GROUPS: tuple[str, ...] = (
    "Mexican American",
    "Other Hispanic",
    "Non-Hispanic White",
    "Non-Hispanic Black",
    "Other",
)

#: Pharmacogenetic ancestry groups (CPIC/PharmGKB biogeographic groups).
ANCESTRY_GROUPS: tuple[str, ...] = (
    "African American/Afro-Caribbean",
    "American",
    "Central/South Asian",
    "East Asian",
    "European",
    "Latino",
    "Near Eastern",
    "Oceanian",
    "Sub-Saharan African",
)

#: NHANES sample range of adult ages covered by the shipped tables.
AGE_LIMITS_YEARS = (18.0, 79.0)

NUMERIC_FIELDS: tuple[str, ...] = (
    "age_years",
    "weight_kg",
    "height_cm",
    "bmi_kg_m2",
    "bsa_m2",
    "lbw_kg",
    "serum_creatinine_mg_dL",
    "egfr_mL_min_1_73m2",
    "crcl_mL_per_min",
    "albumin_g_per_L",
)
CATEGORICAL_FIELDS: dict[str, tuple[str, ...]] = {
    "sex": ("F", "M"),
    "race_ethnicity": RACE_GROUPS,
    "renal_category": RENAL_CATEGORY_NAMES,
    "child_pugh": CHILD_PUGH_CLASSES,
    "cyp2d6_phenotype": PHENOTYPES,
    "cyp2c19_phenotype": PHENOTYPES,
    "cyp2c9_phenotype": PHENOTYPES,
}
NUMERIC_OPS = ("<", "<=", ">", ">=", "between")
CATEGORICAL_OPS = ("==", "!=", "in", "not_in")

FRACTION_TOL = 1e-6


def _check_fractions(value: dict[str, float] | None, allowed: tuple[str, ...]):
    if value is None:
        return value
    if not value:
        raise ValueError(f"a non-empty mapping with keys among {list(allowed)}")
    for key, f in value.items():
        if key not in allowed:
            raise ValueError(f"key {key!r} is not allowed; keys among {list(allowed)}")
        if not (isinstance(f, int | float) and math.isfinite(f) and f >= 0):
            raise ValueError(f"fraction for {key!r} must be a finite number >= 0, got {f!r}")
    total = sum(value.values())
    if abs(total - 1.0) > FRACTION_TOL:
        raise ValueError(f"fractions must sum to 1 (got {total:.6g})")
    return value


class AgeRange(FrozenSpec):
    """Inclusive age range in whole years, within the NHANES adult range 18-79."""

    min: float = AGE_LIMITS_YEARS[0]
    max: float = AGE_LIMITS_YEARS[1]

    @model_validator(mode="after")
    def _check(self) -> AgeRange:
        lo, hi = AGE_LIMITS_YEARS
        if not (lo <= self.min <= hi and lo <= self.max <= hi):
            raise ValueError(f"min and max within [{lo:g}, {hi:g}] years (the NHANES adult range)")
        if math.floor(self.max) < math.ceil(self.min):
            raise ValueError("a non-empty range (min <= max, containing a whole year of age)")
        return self


class Criterion(FrozenSpec):
    """One inclusion criterion: ``field op value`` (patients failing it are excluded).

    Numeric fields take ``<``, ``<=``, ``>``, ``>=`` (a number) or ``between`` (``[low, high]``,
    inclusive); categorical fields take ``==``, ``!=`` (a value) or ``in``, ``not_in`` (a list).
    """

    field: Literal[NUMERIC_FIELDS + tuple(CATEGORICAL_FIELDS)]  # type: ignore[valid-type]
    op: Literal["<", "<=", ">", ">=", "between", "==", "!=", "in", "not_in"]
    value: float | str | list[float | str]

    @model_validator(mode="after")
    def _check(self) -> Criterion:
        v = self.value
        if self.field in NUMERIC_FIELDS:
            if self.op not in NUMERIC_OPS:
                raise ValueError(f"op for numeric field {self.field!r}: one of {NUMERIC_OPS}")
            if self.op == "between":
                nums = (
                    [x for x in v if isinstance(x, float | int) and math.isfinite(x)]
                    if isinstance(v, list)
                    else []
                )
                ok = isinstance(v, list) and len(v) == 2 == len(nums) and nums[0] <= nums[1]
                if not ok:
                    raise ValueError("value for 'between': [low, high] numbers with low <= high")
            elif not (isinstance(v, float | int) and math.isfinite(v)):
                raise ValueError(f"value for {self.op!r}: a finite number")
        else:
            allowed = CATEGORICAL_FIELDS[self.field]
            if self.op not in CATEGORICAL_OPS:
                raise ValueError(
                    f"op for categorical field {self.field!r}: one of {CATEGORICAL_OPS}"
                )
            values: list[object]
            if self.op in ("in", "not_in"):
                if not (isinstance(v, list) and v):
                    raise ValueError(
                        f"value for {self.op!r}: a non-empty list among {list(allowed)}"
                    )
                values = list(v)
            else:
                values = [v]
            for x in values:
                if x not in allowed:
                    raise ValueError(f"value {x!r} for {self.field!r}: one of {list(allowed)}")
        return self

    def bounds(self) -> tuple[float, float]:
        """``(low, high)`` of a ``between`` criterion."""
        v = self.value
        if self.op != "between" or not isinstance(v, list) or len(v) != 2:
            raise ValueError(f"{self.field} {self.op} {v!r}: not a 'between' criterion")
        return float(v[0]), float(v[1])


class CohortSpec(FrozenSpec):
    """A virtual population: who, in which proportions, with which inclusion criteria.

    Attributes
    ----------
    name, description, source : str
        Identification; ``source`` says where the numbers come from.
    age_years : AgeRange
        Inclusive age range (whole years, 18-79); ages are drawn from NHANES survey weights.
    sex_fractions : dict, optional
        ``{"F": f, "M": m}``; default: NHANES composition within the age range.
    race_ethnicity_fractions : dict, optional
        Fractions over the NHANES groups; default: NHANES composition.
    renal_category_fractions : dict, optional
        Fractions over FDA eGFR categories (normal, mild, moderate, severe, kidney_failure);
        each patient is drawn from the population conditional on its category (so, e.g.,
        severe impairment comes with older ages). Default: as the population falls.
    child_pugh_fractions : dict
        Fractions over ``none``, ``A``, ``B``, ``C`` (default all ``none``).
    albumin_mean_g_per_L, albumin_sd_g_per_L : float
        Serum albumin of patients without hepatic impairment (normal, clipped to 15-60 g/L).
    pgx_ancestry : dict, optional
        Overrides of the race/ethnicity -> pharmacogenetic ancestry mapping.
    phenotype_frequencies : dict, optional
        Per gene (``cyp2d6``, ``cyp2c19``, ``cyp2c9``) phenotype fractions used for every
        patient instead of the ancestry-specific tables.
    criteria : list of Criterion
        Inclusion criteria, all of which a patient must meet.
    max_oversampling : float
        Largest acceptable ratio of candidates drawn to patients kept.

    Notes
    -----
    Sex, race/ethnicity and Child-Pugh fractions apply to the candidates, before the criteria;
    renal-category fractions are kept exactly.
    """

    kind: Literal["cohort"] = "cohort"
    schema_version: Literal[1] = 1
    name: str = "cohort"
    description: str = ""
    source: str = ""
    age_years: AgeRange = Field(default_factory=AgeRange)
    sex_fractions: dict[str, float] | None = None
    race_ethnicity_fractions: dict[str, float] | None = None
    renal_category_fractions: dict[str, float] | None = None
    child_pugh_fractions: dict[str, float] = Field(default_factory=lambda: {"none": 1.0})
    albumin_mean_g_per_L: float = Field(41.8, gt=15.0, lt=60.0)
    albumin_sd_g_per_L: float = Field(3.5, ge=0.0, le=15.0)
    pgx_ancestry: dict[str, str] | None = None
    phenotype_frequencies: dict[str, dict[str, float]] | None = None
    criteria: list[Criterion] = Field(default_factory=list)
    max_oversampling: float = Field(200.0, gt=1.0, le=1e5)

    @field_validator("sex_fractions")
    @classmethod
    def _sex(cls, v):
        return _check_fractions(v, ("F", "M"))

    @field_validator("race_ethnicity_fractions")
    @classmethod
    def _race(cls, v):
        return _check_fractions(v, RACE_GROUPS)

    @field_validator("renal_category_fractions")
    @classmethod
    def _renal(cls, v):
        return _check_fractions(v, RENAL_CATEGORY_NAMES)

    @field_validator("child_pugh_fractions")
    @classmethod
    def _cp(cls, v):
        return _check_fractions(v, CHILD_PUGH_CLASSES)

    @field_validator("pgx_ancestry")
    @classmethod
    def _ancestry(cls, v):
        if v is None:
            return v
        for race, anc in v.items():
            if race not in RACE_GROUPS:
                raise ValueError(f"key {race!r}: one of {list(RACE_GROUPS)}")
            if anc not in ANCESTRY_GROUPS:
                raise ValueError(f"ancestry {anc!r}: one of {list(ANCESTRY_GROUPS)}")
        return v

    @field_validator("phenotype_frequencies")
    @classmethod
    def _pheno(cls, v):
        if v is None:
            return v
        for gene, freqs in v.items():
            if gene not in GENES:
                raise ValueError(f"gene {gene!r}: one of {list(GENES)}")
            try:
                _check_fractions(freqs, PHENOTYPES)
            except ValueError as exc:
                raise ValueError(f"{gene}: {exc}") from None
        return v


def load_cohort_spec(path: str | Path | CohortSpec | dict[str, Any]) -> CohortSpec:
    """Load a cohort YAML file (``kind: cohort``, ``schema_version: 1``) into a CohortSpec.

    A :class:`CohortSpec` is returned unchanged and a mapping is validated; errors are
    :class:`insilico.errors.SpecError` naming the file, the field, the value and what is allowed.
    """
    if isinstance(path, CohortSpec):
        return path
    if isinstance(path, dict):
        from insilico.io.specs import validate_spec

        return validate_spec(CohortSpec, path)
    return load_spec(CohortSpec, path, kind="cohort")
