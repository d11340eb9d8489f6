"""Emitters: a Plan (with its variants' files and the deploy settings) -> an engine's deployment files.

Each engine has one module with a pure ``emit(EmitInputs) -> EmitResult``; :data:`EMITTERS` maps the
closed set of targets to them. Emitters know the Plan, never the ILP.
"""

from __future__ import annotations

from enum import Enum
from typing import Callable

from planner.emit import k8s, kserve, ray_serve, seldon, triton
from planner.emit.base import EmitInputs, EmitResult


class EmitTarget(str, Enum):
    RAY_SERVE = "ray-serve"
    TRITON = "triton"
    KSERVE = "kserve"
    SELDON = "seldon"
    K8S = "k8s"
    ALL = "all"


EMITTERS: dict[EmitTarget, Callable[[EmitInputs], EmitResult]] = {
    EmitTarget.RAY_SERVE: ray_serve.emit,
    EmitTarget.TRITON: triton.emit,
    EmitTarget.KSERVE: kserve.emit,
    EmitTarget.SELDON: seldon.emit,
    EmitTarget.K8S: k8s.emit,
}


def targets(target: EmitTarget) -> tuple[EmitTarget, ...]:
    """The targets ``target`` stands for (``all``: every engine, in registry order)."""
    return tuple(EMITTERS) if target is EmitTarget.ALL else (target,)


def emit(inputs: EmitInputs, target: EmitTarget) -> tuple[EmitResult, ...]:
    """Run the emitter of each target ``target`` stands for."""
    return tuple(EMITTERS[t](inputs) for t in targets(target))
