"""The file conventions every pipeplan package shares: strict reading, atomic writing.

A package of its own, below both ``profiler`` (which measures and never imports ``planner``) and
``planner``: both read validated YAML file models and both write outputs, and neither may own what
the other needs. It imports only the standard library, PyYAML and pydantic.

- :mod:`pipeplan_files.read`: :class:`FileModel` (frozen, unknown keys refused), the strict YAML
  loader (duplicate keys and absurd integers refused) and :func:`format_validation_error` (one
  paragraph per pydantic error: the file, the field, what was found, how to fix it).
- :mod:`pipeplan_files.write`: :class:`OutputSet` / :func:`outputs` (every output of one command,
  checked up front, staged beside its target and renamed together at the end: all or none; ``-``
  is standard output), :func:`atomic_target` (one file; the profiler's caches) and
  :func:`atomic_folder` (a whole folder replaced at once: emitted configs, reports).
- :mod:`pipeplan_files.errors`: :class:`FileError`, the base of the errors these raise; the CLI's
  one error boundary reports it like pipeplan's and the profiler's own errors (exit 2).
"""
