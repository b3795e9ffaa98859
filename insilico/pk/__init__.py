"""Pharmacokinetics: dosing regimens, compartment models and their batched solution.

Public surface::

    from insilico.pk import (
        parse_regimen, build_event_table, EventTable, Regimen, DoseSeries,  # dosing
        PKModel,                                                            # models
        simulate, SimulationResult, Window, auc_0_inf, GridOptions,         # solution
        OutputBuffers,                            # time-course memory reused by chunks
    )
"""

from insilico.pk.buffers import OutputBuffers
from insilico.pk.grid import GridOptions
from insilico.pk.models import PKModel
from insilico.pk.regimen import DoseSeries, EventTable, Regimen, build_event_table, parse_regimen
from insilico.pk.simulate import SimulationResult, Window, auc_0_inf, simulate

__all__ = [
    "DoseSeries",
    "EventTable",
    "GridOptions",
    "OutputBuffers",
    "PKModel",
    "Regimen",
    "SimulationResult",
    "Window",
    "auc_0_inf",
    "build_event_table",
    "parse_regimen",
    "simulate",
]
