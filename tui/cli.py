"""The `whatif` command: the explorer, and headless commands for scripts and meetings.

    whatif [SCENARIO]                   open the explorer (prints the figures instead when not on a terminal)
    whatif eval SCENARIO... [--json]    every figure of each scenario
    whatif compare A B ... [--baseline NAME] [--figures ...] [--format table|markdown|csv|json]
    whatif sweep SCENARIO --vary key=a:b:xN ... [--out results.csv|.parquet|.json]
    whatif goal SCENARIO --days 30 | --budget-usd N | --rate R ... [--vary-gpu a,b,c] [--json]
    whatif serve [--host 127.0.0.1] [--port 8000]   the explorer in a browser
    whatif validate | catalog [KIND] | presets

A SCENARIO is a preset name (`whatif presets`), a .toml file, or - for standard input. Every command that
takes scenarios takes `--set section.key=value` (repeatable) and, where it compares, `--workload PRESET`.

Exit status: 0 success, 2 bad input (one line per problem, naming the file or flag, the section.key and
what is allowed), 1 a fault in whatif itself (reported in one line, never a traceback), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from functools import cache
from importlib.metadata import PackageNotFoundError, version

from whatif.engine import ScenarioError
from whatif.engine.errors import printable
from whatif.engine.heap import keep_freed_heap

from . import files
from .commands import common, compare, goal, info, sweep, validate
from .commands import eval as eval_cmd
from .commands import serve as serve_cmd

MODULES = (eval_cmd, compare, sweep, goal, serve_cmd, validate, info)
COMMANDS = ("eval", "compare", "sweep", "goal", "serve", "validate", "catalog", "presets")


def _version() -> str:
    try:
        return version("whatif")
    except PackageNotFoundError:
        return "unknown"


@cache  # the same parser for every call in a process (tests call main() hundreds of times)
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="whatif",
        description="What-if explorer for AI infrastructure: training time, serving latency, idle GPUs and energy. "
        "With no command, opens the explorer on the built-in default scenario (or on SCENARIO).",
        epilog="A SCENARIO is a preset name (`whatif presets`), a .toml file, or - for standard input. "
        "Scenario keys and units: docs/presets.md. Every formula and its source: docs/model.md.",
    )
    p.add_argument("--version", action="version", version=f"whatif {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for module in MODULES:
        module.add(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    keep_freed_heap()  # sweeps of 100k scenarios: no page fault per new array (engine/heap.py)
    try:
        return _main(argv)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except ScenarioError as exc:
        return common.report(exc)
    except Exception as exc:  # the promise is: never a traceback
        print(
            f"whatif: internal error: {type(exc).__name__}: {printable(exc, 300)} (please report this)", file=sys.stderr
        )
        return 1


def _main(argv: list[str]) -> int:
    if argv and not argv[0].startswith("-") and argv[0] not in COMMANDS:
        return _explore(argv[0], extra=argv[1:])
    args = _parser().parse_args(argv)
    if args.command is None:
        return _explore(None, extra=[])
    runner = getattr(args, "run", None)
    if runner is None:
        runner = {"eval": eval_cmd, "compare": compare, "sweep": sweep, "goal": goal, "serve": serve_cmd}[
            args.command
        ].run
    return runner(args)


def default_scenario():
    return files.load_scenario(files.shipped_presets()["default"])


def _explore(ref: str | None, extra: list[str]) -> int:
    if ref is not None and ref != files.STDIN:
        try:
            files.find(ref)
        except ScenarioError:
            print(
                f"whatif: {printable(repr(ref))} is neither a command nor a scenario file or preset name; commands: "
                f"{', '.join(COMMANDS)} (`whatif presets` lists the preset names, `whatif --help` the rest)",
                file=sys.stderr,
            )
            return common.BAD_INPUT
    if extra:
        print(f"whatif: unexpected argument {printable(repr(extra[0]))}; see `whatif --help`", file=sys.stderr)
        return common.BAD_INPUT
    try:
        scenario = files.read(ref).scenario if ref else default_scenario()
    except ScenarioError as exc:
        return common.report(exc)
    if not (sys.stdout.isatty() and sys.stdin.isatty()):
        # Not on a terminal (a pipe, CI, a script): print the figures instead of opening the explorer.
        return eval_cmd.print_results([scenario], as_json=False, markdown=False)
    try:
        from .app import run_app
    except ImportError:  # the explorer lands with its own issue; until then, the figures
        return eval_cmd.print_results([scenario], as_json=False, markdown=False)
    # A file, or a preset of your own by name, is the explorer's to save back to (as ctrl+o opens it); a
    # shipped preset's name opens a copy.
    from pathlib import Path

    own, found = False, None
    if ref and ref != files.STDIN:
        found = files.find(ref)
        own = isinstance(found, Path) and found.is_file()
        own = own and (Path(ref).is_file() or Path(str(found)).parent == files.user_presets_dir())
    return run_app(scenario, path=str(found) if own else None)


if __name__ == "__main__":
    sys.exit(main())
