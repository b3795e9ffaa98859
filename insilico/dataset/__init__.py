"""NONMEM-format datasets in and out.

:func:`read_dataset` reads a NONMEM-style CSV (any case of column names, ``.`` for
missing), checks every record against NONMEM's event rules and returns a :class:`Dataset`
with the text as read and a normalized table; :func:`write_dataset` writes the records back
verbatim with computed columns (predictions, simulated ``DV``, replicates) added.
"""

from insilico.dataset.read import Dataset, dataset_from_frame, read_dataset
from insilico.dataset.validate import STANDARD_COLUMNS
from insilico.dataset.write import write_dataset

__all__ = ["STANDARD_COLUMNS", "Dataset", "dataset_from_frame", "read_dataset", "write_dataset"]
