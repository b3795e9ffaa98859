"""Reactive-metabolite structural alerts (insilico.chem.alerts)."""

from __future__ import annotations

import pytest
from rdkit import Chem

from insilico.chem.alerts import (
    REACTIVE_METABOLITE_ALERTS,
    StructuralAlert,
    alerts_table,
    count_alerts,
    match_alerts,
)
from insilico.errors import CompoundError


def test_catalogue_is_well_formed():
    names = [a.name for a in REACTIVE_METABOLITE_ALERTS]
    assert len(names) == len(set(names)) >= 15
    for a in REACTIVE_METABOLITE_ALERTS:
        assert isinstance(a, StructuralAlert)
        assert Chem.MolFromSmarts(a.smarts) is not None, a.name
        assert "doi:10." in a.source, a.name
        assert a.name == a.name.lower() and " " not in a.name


# Textbook examples, each for the alert its toxicity is attributed to (Stepan et al. 2011;
# Kalgutkar et al. 2005).
POSITIVES = [
    ("acetaminophen", "CC(=O)Nc1ccc(O)cc1", "para_aminophenol"),
    ("phenacetin", "CCOc1ccc(NC(C)=O)cc1", "para_aminophenol"),
    ("furosemide", "NS(=O)(=O)c1cc(C(=O)O)c(NCc2ccco2)cc1Cl", "furan"),
    ("tienilic acid", "OC(=O)COc1ccc(C(=O)c2cccs2)c(Cl)c1Cl", "thiophene"),
    ("nitrobenzene", "O=[N+]([O-])c1ccccc1", "nitroaromatic"),
    ("nitrofurantoin", "O=C1CN(/N=C/c2ccc([N+](=O)[O-])o2)C(=O)N1", "nitroaromatic"),
    ("flutamide", "CC(C)C(=O)Nc1ccc([N+](=O)[O-])c(C(F)(F)F)c1", "nitroaromatic"),
    ("isoniazid", "NNC(=O)c1ccncc1", "hydrazine"),
    ("hydralazine", "NNc1nncc2ccccc12", "hydrazine"),
    ("dapsone", "Nc1ccc(S(=O)(=O)c2ccc(N)cc2)cc1", "aromatic_amine"),
    ("diclofenac", "OC(=O)Cc1ccccc1Nc1c(Cl)cccc1Cl", "diarylamine"),
    ("troglitazone", "Cc1c(C)c2OC(C)(COc3ccc(CC4SC(=O)NC4=O)cc3)CCc2c(C)c1O", "thiazolidinedione"),
    ("sudoxicam", "CN1C(C(=O)Nc2nccs2)=C(O)c2ccccc2S1(=O)=O", "thiazole_2_amino"),
    (
        "trovafloxacin",
        "NC1C2CN(CC12)c1nc2n(-c3ccc(F)cc3F)cc(C(=O)O)c(=O)c2cc1F",
        "cyclopropylamine",
    ),
    ("ethinylestradiol", "C#CC1(O)CCC2C3CCc4cc(O)ccc4C3CCC21C", "terminal_alkyne"),
    ("paroxetine", "Fc1ccc(C2CCNCC2COc2ccc3OCOc3c2)cc1", "methylenedioxyphenyl"),
    ("levodopa", "NC(Cc1ccc(O)c(O)c1)C(=O)O", "catechol"),
    ("hydroquinone", "Oc1ccc(O)cc1", "hydroquinone"),
    ("p-benzoquinone", "O=C1C=CC(=O)C=C1", "quinone"),
    ("propylthiouracil", "CCCc1cc(=O)[nH]c(=S)[nH]1", "thioamide_thiourea"),
    ("acrylamide", "C=CC(N)=O", "michael_acceptor_terminal"),
    ("chlorambucil", "OC(=O)CCCc1ccc(N(CCCl)CCCl)cc1", "alkyl_halide_primary"),
    ("styrene oxide", "C1OC1c1ccccc1", "epoxide_aziridine"),
    ("benzaldehyde", "O=Cc1ccccc1", "aldehyde"),
    ("phenyl isocyanate", "O=C=Nc1ccccc1", "acylating_agent"),
    ("azobenzene", "c1ccc(/N=N/c2ccccc2)cc1", "azo_aromatic"),
]


@pytest.mark.parametrize(("name", "smiles", "alert"), POSITIVES, ids=[p[0] for p in POSITIVES])
def test_alert_fires_on_textbook_example(name, smiles, alert):
    assert alert in match_alerts(smiles)


NEGATIVES = [
    ("ibuprofen", "CC(C)Cc1ccc(C(C)C(=O)O)cc1"),  # carboxylic acids deliberately not alerts
    ("aspirin", "CC(=O)Oc1ccccc1C(=O)O"),
    ("metformin", "CN(C)C(=N)NC(=N)N"),
    ("caffeine", "Cn1cnc2c1c(=O)n(C)c(=O)n2C"),
    ("atenolol", "CC(C)NCC(O)COc1ccc(CC(N)=O)cc1"),
    ("propranolol", "CC(C)NCC(O)COc1cccc2ccccc12"),
    ("metoprolol", "COCCc1ccc(OCC(O)CNC(C)C)cc1"),
    ("ethanol", "CCO"),
]


@pytest.mark.parametrize(("name", "smiles"), NEGATIVES, ids=[n[0] for n in NEGATIVES])
def test_no_alert_on_simple_safe_molecules(name, smiles):
    assert match_alerts(smiles) == []


def test_metabolic_switching_pairs():
    # meloxicam's 5-methyl blocks the thiazole C4-C5 bioactivation of sudoxicam
    meloxicam = "Cc1cnc(NC(=O)C2=C(O)c3ccccc3S(=O)(=O)N2C)s1"
    assert "thiazole_2_amino" not in match_alerts(meloxicam)
    # N-cyclopropyl on the quinolone ring nitrogen (ciprofloxacin) is not a free
    # cyclopropylamine (trovafloxacin)
    cipro = "OC(=O)c1cn(C2CC2)c2cc(N3CCNCC3)c(F)cc2c1=O"
    assert "cyclopropylamine" not in match_alerts(cipro)


def test_mol_input_and_count():
    mol = Chem.MolFromSmiles("O=[N+]([O-])c1ccc(o1)C=O")  # 5-nitrofurfural
    assert match_alerts(mol) == match_alerts("O=[N+]([O-])c1ccc(o1)C=O")
    assert set(match_alerts(mol)) == {"nitroaromatic", "furan", "aldehyde"}
    assert count_alerts(mol) == 3


@pytest.mark.parametrize("bad", ["C1CC", "not a smiles", "", "c1ccccc1N(=O)(=O)=O"])
def test_invalid_smiles_raise_compound_error_naming_value(bad):
    with pytest.raises(CompoundError) as info:
        match_alerts(bad)
    assert repr(bad) in str(info.value)


def test_non_string_input():
    with pytest.raises(CompoundError):
        match_alerts(42)


def test_alerts_table_keeps_going_on_bad_structures():
    rows = alerts_table(["CCO", "C1CC", "NNC(=O)c1ccncc1"])
    assert [r["valid"] for r in rows] == [True, False, True]
    assert rows[0]["n_alerts"] == 0 and rows[1]["n_alerts"] == -1
    assert rows[2]["alerts"] == "hydrazine" and rows[1]["error"]
