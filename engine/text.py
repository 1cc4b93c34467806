"""A scenario from TOML text: syntax errors name the line's `section.key`, schema errors every field.

Pure (text in, validated scenario out): the CLI and the explorer read files and call this; the engine uses it
for its own package data (calibration cases).
"""

from __future__ import annotations

import re
import tomllib

from pydantic import ValidationError

from .errors import FieldIssue, ScenarioError, from_validation_error
from .scenario import Scenario


def _toml_location(text: str, message: str) -> str:
    """`section.key` at the line tomllib complains about, where the line shows one."""
    match = re.search(r"line (\d+)", message)
    if not match:
        return ""
    line_no = int(match.group(1))
    section = ""
    lines = text.splitlines()
    for line in lines[:line_no]:
        header = re.match(r"\s*\[+([^\]]+)\]+", line)
        if header:
            section = header.group(1).strip()
    if line_no - 1 < len(lines):
        key = re.match(r"\s*([A-Za-z0-9_.\-\"']+)\s*=", lines[line_no - 1])
        if key:
            name = key.group(1).strip("\"'")
            return f"{section}.{name}" if section else name
    return section


def parse_scenario(text: str, file: str = "<text>") -> tuple[Scenario, dict]:
    """A validated scenario from TOML text, plus any tables the schema does not own (e.g. [published])."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        where = _toml_location(text, str(exc))
        raise ScenarioError([FieldIssue(where, "(unreadable)", f"not valid TOML: {exc}")], file) from None
    extra = {k: data.pop(k) for k in ("published",) if k in data}
    if "schema_version" in data and data["schema_version"] != 1:
        raise ScenarioError(
            [FieldIssue("schema_version", data["schema_version"], "unsupported schema version; allowed: 1")], file
        )
    try:
        return Scenario.model_validate(data), extra
    except ValidationError as exc:
        raise from_validation_error(exc, Scenario, file) from None
