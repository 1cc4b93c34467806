"""Scenario files: finding them by path or preset name, reading them with messages that name the file and
key, and saving them safely without losing what the user wrote.

A reference is a path, `-` (standard input, read once), or a preset name: the user's saved presets first,
then the shipped ones, then the shipped workloads (presets/workloads/). Saving writes a temporary file
beside the target, flushes it to disk and renames it over the target, so a crash or a full disk never
leaves a half-written preset; an existing file is only replaced when the caller says so (the explorer asks
first), and then its comments, key order and layout are kept (tomlkit): only the values that changed are
rewritten. A file that cannot be kept that way is rewritten whole, and says so in its first line.
"""

from __future__ import annotations

import os
import sys
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import tomlkit
from pydantic import ValidationError
from tomlkit.exceptions import ParseError
from whatif.engine.calibration import Case, load_cases
from whatif.engine.catalog import close_matches
from whatif.engine.errors import FieldIssue, Problem, ScenarioError, from_validation_error
from whatif.engine.scenario import Scenario
from whatif.engine.text import parse_scenario

HEADER = "# whatif scenario (schema_version 1). Keys and units: docs/presets.md\n"
REWRITTEN = "# whatif rewrote this file whole (its previous text could not be kept). Keys and units: docs/presets.md\n"
STDIN = "-"


@dataclass(frozen=True)
class Loaded:
    """A scenario as read: validated, plus the tables the file itself holds (partial presets and merges
    need to know which sections were written) and the label messages use for it."""

    scenario: Scenario
    data: dict
    label: str
    text: str


def load_scenario(path: str | os.PathLike | Traversable) -> Scenario:
    return load_scenario_with_extra(path)[0]


def _read_text(path: str | os.PathLike | Traversable) -> str:
    name = str(path)
    try:
        return path.read_text(encoding="utf-8") if isinstance(path, Traversable) else Path(path).read_text("utf-8")
    except FileNotFoundError:
        raise ScenarioError([FieldIssue("", name, "no such file")], name) from None
    except IsADirectoryError:
        raise ScenarioError([FieldIssue("", name, "is a directory, not a .toml file")], name) from None
    except UnicodeDecodeError:
        raise ScenarioError([FieldIssue("", name, "not a text file (expected UTF-8 TOML)")], name) from None
    except OSError as exc:
        raise ScenarioError([FieldIssue("", name, f"cannot be read: {exc.strerror}")], name) from None


def load_scenario_with_extra(path: str | os.PathLike | Traversable) -> tuple[Scenario, dict]:
    return parse_scenario(_read_text(path), str(path))


def find(ref: str) -> Path | Traversable:
    """The file a reference names: an existing path, else a saved, shipped or workload preset of that name
    (a trailing .toml is allowed). Unknown names list the close matches."""
    path = Path(ref)
    if path.exists():
        return path
    stem = ref[:-5] if ref.endswith(".toml") else ref
    named = all_presets()
    if stem in named:
        return named[stem]
    near = close_matches(stem, list(named))
    hint = f"close matches: {', '.join(near)}" if near else "`whatif presets` lists the preset names"
    raise ScenarioError([Problem("", ref, f"no such file or preset; {hint}")], ref)


def all_presets() -> dict[str, Path | Traversable]:
    """Every name a reference may use, the user's own first (they shadow a shipped preset of the same name)."""
    return shipped_workloads() | shipped_presets() | user_presets()


def read(ref: str, stdin: Callable[[], str] | None = None) -> Loaded:
    """Read and validate the scenario a reference names (see `find`); `-` reads `stdin()`."""
    if ref == STDIN:
        text, label = (stdin or sys.stdin.read)(), "<stdin>"
    else:
        found = find(ref)
        text, label = _read_text(found), ref
    scenario, _ = parse_scenario(text, label)
    data = tomllib.loads(text)
    data.pop("published", None)
    return Loaded(scenario, data, label, text)


