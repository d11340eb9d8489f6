"""Emitters: a Plan (with its variants' files and the deploy settings) -> an engine's deployment files.

Each engine has one module with a pure ``emit(EmitInputs) -> EmitResult``; :data:`EMITTERS`
(planner.emit.registry) maps the closed set of targets to them. Emitters know the Plan, never the ILP.
:class:`EmitTarget` is defined here, with no import, so that the CLI can offer the targets without
loading the emitters; the other public names are imported from their modules on first use.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING

from planner.lazy import lazy_exports


class EmitTarget(str, Enum):
    RAY_SERVE = "ray-serve"
    TRITON = "triton"
    KSERVE = "kserve"
    SELDON = "seldon"
    K8S = "k8s"
    ALL = "all"


_EXPORTS = {
    **dict.fromkeys(["EMITTERS", "emit", "targets"], "planner.emit.registry"),
    **dict.fromkeys(["EmitInputs", "EmitResult"], "planner.emit.base"),
}
__all__ = sorted(["EmitTarget", *_EXPORTS])
__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)

if TYPE_CHECKING:  # what type checkers and editors see
    from planner.emit.base import EmitInputs, EmitResult
    from planner.emit.registry import EMITTERS, emit, targets
