"""Derive the population tables shipped in ``insilico/data/population/`` from ``../shared/data``.

Run from the repository root::

    PYTHONPATH=. python scripts/derive_population_tables.py [--data DIR] [--out DIR]

Outputs (all small CSV/JSON; see ``insilico/data/population/SOURCE.md``):

``nhanes_demographics.csv``
    Survey-weighted fraction of US adults 18-79 in each (sex, race_ethnicity, age_years) cell,
    NHANES 2013-2018 examination sample (MEC 6-year weights).
``nhanes_marginals.csv``
    Survey-weighted quantiles of weight_kg, height_cm and serum_creatinine_mg_dL per
    sex x race_ethnicity x 10-year age band, at fixed probabilities (columns ``q<prob>``).
``nhanes_copula.json``
    Gaussian-copula correlation (survey-weighted Pearson correlation of normal scores) of
    (age_years, weight_kg, height_cm, serum_creatinine_mg_dL) per sex x age band; normal scores
    are computed within each sex x race x band stratum, then pooled over race.
``pgx_phenotype_frequencies.csv``
    CYP2D6, CYP2C19, CYP2C9 phenotype frequencies per ancestry group with the source of each row.
``pgx_ancestry_map.csv``
    The mapping from NHANES race/ethnicity groups to pharmacogenetic ancestry groups.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import ndtri

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT / ".." / "shared" / "data"
DEFAULT_OUT = ROOT / "insilico" / "data" / "population"

AGE_BANDS = [(18, 29), (30, 39), (40, 49), (50, 59), (60, 69), (70, 79)]
VARIABLES = ["weight_kg", "height_cm", "serum_creatinine_mg_dL"]
PROBS = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5,
    0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.925, 0.95, 0.975, 0.99, 0.995, 0.999,
]  # fmt: skip
SEX = {"Female": "F", "Male": "M"}

#: NHANES race/ethnicity group -> pharmacogenetic ancestry group (CPIC biogeographic names).
#: NHANES 2011-2018 "Other" (other race incl. multiracial) is dominated by non-Hispanic Asian
#: participants, so it is mapped to East Asian; this is an approximation and is stated.
ANCESTRY_MAP = {
    "Mexican American": "Latino",
    "Other Hispanic": "Latino",
    "Non-Hispanic White": "European",
    "Non-Hispanic Black": "African American/Afro-Caribbean",
    "Other": "East Asian",
}


def weighted_quantiles(x: np.ndarray, w: np.ndarray, probs) -> np.ndarray:
    """Quantiles of the weighted empirical distribution (midpoint plotting positions)."""
    order = np.argsort(x, kind="stable")
    xs, ws = x[order], w[order]
    cw = np.cumsum(ws)
    pos = (cw - 0.5 * ws) / cw[-1]
    return np.interp(probs, pos, xs)


def weighted_normal_scores(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Normal scores Phi^-1(F_mid(x)) of the weighted ECDF, ties sharing their mid-rank."""
    uniq, inv = np.unique(x, return_inverse=True)
    wt = np.bincount(inv, weights=w)
    cw = np.cumsum(wt)
    mid = (cw - 0.5 * wt) / cw[-1]
    return ndtri(mid)[inv]


