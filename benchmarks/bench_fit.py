"""Population estimation on the ACOP 2016 simulated sets: time and estimates against the truth.

Schoemaker et al. (ACOP 2016; the nlmixr validation against NONMEM) simulated 120 subjects
per set with known true parameters (CL 4 L/h, V 70 L, KA 1 /h, 30 % IIV, 20 % proportional
error). Every fit starts 1.5x away from the truth. FOCE-I and SAEM run in this process and on
local Dask clusters of 1 and 2 workers, side by side (the estimates must be identical; the
time includes starting the cluster and the OFV and standard errors at the estimates).

    python benchmarks/bench_fit.py [--set oral_1cpt|bolus_1cpt] [--methods focei,saem]
                                   [--copies N]

``--copies N`` fits N copies of the set's subjects (new IDs), to see how the Dask workers
scale with the number of subjects.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from insilico.dataset import dataset_from_frame, read_dataset
from insilico.fit.population import fit_focei
from insilico.fit.saem import fit_saem
from insilico.model import model_from_dict

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TRUE = {"cl_L_per_h": 4.0, "v1_L": 70.0, "ka_per_h": 1.0}
OMEGA2, SIGMA = 0.09, 0.2


def _model(name: str, oral: bool, truth: dict):
    return model_from_dict(
        {
            "name": f"acop_{name}",
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


def _on_dask(method: str, model, ds, workers: int):
    from dask.distributed import Client

    from insilico.engine.executors import local_cluster
    from insilico.fit.distributed import DaskChains, DaskTerms

    with local_cluster(workers) as cluster, Client(cluster) as client:
        terms = DaskTerms(model, ds.table, client)
        if method == "focei":
            return fit_focei(model, ds, backend=terms)
        return fit_saem(model, ds, chains=DaskChains(model, ds.table, client), backend=terms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", default="oral_1cpt", choices=["oral_1cpt", "bolus_1cpt"])
    parser.add_argument("--methods", default="focei,saem")
    parser.add_argument("--copies", type=int, default=1)
    opts = parser.parse_args()
    oral = opts.set == "oral_1cpt"
    truth = dict(TRUE) if oral else {k: v for k, v in TRUE.items() if k != "ka_per_h"}
    model = _model(opts.set, oral, truth)
    path = DATA / f"estimation_acop2016_{opts.set}.csv"
    if opts.copies == 1:
        ds = read_dataset(path, compartments=model.compartment_map())
    else:
        raw = pd.read_csv(path)
        copies = [raw.assign(ID=raw["ID"] + 10_000 * c) for c in range(opts.copies)]
        ds = dataset_from_frame(pd.concat(copies), compartments=model.compartment_map())
    runs = {}
    methods = opts.methods.split(",")
    if "focei" in methods:
        runs["FOCE-I"] = lambda: fit_focei(model, ds)
        runs["FOCE-I, 1 Dask worker"] = lambda: _on_dask("focei", model, ds, 1)
        runs["FOCE-I, 2 Dask workers"] = lambda: _on_dask("focei", model, ds, 2)
    if "saem" in methods:
        runs["SAEM"] = lambda: fit_saem(model, ds)
        runs["SAEM, 1 Dask worker"] = lambda: _on_dask("saem", model, ds, 1)
        runs["SAEM, 2 Dask workers"] = lambda: _on_dask("saem", model, ds, 2)
    fits, seconds = {}, {}
    for label, run in runs.items():
        t0 = time.perf_counter()
        fits[label] = run()
        seconds[label] = time.perf_counter() - t0
    want = {**truth, **{f"omega2_{k}": OMEGA2 for k in truth}, "sigma_proportional": SIGMA}
    labels = list(fits)
    print(
        f"ACOP 2016 {opts.set} x {opts.copies} ({ds.subjects()} subjects): estimates "
        "(error % against the truth)"
    )
    print(f"{'parameter':<22} {'true':>8} " + " ".join(f"{lab[:20]:>22}" for lab in labels))
    for name, true in want.items():
        cells = []
        for lab in labels:
            est = fits[lab].estimates.set_index("parameter")["estimate"][name]
            cells.append(f"{est:>12.4g} ({100 * (est - true) / true:+5.1f}%)")
        print(f"{name:<22} {true:>8.4g} " + " ".join(f"{c:>22}" for c in cells))
    print()
    print(f"{'run':<24} {'seconds':>8} {'OFV':>12} {'converged':>10} {'iterations':>10}")
    for lab in labels:
        fit = fits[lab]
        print(
            f"{lab:<24} {seconds[lab]:>8.1f} {fit.ofv:>12.2f} {fit.converged!s:>10} "
            f"{fit.iterations:>10}"
        )
    for method in ("FOCE-I", "SAEM"):
        dask = [lab for lab in labels if lab.startswith(method + ",")]
        if not dask:
            continue
        same = all(
            fits[lab].estimates.equals(fits[method].estimates) and fits[lab].ofv == fits[method].ofv
            for lab in dask
        )
        print(f"{method} estimates identical in-process and on 1 and 2 workers: {same}")
        one, two = seconds[f"{method}, 1 Dask worker"], seconds[f"{method}, 2 Dask workers"]
        print(f"{method} speed-up of 2 workers over 1: {one / two:.2f}x (cluster start included)")


if __name__ == "__main__":
    main()
