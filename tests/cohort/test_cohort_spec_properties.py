"""Hypothesis: any valid cohort spec gives physiologically possible patients; invalid specs are
rejected with the offending field named."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from insilico.cohort import CohortSpec, load_cohort_spec, sample_cohort
from insilico.cohort.physiology import RENAL_CATEGORY_NAMES
from insilico.cohort.spec import RACE_GROUPS
from insilico.errors import SpecError
from insilico.io.specs import validate_spec

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def fractions(keys):
    """Random fractions over a subset of ``keys`` that sum to 1."""

    @st.composite
    def build(draw):
        chosen = draw(st.lists(st.sampled_from(keys), min_size=1, max_size=len(keys), unique=True))
        w = draw(st.lists(st.integers(1, 20), min_size=len(chosen), max_size=len(chosen)))
        total = sum(w)
        out = {k: x / total for k, x in zip(chosen, w, strict=True)}
        # exact float sum can be off by an ulp; put the rest in the first key
        out[chosen[0]] += 1.0 - sum(out.values())
        return out

    return build()


@st.composite
def valid_specs(draw):
    lo = draw(st.integers(18, 79))
    hi = draw(st.integers(lo, 79))
    data = {
        "kind": "cohort",
        "schema_version": 1,
        "name": "h",
        "age_years": {"min": lo, "max": hi},
    }
    if draw(st.booleans()):
        data["sex_fractions"] = draw(fractions(["F", "M"]))
    if draw(st.booleans()):
        data["race_ethnicity_fractions"] = draw(fractions(list(RACE_GROUPS)))
    if draw(st.booleans()):
        data["renal_category_fractions"] = draw(fractions(list(RENAL_CATEGORY_NAMES)))
    if draw(st.booleans()):
        data["child_pugh_fractions"] = draw(fractions(["none", "A", "B", "C"]))
    if draw(st.booleans()):
        data["albumin_sd_g_per_L"] = draw(st.floats(0.0, 10.0))
    if draw(st.booleans()):
        data["criteria"] = [
            {"field": "bmi_kg_m2", "op": "between", "value": [18.0, draw(st.floats(25.0, 60.0))]}
        ]
    return data


@SETTINGS
@given(data=valid_specs(), seed=st.integers(0, 2**32))
def test_valid_specs_give_possible_patients(data, seed):
    spec = validate_spec(CohortSpec, data)
    df = sample_cohort(spec, 300, seed)
    assert len(df) == 300
    num = df.select_dtypes("number")
    assert np.isfinite(num.to_numpy()).all()
    assert (df.weight_kg > 0).all() and (df.height_cm > 0).all()
    assert df.bmi_kg_m2.between(10, 80).all()
    assert (df.egfr_mL_min_1_73m2 > 0).all() and (df.crcl_mL_per_min > 0).all()
    assert (df.serum_creatinine_mg_dL > 0).all() and (df.albumin_g_per_L > 0).all()
    assert df.age_years.between(data["age_years"]["min"], data["age_years"]["max"]).all()
    if "renal_category_fractions" in data:
        assert set(df.renal_category.unique()) <= set(data["renal_category_fractions"])
    if "sex_fractions" in data:
        assert set(df.sex.unique()) <= set(data["sex_fractions"])


BASE = {"kind": "cohort", "schema_version": 1, "name": "bad"}


@st.composite
def invalid_specs(draw):
    """(spec data, name of the field that must be reported)."""
    kind = draw(st.sampled_from(["sd", "age", "fractions", "renal", "key", "criterion"]))
    if kind == "sd":
        return {**BASE, "albumin_sd_g_per_L": draw(st.floats(-100, -1e-6))}, "albumin_sd_g_per_L"
    if kind == "age":
        lo = draw(st.integers(19, 79))
        return {**BASE, "age_years": {"min": lo, "max": draw(st.integers(18, lo - 1))}}, "age_years"
    if kind == "fractions":
        f = draw(st.floats(0.0, 1.0))
        off = draw(st.one_of(st.floats(0.001, 0.5), st.floats(-0.5, -0.001)))
        if f + off < 0:
            off = -off
        return {**BASE, "sex_fractions": {"F": f, "M": 1.0 - f + off}}, "sex_fractions"
    if kind == "renal":
        return {**BASE, "renal_category_fractions": {"normal": 0.5, "mild": 0.4}}, (
            "renal_category_fractions"
        )
    if kind == "key":
        return {**BASE, draw(st.sampled_from(["weight", "ages", "sex"])): 1}, "weight|ages|sex"
    op = draw(st.sampled_from(["<", "between", "=="]))
    crit = {"field": "sex", "op": op, "value": 1} if op != "==" else {
        "field": "bmi_kg_m2", "op": "==", "value": 30
    }  # fmt: skip
    return {**BASE, "criteria": [crit]}, "criteria"


@SETTINGS
@given(case=invalid_specs())
def test_invalid_specs_rejected_with_field(case):
    data, field = case
    with pytest.raises(SpecError) as e:
        validate_spec(CohortSpec, data)
    import re

    assert re.search(field, e.value.field), (e.value.field, field)


def test_load_errors_name_file_field_value(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("kind: cohort\nschema_version: 1\nsex_fractions: {F: 0.7, M: 0.7}\n")
    with pytest.raises(SpecError) as e:
        load_cohort_spec(p)
    msg = str(e.value)
    assert str(p) in msg and "sex_fractions" in msg and "sum to 1" in msg
    p.write_text("kind: trial\nschema_version: 1\n")
    with pytest.raises(SpecError, match="kind"):
        load_cohort_spec(p)


def test_cohort_spec_nests_in_pydantic_model():
    from insilico.io.specs import FrozenSpec

    class Trial(FrozenSpec):
        cohort: CohortSpec

    t = Trial.model_validate({"cohort": {"name": "inline", "age_years": {"min": 30, "max": 40}}})
    assert t.cohort.age_years.max == 40
    assert Trial.model_validate_json(t.model_dump_json()) == t
    with pytest.raises(SpecError) as e:
        validate_spec(Trial, {"cohort": {"albumin_sd_g_per_L": -1}})
    assert e.value.field == "cohort.albumin_sd_g_per_L"


def test_yaml_round_trip(tmp_path):
    import yaml

    spec = load_cohort_spec(
        Path(__file__).resolve().parents[2] / "cohorts" / "renal_impairment.yaml"
    )
    p = tmp_path / "r.yaml"
    p.write_text(yaml.safe_dump(spec.model_dump()))
    assert load_cohort_spec(p) == spec


@SETTINGS
@given(data=valid_specs())
def test_yaml_round_trip_property(data, tmp_path_factory):
    import yaml

    spec = validate_spec(CohortSpec, data)
    p = tmp_path_factory.mktemp("rt") / "c.yaml"
    p.write_text(yaml.safe_dump(spec.model_dump()))
    assert load_cohort_spec(p) == spec
