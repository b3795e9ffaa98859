"""read_compounds: CSV and SDF in, standardized, MW, molar potency converted to mg/L."""

from __future__ import annotations

import numpy as np
import pytest
from rdkit import Chem

from insilico.chem.io import read_compounds
from insilico.errors import SpecError

ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"
CAFFEINE = "Cn1c(=O)c2c(ncn2C)n(C)c1=O"


def _csv(tmp_path, text):
    p = tmp_path / "compounds.csv"
    p.write_text(text)
    return p


def test_csv_columns_kept_and_added(tmp_path):
    p = _csv(
        tmp_path,
        "id,name,smiles,potency_nM,herg_ic50_uM,project\n"
        f"A,aspirin,{ASPIRIN}.[Na+],100,10,alpha\n"
        f"B,caffeine,{CAFFEINE},2500,,beta\n"
        "C,broken,CC(C,5,,gamma\n",
    )
    df = read_compounds(p)
    for col in ("id", "name", "smiles", "inchikey", "mw_g_per_mol", "valid", "error"):
        assert col in df.columns
    assert df["project"].tolist() == ["alpha", "beta", "gamma"]
    assert df["input_smiles"].iloc[0] == f"{ASPIRIN}.[Na+]"
    assert df["smiles"].iloc[0] == ASPIRIN
    assert df["valid"].tolist() == [True, True, False]
    assert df["error"].iloc[2].startswith("unparsable SMILES at position 3")
    np.testing.assert_allclose(df["mw_g_per_mol"].iloc[:2], [180.16, 194.19], atol=0.01)
    assert np.isnan(df["mw_g_per_mol"].iloc[2])


def test_potency_nM_to_mg_per_L_uses_the_rdkit_molecular_weight(tmp_path):
    p = _csv(
        tmp_path, f"id,smiles,potency_nM,herg_ic50_uM\nA,{ASPIRIN},100,10\nB,{CAFFEINE},2500,\n"
    )
    df = read_compounds(p)
    mw = df["mw_g_per_mol"].to_numpy()
    # closed form: mg/L = nM x 1e-9 mol/nmol x MW g/mol x 1e3 mg/g
    np.testing.assert_allclose(df["potency_mg_per_L"], [100e-6 * mw[0], 2500e-6 * mw[1]])
    # by hand: 100 nM aspirin = 100e-9 mol/L x 180.159 g/mol = 18.0159 µg/L = 0.0180159 mg/L
    assert df["potency_mg_per_L"].iloc[0] == pytest.approx(0.0180159, rel=1e-5)
    # 10 µM aspirin = 1.80159 mg/L
    assert df["herg_ic50_mg_per_L"].iloc[0] == pytest.approx(1.80159, rel=1e-5)
    assert np.isnan(df["herg_ic50_mg_per_L"].iloc[1])


def test_bad_measured_values_invalidate_only_their_row(tmp_path):
    p = _csv(
        tmp_path,
        "id,smiles,fu,cl_L_per_h,fe\n"
        "A,CCO,0.5,10,0.1\n"
        "B,CCO,abc,10,\n"
        "C,CCO,0.5,-3,\n"
        "D,CCO,1.5,,\n"
        "E,CCO,,,1.2\n",
    )
    df = read_compounds(p)
    assert df["valid"].tolist() == [True, False, False, False, False]
    assert df["error"].iloc[1].startswith("fu: not a number 'abc'")
    assert df["error"].iloc[2].startswith("cl_L_per_h: out of range")
    assert df["error"].iloc[3].startswith("fu: out of range")
    assert df["error"].iloc[4].startswith("fe: out of range")
    assert df["fu"].dtype == float and df["cl_L_per_h"].iloc[0] == 10.0


def test_ids_default_and_duplicates(tmp_path):
    df = read_compounds(_csv(tmp_path, "smiles\nCCO\nCCN\n"))
    assert df["id"].tolist() == ["compound_1", "compound_2"]
    assert df["name"].tolist() == ["compound_1", "compound_2"]
    dup = read_compounds(_csv(tmp_path, "id,smiles\nX,CCO\nX,CCN\n"))
    assert dup["valid"].tolist() == [True, False]
    assert "duplicate id" in dup["error"].iloc[1]


def test_file_level_errors(tmp_path):
    with pytest.raises(SpecError, match="smiles"):
        read_compounds(_csv(tmp_path, "id,structure\nA,CCO\n"))
    with pytest.raises(SpecError, match="existing"):
        read_compounds(tmp_path / "missing.csv")
    bad = tmp_path / "c.xlsx"
    bad.write_text("x")
    with pytest.raises(SpecError, match=".csv, .sdf"):
        read_compounds(bad)


def test_sdf_compounds_with_a_broken_record(tmp_path):
    blocks = []
    for cid, smi in (("A", ASPIRIN), ("B", "C1CC"), ("C", CAFFEINE)):
        mol = Chem.MolFromSmiles(smi) if smi != "C1CC" else None
        if mol is None:
            blocks.append(
                f"{cid}\n  broken\n\n  1  0  0  0  0  0\nM  END\n> <potency_nM>\n7\n\n$$$$\n"
            )
            continue
        mol.SetProp("_Name", cid)
        mol.SetProp("potency_nM", "50")
        blocks.append(Chem.MolToMolBlock(mol) + "> <potency_nM>\n50\n\n$$$$\n")
    p = tmp_path / "c.sdf"
    p.write_text("".join(blocks))
    df = read_compounds(p)
    assert df["id"].tolist() == ["A", "B", "C"]
    assert df["valid"].tolist() == [True, False, True]
    assert df["potency_nM"].tolist()[0] == 50.0
    assert df["potency_mg_per_L"].iloc[2] == pytest.approx(50e-6 * 194.19, rel=1e-4)
