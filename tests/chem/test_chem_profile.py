"""CompoundProfile: measured > in-vitro > predicted, field by field; failures; predict-pk."""

from __future__ import annotations

import dataclasses
import math
import sys
import types

import numpy as np
import pandas as pd
import pytest

from insilico.chem import mechanistic as mech
from insilico.chem.descriptors import compute_descriptors
from insilico.chem.io import read_compounds
from insilico.chem.profile import (
    MISSING_REASON,
    PREDICT_PK_COLUMNS,
    SCHMITT_VSS_SD_LOG,
    CompoundProfile,
    PKParameter,
    build_profiles,
    predict_pk_table,
    profiles_to_frame,
)
from insilico.errors import InsilicoError
from insilico.units import nM_to_mg_per_L

# fixed fake predictions: VDss 2 L/kg, CL 5 mL/min/kg, fu 0.2, t1/2 8 h; 90 % intervals
# of x/÷ e^(1.645 sd) with sd_log 0.5, 0.6, 0.7, 0.4
FAKE = {
    "vdss_L_per_kg": (2.0, 0.5),
    "cl_mL_min_kg": (5.0, 0.6),
    "fu": (0.2, 0.7),
    "t_half_h": (8.0, 0.4),
}
Z = 1.6448536269514722
LIDOCAINE = "CCN(CC)CC(=O)Nc1c(C)cccc1C"


def _fake_predict(smiles):
    n = len(smiles)
    out = {}
    for c, (v, sd) in FAKE.items():
        out[c] = np.full(n, v)
        out[f"{c}_lo"] = np.full(n, v * math.exp(-Z * sd))
        out[f"{c}_hi"] = np.full(n, v * math.exp(Z * sd))
        out[f"{c}_sd_log"] = np.full(n, sd)
    out["in_domain"] = np.ones(n, dtype=bool)
    out["error"] = [""] * n
    return pd.DataFrame(out)


@pytest.fixture(autouse=True)
def no_known_drugs(monkeypatch):
    """These tests use lidocaine's structure as a generic molecule to exercise measured >
    in-vitro > predicted; the known-drug lookup (tests/chem/test_known_drugs.py) is off."""
    import insilico.chem.profile as profile

    real = profile.match_known_drugs
    monkeypatch.setattr(profile, "match_known_drugs", lambda keys: real([""] * len(keys)))


@pytest.fixture
def fake_model(monkeypatch):
    calls = []

    def predict(smiles):
        calls.append(list(smiles))
        return _fake_predict(smiles)

    mod = types.ModuleType("insilico.chem.pk_model")
    mod.predict_human_pk = predict
    monkeypatch.setitem(sys.modules, "insilico.chem.pk_model", mod)
    return calls


@pytest.fixture
def no_model(monkeypatch):
    # None in sys.modules makes the import raise ImportError
    monkeypatch.setitem(sys.modules, "insilico.chem.pk_model", None)


def _compounds(tmp_path, text):
    p = tmp_path / "c.csv"
    p.write_text(text)
    return read_compounds(p)


