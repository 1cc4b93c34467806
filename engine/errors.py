"""Turning validation failures into messages a person can act on.

Every problem becomes one line: `FILE: section.key = VALUE: what is wrong; allowed: ...`.
Pydantic's own wording and locations (with union-member tags such as `ModelSpec` or `literal['auto']`)
never reach the user.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, get_args

from pydantic import BaseModel, ValidationError
from pydantic_core.core_schema import ErrorType

from .catalog import close_matches

# A file may hold thousands of mistakes: this many lines name one each, one more says how many are left.
MAX_ISSUES = 20
# Text echoed from a file (a value, a key) is cut to this many characters.
SHOWN_CHARS = 80
_BUILTIN_ERRORS = frozenset(get_args(ErrorType))


def printable(text: Any, limit: int | None = SHOWN_CHARS) -> str:
    """`text` safe to print on a terminal: control and format characters (ESC, BEL, bidirectional overrides,
    line separators) written as escapes (\\x1b), cut to `limit` characters with the full length said."""
    text = str(text)
    cut = limit is not None and len(text) > limit
    head = text[:limit] if cut else text
    if not head.isprintable():
        head = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in head)
    return head + (f"... ({len(text):,} characters)" if cut else "")


@dataclass(frozen=True)
class FieldIssue:
    key: str
    value: Any
    message: str

    def __str__(self) -> str:
        shown = "(missing)" if self.value is _MISSING else _show(self.value)
        message = printable(self.message, None)
        return f"{printable(self.key)} = {shown}: {message}" if self.key else f"{shown}: {message}"


@dataclass(frozen=True)
class Problem(FieldIssue):
    """An issue that belongs to no single key (a missing file, a goal without a target): its message alone."""

    def __str__(self) -> str:
        return printable(self.message, None)


class ScenarioError(ValueError):
    """A scenario (file or edit) that cannot be used; holds every issue found, each naming its key."""

    def __init__(self, issues: list[Any], file: str | None = None, cap: int | None = MAX_ISSUES):
        self.issues = issues
        self.file = file
        self.cap = cap  # None: every issue gets a line (lines already capped, joined from several files)
        super().__init__(str(self))

    def lines(self) -> list[str]:
        prefix = f"{printable(self.file, 200)}: " if self.file else ""
        cap = len(self.issues) if self.cap is None else self.cap
        shown = [prefix + str(issue) for issue in self.issues[:cap]]
        if len(self.issues) > cap:
            shown.append(f"{prefix}... and {len(self.issues) - cap:,} more problems (the first {cap} shown)")
        return shown

    def __str__(self) -> str:
        return "\n".join(self.lines())


_MISSING = object()


def _show(value: Any, depth: int = 0) -> str:
    """A value as a message shows it: short (long text and deep tables cut), never a terminal escape."""
    if isinstance(value, dict):
        if depth >= 2:
            return "{...}" if value else "{}"
        shown = ", ".join(f"{printable(k, 40)} = {_show(v, depth + 1)}" for k, v in list(value.items())[:4])
        return "{" + shown + ("...}" if len(value) > 4 else "}")
    if isinstance(value, list):
        if depth >= 2:
            return "[...]" if value else "[]"
        shown = ", ".join(_show(v, depth + 1) for v in value[:4])
        return "[" + shown + (", ...]" if len(value) > 4 else "]")
    if isinstance(value, str):
        cut = len(value) > SHOWN_CHARS
        return repr(value[:SHOWN_CHARS]) + (f"... ({len(value):,} characters)" if cut else "")
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int) and abs(value) >= 10**15:
        digits = len(str(abs(value))) if value.bit_length() < 14_000 else int(value.bit_length() * 0.30103) + 1
        return f"(an integer of {digits:,} digits)"
    return printable(value)


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
    given = err.get("input")
    # Types are strict (docs/presets.md): say what was given instead, since it may look right ("64", 1.0).
    quoted = isinstance(given, str)
    what = "true/false is " if isinstance(given, bool) else ("text, " if quoted else "")
    unquote = " (without quotes)" if quoted else ""
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"{what}not a whole number; allowed: an integer such as 8{unquote}"
    if kind in ("float_parsing", "float_type"):
        return f"{what}not a number; allowed: a number such as 1.5{unquote}"
    if kind == "finite_number":
        return "not a finite number; allowed: a number such as 1.5 (inf and nan are not allowed)"
    if kind in ("bool_parsing", "bool_type"):
        what = "text, " if quoted else ("a number, " if isinstance(given, int | float) else "")
        return f"{what}not true/false; allowed: true or false{unquote}"
    if kind in ("string_type", "string_unicode"):
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
    if kind == "frozen_instance":
        return "cannot be changed here"
    # Never pydantic's own wording: a plain statement of the problem.
    return "not valid here; allowed: see this key in docs/presets.md"


def is_ours(err: dict) -> bool:
    """An error raised by the schema's own checks (PydanticCustomError): its message is already ours."""
    return err["type"] not in _BUILTIN_ERRORS


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
    # (Every key's parents in one set: linear in the number of errors, which may be tens of thousands.)
    parents = {key.rsplit(".", i)[0] for key, _, _ in located for i in range(1, key.count(".") + 1)}
    by_key: dict[str, list[tuple[dict, type[BaseModel] | None]]] = {}
    for key, err, holder in located:
        if key in parents and err["type"] in _UNION_MISMATCH:
            continue
        by_key.setdefault(key, []).append((err, holder))

    issues: list[FieldIssue] = []
    for key, errs in by_key.items():
        if len(issues) >= MAX_ISSUES:
            # Only the issues that are shown get a message; the rest are counted.
            issues.append(FieldIssue(key, _MISSING, "(not shown)"))
            continue
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
        elif any(is_ours(e) for e, _ in errs):
            message = next(e for e, _ in errs if is_ours(e))["msg"]
        elif len(errs) > 1 and (choices := _union_choices(holder, name)):
            message = f"not valid here; allowed: {choices}"
        elif len(errs) > 1 and (either := _either(errs)):
            message = either
        else:
            message = _allowed_text(err)
        issues.append(FieldIssue(key, value, message))
    return ScenarioError(issues, file)


