"""Trial design: arms as compound x regimen, placebo, duration, design type, the PK model (the
built-in twin, a ``models/`` file or a custom structure), the biomarker's PD model, and the rest
of the protocol as YAML; validated as you type by the same function as ``insilico run``; export
and import ``workflows/`` YAML files."""

from __future__ import annotations

import common
import pandas as pd
import streamlit as st

from insilico.errors import InsilicoError
from insilico.model.catalogue import ABSORPTIONS, COMPARTMENTS, ELIMINATIONS
from insilico.ui import cohorts as ui_cohorts
from insilico.ui import design as ui
from insilico.ui import models as ui_models

st.title("Trial design")
d = common.design()
v = common.design_version()

with st.expander("Import a protocol (workflows/*.yaml)"):
    up = st.file_uploader("Trial YAML", type=["yaml", "yml"], key=f"import_{v}")
    if up is not None:
        try:
            imported = ui.design_from_yaml(up.getvalue().decode("utf-8", errors="replace"))
        except InsilicoError as exc:
            st.error(str(exc).splitlines()[0])
        else:
            common.set_design(imported, reset_widgets=True)
            st.session_state.pop("compounds_raw", None)
            st.rerun()
    if st.button("Start again from the quickstart protocol", key=f"reset_{v}"):
        common.set_design(ui.default_design(), reset_widgets=True)
        st.session_state.pop("compounds_raw", None)
        st.rerun()

new: dict = {"kind": "trial", "schema_version": 1}
c1, c2, c3 = st.columns([2, 1, 1])
new["name"] = c1.text_input(
    "Name (letters, digits, _ . -)", value=str(d.get("name", "")), key=f"name_{v}"
)
new["seed"] = int(
    c2.number_input("Seed", min_value=0, value=int(d.get("seed", 1)), step=1, key=f"seed_{v}")
)
new["n_patients"] = int(
    c3.number_input(
        "Patients (n)", min_value=1, value=int(d.get("n_patients", 1000)), step=100, key=f"n_{v}"
    )
)
desc = st.text_input("Description", value=str(d.get("description", "")), key=f"desc_{v}")
if desc:
    new["description"] = desc

# cohort
presets = list(ui_cohorts.presets())
current = ui_cohorts.preset_of(d.get("cohort"))
custom = current is None or isinstance(d.get("cohort"), dict)
options = presets + (["(as set on the Cohort page / in the file)"] if custom else [])
choice = st.selectbox(
    "Cohort",
    options,
    index=len(options) - 1 if custom else presets.index(current),
    key=f"cohort_{v}",
)
new["cohort"] = d.get("cohort") if choice not in presets else ui_cohorts.preset_reference(choice)

# compounds
comps = d.get("compounds")
if isinstance(comps, list):
    ids = [str(c.get("id")) for c in comps]
    st.markdown(
        "**Compounds** (change them on the Compounds page): " + ", ".join(f"`{i}`" for i in ids)
    )
else:
    ids = []
    st.markdown(f"**Compounds** from the file `{(comps or {}).get('path')}`")
new["compounds"] = comps

# PK model: the built-in twin, a shipped model file, or a custom structure
st.subheader("PK model")
shipped = ui_models.shipped_models()
model_now = d.get("model")
model_pick0 = ui_models.model_choice(model_now, shipped)
model_labels = {ui_models.BUILTIN: "Built-in (one compartment)"}
model_labels |= {m.reference: m.label for m in shipped}
if model_pick0 == ui_models.OTHER_FILE:
    model_labels[ui_models.OTHER_FILE] = f"As in the protocol: {model_now}"