def test_measured_overrides_prediction_field_by_field(tmp_path, fake_model):
    df = _compounds(
        tmp_path,
        "id,name,smiles,cl_L_per_h,fu,vdss_L_per_kg,t_half_h\n"
        "P,pred-only,CCN(CC)CC(=O)Nc1c(C)cccc1C,,,,\n"
        "C,cl-only,CCN(CC)CC(=O)Nc1c(C)cccc1C,33,,,\n"
        "F,fu-only,CCN(CC)CC(=O)Nc1c(C)cccc1C,,0.35,,\n"
        "V,v-and-t,CCN(CC)CC(=O)Nc1c(C)cccc1C,,,1.5,3\n",
    )
    profiles, failed = build_profiles(df)
    assert failed.empty
    p = {x.id: x for x in profiles}
    w = 70.0
    # prediction only: every PK field predicted, converted to 70 kg units
    assert p["P"].cl_L_per_h == PKParameter(
        5.0 * w * 60 / 1000, "predicted", 0.6, "structure model"
    )
    assert p["P"].v_L.value == pytest.approx(2.0 * w) and p["P"].v_L.source == "predicted"
    assert p["P"].fu.value == 0.2 and p["P"].fu.sd_log == 0.7
    assert p["P"].t_half_h.value == 8.0 and p["P"].t_half_h.source == "predicted"
    assert p["P"].in_domain is True
    # measured CL only: CL measured (sd 0), the rest predicted
    assert (p["C"].cl_L_per_h.value, p["C"].cl_L_per_h.source, p["C"].cl_L_per_h.sd_log) == (
        33.0,
        "measured",
        0.0,
    )
    assert p["C"].v_L.source == "predicted" and p["C"].fu.source == "predicted"
    # measured fu only: fu measured; V now in-vitro (Schmitt with the measured fu, logP < 4)
    assert (p["F"].fu.value, p["F"].fu.source) == (0.35, "measured")
    assert p["F"].cl_L_per_h.source == "predicted"
    assert p["F"].v_L.source == "in-vitro"
    lido = compute_descriptors([LIDOCAINE]).iloc[0]
    assert lido["pka_base_approx"] == 9.5 and np.isnan(lido["pka_acid_approx"])
    expected = mech.vss_schmitt_L_per_kg(lido["clogp"], 0.35, np.nan, 9.5) * w
    assert p["F"].v_L.value == pytest.approx(expected, rel=1e-12)
    assert p["F"].v_L.sd_log == SCHMITT_VSS_SD_LOG
    # measured Vss and t1/2: CL derived from them, still "measured"
    assert p["V"].v_L.value == pytest.approx(105.0) and p["V"].v_L.source == "measured"
    assert p["V"].cl_L_per_h.value == pytest.approx(math.log(2) * 105.0 / 3.0)
    assert p["V"].cl_L_per_h.source == "measured"
    assert p["V"].t_half_h.value == 3.0


def test_structure_model_not_called_when_everything_is_measured(tmp_path, fake_model):
    df = _compounds(
        tmp_path,
        "id,smiles,cl_mL_min_kg,v_L,t_half_h,fu\nA,CCO,10,50,4,0.9\nB,CCN,,,,\n",
    )
    profiles, _ = build_profiles(df)
    assert fake_model == [["CCN"]]
    a = profiles[0]
    assert a.cl_L_per_h.value == pytest.approx(42.0)  # 10 mL/min/kg x 70 kg = 42 L/h
    assert a.v_L.value == 50.0 and a.in_domain is None


def test_in_vitro_clearance_by_well_stirred_model(tmp_path, fake_model):
    df = _compounds(
        tmp_path,
        "id,smiles,fu,clint_hep_uL_min_per_1e6_cells,blood_plasma_ratio,fe\n"
        "H,CN1CCC[C@H]1c1cccnc1,0.95,15,1.0,\n"
        "R,CN1CCC[C@H]1c1cccnc1,0.95,15,1.0,0.25\n"
        "M,CN1CCC[C@H]1c1cccnc1,,15,1.0,\n",
    )
    profiles, failed = build_profiles(df)
    p = {x.id: x for x in profiles}
    clh = mech.well_stirred_hepatic_cl(mech.scale_clint_hepatocyte(15.0), 0.95)
    assert p["H"].cl_L_per_h.source == "in-vitro"
    assert p["H"].cl_L_per_h.value == pytest.approx(clh + 0.95 * mech.GFR_L_PER_H)
    assert p["R"].cl_L_per_h.value == pytest.approx(clh / 0.75)
    assert p["R"].fe.value == 0.25 and p["R"].fe.source == "measured"
    # without measured fu, the predicted fu (0.2) feeds the mechanism; its sd adds
    clh_pred_fu = mech.well_stirred_hepatic_cl(mech.scale_clint_hepatocyte(15.0), 0.2)
    assert p["M"].cl_L_per_h.value == pytest.approx(clh_pred_fu + 0.2 * mech.GFR_L_PER_H)
    assert p["M"].cl_L_per_h.sd_log == pytest.approx(math.hypot(0.9, 0.7))


