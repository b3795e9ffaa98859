"""Sample virtual patients from a :class:`CohortSpec` (vectorized, block-deterministic).

Model
-----
1. (sex, race/ethnicity, whole-year age) is drawn from the NHANES 2013-2018 survey-weighted
   cell fractions, restricted to the spec's age range and reweighted to its sex/race fractions.
2. Weight, height and serum creatinine follow a Gaussian copula per sex x 10-year age band
   (correlation of normal scores, including age within the band), with survey-weighted
   marginal quantiles per sex x race x band: normal scores are drawn conditionally on the
   age's normal score, then mapped through the marginal quantile functions.
3. With renal-category fractions, each patient's category is drawn first and the patient is
   drawn from the population *conditional on that category*: the cell is drawn with weight
   ``fraction(cell) * P(category | cell)`` (exact, from the copula) and the creatinine score
   from the conditional normal truncated to the category's eGFR range. Severe impairment thus
   comes with older ages and its other covariates stay consistent.
4. Derived covariates (BMI, BSA, LBW, eGFR, CrCL), albumin by Child-Pugh class, CYP
   phenotypes from ancestry-specific frequencies.
5. Inclusion criteria by rejection: candidates are drawn per fixed block of ``PATIENT_BLOCK``
   patient ids from a stream keyed ``(seed, "cohort", block, attempt)`` and the first passing
   ones are kept, so patient ``i`` is the same whatever range or block size it is requested in.
   Candidates with an implausible joint body size (BMI outside 10-80 kg/m^2, from extrapolated
   marginal tails) are rejected the same way. The batch size comes from a seed-independent
   pilot of 8192 candidates, which also turns impossible criteria, or criteria needing more
   than ``spec.max_oversampling`` candidates per patient, into a :class:`SpecError`.

Sex, race/ethnicity and Child-Pugh fractions describe the candidates, before criteria (criteria
that pass men and women at different rates shift the kept sex ratio); renal-category fractions
are exact, as each patient's category is drawn first and enforced.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from insilico.cohort import hepatic, physiology
from insilico.cohort.pgx import GENES, PHENOTYPES
from insilico.cohort.spec import (
    ANCESTRY_GROUPS,
    CATEGORICAL_FIELDS,
    RACE_GROUPS,
    CohortSpec,
    Criterion,
)
from insilico.cohort.tables import (
    N_BANDS,
    PopulationTables,
    band_index,
    inverse_quantile_map,
    load_population_tables,
    quantile_map,
    stratum_index,
)
from insilico.errors import SpecError
from insilico.rng import PATIENT_BLOCK, purpose_key

PURPOSE = "cohort"
PILOT_SIZE = 8192
MAX_ATTEMPTS = 64
PLAUSIBLE_BMI_KG_M2 = (10.0, 80.0)

#: Physiological bounds applied after the marginal maps (extrapolated tails are clipped).
BOUNDS = {
    "weight_kg": (25.0, 300.0),
    "height_cm": (120.0, 215.0),
    "serum_creatinine_mg_dL": (0.2, 20.0),
    "albumin_g_per_L": (15.0, 60.0),
}

COLUMNS: tuple[str, ...] = (
    "patient_id",
    "age_years",
    "sex",
    "race_ethnicity",
    "weight_kg",
    "height_cm",
    "bmi_kg_m2",
    "bsa_m2",
    "lbw_kg",
    "serum_creatinine_mg_dL",
    "egfr_mL_min_1_73m2",
    "crcl_mL_per_min",
    "albumin_g_per_L",
    "renal_category",
    "child_pugh",
    "cyp2d6_phenotype",
    "cyp2c19_phenotype",
    "cyp2c9_phenotype",
)
#: What each column holds (units in the names), for tables and the app.
COLUMN_DESCRIPTIONS: dict[str, str] = {
    "patient_id": "patient id, 0 .. n-1 (int64)",
    "age_years": "age in whole years (NHANES survey weights)",
    "sex": "sex at examination, F or M",
    "race_ethnicity": "NHANES race/ethnicity group",
    "weight_kg": "body weight, kg",
    "height_cm": "standing height, cm",
    "bmi_kg_m2": "body mass index, kg/m^2",
    "bsa_m2": "body surface area (Mosteller), m^2",
    "lbw_kg": "lean body weight (Janmahasatian 2005), kg",
    "serum_creatinine_mg_dL": "serum creatinine, mg/dL",
    "egfr_mL_min_1_73m2": "eGFR, CKD-EPI 2021 race-free, mL/min/1.73 m^2",
    "crcl_mL_per_min": "creatinine clearance, Cockcroft-Gault with total body weight, mL/min",
    "albumin_g_per_L": "serum albumin, g/L",
    "renal_category": "FDA eGFR category: normal, mild, moderate, severe, kidney_failure",
    "child_pugh": "hepatic impairment class: none, A, B, C",
    "cyp2d6_phenotype": "CYP2D6 metabolizer phenotype: PM, IM, NM, UM",
    "cyp2c19_phenotype": "CYP2C19 metabolizer phenotype: PM, IM, NM, RM, UM",
    "cyp2c9_phenotype": "CYP2C9 metabolizer phenotype: PM, IM, NM",
}
#: Categorical columns are carried as integer codes into these value lists.
CODE_VALUES: dict[str, tuple[str, ...]] = CATEGORICAL_FIELDS


@dataclass(frozen=True)
class _Plan:
    """Everything derived from a spec once: cell distributions, copula pieces, sizes."""

    cell_cdf: np.ndarray  # (n_rows, n_cells) cumulative, one row per renal category (or 1)
    renal_fractions_cdf: np.ndarray | None  # (n_cat,) cumulative over categories used
    renal_codes: np.ndarray | None  # (n_cat,) code of each used category
    z_bounds: np.ndarray | None  # (n_cat, n_cells, 2) creatinine normal-score bounds
    cp_cdf: np.ndarray  # (4,)
    albumin_mean: np.ndarray  # (4,)
    albumin_sd: np.ndarray  # (4,)
    pgx_cdf: dict[str, np.ndarray]  # gene -> (n_rows, 5) cumulative
    pgx_row_of_race: dict[str, np.ndarray]  # gene -> (5,) row index per race code
    scr_coef: np.ndarray  # (12,) regression of z_scr on z_age
    scr_sd: np.ndarray  # (12,)
    wh_coef: np.ndarray  # (12, 2, 2) regression of (z_w, z_h) on (z_age, z_scr)
    wh_chol: np.ndarray  # (12, 2, 2)
    criteria: tuple[Criterion, ...]
    batch_size: int


def _categorical_rows(cdf: np.ndarray, row: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Draw a category per item from row ``row`` of the cumulative table ``cdf`` (R, K)."""
    r, k = cdf.shape
    flat = (cdf + np.arange(r)[:, None]).ravel()
    pos = np.searchsorted(flat, row + u, side="right")
    return np.minimum(pos - row * k, k - 1)


