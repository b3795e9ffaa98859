"""The plan: a pure list of tasks (arm x block of patient ids).

Task boundaries are multiples of :data:`insilico.rng.PATIENT_BLOCK`, and each task simulates
its patients one fixed block at a time, so every number a patient gets depends only on the
seed and the patient id, never on ``chunk_size``.
"""

from __future__ import annotations

from dataclasses import dataclass

from insilico.errors import SpecError
from insilico.rng import PATIENT_BLOCK

DEFAULT_CHUNK_SIZE = 10 * PATIENT_BLOCK


@dataclass(frozen=True, order=True)
class Task:
    """Simulate arm ``arm`` for patient ids ``start <= i < stop``."""

    arm: int
    start: int
    stop: int


def effective_chunk_size(chunk_size: int | None) -> int:
    """``chunk_size`` rounded up to a multiple of ``PATIENT_BLOCK`` (>= one block)."""
    if chunk_size is None:
        return DEFAULT_CHUNK_SIZE
    if int(chunk_size) != chunk_size or chunk_size < 1:
        raise SpecError("chunk_size", chunk_size, "a whole number of patients >= 1")
    return -(-int(chunk_size) // PATIENT_BLOCK) * PATIENT_BLOCK


def plan_tasks(n_arms: int, n_patients: int, chunk_size: int | None = None) -> list[Task]:
    """Tasks in a fixed order (arm, then patient block): the merge order of results."""
    size = effective_chunk_size(chunk_size)
    return [
        Task(arm, start, min(start + size, n_patients))
        for arm in range(n_arms)
        for start in range(0, n_patients, size)
    ]
