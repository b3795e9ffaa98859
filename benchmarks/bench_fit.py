"""Population estimation on the ACOP 2016 simulated sets: time and estimates against the truth.

Schoemaker et al. (ACOP 2016; the nlmixr validation against NONMEM) simulated 120 subjects
per set with known true parameters (CL 4 L/h, V 70 L, KA 1 /h, 30 % IIV, 20 % proportional
error). The fit starts 1.5x away from the truth.

    python benchmarks/bench_fit.py [--set oral_1cpt|bolus_1cpt]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from insilico.dataset import read_dataset
from insilico.fit.population import fit_focei
from insilico.model import model_from_dict

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TRUE = {"cl_L_per_h": 4.0, "v1_L": 70.0, "ka_per_h": 1.0}
OMEGA2, SIGMA = 0.09, 0.2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", default="oral_1cpt", choices=["oral_1cpt", "bolus_1cpt"])
    opts = parser.parse_args()
    oral = opts.set == "oral_1cpt"
    truth = dict(TRUE) if oral else {k: v for k, v in TRUE.items() if k != "ka_per_h"}
    model = model_from_dict(
        {
            "name": f"acop_{opts.set}",
            "pk": {
                "compartments": 1,
                "absorption": "first_order" if oral else "none",
                "elimination": "linear",
            },
            "parameters": {k: 1.5 * v for k, v in truth.items()},
            "iiv": {k: 0.2 for k in truth},
            "residual_error": {"proportional": 0.3},
            "data": {
                "amt_unit": "ug",
                "dv_unit": "ug/L",
                "compartments": {1: "depot", 2: "central"} if oral else {1: "central"},
            },
        }
    )
    ds = read_dataset(
        DATA / f"estimation_acop2016_{opts.set}.csv", compartments=model.compartment_map()
    )
    t0 = time.perf_counter()
    fit = fit_focei(model, ds)
    seconds = time.perf_counter() - t0
    want = {**truth, **{f"omega2_{k}": OMEGA2 for k in truth}, "sigma_proportional": SIGMA}
    print(f"{'parameter':<22} {'true':>8} {'estimate':>10} {'error %':>8} {'RSE %':>7}")
    for row in fit.estimates.itertuples():
        true = want[row.parameter]
        err = 100 * (row.estimate - true) / true
        name, est, rse = row.parameter, row.estimate, row.rse_pct
        print(f"{name:<22} {true:>8.4g} {est:>10.4g} {err:>8.1f} {rse:>7.1f}")
    print(
        f"FOCE-I {opts.set}: {fit.n_subjects} subjects, {fit.n_observations} observations, "
        f"OFV {fit.ofv:.2f}, {fit.iterations} iterations, converged {fit.converged}, "
        f"{seconds:.1f} s (standard errors included)"
    )


if __name__ == "__main__":
    main()