model_labels[ui_models.CUSTOM] = "Custom structure"
model_pick = st.selectbox(
    "PK model",
    list(model_labels),
    index=list(model_labels).index(model_pick0),
    format_func=model_labels.get,
    help="Built-in: one compartment, first-order absorption, allometry on weight and renal "
    "scaling of the excreted fraction. A model sets the structure, covariate effects, IIV and "
    "residual error of every twin; compounds supply CL, Vss (shared among the volumes in the "
    "model's proportions), ka, F and fu.",
    key=f"model_{v}",
)
if model_pick == ui_models.CUSTOM:
    cf = ui_models.custom_fields(model_now)
    with st.container(border=True):
        c1, c2, c3 = st.columns(3)
        n_cmt = c1.selectbox(
            "Compartments",
            list(COMPARTMENTS),
            index=list(COMPARTMENTS).index(cf.compartments)
            if cf.compartments in COMPARTMENTS
            else 0,
            key=f"model_cmt_{v}",
        )
        absorption = c2.selectbox(
            "Absorption",
            list(ABSORPTIONS),
            index=list(ABSORPTIONS).index(cf.absorption) if cf.absorption in ABSORPTIONS else 0,
            help="none: doses enter the central compartment; first_order: from a depot (ka); "
            "zero_order: infused over d1_h; transit: through n_transit compartments (mtt_h).",
            key=f"model_abs_{v}",
        )
        elimination = c3.selectbox(
            "Elimination",
            list(ELIMINATIONS),
            index=list(ELIMINATIONS).index(cf.elimination) if cf.elimination in ELIMINATIONS else 0,
            help="linear: CL·C; michaelis_menten: Vmax·C/(Km + C); or their sum.",
            key=f"model_elim_{v}",
        )
        st.caption(
            "Typical values and IIV (CV %, 0 = none). In the trial each compound's CL, ka, F "
            "and fu replace these and its Vss is shared among the volumes in these "
            "proportions; the other values (Q, Vmax, Km, transit, lag) are used as given."
        )
        values: dict = {}
        cvs: dict = {}
        names = [
            *ui_models.structure_parameters(n_cmt, absorption, elimination),
            *ui_models.CUSTOM_OPTIONAL,
        ]
        for k, name in enumerate(names):
            if k % 2 == 0:
                cols = st.columns(4)
            a, b = cols[2 * (k % 2)], cols[2 * (k % 2) + 1]
            if ui_models.is_integer_parameter(name):
                values[name] = a.number_input(
                    ui_models.parameter_label(name),
                    value=int(cf.value(name)),
                    step=1,
                    help=ui_models.parameter_help(name),
                    key=f"model_p_{name}_{v}",
                )
                b.caption("(whole number: no IIV)")
                continue
            values[name] = a.number_input(
                ui_models.parameter_label(name)
                + (" (0 = none)" if name in ui_models.CUSTOM_OPTIONAL else ""),
                value=float(cf.value(name)),
                format="%.4g",
                help=ui_models.parameter_help(name),
                key=f"model_p_{name}_{v}",
            )
            cvs[name] = b.number_input(
                f"IIV CV % of {name}",
                min_value=0.0,
                max_value=1000.0,
                value=float(cf.cv_pct.get(name, 0.0)),
                step=5.0,
                format="%.4g",
                key=f"model_cv_{name}_{v}",
            )
        allometric = st.checkbox(
            "Allometric weight scaling: clearances × (weight_kg / 70)^0.75, volumes × "
            "(weight_kg / 70)",
            value=cf.allometric,
            help="Clearances (CL, Q, Vmax) with exponent 0.75 and volumes with exponent 1, "
            "around 70 kg, on the cohort column weight_kg.",
            key=f"model_allometric_{v}",
        )
        cf = ui_models.CustomStructure(
            compartments=int(n_cmt),
            absorption=absorption,
            elimination=elimination,
            parameters={**cf.parameters, **values},
            cv_pct={**cf.cv_pct, **cvs},
            allometric=allometric,
            rest=cf.rest,
        )
        kept = [k for k in cf.rest if k not in ("name", "description")]
        if kept:
            st.caption(
                "Kept from the protocol's model as they are: " + ", ".join(f"`{k}`" for k in kept)
            )
    new["model"] = ui_models.custom_model(cf)
elif model_pick == ui_models.OTHER_FILE:
    new["model"] = model_now
elif model_pick != ui_models.BUILTIN:
    new["model"] = model_pick
model_msg = ui_models.check_model(new.get("model"))
if model_msg:
    st.error(model_msg)
