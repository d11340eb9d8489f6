"""A small solver-neutral linear model: named variables, named constraints, one objective.

The formulation builds one of these; each backend translates it. Keeping the model neutral lets
CBC, HiGHS and CP-SAT solve exactly the same constraints, and lets a person read it as an LP file.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from planner.plan import SolveStatus


class Sense(str, Enum):
    LE = "<="
    GE = ">="
    EQ = "=="


class VarKind(str, Enum):
    BINARY = "binary"
    CONTINUOUS = "continuous"


@dataclass(frozen=True)
class Variable:
    name: str
    kind: VarKind
    lower: float = 0.0
    upper: float = 1.0
    unit: str = ""  # what one unit of the variable means, for integer scaling (ms, usd_per_hour, ...)


@dataclass(frozen=True)
class Constraint:
    name: str
    terms: tuple[tuple[str, float], ...]
    sense: Sense
    rhs: float


@dataclass(frozen=True)
class LinearModel:
    """A model whose objective and rows name each variable at most once (backends rely on it)."""

    name: str
    variables: tuple[Variable, ...]
    constraints: tuple[Constraint, ...]
    objective: tuple[tuple[str, float], ...]
    maximize: bool


@dataclass(frozen=True)
class Solution:
    """A backend's answer: variable values, whether the optimum is proven, and the gap if known."""

    values: dict[str, float]
    status: SolveStatus
    objective: float | None
    gap: float | None
    solve_time_ms: float
    solver: str
