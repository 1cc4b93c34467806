"""How scenario data combine: `section.key=value` settings, partial presets, and a workload on other hardware.

Pure functions of plain dicts (parsed TOML), so the command line and the explorer apply one rule:

- A setting `a.b.c=value` writes `value` at that path; a table on the way that is not a table yet (such as
  `parallelism = "auto"` under `training.parallelism.tp=8`) becomes one.
- A partial preset holds only some sections. Each section it holds replaces that whole section of the
  scenario it is applied to (keys it leaves out take their defaults, not the old values); sections it does
  not hold come from that scenario unchanged.
- A workload (`--workload W`) is W's [training], [data] and [inference] applied as above, but only the kinds
  of work the target runs: a serving-only scenario (an [inference] and no [training]) takes no training and a
  training-only one takes no serving; a scenario with neither takes both. What is left out is reported.
  [data] (the training's input: bytes per token, dataset size, preprocessing) goes with the training: W's
  own, or the defaults where W has none, never the target's (a text model on a video cluster's hardware
  read its tokens as 768-byte video patches).
"""

from __future__ import annotations

import tomllib
from typing import Any

from .errors import FieldIssue, ScenarioError

HARDWARE_SECTIONS = ("cluster", "network", "storage", "cooling", "facility", "reliability")
WORKLOAD_SECTIONS = ("training", "data", "inference")


def toml_value(raw: str) -> Any:
    """A value as a TOML literal (`512`, `15e12`, `true`, `"x"`, `{ tp = 8 }`); a bare word stays text.
    A literal no scenario can hold (thousands of digits, nesting too deep) is a ScenarioError."""
    from .text import loads

    try:
        tomllib.loads(f"v = {raw}")
    except tomllib.TOMLDecodeError:
        return raw
    except (ValueError, RecursionError):
        pass  # loads() below says what is wrong
    try:
        return loads(f"v = {raw}")["v"]
    except ScenarioError as exc:
        raise ScenarioError([FieldIssue("", raw, exc.issues[0].message)]) from None


def parse_setting(text: str, flag: str = "--set") -> tuple[str, Any]:
    """`section.key=value` -> ("section.key", value)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ScenarioError(
            [FieldIssue("", text, "expected section.key=value, for example cluster.gpu_count=512")], flag
        )
    try:
        return key, toml_value(raw.strip())
    except ScenarioError as exc:
        raise ScenarioError([FieldIssue(key, raw.strip(), exc.issues[0].message)], flag) from None


def with_settings(data: dict, settings: list[tuple[str, Any]]) -> dict:
    """A copy of `data` with each (dotted key, value) written in order (later settings win)."""
    out = _copy(data)
    for key, value in settings:
        *path, last = key.split(".")
        node = out
        for part in path:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[last] = value
    return out


def merged(base: dict, partial: dict) -> dict:
    """`base` with every section `partial` holds replaced whole; top-level keys (name, description) that
    `partial` gives win too."""
    out = _copy(base)
    for key, value in partial.items():
        out[key] = _copy(value) if isinstance(value, dict) else value
    return out


def workload_kinds(data: dict) -> tuple[str, ...]:
    """The kinds of work a scenario runs: ("training",), ("inference",), both, or none."""
    return tuple(k for k in ("training", "inference") if k in data)


def with_workload(base: dict, workload: dict) -> tuple[dict, dict[str, str]]:
    """`base` running `workload`'s work, and {kind: why it was left out} for kinds `base` does not run."""
    offered = workload_kinds(workload)
    if not offered:
        raise ScenarioError([FieldIssue("", "(workload)", "has no [training] or [inference] section to apply")])
    runs = workload_kinds(base) or ("training", "inference")
    only = {"training": "serving-only", "inference": "training-only"}
    partial, skipped = {}, {}
    for kind in offered:
        if kind in runs:
            partial[kind] = workload[kind]
            if kind == "training":
                partial["data"] = workload.get("data", {})
        else:
            skipped[kind] = f"{only[kind]} scenario: it runs no {kind}"
    return merged(base, partial), skipped


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
