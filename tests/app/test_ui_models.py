"""insilico.ui.models: the PK model choices of the design page (shipped files, a custom
structure), the inline model they write, and the checks that a protocol's model fits it."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from insilico.errors import SpecError
from insilico.model import load_model, model_from_dict
from insilico.trial.spec import trial_spec_from_dict
from insilico.ui import design as ui_design
from insilico.ui import models as ui_models
from insilico.ui.cohorts import WORKFLOWS_DIR


def _design(model=None, **update) -> dict:
    """The quickstart protocol (no IIV in the protocol, so a model's IIV is its own)."""
    d = ui_design.default_design()
    d["iiv"] = {"cv": {}}
    if model is not None:
        d["model"] = model
    d.update(update)
    return d


def _two_compartments(**update) -> ui_models.CustomStructure:
    fields = {
        "compartments": 2,
        "absorption": "first_order",
        "elimination": "linear",
        "parameters": {
            "cl_L_per_h": 12.0,
            "v1_L": 40.0,
            "q2_L_per_h": 8.0,
            "v2_L": 120.0,
            "ka_per_h": 1.2,
        },
        "cv_pct": {"cl_L_per_h": 30.0, "q2_L_per_h": 50.0},
        "allometric": True,
    }
    fields.update(update)
    return ui_models.CustomStructure(**fields)


def test_every_shipped_model_is_listed_with_its_structure():
    shipped = ui_models.shipped_models()
    files = sorted(ui_models.MODELS_DIR.glob("*.yaml"))
    assert [m.path for m in shipped] == files
    by_name = {m.name: m for m in shipped}
    oral = by_name["oral_1cpt_lag_allometric"]
    assert oral.label == (
        "oral_1cpt_lag_allometric — 1 compartment, first_order absorption, linear elimination"
    )
    assert oral.reference == "../models/oral_1cpt_lag_allometric.yaml"
    for m in shipped:
        assert not m.error, m.error
        # the reference is what a design holds; it resolves against workflows/ to the file
        assert (WORKFLOWS_DIR / m.reference).resolve() == m.path.resolve()
        assert ui_models.model_choice(m.reference, shipped) == m.reference
        assert ui_models.model_choice(str(m.path.resolve()), shipped) == m.reference
    assert ui_models.model_choice(None, shipped) == ui_models.BUILTIN
    assert ui_models.model_choice({"kind": "model"}, shipped) == ui_models.CUSTOM
    assert ui_models.model_choice("../elsewhere/m.yaml", shipped) == ui_models.OTHER_FILE


def test_a_shipped_model_in_a_design_validates_and_carries_its_structure():
    ref = "../models/oral_1cpt_lag_allometric.yaml"
    spec = trial_spec_from_dict(_design(ref), base_dir=WORKFLOWS_DIR)
    model = load_model(spec.model)
    assert (model.pk.compartments, model.pk.absorption) == (1, "first_order")
    # exported and read back, the path is the same
    again = ui_design.design_from_yaml(ui_design.design_to_yaml(_design(ref)))
    assert again["model"] == ref
    assert list(again).index("model") == list(again).index("cohort") + 1


def test_custom_two_compartments_with_allometry_and_iiv():
    m = ui_models.custom_model(_two_compartments())
    assert m["pk"] == {"compartments": 2, "absorption": "first_order", "elimination": "linear"}
    assert set(m["parameters"]) == {"cl_L_per_h", "v1_L", "q2_L_per_h", "v2_L", "ka_per_h"}
    for name, exponent in (("cl_L_per_h", 0.75), ("q2_L_per_h", 0.75), ("v1_L", 1.0)):
        assert m["covariates"][name] == {"weight_kg": {"power": exponent, "reference": 70.0}}
    assert "ka_per_h" not in m["covariates"]
    np.testing.assert_allclose(m["iiv"]["cl_L_per_h"], math.log(1 + 0.3**2), rtol=1e-9)
    np.testing.assert_allclose(m["iiv"]["q2_L_per_h"], math.log(1 + 0.5**2), rtol=1e-9)
    model = model_from_dict(copy.deepcopy(m))
    assert model.required_parameters() == tuple(m["parameters"])
    # the design with it validates as `insilico run` and the app's own checks see it
    spec = ui_design.validate_design(_design(m))
    assert spec.model["pk"]["compartments"] == 2
    # the editor reads back what it wrote
    fields = ui_models.custom_fields(m)
    assert ui_models.custom_model(fields) == m
    np.testing.assert_allclose(fields.cv_pct["cl_L_per_h"], 30.0, rtol=1e-9)
    # a structure change keeps the values it shares and starts the others
    three = ui_models.custom_model(_two_compartments(compartments=3))
    assert three["parameters"]["v2_L"] == 120.0
    assert three["parameters"]["v3_L"] == ui_models.STARTING_VALUES["v3_L"]
    one = ui_models.custom_model(_two_compartments(compartments=1))
    assert "q2_L_per_h" not in one["parameters"] and "q2_L_per_h" not in one["iiv"]


@pytest.mark.parametrize(
    ("absorption", "elimination", "extra"),
    [
        ("transit", "linear", {"mtt_h", "n_transit"}),
        ("zero_order", "michaelis_menten", {"d1_h", "vmax_mg_per_h", "km_mg_per_L"}),
        ("none", "linear_and_michaelis_menten", {"vmax_mg_per_h", "km_mg_per_L"}),
    ],
)
def test_every_structure_gets_the_parameters_it_needs(absorption, elimination, extra):
    fields = ui_models.CustomStructure(
        compartments=1, absorption=absorption, elimination=elimination, allometric=False
    )
    m = ui_models.custom_model(fields)
    assert extra <= set(m["parameters"])
    assert "covariates" not in m and "iiv" not in m
    model_from_dict(copy.deepcopy(m))
    for name in fields.needed():
        assert ui_models.parameter_label(name).startswith(name)


def test_a_custom_structure_starts_from_a_model_file():
    """From the shipped allometric model: its structure, values, IIV and residual error; its
    weight effects (column WT) become the allometry checkbox (column weight_kg)."""
    fields = ui_models.custom_fields("../models/oral_1cpt_lag_allometric.yaml")
    assert fields.allometric
    assert fields.parameters["tlag_h"] == 0.5
    np.testing.assert_allclose(fields.cv_pct["ka_per_h"], 100 * math.sqrt(math.expm1(0.5)))
    m = ui_models.custom_model(fields)
    assert m["covariates"]["cl_L_per_h"] == {"weight_kg": {"power": 0.75, "reference": 70.0}}
    np.testing.assert_allclose(m["iiv"]["cl_L_per_h"], 0.1, rtol=1e-9)
    assert m["residual_error"] == {"proportional": 0.15, "additive": 0.5}
    ui_design.validate_design(_design(m))


def test_an_imported_inline_model_keeps_what_the_editor_does_not_show():
    m = ui_models.custom_model(_two_compartments(allometric=False))
    m["residual_error"] = {"proportional": 0.1}
    m["covariates"] = {"cl_L_per_h": {"crcl_mL_per_min": {"power": 0.5, "reference": 100}}}
    m["iiv"]["blocks"] = [
        {"parameters": ["v1_L", "v2_L"], "covariance": [[0.1, 0.05], [0.05, 0.1]]}
    ]
    fields = ui_models.custom_fields(m)
    assert not fields.allometric
    assert set(fields.rest) == {"name", "residual_error", "covariates", "iiv"}
    assert ui_models.custom_model(fields) == m
    ui_design.validate_design(_design(m))


def test_an_invalid_custom_model_says_key_value_and_allowed():
    m = ui_models.custom_model(_two_compartments(parameters={"v1_L": -1.0}))
    msg = ui_models.check_model(m)
    assert "model.parameters.v1_L" in msg and "-1.0" in msg and "> 0" in msg
    with pytest.raises(SpecError) as err:
        ui_design.validate_design(_design(m))
    assert err.value.field == "model.parameters.v1_L"
    assert ui_models.check_model(None) == ""
    assert "an existing YAML file" in ui_models.check_model("../models/nope.yaml")


def test_a_model_that_does_not_fit_the_protocol_is_refused_before_running():
    base = ui_models.custom_model(_two_compartments(cv_pct={}))
    # a covariate the cohort does not have (WT would stand for weight_kg)
    crea = copy.deepcopy(base)
    crea["covariates"]["cl_L_per_h"] = {"CREA": {"power": 0.75, "reference": 70}}
    with pytest.raises(SpecError) as err:
        ui_design.validate_design(_design(crea))
    assert err.value.field == "model.covariates.cl_L_per_h.CREA"
    assert "weight_kg" in err.value.allowed
    wt = copy.deepcopy(base)
    wt["covariates"]["cl_L_per_h"] = {"WT": {"power": 0.75, "reference": 70}}
    ui_design.validate_design(_design(wt))
    # oral doses and no absorption
    iv_only = ui_models.custom_model(_two_compartments(absorption="none", cv_pct={}, parameters={}))
    with pytest.raises(SpecError) as err:
        ui_design.validate_design(_design(iv_only))
    assert err.value.field == "model.pk.absorption" and "PO" in err.value.allowed
    # IIV in the model and in the protocol on the same parameter
    both = ui_models.custom_model(_two_compartments())
    with pytest.raises(SpecError, match=r"iiv\.cv\.cl_L_per_h"):
        ui_design.validate_design(_design(both, iiv={"cv": {"cl_L_per_h": 0.3}}))
    # a dose parameter read from a data column
    col = dict(copy.deepcopy(base), dosing={"depot": {"tlag_h": "LAGT"}})
    with pytest.raises(SpecError) as err:
        ui_design.validate_design(_design(col))
    assert err.value.field == "model.dosing.depot.tlag_h"


def test_changing_the_pd_kind_adapts_its_parameters():
    d = _design(iiv={"cv": {"cl_L_per_h": 0.3, "ec50_mg_per_L": 0.4}})
    before = copy.deepcopy(d)
    irm, filled = ui_design.with_pd(d, kind="irm1")
    assert d == before  # the input is not changed
    pd = irm["biomarker"]["pd"]
    assert pd["kind"] == "irm1" and pd["c50_from"] == "potency"
    # the baseline carries over: kin / kout = e0 (150 bpm)
    np.testing.assert_allclose(pd["params"]["kin_per_h"] / pd["params"]["kout_per_h"], 150.0)
    assert set(filled) == {"kout_per_h", "imax"}
    assert irm["iiv"]["cv"] == {"cl_L_per_h": 0.3, "ic50_mg_per_L": 0.4}
    with_ke0, filled = ui_design.with_pd(irm, effect_compartment=True)
    assert with_ke0["biomarker"]["pd"]["effect_compartment"] is True
    assert filled == ["ke0_per_h"]
    # valid with a model, refused without one
    model = ui_models.custom_model(_two_compartments(cv_pct={}))
    ui_design.validate_design(dict(with_ke0, model=model))
    with pytest.raises(SpecError, match="effect_compartment"):
        ui_design.validate_design(with_ke0)
    off, _ = ui_design.with_pd(with_ke0, effect_compartment=False)
    assert "ke0_per_h" not in off["biomarker"]["pd"]["params"]
    assert "effect_compartment" not in off["biomarker"]["pd"]
    ui_design.validate_design(off)
    # back to a direct model: e0 from the baseline; a kind without C50 takes no potency
    back, _ = ui_design.with_pd(irm, kind="emax")
    assert back["biomarker"]["pd"]["params"]["e0"] == pytest.approx(150.0)
    ui_design.validate_design(back)
    lin, filled = ui_design.with_pd(irm, kind="linear")
    assert lin["biomarker"]["pd"]["c50_from"] == "params" and filled == ["slope_L_per_mg"]
    assert "ic50_mg_per_L" not in lin["iiv"]["cv"]
    ui_design.validate_design(lin)


def test_every_registry_pd_model_is_offered():
    from insilico.pd.registry import pd_model_names

    assert set(pd_model_names()) <= set(ui_design.pd_kind_options())
    assert ui_design.pd_kind_options("mine")[-1] == "mine"
    assert "needs a PK model" not in ui_design.pd_kind_label("irm1", has_model=False)
    ok, why = ui_design.effect_compartment_help("irm2", has_model=False)
    assert not ok and "PK model" in why
    assert ui_design.effect_compartment_help("irm2", has_model=True)[0]
    assert ui_design.effect_compartment_help("emax", has_model=False)[0]


def test_a_potency_for_a_pd_model_without_c50_is_refused():
    d = _design()
    d["biomarker"]["pd"] = {"kind": "linear", "params": {"e0": 100, "slope_L_per_mg": -5}}
    ui_design.validate_design(d)
    d["biomarker"]["pd"]["c50_from"] = "potency"
    with pytest.raises(SpecError) as err:
        ui_design.validate_design(d)
    assert err.value.field == "biomarker.pd.c50_from"


@pytest.mark.slow  # compiles the model kernels in a fresh process
def test_a_custom_model_from_the_app_runs(tmp_path):
    from insilico.engine.run import run_trial
    from insilico.trial.examples import PROPRANOLOL, small_trial

    data = small_trial(
        n_patients=6,
        compounds=[copy.deepcopy(PROPRANOLOL)],
        duration_h=24.0,
        regimens=[{"name": "r", "text": "80 mg PO q12h x2"}],
        placebo=False,
    )
    data["iiv"] = {"cv": {}}
    data["model"] = ui_models.custom_model(_two_compartments(cv_pct={}))
    spec = ui_design.validate_design(data)
    p = run_trial(spec, executor="serial").patients
    assert len(p) == 6
    # allometry: clearance / weight^0.75 is the same for every twin (no IIV)
    per_kg = p["cl_L_per_h"] / p["weight_kg"] ** 0.75
    np.testing.assert_allclose(per_kg, per_kg.iloc[0], rtol=1e-12)
    assert p["weight_kg"].std() > 0
