"""The model layer's event kernel next to the grid kernel on the reference workload.

The reference workload: 2-compartment oral PK, 100 mg q12h for 28 days, hourly output, an
indirect response (inhibition of production), 30 % IIV on every parameter but Imax. The grid kernel
(:func:`insilico.pk.simulate`, the path of protocols without a model file) and the event
kernel (the model layer: :mod:`insilico.trial.model_arm`, any structure) simulate the same
twins in one process; the table prints patients per second and their largest difference in
concentration and response.

    python benchmarks/bench_model_layer.py --n 2000
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from insilico.model import model_from_dict
from insilico.pd import PDModel
from insilico.pk import PKModel, build_event_table, simulate
from insilico.trial.model_arm import simulate_model_arm

TYPICAL = {
    "cl_L_per_h": 5.0,
    "v1_L": 50.0,
    "q2_L_per_h": 10.0,
    "v2_L": 100.0,
    "ka_per_h": 1.0,
    "kin_per_h": 10.0,
    "kout_per_h": 0.1,
    "imax": 0.9,
    "ic50_mg_per_L": 0.5,
}


class _Arm:
    def __init__(self, model):
        self.model = model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    opts = parser.parse_args()
    rng = np.random.default_rng(1)
    n = opts.n
    values = {
        k: v * np.exp(0.3 * rng.standard_normal(n)) if k != "imax" else np.full(n, v)
        for k, v in TYPICAL.items()
    }
    values["f_bio"] = np.full(n, 0.7)
    times = np.arange(0.0, 673.0)
    events = build_event_table("100 mg PO q12h x56", n_patients=n)
    model = model_from_dict(
        {
            "kind": "model",
            "schema_version": 1,
            "name": "reference",
            "pk": {"compartments": 2, "absorption": "first_order", "elimination": "linear"},
            "parameters": {**TYPICAL, "f_bio": 0.7},
            "pd": {"model": "irm1"},
        }
    )
    arm = _Arm(model)

    def grid():
        res = simulate(PKModel(n_compartments=2), values, events, times, pd=PDModel("irm1"))
        return res.conc_mg_per_L, res.effect

    def event():
        return simulate_model_arm(None, arm, values, events, times)[:2]

    rows = []
    results = {}
    for name, fn in (("grid kernel", grid), ("event kernel (model layer)", event)):
        fn()  # compile / load
        best = np.inf
        for _ in range(opts.repeats):
            t0 = time.perf_counter()
            results[name] = fn()
            best = min(best, time.perf_counter() - t0)
        rows.append((name, n / best))
    (cg, eg), (ce, ee) = results["grid kernel"], results["event kernel (model layer)"]
    dc = np.max(np.abs(ce - cg) / np.maximum(np.abs(cg), 1e-12 * np.max(cg)))
    de = np.max(np.abs(ee - eg) / np.abs(eg))
    print(f"{'kernel':<28} {'patients/s':>11}")
    for name, rate in rows:
        print(f"{name:<28} {rate:>11.0f}")
    print(f"ratio event/grid: {rows[1][1] / rows[0][1]:.3f}")
    print(f"max relative difference: concentration {dc:.1e}, response {de:.1e}")


if __name__ == "__main__":
    main()
