"""The registry of emitters: each :class:`~planner.emit.EmitTarget` and the engine module's ``emit``."""

from __future__ import annotations

from typing import Callable

from planner.emit import EmitTarget, k8s, kserve, ray_serve, seldon, triton
from planner.emit.base import EmitInputs, EmitResult

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