def test_missing_structure_model_reports_failure_reason(tmp_path, no_model):
    df = _compounds(
        tmp_path,
        "id,smiles,cl_L_per_h,v_L,potency_nM\n"
        "OK,CC(=O)Oc1ccccc1C(=O)O,40,10,100\n"
        "NOPK,CCO,,,\n"
        "ONLYCL,CCO,5,,\n"
        "BAD,C1CC,,,\n",
    )
    profiles, failed = build_profiles(df)
    assert [x.id for x in profiles] == ["OK"]
    assert list(failed.columns) == ["id", "error"]
    reasons = dict(zip(failed["id"], failed["error"], strict=True))
    assert reasons["NOPK"].startswith(
        "missing PK parameter cl_L_per_h (no measured value, no prediction)"
    )
    assert reasons["ONLYCL"] == MISSING_REASON.format(field="v_L")
    assert reasons["BAD"] == "unparsable SMILES: unclosed ring"
    ok = profiles[0]
    # potency: 100 nM of aspirin converted with the RDKit MW
    assert ok.potency_mg_per_L.value == pytest.approx(nM_to_mg_per_L(100, 180.159), rel=1e-5)
    assert ok.mw_g_per_mol == pytest.approx(180.16, abs=0.01)


def test_oral_absorption_fields(tmp_path, fake_model):
    df = _compounds(tmp_path, f"id,smiles,f_bio,ka_per_h\nA,{LIDOCAINE},,\nB,CCO,0.8,1.5\n")
    profiles, _ = build_profiles(df)
    a, b = profiles
    assert a.ka_per_h.source == "predicted" and a.f_bio.source == "predicted"
    # lidocaine TPSA 32.3 Å2 -> Fa ~0.99; CL 21 L/h predicted, fu 0.2 -> Fh from the liver
    assert 0.5 < a.f_bio.value < 1.0
    assert a.ka_per_h.value == pytest.approx(
        float(mech.ka_from_fa(mech.fraction_absorbed_tpsa(32.34))), rel=1e-3
    )
    assert (b.f_bio.value, b.f_bio.source, b.ka_per_h.value) == (0.8, "measured", 1.5)


