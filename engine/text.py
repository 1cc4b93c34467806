"""A scenario from TOML text: syntax errors name the line's `section.key`, schema errors every field.

Pure (text in, validated scenario out): the CLI and the explorer read files and call this; the engine uses it
for its own package data (calibration cases).
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

from pydantic import ValidationError

from .errors import FieldIssue, ScenarioError, from_validation_error
from .scenario import SCHEMA_VERSION, Scenario

# Tables and arrays nested deeper than this are no scenario (the schema's deepest key is four levels down);
# refusing them early keeps every later step (messages, merges, saving) away from Python's recursion limit.
MAX_DEPTH = 32
# A key of more than MAX_DEPTH dotted parts (`a.a.a. ... = 1`, `[a.a.a. ...]`, or inside an inline table):
# tomllib takes time quadratic in the parts (20,000 of them, a 40 kB file: 5.7 s; a 1 MiB file would take
# hours), so a linear scan of the text refuses them before it parses. A part is a bare or quoted key; the
# scan looks where a key can start (a line's start, after `{` or `,`).
_KEY_PART = r"""(?:[A-Za-z0-9_-]+|"[^"\n]*"|'[^'\n]*')"""
_DEEP_KEY = re.compile(r"(?:^|[{,])[ \t]*\[{0,2}[ \t]*(?:" + _KEY_PART + r"[ \t]*\.[ \t]*)" + f"{{{MAX_DEPTH}}}", re.M)


def _toml_location(text: str, message: str) -> str:
    """`section.key` at the line tomllib complains about, where the line shows one."""
    match = re.search(r"line (\d+)", message)
    if not match:
        return ""
    line_no = int(match.group(1))
    section = ""
    lines = text.splitlines()
    for line in lines[:line_no]:
        header = re.match(r"\s*\[+([^\]]{1,200})\]+", line)
        if header:
            section = header.group(1).strip()
    if line_no - 1 < len(lines):
        key = re.match(r"\s*([A-Za-z0-9_.\-\"']{1,200})\s*=", lines[line_no - 1])
        if key:
            name = key.group(1).strip("\"'")
            return f"{section}.{name}" if section else name
    return section


def _line_of(text: str, pattern: str) -> int | None:
    """The first line (1-based) where `pattern` matches, for errors tomllib reports without one."""
    match = re.search(pattern, text)
    return text.count("\n", 0, match.start()) + 1 if match else None


def _unreadable(where: str, message: str) -> ScenarioError:
    return ScenarioError([FieldIssue(where, "(unreadable)", message)])


def loads(text: str) -> dict:
    """TOML text as data; anything unreadable (bad syntax, a number of thousands of digits, nesting deeper
    than a scenario has) raises ScenarioError naming the line and, where known, the key."""
    deep_key = _DEEP_KEY.search(text)
    if deep_key:
        at_line = text.count("\n", 0, deep_key.start()) + 1
        message = f"nested too deeply (at line {at_line}); allowed: at most {MAX_DEPTH} levels of tables and arrays"
        raise _unreadable(_toml_location(text, f"line {at_line}"), message)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _unreadable(_toml_location(text, str(exc)), f"not valid TOML: {exc}") from None
    except ValueError:  # int() refuses more than 4,300 digits
        line = _line_of(text, r"[0-9_]{4300}")
        at = f" (at line {line})" if line else ""
        where = _toml_location(text, at)
        message = f"a number with thousands of digits{at}; allowed: a number in the key's range"
        raise _unreadable(where, message) from None
    except RecursionError:
        line = _line_of(text, r"[\[{]\s*[\[{]\s*[\[{]\s*[\[{]")
        at = f" (at line {line})" if line else ""
        where = _toml_location(text, at)
        raise _unreadable(where, f"nested too deeply{at}; allowed: at most {MAX_DEPTH} levels") from None
    deep = _too_deep(data)
    if deep:
        raise _unreadable(deep, f"nested too deeply; allowed: at most {MAX_DEPTH} levels of tables and arrays")
    return data


def _too_deep(data: Any) -> str:
    """The dotted key of the first value nested deeper than MAX_DEPTH, or '' (iterative: no recursion)."""
    # Each entry keeps its depth and only the first four keys of its path (all the message names): copying
    # whole paths made a chain of 20,000 tables quadratic.
    stack: list[tuple[Any, int, tuple[str, ...]]] = [(data, 0, ())]
    while stack:
        value, depth, head = stack.pop()
        if depth > MAX_DEPTH:
            return ".".join(head) + ". ..."
        if isinstance(value, dict):
            stack.extend((v, depth + 1, head if len(head) == 4 else (*head, str(k))) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, depth + 1, head if len(head) == 4 else (*head, str(i))) for i, v in enumerate(value))
    return ""


def parse_scenario(text: str, file: str = "<text>") -> tuple[Scenario, dict]:
    """A validated scenario from TOML text, plus any tables the schema does not own (e.g. [published])."""
    try:
        data = loads(text)
    except ScenarioError as exc:
        exc.file = file
        raise ScenarioError(exc.issues, file) from None
    return validate_data(data, file)


def validate_data(data: dict, file: str = "<text>") -> tuple[Scenario, dict]:
    """A validated scenario from parsed TOML data (see parse_scenario)."""
    data = dict(data)
    extra = {k: data.pop(k) for k in ("published",) if k in data}
    version = data.get("schema_version", SCHEMA_VERSION)
    if type(version) is not int or version != SCHEMA_VERSION:
        raise ScenarioError(
            [FieldIssue("schema_version", version, f"unsupported schema version; allowed: {SCHEMA_VERSION}")], file
        )
    try:
        return Scenario.model_validate(data), extra
    except ValidationError as exc:
        raise from_validation_error(exc, Scenario, file) from None
