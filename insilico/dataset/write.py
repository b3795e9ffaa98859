"""Write NONMEM-format datasets: the records as read, plus computed columns."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from insilico.errors import SpecError

__all__ = ["write_dataset"]

_REPLICATE_COLUMN = "REP"
_MISSING = "."


def write_dataset(raw: pd.DataFrame, extra: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write records as read plus extra columns (predictions, simulated values) as CSV.

    Parameters
    ----------
    raw : DataFrame, shape (n_records, n_columns)
        The records as text, as in ``Dataset.raw``; written verbatim in their order
        (``.`` stays ``.``).
    extra : DataFrame, shape (k * n_records, n_extra)
        Columns to add, matched to ``raw`` by position (its index is ignored). A column with
        the same name as a ``raw`` column, without regard to case (``DV`` for simulated
        observations), replaces that column in place, keeping the file's name; the others
        are appended in ``extra``'s order. With replicates, ``extra`` has a ``REP`` column
        and ``k`` blocks of ``n_records`` rows, one per replicate in order; ``raw`` is then
        repeated ``k`` times and ``REP`` is written as the first column.
    path : str or path-like
        Output file, in an existing directory. Written to a temporary file beside it and
        moved into place, so a reader never sees half a file.

    Raises
    ------
    SpecError
        The directory does not exist, or ``extra``'s rows do not match ``raw``'s.

    Notes
    -----
    Floats in ``extra`` are written in their shortest round-trip form and missing values as
    ``.``, so the file reads back with :func:`insilico.dataset.read_dataset` unchanged.
    """
    target = Path(path)
    if not target.parent.is_dir() or target.is_dir():
        raise SpecError("--out", str(path), "a path in an existing directory")

    n_records, n_rows = len(raw), len(extra)
    replicate = next((c for c in extra.columns if str(c).upper() == _REPLICATE_COLUMN), None)
    raw_names = {str(c).upper(): c for c in raw.columns}
    if n_rows == n_records:
        copies = 1
    elif replicate is not None and n_records > 0 and n_rows % n_records == 0:
        copies = n_rows // n_records
    else:
        raise SpecError(
            "extra",
            f"{n_rows} rows",
            f"{n_records} rows (one per record), or a multiple of it with a REP column",
        )
    if copies > 1:
        blocks = extra[replicate].to_numpy().reshape(copies, n_records)
        if not (blocks == blocks[:, :1]).all():
            raise SpecError(
                "extra.REP",
                "varies within a block",
                f"{copies} consecutive blocks of {n_records} rows, one replicate each",
            )

    columns: list[tuple[str, pa.Array]] = []
    replaced: dict[str, np.ndarray] = {}
    appended: list[tuple[str, np.ndarray]] = []
    for position, column in enumerate(extra.columns):
        values = extra.iloc[:, position].to_numpy()
        existing = raw_names.get(str(column).upper())
        if existing is not None:
            replaced[str(existing)] = values
        else:
            appended.append((str(column), values))
    if replicate is not None and str(replicate).upper() not in raw_names:
        rep = next(v for c, v in appended if c == str(replicate))
        appended = [(c, v) for c, v in appended if c != str(replicate)]
        columns.append((str(replicate), column_text(rep)))
    order = np.tile(np.arange(n_records), copies) if copies > 1 else None
    for column in raw.columns:
        name = str(column)
        if name in replaced:
            columns.append((name, column_text(replaced[name])))
        else:
            text = _raw_text(raw[column])
            columns.append((name, text.take(pa.array(order)) if order is not None else text))
    columns += [(c, column_text(v)) for c, v in appended]
    table = pa.table([v for _, v in columns], names=[c for c, _ in columns])

    temporary = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
    try:
        header = ",".join(quote_name(c) for c in table.column_names) + "\n"
        for style in ("none", "needed"):
            try:
                with open(temporary, "wb") as handle:
                    handle.write(header.encode("utf-8"))
                    options = pacsv.WriteOptions(quoting_style=style, include_header=False)
                    pacsv.write_csv(table, handle, write_options=options)
                break
            except pa.ArrowInvalid:  # a text cell that needs quotes (a comma, a quote)
                continue
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _raw_text(column: pd.Series) -> pa.Array:
    """A text column as an Arrow string array (zero-copy when pandas holds it in Arrow)."""
    try:
        text = pa.array(column.array)
    except (TypeError, pa.ArrowInvalid):
        text = pa.array(column.to_numpy(dtype=object), type=pa.string())
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    if text.type != pa.string():
        text = text.cast(pa.string())
    return text


def quote_name(name: str) -> str:
    """A CSV header cell: quoted where it holds a comma, a quote or a line break."""
    return f'"{name.replace(chr(34), chr(34) * 2)}"' if any(c in name for c in ',"\n') else name


def column_text(values: np.ndarray) -> pa.Array:
    """Column text: numbers in shortest round-trip form, missing values as ``.``."""
    values = np.asarray(values)
    if values.dtype.kind in "iub":
        return pa.array(values.astype(np.int64)).cast(pa.string())
    if values.dtype.kind == "f":
        finite = np.isfinite(values)
        if finite.all():
            return pa.array(values).cast(pa.string())
        text = pa.array(np.where(finite, values, 0.0)).cast(pa.string())
        return pc.if_else(pa.array(finite), text, _MISSING)
    text = pd.Series(values, dtype=object).astype(str).to_numpy(dtype=object)
    text[pd.isna(values)] = _MISSING
    return pa.array(text, type=pa.string())
