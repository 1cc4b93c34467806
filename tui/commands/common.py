"""What the subcommands share: loading scenarios by reference with --workload and --set, reporting bad
input as one line each (exit status 2), and the terminal console."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field

from whatif.engine import ScenarioError
from whatif.engine.errors import printable
from whatif.engine.presets_merge import parse_setting, with_settings, with_workload
from whatif.engine.scenario import Scenario

from .. import files

BAD_INPUT = 2


@dataclass(frozen=True)
class Item:
    """One scenario as a command uses it: what the user typed, the validated scenario, and the kinds of work
    a --workload could not bring to it (with why)."""

    ref: str
    scenario: Scenario
    left_out: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """A short column title: a preset name, or a file's stem."""
        stem = os.path.basename(self.ref)
        return stem[:-5] if stem.endswith(".toml") else stem


def add_scenario_options(parser: argparse.ArgumentParser, workload: bool = True) -> None:
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="change one key of every scenario (repeatable; the value is a TOML literal, a bare word is text): "
        "--set cluster.gpu=h200-sxm --set cluster.gpu_count=512",
    )
    if workload:
        parser.add_argument(
            "--workload",
            metavar="PRESET",
            help="run this preset's [training], [data] and [inference] on every scenario (docs/presets.md, "
            "'Partial presets'); a serving-only scenario takes no training and a training-only one no serving",
        )


def report(err: ScenarioError) -> int:
    for line in err.lines():
        print(f"whatif: {line}", file=sys.stderr)
    return BAD_INPUT


class StdinOnce:
    """Standard input, which only one `-` may read."""

    def __init__(self) -> None:
        self.used = False

    def __call__(self) -> str:
        if self.used:
            from whatif.engine.errors import Problem

            raise ScenarioError([Problem("", "-", "standard input can be read only once")], "-")
        self.used = True
        return files.read_stdin()


def load(refs: list[str], settings: list[str], workload: str | None = None, lenient: bool = False) -> list[Item]:
    """Every scenario, with the workload then the settings applied; all problems raised together.

    With `lenient`, a scenario the workload cannot run on is kept as it is with the reason (comparisons
    show it as a column of "-"), instead of failing the command."""
    issues: list[str] = []
    parsed = []
    for text in settings:
        try:
            parsed.append(parse_setting(text))
        except ScenarioError as exc:
            issues += exc.lines()
    wl = None
    stdin = StdinOnce()
    if workload is not None:
        try:
            wl = files.read(workload, stdin)
        except ScenarioError as exc:
            issues += _named(exc, workload)
    items = []
    for ref in refs:
        try:
            loaded = files.read(ref, stdin)
        except ScenarioError as exc:
            issues += _named(exc, ref)
            continue
        data = loaded.data
        left_out: dict[str, str] = {}
        try:
            if wl is not None:
                data, left_out = with_workload(data, wl.data)
                files.validated(data, f"{loaded.label} with --workload {workload}")
            if parsed:
                data = with_settings(data, parsed)
                if not any(key == "name" for key, _ in parsed):
                    # A changed scenario must not pass for the preset it came from.
                    data["name"] = edited_name(str(data.get("name", "untitled")))
            items.append(Item(ref, files.validated(data, "--set" if parsed else loaded.label), left_out))
        except ScenarioError as exc:
            if lenient and wl is not None and not parsed:
                reason = f"cannot run {workload} here: {exc.issues[0]}"
                items.append(Item(ref, loaded.scenario, {"training": reason, "inference": reason}))
            else:
                issues += exc.lines() if exc.file else _named(exc, workload or ref)
    if issues:
        raise ScenarioError([_Line(line) for line in dict.fromkeys(issues)], cap=None)
    return items


def _named(exc: ScenarioError, ref: str) -> list[str]:
    return exc.lines() if exc.file else [f"{ref}: {issue}" for issue in exc.issues]


EDITED = " (edited)"


def edited_name(name: str) -> str:
    """`name` marked as changed, once (a saved edit edited again stays "X (edited)", not "X (edited)
    (edited)"), within the 120 characters a name may hold (the mark is never the part cut off)."""
    from whatif.engine.scenario import NAME_MAX

    if name.endswith(EDITED):
        return name[:NAME_MAX]
    return name[: NAME_MAX - len(EDITED)] + EDITED


class _Line:
    """An already formatted message line, carried through ScenarioError.lines()."""

    def __init__(self, text: str):
        self.text = text

    def __str__(self) -> str:
        return self.text


# Text from a file or the command line (names, labels, paths) is printed through these: control characters
# (ESC, BEL, OSC sequences) as visible escapes, cut to NAME_CHARS, and never read as Rich markup.
NAME_CHARS = 80


def plain(text, limit: int | None = NAME_CHARS) -> str:
    """For print(): control characters escaped, long text cut."""
    return printable(text, limit)


def markup(text, limit: int | None = NAME_CHARS) -> str:
    """For a Rich string that also holds markup of ours: `text` shown literally."""
    from rich.markup import escape

    return escape(printable(text, limit))


def cell(text, limit: int | None = NAME_CHARS, style: str = ""):
    """A Rich table cell or column title that shows `text` literally."""
    from rich.text import Text

    return Text(printable(text, limit), style=style)


def console(stderr: bool = False):
    """A rich console; off a terminal (pipes, files, CI) it is wide enough not to fold the tables."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() or os.environ.get("COLUMNS") else 200
    return Console(highlight=False, soft_wrap=False, width=width, stderr=stderr)