elif new.get("model") is not None:
    chosen = ui_models.load_design_model(new["model"])
    st.caption(
        f"`{chosen.name}`: {ui_models.structure_text(chosen.pk)}"
        + (f" — {chosen.description}" if chosen.description else "")
    )
    st.caption("  \n".join(ui_models.describe_model(chosen)))

# regimens and arms
st.subheader("Arms")
st.caption(
    "Regimen text: `AMOUNT mg|mg/kg ROUTE [over D h] qNh|qd|bid|once [xN] [then …]`, e.g. "
    "`100 mg PO q12h x56`, `10 mg/kg IV over 1 h q24h x7`, "
    "`200 mg PO once then 100 mg PO q12h x13`."
)
cross = st.toggle(
    "Every compound with every named regimen",
    value=d.get("arms") is None and bool(d.get("regimens")),
    key=f"cross_{v}",
)
reg_rows = common.editor_base(
    f"regimens_{v}",
    lambda: pd.DataFrame(d.get("regimens") or [], columns=["name", "text"]).astype(object),
)
regs = st.data_editor(
    reg_rows,
    num_rows="dynamic",
    hide_index=True,
    width="stretch",
    column_config={
        "name": st.column_config.TextColumn("Regimen name"),
        "text": st.column_config.TextColumn("Regimen", width="large"),
    },
    key=f"regimens_{v}",
)
regimens = [
    {"name": str(r["name"]).strip(), "text": str(r["text"]).strip()}
    for r in regs.to_dict("records")
    if str(r.get("name") or "").strip() or str(r.get("text") or "").strip()
]
if regimens:
    new["regimens"] = regimens
if not cross:
    arm_df = common.editor_base(
        f"arms_{v}",
        lambda: pd.DataFrame(ui.arm_rows(d), columns=["compound", "regimen", "name"]).astype(
            object
        ),
    )
    arms = st.data_editor(
        arm_df,
        num_rows="dynamic",
        hide_index=True,
        width="stretch",
        column_config={
            "compound": st.column_config.SelectboxColumn(
                "Compound", options=ids or None, required=True
            )
            if ids
            else st.column_config.TextColumn("Compound"),
            "regimen": st.column_config.TextColumn(
                "Regimen (text or a regimen name)", width="large"
            ),
            "name": st.column_config.TextColumn("Arm name (optional)"),
        },
        key=f"arms_{v}",
    )
    new["arms"] = ui.arms_from_rows(arms.to_dict("records"))
    with st.container(border=True):
        st.markdown("**Add an arm**")
        a1, a2, a3 = st.columns([1, 2, 1], vertical_alignment="bottom")
        add_comp = a1.selectbox("Compound", ids or [""], key=f"add_compound_{v}")
        add_reg = a2.text_input("Regimen", value="100 mg PO q12h x14", key=f"add_regimen_{v}")
        add_msg = ui.check_regimen(add_reg) if add_reg not in {r["name"] for r in regimens} else ""
        add_clicked = a3.button("Add arm", key=f"add_arm_{v}", disabled=bool(add_msg) or not ids)
        if add_msg:
            st.error(add_msg)
        elif add_reg in {r["name"] for r in regimens}:
            st.caption(f"named regimen {add_reg!r}")
        else:
            st.caption("✓ " + ui.describe_regimen(add_reg))
c1, c2, c3 = st.columns(3)
new["placebo"] = c1.checkbox("Placebo arm", value=bool(d.get("placebo", False)), key=f"placebo_{v}")
dur = c2.number_input(
    "Duration (h; 0 = end of the longest regimen)",
    min_value=0.0,
    value=float(d.get("duration_h") or 0.0),
    step=24.0,
    key=f"duration_{v}",
)
if dur > 0:
    new["duration_h"] = float(dur)
