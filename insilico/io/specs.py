"""One loader for YAML specs: path -> typed, frozen pydantic spec.

Validation errors become :class:`insilico.errors.SpecError` naming the file, the field path,
the value and what is allowed.
"""

from __future__ import annotations

import difflib
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from insilico.errors import SpecError

M = TypeVar("M", bound=BaseModel)


class FrozenSpec(BaseModel):
    """Base of every spec: frozen, unknown keys rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def field_path(loc: tuple) -> str:
    """A pydantic error location as a dotted field path: ``("arms", 2, "dose")`` ->
    ``arms[2].dose``; ``<root>`` for the empty location.

    >>> field_path(("arms", 2, "dose"))
    'arms[2].dose'
    """
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "<root>"


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models a field annotation can hold (through lists, dicts and unions)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def known_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """The keys allowed in the mapping at ``loc`` (a pydantic error location) of ``model``;
    empty when that mapping is not a spec (a free-form dict).

    >>> class Output(FrozenSpec):
    ...     interval_h: float = 1.0
    ...     times_h: list[float] | None = None
    >>> known_keys(Output, ())
    ['interval_h', 'times_h']
    """
    models = [model]
    for part in loc:
        if isinstance(part, int):
            continue
        tagged = [m for m in models if m.__name__ == part or f"[{m.__name__}]" in part]
        if tagged:  # the union member pydantic tried
            models = tagged
            continue
        inner = [
            sub
            for m in models
            if part in m.model_fields
            for sub in _models_in(m.model_fields[part].annotation)
        ]
        if inner or any(part in m.model_fields for m in models):
            models = inner
        # else: a key of a dict of specs (by_compound.<id>): the same models
        if not models:
            return []
    return sorted({k for m in models for k in m.model_fields})


def _unknown_key_hint(key: object, allowed: list[str]) -> str:
    """``did you mean 'x'?`` for a misspelt key, else the keys allowed."""
    if not allowed:
        return ""
    text = str(key)
    near = [k for k in allowed if k.lower() == text.lower()] or difflib.get_close_matches(
        text, allowed, n=1, cutoff=0.6
    )
    if near:
        return f"; did you mean {near[0]!r}?"
    return f"; the keys allowed here: {', '.join(allowed)}"


#: What a strict field allows, in the words of the error line (pydantic's own say "Input
#: should be a valid boolean").
STRICT_TYPE_ERRORS = {
    "bool_type": "true or false (not 1, 0 or text)",
    "int_type": "a whole number (not true/false, not text)",
}


def spec_error_from_validation(
    exc: ValidationError,
    source: str | None = None,
    prefix: str = "",
    model: type[BaseModel] | None = None,
) -> SpecError:
    """First error of a pydantic ``ValidationError`` as a :class:`SpecError`; with the
    validated ``model``, an unknown key's error suggests the key meant."""
    err = exc.errors()[0]
    full_loc = tuple(err.get("loc", ()))
    loc = tuple(p for p in full_loc if not (isinstance(p, str) and "[" in p))
    field = field_path(loc)
    if prefix:
        field = f"{prefix}.{field}" if field != "<root>" else prefix
    value = err.get("input")
    if err.get("type") == "extra_forbidden":
        allowed = "no such key (unknown keys are errors)"
        if model is not None and full_loc:
            allowed += _unknown_key_hint(full_loc[-1], known_keys(model, full_loc[:-1]))
    elif err.get("type") == "missing":
        value = None
        allowed = "a value (the field is required)"
    elif err.get("type") in STRICT_TYPE_ERRORS:
        allowed = STRICT_TYPE_ERRORS[err["type"]]
    else:
        allowed = err.get("msg", "a valid value")
    n_more = len(exc.errors()) - 1
    if n_more:
        allowed += f" (and {n_more} more error{'s' if n_more > 1 else ''})"
    return SpecError(field, value, allowed, source)


class StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses anchors and aliases (no alias bombs).

    Duplicate keys are found by :func:`parse_yaml`, which reports their key path.
    """

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.composer.ComposerError(
                None, None, "anchors and aliases are not allowed", event.start_mark
            )
        return super().compose_node(parent, index)


def _check_duplicate_keys(loader: StrictLoader, node: yaml.Node, path: str, source: str):
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            sub = f"{path}.{key}" if path else str(key)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key; the constructor refuses it
                duplicate = False
            if duplicate:
                line = key_node.start_mark.line + 1
                raise SpecError(
                    sub, key, f"each key once per mapping (repeated at line {line})", source
                )
            _check_duplicate_keys(loader, value_node, sub, source)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_duplicate_keys(loader, item, f"{path}[{i}]", source)


def parse_yaml(text: str, source: str = "<text>") -> Any:
    """Parse YAML text strictly: duplicate keys, anchors and aliases are :class:`SpecError`."""
    loader = StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_duplicate_keys(loader, node, "", source)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or "not valid YAML"
        mark = getattr(exc, "problem_mark", None)
        if mark is None:
            raise SpecError("<file>", source, f"valid YAML ({problem})", source) from None
        lines = text.splitlines()
        line = lines[mark.line].strip()[:60] if mark.line < len(lines) else ""
        raise SpecError(f"line {mark.line + 1}", line, f"valid YAML ({problem})", source) from None
    finally:
        loader.dispose()


def read_yaml(path: str | Path, kind: str | None = None) -> dict[str, Any]:
    """Read a YAML mapping strictly (:func:`parse_yaml`); a missing, non-UTF-8 or malformed file
    is a :class:`SpecError`. ``kind`` (``"cohort"``) names what a missing file should have
    been."""
    p = Path(path)
    if not p.is_file():
        if kind is not None:
            raise SpecError(kind, str(path), f"an existing YAML file (kind: {kind})")
        raise SpecError("path", str(path), "an existing YAML file")
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError(
            "<file>", str(path), f"UTF-8 text (byte {exc.start} is not)", str(path)
        ) from None
    if "\x00" in text:
        raise SpecError("<file>", str(path), "a text file (it holds NUL bytes)", str(path))
    data = parse_yaml(text, str(path))
    if data is None:
        raise SpecError("<root>", "an empty file", "a YAML mapping", str(path))
    if not isinstance(data, dict):
        raise SpecError("<root>", type(data).__name__, "a YAML mapping", str(path))
    return data


def validate_spec(model: type[M], data: dict[str, Any], source: str | None = None) -> M:
    """Validate ``data`` as ``model``; errors name the source file and field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise spec_error_from_validation(exc, source, model=model) from None


def load_spec(model: type[M], path: str | Path, kind: str, schema_versions=(1,)) -> M:
    """Load a YAML file with ``kind:`` and ``schema_version:`` into ``model``."""
    data = read_yaml(path, kind)
    got_kind = data.get("kind")
    if got_kind != kind:
        raise SpecError("kind", got_kind, repr(kind), str(path))
    version = data.get("schema_version")
    if version not in schema_versions:
        raise SpecError("schema_version", version, f"one of {list(schema_versions)}", str(path))
    return validate_spec(model, data, str(path))
