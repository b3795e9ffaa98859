"""Simulate a NONMEM-format dataset file chunk by chunk (``insilico simulate``).

The file is read in chunks of whole subjects (a subject is a contiguous run of the same
``ID``): each chunk is checked with the rules of :func:`insilico.dataset.read_dataset`
(messages name the file's own line numbers), simulated with
:class:`insilico.dataset.simulate.DatasetSimulation` and appended to the output, so memory
is bounded by the chunk, not the file. Subjects are numbered in the whole file and every
random draw is keyed by that number, so the output is byte for byte the same whatever the
chunk size, and the same as :func:`insilico.dataset.write_dataset` of
:func:`insilico.dataset.simulate.simulate_dataset` on the whole dataset.

Reading and checking the next chunk and writing the previous one run in background threads
while the current chunk is simulated (the event kernel itself runs a thread per core).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Generator, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from insilico.dataset.read import (
    check_utf8,
    open_error,
    parse_body,
    parse_header,
    text_frame,
)
from insilico.dataset.simulate import DatasetSimulation
from insilico.dataset.validate import (
    COMMENT_COLUMN,
    drop_comment_records,
    normalize_records,
    parse_numbers,
)
from insilico.dataset.write import column_text, quote_name
from insilico.errors import DatasetError, SpecError

__all__ = ["SimulationSummary", "simulate_file"]

_BOM = b"\xef\xbb\xbf"
_HEAD_BYTES = 1 << 16
_MIN_BLOCK_BYTES = 1 << 18
_MAX_BLOCK_BYTES = 1 << 28
#: records of the first chunk at most, so the simulation starts while the next one is read
_FIRST_CHUNK_RECORDS = 20_000
_MISSING = "."
_REPLICATE_COLUMN = "REP"


@dataclass(frozen=True)
class SimulationSummary:
    """What :func:`simulate_file` wrote.

    Attributes
    ----------
    path : Path
        The output file.
    records : int
        Data records read (comment and blank lines left out).
    subjects : int
        Individuals (contiguous runs of the same ``ID``).
    replicates : int or None
        Simulated replicates, ``None`` for predictions only.
    rows : int
        Rows written after the header (``records`` times the number of replicates).
    chunks : int
        Chunks the records were simulated in.
    """

    path: Path
    records: int
    subjects: int
    replicates: int | None
    rows: int
    chunks: int


def simulate_file(
    model,
    data_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    replicates: int | None = None,
    seed: int = 0,
    chunk_records: int = 200_000,
) -> SimulationSummary:
    """Simulate a model at the records of a NONMEM-format CSV file, chunk by chunk.

    Parameters
    ----------
    model : Model
        The model (:func:`insilico.model.load_model`); its compartments check ``CMT``.
    data_path : str or path-like
        The dataset, as read by :func:`insilico.dataset.read_dataset` (``DV`` optional).
    out_path : str or path-like
        Output CSV in an existing directory: the records as read plus ``PRED, IPRED`` (with
        replicates ``REP`` first and a simulated ``DV``), as
        :func:`insilico.dataset.write_dataset` writes them. Written to a temporary file
        beside it (the rows of replicates after the first to one temporary file each,
        appended at the end) and moved into place at the end; on any error the temporary
        files are removed and ``out_path`` is left as it was.
    replicates : int, optional
        Number of simulated replicates; ``None`` for predictions only.
    seed : int
        Seed of every random draw.
    chunk_records : int
        Records per chunk: a chunk ends at the last subject boundary within that many
        records (a subject longer than that makes a longer chunk); the first chunk has at
        most 20,000 so the simulation starts while the next one is read. The memory used
        grows with it; the output does not depend on it.

    Returns
    -------
    SimulationSummary

    Raises
    ------
    DatasetError
        A record that breaks a rule of :func:`insilico.dataset.read_dataset`, with the
        file's line number; records are checked a chunk at a time, so in a file with
        several errors the first one in the file's order of chunks is reported.
    SpecError
        ``out_path`` is not in an existing directory, or the model cannot be simulated at
        the records.
    """
    if int(chunk_records) < 1:
        raise SpecError("chunk_records", chunk_records, "an integer >= 1")
    if replicates is not None and int(replicates) < 1:
        raise SpecError("replicates", replicates, "an integer >= 1, or None for predictions")
    target = Path(out_path)
    if not target.parent.is_dir() or target.is_dir():
        raise SpecError("--out", str(out_path), "a path in an existing directory")
    try:
        return _simulate(model, data_path, target, replicates, seed, int(chunk_records), "none")
    except _NeedsQuotes:
        # a text cell with a comma, quote or line break: quote every cell, as write_dataset does
        return _simulate(model, data_path, target, replicates, seed, int(chunk_records), "needed")


class _NeedsQuotes(Exception):
    """A cell cannot be written without quotes."""


def _simulate(model, data_path, target: Path, replicates, seed, chunk_records, quoting):
    source = str(data_path)
    first = min(chunk_records, _FIRST_CHUNK_RECORDS)
    reader = _RecordReader(Path(data_path), source, first, chunk_records)
    try:
        simulation = DatasetSimulation(model, replicates=replicates, seed=seed)
        compartments = model.compartment_map()
        extra = ["PRED", "IPRED"] if replicates is None else ["REP", "PRED", "IPRED", "DV"]
        output = _Output(target, reader.names, extra, replicates or 1, quoting)
        chunks = _checked_chunks(reader, first, chunk_records, compartments)
        records = subjects = n_chunks = 0
        upcoming: Future | None = None
        writing: Future | None = None
        with ThreadPoolExecutor(1) as read_pool, ThreadPoolExecutor(1) as write_pool:
            try:
                # the next chunk is read and checked, and the last piece written, in
                # background threads while this chunk is simulated
                upcoming = read_pool.submit(next, chunks, None)
                while (chunk := upcoming.result()) is not None:
                    upcoming = read_pool.submit(next, chunks, None)
                    text, table, final = chunk
                    alone = final and n_chunks == 0
                    try:
                        for r, columns in enumerate(simulation.simulate(table)):
                            if writing is not None:
                                writing.result()
                            part = 0 if alone else r
                            writing = write_pool.submit(output.write, text, columns, part)
                    except SpecError as exc:
                        if exc.source is not None:
                            raise
                        raise _in_data(exc, table, source) from None
                    records += len(table)
                    subjects = int(table["SUBJECT"].iloc[-1]) + 1
                    n_chunks += 1
                if writing is not None:
                    writing.result()
                if n_chunks == 0:
                    reader.raise_no_records(compartments)
                output.finish()
            except BaseException:
                for future in (upcoming, writing):
                    if future is not None:
                        future.cancel()
                        _wait_quietly(future)
                output.discard()
                raise
            finally:
                chunks.close()
    finally:
        reader.close()
    return SimulationSummary(
        path=target,
        records=records,
        subjects=subjects,
        replicates=replicates,
        rows=records * (replicates or 1),
        chunks=n_chunks,
    )


def _in_data(exc: SpecError, table: pd.DataFrame, source: str) -> SpecError | DatasetError:
    """A model's error about the data it was given (a covariate column missing or with a
    value it cannot use) as an error of the data file, at the first record with the value."""
    column = exc.field.rsplit(".", 1)[-1]
    names = [c for c in table.columns if str(c).lower() == column.lower()]
    if names and exc.value is not None:
        hits = np.flatnonzero(table[names[0]].astype(str).to_numpy() == str(exc.value))
        if hits.size:
            line = int(table["ROW"].iloc[hits[0]]) + 2
            allowed = f"{exc.allowed} (the model's {exc.field})"
            return DatasetError(source, line, str(names[0]), exc.value, allowed)
    return SpecError(exc.field, exc.value, exc.allowed, source)


def _wait_quietly(future: Future) -> None:
    try:
        future.result()
    except BaseException:  # the first error is the one reported
        pass


# ------------------------------------------------------------------------------- reading


class _RecordReader:
    """The header and then the records of a CSV file, a block of whole lines at a time."""

    def __init__(self, path: Path, source: str, first_records: int, chunk_records: int):
        self.source = source
        try:
            self._handle: BinaryIO = open(path, "rb")
        except OSError as exc:
            raise open_error(exc, source) from None
        self._eof = False
        self.records_seen = 0
        try:
            data = self._read(_HEAD_BYTES)
            if data.startswith(_BOM):
                data = data[len(_BOM) :]
            while data.isspace() and not self._eof:
                data += self._read(_HEAD_BYTES)
            if not data or data.isspace():
                check_utf8(data, source)
                raise DatasetError(
                    source, None, "file", "empty", "a header line and at least one data record"
                )
            while data.find(b"\n") < 0 and not self._eof:
                data += self._read(_HEAD_BYTES)
            end = data.find(b"\n")
            header, self._pending = (data, b"") if end < 0 else (data[:end], data[end + 1 :])
            check_utf8(header, source)
            self.names = parse_header(header, source)
        except BaseException:
            self.close()
            raise
        sample = self._pending[:_HEAD_BYTES]
        per_line = len(sample) / max(1, sample.count(b"\n"))
        # the first block holds about the first chunk, the others a whole chunk
        self._sizes = [
            min(max(int(records * per_line), _MIN_BLOCK_BYTES), _MAX_BLOCK_BYTES)
            for records in (first_records, chunk_records)
        ]
        self._block_bytes = self._sizes[0]
        self._line = 2
        upper = [name.upper() for name in self.names]
        self._comment = self.names[upper.index(COMMENT_COLUMN)] if COMMENT_COLUMN in upper else None
        self._id = upper.index("ID") if "ID" in upper else None

    def _read(self, size: int) -> bytes:
        if self._eof:
            return b""
        data = self._handle.read(size)
        if not data:
            self._eof = True
        return data

    def close(self) -> None:
        self._handle.close()

    def blocks(self) -> Iterator[tuple[pa.Table, np.ndarray, np.ndarray]]:
        """Records as text, their line numbers and ``ID`` values, a block at a time."""
        while True:
            while len(self._pending) < self._block_bytes and not self._eof:
                self._pending += self._read(self._block_bytes - len(self._pending))
            if self._eof:
                body, self._pending = self._pending, b""
            else:
                cut = _last_record_end(self._pending)
                if cut < 0:  # one record longer than a block
                    self._pending += self._read(self._block_bytes)
                    continue
                body, self._pending = self._pending[:cut], self._pending[cut:]
            self._block_bytes = self._sizes[1]
            if body:
                check_utf8(body, self.source, self._line)
                table, lines = parse_body(body, self.names, self.source, self._line)
                self._line += body.count(b"\n")
                if table is not None:
                    self.records_seen += table.num_rows
                    yield self._records(table, lines)
            if self._eof and not self._pending:
                return

    def _records(self, table: pa.Table, lines: np.ndarray):
        if self._comment is not None:
            column = pd.Series(table.column(self._comment).to_pandas(), dtype="str")
            _, keep = drop_comment_records(
                pd.DataFrame({self._comment: column}), np.arange(len(column))
            )
            if len(keep) < len(column):
                table, lines = table.take(pa.array(keep)), lines[keep]
        if self._id is None:
            ids = np.arange(table.num_rows, dtype=np.float64)  # no ID: refused by the checks
        else:
            ids = parse_numbers(table.column(self._id).combine_chunks())[0]
        return table, lines, ids

    def raise_no_records(self, compartments) -> None:
        """Raise as :func:`insilico.dataset.read_dataset` does for a file without records."""
        if self.records_seen == 0:
            raise DatasetError(
                self.source,
                None,
                "file",
                "header only",
                "at least one data record after the header",
            )
        empty = pd.DataFrame({name: pd.Series([], dtype="str") for name in self.names})
        normalize_records(
            empty,
            np.empty(0, dtype=np.int64),
            self.source,
            compartments=compartments,
            require_dv=False,
        )


def _last_record_end(data: bytes) -> int:
    """Offset just past the last line break of ``data`` outside a quoted cell (-1: none).

    ``data`` starts a line outside quotes; quotes on comment lines (``#``, ``@``) do not count.
    """
    end = data.rfind(b"\n")
    if end < 0 or data.find(b'"', 0, end) < 0:
        return end + 1 if end >= 0 else -1
    view = np.frombuffer(data, dtype=np.uint8, count=end + 1)
    breaks = np.flatnonzero(view == ord("\n"))
    starts = np.r_[0, breaks[:-1] + 1]
    quotes = np.add.reduceat((view == ord('"')).astype(np.int64), starts)
    quotes[np.isin(view[starts], (ord("#"), ord("@")))] = 0
    outside = breaks[np.cumsum(quotes) % 2 == 0]
    return int(outside[-1]) + 1 if outside.size else -1


def _subject_cut(ids: np.ndarray, size: int, complete: bool) -> int | None:
    """Records to take: whole subjects, at most ``size`` unless one subject is longer.

    ``None`` when more records are needed to see where the subject at ``size`` ends.
    """
    n = ids.shape[0]
    if n <= size:
        return n if complete else None
    starts = np.flatnonzero(ids[1 : size + 1] != ids[:size])
    if starts.size:
        return int(starts[-1]) + 1
    later = np.flatnonzero(ids[size + 1 :] != ids[size:-1])
    if later.size:
        return size + 1 + int(later[0])
    return n if complete else None


def _chunks(
    blocks: Iterator[tuple[pa.Table, np.ndarray, np.ndarray]], first: int, size: int
) -> Iterator[tuple[pa.Table, np.ndarray, bool]]:
    """Records in chunks of whole subjects: text, line numbers, whether it is the last.

    The first chunk has about ``first`` records, the others about ``size``.
    """
    tables: list[pa.Table] = []
    lines: list[np.ndarray] = []
    ids: list[np.ndarray] = []
    rows = 0
    complete = False
    more = False
    while True:
        while (more or rows <= first) and not complete:
            block = next(blocks, None)
            if block is None:
                complete = True
                break
            if block[0].num_rows:
                tables.append(block[0])
                lines.append(block[1])
                ids.append(block[2])
                rows += block[0].num_rows
                more = False
        if rows == 0:
            return
        if len(tables) > 1:
            tables = [pa.concat_tables(tables)]
            lines = [np.concatenate(lines)]
            ids = [np.concatenate(ids)]
        cut = _subject_cut(ids[0], first, complete)
        if cut is None:
            more = True
            continue
        table, line, identifier = tables[0], lines[0], ids[0]
        tables, lines, ids = [table.slice(cut)], [line[cut:]], [identifier[cut:]]
        rows -= cut
        yield table.slice(0, cut), line[:cut], complete and rows == 0
        first = size


def _checked_chunks(
    reader: _RecordReader, first: int, size: int, compartments: Mapping[int, str]
) -> Generator[tuple[pa.Table, pd.DataFrame, bool], None, None]:
    """Chunks as text and as normalized tables, ``SUBJECT`` numbered in the whole file."""
    first_subject = 0
    for text, lines, final in _chunks(reader.blocks(), first, size):
        raw = text_frame(text, reader.names)
        table = normalize_records(
            raw, lines, reader.source, compartments=compartments, require_dv=False
        )
        subject = table["SUBJECT"].to_numpy()
        if first_subject:
            table["SUBJECT"] = subject + first_subject
        first_subject += int(subject[-1]) + 1
        yield text, table, final


# ------------------------------------------------------------------------------- writing


class _Output:
    """The output file: a header, then pieces of rows; one part file per later replicate.

    Rows of replicate ``r`` of every chunk go to part ``r`` (part 0 is the output's temporary
    file); at the end the parts are appended to it in order and it is moved into place.
    """

    def __init__(self, target: Path, names: list[str], extra: list[str], parts: int, quoting):
        self.target = target
        self.quoting = quoting
        stem = f".{target.name}.{uuid.uuid4().hex}"
        self.paths = [target.parent / f"{stem}.tmp"] + [
            target.parent / f"{stem}.rep{r + 1}.tmp" for r in range(1, parts)
        ]
        self.written = [False] * parts
        folded = {name.upper(): name for name in names}
        replaced: dict[str, str] = {}
        appended: list[str] = []
        for column in extra:
            existing = folded.get(column.upper())
            if existing is not None:
                replaced[existing] = column
            else:
                appended.append(column)
        first: list[tuple[str, str | None]] = []
        if _REPLICATE_COLUMN in extra and _REPLICATE_COLUMN not in folded:
            appended.remove(_REPLICATE_COLUMN)
            first = [(_REPLICATE_COLUMN, _REPLICATE_COLUMN)]
        # (name written, extra column or None for the file's own text)
        self.layout = (
            first
            + [(name, replaced.get(name)) for name in names]
            + [(column, column) for column in appended]
        )
        self.names = [name for name, _ in self.layout]
        self._options = pacsv.WriteOptions(quoting_style=quoting, include_header=False)

    def write(self, text: pa.Table, columns: Mapping[str, np.ndarray], part: int) -> None:
        """Append the rows of a chunk (its text and computed columns) to part ``part``."""
        arrays = [
            text.column(name) if key is None else column_text(columns[key])
            for name, key in self.layout
        ]
        table = pa.table(arrays, names=self.names)
        path = self.paths[part]
        with open(path, "ab" if self.written[part] else "wb") as handle:
            if part == 0 and not self.written[0]:
                header = ",".join(quote_name(name) for name in self.names) + "\n"
                handle.write(header.encode("utf-8"))
            self.written[part] = True
            try:
                pacsv.write_csv(table, handle, write_options=self._options)
            except pa.ArrowInvalid as exc:
                if self.quoting == "none":
                    raise _NeedsQuotes from exc
                raise

    def finish(self) -> None:
        """Append the later replicates' parts to the first and move it into place."""
        with open(self.paths[0], "ab") as out:
            for path, written in zip(self.paths[1:], self.written[1:], strict=True):
                if written:
                    with open(path, "rb") as part:
                        shutil.copyfileobj(part, out, 1 << 24)
                    path.unlink()
        os.replace(self.paths[0], self.target)

    def discard(self) -> None:
        """Remove every temporary file."""
        for path in self.paths:
            path.unlink(missing_ok=True)