design_type = c3.radio(
    "Design",
    ["paired", "parallel"],
    index=0 if (d.get("design") or {}).get("type", "paired") == "paired" else 1,
    horizontal=True,
    help="paired: every virtual patient receives every arm (its own control); parallel: "
    "randomized groups (ratios in the YAML section, equal by default).",
    key=f"dtype_{v}",
)
des: dict = {"type": design_type}
old_des = d.get("design") or {}
design_fields = ui.design_fields()
opt = ui.spec_fields()
if {"dropout", "adherence"} & design_fields or {"replicates", "uncertainty", "dose_scan"} & opt:
    st.subheader("Conduct, replicates and dose scan")
    c1, c2, c3 = st.columns(3)
    if "dropout" in design_fields:
        drop = old_des.get("dropout") or {}
        hz = c1.number_input(
            "Dropout hazard (per day; 0 = none)",
            min_value=0.0,
            max_value=10.0,
            value=float(drop.get("hazard_per_day", 0.0)),
            step=0.005,
            format="%.4f",
            key=f"dropout_{v}",
        )
        if hz > 0:
            des["dropout"] = {**drop, "hazard_per_day": float(hz)}
    if "adherence" in design_fields:
        adh = old_des.get("adherence") or {}
        pm = c2.number_input(
            "P(missed dose) (0 = perfect adherence)",
            min_value=0.0,
            max_value=0.99,
            value=float(adh.get("p_miss_dose", 0.0)),
            step=0.05,
            key=f"adherence_{v}",
        )
        if pm > 0:
            des["adherence"] = {**adh, "p_miss_dose": float(pm)}
    if "replicates" in opt:
        nt = c3.number_input(
            "Replicate trials (0 = one trial)",
            min_value=0,
            max_value=100_000,
            value=int((d.get("replicates") or {}).get("n_trials", 0)),
            key=f"replicates_{v}",
        )
        if nt > 0:
            new["replicates"] = {**(d.get("replicates") or {}), "n_trials": int(nt)}
    c1, c2 = st.columns([2, 1])
    if "dose_scan" in opt:
        doses_text = c1.text_input(
            "Dose scan: first doses in mg (empty = none), e.g. 10, 30, 100, 300",
            value=", ".join(f"{x:g}" for x in (d.get("dose_scan") or {}).get("doses_mg", [])),
            key=f"dose_scan_{v}",
        )
        try:
            doses = ui.parse_doses(doses_text)
        except InsilicoError as exc:
            st.error(str(exc).splitlines()[0])
            doses = []
        if doses:
            new["dose_scan"] = {**(d.get("dose_scan") or {}), "doses_mg": doses}
    if "uncertainty" in opt:
        nd = c2.number_input(
            "Compound-uncertainty draws (0 = none)",
            min_value=0,
            max_value=10_000,
            value=int((d.get("uncertainty") or {}).get("compound_draws", 0)),
            key=f"uncertainty_{v}",
        )
        if nd > 0:
            new["uncertainty"] = {**(d.get("uncertainty") or {}), "compound_draws": int(nd)}
new["design"] = des

if "endpoints" in opt:
    st.subheader("Efficacy endpoints")
    st.caption(
        "On the biomarker (its model is in the YAML section below): `change` from baseline at "
        "a time (% or absolute), `responder` (change at least the threshold; negative = a "
        "decrease; optionally sustained from a time), `time_to_response`; and "
        "`target_attainment` on total plasma concentration over the last dosing interval "
        "(metric trough, time_above, auc or cavg). Blank cells take the defaults."
    )
    ep_base = common.editor_base(
        f"endpoints_{v}",
        lambda: pd.DataFrame(ui.endpoint_rows(d), columns=list(ui.ENDPOINT_COLUMNS)).astype(
            {c: object for c in ("name", "kind", "scale", "metric")}
            | {
                c: float
                for c in ui.ENDPOINT_COLUMNS
                if c not in ("name", "kind", "scale", "metric")
            }
        ),
    )
    eps = st.data_editor(
        ep_base,
        num_rows="dynamic",
        hide_index=True,
        width="stretch",
        column_config={
            "name": st.column_config.TextColumn("Endpoint (letters, digits, _)"),
            "kind": st.column_config.SelectboxColumn("Kind", options=list(ui.ENDPOINT_KINDS)),
            "time_h": st.column_config.NumberColumn("At time (h)", min_value=0.0),
            "scale": st.column_config.SelectboxColumn(
                "Change in", options=list(ui.ENDPOINT_SCALES)
            ),
            "threshold": st.column_config.NumberColumn("Threshold (% or unit)", format="%.3g"),
            "sustained_from_h": st.column_config.NumberColumn("Sustained from (h)"),
            "metric": st.column_config.SelectboxColumn(
                "PTA metric", options=list(ui.ENDPOINT_METRICS)
            ),
            "target_mg_per_L": st.column_config.NumberColumn(
                "Target (mg/L)", min_value=0.0, format="%.3g"
            ),
            "min_fraction": st.column_config.NumberColumn(
                "Min fraction above", min_value=0.0, max_value=1.0
            ),
            "min_ratio": st.column_config.NumberColumn("Min AUC/target (h)", min_value=0.0),
        },
        key=f"endpoints_{v}",
    )
    ep_list = ui.endpoints_from_rows(eps.to_dict("records"))
    if ep_list or d.get("endpoints"):
        new["endpoints"] = ep_list
    if "primary" in opt:
        choices = ui.primary_options({**new, "responder": d.get("responder")})
        first = "(the first yes/no endpoint)"
        current_primary = d.get("primary")
        options_p = [first, *choices]
        primary = st.selectbox(
            "Primary endpoint (P(response without serious AE), success, dose selection)",
            options_p,
            index=options_p.index(current_primary) if current_primary in options_p else 0,
            key=f"primary_{v}",
        )
        if primary != first:
            new["primary"] = primary

