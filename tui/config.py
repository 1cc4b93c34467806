"""The explorer's own files: its settings (the theme) and where exports go, never the working directory.

    settings  $WHATIF_HOME/config.toml   else $XDG_CONFIG_HOME/whatif/config.toml (~/.config/whatif)
    exports   $WHATIF_HOME/exports/      else $XDG_DATA_HOME/whatif/exports/ (~/.local/share/whatif)

The settings file is TOML; keys the explorer does not know are kept when it writes the file back. A file
that cannot be read is ignored (the defaults apply) and left as it is until the user changes a setting.
"""

from __future__ import annotations

import os
import time
import tomllib
from pathlib import Path
from typing import Any

import tomli_w


def config_dir() -> Path:
    home = os.environ.get("WHATIF_HOME")
    if home:
        return Path(home)
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "whatif"


def data_dir() -> Path:
    home = os.environ.get("WHATIF_HOME")
    if home:
        return Path(home)
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "whatif"


def config_path() -> Path:
    return config_dir() / "config.toml"


def exports_dir() -> Path:
    return data_dir() / "exports"


def load() -> dict[str, Any]:
    """The settings, or {} when there is no file or it cannot be read."""
    try:
        return tomllib.loads(config_path().read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return {}


def save(**changes: Any) -> Path | None:
    """Write `changes` over the settings (other keys kept); None if the file cannot be written."""
    path = config_path()
    data = load() | changes
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".toml.tmp")
        tmp.write_text(tomli_w.dumps(data), "utf-8")
        os.replace(tmp, path)
    except OSError:
        return None
    return path


def export_path(stem: str, suffix: str) -> Path:
    """A new file in the exports folder, named by time ('compare-20260101-120000.md'), never one that
    exists."""
    folder = exports_dir()
    folder.mkdir(parents=True, exist_ok=True)
    base = f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, n = folder / f"{base}{suffix}", 1
    while path.exists():
        n += 1
        path = folder / f"{base}-{n}{suffix}"
    return path
