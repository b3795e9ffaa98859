"""The examples in insilico's docstrings run and print what they show."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import insilico


def _modules_with_examples() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(insilico.__path__, "insilico."):
        if info.name.split(".")[-1].startswith("_fused_generated"):
            continue
        spec = importlib.util.find_spec(info.name)
        origin = spec.origin if spec else None
        if origin and origin.endswith(".py"):
            with open(origin, encoding="utf-8") as f:
                if ">>>" in f.read():
                    names.append(info.name)
    return names


MODULES = _modules_with_examples()


def test_the_package_has_examples_to_check():
    assert len(MODULES) >= 8, MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testmod(module, optionflags=flags, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
