"""The profiler's errors. Each message names the file/model/variant, what was found, and how to fix it.

The CLI catches :class:`ProfilerError` once, prints the message without a traceback and exits 2.
"""

from __future__ import annotations


class ProfilerError(Exception):
    """Base of every error the profiler reports to a user."""


class ManifestError(ProfilerError):
    """A model manifest is malformed or names something that does not exist."""


class VariantError(ProfilerError):
    """A variant could not be built, loaded, evaluated or run (recorded as failed; others go on)."""


class CheckpointError(ProfilerError):
    """A checkpoint belongs to a different manifest or method, or is unreadable."""


class ImportFormatError(ProfilerError):
    """A perf_analyzer or Model Analyzer CSV could not be read into a profile table."""


def first_line(exc: BaseException) -> str:
    """``Type: first line of the message`` (or just ``Type``): one line for a failure record."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__
