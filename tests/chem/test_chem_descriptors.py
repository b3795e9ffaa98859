"""Descriptors against published reference values; ionization classes; fingerprints; SVG."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from insilico.chem.descriptors import (
    DESCRIPTOR_COLUMNS,
    compute_descriptors,
    depict_svg,
    featurize,
    morgan_counts,
    write_features,
)

ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"
CAFFEINE = "Cn1c(=O)c2c(ncn2C)n(C)c1=O"


def test_molecular_weight_reference_values():
    # Average molar masses from PubChem (aspirin CID 2244: 180.16; caffeine CID 2519: 194.19;
    # ibuprofen CID 3672: 206.28 g/mol), rounded to 0.01 there, hence the 0.01 tolerance.
    d = compute_descriptors([ASPIRIN, CAFFEINE, "CC(C)Cc1ccc(cc1)C(C)C(=O)O"])
    np.testing.assert_allclose(d["mw_g_per_mol"], [180.16, 194.19, 206.28], atol=0.01)


def test_aspirin_descriptor_reference_values():
    d = compute_descriptors([ASPIRIN]).iloc[0]
    # Ertl TPSA of aspirin 63.6 Å2 (PubChem), one H-bond donor, 13 heavy atoms,
    # 9 carbons of which 1 (the acetyl methyl) is sp3
    assert d["tpsa_A2"] == pytest.approx(63.6, abs=0.05)
    assert d["hbd"] == 1
    assert d["heavy_atoms"] == 13
    assert d["aromatic_rings"] == 1
    assert d["fraction_csp3"] == pytest.approx(1 / 9)
    assert d["formal_charge"] == 0
    # Crippen logP of aspirin: 1.31 (Wildman & Crippen atom contributions, RDKit 1.3101)
    assert d["clogp"] == pytest.approx(1.31, abs=0.01)


@pytest.mark.parametrize(
    ("name", "smiles", "cls"),
    [
        ("ibuprofen", "CC(C)Cc1ccc(cc1)C(C)C(=O)O", "acid"),
        ("diclofenac", "OC(=O)Cc1ccccc1Nc1c(Cl)cccc1Cl", "acid"),  # aniline N is not a base
        ("losartan", "CCCCc1nc(Cl)c(CO)n1Cc1ccc(cc1)-c1ccccc1-c1nn[nH]n1", "acid"),  # tetrazole
        ("propranolol", "CC(C)NCC(O)COc1cccc2ccccc12", "base"),
        ("metformin", "CN(C)C(=N)NC(=N)N", "base"),
        ("imipramine", "CN(C)CCCN1c2ccccc2CCc2ccccc21", "base"),
        ("caffeine", CAFFEINE, "neutral"),
        ("diazepam", "CN1C(=O)CN=C(c2ccccc2)c2cc(Cl)ccc21", "neutral"),
        ("carbamazepine", "NC(=O)N1c2ccccc2C=Cc2ccccc21", "neutral"),
        ("cetirizine", "OC(=O)COCCN1CCN(CC1)C(c1ccccc1)c1ccc(Cl)cc1", "zwitterion"),
        ("levofloxacin", "C[C@H]1COc2c(N3CCN(C)CC3)c(F)cc3c(=O)c(C(=O)O)cn1c23", "zwitterion"),
    ],
)
def test_ionization_class(name, smiles, cls):
    assert compute_descriptors([smiles])["ionization_class"].iloc[0] == cls, name


def test_invalid_smiles_give_nan_rows_not_errors():
    d = compute_descriptors(["CCO", "C1CC", ""])
    assert list(d.columns) == list(DESCRIPTOR_COLUMNS)
    assert np.isfinite(d["mw_g_per_mol"].iloc[0])
    assert d["mw_g_per_mol"].iloc[1:].isna().all()
    assert d["hbd"].iloc[1:].isna().all()
    assert d["ionization_class"].tolist() == ["neutral", "", ""]


def test_morgan_counts():
    fp = morgan_counts([ASPIRIN, ASPIRIN, CAFFEINE, "not a smiles"], fp_size=1024)
    assert fp.shape == (4, 1024) and fp.dtype == np.uint32
    np.testing.assert_array_equal(fp[0], fp[1])
    assert (fp[0] != fp[2]).any()
    assert fp[3].sum() == 0
    # radius 0 environments alone: one per heavy atom
    fp0 = morgan_counts([ASPIRIN], radius=0, fp_size=2048)
    assert fp0.sum() == 13


def test_depict_svg():
    svg = depict_svg(CAFFEINE)
    assert "<svg" in svg and svg.rstrip().endswith("</svg>")
    bad = depict_svg("C1CC")
    assert "<svg" in bad and "unclosed ring" in bad


def test_featurize_keeps_columns_and_marks_invalid():
    df = pd.DataFrame({"id": ["a", "b"], "smiles": [ASPIRIN + ".[Na+]", "CC(C"], "x": [1, 2]})
    out = featurize(df, fp_size=64)
    assert out["id"].tolist() == ["a", "b"] and out["x"].tolist() == [1, 2]
    assert out["valid"].tolist() == [True, False]
    assert out.loc[0, "smiles"] == ASPIRIN
    assert out.loc[1, "error"].startswith("unparsable SMILES at position")
    assert [c for c in out.columns if c.startswith("morgan_")] == [
        f"morgan_{i:04d}" for i in range(64)
    ]
    assert out.loc[1, [f"morgan_{i:04d}" for i in range(64)]].sum() == 0
    one = featurize(CAFFEINE, fp_size=0)
    assert len(one) == 1 and one.loc[0, "mw_g_per_mol"] == pytest.approx(194.19, abs=0.01)


def test_write_features_round_trip(tmp_path):
    src = tmp_path / "c.csv"
    src.write_text(f"id,name,smiles\nA,aspirin,{ASPIRIN}\nB,broken,C1CC\n")
    out = tmp_path / "sub" / "f.parquet"
    table = write_features(src, out, fp_size=128)
    back = pd.read_parquet(out)
    assert len(back) == 2 and back["valid"].tolist() == [True, False]
    assert back.loc[0, "mw_g_per_mol"] == pytest.approx(180.16, abs=0.01)
    assert list(back.columns) == list(table.columns)
