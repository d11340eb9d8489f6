"""File helpers every pipeplan package shares: the file-model base, the strict YAML loader, one
pydantic-error formatter, and (re-exported from profiler.atomic) the atomic writers.

They live at the bottom of the house, in ``profiler`` (which imports nothing of ``planner``),
because both packages write files and validate file models, and the planner may import the
profiler's light modules while the profiler never imports the planner. Only the standard library,
PyYAML and pydantic are imported here.

- :class:`OutputSet` / :func:`outputs`, :func:`atomic_target`, :func:`atomic_folder`: see
  profiler.atomic (standard library only, so a command that reads no file model need not import
  pydantic to write its outputs).
- :func:`format_validation_error`: one paragraph per pydantic ValidationError of a file model:
  the file, the field, what was found, how to fix it (pipeline specs and hardware catalogs in
  ``planner.io``, the model manifest in ``profiler.manifest``).
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from profiler.atomic import (FOLDER_MARKER, STDOUT, OutputPathError, OutputSet, atomic_folder,  # noqa: F401
                             atomic_target, outputs)  # re-exported: their home is profiler.atomic

# The discriminator of every tagged union in the file formats (objective kinds, variant sources).
# pydantic puts the chosen tag in an error's location; it is not a key the user wrote.
_TAG = "kind"


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """Every pydantic model class inside an annotation (Optional, tuple, Union, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _resolve(model: type[BaseModel], loc: tuple) -> tuple[tuple, type[BaseModel] | None]:
    """``loc`` without tagged-union tags, and the model class owning its last key (None if unclear)."""
    kept: list[Any] = []
    candidates = [model]
    owner: type[BaseModel] | None = model
    for part in loc:
        if isinstance(part, int):
            kept.append(part)
            continue
        # Right after a tagged-union field pydantic's location names the tag: it picks the member.
        tagged = [m for m in candidates if _TAG in m.model_fields
                  and part in typing.get_args(m.model_fields[_TAG].annotation)] if len(candidates) > 1 else []
        if tagged:
            candidates = tagged
            continue
        kept.append(part)
        owner = candidates[0] if len(candidates) == 1 else None
        candidates = [inner for m in candidates if part in m.model_fields
                      for inner in _models_in(m.model_fields[part].annotation)]
    return tuple(kept), owner


def _describe_loc(loc: tuple, data: Any) -> str:
    """A location as the user wrote it, list items with their ``name``: ``stages[1] ('ocr').fanout``."""
    parts: list[str] = []
    node = data
    for part in loc:
        if isinstance(part, int):
            name = node[part].get("name") if isinstance(node, list) and part < len(node) and isinstance(node[part], dict) else None
            parts[-1] = f"{parts[-1]}[{part}]" + (f" ('{name}')" if name else "")
        else:
            parts.append(str(part))
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            node = None
    return ".".join(parts) if parts else "(top level)"


def format_validation_error(source: str | Path, exc: ValidationError, model: type[BaseModel], data: Any) -> str:
    """One paragraph: file, field, what was found, how to fix it (unknown keys list the allowed ones)."""
    messages = []
    for err in exc.errors():
        loc, owner = _resolve(model, tuple(err["loc"]))
        where = _describe_loc(loc, data)
        found = err.get("input")
        if err["type"] == "extra_forbidden":
            allowed = sorted(owner.model_fields) if owner else None
            hint = f"allowed keys here: {allowed}" if allowed else "check the spelling against docs/formats.md"
            messages.append(f"field '{where}': unknown key; {hint}.")
        elif err["type"] == "missing":
            messages.append(f"field '{where}': required but missing; add it (see docs/formats.md).")
        else:
            text = err["msg"].removeprefix("Value error, ").rstrip(".")
            if isinstance(found, (dict, list)):
                prefix = "" if where == "(top level)" else f"field '{where}': "
                messages.append(f"{prefix}{text}.")
            else:
                messages.append(f"field '{where}': found {found!r}; {text}.")
    return f"{source}: " + " ".join(messages)


class FileModel(BaseModel):
    """Base of every validated file model (specs, catalogs, manifests): frozen, and an unknown key
    is an error naming the field (a typo in a YAML file must never pass silently)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# Longer integers are not numbers anyone means (and Python refuses to parse > 4300 digits).
MAX_YAML_INT_DIGITS = 30


class StrictYamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses duplicate keys (YAML says they are an error; PyYAML keeps
    the last) and integers of more than MAX_YAML_INT_DIGITS digits."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                try:
                    hash(key)
                except TypeError:
                    continue  # reported by the base class
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r} (first at line {seen[key].line + 1}); keep one",
                        key_node.start_mark)
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node):
        text = str(node.value).replace("_", "").lstrip("+-")
        if len(text) > MAX_YAML_INT_DIGITS:
            raise yaml.constructor.ConstructorError(
                None, None, f"an integer of {len(text)} digits; numbers here have at most {MAX_YAML_INT_DIGITS}",
                node.start_mark)
        return super().construct_yaml_int(node)


StrictYamlLoader.add_constructor("tag:yaml.org,2002:int", StrictYamlLoader.construct_yaml_int)
