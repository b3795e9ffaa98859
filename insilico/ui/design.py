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
from insilico.io.specs import parse_yaml
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
    "model",
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
    from insilico.trial.spec_design import DesignSpec

    return set(DesignSpec.model_fields)


def widget_keys() -> tuple[str, ...]:
    """Top-level keys the app edits with widgets (the rest is edited as YAML)."""
    have = spec_fields()
    return COMMON_KEYS + tuple(k for k in OPTIONAL_WIDGET_KEYS if k in have)


#: Largest YAML text accepted (import, advanced section).
MAX_YAML_BYTES = 1 * 2**20


#: The design last edited in this app server (a page reload starts a new session: it
#: continues from here instead of the quickstart).
_LAST_DESIGN: dict[str, Any] | None = None


def remember_design(design: dict[str, Any]) -> None:
    """Keep ``design`` as the one a new session of this server starts from."""
    global _LAST_DESIGN
    _LAST_DESIGN = copy.deepcopy(design)


def starting_design() -> dict[str, Any]:
    """The design a new session starts from: the last one edited here, else the default."""
    return copy.deepcopy(_LAST_DESIGN) if _LAST_DESIGN is not None else default_design()


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
    # strict: duplicate keys, anchors and aliases (alias bombs) are refused
    data = parse_yaml(text, "YAML")
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
    order = list(COMMON_KEYS)
    order.insert(order.index("cohort") + 1, "model")
    ordered = {k: design[k] for k in (*order, "design", "safety") if k in design}
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
    adv = parse_yaml(text, "advanced") if text.strip() else {}
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
    ``base_dir``, the ``workflows/`` folder). Raises SpecError naming field, value, allowed.

    Beyond the spec, a ``model:`` must load and fit the cohort, the regimens and the biomarker
    (:func:`insilico.ui.models.check_trial_model`), and a PD model whose C50 comes from the
    compounds' potency must have one, so that what validates here also runs.
    """
    from insilico.trial.spec import trial_spec_from_dict
    from insilico.ui.models import check_pd_potency, check_trial_model

    spec = trial_spec_from_dict(copy.deepcopy(design), source="design", base_dir=base_dir)
    check_pd_potency(spec)
    check_trial_model(spec)
    return spec


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
            if v is None or _blank(v):
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


#: End-to-end throughput of a trial in one process, in patients x arms x output times per
#: second (the quickstart with 20,000 patients, 11 arms and 169 output times: 3.7e7 in 5.9 s
#: on one core of the machine of the README's speed table), for the estimate shown before a run.
PATIENT_TIMES_PER_CORE_S = 6e6
#: Above this estimated time in one process (s) the Run page asks to confirm before starting.
CONFIRM_ABOVE_S = 900.0


def work_estimate(spec) -> dict[str, float]:
    """The size of a run before it starts: ``patient_times`` (patients x arms x replicate
    trials x output times) and ``serial_s``, about how long it takes in one process
    (:data:`PATIENT_TIMES_PER_CORE_S`; workers divide it, up to one per core)."""
    from insilico.pk.regimen import parse_regimen

    counted = design_summary(spec)["n_arms"]
    n_arms = counted if isinstance(counted, int) else len(spec.regimens) + bool(spec.placebo)
    trials = spec.replicates.n_trials if spec.replicates is not None else 1
    if spec.output.times_h is not None:
        n_times = len(spec.output.times_h)
    else:
        duration = spec.duration_h
        if duration is None:
            named = {r.name: r.text for r in spec.regimens}
            texts = list(named.values()) + [
                a.regimen for a in spec.arms or [] if a.regimen not in named
            ]
            duration = max(parse_regimen(t).end_h for t in texts)
        n_times = int(duration // spec.output.interval_h) + 1
    units = float(spec.n_patients) * float(n_arms) * trials * n_times
    return {"patient_times": units, "serial_s": units / PATIENT_TIMES_PER_CORE_S}


def format_duration(seconds: float) -> str:
    """``under 1 s``, ``42 s``, ``12 min``, ``3.5 h``, ``2.1 days``."""
    if seconds < 1:
        return "under 1 s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


# ------------------------------------------------------------------ biomarker PD model
#: Values a PD parameter starts from when another kind is chosen and the protocol has none
#: (starting points to edit, not estimates). ``kin_per_h`` is set from the baseline ``e0``
#: (and ``e0`` from ``kin_per_h / kout_per_h``) when the previous kind had it.
PD_STARTING_VALUES: dict[str, float] = {
    "e0": 100.0,
    "emax": -50.0,
    "ec50_mg_per_L": 1.0,
    "slope_L_per_mg": -10.0,
    "kin_per_h": 10.0,
    "kout_per_h": 0.1,
    "imax": 0.5,
    "ic50_mg_per_L": 1.0,
    "smax": 1.0,
    "sc50_mg_per_L": 1.0,
    "ke0_per_h": 0.5,
}


def pd_kind_options(current: str | None = None) -> list[str]:
    """Every PD model of the registry (built-in and registered user models), and ``current``
    if the registry does not have it."""
    from insilico.pd.registry import pd_model_names

    names = list(pd_model_names())
    if current and current not in names:
        names.append(current)
    return names


def is_builtin_pd(kind: str) -> bool:
    """Whether the built-in twins (no ``model:``) can run a PD kind."""
    from insilico.pd.models import REQUIRED

    return kind in REQUIRED and kind != "none"


def pd_kind_label(kind: str, has_model: bool) -> str:
    """``irm1 — indirect response: inhibition of production`` (and what it needs)."""
    from insilico.pd.registry import get_pd_model

    try:
        description = get_pd_model(kind).description
    except SpecError:
        description = "not a registered PD model"
    label = f"{kind} — {description}" if description else kind
    if not has_model and not is_builtin_pd(kind):
        label += " (needs a PK model)"
    return label


def effect_compartment_help(kind: str, has_model: bool) -> tuple[bool, str]:
    """Whether an effect compartment may be put in front of ``kind``, and why (help text)."""
    what = (
        "An effect compartment delays the effect: the PD model is driven by Ce, "
        "dCe/dt = ke0_per_h · (C − Ce); ke0_per_h is added to the parameters."
    )
    if kind.startswith("irm") and not has_model:
        return False, (
            f"{what} In front of an indirect response ({kind}) it needs a PK model (choose "
            "one under PK model): the built-in one-compartment twins drive indirect "
            "responses by the plasma concentration only."
        )
    return True, what


def _pd_parameters(kind: str, effect_compartment: bool) -> tuple[list[str], set[str]]:
    """Required parameters of a PD kind (with ``ke0_per_h``) and every parameter it takes."""
    from insilico.pd.models import REQUIRED
    from insilico.pd.registry import get_pd_model

    try:
        record = get_pd_model(kind)
        required, allowed = list(record.required), set(record.parameters)
    except SpecError:
        required = list(REQUIRED.get(kind, ()))
        allowed = set(required)
    allowed.add("fu")
    if effect_compartment:
        required.append("ke0_per_h")
        allowed.add("ke0_per_h")
    return required, allowed | set(required)


def _pd_order(kind: str, effect_compartment: bool) -> list[str]:
    from insilico.pd.models import REQUIRED
    from insilico.pd.registry import get_pd_model

    try:
        names = list(get_pd_model(kind).parameters)
    except SpecError:
        names = list(REQUIRED.get(kind, ()))
    return names + (["ke0_per_h"] if effect_compartment else [])


def _c50_name(kind: str) -> str | None:
    from insilico.trial.context import C50_NAME

    return C50_NAME.get(kind)


def with_pd(
    design: dict[str, Any], kind: str | None = None, effect_compartment: bool | None = None
) -> tuple[dict[str, Any], list[str]]:
    """The design with the biomarker's PD model changed to ``kind`` and/or the effect
    compartment switched, its parameters adapted; and the names set to starting values.

    Parameters the new kind takes are kept (the baseline carries over between ``e0`` and
    ``kin_per_h / kout_per_h``, a C50 between kinds); the others are dropped; missing
    required ones take :data:`PD_STARTING_VALUES` (a C50 comes from the compounds' potency
    when the protocol says so, and ``c50_from`` falls back to ``params`` for a kind without
    a C50). The protocol's ``iiv.cv`` follows a renamed C50 and drops parameters the kind no
    longer has. The input is not changed.
    """
    out = copy.deepcopy(design)
    bm = out.get("biomarker")
    if not isinstance(bm, dict) or not isinstance(bm.get("pd"), dict):
        return out, []
    pd = bm["pd"]
    old_kind = str(pd.get("kind", ""))
    kind = old_kind if kind is None else str(kind)
    eff = (
        bool(pd.get("effect_compartment", False))
        if effect_compartment is None
        else bool(effect_compartment)
    )
    old = dict(pd.get("params") or {})
    _, old_allowed = _pd_parameters(old_kind, bool(pd.get("effect_compartment", False)))
    required, allowed = _pd_parameters(kind, eff)
    params = {k: v for k, v in old.items() if k in allowed}
    c50_old, c50_new = _c50_name(old_kind), _c50_name(kind)
    c50_from = pd.get("c50_from", "params")
    if c50_from == "potency" and c50_new is None:
        c50_from = "params"
    if c50_old and c50_new and c50_old in old and c50_new not in params:
        params[c50_new] = old[c50_old]
    # the baseline carries over: R0 = kin / kout of an indirect response, E0 of a direct one
    filled = []
    for name in required:
        if name in params or (c50_from == "potency" and name == c50_new):
            continue
        if name in PD_STARTING_VALUES:
            params[name] = PD_STARTING_VALUES[name]
            filled.append(name)
    if "kin_per_h" in filled and "e0" in old:
        params["kin_per_h"] = float(old["e0"]) * float(params["kout_per_h"])
        filled.remove("kin_per_h")
    if "e0" in filled and {"kin_per_h", "kout_per_h"} <= set(old):
        params["e0"] = float(old["kin_per_h"]) / float(old["kout_per_h"])
        filled.remove("e0")
    # in the order of the model's parameters, then the others (fu)
    order = {n: k for k, n in enumerate(_pd_order(kind, eff))}
    params = dict(sorted(params.items(), key=lambda kv: order.get(kv[0], len(order))))
    pd["kind"] = kind
    if eff:
        pd["effect_compartment"] = True
    else:
        pd.pop("effect_compartment", None)
    pd["params"] = params
    if "c50_from" in pd or c50_from != "params":
        pd["c50_from"] = c50_from
    iiv = out.get("iiv")
    if isinstance(iiv, dict) and isinstance(iiv.get("cv"), dict):
        rename = {c50_old: c50_new} if c50_old and c50_new and c50_old != c50_new else {}
        gone = (old_allowed - allowed - {"fu"}) - set(rename)
        cv = {rename.get(k, k): v for k, v in iiv["cv"].items() if k not in gone}
        corr = [
            [rename.get(a, a), rename.get(b, b), r]
            for a, b, r in iiv.get("correlation") or []
            if a not in gone and b not in gone
        ]
        iiv["cv"] = cv
        if "correlation" in iiv:
            iiv["correlation"] = corr
    return out, filled