def validated(data: dict, label: str) -> Scenario:
    """A scenario from plain data (after settings or merges), errors labelled with `label`."""
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise from_validation_error(exc, Scenario, label) from None


# Saving --------------------------------------------------------------------------------------------------


def scenario_to_toml(scenario: Scenario, previous: str | None = None) -> str:
    """TOML text for `scenario`. With the file's `previous` text, that text with only the changed values
    rewritten (comments, order and untouched keys kept); keys the user never wrote are added only where
    they differ from the default."""
    full = scenario.model_dump(mode="json", exclude_none=True)
    given = scenario.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    if previous is not None:
        try:
            doc = tomlkit.parse(previous)
        except ParseError:
            return REWRITTEN + tomlkit.dumps(_fresh(full, given))
        _sync(doc, full, given, fields=set(Scenario.model_fields))
        return tomlkit.dumps(doc)
    return HEADER + tomlkit.dumps(_fresh(full, given))


def _fresh(full: dict, given: dict) -> dict:
    """A new file's content: the top-level keys, then every section (defaults included, so a reader sees
    what each key is), in the schema's order."""
    return {k: v for k, v in full.items() if not isinstance(v, dict) and (k in given or k == "schema_version")} | {
        k: v for k, v in full.items() if isinstance(v, dict)
    }


def _sync(doc: Any, full: dict, given: dict, fields: set[str] | None) -> None:
    """Make table `doc` hold `full`, touching only what differs. `fields` (the schema's keys at this level;
    None inside tables the schema types loosely) decides which unknown keys may be removed."""
    for key, value in full.items():
        if key in doc:
            old = doc[key]
            if isinstance(value, dict) and isinstance(old, dict):
                _sync(old, value, given.get(key, {}) if isinstance(given.get(key), dict) else {}, None)
            elif isinstance(value, dict):
                # A value that becomes a table ("auto" -> { tp = 8 }) stays on its own line, in place.
                table = tomlkit.inline_table()
                table.update(value)
                doc[key] = table
            elif _plain(old) != value:
                doc[key] = value
        elif key in given:
            doc[key] = value
    for key in list(doc.keys()):
        if key not in full and (fields is None or key in fields):
            del doc[key]


def _plain(item: Any) -> Any:
    return item.unwrap() if hasattr(item, "unwrap") else item


def save_scenario(
    scenario: Scenario, path: str | os.PathLike, overwrite: bool = False, template: str | None = None
) -> Path:
    """Write atomically; raise FileExistsError if `path` exists and `overwrite` is False. Replacing a file
    keeps its comments and layout (see `scenario_to_toml`); a new file keeps those of `template` (the text
    of the preset it was made from), if given."""
    target = Path(path)
    exists = target.exists()
    if exists and not overwrite:
        raise FileExistsError(str(target))
    previous = template
    if exists:
        try:
            previous = target.read_text("utf-8")
        except (OSError, UnicodeDecodeError):
            previous = ""  # unreadable: rewritten whole, and the file says so
    text = scenario_to_toml(scenario, previous)
    _write_atomic(target, text)
    return target


def write_text_atomic(target, text: str) -> None:
    """Replace a file's text atomically (temporary file, fsync, rename): a crash never leaves half of it."""
    _write_atomic(Path(str(target)), text)


def _write_atomic(target: Path, text: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
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


# Where presets live --------------------------------------------------------------------------------------


def _stems(folder: Traversable) -> dict[str, Traversable]:
    found = {p.name[:-5]: p for p in folder.iterdir() if p.name.endswith(".toml")}
    return dict(sorted(found.items()))


def shipped_presets() -> dict[str, Traversable]:
    """Presets shipped with the package, by file stem, sorted."""
    return _stems(files("whatif.presets"))


def shipped_workloads() -> dict[str, Traversable]:
    """Workload-only presets shipped with the package (presets/workloads/), for `--workload`."""
    folder = files("whatif.presets").joinpath("workloads")
    return _stems(folder) if folder.is_dir() else {}


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
