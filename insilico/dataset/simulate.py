"""Simulate a model at the records of a NONMEM-format dataset (``insilico simulate``).

Every record gets ``PRED`` (the typical subject: covariate effects, no random effects) and
``IPRED`` (the subject's parameters: covariates and a draw of the between-subject and
between-occasion effects; equal to ``PRED`` when the model has no variability). With
replicates, each replicate draws new random effects and residual errors and writes a
simulated ``DV`` on observation records (``EVID`` 0), numbered by ``REP``.

Random draws come from the seed through streams keyed by purpose and replicate
(:mod:`insilico.rng`): a subject's random effects are keyed by fixed blocks of subjects, so
they do not depend on the subjects after it; residual errors are drawn in record order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from insilico.model.covariates import typical_parameters
from insilico.model.layout import model_layout
from insilico.model.predict import predict_records, prepare_records
from insilico.model.residual import add_residual_error
from insilico.model.variability import apply_eta, apply_kappa, sample_eta_for_patients
from insilico.rng import draw_by_block, stream


def _occasions(table: pd.DataFrame) -> np.ndarray | None:
    folded = {str(c).upper(): c for c in table.columns}
    if "OCC" not in folded:
        return None
    occ = table[folded["OCC"]].to_numpy(dtype=float)
    _, index = np.unique(occ, return_inverse=True)
    return index.astype(np.int64)


def individual_values(model, table: pd.DataFrame, seed: int, replicate: int, typical=None):
    """Per-record parameter values of each subject for one replicate's random effects.

    Parameters
    ----------
    model : Model
        The model.
    table : DataFrame
        The dataset's normalized table (``SUBJECT`` and covariate columns).
    seed : int
        The simulation's seed.
    replicate : int
        Replicate number (0-based); each draws its own etas and kappas.
    typical : dict, optional
        Typical values per record (computed when absent).

    Returns
    -------
    dict of str to ndarray, shape (n_records,)
    """
    n = len(table)
    if typical is None:
        typical = typical_parameters(model, table, n)
    subject = table["SUBJECT"].to_numpy()
    n_subjects = int(subject[-1]) + 1 if n else 0
    values = dict(typical)
    if model.eta_names():
        eta = sample_eta_for_patients(model, seed, 0, n_subjects, f"iiv:rep{replicate}")
        values = apply_eta(values, model, eta[subject])
    if model.iov_names():
        occasion = _occasions(table)
        if occasion is None:
            from insilico.errors import SpecError

            raise SpecError("iov", list(model.iov_names()), "data with an OCC column")
        n_occ = int(occasion.max()) + 1
        sd = np.sqrt(model.iov_variances())

        def draw(g, m):
            return g.standard_normal((m, n_occ, sd.size)) * sd

        kappa = draw_by_block(seed, f"iov:rep{replicate}", 0, n_subjects, draw)
        values = apply_kappa(values, model, kappa[subject, occasion])
    return values


def simulate_dataset(model, dataset, *, replicates: int | None = None, seed: int = 0):
    """Predictions (and simulated observations) at every record of ``dataset``.

    Parameters
    ----------
    model : Model
        The model (:func:`insilico.model.load_model`).
    dataset : Dataset
        From :func:`insilico.dataset.read_dataset`.
    replicates : int, optional
        Number of simulated replicates; ``None`` for predictions only.
    seed : int
        Seed of every random draw.

    Returns
    -------
    DataFrame
        ``PRED, IPRED`` per record, in the data's units; with replicates, ``REP`` (1-based),
        ``PRED``, ``IPRED`` and ``DV`` for ``replicates`` blocks of records.
    """
    table = dataset.table
    n = len(table)
    layout = model_layout(model)
    records = prepare_records(model, table, layout)
    typical = typical_parameters(model, table, n)
    pred = predict_records(model, records, typical, layout)
    if replicates is None:
        values = individual_values(model, table, seed, 0, typical)
        ipred = predict_records(model, records, values, layout) if model.eta_names() else pred
        if model.iov_names():
            ipred = predict_records(model, records, values, layout)
        return pd.DataFrame({"PRED": pred, "IPRED": ipred})
    observation = table["EVID"].to_numpy() == 0
    blocks = []
    for r in range(replicates):
        values = individual_values(model, table, seed, r, typical)
        ipred = predict_records(model, records, values, layout)
        dv = np.full(n, np.nan)
        if model.residual_error is not None:
            rng = stream(seed, f"residual:rep{r}")
            dv[observation] = add_residual_error(model, ipred[observation], rng)
        else:
            dv[observation] = ipred[observation]
        blocks.append(
            pd.DataFrame(
                {"REP": np.full(n, r + 1, dtype=np.int64), "PRED": pred, "IPRED": ipred, "DV": dv}
            )
        )
    return pd.concat(blocks, ignore_index=True)
