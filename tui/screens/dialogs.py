"""Dialogs: open a preset, save the scenario under a name, confirm an overwrite.

Every dialog answers once. Keys arrive faster than a dialog leaves the screen: a second Enter, or Escape
just after a pick, reaches the dialog while it is still on top, and Textual's `dismiss` run twice pops the
screen under it too (`ScreenStackError`) or hands a second result to a callback that already has one
(`InvalidStateError`). `Dialog.dismiss` keeps the first answer and ignores the rest.
"""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path
from typing import TypeVar

from textual import on
from textual.app import ComposeResult
from textual.await_complete import AwaitComplete
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option
from whatif.engine.errors import printable
from whatif.engine.scenario import NAME_MAX

from ..session import Preset

# A file name keeps this many characters of the name, and at most this many bytes (file systems allow 255).
STEM_CHARS = 80
STEM_BYTES = 200
NAME_RULE = (
    f"a name is up to {NAME_MAX} characters of printable text; its file name keeps the letters (any script), "
    "digits, '.', '-' and '_', in lower case, and turns the rest into '-'"
)

ResultType = TypeVar("ResultType")


def _kept(ch: str) -> bool:
    # Letters and digits of any script, with their combining marks (Devanagari vowel signs, accents).
    return ch.isalnum() or ch in "._-" or unicodedata.category(ch).startswith("M")


def preset_stem(name: str) -> str:
    """A file name for a preset: lower case letters (any script), digits, '.', '-' and '_'; anything else
    becomes '-'. Empty when the name holds no letter or digit."""
    text = unicodedata.normalize("NFC", name.strip().lower())
    out: list[str] = []
    for ch in text:
        if _kept(ch):
            out.append(ch)
        elif out and out[-1] != "-":
            out.append("-")
    stem = "".join(out).strip("-.")[:STEM_CHARS]
    while len(stem.encode("utf-8")) > STEM_BYTES:
        stem = stem[:-1]
    stem = stem.strip("-.")
    return stem if any(ch.isalnum() for ch in stem) else ""


def name_problem(name: str) -> str | None:
    """What is wrong with `name` as a preset's name, in words; None when it can be saved."""
    name = name.strip()
    if len(name) > NAME_MAX:
        return f"the name has {len(name):,} characters; at most {NAME_MAX} are allowed"
    if not name.isprintable():
        return "the name holds a control character; allowed: printable text"
    if not preset_stem(name):
        return "a name needs a letter or a digit"
    return None


def save_target(name: str, folder: Path, initial: str, kept_file: str | None) -> Path:
    """Where saving under `name` writes: the file the scenario was opened from (by its own file name, in
    the presets folder) while the name is the one it was opened with; else the name's own file."""
    if kept_file and name.strip() == initial.strip():
        return folder / kept_file
    return folder / f"{preset_stem(name)}.toml"


def same_file(a: Path, b: Path) -> bool:
    """`a` and `b` are one file (through links), or would be once written."""
    try:
        return os.path.realpath(a) == os.path.realpath(b)
    except (OSError, ValueError):
        return False


def kept_file_name(path: str | None) -> str | None:
    """The file name a re-save keeps, for a scenario opened from `path` (None: nothing to keep)."""
    if not path or path == "-":
        return None
    p = Path(path)
    return p.name if p.suffix == ".toml" and p.stem else (f"{p.stem}.toml" if p.stem else None)


class Dialog(ModalScreen[ResultType]):
    """A modal screen that answers once (see the module's docstring)."""

    _answered = False

    def dismiss(self, result: ResultType | None = None) -> AwaitComplete:
        if self._answered or not self.is_attached or self.app.screen is not self:
            return AwaitComplete.nothing()
        self._answered = True
        return super().dismiss(result)


class ConfirmScreen(Dialog[bool]):
    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("y", "confirm", "Yes")]

    def __init__(self, question: str, yes: str = "Overwrite") -> None:
        super().__init__()
        self.question = question
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question, classes="dialog-text", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.yes, variant="warning", id="yes")
                yield Button("Cancel", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed, "#yes")
    def action_confirm(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#no")
    def action_cancel(self) -> None:
        self.dismiss(False)


class SaveScreen(Dialog[str | None]):
    """Asks for a preset name; returns it (the app checks for an existing file and asks before replacing).
    The hint under the box says which file it goes to, or what a name may hold."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self,
        name: str,
        folder: Path,
        kept_file: str | None = None,
        folder_hint: str = "your presets folder",
        cursor_blink: bool = True,
        opened: str | None = None,
    ) -> None:
        super().__init__()
        self.initial = name
        self.folder = folder
        self.kept_file = kept_file
        self.opened = opened  # the path the scenario was opened from, if any
        self.folder_hint = folder_hint
        self.cursor_blink = cursor_blink

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="save-dialog"):
            yield Static("Save the current scenario as a preset", classes="dialog-title", markup=False)
            yield Label("Name")
            box = Input(
                self.initial[:NAME_MAX],
                id="save-name",
                placeholder="e.g. h200-512",
                select_on_focus=False,
                max_length=NAME_MAX,
            )
            box.cursor_blink = self.cursor_blink
            yield box
            yield Static("", id="save-where", classes="dialog-hint", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save", variant="primary", id="save")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self._hint(self.query_one("#save-name", Input).value)
        self.query_one("#save-name", Input).focus()

    @on(Input.Changed, "#save-name")
    def _changed(self, event: Input.Changed) -> None:
        self._hint(event.value)

    def _hint(self, name: str) -> None:
        problem = name_problem(name)
        if problem:
            text = f"{problem} ({NAME_RULE})"
        else:
            target = save_target(name, self.folder, self.initial, self.kept_file)
            text = f"-> {printable(target.name)}{self._came_from(target)} in {self.folder_hint}"
        self.query_one("#save-where", Static).update(text)
        self.query_one("#save-where").set_class(problem is not None, "-error")

    def _came_from(self, target: Path) -> str:
        """Whether `target` is the file opened, or only its name (a file opened from elsewhere is copied into
        the presets folder under its own name and stays as it was: saying "the file it was opened from"
        there told the user it was changed)."""
        if target.name != self.kept_file:
            return ""
        if self.opened is None or same_file(Path(self.opened), target):
            return " (the file it was opened from)"
        shown = printable(self.opened, None)
        shown = shown if len(shown) <= 60 else "..." + shown[-57:]  # a long path keeps its end: the file
        return f" (the opened file's name; {shown} stays as it was)"

    @on(Input.Submitted, "#save-name")
    @on(Button.Pressed, "#save")
    def _save(self) -> None:
        name = self.query_one("#save-name", Input).value.strip()
        if name_problem(name) is None:
            self.dismiss(name)
        else:
            self._hint(name)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class OpenScreen(Dialog[str | None]):
    """Pick a preset (shipped or saved); returns its key."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, presets: list[Preset]) -> None:
        super().__init__()
        self.presets = [p for p in presets if p.source != "pinned"]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="open-dialog"):
            yield Static("Open a preset (Enter opens, Escape cancels)", classes="dialog-title", markup=False)
            options = []
            for p in self.presets:
                where = "shipped" if p.source == "shipped" else "saved"
                title = p.scenario.name if p.scenario else f"cannot be used: {p.error}"
                options.append(Option(f"{printable(p.label)}  [{where}]  {printable(title, 200)}", id=p.key))
            yield OptionList(*options, id="open-list", markup=False)

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
