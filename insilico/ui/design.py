"""The trial design of the app as a plain mapping, the same format as ``workflows/*.yaml``.

The app edits a mapping (never a half-built spec object) and validates it with
:func:`insilico.trial.spec.trial_spec_from_dict` — the function ``insilico run`` ends in — so
whatever the app exports, the CLI accepts, and any field the spec gains works through the
"advanced" YAML without app changes. Relative paths are those of a file in ``workflows/``
(``cohort: ../cohorts/<preset>.yaml``).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from insilico.errors import SpecError
from insilico.ui.cohorts import WORKFLOWS_DIR

#: Keys the app edits with widgets; every other key is edited as YAML ("advanced").
COMMON_KEYS = (
    "kind",
    "schema_version",
    "name",
    "description",
    "seed",
    "n_patients",
    "cohort",
    "compounds",
    "regimens",
    "arms",
    "placebo",
    "duration_h",
)
#: Sections with their own widgets when the spec has them (else they stay in the YAML).
OPTIONAL_WIDGET_KEYS = (
    "replicates",
    "uncertainty",
    "dose_scan",
    "endpoints",
    "primary",
    "adverse_events",
)
#: ``design`` sub-keys with widgets (the others, e.g. ``ratios``, ``titration``, stay in YAML).
DESIGN_WIDGET_KEYS = ("type", "dropout", "adherence")
#: Sections split between widgets (these sub-keys) and the YAML (the other sub-keys).
NESTED_WIDGET_KEYS = {"design": DESIGN_WIDGET_KEYS, "safety": ("qt", "liver")}


def spec_fields() -> set[str]:
    """Top-level fields of the current :class:`insilico.trial.spec.TrialSpec`."""
    from insilico.trial.spec import TrialSpec

    return set(TrialSpec.model_fields)


def design_fields() -> set[str]:
    """Fields of the current ``design`` section (:class:`insilico.trial.spec.DesignSpec`)."""
    from insilico.trial.spec import TrialSpec

    return set(TrialSpec.model_fields["design"].annotation.model_fields)


def widget_keys() -> tuple[str, ...]:
    """Top-level keys the app edits with widgets (the rest is edited as YAML)."""
    have = spec_fields()
    return COMMON_KEYS + tuple(k for k in OPTIONAL_WIDGET_KEYS if k in have)


#: Largest YAML text accepted (import, advanced section).
MAX_YAML_BYTES = 1 * 2**20


def default_design() -> dict[str, Any]:
    """A starting design: ``workflows/quickstart.yaml`` as a mapping (or a small built-in one)."""
    path = WORKFLOWS_DIR / "quickstart.yaml"
    if path.is_file():
        return design_from_yaml(path.read_text(encoding="utf-8"))
    from insilico.trial.examples import small_trial

    d = small_trial()
    d["cohort"] = "../cohorts/healthy_adults_us.yaml"
    return d


def design_from_yaml(text: str) -> dict[str, Any]:
    """Parse a trial YAML text (``kind: trial``) into the design mapping (safe loader only)."""
    if len(text.encode("utf-8")) > MAX_YAML_BYTES:
        raise SpecError("YAML", f"{len(text)} characters", f"at most {MAX_YAML_BYTES} bytes")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "the text"
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError("YAML", where, f"valid YAML ({reason})") from None
    if not isinstance(data, dict):
        raise SpecError("YAML", type(data).__name__, "a mapping (key: value lines)")
    if data.get("kind", "trial") != "trial":
        raise SpecError("kind", data.get("kind"), "'trial'")
    data.setdefault("kind", "trial")
    data.setdefault("schema_version", 1)
    return data


def design_to_yaml(design: dict[str, Any]) -> str:
    """The design as ``workflows/`` YAML text (keys in the spec's order; a header comment)."""
    head = (
        "# Trial protocol exported from the insilico app. Run it with:\n"
        "#   insilico run workflows/<this file>.yaml\n"
        "# (relative paths are relative to this file's folder, workflows/)\n"
    )
    ordered = {k: design[k] for k in (*COMMON_KEYS, "design", "safety") if k in design}
    ordered.update({k: v for k, v in design.items() if k not in ordered})
    return head + yaml.safe_dump(ordered, sort_keys=False, allow_unicode=True, width=100)


def advanced_part(design: dict[str, Any]) -> dict[str, Any]:
    """The keys not edited with widgets (``design`` without its widget sub-keys)."""
    keys = widget_keys()
    out = {k: copy.deepcopy(v) for k, v in design.items() if k not in keys}
    for section, sub in NESTED_WIDGET_KEYS.items():
        if isinstance(out.get(section), dict):
            rest = {k: v for k, v in out[section].items() if k not in sub}
            if rest:
                out[section] = rest
            else:
                out.pop(section)
    return out


def advanced_yaml(design: dict[str, Any]) -> str:
    """:func:`advanced_part` as YAML text ('' when empty)."""
    adv = advanced_part(design)
    return yaml.safe_dump(adv, sort_keys=False, allow_unicode=True, width=100) if adv else ""


def with_advanced(design: dict[str, Any], text: str) -> dict[str, Any]:
    """The design with its advanced keys replaced by the YAML ``text`` (a mapping).

    Keys edited by widgets are refused here (they would silently fight the widgets).
    """
    if len(text.encode("utf-8")) > MAX_YAML_BYTES:
        raise SpecError("advanced", f"{len(text)} characters", f"at most {MAX_YAML_BYTES} bytes")
    try:
        adv = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "the text"
        reason = getattr(exc, "problem", None) or "a YAML error"
        raise SpecError("advanced", where, f"valid YAML ({reason})") from None
    if adv is None:
        adv = {}
    if not isinstance(adv, dict):
        raise SpecError("advanced", type(adv).__name__, "a mapping (key: value lines)")
    keys = widget_keys()
    clash = sorted(set(adv) & set(keys))
    for section, sub in NESTED_WIDGET_KEYS.items():
        if isinstance(adv.get(section), dict):
            clash += [f"{section}.{k}" for k in adv[section] if k in sub]
    if clash:
        raise SpecError("advanced", clash, "keys other than those set with the widgets above")
    out = {k: v for k, v in design.items() if k in keys}
    nested = {
        section: {k: v for k, v in (design.get(section) or {}).items() if k in sub}
        for section, sub in NESTED_WIDGET_KEYS.items()
    }
    out.update(adv)
    for section, widget_part in nested.items():
        if widget_part or section in adv:
            out[section] = {**(adv.get(section) or {}), **widget_part}
    return out


def parse_doses(text: str) -> list[float]:
    """Doses in mg from ``10, 30, 100`` (empty text: no dose scan)."""
    parts = [p for p in str(text).replace(";", ",").replace(" ", ",").split(",") if p.strip()]
    try:
        doses = [float(p) for p in parts]
    except ValueError:
        raise SpecError(
            "dose_scan.doses_mg", text, "doses in mg separated by commas, e.g. 10, 30, 100"
        ) from None
    return doses


def validate_design(design: dict[str, Any], base_dir: str | Path = WORKFLOWS_DIR):
    """The design as a :class:`insilico.trial.spec.TrialSpec` (relative paths against
    ``base_dir``, the ``workflows/`` folder). Raises SpecError naming field, value, allowed."""
    from insilico.trial.spec import trial_spec_from_dict

    return trial_spec_from_dict(copy.deepcopy(design), source="design", base_dir=base_dir)


def check_regimen(text: str) -> str:
    """'' if the regimen text parses, else the reason (first line, with what is expected)."""
    from insilico.pk.regimen import parse_regimen

    try:
        parse_regimen(str(text))
    except SpecError as exc:
        return str(exc.args[0]).splitlines()[0]
    return ""


def describe_regimen(text: str) -> str:
    """Plain words for a valid regimen: doses, total amount, end of the last interval."""
    from insilico.pk.regimen import parse_regimen

    reg = parse_regimen(str(text))
    n = sum(s.n_doses for s in reg.series)
    units = {s.unit for s in reg.series}
    total = sum(s.amount * s.n_doses for s in reg.series)
    unit = units.pop() if len(units) == 1 else "mg"
    return f"{n} doses, {total:g} {unit} in total, over {reg.end_h:g} h ({reg.end_h / 24:g} days)"


def arm_rows(design: dict[str, Any]) -> list[dict[str, str]]:
    """Explicit arms as editor rows (``compound``, ``regimen``, ``name``); [] when the design
    crosses every compound with every named regimen (``arms`` absent)."""
    arms = design.get("arms")
    if not arms:
        return []
    return [
        {
            "compound": str(a.get("compound", "")),
            "regimen": str(a.get("regimen", "")),
            "name": str(a.get("name") or ""),
        }
        for a in arms
    ]


def arms_from_rows(rows: list[dict]) -> list[dict[str, str]]:
    """Arms from editor rows (blank rows skipped, blank names left out)."""
    out = []
    for r in rows:
        comp = str(r.get("compound") or "").strip()
        reg = str(r.get("regimen") or "").strip()
        name = str(r.get("name") or "").strip()
        if not comp and not reg:
            continue
        arm = {"compound": comp, "regimen": reg}
        if name:
            arm["name"] = name
        out.append(arm)
    return out


#: Columns of the endpoint editor, in :class:`insilico.trial.spec.EndpointSpec`'s terms.
ENDPOINT_COLUMNS = (
    "name",
    "kind",
    "time_h",
    "scale",
    "threshold",
    "sustained_from_h",
    "metric",
    "target_mg_per_L",
    "min_fraction",
    "min_ratio",
)
ENDPOINT_KINDS = ("change", "responder", "time_to_response", "target_attainment")
ENDPOINT_SCALES = ("percent", "absolute")
ENDPOINT_METRICS = ("trough", "time_above", "auc", "cavg")
_ENDPOINT_TEXT = ("name", "kind", "scale", "metric")


def _blank(v) -> bool:
    return v is None or (isinstance(v, float) and v != v) or (isinstance(v, str) and not v.strip())


def endpoint_rows(design: dict[str, Any]) -> list[dict]:
    """The design's ``endpoints`` as editor rows (missing fields blank)."""
    return [{c: e.get(c) for c in ENDPOINT_COLUMNS} for e in design.get("endpoints") or []]


def endpoints_from_rows(rows: list[dict]) -> list[dict]:
    """Endpoints from editor rows: blank rows skipped, blank fields left to the spec's
    defaults (``scale: percent``, ``min_fraction: 0.5``, ``min_ratio: 1``); numbers as float.
    Whether a row makes sense for its kind is checked by the spec (errors name the field)."""
    out = []
    for r in rows:
        if all(_blank(r.get(c)) for c in ENDPOINT_COLUMNS):
            continue
        ep: dict = {}
        for c in ENDPOINT_COLUMNS:
            v = r.get(c)
            if _blank(v):
                continue
            ep[c] = str(v).strip() if c in _ENDPOINT_TEXT else float(v)
        ep.setdefault("name", "")
        out.append(ep)
    return out


def primary_options(design: dict[str, Any]) -> list[str]:
    """Endpoints that can be primary (yes/no ones: responder, target attainment), the legacy
    ``responder:`` section included; the first is what the spec uses when none is named."""
    names = ["responder"] if design.get("responder") else []
    for e in design.get("endpoints") or []:
        if e.get("kind") in ("responder", "target_attainment") and e.get("name"):
            names.append(str(e["name"]))
    return list(dict.fromkeys(names))


AE_COLUMNS = ("name", "driver", "intercept", "slope", "serious")


def adverse_event_rows(design: dict[str, Any]) -> list[dict]:
    """The design's adverse-event models as editor rows."""
    rows = []
    for a in design.get("adverse_events") or []:
        rows.append({c: a.get(c, False if c == "serious" else None) for c in AE_COLUMNS})
    return rows


def adverse_events_from_rows(rows: list[dict]) -> list[dict]:
    """Adverse-event models from editor rows (blank rows skipped; ``serious`` only if true)."""
    out = []
    for r in rows:
        name = str(r.get("name") or "").strip()
        if not name and r.get("driver") in (None, ""):
            continue
        ae: dict = {"name": name, "driver": r.get("driver")}
        for c in ("intercept", "slope"):
            v = r.get(c)
            ae[c] = None if v is None or (isinstance(v, float) and v != v) else float(v)
        if bool(r.get("serious")) and r.get("serious") == r.get("serious"):
            ae["serious"] = True
        out.append(ae)
    return out


def regimen_problems(design: dict[str, Any]) -> list[str]:
    """Readable problems of the regimens and arms (each checked as you type)."""
    names = {str(r.get("name")) for r in design.get("regimens") or []}
    out = []
    for k, r in enumerate(design.get("regimens") or []):
        msg = check_regimen(r.get("text", ""))
        if msg:
            out.append(f"regimen {r.get('name') or k + 1} ({r.get('text')!r}): {msg}")
    for k, a in enumerate(design.get("arms") or []):
        reg = str(a.get("regimen", ""))
        if reg in names:
            continue
        msg = check_regimen(reg)
        if msg:
            out.append(f"arm {k + 1} ({a.get('compound')}, {reg!r}): {msg}")
    return out


def design_summary(spec) -> dict[str, object]:
    """Numbers to show before running: arms, patients, simulated patient-arms."""
    n_comp = len(spec.compounds) if isinstance(spec.compounds, list) else None
    if spec.arms is not None:
        n_arms = len(spec.arms)
    elif n_comp is not None:
        n_arms = n_comp * len(spec.regimens)
    else:
        n_arms = None
    if n_arms is not None and spec.placebo:
        n_arms += 1
    return {
        "name": spec.name,
        "n_patients": spec.n_patients,
        "n_arms": n_arms,
        "n_compounds": n_comp,
        "design": spec.design.type,
        "spec_sha256": spec.sha256(),
    }
