"""Seed streams keyed by purpose and fixed blocks of patient ids.

A random draw for patient ``i`` depends only on ``(seed, purpose, i // PATIENT_BLOCK)`` and on
``i``'s position inside that fixed block, never on how a run is chunked or on task order.
Streams come from :class:`numpy.random.Generator` (PCG64) seeded with a tuple of integers, as
pharmpy's ``create_rng`` and dask-ml recommend.
"""

from __future__ import annotations

import hashlib

import numpy as np

#: Patient ids are grouped in fixed blocks of this size for random streams.
PATIENT_BLOCK = 1024


def purpose_key(purpose: str) -> int:
    """Stable 63-bit integer for a purpose label (not Python's salted ``hash``)."""
    digest = hashlib.sha256(purpose.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def stream(seed: int, purpose: str, block: int = 0) -> np.random.Generator:
    """Independent generator for ``(seed, purpose, block)``.

    Parameters
    ----------
    seed : int
        The run's seed (non-negative).
    purpose : str
        What the draws are for (``"cohort"``, ``"iiv:cpd-1"``, ...).
    block : int
        Index of the fixed patient block (``patient_id // PATIENT_BLOCK``).
    """
    if seed < 0:
        raise ValueError(f"seed: got {seed!r}; allowed: a non-negative integer")
    return np.random.default_rng([int(seed), purpose_key(purpose), int(block)])


def blocks_covering(start: int, stop: int) -> range:
    """Fixed patient blocks that cover the patient ids ``start <= i < stop``."""
    if stop <= start:
        return range(0)
    return range(start // PATIENT_BLOCK, (stop - 1) // PATIENT_BLOCK + 1)


def draw_by_block(seed: int, purpose: str, start: int, stop: int, draw) -> np.ndarray:
    """Per-patient draws for ids ``[start, stop)``, identical whatever the range.

    ``draw(generator, n)`` must return an array whose first axis has length ``n`` (the block's
    patients); the full fixed block is always drawn, then sliced, so patient ``i`` gets the same
    values whatever range it is requested in.
    """
    parts = []
    for b in blocks_covering(start, stop):
        lo = b * PATIENT_BLOCK
        values = draw(stream(seed, purpose, b), PATIENT_BLOCK)
        a = max(start, lo) - lo
        z = min(stop, lo + PATIENT_BLOCK) - lo
        parts.append(values[a:z])
    if not parts:
        return draw(stream(seed, purpose, 0), 0)
    return np.concatenate(parts, axis=0)
