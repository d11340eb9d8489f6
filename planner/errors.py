"""The error hierarchy. Every message names the file/stage/field, what was found, and how to fix it.

The CLI catches :class:`PipeplanError` once, prints its message without a traceback and exits 2.
"""

from __future__ import annotations


class PipeplanError(Exception):
    """Base of every error pipeplan reports to a user."""


class SpecError(PipeplanError):
    """A pipeline spec or hardware catalog is malformed or inconsistent."""


class ProfileError(PipeplanError):
    """A profile table is malformed, incomplete or inconsistent with the spec."""


class InputFileError(PipeplanError):
    """An input file is missing or unreadable."""


class TraceError(PipeplanError):
    """An arrival trace is malformed."""


class InfeasibleError(PipeplanError):
    """No configuration meets the constraints; the message says which binds and what would work."""


class DeployError(PipeplanError):
    """An engine could not be started, changed or stopped, or a load test could not run (says what to do)."""


class SolverError(PipeplanError):
    """The solver failed, or its answer disagrees with the independent re-check."""


class EmitError(PipeplanError):
    """A plan cannot be turned into an engine's deployment files (bad plan, missing artifact or setting)."""
