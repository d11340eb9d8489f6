"""A package's public names, imported from their submodules on first use (PEP 562).

A package whose ``__init__`` imports every submodule makes any ``import pkg.small_module`` pay for
all of them: importing ``planner.tuner.settings`` for an enum would load the ILP stack and scipy.
With :func:`lazy_exports` the ``__init__`` names each public name's submodule instead; the first
``pkg.Name`` (or ``from pkg import Name``) imports that submodule and caches the value in the
package, so later look-ups cost nothing. Nothing is hidden: an error inside the submodule is raised
at that first use, a name the table does not list is an ``AttributeError``, and
tests/test_lazy_exports.py resolves every listed name.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping


def lazy_exports(namespace: dict[str, Any], exports: Mapping[str, str]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``(__getattr__, __dir__)`` of the package whose globals are ``namespace``.

    ``exports`` maps each public name to the submodule (absolute name) that defines it.
    """
    package = namespace["__name__"]

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