def _cumulative(p: np.ndarray) -> np.ndarray:
    c = np.cumsum(p, axis=-1)
    c = c / c[..., -1:]
    c[..., -1] = 1.0
    return c


def _base_cell_weights(spec: CohortSpec, t: PopulationTables) -> np.ndarray:
    w = t.cell_fraction * ((t.cell_age >= spec.age_years.min) & (t.cell_age <= spec.age_years.max))
    sf, rf = spec.sex_fractions, spec.race_ethnicity_fractions
    fs = np.array([sf.get(s, 0.0) for s in ("F", "M")]) if sf else None
    fr = np.array([rf.get(r, 0.0) for r in RACE_GROUPS]) if rf else None
    if fs is not None and fr is not None:
        group = t.cell_sex * len(RACE_GROUPS) + t.cell_race
        tot = np.bincount(group, weights=w, minlength=2 * len(RACE_GROUPS))
        target = np.outer(fs, fr).ravel()
        w = np.where(tot[group] > 0, w / np.where(tot[group] > 0, tot[group], 1), 0.0)
        w = w * target[group]
    elif fs is not None:
        tot = np.bincount(t.cell_sex, weights=w, minlength=2)
        w = w / tot[t.cell_sex] * fs[t.cell_sex]
    elif fr is not None:
        tot = np.bincount(t.cell_race, weights=w, minlength=len(RACE_GROUPS))
        with np.errstate(invalid="ignore", divide="ignore"):
            w = np.where(tot[t.cell_race] > 0, w / tot[t.cell_race], 0.0) * fr[t.cell_race]
    if not w.sum() > 0:
        raise SpecError("age_years", spec.age_years.model_dump(), "a range holding NHANES adults")
    return w / w.sum()


