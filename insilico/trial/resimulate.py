"""One virtual patient of a finished run, simulated again: the run's trial context rebuilt
from its manifest, and a patient's concentration and biomarker over time."""

from __future__ import annotations

import numpy as np
import pandas as pd

from insilico.errors import InsilicoError, SpecError


def trial_context(manifest: dict):
    """The run's :class:`insilico.trial.context.TrialContext`, rebuilt from its manifest."""
    from insilico.engine.run import prepare_trial
    from insilico.trial.spec import trial_spec_from_dict

    spec = trial_spec_from_dict(manifest["spec"])
    _, ctx, _, _ = prepare_trial(spec, n_patients=manifest["n_patients"], seed=manifest["seed"])
    return ctx


def patient_time_course(ctx, arm: str, patient_id: int) -> pd.DataFrame:
    """Concentration (and biomarker) over time of one virtual patient in one arm.

    Re-simulates that patient with the run's context: random streams are keyed by
    (seed, purpose, patient block), so the twin is the same as in the run (its summary row can
    be checked against patients.parquet).

    Returns columns ``time_h``, ``conc_mg_per_L`` and, with a biomarker,
    ``biomarker_change_pct``; empty when the patient did not receive the arm (parallel design).
    """
    from insilico.trial.block import simulate_arm_block

    match = [a for a in ctx.arms if a.name == arm]
    if not match:
        raise SpecError("arm", arm, f"one of {[a.name for a in ctx.arms]}")
    pid = int(patient_id)
    if not 0 <= pid < ctx.n_patients:
        raise SpecError("patient_id", pid, f"0 .. {ctx.n_patients - 1}")
    try:
        rows, conc, bio = simulate_arm_block(ctx, match[0], pid, pid + 1)[:3]
    except (TypeError, ValueError, KeyError) as exc:
        raise InsilicoError(f"time course unavailable for this run: {exc}") from None
    t = np.asarray(ctx.output_times_h, dtype=float)
    if len(rows) == 0:
        return pd.DataFrame({"time_h": [], "conc_mg_per_L": []})
    out = {"time_h": t, "conc_mg_per_L": np.asarray(conc)[0]}
    if bio is not None:
        out["biomarker_change_pct"] = np.asarray(bio)[0]
    return pd.DataFrame(out)