_ALTERNATIVES = {
    "int_type": "a whole number such as 8",
    "int_parsing": "a whole number such as 8",
    "int_from_float": "a whole number such as 8",
    "float_type": "a number such as 1.5",
    "float_parsing": "a number such as 1.5",
    "finite_number": "a finite number such as 1.5",
    "bool_type": "true or false",
    "string_type": "a quoted string",
}


def _either(errs: list[tuple[dict, Any]]) -> str:
    """One message for a key whose value fits none of its forms (`'auto'` or a whole number, ...)."""
    alternatives: list[str] = []
    bounds = ""
    for err, _ in errs:
        kind = err["type"]
        if kind == "literal_error":
            alternatives.append(str((err.get("ctx") or {}).get("expected", "")))
        elif kind in _ALTERNATIVES:
            alternatives.append(_ALTERNATIVES[kind])
        elif kind.startswith(("greater_", "less_")):
            bounds = _allowed_text(err).split("allowed: ", 1)[1]
    alternatives = [a for a in dict.fromkeys(alternatives) if a]
    if not alternatives:
        return ""
    given = errs[0][0].get("input")
    what = "true/false is " if isinstance(given, bool) else ("text, " if isinstance(given, str) else "")
    if bounds:
        return f"out of range; allowed: {bounds}, or {' or '.join(a for a in alternatives if 'number' not in a)}"
    unquote = " (without quotes)" if isinstance(given, str) and any("number" in a for a in alternatives) else ""
    return f"{what}not valid here; allowed: {' or '.join(alternatives)}{unquote}"


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
