"""Rule of two and per-patient DILI probability (insilico.endpoints.liver)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from insilico.endpoints.liver import (
    RULE_OF_TWO_DOSE_MG,
    RULE_OF_TWO_LOGP,
    LiverRiskModel,
    dili_probability,
    rule_of_two,
)
from insilico.endpoints.safety import draw_events
from insilico.errors import SpecError


def test_thresholds_are_chen_2013():
    assert (RULE_OF_TWO_DOSE_MG, RULE_OF_TWO_LOGP) == (100.0, 3.0)


def test_rule_of_two_boundaries_inclusive_and_nan():
    dose = [100.0, 99.9, 100.0, 1000.0, np.nan, 100.0]
    logp = [3.0, 5.0, 2.99, 3.5, 4.0, np.nan]
    np.testing.assert_array_equal(rule_of_two(dose, logp), [True, False, False, True, False, False])


# Illustrative classification (not a transcription of Chen et al.'s table): usual adult daily
# doses from the labels and RDKit Crippen logP of the structure, as the platform computes it.
RO2_EXAMPLES = [
    # name, SMILES, daily dose mg, expected
    ("troglitazone", "Cc1c(C)c2OC(C)(COc3ccc(CC4SC(=O)NC4=O)cc3)CCc2c(C)c1O", 400.0, True),
    ("ketoconazole", "CC(=O)N1CCN(c2ccc(OCC3COC(Cn4ccnc4)(c4ccc(Cl)cc4Cl)O3)cc2)CC1", 400.0, True),
    ("diclofenac", "OC(=O)Cc1ccccc1Nc1c(Cl)cccc1Cl", 150.0, True),
    ("acetaminophen", "CC(=O)Nc1ccc(O)cc1", 4000.0, False),  # low logP: a known RO2 miss
    ("simvastatin", "CCC(C)(C)C(=O)OC1CC(C)C=C2C=CC(C)C(CCC3CC(O)CC(=O)O3)C12", 40.0, False),
    ("metformin", "CN(C)C(=N)NC(=N)N", 2000.0, False),
    ("atenolol", "CC(C)NCC(O)COc1ccc(CC(N)=O)cc1", 100.0, False),
]


@pytest.mark.parametrize(("name", "smiles", "dose", "expected"), RO2_EXAMPLES)
def test_rule_of_two_examples(name, smiles, dose, expected):
    from rdkit import Chem
    from rdkit.Chem import Crippen

    logp = Crippen.MolLogP(Chem.MolFromSmiles(smiles))
    assert bool(rule_of_two(dose, logp)) is expected, (name, logp)


def test_placebo_is_background_and_closed_form():
    m = LiverRiskModel()
    np.testing.assert_array_equal(dili_probability(0.0, 5.0, 3, 1.0), m.background_incidence)
    np.testing.assert_array_equal(dili_probability(200.0, 5.0, 3, 0.0), m.background_incidence)
    # rule of two positive, 1 alert, 200 mg/day, exposure 1.5 x typical
    odds = 0.001 / 0.999 * 3.89 * 2.0 * (200 / 100) * 1.5
    expected = 1 - (1 - 0.010) * (1 - odds / (1 + odds))
    np.testing.assert_allclose(dili_probability(200.0, 3.5, 1, 1.5), expected, rtol=1e-12)


def test_stated_calibration_against_llanos_2010():
    # alert-free, rule-of-two negative at 100 mg/day: ~ placebo (Llanos: low-risk 10/1000)
    assert dili_probability(100.0, 1.0, 0, 1.0) < 0.0115
    # rule-of-two positive at 100 mg/day: between placebo 10/1000 and about twice the 17/1000
    # median of high/medium-risk hepatotoxic drugs
    assert 0.010 < dili_probability(100.0, 4.0, 0, 1.0) < 0.034


def test_monotone_in_dose_exposure_and_alerts():
    dose = np.linspace(0.0, 2000.0, 401)
    p = dili_probability(dose, 4.0, 1, 1.0)
    assert np.all(np.diff(p) > 0)  # strictly, including the step at 100 mg/day
    p_low = dili_probability(dose, 1.0, 0, 1.0)
    assert np.all(np.diff(p_low) > 0)
    ratio = np.geomspace(0.05, 20.0, 200)
    assert np.all(np.diff(dili_probability(150.0, 3.2, 2, ratio)) > 0)
    k = dili_probability(150.0, 3.2, np.arange(6), 1.0)
    assert np.all(np.diff(k[:4]) > 0)
    np.testing.assert_array_equal(k[3:], k[3])  # capped at max_alerts_counted = 3
    assert np.all(dili_probability(150.0, 4.0, 0, 1.0) > dili_probability(150.0, 2.0, 0, 1.0))


@settings(deadline=None, max_examples=80)
@given(
    dose=st.floats(0.0, 1e4),
    logp=st.floats(-3.0, 8.0),
    n=st.integers(0, 10),
    ratio=st.floats(0.0, 1e3),
)
def test_probability_bounds(dose, logp, n, ratio):
    p = float(dili_probability(dose, logp, n, ratio))
    assert 0.010 <= p < 1.0


def test_nan_and_validation():
    p = dili_probability([100.0, np.nan], [np.nan, 3.0], 0, 1.0)
    assert np.isnan(p).all()
    # no drug reaches the patient: background even with unknown dose / logP (placebo arm)
    q = dili_probability([np.nan, 0.0], [0.0, np.nan], 0, [0.0, np.nan])
    np.testing.assert_array_equal(q, [0.010, 0.010])
    with pytest.raises(SpecError):
        dili_probability(-1.0, 3.0, 0, 1.0)
    with pytest.raises(SpecError):
        dili_probability(100.0, 3.0, 0, -0.5)
    with pytest.raises(SpecError):
        LiverRiskModel(background_incidence=1.5)
    with pytest.raises(SpecError):
        LiverRiskModel(odds_ratio_per_alert=0.0)


def test_per_patient_incidence_vectorized_and_seeded():
    rng = np.random.default_rng(7)
    n = 100_000
    ratio = rng.lognormal(0.0, 0.4, n)  # AUC / typical AUC
    p = dili_probability(300.0, 4.2, 2, ratio)
    assert p.shape == (n,)
    events = draw_events(p, rng.random(n))
    se = np.sqrt(p.mean() * (1 - p.mean()) / n)
    assert abs(events.mean() - p.mean()) < 4 * se
    # patients with higher exposure have higher risk
    hi, lo = ratio > np.median(ratio), ratio <= np.median(ratio)
    assert p[hi].mean() > p[lo].mean()


def test_dili_exposure_ratio_of_iv_dosing_ignores_oral_bioavailability():
    """A typical twin given the drug IV has the typical exposure (ratio 1), whatever the
    compound's oral F; the same twin given it orally at F has ratio 1 too."""
    from insilico.pk.regimen import parse_regimen as r
    from insilico.trial.context import Arm
    from insilico.trial.outcomes import _bioavailable_fraction

    iv = Arm(0, "iv", "x", "iv", r("100 mg IV over 1 h q24h x7"), typical={"f_bio": 0.5})
    po = Arm(1, "po", "x", "po", r("100 mg PO q24h x7"), typical={"f_bio": 0.5})
    mixed = Arm(
        2, "mix", "x", "mix", r("100 mg IV once then 100 mg PO q24h x1"), typical={"f_bio": 0.5}
    )
    assert _bioavailable_fraction(iv) == 1.0
    assert _bioavailable_fraction(po) == 0.5
    assert _bioavailable_fraction(mixed) == pytest.approx(0.75)
