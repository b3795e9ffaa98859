"""Merge partial results in plan order (never completion order)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

from insilico.engine.bands import BAND_PERCENTILES, histogram_percentiles
from insilico.engine.task import Partial
from insilico.results.summary import EXPOSURE_COLUMNS
from insilico.trial.context import TrialContext


def summary_columns(ctx: TrialContext) -> list[str]:
    """Per-patient columns the summary needs (kept in memory when rows are streamed)."""
    cols = ["arm", "compound_id", "regimen", *EXPOSURE_COLUMNS.values()]
    if ctx.responder is not None and ctx.has_biomarker:
        cols += ["biomarker_change_pct", "responder"]
    cols += [f"ae_{a.name}" for a in ctx.adverse_events]
    return cols


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
        self._next = 0
        self._slim = summary_columns(ctx)
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
                rows = rows[self._slim]
            self._kept.append(rows)
            self._next += 1

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

        With a sink, only the summary columns (:func:`summary_columns`)."""
        self._check_complete()
        return pd.concat(self._kept, ignore_index=True)

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