st.subheader("Adverse events and safety models")
st.caption(
    "Each adverse event: `logit P = intercept + slope × driver` per patient (drivers: exposure, "
    "unbound exposure over potency or over hERG IC50); mark those that count as serious."
)
if "safety" in opt:
    old_safety = d.get("safety") or {}
    c1, c2 = st.columns(2)
    qt = c1.checkbox(
        "QT model (hERG block → mean ΔΔQTc; ICH E14 QTc > 450/480/500 ms, ΔQTc > 30/60 ms)",
        value=bool(old_safety.get("qt", False)),
        key=f"safety_qt_{v}",
    )
    liver = c2.checkbox(
        "Liver model (DILI: daily dose, logP, structural alerts)",
        value=bool(old_safety.get("liver", False)),
        key=f"safety_liver_{v}",
    )
    new["safety"] = {"qt": qt, "liver": liver}
from insilico.trial.spec import AE_DRIVERS  # noqa: E402

ae_base = common.editor_base(
    f"adverse_events_{v}",
    lambda: pd.DataFrame(ui.adverse_event_rows(d), columns=list(ui.AE_COLUMNS)).astype(
        {"name": object, "driver": object, "intercept": float, "slope": float, "serious": bool}
    ),
)
aes = st.data_editor(
    ae_base,
    num_rows="dynamic",
    hide_index=True,
    width="stretch",
    column_config={
        "name": st.column_config.TextColumn("Event (letters, digits, _)"),
        "driver": st.column_config.SelectboxColumn("Driver", options=list(AE_DRIVERS)),
        "intercept": st.column_config.NumberColumn("Intercept (logit)", format="%.3g"),
        "slope": st.column_config.NumberColumn(
            "Slope (per driver unit)", min_value=0.0, format="%.3g"
        ),
        "serious": st.column_config.CheckboxColumn("Serious"),
    },
    key=f"adverse_events_{v}",
)
ae_list = ui.adverse_events_from_rows(aes.to_dict("records"))
if ae_list or d.get("adverse_events"):
    new["adverse_events"] = ae_list

for problem in ui.regimen_problems(new):
    st.error(problem)

with st.expander("Check a regimen"):
    txt = st.text_input("Regimen", value="100 mg PO q12h x56", key="regimen_check")
    msg = ui.check_regimen(txt)
    if msg:
        st.error(msg)
    else:
        st.success(ui.describe_regimen(txt))

st.subheader("Biomarker, variability and everything else (YAML)")
st.caption(
    "Variability (`iiv`), the biomarker model (PD, baseline, placebo drift, assessments), a "
    "legacy `responder:` section, the output grid and any other protocol section, exactly as "
    "in a `workflows/` file."
)
adv_text = st.text_area("Advanced", value=ui.advanced_yaml(d), height=320, key=f"advanced_{v}")
try:
    new = ui.with_advanced(new, adv_text)
