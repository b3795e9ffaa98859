"""Phenotype -> clearance multiplier and Child-Pugh effects."""

import numpy as np
import pytest

from insilico.cohort.hepatic import fu_with_albumin, hepatic_impairment_effects
from insilico.cohort.pgx import ACTIVITY_RATIO, phenotype_cl_multiplier
from insilico.errors import SpecError


def test_cl_multiplier_closed_form():
    ph = np.array(["PM", "IM", "NM", "UM"])
    m = phenotype_cl_multiplier(ph, fm=0.8, enzyme="CYP2D6")
    act = np.array([ACTIVITY_RATIO["cyp2d6"][p] for p in ph])
    np.testing.assert_allclose(m, 1 - 0.8 + 0.8 * act)
    assert m[0] == pytest.approx(0.2)  # PM of a no-activity enzyme keeps 1 - fm
    assert m[2] == 1.0
    assert m[3] > 1.0


def test_cl_multiplier_fm_zero_and_order():
    ph = np.array(["PM", "IM", "NM", "RM", "UM"])
    for enzyme in ("cyp2d6", "cyp2c19", "cyp2c9"):
        np.testing.assert_array_equal(phenotype_cl_multiplier(ph, 0.0, enzyme), 1.0)
        m = phenotype_cl_multiplier(ph, 1.0, enzyme)
        assert np.all(np.diff(m) >= 0)  # activity never decreases from PM to UM


def test_cl_multiplier_errors():
    with pytest.raises(SpecError, match="enzyme"):
        phenotype_cl_multiplier(np.array(["NM"]), 0.5, "cyp3a4")
    with pytest.raises(SpecError, match="fm"):
        phenotype_cl_multiplier(np.array(["NM"]), 1.5, "cyp2d6")
    with pytest.raises(SpecError, match="phenotype") as info:
        phenotype_cl_multiplier(np.array(["XX"]), 0.5, "cyp2d6")
    # ``allowed`` is text, as for every SpecError (callers append to it)
    assert info.value.allowed == "one of ['PM', 'IM', 'NM', 'RM', 'UM']"


def test_hepatic_effects():
    eff = hepatic_impairment_effects(np.array(["none", "A", "B", "C"]))
    np.testing.assert_allclose(eff["cl_hepatic_multiplier"], [1.0, 0.5, 1 / 3.5, 0.2])
    assert eff["albumin_ratio"][0] == 1.0
    assert np.all(np.diff(eff["albumin_ratio"]) < 0)
    np.testing.assert_allclose(eff["fu_multiplier"], 1 / eff["albumin_ratio"])
    with pytest.raises(SpecError, match="child_pugh"):
        hepatic_impairment_effects(np.array(["D"]))


def test_fu_with_albumin():
    assert fu_with_albumin(0.1, 1.0) == pytest.approx(0.1)
    # fu 0.01, half the albumin: 1/(1 + 99*0.5) = 0.0198
    assert fu_with_albumin(0.01, 0.5) == pytest.approx(1 / 50.5)
    assert fu_with_albumin(1.0, 0.5) == pytest.approx(1.0)


def test_categorical_and_string_inputs_agree():
    import pandas as pd

    values = ["UM", "PM", "NM", "IM", "RM", "NM"]
    cat = pd.Series(pd.Categorical(values, categories=["UM", "NM", "PM", "IM", "RM", "XX"]))
    for enzyme in ("cyp2d6", "cyp2c19", "cyp2c9"):
        np.testing.assert_array_equal(
            phenotype_cl_multiplier(cat, 0.6, enzyme),
            phenotype_cl_multiplier(np.array(values), 0.6, enzyme),
        )
    with pytest.raises(SpecError, match="XX"):
        phenotype_cl_multiplier(pd.Series(pd.Categorical(["NM", "XX"])), 0.6, "cyp2d6")
    cp = pd.Series(pd.Categorical(["C", "none", "A"]))
    np.testing.assert_allclose(
        hepatic_impairment_effects(cp)["cl_hepatic_multiplier"], [0.2, 1, 0.5]
    )
