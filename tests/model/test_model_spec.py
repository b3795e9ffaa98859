"""Model files (``kind: model``): loading, round trips, structure helpers and every refusal.

Each refusal is checked on a file written to disk: the SpecError must name the file and the
key path of the offending value.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from insilico.errors import SpecError
from insilico.model import (
    Model,
    dump_model,
    load_model,
    model_from_dict,
    model_to_dict,
)

MODELS = Path(__file__).resolve().parents[2] / "models"

BASE = {
    "kind": "model",
    "schema_version": 1,
    "name": "base",
    "pk": {"compartments": 1, "absorption": "first_order", "elimination": "linear"},
    "parameters": {"cl_L_per_h": 0.2, "v1_L": 10.0, "ka_per_h": 1.0},
}

RICH = {
    "kind": "model",
    "schema_version": 1,
    "name": "rich",
    "description": "two compartments, transit absorption, mixed elimination",
    "pk": {
        "compartments": 2,
        "absorption": "transit",
        "elimination": "linear_and_michaelis_menten",
    },
    "parameters": {
        "cl_L_per_h": 1.0,
        "vmax_mg_per_h": 5.0,
        "km_mg_per_L": 0.7,
        "v1_L": 20.0,
        "q2_L_per_h": 2.0,
        "v2_L": 40.0,
        "ka_per_h": 1.2,
        "mtt_h": 1.5,
        "n_transit": 3,
        "f_bio": 2.23,
    },
    "dosing": {"central": {"tlag_h": "LAGT", "rate_mg_per_h": 5.0}},
    "covariates": {
        "cl_L_per_h": {
            "WT": {"power": 0.75, "reference": 70},
            "CRCL": {"linear": 0.01, "reference": 100},
        },
        "v1_L": {"SEX": {"categorical": {0: 1.0, 1: 0.8}}},
        "ka_per_h": {"AGE": {"exponential": -0.01, "reference": 40}},
    },
    "iiv": {
        "ka_per_h": 0.3,
        "blocks": [
            {"parameters": ["cl_L_per_h", "v1_L"], "covariance": [[0.1, 0.05], [0.05, 0.2]]}
        ],
    },
    "iov": {"cl_L_per_h": 0.05},
    "residual_error": {"exponential": 0.2},
    "data": {"compartments": {1: "depot", 2: "central", 3: "peripheral1"}, "dv_unit": "ng/mL"},
}


def write(tmp_path: Path, data, name: str = "m.yaml") -> Path:
    path = tmp_path / name
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def refused(tmp_path: Path, data, field: str) -> SpecError:
    """Load ``data`` from a file; the error must name the file and ``field``."""
    path = write(tmp_path, data)
    with pytest.raises(SpecError) as info:
        load_model(path)
    err = info.value
    assert err.source == str(path)
    assert err.field == field, str(err)
    assert str(path) in str(err) and field in str(err)
    return err


_DELETE = object()


def changed(base=BASE, **update):
    data = copy.deepcopy(base)
    for dotted, value in update.items():
        keys = dotted.split("__")
        target = data
        for k in keys[:-1]:
            target = target.setdefault(k, {})
        if value is _DELETE:
            del target[keys[-1]]
        else:
            target[keys[-1]] = value
    return data


# -- the shipped files -------------------------------------------------------------------------


def test_nonmem_advan2_loads():
    m = load_model(MODELS / "nonmem_advan2.yaml")
    assert m.name == "nonmem_advan2"
    assert m.parameters == {"cl_L_per_h": 1.1, "v1_L": 20.0, "ka_per_h": 1.5}
    central = m.dosing["central"]
    assert (central.tlag_h, central.f_bio, central.duration_h) == ("LAGT", "BIOAV", "DUR2")
    assert central.rate_mg_per_h is None
    assert m.compartment_map() == {1: "depot", 2: "central"}
    assert m.default_dosing_compartment() == "depot"
    assert (m.data.amt_unit, m.data.dv_unit) == ("mg", "ug/L")
    assert m.eta_names() == () and m.omega_matrix().shape == (0, 0)


def test_oral_allometric_loads():
    m = load_model(MODELS / "oral_1cpt_lag_allometric.yaml")
    assert m.required_parameters() == ("cl_L_per_h", "v1_L", "ka_per_h")
    assert m.parameters["tlag_h"] == 0.5
    assert m.covariates["cl_L_per_h"]["WT"].power == 0.75
    assert m.covariates["v1_L"]["WT"].reference == 70.0
    assert m.eta_names() == ("cl_L_per_h", "v1_L", "ka_per_h", "tlag_h")
    np.testing.assert_array_equal(m.omega_matrix(), np.diag([0.1, 0.1, 0.5, 0.5]))
    assert m.residual_error.proportional == 0.15 and m.residual_error.additive == 0.5
    assert m.compartment_map() == {1: "depot", 2: "central"}


@pytest.mark.parametrize("path", sorted(MODELS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_model_round_trips(path, tmp_path):
    m = load_model(path)
    assert load_model(dump_model(m, tmp_path / "out.yaml")) == m


# -- round trips -------------------------------------------------------------------------------


def test_rich_model_round_trips(tmp_path):
    m = model_from_dict(RICH)
    assert model_from_dict(model_to_dict(m)) == m
    again = load_model(dump_model(m, tmp_path / "rich.yaml"))
    assert again == m
    assert again.sha256() == m.sha256()
    assert model_to_dict(again)["iiv"]["blocks"][0]["parameters"] == ["cl_L_per_h", "v1_L"]
    assert model_to_dict(again)["covariates"]["v1_L"]["SEX"]["categorical"] == {0: 1.0, 1: 0.8}


@settings(max_examples=40, deadline=None)
@given(
    cl=st.floats(1e-6, 1e6),
    v=st.floats(1e-6, 1e6),
    omega=st.floats(0.0, 4.0),
    prop=st.floats(0.0, 1.0),
)
def test_yaml_round_trip_property(cl, v, omega, prop, tmp_path_factory):
    data = changed(
        parameters={"cl_L_per_h": cl, "v1_L": v, "ka_per_h": 1.0},
        iiv={"cl_L_per_h": omega},
        residual_error={"proportional": prop},
    )
    m = model_from_dict(data)
    path = tmp_path_factory.mktemp("rt") / "m.yaml"
    assert load_model(dump_model(m, path)) == m


def test_model_is_frozen():
    m = model_from_dict(BASE)
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen-instance error
        m.name = "other"


def test_python_object_equals_yaml():
    from insilico.model import PKSpec

    m = Model(
        name="base",
        pk=PKSpec(compartments=1, absorption="first_order", elimination="linear"),
        parameters={"cl_L_per_h": 0.2, "v1_L": 10.0, "ka_per_h": 1.0},
    )
    assert m == model_from_dict(BASE)


# -- structure helpers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pk", "params", "cmap", "dosing"),
    [
        (
            {"compartments": 3, "absorption": "first_order", "elimination": "linear"},
            {"q2_L_per_h": 1, "v2_L": 1, "q3_L_per_h": 1, "v3_L": 1},
            {1: "depot", 2: "central", 3: "peripheral1", 4: "peripheral2"},
            "depot",
        ),
        (
            {"compartments": 2, "absorption": "none", "elimination": "linear"},
            {"q2_L_per_h": 1, "v2_L": 1, "ka_per_h": _DELETE},
            {1: "central", 2: "peripheral1"},
            "central",
        ),
        (
            {"compartments": 1, "absorption": "zero_order", "elimination": "michaelis_menten"},
            {
                "d1_h": 2,
                "ka_per_h": _DELETE,
                "cl_L_per_h": _DELETE,
                "vmax_mg_per_h": 1,
                "km_mg_per_L": 1,
            },
            {1: "central"},
            "central",
        ),
    ],
)
def test_default_compartment_map(pk, params, cmap, dosing):
    data = changed(pk=pk)
    for k, v in params.items():
        if v is _DELETE:
            del data["parameters"][k]
        else:
            data["parameters"][k] = v
    m = model_from_dict(data)
    assert m.compartment_map() == cmap
    assert m.default_dosing_compartment() == dosing


def test_transit_compartment_names():
    m = model_from_dict(RICH)
    assert m.n_transit == 3
    assert m.pk_compartments() == (
        "depot",
        "transit1",
        "transit2",
        "transit3",
        "absorption",
        "central",
        "peripheral1",
    )
    assert m.dosing_compartments() == ("depot", "central", "peripheral1")
    assert m.required_parameters() == (
        "cl_L_per_h",
        "v1_L",
        "q2_L_per_h",
        "v2_L",
        "vmax_mg_per_h",
        "km_mg_per_L",
        "ka_per_h",
        "mtt_h",
        "n_transit",
    )


def test_block_omega_and_iov():
    m = model_from_dict(RICH)
    assert m.eta_names() == ("ka_per_h", "cl_L_per_h", "v1_L")
    np.testing.assert_array_equal(
        m.omega_matrix(), [[0.3, 0.0, 0.0], [0.0, 0.1, 0.05], [0.0, 0.05, 0.2]]
    )
    assert m.iov_names() == ("cl_L_per_h",)
    np.testing.assert_array_equal(m.iov_variances(), [0.05])


def test_with_parameters_is_a_validated_copy():
    m = model_from_dict(BASE)
    m2 = m.with_parameters(cl_L_per_h=0.4, tlag_h=0.25)
    assert m.parameters["cl_L_per_h"] == 0.2 and "tlag_h" not in m.parameters
    assert m2.parameters == {"cl_L_per_h": 0.4, "v1_L": 10.0, "ka_per_h": 1.0, "tlag_h": 0.25}
    with pytest.raises(SpecError, match=r"parameters\.v1_L"):
        m.with_parameters(v1_L=-1.0)
    with pytest.raises(SpecError, match=r"parameters\.q2_L_per_h"):
        m.with_parameters(q2_L_per_h=1.0)


def test_with_estimates_keeps_the_iiv_structure():
    m = model_from_dict(RICH)
    omega = np.array([[0.4, 0.0, 0.0], [0.0, 0.2, 0.1], [0.0, 0.1, 0.3]])
    m2 = m.with_estimates(
        parameters={"ka_per_h": 2.0}, omega=omega, residual_error={"proportional": 0.1}
    )
    np.testing.assert_array_equal(m2.omega_matrix(), omega)
    assert m2.eta_names() == m.eta_names()
    assert m2.parameters["ka_per_h"] == 2.0
    assert m2.residual_error.proportional == 0.1 and m2.residual_error.exponential is None
    off_block = omega.copy()
    off_block[0, 1] = off_block[1, 0] = 0.01
    with pytest.raises(SpecError, match="omega"):
        m.with_estimates(omega=off_block)
    with pytest.raises(SpecError, match="omega"):
        m.with_estimates(omega=np.eye(2))


def test_estimate_names_cover_every_value_a_fit_may_estimate():
    m = model_from_dict(RICH)
    assert m.covariate_effect_names() == {
        "beta_cl_L_per_h_WT": ("cl_L_per_h", "WT", None),
        "beta_cl_L_per_h_CRCL": ("cl_L_per_h", "CRCL", None),
        "beta_v1_L_SEX_0": ("v1_L", "SEX", 0),
        "beta_v1_L_SEX_1": ("v1_L", "SEX", 1),
        "beta_ka_per_h_AGE": ("ka_per_h", "AGE", None),
    }
    names = m.estimate_names()
    assert "n_transit" not in names
    assert names[-5:] == (
        "omega2_ka_per_h",
        "omega2_cl_L_per_h",
        "omega2_v1_L",
        "omega_cl_L_per_h_v1_L",
        "sigma_exponential",
    )


def test_with_estimates_sets_covariate_effects_by_name():
    m = model_from_dict(RICH)
    m2 = m.with_estimates(
        covariates={"beta_cl_L_per_h_WT": 0.9, "beta_v1_L_SEX_1": 0.6, "beta_ka_per_h_AGE": 0.02}
    )
    assert m2.covariates["cl_L_per_h"]["WT"].power == 0.9
    assert m2.covariates["cl_L_per_h"]["WT"].reference == 70.0
    assert m2.covariates["cl_L_per_h"]["CRCL"] == m.covariates["cl_L_per_h"]["CRCL"]
    assert m2.covariates["v1_L"]["SEX"].categorical == {0: 1.0, 1: 0.6}
    assert m2.covariates["ka_per_h"]["AGE"].exponential == 0.02
    assert model_from_dict(model_to_dict(m2)) == m2
    with pytest.raises(SpecError, match=r"did you mean 'beta_cl_L_per_h_WT'"):
        m.with_estimates(covariates={"beta_cl_L_per_h_wt": 1.0})
    with pytest.raises(SpecError, match=r"categorical\.1"):
        m.with_estimates(covariates={"beta_v1_L_SEX_1": -1.0})


def test_fixed_names_values_a_fit_holds(tmp_path):
    data = copy.deepcopy(RICH)
    data["fixed"] = ["beta_cl_L_per_h_WT", "omega2_ka_per_h"]
    m = load_model(write(tmp_path, data))
    assert m.fixed == ("beta_cl_L_per_h_WT", "omega2_ka_per_h")
    assert load_model(dump_model(m, tmp_path / "again.yaml")) == m
    assert m.with_estimates(parameters={"v1_L": 3.0}).fixed == m.fixed
    # a model without the key serializes (and hashes) without it
    assert "fixed" not in model_from_dict(RICH).canonical_json()
    err = refused(tmp_path, {**RICH, "fixed": ["beta_cl_L_per_h_wt"]}, "fixed[0]")
    assert "did you mean 'beta_cl_L_per_h_WT'" in err.allowed
    refused(tmp_path, {**RICH, "fixed": ["v1_L", "v1_L"]}, "fixed[1]")
    err = refused(tmp_path, {**RICH, "fixed": ["omega_cl_L_per_h_v1_L"]}, "fixed")
    assert "block" in err.allowed


def test_f_bio_above_one_and_whole_n_transit_are_accepted():
    m = model_from_dict(RICH)
    assert m.parameters["f_bio"] == 2.23
    assert m.parameters["n_transit"] == 3.0


# -- refusals, each named by file and key ------------------------------------------------------


BAD_PARAMETERS = [
    ("unknown name", changed(parameters__foo_L=1.0), "parameters.foo_L"),
    (
        "wrong case",
        changed(parameters__cl_l_per_h=0.2, parameters__cl_L_per_h=_DELETE),
        "parameters.cl_l_per_h",
    ),
    ("missing required", changed(parameters__v1_L=_DELETE), "parameters.v1_L"),
    ("unused by 1 compartment", changed(parameters__q2_L_per_h=1.0), "parameters.q2_L_per_h"),
    (
        "ka with absorption none",
        changed(pk__absorption="none"),
        "parameters.ka_per_h",
    ),
    ("infinite", changed(parameters__cl_L_per_h=math.inf), "parameters.cl_L_per_h"),
    ("nan", changed(parameters__v1_L=math.nan), "parameters.v1_L"),
    ("zero", changed(parameters__v1_L=0.0), "parameters.v1_L"),
    ("negative", changed(parameters__ka_per_h=-1.0), "parameters.ka_per_h"),
    ("f_bio zero", changed(parameters__f_bio=0.0), "parameters.f_bio"),
    ("bool value", changed(parameters__v1_L=True), "parameters.v1_L"),
    ("string value", changed(parameters__v1_L="ten"), "parameters.v1_L"),
    (
        "n_transit not whole",
        changed(RICH, parameters__n_transit=2.5),
        "parameters.n_transit",
    ),
    ("n_transit zero", changed(RICH, parameters__n_transit=0), "parameters.n_transit"),
    (
        "vmax with linear elimination",
        changed(parameters__vmax_mg_per_h=1.0),
        "parameters.vmax_mg_per_h",
    ),
    ("ke0 without effect compartment", changed(parameters__ke0_per_h=1.0), "parameters.ke0_per_h"),
]


@pytest.mark.parametrize(
    ("case", "data", "field"), BAD_PARAMETERS, ids=[c[0] for c in BAD_PARAMETERS]
)
def test_bad_parameters_are_refused(case, data, field, tmp_path):
    refused(tmp_path, data, field)


def test_wrong_case_suggests_the_name(tmp_path):
    err = refused(
        tmp_path,
        changed(parameters__cl_l_per_h=0.2, parameters__cl_L_per_h=_DELETE),
        "parameters.cl_l_per_h",
    )
    assert "did you mean 'cl_L_per_h'" in str(err)
    assert "v1_L" in err.allowed  # the allowed names are listed


def test_unused_parameter_lists_what_the_structure_takes(tmp_path):
    err = refused(tmp_path, changed(parameters__q2_L_per_h=1.0), "parameters.q2_L_per_h")
    assert "compartments 1" in err.allowed and "cl_L_per_h" in err.allowed


BAD_SECTIONS = [
    ("iiv on missing parameter", changed(iiv={"q2_L_per_h": 0.1}), "iiv.q2_L_per_h"),
    ("iiv negative variance", changed(iiv={"cl_L_per_h": -0.1}), "iiv.cl_L_per_h"),
    ("iov on missing parameter", changed(iov={"tlag_h": 0.1}), "iov.tlag_h"),
    ("iov negative", changed(iov={"cl_L_per_h": -0.1}), "iov.cl_L_per_h"),
    (
        "covariate on missing parameter",
        changed(covariates={"d1_h": {"WT": {"power": 1.0, "reference": 70}}}),
        "covariates.d1_h",
    ),
    (
        "covariate with two forms",
        changed(covariates={"v1_L": {"WT": {"power": 1.0, "linear": 0.1, "reference": 70}}}),
        "covariates.v1_L.WT",
    ),
    (
        "power without reference",
        changed(covariates={"v1_L": {"WT": {"power": 1.0}}}),
        "covariates.v1_L.WT.reference",
    ),
    (
        "power with non-positive reference",
        changed(covariates={"v1_L": {"WT": {"power": 1.0, "reference": 0}}}),
        "covariates.v1_L.WT.reference",
    ),
    (
        "categorical factor not positive",
        changed(covariates={"v1_L": {"SEX": {"categorical": {0: 1.0, 1: 0.0}}}}),
        "covariates.v1_L.SEX.categorical.1",
    ),
    (
        "same column twice ignoring case",
        changed(
            covariates={
                "v1_L": {
                    "WT": {"power": 1.0, "reference": 70},
                    "wt": {"power": 1.0, "reference": 70},
                }
            }
        ),
        "covariates.v1_L.wt",
    ),
    (
        "covariate on n_transit",
        changed(RICH, covariates={"n_transit": {"WT": {"power": 1.0, "reference": 70}}}),
        "covariates.n_transit",
    ),
    ("iiv on n_transit", changed(RICH, iiv={"n_transit": 0.1}), "iiv.n_transit"),
    (
        "depot dosing without a depot",
        changed(
            pk__absorption="none",
            parameters__ka_per_h=_DELETE,
            dosing={"depot": {"f_bio": 0.5}},
        ),
        "dosing.depot",
    ),
    ("misspelt dosing compartment", changed(dosing={"centrl": {"f_bio": 0.5}}), "dosing.centrl"),
    ("dosing f_bio negative", changed(dosing={"central": {"f_bio": -0.5}}), "dosing.central.f_bio"),
    ("dosing unknown key", changed(dosing={"central": {"lag": 0.5}}), "dosing.central.lag"),
    (
        "dosing rate and duration",
        changed(dosing={"central": {"duration_h": 1.0, "rate_mg_per_h": 2.0}}),
        "dosing.central.rate_mg_per_h",
    ),
    (
        "lag twice on the default compartment",
        changed(parameters__tlag_h=0.5, dosing={"depot": {"tlag_h": "LAGT"}}),
        "dosing.depot.tlag_h",
    ),
    (
        "data compartment not in the structure",
        changed(data={"compartments": {1: "depot", 2: "central", 3: "peripheral1"}}),
        "data.compartments.3",
    ),
    (
        "data compartment named twice",
        changed(data={"compartments": {1: "central", 2: "central"}}),
        "data.compartments.2",
    ),
    ("data unit", changed(data={"dv_unit": "mmol/L"}), "data.dv_unit"),
    (
        "block of the wrong size",
        changed(iiv={"blocks": [{"parameters": ["cl_L_per_h", "v1_L"], "covariance": [[0.1]]}]}),
        "iiv.blocks[0].covariance",
    ),
    (
        "block not symmetric",
        changed(
            iiv={
                "blocks": [
                    {"parameters": ["cl_L_per_h", "v1_L"], "covariance": [[0.1, 0.05], [0.0, 0.1]]}
                ]
            }
        ),
        "iiv.blocks[0].covariance",
    ),
    (
        "block not positive semi-definite",
        changed(
            iiv={
                "blocks": [
                    {"parameters": ["cl_L_per_h", "v1_L"], "covariance": [[0.1, 0.2], [0.2, 0.1]]}
                ]
            }
        ),
        "iiv.blocks[0].covariance",
    ),
    (
        "parameter in the mapping and a block",
        changed(
            iiv={
                "cl_L_per_h": 0.1,
                "blocks": [
                    {"parameters": ["cl_L_per_h", "v1_L"], "covariance": [[0.1, 0.0], [0.0, 0.1]]}
                ],
            }
        ),
        "iiv.blocks[0].parameters",
    ),
    (
        "block parameter the model lacks",
        changed(
            iiv={
                "blocks": [
                    {"parameters": ["cl_L_per_h", "v2_L"], "covariance": [[0.1, 0], [0, 0.1]]}
                ]
            }
        ),
        "iiv.blocks[0].parameters",
    ),
    (
        "singular 'block' key",
        changed(iiv={"block": {"parameters": ["cl_L_per_h"], "covariance": [[0.1]]}}),
        "iiv.block",
    ),
    (
        "exponential with additive",
        changed(residual_error={"exponential": 0.1, "additive": 0.2}),
        "residual_error.exponential",
    ),
    ("empty residual error", changed(residual_error={}), "residual_error"),
    ("negative residual SD", changed(residual_error={"additive": -1.0}), "residual_error.additive"),
    (
        "unknown residual key",
        changed(residual_error={"multiplicative": 0.1}),
        "residual_error.multiplicative",
    ),
    ("four compartments", changed(pk__compartments=4), "pk.compartments"),
    ("unknown absorption", changed(pk__absorption="oral"), "pk.absorption"),
    ("unknown top-level key", changed(colour="blue"), "colour"),
    ("missing pk", changed(pk=_DELETE), "pk"),
    ("wrong kind", changed(kind="cohort"), "kind"),
    ("schema version 2", changed(schema_version=2), "schema_version"),
    ("missing kind", changed(kind=_DELETE), "kind"),
]


@pytest.mark.parametrize(("case", "data", "field"), BAD_SECTIONS, ids=[c[0] for c in BAD_SECTIONS])
def test_bad_sections_are_refused(case, data, field, tmp_path):
    refused(tmp_path, data, field)


def test_duplicate_key_is_refused_with_its_path(tmp_path):
    text = (
        "kind: model\nschema_version: 1\nname: dup\n"
        "pk: {compartments: 1, absorption: first_order, elimination: linear}\n"
        "parameters:\n  cl_L_per_h: 0.2\n  v1_L: 10.0\n  ka_per_h: 1.0\n  v1_L: 12.0\n"
    )
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as info:
        load_model(path)
    assert info.value.field == "parameters.v1_L"
    assert str(path) in str(info.value) and "line 9" in str(info.value)


def test_duplicate_top_level_key_is_refused(tmp_path):
    text = yaml.safe_dump(BASE, sort_keys=False) + "name: again\n"
    path = write(tmp_path, text)
    with pytest.raises(SpecError, match=r"name: got 'name'") as info:
        load_model(path)
    assert info.value.source == str(path)


@pytest.mark.parametrize(
    "text",
    [
        "kind: model\nschema_version: 1\nname: a\npk: &pk {compartments: 1}\nother: *pk\n",
        "kind: model\nschema_version: 1\nname: &n a\n",
        "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n",
    ],
    ids=["alias", "anchor", "alias bomb"],
)
def test_anchors_and_aliases_are_refused(text, tmp_path):
    path = write(tmp_path, text)
    with pytest.raises(SpecError, match="anchors and aliases") as info:
        load_model(path)
    assert info.value.source == str(path)


def test_missing_file_and_non_mapping(tmp_path):
    with pytest.raises(SpecError, match="an existing YAML file"):
        load_model(tmp_path / "absent.yaml")
    with pytest.raises(SpecError, match="a YAML mapping"):
        load_model(write(tmp_path, "- 1\n- 2\n"))


def test_model_from_dict_names_its_source():
    with pytest.raises(SpecError) as info:
        model_from_dict(changed(parameters__v1_L=-2.0), source="inline")
    assert info.value.source == "inline" and info.value.field == "parameters.v1_L"
    assert info.value.value == -2.0


# -- PD ----------------------------------------------------------------------------------------


@pytest.fixture
def registry():
    return pytest.importorskip("insilico.pd.registry")


def test_pd_parameters_required_and_optional(registry):
    data = changed(
        pd={"model": "irm1"},
        parameters__kin_per_h=2.0,
        parameters__kout_per_h=0.2,
        parameters__imax=0.9,
        parameters__ic50_mg_per_L=0.5,
    )
    m = model_from_dict(data)
    assert "hill" in m.optional_parameters()
    assert m.required_parameters()[-4:] == ("kin_per_h", "kout_per_h", "imax", "ic50_mg_per_L")
    assert "response" in m.compartment_names()
    m2 = m.with_parameters(hill=2.0)
    assert m2.parameters["hill"] == 2.0
    with pytest.raises(SpecError, match=r"parameters\.hill"):
        m.with_parameters(hill=0.0)


def test_pd_effect_compartment(registry, tmp_path):
    data = changed(
        pd={"model": "emax", "effect_compartment": True},
        parameters__e0=100.0,
        parameters__emax=-60.0,
        parameters__ec50_mg_per_L=0.5,
        parameters__ke0_per_h=0.7,
        data={"compartments": {1: "depot", 2: "central", 3: "effect", 4: "response"}},
    )
    m = model_from_dict(data)
    assert m.compartment_names()[-2:] == ("effect", "response")
    assert m.parameters["emax"] == -60.0  # PD parameters may be negative
    without_ke0 = copy.deepcopy(data)
    del without_ke0["parameters"]["ke0_per_h"]
    refused(tmp_path, without_ke0, "parameters.ke0_per_h")
    missing_pd = copy.deepcopy(data)
    del missing_pd["parameters"]["ec50_mg_per_L"]
    refused(tmp_path, missing_pd, "parameters.ec50_mg_per_L")


def test_unknown_pd_model_and_parameter(registry, tmp_path):
    refused(tmp_path, changed(pd={"model": "friberg_nope"}), "pd.model")
    data = changed(
        pd={"model": "linear"},
        parameters__e0=1.0,
        parameters__slope_L_per_mg=2.0,
        parameters__ec50_mg_per_L=1.0,
    )
    refused(tmp_path, data, "parameters.ec50_mg_per_L")
    refused(
        tmp_path,
        changed(pd={"model": "emax", "effect_compartment": "yes"}),
        "pd.effect_compartment",
    )


def test_user_pd_model_states_are_compartment_names(registry, monkeypatch, tmp_path):
    record = registry.PDRecord(
        "friberg_test",
        ("circ0", "mtt_h_pd", "gamma", "slope_L_per_mg"),
        states=("prol", "transit1", "circ"),
        rhs=lambda c, y, p, dydt: None,
        initial=lambda p, y0: None,
    )
    monkeypatch.setitem(registry._REGISTRY, "friberg_test", record)
    data = changed(
        pd={"model": "friberg_test"},
        parameters__circ0=5.0,
        parameters__mtt_h_pd=100.0,
        parameters__gamma=0.2,
        parameters__slope_L_per_mg=0.1,
        data={"compartments": {1: "depot", 2: "central", 3: "circ"}},
        iiv={"circ0": 0.1},
    )
    m = model_from_dict(data)
    assert m.compartment_map()[3] == "circ"
    assert m.eta_names() == ("circ0",)
    bad = changed(data, data={"compartments": {1: "depot", 2: "central", 3: "response"}})
    refused(tmp_path, bad, "data.compartments.3")
