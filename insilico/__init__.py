"""insilico: in-silico clinical trials for drug discovery.

Compounds are turned into PK parameters (``insilico.chem``), virtual patients are sampled
from population statistics (``insilico.cohort``), each patient gets a PK/PD twin
(``insilico.twin``, ``insilico.pk``, ``insilico.pd``) and the trial is run in parallel
(``insilico.engine``) into a run directory (``insilico.results``).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("insilico")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
