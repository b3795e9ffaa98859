"""Typed errors. Every message names the field, the value and what is allowed."""

from __future__ import annotations


class InsilicoError(Exception):
    """Base class of every error insilico raises on purpose."""


class SpecError(InsilicoError, ValueError):
    """A specification (YAML, text regimen, function argument) is invalid.

    Parameters
    ----------
    field : str
        Dotted path of the offending field (``arms[1].regimen``).
    value : object
        The value that was given.
    allowed : str
        What would have been accepted.
    source : str, optional
        File the spec came from.
    """

    def __init__(self, field: str, value: object, allowed: str, source: str | None = None):
        self.field = field
        self.value = value
        self.allowed = allowed
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{field}: got {value!r}; allowed: {allowed}")


class RegimenParseError(SpecError):
    """A compact regimen text could not be parsed; points at the offending token."""

    def __init__(self, text: str, position: int, token: str, allowed: str):
        self.text = text
        self.position = position
        self.token = token
        pointer = " " * position + "^" * max(1, len(token))
        super().__init__("regimen", token, allowed)
        self.args = (
            f"regimen: cannot parse {token!r} at position {position}; expected {allowed}\n"
            f"  {text}\n  {pointer}",
        )


class CompoundError(InsilicoError, ValueError):
    """A compound cannot be used (unparsable structure, missing PK parameter)."""

    def __init__(self, compound_id: str, reason: str):
        self.compound_id = compound_id
        self.reason = reason
        super().__init__(f"compound {compound_id!r}: {reason}")


class DatasetError(InsilicoError, ValueError):
    """A NONMEM-format dataset is invalid; names the file, row, column, value and what is allowed.

    Parameters
    ----------
    source : str
        The file the data came from (``"<memory>"`` for a data frame).
    row : int or None
        Line number as seen in an editor or spreadsheet: the header is line 1, the first
        data record line 2. ``None`` when the problem is not in one record (a missing
        column, an unreadable file).
    column : str
        Column (as spelled in the file) or aspect of the file (``"encoding"``, ``"fields"``).
    value : object
        The offending value, as written in the file where there is one.
    allowed : str
        What would have been accepted.
    """

    def __init__(self, source: str, row: int | None, column: str, value: object, allowed: str):
        self.source = source
        self.row = row
        self.column = column
        self.value = value
        self.allowed = allowed
        where = f"row {row}, " if row is not None else ""
        super().__init__(f"{source}: {where}{column}: got {value!r}; allowed: {allowed}")
