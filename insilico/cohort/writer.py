"""Stream a cohort to a Parquet file block by block (bounded memory)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from insilico.cohort.sampler import iter_cohort_blocks
from insilico.cohort.spec import CohortSpec
from insilico.errors import SpecError

#: Most patients in one cohort file: 10,000,000 rows is a few GB of Parquet and about an
#: hour of sampling; a larger population is sampled in several files with other seeds.
MAX_COHORT_SIZE = 10_000_000


def check_cohort_output(n: int, path: str | Path, field: str = "path") -> Path:
    """Check a cohort size and output path before anything is sampled or written.

    Raises
    ------
    SpecError
        ``n`` is not a whole number from 0 to :data:`MAX_COHORT_SIZE`, or ``path`` is a
        directory or in a directory that does not exist.
    """
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_COHORT_SIZE:
        raise SpecError("n", n, f"a whole number of patients from 0 to {MAX_COHORT_SIZE:,}")
    path = Path(path)
    if path.is_dir():
        raise SpecError(field, str(path), "a file path, not an existing directory")
    if not path.parent.is_dir():
        raise SpecError(field, str(path), "a file path in an existing directory")
    return path


def write_cohort(
    spec: CohortSpec, n: int, seed: int, path: str | Path, block_size: int = 100_000
) -> Path:
    """Write ``sample_cohort(spec, n, seed)`` to ``path`` (Parquet), one row group per block.

    Only one block of ``block_size`` patients is in memory at a time. The file is written to
    ``<path>.partial`` and renamed when complete. The spec's JSON and the seed are stored in the
    file's key-value metadata (``insilico.cohort_spec``, ``insilico.seed``).

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    SpecError
        See :func:`check_cohort_output`; nothing is written then.
    """
    path = check_cohort_output(n, path)
    tmp = path.with_name(path.name + ".partial")
    meta = {
        b"insilico.cohort_spec": spec.model_dump_json().encode(),
        b"insilico.seed": str(seed).encode(),
    }
    writer = None
    try:
        for block in iter_cohort_blocks(spec, n, seed, block_size=block_size):
            table = pa.Table.from_pandas(block, preserve_index=False)
            if writer is None:
                schema = table.schema.with_metadata({**(table.schema.metadata or {}), **meta})
                writer = pq.ParquetWriter(tmp, schema)
            writer.write_table(table.cast(writer.schema))
        if writer is None:  # n == 0: an empty file with the right columns
            from insilico.cohort.sampler import sample_cohort_range

            table = pa.Table.from_pandas(
                sample_cohort_range(spec, seed, 0, 0), preserve_index=False
            )
            schema = table.schema.with_metadata({**(table.schema.metadata or {}), **meta})
            writer = pq.ParquetWriter(tmp, schema)
            writer.write_table(table.cast(schema))
        writer.close()
        writer = None
        tmp.replace(path)
    finally:
        if writer is not None:
            writer.close()
        if tmp.exists():
            tmp.unlink()
    return path
