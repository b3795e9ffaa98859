"""One loader for YAML specs: path -> typed, frozen pydantic spec.

Validation errors become :class:`insilico.errors.SpecError` naming the file, the field path,
the value and what is allowed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from insilico.errors import SpecError

M = TypeVar("M", bound=BaseModel)


class FrozenSpec(BaseModel):
    """Base of every spec: frozen, unknown keys rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def _field_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "<root>"


def spec_error_from_validation(
    exc: ValidationError, source: str | None = None, prefix: str = ""
) -> SpecError:
    """First error of a pydantic ``ValidationError`` as a :class:`SpecError`."""
    err = exc.errors()[0]
    loc = tuple(p for p in err.get("loc", ()) if not (isinstance(p, str) and "[" in p))
    field = _field_path(loc)
    if prefix:
        field = f"{prefix}.{field}" if field != "<root>" else prefix
    value = err.get("input")
    if err.get("type") == "extra_forbidden":
        allowed = "no such key (unknown keys are errors)"
    elif err.get("type") == "missing":
        value = None
        allowed = "a value (the field is required)"
    else:
        allowed = err.get("msg", "a valid value")
    n_more = len(exc.errors()) - 1
    if n_more:
        allowed += f" (and {n_more} more error{'s' if n_more > 1 else ''})"
    return SpecError(field, value, allowed, source)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing or malformed file is a :class:`SpecError`."""
    p = Path(path)
    if not p.is_file():
        raise SpecError("path", str(path), "an existing YAML file")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SpecError("<file>", str(path), f"valid YAML ({exc})", str(path)) from None
    if not isinstance(data, dict):
        raise SpecError("<root>", type(data).__name__, "a YAML mapping", str(path))
    return data


def validate_spec(model: type[M], data: dict[str, Any], source: str | None = None) -> M:
    """Validate ``data`` as ``model``; errors name the source file and field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise spec_error_from_validation(exc, source) from None


def load_spec(model: type[M], path: str | Path, kind: str, schema_versions=(1,)) -> M:
    """Load a YAML file with ``kind:`` and ``schema_version:`` into ``model``."""
    data = read_yaml(path)
    got_kind = data.get("kind")
    if got_kind != kind:
        raise SpecError("kind", got_kind, repr(kind), str(path))
    version = data.get("schema_version")
    if version not in schema_versions:
        raise SpecError("schema_version", version, f"one of {list(schema_versions)}", str(path))
    return validate_spec(model, data, str(path))
