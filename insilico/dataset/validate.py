"""From the text of NONMEM-format records to a validated, normalized table.

Everything here is vectorized over records: a column is converted to numbers once, every
rule is a boolean mask over all records, and only the first offending record of a failing
rule is looked at individually to build the message.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from insilico.errors import DatasetError

__all__ = [
    "CENSORING_COLUMNS",
    "COMMENT_COLUMN",
    "RESERVED_COLUMNS",
    "STANDARD_COLUMNS",
    "check_header",
    "drop_comment_records",
    "normalize_records",
]

STANDARD_COLUMNS: tuple[str, ...] = (
    "ID",
    "TIME",
    "EVID",
    "AMT",
    "RATE",
    "CMT",
    "SS",
    "II",
    "ADDL",
    "MDV",
    "DV",
)
"""NONMEM data items recognised by name, whatever their case in the file."""

CENSORING_COLUMNS: tuple[str, ...] = ("BLQ", "CENS", "LLOQ")
"""Columns marking observations below the quantification limit, recognised in any case:
``BLQ`` (1 below the limit, 0 quantified), ``CENS`` (nlmixr2 and Monolix: 1 below the limit
held in ``DV``) and ``LLOQ`` (the record's lower limit of quantification, in DV units)."""

LIMIT_COLUMN = "LIMIT"
"""nlmixr2's and Monolix's other bound of a censored interval (only missing or -Inf accepted)."""

RESERVED_COLUMNS: tuple[str, ...] = ("SUBJECT", "ROW")
"""Columns added to ``Dataset.table``; a file may not use these names."""

COMMENT_COLUMN = "C"
"""A column with this name (any case) marks comment records with ``C`` or ``#``."""

_MISSING_TEXT = pa.array([".", ""], type=pa.large_string())
_NUMBER = "a number; '.' or an empty cell for missing"
_DOSE_ITEMS = ("AMT", "RATE", "SS", "II", "ADDL")
_EVID_MEANING = {0: "observation", 2: "other-type event", 3: "reset"}


def check_header(names: Iterable[object], source: str) -> dict[str, str]:
    """Check the column names and map each standard NONMEM item to its name in the file.

    Parameters
    ----------
    names : iterable of str
        Column names in file order.
    source : str
        File name for error messages.

    Returns
    -------
    dict of str to str
        Canonical upper-case name (``"AMT"``) to the name as written (``"amt"``), for the
        standard columns present.

    Raises
    ------
    DatasetError
        An empty or repeated name, two names that are the same standard item in different
        case (``dv`` and ``DV``), or a reserved name (``SUBJECT``, ``ROW``).

    Notes
    -----
    The censoring columns ``BLQ``, ``CENS`` and ``LLOQ`` (:data:`CENSORING_COLUMNS`) are
    recognised and mapped in the same way.
    """
    standard: dict[str, str] = {}
    seen: set[str] = set()
    for position, name in enumerate(names, start=1):
        text = str(name)
        if not text.strip():
            raise DatasetError(
                source, 1, f"column {position}", text, "a non-empty column name in the header"
            )
        if text in seen:
            raise DatasetError(source, 1, text, text, "each column name once in the header")
        seen.add(text)
        if text in RESERVED_COLUMNS:
            raise DatasetError(
                source,
                1,
                text,
                text,
                f"a name other than {' and '.join(RESERVED_COLUMNS)} (added by the reader)",
            )
        canonical = text.upper()
        if canonical in STANDARD_COLUMNS or canonical in CENSORING_COLUMNS:
            if canonical in standard:
                kind = "NONMEM " if canonical in STANDARD_COLUMNS else ""
                raise DatasetError(
                    source,
                    1,
                    text,
                    text,
                    f"one column for the {kind}item {canonical} (names are matched without "
                    f"regard to case; {standard[canonical]!r} is already {canonical})",
                )
            standard[canonical] = text
    return standard


def drop_comment_records(raw: pd.DataFrame, lines: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """Remove records that a column named ``C`` marks as comments.

    A record is a comment when its ``C`` (or ``c``) cell is ``C``/``c`` or starts with
    ``#`` or ``@``, as NONMEM's ``IGNORE=C`` / ``IGNORE=#`` would skip it. Other values in
    that column (``.``, empty, numbers) leave the record in the data.

    Parameters
    ----------
    raw : DataFrame
        Records as text, one column per file column.
    lines : ndarray of int, shape (n_records,)
        Line number of each record in the file.

    Returns
    -------
    raw, lines
        The records that are not comments, index reset, and their line numbers.
    """
    names = [c for c in raw.columns if str(c).upper() == COMMENT_COLUMN]
    if not names:
        return raw, lines
    text = raw[names[0]].fillna("").str.strip()
    comment = text.str.upper().eq(COMMENT_COLUMN) | text.str.startswith(("#", "@"))
    if not comment.any():
        return raw, lines
    keep = ~comment.to_numpy(dtype=bool)
    return raw.loc[keep].reset_index(drop=True), lines[keep]


def parse_numbers(
    column: pd.Series | pa.Array | pa.ChunkedArray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse a text column: values (NaN where missing or not a number), missing, bad.

    The common case (every cell a plain number or ``.``/empty) is one Arrow cast; only a
    column with something else in it goes through the slower, whitespace-tolerant parse.
    """
    text = pa.array(column, type=pa.large_string(), from_pandas=True)
    missing_pa = pc.fill_null(pc.is_in(text, value_set=_MISSING_TEXT), True)
    try:
        numbers = pc.cast(
            pc.if_else(missing_pa, pa.scalar(None, pa.large_string()), text), pa.float64()
        )
        # Arrow turns nulls (the missing cells) into NaN here.
        values = numbers.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
        missing = missing_pa.to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid:
        stripped = pd.Series(text.to_pandas(), dtype=object).fillna("").str.strip()
        missing = stripped.isin([".", ""]).to_numpy(dtype=bool)
        values = pd.to_numeric(stripped.where(~missing), errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan
        )
    bad = np.isnan(values) & ~missing
    return values, missing, bad


def _shown(value: float) -> object:
    """A number as a user would have typed it (``1`` rather than ``1.0``)."""
    if np.isfinite(value) and float(value).is_integer():
        return int(value)
    return float(value)


class _Records:
    """The text and line numbers of the records, for pointing at the first offender."""

    def __init__(self, raw: pd.DataFrame, lines: np.ndarray, source: str, names: dict[str, str]):
        self.raw = raw
        self.lines = lines
        self.source = source
        self.names = names

    def fail(
        self,
        mask: np.ndarray,
        item: str,
        allowed: str,
        values: np.ndarray | None = None,
    ) -> None:
        """Raise for the first record in ``mask`` (if any), naming ``item``'s column."""
        if not mask.any():
            return
        index = int(np.argmax(mask))
        column = self.names.get(item, item)
        if column in self.raw.columns:
            value: object = self.raw[column].iloc[index]
        elif values is not None:
            value = _shown(values[index])
        else:
            value = None
        raise DatasetError(self.source, int(self.lines[index]), column, value, allowed)


def _is_integer(values: np.ndarray) -> np.ndarray:
    return np.isfinite(values) & (np.floor(values) == values)


def _censoring(
    at: _Records,
    values: dict[str, np.ndarray],
    missing: dict[str, np.ndarray],
    evid: np.ndarray,
    dv: np.ndarray,
    mdv: np.ndarray,
) -> tuple[np.ndarray, np.ndarray] | None:
    """The below-limit flag (0/1) and the limit (DV units, NaN for none) of every record.

    ``None`` when the records have none of the censoring columns (:data:`CENSORING_COLUMNS`).
    ``mdv`` is the file's ``MDV`` (0 where absent): a flagged record with ``MDV`` 1 is left
    out of fits like any other, so it needs no limit.
    """
    given = [item for item in CENSORING_COLUMNS if item in values]
    if not given:
        return None
    n = evid.shape[0]
    observation = evid == 0.0
    flags: dict[str, np.ndarray] = {}
    for item in ("BLQ", "CENS"):
        if item not in values:
            continue
        flag = np.where(missing[item], 0.0, values[item])
        if item == "CENS":
            at.fail(
                flag == -1.0,
                item,
                "0 (quantified) or 1 (below the limit held in DV); -1 (above an upper limit) "
                "is not supported",
            )
            meaning = (
                "1 (below the quantification limit, which DV holds, as in nlmixr2 and Monolix)"
            )
        else:
            meaning = "1 (below the quantification limit given in LLOQ)"
        at.fail(~np.isin(flag, (0.0, 1.0)), item, f"0 (quantified), {meaning} or missing (0)")
        at.fail(
            (flag == 1.0) & ~observation,
            item,
            "0 or missing on a record that is not an observation (EVID 0): only observations "
            "are below a quantification limit",
        )
        flags[item] = flag
    if len(flags) == 2:
        at.fail(
            flags["BLQ"] != flags["CENS"],
            "CENS",
            f"the same value as {at.names['BLQ']!r} on every record (both mark observations "
            "below the quantification limit)",
            flags["CENS"],
        )
    below = next(iter(flags.values())) if flags else np.zeros(n)
    lloq = (
        np.where(missing["LLOQ"], np.nan, values["LLOQ"])
        if "LLOQ" in values
        else np.full(n, np.nan)
    )
    if "CENS" in flags:
        cens = flags["CENS"] == 1.0
        at.fail(
            cens & np.isfinite(lloq) & np.isfinite(dv) & (dv != lloq),
            "LLOQ",
            "the value of DV or missing on a censored record (CENS 1): DV holds its limit",
            lloq,
        )
        lloq = np.where(cens & np.isnan(lloq), dv, lloq)
        limit = next((c for c in at.raw.columns if str(c).upper() == LIMIT_COLUMN), None)
        if limit is not None:
            other, _, _ = parse_numbers(at.raw[limit])
            at.fail(
                cens & ~(np.isnan(other) | (other == -np.inf)),
                limit,
                "missing or -Inf on a censored record (CENS 1): a censored observation is "
                "anywhere below its limit (Beal's M3); an interval between LIMIT and DV (M4) "
                "is not supported",
            )
    used = (below == 1.0) & (mdv != 1.0)
    no_limit = used & np.isnan(lloq)
    if "LLOQ" in values:
        at.fail(
            no_limit,
            "LLOQ",
            "a finite quantification limit (DV units) on an observation below the limit "
            f"({' or '.join(f'{k} 1' for k in flags)})",
        )
    elif "CENS" in flags:
        at.fail(
            no_limit,
            "DV",
            "the quantification limit (DV units) on a censored record (CENS 1), or an LLOQ "
            "column giving it",
        )
    else:
        at.fail(
            no_limit,
            "BLQ",
            "0, or 1 with an LLOQ column giving the record's quantification limit (DV units); "
            "no LLOQ column was found",
        )
    return below, lloq


def normalize_records(
    raw: pd.DataFrame,
    lines: np.ndarray,
    source: str,
    *,
    compartments: Mapping[int, str] | None = None,
    require_dv: bool = True,
) -> pd.DataFrame:
    """Check NONMEM-format records and return the normalized table.

    Parameters
    ----------
    raw : DataFrame
        Records as text (``.`` or empty for missing), columns as named in the file,
        comment records already removed.
    lines : ndarray of int, shape (n_records,)
        Line number of each record in the file (header = 1), for messages.
    source : str
        File name for messages.
    compartments : mapping of int to str, optional
        The model's compartments (``{1: "depot", 2: "central"}``); when given, every
        dose and observation record's ``CMT`` must be one of them, 0 or missing (the
        model's default compartment, as in NONMEM).
    require_dv : bool
        Whether a ``DV`` column is required (``False`` for a simulation template).

    Returns
    -------
    DataFrame
        ``ID, TIME, EVID, AMT, RATE, CMT, SS, II, ADDL, MDV, DV`` (float64), ``BLQ`` and
        ``LLOQ`` (float64) when the records have a ``BLQ``, ``CENS`` or ``LLOQ`` column, the
        other columns under their own names, ``SUBJECT`` and ``ROW`` (int64); see
        :func:`insilico.dataset.read_dataset` for the rules.

    Raises
    ------
    DatasetError
        The first record (in the order of the rules) that breaks a rule.
    """
    names = check_header(raw.columns, source)
    required = ["ID", "TIME"] + (["DV"] if require_dv else [])
    absent = [item for item in required if item not in names]
    if absent:
        raise DatasetError(
            source,
            None,
            "columns",
            [str(c) for c in raw.columns],
            f"a header with {', '.join(required)} (any case); missing: {', '.join(absent)}",
        )
    if len(raw) == 0:
        raise DatasetError(source, None, "records", 0, "at least one data record")

    at = _Records(raw, lines, source, names)
    n = len(raw)
    values: dict[str, np.ndarray] = {}
    missing: dict[str, np.ndarray] = {}
    extra: dict[str, object] = {}
    extra_numeric: list[str] = []
    for column in raw.columns:
        parsed, empty, bad = parse_numbers(raw[column])
        canonical = str(column).upper()
        if canonical in names and names[canonical] == column:
            at.fail(bad, canonical, _NUMBER)
            at.fail(np.isinf(parsed), canonical, "a finite number")
            values[canonical] = parsed
            missing[canonical] = empty
        elif bad.any():
            extra[column] = raw[column].reset_index(drop=True)
        else:
            extra[column] = parsed
            extra_numeric.append(column)

    def given(item: str, default: float) -> np.ndarray:
        if item not in values:
            return np.full(n, default)
        return np.where(missing[item], default, values[item])

    identifier = values["ID"]
    at.fail(missing["ID"], "ID", "a number identifying the individual on every record")
    time = values["TIME"]
    at.fail(missing["TIME"], "TIME", "a finite number >= 0 on every record (h)")
    at.fail(time < 0, "TIME", "a finite number >= 0 (h)")

    amt = given("AMT", 0.0)
    rate = given("RATE", 0.0)
    ss = given("SS", 0.0)
    ii = given("II", 0.0)
    addl = given("ADDL", 0.0)
    cmt = given("CMT", np.nan)
    dv = given("DV", np.nan)

    at.fail(amt < 0, "AMT", "an amount >= 0")
    at.fail(
        ~(np.isin(rate, (0.0, -1.0, -2.0)) | (rate > 0)),
        "RATE",
        "0 (bolus), > 0 (infusion rate, amount/h), -1 (rate modelled) or -2 (duration modelled)",
    )
    at.fail(~np.isin(ss, (0.0, 1.0, 2.0)), "SS", "0, 1 or 2")
    at.fail(ii < 0, "II", "an interdose interval >= 0 (h)")
    at.fail(~_is_integer(addl) | (addl < 0), "ADDL", "a whole number of additional doses >= 0")
    at.fail(~np.isnan(cmt) & ~_is_integer(cmt), "CMT", "a whole compartment number")

    derived_evid = np.where((amt > 0) | ((ss == 1) & (rate > 0)), 1.0, 0.0)
    if "EVID" in values:
        evid = np.where(missing["EVID"], derived_evid, values["EVID"])
        at.fail(
            ~np.isin(evid, (0.0, 1.0, 2.0, 3.0, 4.0)),
            "EVID",
            "0 (observation), 1 (dose), 2 (other event), 3 (reset) or 4 (reset and dose)",
        )
        dose = np.isin(evid, (1.0, 4.0))
        if dose.any() and "AMT" not in names:
            at.fail(
                dose,
                "EVID",
                f"a dose record (EVID 1 or 4) only with an AMT column; columns found: "
                f"{', '.join(map(str, raw.columns))}",
            )
    else:
        evid = derived_evid
        dose = evid == 1.0

    items = {"AMT": amt, "RATE": rate, "SS": ss, "II": ii, "ADDL": addl}
    for item in _DOSE_ITEMS:
        for code, meaning in _EVID_MEANING.items():
            at.fail(
                (evid == code) & (items[item] != 0),
                item,
                f"0 or missing on an EVID {code} ({meaning}) record: NONMEM ignores dose items "
                "there, so a non-zero value is ambiguous; use EVID 1 (or 4) for a dose",
                items[item],
            )
    infusion_at_ss = (ss == 1) & (rate > 0)
    at.fail(
        dose & (amt <= 0) & ~infusion_at_ss,
        "AMT",
        "an amount > 0 on a dose record (EVID 1 or 4); AMT 0 only for a constant infusion at "
        "steady state (SS 1, RATE > 0)",
        amt,
    )
    at.fail(
        (ss > 0) & (ii <= 0) & ~(infusion_at_ss & (amt == 0)),
        "II",
        "an interdose interval > 0 (h) on a steady-state dose (SS 1 or 2), unless it is a "
        "constant infusion at steady state (SS 1, AMT 0, RATE > 0)",
        ii,
    )
    at.fail(
        (addl > 0) & (ii <= 0),
        "II",
        "an interdose interval > 0 (h) when ADDL > 0",
        ii,
    )

    if compartments is not None:
        known = np.array(sorted(int(k) for k in compartments), dtype=np.float64)
        listed = ", ".join(f"{k} ({compartments[k]})" for k in sorted(compartments))
        at.fail(
            np.isin(evid, (0.0, 1.0, 4.0)) & ~np.isnan(cmt) & (cmt != 0) & ~np.isin(cmt, known),
            "CMT",
            f"a compartment of the model: {listed}; or 0 or missing for the model's default",
            cmt,
        )

    starts = np.empty(n, dtype=bool)
    starts[0] = True
    starts[1:] = identifier[1:] != identifier[:-1]
    subject = np.cumsum(starts) - 1
    backwards = np.zeros(n, dtype=bool)
    backwards[1:] = (time[1:] < time[:-1]) & ~starts[1:]
    at.fail(
        backwards & ~np.isin(evid, (3.0, 4.0)),
        "TIME",
        "a time >= the previous record's within an individual (h); time may go back only on "
        "a reset record (EVID 3 or 4)",
    )

    if "MDV" in values:
        mdv_given = values["MDV"]
        at.fail(~missing["MDV"] & ~np.isin(mdv_given, (0.0, 1.0)), "MDV", "0 or 1")
        mdv = np.where(missing["MDV"], 0.0, mdv_given)
    else:
        mdv = np.zeros(n)
    censoring = _censoring(at, values, missing, evid, dv, mdv)
    below = np.zeros(n, dtype=bool) if censoring is None else censoring[0] == 1.0
    # a below-limit observation needs no DV: its limit is the information
    mdv = np.where((evid != 0) | (np.isnan(dv) & ~below), 1.0, mdv)

    standard = {
        "ID": identifier,
        "TIME": time,
        "EVID": evid,
        "AMT": amt,
        "RATE": rate,
        "CMT": cmt,
        "SS": ss,
        "II": ii,
        "ADDL": addl,
        "MDV": mdv,
        "DV": dv,
    }
    if extra_numeric:
        covariates = pd.DataFrame({c: extra[c] for c in extra_numeric})
        if covariates.isna().to_numpy().any():
            covariates = covariates.groupby(subject, sort=False).ffill()
            covariates = covariates.groupby(subject, sort=False).bfill()
        for column in extra_numeric:
            extra[column] = covariates[column].to_numpy(dtype=np.float64)
    columns: dict[str, object] = {k: np.asarray(v, dtype=np.float64) for k, v in standard.items()}
    if censoring is not None:
        columns["BLQ"], columns["LLOQ"] = censoring
    for column in raw.columns:
        if column in extra:
            columns[column] = extra[column]
    columns["SUBJECT"] = subject.astype(np.int64)
    columns["ROW"] = np.asarray(lines, dtype=np.int64) - 2
    return pd.DataFrame(columns)
