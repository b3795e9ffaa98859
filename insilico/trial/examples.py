"""Small ready-made protocols (as mappings) for tests, benchmarks and the app.

The compounds carry measured PK (Lombardo et al. 2018, doi:10.1124/dmd.118.082966, for CL,
Vss, fu; see ``workflows/quickstart.yaml`` for the other values), so no structure model runs.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

#: Repository cohorts folder (present in a source checkout).
COHORTS_DIR = Path(__file__).resolve().parents[2] / "cohorts"

ATENOLOL = {
    "id": "atenolol",
    "name": "Atenolol",
    "smiles": "CC(C)NCC(O)COc1ccc(CC(N)=O)cc1",
    "cl_mL_min_kg": 2.5,
    "vdss_L_per_kg": 0.95,
    "fu": 0.94,
    "f_bio": 0.58,
    "fe": 0.94,
    "ka_per_h": 0.8,
    "potency_nM": 700,
}
PROPRANOLOL = {
    "id": "propranolol",
    "name": "Propranolol",
    "smiles": "CC(C)NCC(O)COc1cccc2ccccc12",
    "cl_mL_min_kg": 12.0,
    "vdss_L_per_kg": 3.1,
    "fu": 0.13,
    "f_bio": 0.26,
    "fe": 0.01,
    "ka_per_h": 1.0,
    "potency_nM": 8,
}


def small_trial(
    n_patients: int = 300,
    seed: int = 7,
    duration_h: float = 48.0,
    compounds: list[dict] | None = None,
    regimens: list[dict] | None = None,
    placebo: bool = True,
    cohort: str | dict | None = None,
) -> dict[str, Any]:
    """A small two-compound, two-regimen protocol mapping (validate with
    :func:`insilico.trial.spec.trial_spec_from_dict`)."""
    return {
        "kind": "trial",
        "schema_version": 1,
        "name": "small",
        "seed": seed,
        "n_patients": n_patients,
        "cohort": cohort if cohort is not None else str(COHORTS_DIR / "healthy_adults_us.yaml"),
        "compounds": copy.deepcopy(compounds if compounds is not None else [ATENOLOL, PROPRANOLOL]),
        "regimens": regimens
        if regimens is not None
        else [
            {"name": "low", "text": "50 mg PO q12h x4"},
            {"name": "high", "text": "100 mg PO q12h x4"},
        ],
        "placebo": placebo,
        "duration_h": duration_h,
        "output": {"interval_h": 2.0},
        "iiv": {
            "cv": {"cl_L_per_h": 0.3, "v1_L": 0.2, "ka_per_h": 0.5, "ec50_mg_per_L": 0.4},
            "correlation": [["cl_L_per_h", "v1_L", 0.4]],
        },
        "biomarker": {
            "name": "heart_rate_bpm",
            "pd": {"kind": "emax", "params": {"e0": 150.0, "emax": -60.0}, "c50_from": "potency"},
        },
        "responder": {"time_h": duration_h, "change_pct": -15},
        "adverse_events": [
            {
                "name": "bradycardia",
                "driver": "cmax_unbound_over_potency",
                "intercept": -4.0,
                "slope": 0.2,
            }
        ],
    }
