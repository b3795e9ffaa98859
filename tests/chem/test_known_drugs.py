"""Known drugs: published human PK used for a marketed drug's structure, the user's own values
first, and a way to keep it out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from insilico.chem.io import read_compounds
from insilico.chem.known_drugs import known_drugs, match_known_drugs
from insilico.chem.profile import build_profiles
from insilico.chem.standardize import standardize_smiles_batch
from insilico.units import mL_min_kg_to_L_per_h

LOMBARDO = Path(__file__).resolve().parents[3] / "shared" / "data" / "human_pk_lombardo2018.csv"
WARFARIN = "CC(=O)CC(c1ccccc1)c1c(O)c2ccccc2oc1=O"
# warfarin in the Lombardo 2018 table: CL 0.055 mL/min/kg, Vss 0.13 L/kg, fu 0.015
WARFARIN_CL_L_PER_H = float(mL_min_kg_to_L_per_h(0.055, 70.0))


def _profile(tmp_path, **columns):
    path = tmp_path / "c.csv"
    pd.DataFrame([{"id": "w", "smiles": WARFARIN, **columns}]).to_csv(path, index=False)
    profiles, failed = build_profiles(read_compounds(path))
    return profiles, failed


def test_warfarin_by_structure_gets_its_measured_pk_marked_literature(tmp_path):
    (p,), failed = _profile(tmp_path)
    assert failed.empty
    assert p.cl_L_per_h.value == pytest.approx(WARFARIN_CL_L_PER_H, rel=1e-12)
    assert p.v_L.value == pytest.approx(0.13 * 70.0, rel=1e-12)
    assert p.fu.value == pytest.approx(0.015, rel=1e-12)
    for name in ("cl_L_per_h", "v_L", "fu", "t_half_h"):
        param = getattr(p, name)
        assert param.source == "literature", name
        assert "Warfarin" in param.method and "Lombardo 2018" in param.method, name
        assert param.sd_log == 0.0
    # t1/2 follows from CL and Vss (the one-compartment twin's), not the published terminal one
    assert p.t_half_h.value == pytest.approx(np.log(2) * p.v_L.value / p.cl_L_per_h.value)
    assert any("Warfarin" in n for n in p.notes)
    assert p.in_domain is None  # the structure model was not needed


def test_the_users_own_value_wins_and_what_is_derived_from_literature_says_so(tmp_path):
    (p,), _ = _profile(tmp_path, cl_mL_min_kg=0.1)
    assert p.cl_L_per_h.source == "measured"
    assert p.cl_L_per_h.value == pytest.approx(float(mL_min_kg_to_L_per_h(0.1, 70.0)))
    assert p.v_L.source == "literature"
    assert p.t_half_h.source == "literature"  # ln2 Vss / CL with a literature Vss


def test_use_known_pk_false_keeps_the_structure_prediction(tmp_path):
    (p,), _ = _profile(tmp_path, use_known_pk="false")
    assert p.cl_L_per_h.source == "predicted"
    assert p.cl_L_per_h.value != pytest.approx(WARFARIN_CL_L_PER_H, rel=0.01)


def test_a_bad_use_known_pk_value_is_refused_for_that_compound_only(tmp_path):
    path = tmp_path / "c.csv"
    pd.DataFrame(
        [
            {"id": "a", "smiles": WARFARIN, "use_known_pk": "maybe"},
            {"id": "b", "smiles": WARFARIN, "use_known_pk": "no"},
        ]
    ).to_csv(path, index=False)
    table = read_compounds(path)
    assert not table.loc[0, "valid"]
    assert "use_known_pk" in table.loc[0, "error"] and "'maybe'" in table.loc[0, "error"]
    assert "true, false" in table.loc[0, "error"]
    assert table.loc[1, "valid"] and not table.loc[1, "use_known_pk"]


def test_a_structure_without_stereo_matches_the_skeleton_of_its_stereoisomers():
    # abacavir is listed with its two stereocentres; the flat structure has the same skeleton
    flat = standardize_smiles_batch(["Nc1nc(NC2CC2)c2ncn(C3C=CC(CO)C3)c2n1"])["inchikey"]
    hit = match_known_drugs(flat).iloc[0]
    assert hit["known_drug"] == "Abacavir"
    assert hit["known_match"].startswith("skeleton of 1 stereoisomer")
    assert hit["cl_mL_min_kg"] == pytest.approx(13.0)


def test_no_match_and_invalid_keys_give_nothing():
    out = match_known_drugs(["", "XXXXXXXXXXXXXX-UHFFFAOYSA-N"])
    assert (out["known_match"] == "").all()
    assert out[["cl_mL_min_kg", "vdss_L_per_kg", "fu", "t_half_h"]].isna().all().all()


@pytest.mark.skipif(not LOMBARDO.is_file(), reason=f"{LOMBARDO} not present")
def test_the_shipped_table_reproduces_its_source():
    source = pd.read_csv(LOMBARDO)
    table = known_drugs()
    assert len(table) == len(source) == 1081
    both = source.merge(
        table, left_on=standardize_smiles_batch(source["smiles"])["inchikey"], right_on="inchikey"
    )
    assert len(both) == len(source)
    for col in ("cl_mL_min_kg", "vdss_L_per_kg", "fu", "t_half_h"):
        np.testing.assert_allclose(both[f"{col}_y"], both[f"{col}_x"], rtol=1e-5, err_msg=col)
