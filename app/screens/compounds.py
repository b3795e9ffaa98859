"""Compounds: upload CSV/SDF or paste SMILES; structures, descriptors, PK with intervals and
sources, applicability warnings; invalid rows with their reason; measured values edited inline."""

from __future__ import annotations

import common
import streamlit as st

from insilico.errors import InsilicoError
from insilico.ui import compounds as ui

st.title("Compounds")
st.caption(
    "CSV with a `smiles` column (and `id`, `name`, measured columns such as `potency_nM`, `fu`, "
    "`herg_ic50_uM`, `cl_mL_min_kg`, `vdss_L_per_kg`, …) or an SDF file; at most "
    f"{ui.MAX_UPLOAD_BYTES // 2**20} MB and {ui.MAX_COMPOUNDS} compounds. Missing PK is predicted "
    "from the structure."
)

mode = st.radio(
    "New compounds", ["replace the current ones", "add to the current ones"], horizontal=True
)
tab_file, tab_smiles = st.tabs(["Upload CSV / SDF", "Paste SMILES"])
new = None
with tab_file:
    upload = st.file_uploader("Compound file", type=["csv", "sdf", "sd"], key="compound_file")
    if upload is not None and st.session_state.get("_compound_file_id") != upload.file_id:
        try:
            new = ui.read_upload(upload.getvalue(), upload.name)
            st.session_state["_compound_file_id"] = upload.file_id
        except InsilicoError as exc:
            st.error(str(exc).splitlines()[0])
with tab_smiles:
    text = st.text_area(
        "One compound per line: SMILES, then optionally an id and a name",
        placeholder="CC(C)NCC(O)COc1ccc(CC(N)=O)cc1 atenolol Atenolol",
        key="smiles_text",
    )
    if st.button("Add these structures", key="add_smiles") and text.strip():
        try:
            new = ui.parse_smiles_text(text)
        except InsilicoError as exc:
            st.error(str(exc).splitlines()[0])

if new is not None:
    raw = new if mode.startswith("replace") else ui.merge_raw(common.compounds_raw(), new)
    common.set_compounds_raw(raw)

raw = common.compounds_raw()
if len(raw) == 0:
    st.info("No compounds yet: upload a file or paste SMILES.")
    st.stop()

cset = common.assemble(raw)
table = cset.table
n_bad = int((~table["valid"]).sum())
st.markdown(
    f"**{cset.n_valid} usable compound(s)**" + (f", {n_bad} with a problem" if n_bad else "")
)

bad = table[~table["valid"]]
if len(bad):
    st.error("These rows cannot be used (the others can):")
    st.dataframe(
        bad[["id", "name", "smiles", "problem"]].rename(
            columns={"id": "Id", "name": "Name", "smiles": "SMILES", "problem": "Reason"}
        ),
        hide_index=True,
        width="stretch",
        key="bad_compounds",
    )

good = table[table["valid"]]
pk_cols = [c for c in good.columns if c.endswith("(90 % interval)") or c.endswith(" source")]
desc_cols = list(ui.DESCRIPTORS.values())
show = good[["structure", "id", "name", *desc_cols, *pk_cols, "warnings"]]
st.subheader("Structures, descriptors and PK")
st.caption(
    "PK values for a 70 kg adult as `value (90 % interval)`; the source column says whether each "
    "value was measured, published for a known drug (literature), scaled from in-vitro data or "
    "predicted from the structure. These are 90 % intervals of what the compound's parameter may "
    "be (the usual level for PK predictions, as the 2-fold/3-fold accuracy bands are); trial "
    "outcomes are shown with 95 % confidence intervals."
)
st.dataframe(
    show,
    hide_index=True,
    width="stretch",
    row_height=90,
    column_config={
        "structure": st.column_config.ImageColumn("Structure", width="medium"),
        "id": st.column_config.TextColumn("Id", pinned=True),
        "name": "Name",
        "warnings": st.column_config.TextColumn("Warnings", width="large"),
    },
    key="good_compounds",
)
warned = good[good["warnings"] != ""]
for _, r in warned.iterrows():
    if "applicability" in r["warnings"]:
        st.warning(f"{r['id']}: {r['warnings']}")

st.subheader("Measured values")
st.caption("Edit potency, fraction unbound and hERG IC50; the table above is recomputed.")
edit_cols = ["id", *ui.EDITABLE.values()]
version = st.session_state.get("compounds_version", 0)
base = table[edit_cols].reset_index(drop=True)
edited = st.data_editor(
    base,
    hide_index=True,
    width="stretch",
    disabled=["id"],
    column_config={
        "id": "Id",
        "Potency (nM)": st.column_config.NumberColumn("Potency (nM)", min_value=0.0, format="%.4g"),
        "fu (fraction unbound)": st.column_config.NumberColumn(
            "fu (fraction unbound)", min_value=0.0, max_value=1.0, format="%.3g"
        ),
        "hERG IC50 (µM)": st.column_config.NumberColumn(
            "hERG IC50 (µM)", min_value=0.0, format="%.4g"
        ),
    },
    key=f"measured_editor_{version}",
)
changes = {}
for i in range(len(base)):
    diff = {
        c: edited.at[i, c]
        for c in ui.EDITABLE.values()
        if not (
            (edited.at[i, c] == base.at[i, c]) or (edited.isna().at[i, c] and base.isna().at[i, c])
        )
    }
    if diff:
        changes[i] = diff
if changes:
    common.set_compounds_raw(ui.apply_edits(raw, changes))
    st.rerun()

st.divider()
if st.button("Use these compounds in the trial design", type="primary", disabled=cset.n_valid == 0):
    d = common.deepcopy(common.design())
    d["compounds"] = cset.records
    ids = [r["id"] for r in cset.records]
    arms = [a for a in (d.get("arms") or []) if a.get("compound") in ids]
    default_regimen = arms[0]["regimen"] if arms else "100 mg PO qd x7"
    have = {a["compound"] for a in arms}
    arms += [{"compound": i, "regimen": default_regimen} for i in ids if i not in have]
    if d.get("arms") is not None or not d.get("regimens"):
        d["arms"] = arms
    common.set_design(d, reset_widgets=True)
    st.success(
        f"The design now has {len(ids)} compound(s); check the arms on the Trial design page."
    )
