"""Trial conduct applied to dosing events: missed doses, dropout, titration steps.

All functions return new :class:`insilico.pk.regimen.EventTable` objects with per-patient
amounts changed; event times never change, so the integration grid (and every patient's
numbers) stays independent of which patients share a block.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from insilico.pk.regimen import EventTable


def with_amounts(events: EventTable, amount_mg: np.ndarray) -> EventTable:
    """A copy of ``events`` with the per-patient amounts ``amount_mg`` (n, n_events)."""
    return replace(events, amount_mg=np.ascontiguousarray(amount_mg, dtype=float))


def miss_doses(events: EventTable, u: np.ndarray, p_miss: float) -> EventTable:
    """Each dose is missed (amount 0) where the patient's uniform ``u[:, j] < p_miss``.

    ``u`` has shape (n, >= n_events); only the first ``n_events`` columns are used, so a twin
    misses the same dose numbers under every regimen of the same length.
    """
    n_ev = events.time_h.shape[0]
    taken = np.asarray(u)[:, :n_ev] >= p_miss
    return with_amounts(events, events.amount_mg * taken)


def drop_out(events: EventTable, dropout_h: np.ndarray) -> EventTable:
    """Doses at or after each patient's dropout time (h) are not taken."""
    taken = events.time_h[None, :] < np.asarray(dropout_h, dtype=float)[:, None]
    return with_amounts(events, events.amount_mg * taken)


def step_up(events: EventTable, after_h: float, factor: np.ndarray) -> EventTable:
    """Doses at or after ``after_h`` multiplied by each patient's ``factor`` (1: unchanged)."""
    later = events.time_h >= after_h
    amount = events.amount_mg.copy()
    amount[:, later] *= np.asarray(factor, dtype=float)[:, None]
    return with_amounts(events, amount)


def daily_dose_mg(events: EventTable, days: float) -> np.ndarray:
    """Average planned daily dose per patient (mg/day): total amount over ``days``."""
    return events.amount_mg.sum(axis=1) / days
