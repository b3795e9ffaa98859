"""Merge partial results in plan order (never completion order)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

from insilico.engine.bands import BAND_PERCENTILES, histogram_percentiles
from insilico.engine.memory import release_free_memory
from insilico.engine.task import Partial
from insilico.trial.block import COVARIATE_COLUMNS, PARAMETER_COLUMNS
from insilico.trial.context import TrialContext

#: Streamed rows between two returns of freed heap memory to the OS (see
#: :mod:`insilico.engine.memory`; a trim costs milliseconds).
TRIM_EVERY_ROWS = 100_000

#: Per-patient columns the scorecard does not need (dropped from memory when rows are
#: streamed to patients.parquet): covariates, parameters, probabilities, QTc details.
NOT_SUMMARIZED = (
    *COVARIATE_COLUMNS,
    *PARAMETER_COLUMNS,
    "tmax_h",
    "cavg_last_mg_per_L",
    "biomarker_baseline",
    "herg_block_fraction",
    "qtc_on_drug_ms",
    "qtc_baseline_ms",
    "ddqtc_drug_ms",
    "dqtc_ms",
    "dropout_h",
    "doses_missed",
    "titration_steps",
)


def slim(rows: pd.DataFrame, labels: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """The columns of ``rows`` that the scorecard needs.

    ``labels`` maps label columns (``arm``, ``compound_id``, ``regimen``) to every value they
    take in the trial; those columns become categoricals over that fixed list (one byte per
    row instead of a string, and concatenation keeps the dtype).
    """
    drop = [c for c in rows.columns if c in NOT_SUMMARIZED or c.endswith("_prob")]
    # a deep copy: under copy-on-write the kept columns would otherwise be views into the
    # rows' 2-D float block and keep every dropped column alive with them
    out = rows.drop(columns=drop).copy(deep=True)
    for col, values in (labels or {}).items():
        if col in out:
            out[col] = pd.Categorical(out[col], categories=values)
    return out


class Merger:
    """Accumulates partials in plan order.

    Band counts are added as partials arrive (integer addition is exact and order-free). Rows
    are released in plan order: once tasks ``0 .. k`` have all arrived their rows go to
    ``sink`` (e.g. a Parquet writer) and only the columns the summary needs are kept; without
    a sink all rows are kept for :meth:`patients`.
    """

    def __init__(
        self,
        ctx: TrialContext,
        n_tasks: int,
        sink: Callable[[pd.DataFrame], None] | None = None,
    ):
        self.ctx = ctx
        self.n_tasks = n_tasks
        self.sink = sink
        self._pending: dict[int, pd.DataFrame] = {}
        self._kept: list[pd.DataFrame] = []
        self._all: pd.DataFrame | None = None
        self._since_trim = 0
        self._next = 0
        self._labels = {
            "arm": list(dict.fromkeys(a.name for a in ctx.arms)),
            "compound_id": list(dict.fromkeys(a.compound_id for a in ctx.arms)),
            "regimen": list(dict.fromkeys(a.regimen_name for a in ctx.arms)),
        }
        n_arms = len(ctx.arms)
        nt = ctx.output_times_h.size
        self.conc = np.zeros((n_arms, nt, ctx.conc_grid.n_bins), dtype=np.int64)
        self.bio = (
            np.zeros((n_arms, nt, ctx.biomarker_grid.n_bins), dtype=np.int64)
            if ctx.has_biomarker
            else None
        )

    def add(self, index: int, partial: Partial) -> None:
        if index < self._next or index in self._pending or not 0 <= index < self.n_tasks:
            raise ValueError(f"task {index} merged twice or out of range")
        self.conc[partial.task.arm] += partial.conc_counts
        if self.bio is not None and partial.biomarker_counts is not None:
            self.bio[partial.task.arm] += partial.biomarker_counts
        self._pending[index] = partial.rows
        while self._next in self._pending:
            rows = self._pending.pop(self._next)
            if self.sink is not None:
                self.sink(rows)
                self._since_trim += len(rows)
                rows = slim(rows, self._labels)
            self._kept.append(rows)
            self._next += 1
        if self._since_trim >= TRIM_EVERY_ROWS:
            self._since_trim = 0
            release_free_memory()

    def _check_complete(self) -> None:
        if self._next != self.n_tasks:
            missing = [i for i in range(self._next, self.n_tasks) if i not in self._pending]
            raise RuntimeError(f"tasks without results: {missing[:5]}")

    def add_all(self, items: Iterable[tuple[int, Partial]]) -> Merger:
        for i, p in items:
            self.add(i, p)
        return self

    def patients(self) -> pd.DataFrame:
        """Per-patient rows of every task, in plan order (arm, then patient id).

        With a sink, only the summary columns (:func:`slim`)."""
        self._check_complete()
        if self._all is None:  # concatenate once and free the pieces (half the memory)
            self._all = pd.concat(self._kept, ignore_index=True)
            self._kept = []
        return self._all

    def bands(self) -> pd.DataFrame:
        """Percentile bands per arm, quantity and time (long format)."""
        ctx = self.ctx
        out = []
        grids = [(ctx.conc_grid, self.conc)]
        if self.bio is not None:
            grids.append((ctx.biomarker_grid, self.bio))
        for grid, counts in grids:
            for a, arm in enumerate(ctx.arms):
                pct = histogram_percentiles(grid, counts[a])
                frame = pd.DataFrame(
                    {
                        "arm": arm.name,
                        "compound_id": arm.compound_id,
                        "regimen": arm.regimen_name,
                        "quantity": grid.quantity,
                        "time_h": ctx.output_times_h,
                        "n": counts[a].sum(axis=1).astype(np.int64),
                    }
                )
                for j, q in enumerate(BAND_PERCENTILES):
                    frame[f"p{q}"] = pct[:, j]
                out.append(frame)
        return pd.concat(out, ignore_index=True)
