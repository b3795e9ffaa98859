"""Read NONMEM-format datasets (CSV) into a checked, normalized table."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from insilico.dataset.validate import (
    COMMENT_COLUMN,
    check_header,
    drop_comment_records,
    normalize_records,
)
from insilico.errors import DatasetError

__all__ = ["Dataset", "dataset_from_frame", "read_dataset"]

_BOM = b"\xef\xbb\xbf"
_NEWLINE, _CR, _TAB, _SPACE, _COMMA = 10, 13, 9, 32, 44
_HASH, _AT, _UPPER_C, _LOWER_C = ord("#"), ord("@"), ord("C"), ord("c")


@dataclass(frozen=True, eq=False)
class Dataset:
    """A NONMEM-format dataset: the text as read and the checked, normalized records.

    Attributes
    ----------
    source : str
        The file read, or ``"<memory>"``.
    raw : DataFrame
        The data records exactly as written, every column text (dtype ``str``), with the
        file's column names and order; comment and blank lines are left out. Row ``i`` of
        ``raw`` is row ``i`` of ``table``. This is what
        :func:`insilico.dataset.write_dataset` writes back.
    table : DataFrame
        One row per record, in file order: the NONMEM items ``ID, TIME, EVID, AMT, RATE,
        CMT, SS, II, ADDL, MDV, DV`` (float64, NaN for missing; defaults filled in); when
        the file has a ``BLQ``, ``CENS`` or ``LLOQ`` column, ``BLQ`` (1.0 on an observation
        below its quantification limit, else 0.0) and ``LLOQ`` (the record's limit in DV
        units, NaN where none is known); then
        every other column under its own name (float64 when every non-missing cell is a
        number, with covariates filled within the individual; otherwise text), then
        ``SUBJECT`` (int64, 0-based index of the individual) and ``ROW`` (int64, 0-based
        index of the record among the file's data lines: line number minus 2).
    """

    source: str
    raw: pd.DataFrame
    table: pd.DataFrame

    def subjects(self) -> int:
        """Number of individuals (contiguous runs of records with the same ``ID``)."""
        if len(self.table) == 0:
            return 0
        return int(self.table["SUBJECT"].iloc[-1]) + 1


def read_dataset(
    path: str | os.PathLike[str],
    *,
    compartments: Mapping[int, str] | None = None,
    require_dv: bool = True,
) -> Dataset:
    """Read a NONMEM-format CSV dataset, check it and normalize it.

    Parameters
    ----------
    path : str or path-like
        A comma-separated file with a header line, UTF-8 (a byte-order mark is fine), one
        record per line.
    compartments : mapping of int to str, optional
        The model's compartments by ``CMT`` number (``{1: "depot", 2: "central"}``); when
        given, a dose or observation record whose ``CMT`` is not one of them, 0 or missing
        is an error.
    require_dv : bool
        Whether the file must have a ``DV`` column. Pass ``False`` for a simulation
        template; ``DV`` is then NaN and ``MDV`` 1 wherever it is absent.

    Returns
    -------
    Dataset
        The text as read (``raw``) and the normalized records (``table``).

    Raises
    ------
    DatasetError
        Naming the file, the line (header = line 1), the column, the value and what is
        allowed; see Notes for the rules.

    Notes
    -----
    Reading follows NONMEM's conventions:

    * Column names are matched to the NONMEM items ``ID, TIME, EVID, AMT, RATE, CMT, SS,
      II, ADDL, MDV, DV`` without regard to case; other columns are kept under their own
      names. A leading ``#`` or ``@`` on the header line is dropped (``#ID`` is ``ID``).
    * Lines whose first character is ``#`` or ``@`` and blank lines are skipped. With a
      column named ``C``, records whose ``C`` cell is ``C`` or starts with ``#`` are skipped
      too (NONMEM's ``IGNORE=C``, ``IGNORE=#``). Line numbers in messages still count
      every physical line.
    * ``.`` and empty cells are missing. ``ID`` and ``TIME`` (and ``DV`` unless
      ``require_dv=False``) are required; ``AMT`` is required when there are dose records.
    * Defaults: ``AMT``, ``RATE``, ``SS``, ``II``, ``ADDL`` 0; ``CMT`` NaN. A missing or 0
      ``CMT`` means the model's default compartment (for a dose, the default dosing
      compartment; for an observation, the default observed one), as in NONMEM.
    * Without ``EVID``, a record is a dose (1) when ``AMT > 0`` or it is a constant
      infusion at steady state (``SS`` 1, ``RATE > 0``), otherwise an observation (0), as
      NM-TRAN does. ``MDV`` is 1 on every non-observation record
      (EVID 1-4) and wherever ``DV`` is missing, except on an observation below its
      quantification limit (see below); elsewhere it is the file's value (0 when absent). So
      ``EVID == 0 & MDV == 0`` selects exactly the observations to fit; observation records
      with ``MDV`` 1 still get a prediction.
    * Individuals are contiguous runs of the same ``ID``: an ``ID`` that comes back after
      another one is a new individual (``SUBJECT``).
    * Within an individual ``TIME`` never decreases, except on a reset record (EVID 3 or
      4), after which it may start again.
    * Covariates (every other numeric column, not ``DV``) are carried forward within an
      individual where missing, and cells before the individual's first value take that
      first value.
    * On observation, other-type and reset records (EVID 0, 2, 3) ``AMT``, ``RATE``,
      ``SS``, ``II`` and ``ADDL`` must be 0 or missing: NONMEM ignores them there, so a
      value is refused as ambiguous. A dose (EVID 1, 4) needs ``AMT > 0``, except a
      constant infusion at steady state (``SS`` 1, ``RATE > 0``, ``AMT`` 0). ``SS`` 1 or 2
      and ``ADDL > 0`` need ``II > 0`` (again except that infusion).
    * Observations below the lower limit of quantification (BLQ) are marked by a ``BLQ``
      column (1 below the limit, 0 or missing quantified) with the limit in an ``LLOQ``
      column (DV units, per record, may vary); ``DV`` is ignored on a ``BLQ`` 1 record and
      may be missing. The nlmixr2 and Monolix convention is accepted too: ``CENS`` 1 marks
      a left-censored observation whose ``DV`` holds the limit (an ``LLOQ`` value on that
      record, if any, must equal it). ``CENS`` -1 (above an upper limit) is refused, and so
      is a finite ``LIMIT`` on a ``CENS`` 1 record (interval censoring, M4): a censored
      observation is anywhere below its limit (Beal's M3). With both ``BLQ`` and ``CENS``,
      they must agree on every record. Only observations (EVID 0) may be flagged, and a
      flagged record needs a finite limit unless its ``MDV`` is 1 (then it is left out of
      fits, Beal's M1). An ``LLOQ`` column alone flags nothing; it gives the limit below
      which simulated observations count as BLQ in visual predictive checks.

    ``TIME``, ``II`` and ``RATE`` are read as written; insilico's simulators take them in
    hours and amount per hour.
    """
    source = str(path)
    raw, lines = _read_text(Path(path), source)
    return _dataset(raw, lines, source, compartments, require_dv)


def dataset_from_frame(
    df: pd.DataFrame,
    *,
    source: str = "<memory>",
    compartments: Mapping[int, str] | None = None,
    require_dv: bool = True,
) -> Dataset:
    """Check and normalize NONMEM-format records held in a data frame.

    Parameters
    ----------
    df : DataFrame
        One row per record; columns named as in a NONMEM dataset. Numbers are turned into
        text as pandas prints them, missing values into ``.``. Not modified.
    source : str
        Name used in messages.
    compartments : mapping of int to str, optional
        See :func:`read_dataset`.
    require_dv : bool
        See :func:`read_dataset`.

    Returns
    -------
    Dataset
        As :func:`read_dataset` would return for the frame written as CSV; line numbers in
        messages are those the CSV would have (first record = line 2).
    """
    check_header(df.columns, source)
    text = {}
    for position, column in enumerate(df.columns):
        values = df.iloc[:, position]
        cells = values.astype(str).where(values.notna(), ".")
        text[str(column)] = pd.Series(cells.to_numpy(dtype=object), dtype="str")
    raw = pd.DataFrame(text, columns=[str(c) for c in df.columns])
    lines = np.arange(len(raw), dtype=np.int64) + 2
    return _dataset(raw, lines, source, compartments, require_dv)


def _dataset(
    raw: pd.DataFrame,
    lines: np.ndarray,
    source: str,
    compartments: Mapping[int, str] | None,
    require_dv: bool,
) -> Dataset:
    raw, lines = drop_comment_records(raw, lines)
    table = normalize_records(raw, lines, source, compartments=compartments, require_dv=require_dv)
    return Dataset(source=source, raw=raw, table=table)


def _read_text(path: Path, source: str) -> tuple[pd.DataFrame, np.ndarray]:
    """The data records of a CSV file as text, and the line number of each."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise open_error(exc, source) from None
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    check_utf8(data, source)
    if not data or data.isspace():
        raise DatasetError(
            source, None, "file", "empty", "a header line and at least one data record"
        )

    end = data.find(b"\n")
    header, body = (data, b"") if end < 0 else (data[:end], data[end + 1 :])
    names = parse_header(header, source)
    table, lines = parse_body(body, names, source)
    if table is None:
        raise DatasetError(
            source, None, "file", "header only", "at least one data record after the header"
        )
    return text_frame(table, names), lines


def open_error(exc: OSError, source: str) -> DatasetError:
    """The error for a data file that cannot be opened or read."""
    if isinstance(exc, FileNotFoundError):
        return DatasetError(source, None, "file", "not found", "an existing NONMEM-format CSV file")
    return DatasetError(source, None, "file", exc.strerror or str(exc), "a readable file")


def check_utf8(data: bytes, source: str, first_line: int = 1) -> None:
    """Raise unless ``data`` (starting at line ``first_line`` of the file) is UTF-8 text."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + first_line
        raise DatasetError(
            source,
            line,
            "encoding",
            data[exc.start : exc.end],
            "UTF-8 text; the file is not valid UTF-8 (save it as CSV UTF-8)",
        ) from None


def parse_header(header: bytes, source: str) -> list[str]:
    """The column names of a header line (``#``/``@`` before the first one dropped), checked."""
    names = [name.strip() for name in next(csv.reader([header.decode("utf-8").rstrip("\r")]))]
    if names and names[0].startswith(("#", "@")):
        names[0] = names[0][1:].strip()
    check_header(names, source)
    return names


def parse_body(
    body: bytes, names: list[str], source: str, first_line: int = 2
) -> tuple[pa.Table | None, np.ndarray]:
    """The records of whole lines of a CSV body as text, and the line number of each.

    Parameters
    ----------
    body : bytes
        Whole lines of the file after the header, UTF-8.
    names : list of str
        Column names from the header.
    source : str
        File name for messages.
    first_line : int
        Line number in the file of the first line of ``body`` (header = 1).

    Returns
    -------
    table : pyarrow.Table or None
        One ``large_string`` column per name; ``None`` when ``body`` has no record (only
        comment and blank lines).
    lines : ndarray of int
        Line number of each record.
    """
    kept, comment, starts = _classify_lines(body, names)
    if not kept.any():
        return None, np.empty(0, dtype=np.int64)
    lines = np.flatnonzero(kept).astype(np.int64) + first_line
    text = _without_lines(body, starts, comment) if comment.any() else body
    try:
        table = pacsv.read_csv(
            io.BytesIO(text),
            read_options=pacsv.ReadOptions(column_names=names),
            parse_options=pacsv.ParseOptions(ignore_empty_lines=True),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.large_string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        _raise_ragged(body, kept, names, source, first_line)
        raise DatasetError(
            source, None, "file", str(exc), "comma-separated text, one record per line"
        ) from None
    if table.num_rows != len(lines):
        # A quoted cell spanning lines: the records no longer match physical lines.
        lines = np.arange(table.num_rows, dtype=np.int64) + first_line
    return table, lines


def text_frame(table: pa.Table, names: list[str]) -> pd.DataFrame:
    """Records parsed by :func:`parse_body` as a data frame of text columns."""
    return pd.DataFrame(
        {name: pd.Series(table.column(i).to_pandas(), dtype="str") for i, name in enumerate(names)}
    )


def _classify_lines(body: bytes, names: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which physical lines of ``body`` are records, which are comments, and their offsets.

    A line is a comment when it starts with ``#`` or ``@`` or, when the first column is
    ``C``, with a lone ``C``/``c`` field; it is blank when it is empty.
    """
    bytes_ = np.frombuffer(body, dtype=np.uint8)
    size = len(bytes_)
    starts = np.concatenate(([0], np.flatnonzero(bytes_ == _NEWLINE) + 1))
    starts = starts[starts < size]
    first = bytes_[starts]
    comment = (first == _HASH) | (first == _AT)
    if names and names[0].upper() == COMMENT_COLUMN:
        after = np.where(starts + 1 < size, bytes_[np.minimum(starts + 1, size - 1)], _NEWLINE)
        lone = np.isin(after, (_COMMA, _NEWLINE, _CR, _SPACE, _TAB)) | (starts + 1 >= size)
        comment |= ((first == _UPPER_C) | (first == _LOWER_C)) & lone
    blank = (first == _NEWLINE) | (first == _CR)
    return ~(comment | blank), comment, starts


def _without_lines(body: bytes, starts: np.ndarray, drop: np.ndarray) -> bytes:
    """``body`` with the physical lines flagged in ``drop`` removed (newline included)."""
    bytes_ = np.frombuffer(body, dtype=np.uint8)
    ends = np.concatenate((starts[1:], [len(bytes_)]))
    change = np.zeros(len(bytes_) + 1, dtype=np.int64)
    change[starts[drop]] += 1
    change[ends[drop]] -= 1
    removed = np.cumsum(change[:-1]) > 0
    return bytes_[~removed].tobytes()


def _raise_ragged(
    body: bytes, kept: np.ndarray, names: list[str], source: str, first_line: int = 2
) -> None:
    """Raise for the first record line whose number of fields differs from the header's."""
    expected = len(names)
    physical = body.decode("utf-8").split("\n")
    for index, keep in enumerate(kept):
        if not keep:
            continue
        fields = next(csv.reader([physical[index].rstrip("\r")]), [])
        if len(fields) != expected:
            raise DatasetError(
                source,
                index + first_line,
                "fields",
                len(fields),
                f"{expected} comma-separated fields, as in the header ({', '.join(names)})",
            )