def _copula_pieces(t: PopulationTables):
    c = t.corr
    r_as = c[:, 0, 3]
    scr_sd = np.sqrt(1.0 - r_as**2)
    s12 = c[:, [1, 2]][:, :, [0, 3]]  # (12, 2, 2): cov((w,h), (age,scr))
    s22 = c[:, [0, 3]][:, :, [0, 3]]
    s11 = c[:, [1, 2]][:, :, [1, 2]]
    coef = s12 @ np.linalg.inv(s22)
    cond = s11 - coef @ np.transpose(s12, (0, 2, 1))
    return r_as, scr_sd, coef, np.linalg.cholesky(cond)


def _renal_pieces(spec, t, base, r_as, scr_sd):
    """Per used category: cell weights given the category and creatinine z bounds."""
    fr = spec.renal_category_fractions
    names = [n for n in physiology.RENAL_CATEGORY_NAMES if fr.get(n, 0.0) > 0]
    codes = np.array([physiology.RENAL_CATEGORY_NAMES.index(n) for n in names])
    female = t.cell_sex == 0
    strat = stratum_index(t.cell_sex, t.cell_race, band_index(t.cell_age))
    cop = t.cell_sex * N_BANDS + band_index(t.cell_age)
    mu = r_as[cop] * t.cell_z_age
    sd = scr_sd[cop]
    z_bounds = np.empty((len(names), len(base), 2))
    rows = []
    for i, name in enumerate(names):
        lo_e, hi_e = physiology.RENAL_CATEGORIES[name]
        s_lo = physiology.scr_from_egfr_ckd_epi_2021(hi_e, t.cell_age, female)
        s_hi = physiology.scr_from_egfr_ckd_epi_2021(lo_e, t.cell_age, female)
        var = 2  # serum creatinine
        z_lo = np.array(
            [inverse_quantile_map(x, s, var, t) for x, s in zip(s_lo, strat, strict=True)]
        )
        z_hi = np.array(
            [inverse_quantile_map(x, s, var, t) for x, s in zip(s_hi, strat, strict=True)]
        )
        a, b = (z_lo - mu) / sd, (z_hi - mu) / sd
        z_bounds[i, :, 0], z_bounds[i, :, 1] = a, b
        p = np.where(a > 0, ndtr(-a) - ndtr(-b), ndtr(b) - ndtr(a))
        w = base * np.maximum(p, 0.0)
        if not w.sum() > 0:
            raise SpecError(
                f"renal_category_fractions.{name}",
                fr[name],
                "0: no patient in the population/age range falls in this category",
            )
        rows.append(w / w.sum())
    cat_frac = np.array([fr[n] for n in names])
    return np.vstack(rows), _cumulative(cat_frac), codes, z_bounds


def _pgx_pieces(spec: CohortSpec, t: PopulationTables):
    anc = t.ancestry_of_race.copy()
    for race, a in (spec.pgx_ancestry or {}).items():
        anc[RACE_GROUPS.index(race)] = ANCESTRY_GROUPS.index(a)
    cdf, row = {}, {}
    for gene in GENES:
        override = (spec.phenotype_frequencies or {}).get(gene)
        if override is not None:
            p = np.array([[override.get(ph, 0.0) for ph in PHENOTYPES]])
            cdf[gene] = _cumulative(p)
            row[gene] = np.zeros(len(RACE_GROUPS), dtype=np.int64)
        else:
            cdf[gene] = _cumulative(t.pgx_freq[gene])
            row[gene] = anc
    return cdf, row


