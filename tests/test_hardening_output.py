"""Terminal safety of the command line: text from a file or an argument (names, file names, keys, values)
reaches the terminal with control characters written as escapes, cut when long, and never read as Rich
markup, in every command and format; a formatter that meets a missing figure prints a dash.

The hostile texts are the classes the fuzzing pass found: OSC title change and hyperlink, clear screen,
BEL, a bidirectional override, and markup that closes a tag it never opened."""

from __future__ import annotations

import contextlib
import io
import os

import pytest
import tiers
from whatif.tui.cli import main

ESCAPES = ["\x1b]0;pwned\x07", "\x1b[2J", "\x1b]8;;http://x\x1b\\", "\x07", "\u202e"]
MARKUP = ["a[/b]", "[bold]x[/]", "[/]", "[red on blue]z", "x\\[y]"]


def run(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def assert_safe(code: int, out: str, err: str) -> None:
    assert code in (0, 2), err
    assert "internal error" not in err
    for text in (out, err):
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text, text[:300]


@pytest.fixture
def hostile_files(tmp_path):
    """Scenario files whose names hold markup, and files whose own names hold escapes and markup."""
    made = []
    for i, name in enumerate(MARKUP):
        path = tmp_path / f"markup-{i}.toml"
        path.write_text(f"name = '{name}'\n[cluster]\ngpu_count = 8\n")
        made.append(str(path))
    for i, text in enumerate([*ESCAPES, *MARKUP]):
        stem = text.replace("/", "|")
        path = tmp_path / f"f{i}-{stem}.toml"
        try:
            path.write_text("name = 'fine'\n[cluster]\ngpu_count = 8\n")
        except OSError:
            continue
        made.append(str(path))
    # The quick tier: a third of them (each kind of hostile text still among them); the full suite, all.
    return made[::3] if tiers.QUICK else made


COMMANDS = [
    ["eval"],
    ["eval", "--markdown"],
    ["eval", "--json"],
    ["compare", "default"],
    ["compare", "default", "--format", "markdown"],
    ["compare", "default", "--format", "csv"],
    ["compare", "default", "--format", "json"],
]


# The quick tier: a table, Markdown and CSV (JSON is escaped by its encoder); the full suite, every one.
QUICK_COMMANDS = (["eval"], ["eval", "--markdown"], ["compare", "default"], ["compare", "default", "--format", "csv"])


@pytest.mark.parametrize(
    "command",
    [c if c in QUICK_COMMANDS else pytest.param(c, marks=pytest.mark.slow) for c in COMMANDS],
    ids=" ".join,
)
def test_names_and_file_names_reach_the_terminal_escaped(hostile_files, command):
    for path in hostile_files:
        args = [*command[:1], *(command[1:2] if command[0] == "compare" else []), path, *command[2:]]
        if command[0] == "eval":
            args = [command[0], path, *command[1:]]
        code, out, err = run(*args)
        assert_safe(code, out, err)
        assert code == 0, err


def test_markup_in_a_name_is_shown_as_written(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text("name = 'a[/b] [red]x'\n[cluster]\ngpu_count = 8\n")
    code, out, _ = run("eval", str(path))
    assert code == 0 and "a[/b] [red]x" in out


@pytest.mark.parametrize("text", ESCAPES + MARKUP)
def test_problems_with_hostile_keys_values_and_names_are_escaped(tmp_path, text):
    bodies = [
        f"[cluster]\n{text!r} = 1\n".replace("'", '"') if "\\" not in text else "[cluster]\nx = 1\n",
        f'[cluster]\ngpu = "{text.encode("unicode_escape").decode()}"\n',
        f'name = "{text.encode("unicode_escape").decode()}"\n',
        f'[training]\nmodel = {{ name = "{text.encode("unicode_escape").decode()}", layers = 1 }}\n',
    ]
    for body in bodies:
        path = tmp_path / "bad.toml"
        path.write_text(body)
        assert_safe(*run("eval", str(path)))
        assert_safe(*run("compare", "default", str(path)))


def test_set_values_and_missing_names_are_escaped():
    for text in ESCAPES + MARKUP:
        assert_safe(*run("eval", "default", "--set", f"cluster.gpu={text}"))
        assert_safe(*run("eval", "default", "--set", f"name={text}"))
        assert_safe(*run("eval", text))
        assert_safe(*run(text))
        assert_safe(*run("compare", "default", "--baseline", text))


def test_the_presets_listing_escapes_saved_presets(hostile_files):
    from whatif.tui import files

    folder = files.user_presets_dir()
    folder.mkdir(parents=True)
    for path in hostile_files:
        os.link(path, folder / os.path.basename(path))
    body = '[cluster]\n"\\u001b]0;t\\u0007" = 1\n'  # the key holds ESC and BEL (TOML escapes)
    (folder / "broken\x1b[2J.toml").write_text(body)
    code, out, err = run("presets")
    assert_safe(code, out, err)
    assert "invalid" in out


def test_long_names_are_cut_in_tables(tmp_path):
    path = tmp_path / ("x" * 200 + ".toml")
    path.write_text("name = '" + "n" * 120 + "'\n")
    code, out, _ = run("compare", "default", str(path))
    assert code == 0 and "x" * 200 not in out and "characters" in out


def test_a_missing_figure_prints_a_dash_not_a_crash(monkeypatch):
    from whatif.tui import format as fmt

    def broken(row):
        raise TypeError("unsupported format string passed to NoneType.__format__")

    monkeypatch.setattr(fmt, "interruptions", broken)
    code, out, err = run("eval", "default")
    assert code == 0 and "internal error" not in err
