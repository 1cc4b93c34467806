"""Scenario files: reading presets with messages that name the file and key, and saving them safely.

Saving writes a temporary file beside the target, flushes it to disk and renames it over the target, so a
crash or a full disk never leaves a half-written preset; an existing file is only replaced when the caller
says so (the explorer asks first).
"""

from __future__ import annotations

import os
import tempfile
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import tomli_w
from whatif.engine.calibration import Case, load_cases
from whatif.engine.errors import FieldIssue, ScenarioError
from whatif.engine.scenario import Scenario
from whatif.engine.text import parse_scenario

HEADER = "# whatif scenario (schema_version 1). Keys and units: docs/presets.md\n"


def load_scenario(path: str | os.PathLike | Traversable) -> Scenario:
    return load_scenario_with_extra(path)[0]


def load_scenario_with_extra(path: str | os.PathLike | Traversable) -> tuple[Scenario, dict]:
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8") if isinstance(path, Traversable) else Path(path).read_text("utf-8")
    except FileNotFoundError:
        raise ScenarioError([FieldIssue("", name, "no such file")], name) from None
    except IsADirectoryError:
        raise ScenarioError([FieldIssue("", name, "is a directory, not a .toml file")], name) from None
    except UnicodeDecodeError:
        raise ScenarioError([FieldIssue("", name, "not a text file (expected UTF-8 TOML)")], name) from None
    except OSError as exc:
        raise ScenarioError([FieldIssue("", name, f"cannot be read: {exc.strerror}")], name) from None
    return parse_scenario(text, name)


def scenario_to_toml(scenario: Scenario) -> str:
    data: dict[str, Any] = scenario.model_dump(mode="json", exclude_none=True)
    return HEADER + tomli_w.dumps(data)


def save_scenario(scenario: Scenario, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write atomically; raise FileExistsError if `path` exists and `overwrite` is False."""
    target = Path(path)
    if target.exists() and not overwrite:
        raise FileExistsError(str(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    text = scenario_to_toml(scenario)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def shipped_presets() -> dict[str, Traversable]:
    """Presets shipped with the package, by file stem, sorted."""
    folder = files("whatif.presets")
    found = {p.name[:-5]: p for p in folder.iterdir() if p.name.endswith(".toml")}
    return dict(sorted(found.items()))


def user_presets_dir() -> Path:
    """Where the user's own presets live: $WHATIF_HOME/presets, else $XDG_CONFIG_HOME/whatif/presets."""
    home = os.environ.get("WHATIF_HOME")
    if home:
        return Path(home) / "presets"
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "whatif" / "presets"


def user_presets() -> dict[str, Path]:
    folder = user_presets_dir()
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.glob("*.toml"))}


def calibration_cases() -> list[tuple[Case, Scenario]]:
    """The published runs shipped with the engine (engine/calibration/cases in the checkout)."""
    return load_cases()
