"""Packages whose public names are imported on first use (planner.lazy): every listed name resolves to
the object its submodule defines, and a name not listed is an AttributeError."""

from __future__ import annotations

import importlib

import pytest

LAZY_PACKAGES = ("planner.tuner", "planner.emit")


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_every_public_name_resolves_to_its_submodules_object(package):
    module = importlib.import_module(package)
    for name in module.__all__:
        value = getattr(module, name)
        home = module._EXPORTS.get(name)
        if home is not None:
            assert value is getattr(importlib.import_module(home), name)
        assert name in dir(module)


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_an_unlisted_name_is_an_attribute_error(package):
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        getattr(importlib.import_module(package), "not_a_name")
