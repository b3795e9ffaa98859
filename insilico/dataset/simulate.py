"""Simulate a model at the records of a NONMEM-format dataset (``insilico simulate``).

Every record gets ``PRED`` (the typical subject: covariate effects, no random effects) and
``IPRED`` (the subject's parameters: covariates and a draw of the between-subject and
between-occasion effects; equal to ``PRED`` when the model has no variability). With
replicates, each replicate draws new random effects and residual errors and writes a
simulated ``DV`` on observation records (``EVID`` 0), numbered by ``REP``.

Random draws come from the seed through streams keyed by purpose, replicate and fixed
blocks of subjects (:mod:`insilico.rng`), so a subject's draws depend only on its index
among the dataset's subjects, never on how the records are split for the simulation:

* between-subject effects: one draw per subject of the block;
* between-occasion effects: one stream per occasion value (``OCC``), one draw per subject of
  the block;
* residual errors: one stream per block, drawn for the block's observation records in order.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from insilico.model.covariates import typical_parameters
from insilico.model.layout import model_layout
from insilico.model.predict import predict_records, prepare_records
from insilico.model.residual import observations_from_normals
from insilico.model.variability import apply_eta, apply_kappa, sample_eta_for_patients
from insilico.rng import PATIENT_BLOCK, draw_by_block, stream


def _occasions(table: pd.DataFrame) -> np.ndarray | None:
    """Each record's ``OCC`` value (float), or ``None`` without an ``OCC`` column."""
    folded = {str(c).upper(): c for c in table.columns}
    if "OCC" not in folded:
        return None
    return table[folded["OCC"]].to_numpy(dtype=float)


def _occasion_label(value: float) -> str:
    if np.isnan(value):
        return "nan"
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _subject_range(table: pd.DataFrame) -> tuple[np.ndarray, int, int]:
    """``SUBJECT`` of each record and the range of subjects ``[start, stop)`` it covers."""
    subject = table["SUBJECT"].to_numpy()
    if subject.size == 0:
        return subject, 0, 0
    return subject, int(subject[0]), int(subject[-1]) + 1


def individual_values(model, table: pd.DataFrame, seed: int, replicate: int, typical=None):
    """Per-record parameter values of each subject for one replicate's random effects.

    Parameters
    ----------
    model : Model
        The model.
    table : DataFrame
        Normalized records of whole, consecutive subjects (``SUBJECT``: index of the subject
        in the dataset, non-decreasing; covariate columns). A part of a dataset gets the
        same values as in the whole.
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
    subject, start, stop = _subject_range(table)
    local = subject - start
    values = dict(typical)
    if model.eta_names():
        eta = sample_eta_for_patients(model, seed, start, stop, f"iiv:rep{replicate}")
        values = apply_eta(values, model, eta[local])
    if model.iov_names():
        occasion = _occasions(table)
        if occasion is None:
            from insilico.errors import SpecError

            raise SpecError("iov", list(model.iov_names()), "data with an OCC column")
        sd = np.sqrt(model.iov_variances())

        def draw(g, m):
            return g.standard_normal((m, sd.size)) * sd

        kappa = np.empty((n, sd.size))
        labels, index = np.unique(occasion, return_inverse=True)
        for j, value in enumerate(labels):
            rows = index == j
            label = f"iov:rep{replicate}:occ{_occasion_label(value)}"
            kappa[rows] = draw_by_block(seed, label, start, stop, draw)[local[rows]]
        values = apply_kappa(values, model, kappa)
    return values


class ResidualNormals:
    """Standard normals for one replicate's residual errors, record after record.

    Subject block ``b`` (subjects ``b * PATIENT_BLOCK`` to ``(b + 1) * PATIENT_BLOCK - 1``)
    draws from ``stream(seed, "residual:rep<replicate>", b)``, one normal per observation
    record in order. Calls must come in record order; a block may span several calls.
    """

    def __init__(self, seed: int, replicate: int):
        self._seed = seed
        self._purpose = f"residual:rep{replicate}"
        self._block = -1
        self._rng: np.random.Generator | None = None

    def draw(self, subject: np.ndarray) -> np.ndarray:
        """One standard normal per observation record.

        Parameters
        ----------
        subject : ndarray of int, shape (n,)
            Subject index of each observation record, non-decreasing, after those of the
            previous call.
        """
        block = np.asarray(subject, dtype=np.int64) // PATIENT_BLOCK
        out = np.empty(block.shape[0])
        bounds = np.r_[0, np.flatnonzero(np.diff(block)) + 1, block.shape[0]]
        for a, z in zip(bounds[:-1], bounds[1:], strict=True):
            if a == z:
                continue
            b = int(block[a])
            if b < self._block:
                raise ValueError(f"subject block {b} after block {self._block}")
            if b != self._block or self._rng is None:
                self._block, self._rng = b, stream(self._seed, self._purpose, b)
            out[a:z] = self._rng.standard_normal(z - a)
        return out


class DatasetSimulation:
    """The simulation of a dataset, fed its normalized records a part at a time.

    Parts must be whole, consecutive subjects in the dataset's order, ``SUBJECT`` numbered
    in the whole dataset; the results are the same however the records are split.

    Parameters
    ----------
    model : Model
        The model (:func:`insilico.model.load_model`).
    replicates : int, optional
        Number of simulated replicates; ``None`` for predictions only.
    seed : int
        Seed of every random draw.
    """

    def __init__(self, model, *, replicates: int | None = None, seed: int = 0):
        self.model = model
        self.replicates = replicates
        self.seed = seed
        self.layout = model_layout(model)
        count = replicates or 0
        self._residuals = [ResidualNormals(seed, r) for r in range(count)]

    def simulate(self, table: pd.DataFrame) -> Iterator[dict[str, np.ndarray]]:
        """Columns computed for the records of ``table``, one mapping per replicate.

        Without replicates, one mapping ``PRED, IPRED``; with replicates, one mapping
        ``REP`` (1-based), ``PRED``, ``IPRED``, ``DV`` per replicate, in order. Values are in
        the data's units, one per record of ``table``.
        """
        model, layout, seed = self.model, self.layout, self.seed
        n = len(table)
        records = prepare_records(model, table, layout)
        typical = typical_parameters(model, table, n)
        pred = predict_records(model, records, typical, layout)
        if self.replicates is None:
            if model.eta_names() or model.iov_names():
                values = individual_values(model, table, seed, 0, typical)
                ipred = predict_records(model, records, values, layout)
            else:
                ipred = pred
            yield {"PRED": pred, "IPRED": ipred}
            return
        observation = table["EVID"].to_numpy() == 0
        subject = table["SUBJECT"].to_numpy()[observation]
        for r in range(self.replicates):
            values = individual_values(model, table, seed, r, typical)
            ipred = predict_records(model, records, values, layout)
            dv = np.full(n, np.nan)
            if model.residual_error is not None:
                eps = self._residuals[r].draw(subject)
                dv[observation] = observations_from_normals(model, ipred[observation], eps)
            else:
                dv[observation] = ipred[observation]
            yield {"REP": np.full(n, r + 1, dtype=np.int64), "PRED": pred, "IPRED": ipred, "DV": dv}


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
    simulation = DatasetSimulation(model, replicates=replicates, seed=seed)
    blocks = [pd.DataFrame(columns) for columns in simulation.simulate(dataset.table)]
    if len(blocks) == 1:
        return blocks[0]
    return pd.concat(blocks, ignore_index=True)
