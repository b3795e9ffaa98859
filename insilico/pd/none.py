"""The absent PD model: placeholders the event kernel is compiled with when a model has none."""

from __future__ import annotations

import numba as nb


@nb.njit(cache=True)
def rhs_pd(c, y, p, dydt):  # pragma: no cover - compiled, never called without PD states
    """No PD states: nothing to compute."""


@nb.njit(cache=True)
def init_pd(p, y0):  # pragma: no cover - compiled, never called without PD states
    """No PD states: nothing to set."""