def _truncated_std_normal(a: np.ndarray, b: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draw from N(0, 1) truncated to [a, b], accurate in either tail."""
    flip = a > 0
    lo = np.where(flip, -b, a)
    hi = np.where(flip, -a, b)
    pa, pb = ndtr(lo), ndtr(hi)
    z = ndtri(pa + u * (pb - pa))
    z = np.clip(z, lo, hi)
    return np.where(flip, -z, z)


def _candidates(plan: _Plan, t: PopulationTables, rng: np.random.Generator, m: int) -> dict:
    """Draw ``m`` candidate patients (before criteria); all draws in a fixed order."""
    u = rng.random((m, 7))
    e = rng.standard_normal((m, 3))
    if plan.renal_fractions_cdf is not None:  # set together with renal_codes
        cat = _categorical_rows(plan.renal_fractions_cdf[None, :], np.zeros(m, np.int64), u[:, 0])
    else:
        cat = np.zeros(m, dtype=np.int64)
    cell = _categorical_rows(plan.cell_cdf, cat, u[:, 1])
    sex = t.cell_sex[cell]
    race = t.cell_race[cell]
    age = t.cell_age[cell].astype(float)
    band = band_index(t.cell_age[cell])
    strat = stratum_index(sex, race, band)
    cop = sex * N_BANDS + band
    z_age = t.cell_z_age[cell]

    if plan.z_bounds is not None:
        a = plan.z_bounds[cat, cell, 0]
        b = plan.z_bounds[cat, cell, 1]
        z_std = _truncated_std_normal(a, b, u[:, 2])
    else:
        z_std = ndtri(np.clip(u[:, 2], 1e-300, None))
    z_scr = plan.scr_coef[cop] * z_age + plan.scr_sd[cop] * z_std
    given = np.stack([z_age, z_scr], axis=1)
    z_wh = np.einsum("nij,nj->ni", plan.wh_coef[cop], given)
    z_wh += np.einsum("nij,nj->ni", plan.wh_chol[cop], e[:, :2])

    weight = np.clip(quantile_map(z_wh[:, 0], strat, 0, t), *BOUNDS["weight_kg"])
    height = np.clip(quantile_map(z_wh[:, 1], strat, 1, t), *BOUNDS["height_cm"])
    scr = np.clip(quantile_map(z_scr, strat, 2, t), *BOUNDS["serum_creatinine_mg_dL"])

    female = sex == 0
    bmi = physiology.bmi_kg_m2(weight, height)
    egfr = physiology.egfr_ckd_epi_2021(scr, age, female)
    cp = np.searchsorted(plan.cp_cdf, u[:, 3], side="right").clip(0, 3)
    alb = plan.albumin_mean[cp] + plan.albumin_sd[cp] * e[:, 2]
    out = {
        "age_years": age,
        "sex": sex,
        "race_ethnicity": race,
        "weight_kg": weight,
        "height_cm": height,
        "bmi_kg_m2": bmi,
        "bsa_m2": physiology.bsa_mosteller_m2(weight, height),
        "lbw_kg": physiology.lbw_janmahasatian_kg(weight, bmi, female),
        "serum_creatinine_mg_dL": scr,
        "egfr_mL_min_1_73m2": egfr,
        "crcl_mL_per_min": physiology.crcl_cockcroft_gault_mL_per_min(scr, age, weight, female),
        "albumin_g_per_L": np.clip(alb, *BOUNDS["albumin_g_per_L"]),
        "renal_category": physiology.renal_category_codes(egfr),
        "child_pugh": cp,
    }
    for j, gene in enumerate(GENES):
        out[f"{gene}_phenotype"] = _categorical_rows(
            plan.pgx_cdf[gene], plan.pgx_row_of_race[gene][race], u[:, 4 + j]
        )
    if plan.renal_codes is not None:
        out["_target_renal"] = plan.renal_codes[cat]
    return out


def _criteria_mask(cols: dict, criteria: tuple[Criterion, ...]) -> np.ndarray:
    # physiological plausibility of the joint draw (extrapolated marginal tails can combine
    # into impossible bodies): BMI within [10, 80] kg/m^2
    bmi = cols["bmi_kg_m2"]
    ok = (bmi >= PLAUSIBLE_BMI_KG_M2[0]) & (bmi <= PLAUSIBLE_BMI_KG_M2[1])
    if "_target_renal" in cols:
        # exact stratification: the computed category must be the one drawn
        ok &= cols["renal_category"] == cols["_target_renal"]
    for c in criteria:
        x = cols[c.field]
        if c.field in CODE_VALUES:
            values = CODE_VALUES[c.field]
            wanted = [
                values.index(v) for v in (c.value if isinstance(c.value, list) else [c.value])
            ]
            hit = np.isin(x, wanted)
            ok &= hit if c.op in ("==", "in") else ~hit
        elif c.op == "<":
            ok &= x < c.value
        elif c.op == "<=":
            ok &= x <= c.value
        elif c.op == ">":
            ok &= x > c.value
        elif c.op == ">=":
            ok &= x >= c.value
        else:  # between, inclusive
            low, high = c.bounds()
            ok &= (x >= low) & (x <= high)
    return ok


def _describe_criteria(spec: CohortSpec) -> list:
    return [c.model_dump() for c in spec.criteria]


@lru_cache(maxsize=32)
def _plan_for(spec_json: str) -> _Plan:
    spec = CohortSpec.model_validate_json(spec_json)
    t = load_population_tables()
    base = _base_cell_weights(spec, t)
    r_as, scr_sd, wh_coef, wh_chol = _copula_pieces(t)
    if spec.renal_category_fractions is not None:
        rows, cat_cdf, codes, z_bounds = _renal_pieces(spec, t, base, r_as, scr_sd)
    else:
        rows, cat_cdf, codes, z_bounds = base[None, :], None, None, None
    cpf = spec.child_pugh_fractions
    cp_p = np.array([cpf.get(c, 0.0) for c in hepatic.CHILD_PUGH_CLASSES])
    alb_mean = np.array(
        [spec.albumin_mean_g_per_L]
        + [hepatic.CHILD_PUGH_EFFECTS[c]["albumin_g_per_L"] for c in ("A", "B", "C")]
    )
    alb_sd = np.array(
        [spec.albumin_sd_g_per_L] + [hepatic.ALBUMIN_SD_G_PER_L[c] for c in ("A", "B", "C")]
    )
    pgx_cdf, pgx_row = _pgx_pieces(spec, t)
    plan = _Plan(
        cell_cdf=_cumulative(rows),
        renal_fractions_cdf=cat_cdf,
        renal_codes=codes,
        z_bounds=z_bounds,
        cp_cdf=_cumulative(cp_p),
        albumin_mean=alb_mean,
        albumin_sd=alb_sd,
        pgx_cdf=pgx_cdf,
        pgx_row_of_race=pgx_row,
        scr_coef=r_as,
        scr_sd=scr_sd,
        wh_coef=wh_coef,
        wh_chol=wh_chol,
        criteria=tuple(spec.criteria),
        batch_size=PATIENT_BLOCK,
    )
    # Pilot (seed-independent) to size candidate batches and reject impossible criteria.
    pilot_rng = np.random.default_rng([0, purpose_key(PURPOSE + ":pilot")])
    cand = _candidates(plan, t, pilot_rng, PILOT_SIZE)
    n_ok = int(_criteria_mask(cand, plan.criteria).sum())
    if n_ok == 0:
        raise SpecError(
            "criteria",
            _describe_criteria(spec),
            f"criteria that some patients of this population meet (none of {PILOT_SIZE} "
            "candidates passed)",
        )
    rate = n_ok / PILOT_SIZE
    if 1.0 / rate > spec.max_oversampling:
        raise SpecError(
            "criteria",
            _describe_criteria(spec),
            f"criteria passed by at least 1 in {spec.max_oversampling:g} candidates "
            f"(max_oversampling); estimated 1 in {1.0 / rate:.3g}",
        )
    if n_ok == PILOT_SIZE:
        batch = PATIENT_BLOCK
    else:
        mean = PATIENT_BLOCK / rate
        batch = int(math.ceil(mean + 4.0 * math.sqrt(PATIENT_BLOCK * (1.0 - rate)) / rate + 16))
    return _Plan(**{**plan.__dict__, "batch_size": batch})


def _plan(spec: CohortSpec) -> _Plan:
    return _plan_for(spec.model_dump_json())


def _block_codes(spec: CohortSpec, plan: _Plan, seed: int, block: int) -> dict:
    """The ``PATIENT_BLOCK`` patients of fixed block ``block`` (categoricals as codes)."""
    t = load_population_tables()
    parts, got = [], 0
    for attempt in range(MAX_ATTEMPTS):
        rng = np.random.default_rng([int(seed), purpose_key(PURPOSE), int(block), attempt])
        cand = _candidates(plan, t, rng, plan.batch_size)
        idx = np.flatnonzero(_criteria_mask(cand, plan.criteria))[: PATIENT_BLOCK - got]
        parts.append({k: v[idx] for k, v in cand.items() if not k.startswith("_")})
        got += len(idx)
        if got == PATIENT_BLOCK:
            break
    else:
        raise SpecError(
            "criteria",
            _describe_criteria(spec),
            f"criteria that can be met: block {block} still short after {MAX_ATTEMPTS} batches",
        )
    if len(parts) == 1:
        return parts[0]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _check_seed_range(seed: int, start: int, stop: int) -> None:
    if not (isinstance(seed, int | np.integer) and seed >= 0):
        raise SpecError("seed", seed, "a non-negative integer")
    if not (isinstance(start, int | np.integer) and start >= 0):
        raise SpecError("start", start, "a non-negative integer")
    if not (isinstance(stop, int | np.integer) and stop >= start):
        raise SpecError("stop", stop, f"an integer >= start ({start})")


def _codes_range(spec: CohortSpec, seed: int, start: int, stop: int) -> dict:
    plan = _plan(spec)
    parts = []
    for b in range(start // PATIENT_BLOCK, (stop - 1) // PATIENT_BLOCK + 1 if stop > start else 0):
        lo = b * PATIENT_BLOCK
        cols = _block_codes(spec, plan, seed, b)
        a, z = max(start, lo) - lo, min(stop, lo + PATIENT_BLOCK) - lo
        parts.append({k: v[a:z] for k, v in cols.items()})
    if not parts:
        empty = {k: np.empty(0) for k in COLUMNS if k != "patient_id"}
        return {**empty, **{k: np.empty(0, np.int64) for k in CODE_VALUES}}
    if len(parts) == 1:
        return parts[0]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _to_frame(cols: dict, start: int, stop: int) -> pd.DataFrame:
    data = {"patient_id": np.arange(start, stop, dtype=np.int64)}
    for name in COLUMNS[1:]:
        v = cols[name]
        if name in CODE_VALUES:
            v = pd.Categorical.from_codes(
                v.astype(np.int64), categories=pd.Index(list(CODE_VALUES[name]))
            )
        data[name] = v
    return pd.DataFrame(data)


def sample_cohort_range(spec: CohortSpec, seed: int, start: int, stop: int) -> pd.DataFrame:
    """Patients with ids ``start <= patient_id < stop``.

    Identical to ``sample_cohort(spec, n, seed).iloc[start:stop]`` for any ``n >= stop``:
    every random draw is keyed by ``(seed, "cohort", id // PATIENT_BLOCK, attempt)``.

    Returns
    -------
    pandas.DataFrame
        One row per patient, columns :data:`COLUMNS`, index ``0 .. stop - start - 1``.
        Categorical columns (sex, race_ethnicity, renal_category, child_pugh and the
        ``*_phenotype`` columns) are pandas Categoricals of strings.
    """
    _check_seed_range(seed, start, stop)
    return _to_frame(_codes_range(spec, int(seed), int(start), int(stop)), int(start), int(stop))


def sample_cohort(spec: CohortSpec, n: int, seed: int) -> pd.DataFrame:
    """Sample ``n`` virtual patients (``patient_id`` 0 .. n-1) from ``spec`` with ``seed``.

    See :mod:`insilico.cohort.sampler` for the model and :data:`COLUMNS` for the columns
    (units in the names).
    """
    if not (isinstance(n, int | np.integer) and n >= 0):
        raise SpecError("n", n, "a non-negative integer")
    return sample_cohort_range(spec, seed, 0, int(n))


def iter_cohort_blocks(
    spec: CohortSpec, n: int, seed: int, block_size: int = 100_000
) -> Iterator[pd.DataFrame]:
    """Yield the cohort of ``n`` patients as consecutive DataFrames of ``block_size`` rows.

    Memory is bounded by one block; the concatenation equals ``sample_cohort(spec, n, seed)``
    (index aside) whatever ``block_size``.
    """
    if not (isinstance(block_size, int | np.integer) and block_size > 0):
        raise SpecError("block_size", block_size, "a positive integer")
    if not (isinstance(n, int | np.integer) and n >= 0):
        raise SpecError("n", n, "a non-negative integer")
    for start in range(0, int(n), int(block_size)):
        yield sample_cohort_range(spec, seed, start, min(int(n), start + int(block_size)))