def test_profile_is_frozen_and_flattens():
    p = CompoundProfile(
        "X", "x", "CCO", 46.07, PKParameter(10.0, "measured"), PKParameter(50.0, "predicted", 0.5)
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.cl_L_per_h = PKParameter(1.0, "measured")  # type: ignore[misc]
    with pytest.raises(ValueError):
        PKParameter(1.0, "guessed")
    with pytest.raises(ValueError):
        PKParameter(1.0, "measured", -1.0)
    frame = profiles_to_frame([p])
    assert frame.loc[0, "v_L_source"] == "predicted" and frame.loc[0, "v_L_sd_log"] == 0.5
    assert np.isnan(frame.loc[0, "fu"]) and frame.loc[0, "fu_source"] == ""


def test_predict_pk_table(tmp_path, fake_model):
    src = tmp_path / "in.csv"
    src.write_text("smiles,project,fu\nCCO,a,0.3\nC1CC,b,\nCCN.Cl,c,\n")
    out = tmp_path / "o" / "out.csv"
    table = predict_pk_table(src, out, progress=False)
    back = pd.read_csv(out, keep_default_na=False)
    for c in PREDICT_PK_COLUMNS:
        assert c in back.columns
    assert back["project"].tolist() == ["a", "b", "c"]
    assert back["fu_input"].astype(str).tolist() == ["0.3", "", ""]  # renamed, not lost
    assert back["error"].tolist()[1] == "unparsable SMILES: unclosed ring"
    assert back["error"].tolist()[0] == "" and back["error"].tolist()[2] == ""
    assert table["vdss_L_per_kg"].tolist()[0] == 2.0 and np.isnan(table["vdss_L_per_kg"][1])
    assert table["cl_mL_min_kg_lo"].iloc[0] == pytest.approx(5.0 * math.exp(-Z * 0.6))
    assert fake_model == [["CCO", "CCN"]]  # standardized, invalid rows not sent


def test_predict_pk_table_without_model(tmp_path, no_model):
    src = tmp_path / "in.csv"
    src.write_text("smiles\nCCO\n")
    with pytest.raises(InsilicoError, match="unavailable"):
        predict_pk_table(src, tmp_path / "out.csv", progress=False)


def test_hand_made_frame_is_standardized_first(no_model):
    df = pd.DataFrame({"smiles": ["CCO.Cl", "C1CC"], "cl_L_per_h": [5.0, 1.0], "v_L": [40.0, 3.0]})
    profiles, failed = build_profiles(df)
    assert [(p.id, p.smiles) for p in profiles] == [("compound_1", "CCO")]
    # t1/2 derived from the measured CL and V: ln2 x 40 / 5
    assert profiles[0].t_half_h.value == pytest.approx(math.log(2) * 8.0)
    assert failed.to_dict("records") == [
        {"id": "compound_2", "error": "unparsable SMILES: unclosed ring"}
    ]


def test_derived_half_life_takes_the_least_direct_source(tmp_path, no_model):
    # measured CL, in-vitro Vss (Schmitt from measured fu), no model: t1/2 = ln2 V / CL
    df = _compounds(tmp_path, f"id,smiles,cl_L_per_h,fu\nA,{LIDOCAINE},30,0.3\n")
    (p,), failed = build_profiles(df)
    assert failed.empty
    assert (p.cl_L_per_h.source, p.v_L.source, p.t_half_h.source) == (
        "measured",
        "in-vitro",
        "in-vitro",
    )
    assert p.t_half_h.value == pytest.approx(math.log(2) * p.v_L.value / 30.0)
    assert p.t_half_h.sd_log == pytest.approx(p.v_L.sd_log)


def test_predicted_bioavailability_of_known_drugs_within_two_fold(tmp_path, no_model):
    """F = Fa(TPSA) x Fh(measured IV CL) against oral F from Goodman & Gilman's
    Pharmacological Basis of Therapeutics, Appendix II (propranolol 0.26, atenolol 0.58,
    metformin 0.52, diazepam 1.0), with their IV CL (mL/min/kg), Vss (L/kg), fu, fe.
    Tolerance 2-fold: the rule ignores gut metabolism, transporters and solubility."""
    df = _compounds(
        tmp_path,
        "id,smiles,cl_mL_min_kg,vdss_L_per_kg,fu,fe,f_obs\n"
        "propranolol,CC(C)NCC(O)COc1cccc2ccccc12,16,4.3,0.13,0.005,0.26\n"
        "atenolol,CC(C)NCC(O)COc1ccc(CC(N)=O)cc1,2.0,0.95,0.95,0.94,0.58\n"
        "metformin,CN(C)C(=N)NC(=N)N,7.6,1.1,1.0,0.99,0.52\n"
        "diazepam,CN1C(=O)CN=C(c2ccccc2)c2cc(Cl)ccc21,0.38,1.1,0.013,0.01,1.0\n",
    )
    profiles, failed = build_profiles(df)
    assert failed.empty
    for p, f_obs in zip(profiles, df["f_obs"].astype(float), strict=True):
        assert p.f_bio.source == "predicted"
        assert abs(math.log(p.f_bio.value / f_obs)) < math.log(2), (p.id, p.f_bio.value)


def test_measured_cl_and_v_give_half_life_not_the_prediction(tmp_path, fake_model):
    # the (fake) structure model predicts t1/2 = 8 h; measured CL and Vss must win
    df = _compounds(tmp_path, f"id,smiles,cl_L_per_h,v_L,fu\nA,{LIDOCAINE},30,90,0.3\n")
    (p,), failed = build_profiles(df)
    assert failed.empty
    assert p.t_half_h == PKParameter(math.log(2) * 90.0 / 30.0, "measured", 0.0, "ln2 Vss / CL")