except InsilicoError as exc:
    st.error(str(exc).splitlines()[0])
    new.update(ui.advanced_part(d))


def _set_pd(kind_key: str, eff_key: str) -> None:
    """Selector changed: the biomarker's PD model (and its parameters) in the design."""
    changed, filled = ui.with_pd(
        common.design(),
        kind=st.session_state.get(kind_key),
        effect_compartment=st.session_state.get(eff_key),
    )
    st.session_state["pd_filled"] = filled
    common.set_design(changed, reset_widgets=True)


pd_now = (new.get("biomarker") or {}).get("pd") if isinstance(new.get("biomarker"), dict) else None
if isinstance(pd_now, dict):
    has_model = new.get("model") is not None
    kind_now = str(pd_now.get("kind", ""))
    eff_now = bool(pd_now.get("effect_compartment", False))
    kind_key, eff_key = f"pd_kind_{v}", f"pd_effect_{v}"
    # the selectors follow the YAML when it is edited there
    if st.session_state.get(kind_key) != kind_now:
        st.session_state[kind_key] = kind_now
    if st.session_state.get(eff_key) != eff_now:
        st.session_state[eff_key] = eff_now
    c1, c2 = st.columns([2, 1], vertical_alignment="bottom")
    kinds = ui.pd_kind_options(kind_now)
    c1.selectbox(
        "Biomarker PD model (biomarker.pd.kind)",
        kinds,
        format_func=lambda k: ui.pd_kind_label(k, has_model),
        help="Any model of the PD registry. Changing it keeps the parameters the new model "
        "shares and sets the others to starting values in the YAML above; models other than "
        "the built-in direct and indirect-response ones need a PK model.",
        on_change=_set_pd,
        args=(kind_key, eff_key),
        key=kind_key,
    )
    eff_ok, eff_help = ui.effect_compartment_help(kind_now, has_model)
    c2.checkbox(
        "Effect compartment (ke0_per_h)",
        disabled=not eff_ok and not eff_now,
        help=eff_help,
        on_change=_set_pd,
        args=(kind_key, eff_key),
        key=eff_key,
    )
    filled = st.session_state.pop("pd_filled", None)
    if filled:
        st.info(
            "Starting values (edit them in the YAML above): "
            + ", ".join(f"`{k}: {pd_now['params'][k]:g}`" for k in filled if k in pd_now["params"])
        )
    if pd_now.get("c50_from") == "potency":
        st.caption("The C50 of each compound is its potency (c50_from: potency).")
    if (new.get("biomarker") or {}).get("by_compound"):
        st.caption("Per-compound PD models (biomarker.by_compound) are edited in the YAML.")
elif "biomarker" not in new:
    st.caption("No biomarker: add a `biomarker:` section above to choose its PD model.")

common.set_design(new)
if not cross and add_clicked:  # after the whole design is read from the widgets
    new = dict(new, arms=[*new["arms"], {"compound": add_comp, "regimen": add_reg}])
    common.set_design(new, reset_widgets=True)
    st.rerun()

st.subheader("Check and export")
try:
    spec = ui.validate_design(new)
except InsilicoError as exc:
    err = exc
    field = getattr(err, "field", None)
    if field:
        st.error(
            f"**{field}**: got `{getattr(err, 'value', '')!r}` — "
            f"allowed: {getattr(err, 'allowed', '')}"
        )
    else:
        st.error(str(err).splitlines()[0])
    spec = None
if spec is not None:
    s = ui.design_summary(spec)
    st.success(
        f"Valid protocol `{s['name']}`: {s['n_arms']} arm(s) × {s['n_patients']:,} patients, "
        f"{s['design']} design (spec {s['spec_sha256'][:12]})."
    )
st.download_button(
    "Download as workflows/ YAML",
    data=ui.design_to_yaml(new),
    file_name=f"{new.get('name') or 'trial'}.yaml",
    mime="application/x-yaml",
    disabled=spec is None,
    key="export_yaml",
)
with st.expander("Preview the YAML"):
    st.code(ui.design_to_yaml(new), language="yaml")
