"""TrialSpec: every shipped workflow loads; bad protocols fail with field, value and allowed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from insilico.errors import CompoundError, SpecError
from insilico.io.compounds import resolve_compounds
from insilico.trial.context import build_context
from insilico.trial.examples import small_trial
from insilico.trial.spec import TrialSpec, load_trial_spec, trial_spec_from_dict

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", sorted((ROOT / "workflows").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_workflow_loads(path):
    spec = load_trial_spec(path)
    assert isinstance(spec, TrialSpec)
    assert Path(spec.cohort).is_file()


def test_quickstart_has_required_shape():
    spec = load_trial_spec(ROOT / "workflows" / "quickstart.yaml")
    assert spec.n_patients == 1000
    compounds = {c.id: c for c in spec.compounds}
    measured = [c for c in compounds.values() if c.cl_mL_min_kg is not None]
    new = [c for c in compounds.values() if c.cl_mL_min_kg is None and c.cl_L_per_h is None]
    assert 3 <= len(measured) <= 4 and len(new) == 1
    assert all(c.source for c in measured)
    per_compound = {}
    for arm in spec.arms:
        per_compound.setdefault(arm.compound, set()).add(arm.regimen)
    assert all(len(r) >= 2 for r in per_compound.values())


def _write(tmp_path, data, name="t.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data))
    return p


def test_yaml_round_trip_and_hash_stable(tmp_path):
    spec = trial_spec_from_dict(small_trial())
    again = trial_spec_from_dict(spec.model_dump(mode="json"))
    assert again == spec and again.sha256() == spec.sha256()
    changed = spec.model_copy(update={"seed": spec.seed + 1})
    assert changed.sha256() != spec.sha256()


@pytest.mark.parametrize(
    "mutate, field, value_part",
    [
        (lambda d: d.update(unknown_key=1), "unknown_key", "1"),
        (lambda d: d.update(n_patients="many"), "n_patients", "many"),
        (
            lambda d: d["regimens"].__setitem__(0, {"name": "x", "text": "-50 mg PO qd x2"}),
            "regimens[0].text",
            "-50",
        ),
        (lambda d: d.update(compounds=[]), "compounds", "[]"),
        (lambda d: d["iiv"].update(cv={"cl_L_per_h": -0.3}), "iiv.cv.cl_L_per_h", "-0.3"),
        (lambda d: d.update(seed=-1), "seed", "-1"),
        (
            lambda d: d["biomarker"]["pd"]["params"].update(foo=2.5),
            "biomarker.pd.params.foo",
            "2.5",
        ),
        (
            lambda d: d["iiv"].update(correlation=[["cl_L_per_h", "v1_L", 1.5]]),
            "iiv.correlation",
            "1.5",
        ),
    ],
    ids=[
        "unknown-key",
        "wrong-type",
        "negative-dose",
        "empty-compounds",
        "negative-cv",
        "negative-seed",
        "unknown-pd-parameter",
        "bad-correlation",
    ],
)
def test_bad_specs_name_file_field_and_value(tmp_path, mutate, field, value_part):
    data = small_trial()
    mutate(data)
    path = _write(tmp_path, data)
    with pytest.raises(SpecError) as err:
        load_trial_spec(path)
    msg = str(err.value)
    assert str(path) in msg
    assert err.value.field.startswith(field), msg
    assert value_part in msg
    assert "allowed" in msg and "Value error" not in msg


def test_missing_files(tmp_path):
    with pytest.raises(SpecError, match="existing YAML file"):
        load_trial_spec(tmp_path / "nope.yaml")
    data = small_trial()
    data["compounds"] = {"path": "missing.csv"}
    spec = load_trial_spec(_write(tmp_path, data))
    with pytest.raises(SpecError, match="compounds"):
        resolve_compounds(spec.compounds)
    data = small_trial(cohort="no_such_cohort.yaml")
    spec = load_trial_spec(_write(tmp_path, data))
    profiles, failed, _ = resolve_compounds(spec.compounds)
    with pytest.raises(SpecError, match="no_such_cohort"):
        build_context(spec, profiles, failed)


def test_wrong_kind_and_arm_reference(tmp_path):
    data = small_trial()
    data["kind"] = "cohort"
    with pytest.raises(SpecError, match="kind"):
        load_trial_spec(_write(tmp_path, data))
    data = small_trial()
    data["arms"] = [{"compound": "nobody", "regimen": "low"}]
    with pytest.raises(SpecError) as err:
        load_trial_spec(_write(tmp_path, data))
    assert "nobody" in str(err.value)


def test_invalid_smiles_fails_that_compound_only():
    data = small_trial()
    data["compounds"].append(
        {"id": "broken", "smiles": "C1CC(", "cl_L_per_h": 5.0, "v_L": 50.0, "potency_nM": 10}
    )
    spec = trial_spec_from_dict(data)
    profiles, failed, _ = resolve_compounds(spec.compounds)
    assert [p.id for p in profiles] == ["atenolol", "propranolol"]
    assert failed["id"].tolist() == ["broken"]
    assert "SMILES" in failed["error"].iloc[0]
    ctx, failed2 = build_context(spec, profiles, failed)
    assert {a.compound_id for a in ctx.arms} == {"atenolol", "propranolol", "placebo"}
    assert failed2["id"].tolist() == ["broken"]


def test_all_compounds_failed_is_an_error():
    data = small_trial(compounds=[{"id": "broken", "smiles": "xyz", "potency_nM": 10}])
    spec = trial_spec_from_dict(data)
    profiles, failed, _ = resolve_compounds(spec.compounds)
    with pytest.raises(CompoundError, match="no usable compound"):
        build_context(spec, profiles, failed)


def test_potency_needed_by_biomarker():
    comp = {k: v for k, v in small_trial()["compounds"][0].items() if k != "potency_nM"}
    data = small_trial(compounds=[comp, small_trial()["compounds"][1]])
    spec = trial_spec_from_dict(data)
    profiles, failed, _ = resolve_compounds(spec.compounds)
    ctx, failed = build_context(spec, profiles, failed)
    assert failed["id"].tolist() == ["atenolol"]
    assert "potency" in failed["error"].iloc[0]


def test_context_typical_values_from_measured_pk():
    spec = trial_spec_from_dict(small_trial())
    profiles, failed, _ = resolve_compounds(spec.compounds)
    ctx, _ = build_context(spec, profiles, failed)
    aten = ctx.arms[0]
    # Lombardo 2018: CL 2.5 mL/min/kg and Vss 0.95 L/kg for a 70 kg adult
    assert aten.typical["cl_L_per_h"] == pytest.approx(2.5 * 70 * 60 / 1000)
    assert aten.typical["v1_L"] == pytest.approx(0.95 * 70)
    # potency 700 nM with the RDKit MW of atenolol (266.34 g/mol) -> mg/L
    assert aten.typical["ec50_mg_per_L"] == pytest.approx(700e-9 * 266.341 * 1000, rel=1e-4)
    assert ctx.arms[-1].is_placebo
    assert ctx.output_times_h[0] == 0 and ctx.output_times_h[-1] == 48


def test_inline_cohort_and_sdf_compounds(tmp_path):
    """A cohort given inline and compounds from an SDF file (data items as measured values)."""
    from rdkit import Chem

    from insilico.engine.run import run_trial

    mol = Chem.MolFromSmiles("CC(C)NCC(O)COc1ccc(CC(N)=O)cc1")
    mol.SetProp("_Name", "atenolol")
    for key, value in (
        ("id", "atenolol"),
        ("cl_mL_min_kg", "2.5"),
        ("vdss_L_per_kg", "0.95"),
        ("fu", "0.94"),
        ("f_bio", "0.58"),
        ("ka_per_h", "0.8"),
        ("potency_nM", "700"),
    ):
        mol.SetProp(key, value)
    sdf = tmp_path / "c.sdf"
    with Chem.SDWriter(str(sdf)) as w:
        w.write(mol)
    data = small_trial(
        n_patients=200, cohort={"name": "young", "age_years": {"min": 20, "max": 30}}
    )
    data["compounds"] = {"path": str(sdf)}
    result = run_trial(trial_spec_from_dict(data), executor="serial")
    p = result.patients
    assert p["age_years"].between(20, 30).all()
    assert set(p["compound_id"]) == {"atenolol", "placebo"}
    assert result.context.arms[0].typical["cl_L_per_h"] == pytest.approx(2.5 * 70 * 60 / 1000)


def test_yaml_text_round_trip(tmp_path):
    spec = load_trial_spec(ROOT / "workflows" / "quickstart.yaml")
    path = tmp_path / "again.yaml"
    path.write_text(yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False))
    again = load_trial_spec(path)
    assert again == spec and again.sha256() == spec.sha256()


def test_out_of_domain_compound_is_warned_in_the_context_and_the_manifest():
    """A siloxane has no near neighbour among the PK model's training structures: its
    predicted PK runs, with a warning the terminal and the run directory carry."""
    from insilico.engine.run import prepare_trial, run_trial
    from insilico.trial.examples import small_trial

    siloxane = {"id": "siloxane", "smiles": "C[Si](C)(C)O[Si](C)(C)O[Si](C)(C)C", "potency_nM": 100}
    data = small_trial(n_patients=4, compounds=[siloxane], placebo=False)
    _, ctx, _, _ = prepare_trial(trial_spec_from_dict(data))
    assert [w["id"] for w in ctx.compound_warnings] == ["siloxane"]
    assert "applicability domain" in ctx.compound_warnings[0]["warning"]
    result = run_trial(trial_spec_from_dict(data), executor="serial")
    assert result.manifest["compound_warnings"][0]["id"] == "siloxane"
    measured = dict(siloxane, cl_L_per_h=5.0, v_L=50.0, fu=0.5, ka_per_h=1.0, f_bio=0.5)
    _, ctx, _, _ = prepare_trial(
        trial_spec_from_dict(small_trial(n_patients=4, compounds=[measured]))
    )
    assert ctx.compound_warnings == ()
