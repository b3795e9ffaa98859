"""Pharmacodynamics: direct effects, effect compartment, indirect-response models I–IV.

The models are integrated by :func:`insilico.pk.simulate` together with the exact PK."""

from insilico.pd.models import KINDS, REQUIRED, PDModel

__all__ = ["KINDS", "PDModel", "REQUIRED"]
