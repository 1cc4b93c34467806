"""Turning validation failures into messages a person can act on.

Every problem becomes one line: `FILE: section.key = VALUE: what is wrong; allowed: ...`.
Pydantic's own wording and locations (with union-member tags such as `ModelSpec` or `literal['auto']`)
never reach the user.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from .catalog import close_matches


@dataclass(frozen=True)
class FieldIssue:
    key: str
    value: Any
    message: str

    def __str__(self) -> str:
        shown = "(missing)" if self.value is _MISSING else _show(self.value)
        return f"{self.key} = {shown}: {self.message}" if self.key else f"{shown}: {self.message}"


@dataclass(frozen=True)
class Problem(FieldIssue):
    """An issue that belongs to no single key (a missing file, a goal without a target): its message alone."""

    def __str__(self) -> str:
        return self.message


class ScenarioError(ValueError):
    """A scenario (file or edit) that cannot be used; holds every issue found, each naming its key."""

    def __init__(self, issues: list[FieldIssue], file: str | None = None):
        self.issues = issues
        self.file = file
        super().__init__(str(self))

    def lines(self) -> list[str]:
        prefix = f"{self.file}: " if self.file else ""
        return [prefix + str(issue) for issue in self.issues]

    def __str__(self) -> str:
        return "\n".join(self.lines())


_MISSING = object()


def _show(value: Any) -> str:
    if isinstance(value, dict):
        shown = ", ".join(f"{k} = {_show(v)}" for k, v in list(value.items())[:4])
        return "{" + shown + ("...}" if len(value) > 4 else "}")
    if isinstance(value, str):
        return repr(value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def _model_class(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation such as `Training | None` or `Literal['auto'] | Plan`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_class(arg)
        if found:
            return found
    return None


def _field_path(root: type[BaseModel], loc: tuple) -> tuple[list[str], type[BaseModel] | None]:
    """Field names along `loc`, skipping union-member tags; also the model holding the last field."""
    path, model, holder = [], root, root
    for part in loc:
        if model is not None and isinstance(part, str) and part in model.model_fields:
            path.append(part)
            holder = model
            model = _model_class(model.model_fields[part].annotation)
        elif isinstance(part, int):
            path.append(str(part))
    return path, holder


def _allowed_text(err: dict) -> str:
    kind, ctx = err["type"], err.get("ctx") or {}
    bounds = {
        "greater_than": "more than {gt}",
        "greater_than_equal": "at least {ge}",
        "less_than": "less than {lt}",
        "less_than_equal": "at most {le}",
    }
    if kind in bounds:
        return "out of range; allowed: " + bounds[kind].format(**ctx)
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "not a whole number; allowed: an integer such as 8"
    if kind in ("float_parsing", "float_type"):
        return "not a number; allowed: a number such as 1.5"
    if kind in ("bool_parsing", "bool_type"):
        return "not true/false; allowed: true or false"
    if kind in ("string_type",):
        return "not text; allowed: a quoted string"
    if kind == "literal_error":
        return f"not one of the choices; allowed: {ctx.get('expected', '')}"
    if kind == "string_too_short":
        return "empty; allowed: at least one character"
    if kind == "string_too_long":
        return f"too long; allowed: at most {ctx.get('max_length')} characters"
    if kind == "missing":
        return "required but missing"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return "not a table; allowed: a [section] table"
    return err["msg"]


def _union_choices(holder: type[BaseModel] | None, name: str) -> str | None:
    """For a field typed `Literal[...] | Model` or `str | Model`, describe both forms."""
    if holder is None or name not in holder.model_fields:
        return None
    args = get_args(holder.model_fields[name].annotation)
    literal = [a for a in args if get_args(a) and all(isinstance(x, str) for x in get_args(a))]
    model = _model_class(holder.model_fields[name].annotation)
    if model is None or not (literal or str in args):
        return None
    words = " or ".join(repr(x) for lit in literal for x in get_args(lit)) or "a catalog key"
    return f"{words}, or a table with keys {', '.join(model.model_fields)}"


def from_validation_error(exc: ValidationError, root: type[BaseModel], file: str | None = None) -> ScenarioError:
    located = []
    for err in exc.errors(include_url=False):
        ctx = err.get("ctx") or {}
        loc = tuple(err["loc"]) + ((ctx["field"],) if "field" in ctx else ())
        path, holder = _field_path(root, loc)
        if err["type"] == "extra_forbidden" and loc and isinstance(loc[-1], str) and path[-1:] != [loc[-1]]:
            path.append(loc[-1])  # the unknown key itself is no field of its model
        if "field" in ctx and "." in str(ctx["field"]):
            path = str(ctx["field"]).split(".")
        located.append((".".join(path), err, holder))
    # A value that is a table fails the other members of a union (`'auto' | table`, `key | table`) too;
    # when something inside the table is wrong, that is the message to show, not the union mismatch.
    keys = {key for key, _, _ in located}
    by_key: dict[str, list[tuple[dict, type[BaseModel] | None]]] = {}
    for key, err, holder in located:
        deeper = any(other.startswith(key + ".") for other in keys)
        if deeper and err["type"] in _UNION_MISMATCH:
            continue
        by_key.setdefault(key, []).append((err, holder))

    issues = []
    for key, errs in by_key.items():
        err, holder = errs[0]
        name = key.rsplit(".", 1)[-1]
        value = err.get("input", _MISSING)
        ctx = err.get("ctx") or {}
        if err["type"] == "missing":
            value = _MISSING
        if "field" in ctx and isinstance(value, dict):
            for part in str(ctx["field"]).split("."):
                value = value.get(part, _MISSING) if isinstance(value, dict) else value
        if err["type"] == "extra_forbidden":
            known = list(holder.model_fields) if holder is not None and key.count(".") else []
            section_model = _section_model(root, key)
            if section_model is not None:
                known = list(section_model.model_fields)
            near = close_matches(name, known, n=2)
            hint = f"did you mean {' or '.join(near)}? " if near else ""
            message = f"unknown key; {hint}allowed keys here: {', '.join(known)}"
        elif any(e["type"].startswith("unknown_catalog_key") or e["type"] in _CUSTOM for e, _ in errs):
            custom = next(e for e, _ in errs if e["type"].startswith("unknown_catalog_key") or e["type"] in _CUSTOM)
            message = custom["msg"]
        elif len(errs) > 1 and (choices := _union_choices(holder, name)):
            message = f"not valid here; allowed: {choices}"
        else:
            message = _allowed_text(err)
        issues.append(FieldIssue(key, value, message))
    return ScenarioError(issues, file)


def _section_model(root: type[BaseModel], key: str) -> type[BaseModel] | None:
    """The model that owns the table in which `key` was found (for listing its allowed keys)."""
    parts = key.split(".")[:-1]
    model: type[BaseModel] | None = root
    for part in parts:
        if model is None or part not in model.model_fields:
            return None
        model = _model_class(model.model_fields[part].annotation)
    return model


_UNION_MISMATCH = {"literal_error", "string_type", "model_type", "dict_type", "model_attributes_type"}

_CUSTOM = {
    "too_many_per_node",
    "partial_node",
    "heads_split",
    "kv_heads_split",
    "moe_topk",
    "precision_unsupported",
    "too_many_serving_gpus",
    "moved_key",
    "unknown_price",
}
