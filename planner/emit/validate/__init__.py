"""Offline checks of emitted files with the engines' own tools (the optional 'deploy' extra).

Each checker returns a list of problems (empty = passed) or raises :class:`ValidatorUnavailable`
when its package is missing, so callers (tests, ``pipeplan emit --check``) can say what did not run.
"""

from __future__ import annotations


class ValidatorUnavailable(RuntimeError):
    """The engine package a check needs is not installed (``pip install '.[deploy]'``)."""
