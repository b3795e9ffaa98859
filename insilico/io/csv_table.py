"""CSV tables in and out: strict reading with row-level errors, spreadsheet-safe writing.

:func:`read_text_csv` reads a small table (compounds) as text cells and refuses what would
otherwise be read wrongly: an empty file, a file with only a header, a file that is not
UTF-8 text, and a row with more or fewer cells than the header (which would shift columns).
:func:`write_safe_csv` writes a table so that a spreadsheet opening it runs no formula: a
text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading
single quote (OWASP "CSV injection"); numbers, including negative ones, are written as numbers.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd

from insilico.errors import DatasetError

#: First characters that make a spreadsheet read a cell as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def read_text_csv(path: str | Path, what: str = "rows") -> pd.DataFrame:
    """Read a CSV with a header row into a DataFrame of strings (blank cells are ``""``).

    ``what`` names what the data rows are (``"compounds"``) in the error for a file with
    only a header.

    Raises
    ------
    insilico.errors.DatasetError
        Naming the file (and the row, counted as in an editor: the header is row 1): an
        empty file, no data row, bytes that are not UTF-8 text, or a row whose number of
        cells differs from the header's.
    """
    path = Path(path)
    raw = path.read_bytes()
    name = str(path)
    if not raw.strip():
        raise DatasetError(name, None, "file", "an empty file", "a header row and data rows")
    if b"\x00" in raw:
        raise DatasetError(name, None, "encoding", "binary data", "a UTF-8 text CSV file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        bad = raw[exc.start : exc.start + 4]
        raise DatasetError(
            name, line, "encoding", bad, "UTF-8 text (save the file as CSV UTF-8)"
        ) from None
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise DatasetError(name, None, "fields", str(exc), "a comma-separated table") from None
    numbered = [(k + 1, r) for k, r in enumerate(rows) if r and any(c.strip() for c in r)]
    if not numbered:
        raise DatasetError(name, None, "file", "no header row", "a header row and data rows")
    (_, header), body = numbered[0], numbered[1:]
    header = [h.strip() for h in header]
    if not body:
        raise DatasetError(name, None, what, "only a header", "at least one data row")
    for line, row in body:
        if len(row) != len(header):
            raise DatasetError(
                name,
                line,
                "fields",
                f"{len(row)} cells",
                f"{len(header)} cells, one per header column {header}",
            )
    return pd.DataFrame([r for _, r in body], columns=header, dtype=str)


def neutralize_formula(value: object) -> object:
    """``value`` with a leading ``'`` if it is text a spreadsheet would run as a formula.

    Numbers and text that reads as a number (``-5``, ``+1.5e3``) are returned unchanged.
    """
    if not isinstance(value, str) or not value.startswith(FORMULA_PREFIXES):
        return value
    try:
        float(value)
    except ValueError:
        return "'" + value
    return value


def spreadsheet_safe(table: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``table`` whose text cells and column names cannot start a formula."""
    out = table.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(neutralize_formula)
    out.columns = [neutralize_formula(str(c)) for c in out.columns]
    return out


def write_safe_csv(table: pd.DataFrame, path: str | Path) -> Path:
    """Write ``table`` as CSV (no index) through :func:`spreadsheet_safe`; returns the path."""
    path = Path(path)
    spreadsheet_safe(table).to_csv(path, index=False)
    return path
