"""Docstring examples run as tests."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import phaze

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(phaze.__path__, "phaze.")
    if not m.name.startswith(("phaze._cli", "phaze.__main__"))
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    failures, _ = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert failures == 0, f"{failures} doctest example(s) failed in {name}"
