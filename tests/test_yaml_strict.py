"""Every YAML spec (trial, cohort, model; files and the app's text) is read strictly."""

from __future__ import annotations

import pytest

from insilico.errors import SpecError
from insilico.io.specs import parse_yaml, read_yaml
from insilico.trial.spec import load_trial_spec

BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
"""


def test_alias_bomb_is_refused_without_expanding_it():
    with pytest.raises(SpecError, match="anchors and aliases"):
        parse_yaml(BOMB, "bomb.yaml")


def test_duplicate_key_is_refused_with_its_path_and_line(tmp_path):
    path = tmp_path / "trial.yaml"
    path.write_text("kind: trial\nschema_version: 1\nseed: 1\nseed: 2\n")
    with pytest.raises(SpecError) as err:
        load_trial_spec(path)
    assert err.value.field == "seed" and "line 4" in err.value.allowed
    assert str(path) in str(err.value)


def test_duplicate_nested_key_names_the_key_path():
    with pytest.raises(SpecError, match=r"iiv\.cv\.cl_L_per_h"):
        parse_yaml("iiv:\n  cv:\n    cl_L_per_h: 0.3\n    cl_L_per_h: 0.4\n")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("kind: trial\nname: caf\xe9\n".encode("latin-1"), "UTF-8"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "UTF-8"),
        (b"kind: trial\x00\n", "NUL"),
        (b"kind: [trial\n", "line"),
        (b"- a\n- b\n", "mapping"),
    ],
)
def test_unreadable_files_are_one_line_errors(tmp_path, content, needle):
    path = tmp_path / "spec.yaml"
    path.write_bytes(content)
    with pytest.raises(SpecError, match=needle) as err:
        read_yaml(path)
    assert "\n" not in str(err.value)


def test_iiv_on_an_unknown_parameter_is_refused_with_the_right_spelling():
    from insilico.trial.examples import small_trial
    from insilico.trial.spec import trial_spec_from_dict

    data = small_trial(n_patients=5)
    data["iiv"] = {"cv": {"cl_l_per_h": 0.3}}
    with pytest.raises(SpecError, match=r"iiv\.cv\.cl_l_per_h.*did you mean 'cl_L_per_h'"):
        trial_spec_from_dict(data)


@pytest.mark.parametrize("value", [True, 1.5, "100"])
def test_n_patients_must_be_an_integer(value):
    from insilico.trial.examples import small_trial
    from insilico.trial.spec import trial_spec_from_dict

    data = small_trial(n_patients=5)
    data["n_patients"] = value
    with pytest.raises(SpecError, match="n_patients"):
        trial_spec_from_dict(data)