def weighted_corr(z: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted Pearson correlation of the columns of ``z`` (n, k)."""
    w = w / w.sum()
    mu = w @ z
    d = z - mu
    cov = (d * w[:, None]).T @ d
    s = np.sqrt(np.diag(cov))
    return cov / np.outer(s, s)


def derive_nhanes(data: Path, out: Path) -> None:
    d = pd.read_csv(data / "population_nhanes_2013_2018_individuals.csv")
    a = d[(d.age_years >= 18) & (d.age_years <= 79)]
    a = a.dropna(subset=[*VARIABLES, "survey_weight_mec_6yr"])
    a = a[a.survey_weight_mec_6yr > 0].copy()
    a["sex"] = a["sex"].map(SEX)
    w_all = a.survey_weight_mec_6yr.sum()

    demo = (
        a.groupby(["sex", "race_ethnicity", "age_years"])
        .agg(n_unweighted=("seqn", "size"), weight=("survey_weight_mec_6yr", "sum"))
        .reset_index()
    )
    demo["fraction"] = demo.pop("weight") / w_all
    demo["fraction"] = demo["fraction"].round(9)
    demo["age_years"] = demo["age_years"].astype(int)
    demo.to_csv(out / "nhanes_demographics.csv", index=False)

    rows = []
    copula = {
        "variables": ["age_years", *VARIABLES],
        "method": "survey-weighted Pearson correlation of mid-rank normal scores computed "
        "within sex x race x age band, pooled over race",
        "strata": [],
    }
    for sex in ["F", "M"]:
        for lo, hi in AGE_BANDS:
            band = a[(a.sex == sex) & (a.age_years >= lo) & (a.age_years <= hi)]
            zs, ws = [], []
            for race, g in band.groupby("race_ethnicity"):
                w = g.survey_weight_mec_6yr.to_numpy(float)
                for var in VARIABLES:
                    q = weighted_quantiles(g[var].to_numpy(float), w, PROBS)
                    rows.append(
                        {
                            "sex": sex,
                            "race_ethnicity": race,
                            "age_min_years": lo,
                            "age_max_years": hi,
                            "variable": var,
                            "n_unweighted": len(g),
                            **{
                                f"q{p:g}": round(float(v), 4) for p, v in zip(PROBS, q, strict=True)
                            },
                        }
                    )
                cols = ["age_years", *VARIABLES]
                z = np.column_stack([weighted_normal_scores(g[c].to_numpy(float), w) for c in cols])
                zs.append(z)
                ws.append(w)
            corr = weighted_corr(np.vstack(zs), np.concatenate(ws))
            copula["strata"].append(
                {
                    "sex": sex,
                    "age_min_years": lo,
                    "age_max_years": hi,
                    "n_unweighted": int(len(band)),
                    "corr": np.round(corr, 4).tolist(),
                }
            )
    pd.DataFrame(rows).to_csv(out / "nhanes_marginals.csv", index=False)
    (out / "nhanes_copula.json").write_text(json.dumps(copula, indent=1) + "\n")


def derive_pgx(data: Path, out: Path) -> None:
    rows = []
    d6 = pd.read_csv(data / "population_cyp2d6_phenotype_frequencies.csv")
    d6 = d6[d6.phenotype != "Indeterminate"]
    for (pop, ph), f in d6.set_index(["population", "phenotype"])[
        "frequency_normalized_excl_indeterminate"
    ].items():
        rows.append(
            {
                "gene": "CYP2D6",
                "ancestry": pop,
                "phenotype": ph,
                "frequency": f,
                "n_source": np.nan,
                "source": "population_cyp2d6_phenotype_frequencies.csv (CPIC/PharmGKB CYP2D6 "
                "frequency table, CC0; CPIC 2020 activity-score phenotypes), renormalized "
                "excluding indeterminate",
                "note": "",
            }
        )

    c19 = pd.read_csv(data / "population_cyp2c19_phenotype_frequencies.csv")
    src19 = "population_cyp2c19_phenotype_frequencies.csv (Table 3 of doi:10.2217/pme-2021-0175)"

    def c19_freq(pops: list[str]) -> tuple[dict[str, float], int]:
        sub = c19[c19.population.isin(pops)]
        n = sub.groupby("population").n_subjects.first()
        # n-weighted pooling of the listed populations
        pooled = (
            sub.assign(wf=sub.frequency_pct * sub.population.map(n)).groupby("phenotype").wf.sum()
            / n.sum()
        )
        pooled = pooled / pooled.sum()
        return pooled.to_dict(), int(n.sum())

    eur, n_eur = c19_freq(["European (EUR reference)"])
    eas, n_eas = c19_freq(["Japanese", "Korean"])
    c9 = pd.read_csv(data / "population_pgx_phenotype_frequencies_dutch_cohort.csv")
    c9 = c9[c9.gene == "CYP2C9"].copy()
    c9["phenotype"] = c9.phenotype.replace({"EM(NM)": "NM"})
    f9 = (c9.set_index("phenotype").frequency_pct / c9.frequency_pct.sum()).to_dict()
    n9 = int(c9.n_genotyped.iloc[0])
    src9 = (
        "population_pgx_phenotype_frequencies_dutch_cohort.csv (Table 2 of doi:10.1002/cpt.1665, "
        "Dutch cohort), renormalized to sum 1"
    )

    for anc in sorted(d6.population.unique()):
        if anc == "East Asian":
            freq, n, note = eas, n_eas, "n-weighted pool of Japanese and Korean"
        elif anc == "European":
            freq, n, note = eur, n_eur, ""
        else:
            freq, n, note = eur, n_eur, "fallback: European frequencies (no source data)"
        for ph in ["PM", "IM", "NM", "RM", "UM"]:
            rows.append(
                {
                    "gene": "CYP2C19",
                    "ancestry": anc,
                    "phenotype": ph,
                    "frequency": freq.get(ph, 0.0),
                    "n_source": n,
                    "source": src19,
                    "note": note,
                }
            )
        note9 = "" if anc == "European" else "fallback: Dutch (European) frequencies"
        for ph in ["PM", "IM", "NM"]:
            rows.append(
                {
                    "gene": "CYP2C9",
                    "ancestry": anc,
                    "phenotype": ph,
                    "frequency": f9[ph],
                    "n_source": n9,
                    "source": src9,
                    "note": note9,
                }
            )
    df = pd.DataFrame(rows)
    df["frequency"] = df.frequency.round(6)
    df.to_csv(out / "pgx_phenotype_frequencies.csv", index=False)
    pd.DataFrame(
        {"race_ethnicity": list(ANCESTRY_MAP), "ancestry": list(ANCESTRY_MAP.values())}
    ).to_csv(out / "pgx_ancestry_map.csv", index=False)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    derive_nhanes(args.data, args.out)
    derive_pgx(args.data, args.out)
    for p in sorted(args.out.iterdir()):
        print(f"{p.stat().st_size:>8d}  {p}")


if __name__ == "__main__":
    main()
