"""Standardization: salts, charges, stereo, invalid input, SDF with a broken record."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from rdkit import Chem

from insilico.chem.standardize import (
    MAX_HEAVY_ATOMS,
    read_sdf,
    standardize_smiles,
    standardize_smiles_batch,
)

ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"


@pytest.mark.parametrize(
    "salt",
    [
        "CC(=O)Oc1ccccc1C(=O)[O-].[Na+]",  # sodium salt
        "[Na+].CC(=O)Oc1ccccc1C(=O)[O-]",  # counter-ion first
        "CC(=O)Oc1ccccc1C(=O)O.O.O",  # hydrate
        "OC(=O)c1ccccc1OC(C)=O",  # another writing of the same molecule
    ],
)
def test_salts_and_solvents_give_the_parent(salt):
    res = standardize_smiles(salt)
    assert res.valid and res.error == ""
    assert res.smiles == ASPIRIN
    assert res.inchikey == "BSYNRYMUTXBXSQ-UHFFFAOYSA-N"  # aspirin (PubChem CID 2244)


def test_hydrochloride_of_a_protonated_amine_is_neutralized():
    res = standardize_smiles("CC[NH+](CC)CC(=O)Nc1c(C)cccc1C.[Cl-]")  # lidocaine HCl
    assert res.valid
    mol = Chem.MolFromSmiles(res.smiles)
    assert Chem.GetFormalCharge(mol) == 0
    assert res.smiles == Chem.CanonSmiles("CCN(CC)CC(=O)Nc1c(C)cccc1C")


def test_permanent_charge_is_kept():
    res = standardize_smiles("C[N+](C)(C)CCOC(C)=O.[Cl-]")  # acetylcholine chloride
    assert res.valid
    assert Chem.GetFormalCharge(Chem.MolFromSmiles(res.smiles)) == 1


def test_stereo_is_kept_and_distinguishes_enantiomers():
    l_ala = standardize_smiles("C[C@H](N)C(=O)O")
    d_ala = standardize_smiles("C[C@@H](N)C(=O)O")
    assert "@" in l_ala.smiles and "@" in d_ala.smiles
    assert l_ala.smiles != d_ala.smiles
    assert l_ala.inchikey != d_ala.inchikey
    assert l_ala.inchikey[:14] == d_ala.inchikey[:14]  # same skeleton
    assert l_ala.inchikey == "QNAYBMKLOCPYGJ-REOHCLBHSA-N"  # L-alanine


@pytest.mark.parametrize(
    ("smiles", "reason"),
    [
        ("CC(C", "unparsable SMILES at position 3"),
        ("CXC", "unparsable SMILES at position 2"),
        ("C1CC", "unparsable SMILES: unclosed ring"),
        ("C(C)(C)(C)(C)C", "invalid chemistry: Explicit valence"),
        ("c1cccc1", "invalid chemistry: Can't kekulize"),
        ("", "empty SMILES"),
        ("   ", "empty SMILES"),
        (None, "empty SMILES"),
        (float("nan"), "empty SMILES"),
        ("[Na+].[Cl-]", "no carbon atoms"),
        ("O", "no carbon atoms"),
        ("C" * (MAX_HEAVY_ATOMS + 1), f"more than {MAX_HEAVY_ATOMS} heavy atoms"),
    ],
)
def test_unusable_molecules_get_a_reason(smiles, reason):
    res = standardize_smiles(smiles)
    assert not res.valid
    assert res.smiles == "" and res.inchikey == ""
    assert res.error.startswith(reason), res.error


def test_no_rdkit_noise_on_stderr(capfd):
    standardize_smiles("CC(C")
    standardize_smiles("C(C)(C)(C)(C)C")
    assert capfd.readouterr().err == ""


def test_batch_returns_validity_column_and_keeps_order():
    inputs = ["CCO", "CC(C", None, "c1ccccc1O", ""]
    df = standardize_smiles_batch(inputs)
    assert list(df.columns) == ["input_smiles", "smiles", "inchikey", "valid", "error"]
    assert df["valid"].dtype == bool
    assert df["valid"].tolist() == [True, False, False, True, False]
    assert df.loc[df["valid"], "error"].eq("").all()
    assert df.loc[~df["valid"], "error"].ne("").all()
    assert df["smiles"].tolist()[0] == "CCO" and df["smiles"].tolist()[3] == "Oc1ccccc1"


def _sdf_record(smiles: str, props: dict[str, str], title: str) -> str:
    mol = Chem.MolFromSmiles(smiles)
    mol.SetProp("_Name", title)
    for k, v in props.items():
        mol.SetProp(k, v)
    from io import StringIO

    buf = StringIO()
    w = Chem.SDWriter(buf)
    w.write(mol)
    w.close()
    return buf.getvalue()


def test_sdf_with_a_broken_record_reads_the_others(tmp_path, capfd):
    good1 = _sdf_record("CC(=O)Oc1ccccc1C(=O)[O-].[Na+]", {"id": "A1", "potency_nM": "12"}, "asp")
    good2 = _sdf_record("Cn1c(=O)c2c(ncn2C)n(C)c1=O", {"id": "C1", "potency_nM": "30"}, "caf")
    # a record whose first atom has an unknown element symbol: the mol block fails to parse
    broken = _sdf_record("CC", {"id": "B1", "potency_nM": "5"}, "bad")
    lines = broken.splitlines()
    counts = next(i for i, ln in enumerate(lines) if "V2000" in ln)
    assert lines[counts + 1][31:34] == "C  "
    lines[counts + 1] = lines[counts + 1][:31] + "Qq " + lines[counts + 1][34:]
    broken = "\n".join(lines) + "\n"
    garbage = "garbage\n  not a molblock\n\n  2  1  0  0\nM  END\n> <id>\nG1\n\n$$$$\n"
    path = tmp_path / "mixed.sdf"
    path.write_text(good1 + broken + garbage + good2)
    df = read_sdf(path)
    assert len(df) == 4
    assert df["valid"].tolist() == [True, False, False, True]
    assert df["id"].tolist() == ["A1", "B1", "G1", "C1"]
    assert df.loc[0, "smiles"] == ASPIRIN
    assert df.loc[3, "inchikey"] == "RYYVLZVUVIJVGH-UHFFFAOYSA-N"  # caffeine
    assert "Element 'Qq' not found" in df.loc[1, "error"]
    assert df.loc[2, "error"].startswith("unreadable mol block")
    assert capfd.readouterr().err == ""
    assert df.loc[0, "potency_nM"] == "12"
    assert df["title"].tolist()[0] == "asp"


def test_lombardo_smiles_are_already_standard(shared_data):
    """The training set was curated the same way: standardizing it changes nothing."""
    d = pd.read_csv(shared_data / "human_pk_lombardo2018.csv").sample(300, random_state=0)
    std = standardize_smiles_batch(d["smiles"].tolist())
    assert std["valid"].all()
    np.testing.assert_array_equal(std["smiles"].to_numpy(), d["smiles"].to_numpy())
    np.testing.assert_array_equal(std["inchikey"].to_numpy(), d["inchikey"].to_numpy())


@pytest.mark.parametrize(
    "smiles",
    [
        "CC(=O)Oc1ccccc1C(=O)[O-].[Na+]",
        "CC[NH+](CC)CC(=O)Nc1c(C)cccc1C.[Cl-]",
        "C[C@H](N)C(=O)O",
        "OC(=O)COCCN1CCN(CC1)C(c1ccccc1)c1ccc(Cl)cc1",
        "C[N+](C)(C)CCOC(C)=O.[Cl-]",
        "[O-][n+]1ccccc1",
    ],
)
def test_standardization_is_idempotent(smiles):
    once = standardize_smiles(smiles)
    twice = standardize_smiles(once.smiles)
    assert once.valid and twice == once
