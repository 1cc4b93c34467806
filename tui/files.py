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

import errno
import os
import re
import stat
import sys
import tempfile
import threading
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
from whatif.engine.errors import Problem, ScenarioError, from_validation_error
from whatif.engine.scenario import Scenario
from whatif.engine.text import loads, parse_scenario, validate_data

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


# A scenario is a few kilobytes; anything larger than this is not one (and is not read into memory).
MAX_BYTES = 1 << 20
_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _problem(name: str, message: str) -> ScenarioError:
    return ScenarioError([Problem("", name, message)], name)


def _too_big(what: str) -> str:
    return f"{what}; allowed: at most {MAX_BYTES:,} bytes (a scenario is a few kilobytes)"


def read_bytes(path: str | os.PathLike, name: str | None = None) -> bytes:
    """A regular file's bytes, at most MAX_BYTES. Anything else (a directory, a FIFO, a device such as
    /dev/zero, a socket) is refused without reading from it, with a message that says what it is."""
    name = name or str(path)
    try:
        # Non-blocking: opening a FIFO must not wait for a writer (regular files ignore the flag).
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise _problem(name, "no such file") from None
    except IsADirectoryError:
        raise _problem(name, "is a directory, not a .toml file") from None
    except PermissionError:
        raise _problem(name, "cannot be read: permission denied") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL character in the path
        raise _problem(name, f"cannot be read: {getattr(exc, 'strerror', None) or 'not a valid path'}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise _problem(name, "is a directory, not a .toml file")
        if not stat.S_ISREG(info.st_mode):
            kind = next((text for test, text in _KINDS if test(info.st_mode)), "not a regular file")
            raise _problem(name, f"is {kind}; allowed: a regular .toml file")
        if info.st_size > MAX_BYTES:
            raise _problem(name, _too_big(f"is {info.st_size:,} bytes"))
        chunks, size = [], 0
        while size <= MAX_BYTES:
            chunk = os.read(fd, MAX_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise _problem(name, f"cannot be read: {exc.strerror}") from None
    finally:
        os.close(fd)
    if size > MAX_BYTES:
        raise _problem(name, _too_big(f"is more than {MAX_BYTES:,} bytes"))
    return b"".join(chunks)


def decode(data: bytes, name: str) -> str:
    """TOML text from a file's bytes: UTF-8 (a leading byte-order mark is dropped); anything else is named."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if data.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        raise _problem(name, "is UTF-32 text; allowed: UTF-8 (save the file as UTF-8)")
    if b"\x00" in data:
        if _utf16(data):
            raise _problem(name, "is UTF-16 text; allowed: UTF-8 (save the file as UTF-8)")
        line = data.count(b"\n", 0, data.index(b"\x00")) + 1
        what = f"not a text file (it holds NUL bytes, the first at line {line})"
        raise _problem(name, f"{what}; allowed: a UTF-8 TOML file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        bad = f"is not UTF-8 text (byte 0x{data[exc.start]:02x} at line {line})"
        raise _problem(name, f"{bad}; allowed: UTF-8 (save the file as UTF-8)") from None


def _utf16(data: bytes) -> bool:
    """Text saved as UTF-16 (with its byte-order mark, or without one: then the high bytes of its ASCII
    characters are NULs in every other byte), not binary data or UTF-8 text holding a stray NUL."""
    for codec, bom, high in (("utf-16-le", b"\xff\xfe", 1), ("utf-16-be", b"\xfe\xff", 0)):
        marked = data.startswith(bom)
        body = data[2:] if marked else data
        # TOML is mostly ASCII: unmarked UTF-16 has a NUL in most of its characters' high bytes.
        if not marked and body[high::2].count(0) < max(1, len(body) // 4):
            continue
        try:
            text = body.decode(codec)
        except UnicodeDecodeError:
            continue
        if text and (text.isprintable() or all(ch.isprintable() or ch in "\t\r\n" for ch in text[:4096])):
            return True
    return False


def _read_text(path: str | os.PathLike | Traversable) -> str:
    name = str(path)
    if isinstance(path, (str, os.PathLike)):
        return decode(read_bytes(path, name), name)
    try:  # package data that is not a plain file (a zip): read as it is
        return decode(path.read_bytes(), name)
    except OSError as exc:
        raise _problem(name, f"cannot be read: {exc.strerror}") from None


def read_stdin(stream=None) -> str:
    """Standard input as TOML text, at most MAX_BYTES (more is refused, not read to the end)."""
    stream = stream if stream is not None else sys.stdin
    raw = getattr(stream, "buffer", None)
    data = raw.read(MAX_BYTES + 1) if raw is not None else stream.read(MAX_BYTES + 1)
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    if len(data) > MAX_BYTES:
        raise _problem("<stdin>", _too_big(f"is more than {MAX_BYTES:,} bytes"))
    text = decode(data, "<stdin>")
    if not text.strip():
        # `cat missing.toml | whatif eval -` printed an empty scenario's dashes and exited 0.
        raise _problem("<stdin>", "is empty; allowed: a scenario's TOML text (whatif eval - < plan.toml)")
    return text


def load_scenario_with_extra(path: str | os.PathLike | Traversable) -> tuple[Scenario, dict]:
    return parse_scenario(_read_text(path), str(path))


def find(ref: str) -> Path | Traversable:
    """The file a reference names: an existing path, else a saved, shipped or workload preset of that name
    (a trailing .toml is allowed). Unknown names list the close matches."""
    path = Path(ref)
    try:
        exists = os.path.lexists(path)
    except (OSError, ValueError):  # a name too long, a NUL character
        exists = False
    if exists:
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
        text, label = (stdin or read_stdin)(), "<stdin>"
    else:
        found = find(ref)
        text, label = _read_text(found), ref
    try:
        data = loads(text)
    except ScenarioError as exc:
        raise ScenarioError(exc.issues, label) from None
    scenario, _ = validate_data(data, label)
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


class SaveError(OSError):
    """A save that cannot be done, with a message (its strerror) that says why; nothing was written."""

    def __init__(self, message: str, code: int = errno.EINVAL) -> None:
        super().__init__(code, message)


def save_scenario(
    scenario: Scenario, path: str | os.PathLike, overwrite: bool = False, template: str | None = None
) -> Path:
    """Write atomically; raise FileExistsError if `path` exists and `overwrite` is False. Replacing a file
    keeps its comments and layout (see `scenario_to_toml`); a new file keeps those of `template` (the text
    of the preset it was made from), if given. A symbolic link is written through (the file it points to is
    replaced, the link stays); see `_write_atomic` for the file's mode. Returns the path given."""
    target = Path(path)
    real = _through_links(target)
    exists = real.exists()
    if exists and not overwrite:
        raise FileExistsError(str(target))
    previous = template
    if exists:
        try:
            previous = decode(read_bytes(real), str(real))
        except ScenarioError:
            previous = ""  # unreadable: rewritten whole, and the file says so
    text = scenario_to_toml(scenario, previous)
    _write_atomic(real, text)
    return target


def with_edit_note(scenario: Scenario, note: str) -> Scenario:
    """`scenario` with `note` ("Edited from X: ...") added to its description, so that the description follows
    the edits; within the description's limit (the old text is cut, marked "...", before the note is), so
    that the saved file reads back (a 3,990-character description with a note made a file whatif refused)."""
    from whatif.engine.scenario import DESCRIPTION_MAX

    note = note[:DESCRIPTION_MAX]
    old = scenario.description.strip()
    room = DESCRIPTION_MAX - len(note) - 1
    if len(old) > room:
        old = old[: max(room - 3, 0)].rstrip() + "..." if room > 3 else ""
    return scenario.model_copy(update={"description": f"{old} {note}".strip()})


def write_text_atomic(target, text: str) -> None:
    """Replace a file's text atomically (temporary file, fsync, rename): a crash never leaves half of it."""
    _write_atomic(_through_links(Path(str(target))), text)


def _through_links(target: Path) -> Path:
    """The file a save replaces: `target`, or where its symbolic link(s) lead (so the link stays a link)."""
    if not target.is_symlink():
        return target
    return Path(os.path.realpath(target))


def _folder_for(target: Path) -> Path:
    """The folder `target` is saved in, made if missing; a SaveError says what stands in the way."""
    folder = target.parent
    for part in (folder, *folder.parents):
        if part.exists() or part.is_symlink():
            if not part.is_dir():
                raise SaveError(
                    f"{part} is a file, not a folder; allowed: a folder there (move the file away"
                    + (", or set WHATIF_HOME to another place)" if part == user_presets_dir() else ")"),
                    errno.ENOTDIR,
                )
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SaveError(f"the folder {folder} cannot be made: {exc.strerror}", exc.errno or errno.EIO) from None
    return folder


def _new_file_mode() -> int:
    """rw for whom the umask allows (0666 & ~umask), as `open()` would make a new file."""
    try:  # Linux: read without changing it
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


_UMASK_LOCK = threading.Lock()
_IN_PROGRESS: set[str] = set()  # this process's temporary files being written (never stale)
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[A-Za-z0-9_]+\.tmp$")
_OLD_TEMP = re.compile(r"^\.(?P<name>.+\.toml)\.[A-Za-z0-9_]+\.tmp$")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # our own: only those in _IN_PROGRESS are live
    if os.name == "nt":  # os.kill would terminate it
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    return True


def clean_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files a save killed mid-way left in `folder` (named `.NAME.PID.XXXX.tmp`, whose
    process is gone; or `.NAME.toml.XXXX.tmp`, as earlier versions named them). Returns what was deleted."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if not name.endswith(".tmp") or not name.startswith(".") or entry.path in _IN_PROGRESS:
            continue
        match = _TEMP.match(name)
        if match:
            stale = not _alive(int(match["pid"]))
        else:
            stale = bool(_OLD_TEMP.match(name))
        try:
            if stale and entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            pass
    return removed


def _write_atomic(target: Path, text: str) -> None:
    """Write `text` to a temporary file beside `target`, flush it to disk and rename it over `target`. The
    file keeps the mode it had; a new file gets the mode the umask gives (0644 under the usual 022), not
    the temporary file's 0600. Stale temporary files of killed saves in that folder are removed first."""
    if target.is_dir():
        raise SaveError(f"{target} is a folder, not a file", errno.EISDIR)
    if target.exists() and not target.is_file():
        raise SaveError(f"{target} is not a regular file; allowed: a .toml file to replace", errno.EINVAL)
    folder = _folder_for(target)
    clean_stale_temporaries(folder)
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        mode = _new_file_mode()
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=folder)
    _IN_PROGRESS.add(tmp)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            if hasattr(os, "fchmod"):
                os.fchmod(handle.fileno(), mode)
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        _IN_PROGRESS.discard(tmp)


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
    """The user's saved presets by file stem (temporary files of killed saves are cleaned up on the way)."""
    folder = user_presets_dir()
    if not folder.is_dir():
        return {}
    clean_stale_temporaries(folder)
    return {p.stem: p for p in sorted(folder.glob("*.toml"))}


def calibration_cases() -> list[tuple[Case, Scenario]]:
    """The published runs shipped with the engine (engine/calibration/cases in the checkout)."""
    return load_cases()
