"""Dialogs: open a preset, save the scenario under a name, confirm an overwrite."""

from __future__ import annotations

import re

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from ..session import Preset

_SAFE = re.compile(r"[^a-z0-9._-]+")


def preset_stem(name: str) -> str:
    """A file name for a preset: lower case, letters, digits, '.', '-' and '_' only."""
    return _SAFE.sub("-", name.strip().lower()).strip("-.")[:80]


class ConfirmScreen(ModalScreen[bool]):
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


class SaveScreen(ModalScreen[str | None]):
    """Asks for a preset name; returns it (the app checks for an existing file and asks before replacing)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, name: str, folder_hint: str = "your presets folder", cursor_blink: bool = True) -> None:
        super().__init__()
        self.initial = name
        self.folder_hint = folder_hint
        self.cursor_blink = cursor_blink

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="save-dialog"):
            yield Static("Save the current scenario as a preset", classes="dialog-title", markup=False)
            yield Label("Name")
            box = Input(self.initial, id="save-name", placeholder="e.g. h200-512", select_on_focus=False)
            box.cursor_blink = self.cursor_blink
            yield box
            yield Static("", id="save-where", classes="dialog-hint", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save", variant="primary", id="save")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self._hint(self.initial)
        self.query_one("#save-name", Input).focus()

    @on(Input.Changed, "#save-name")
    def _changed(self, event: Input.Changed) -> None:
        self._hint(event.value)

    def _hint(self, name: str) -> None:
        stem = preset_stem(name)
        text = f"-> {stem}.toml in {self.folder_hint}" if stem else "a name needs a letter or a digit"
        self.query_one("#save-where", Static).update(text)
        self.query_one("#save-where").set_class(not stem, "-error")

    @on(Input.Submitted, "#save-name")
    @on(Button.Pressed, "#save")
    def _save(self) -> None:
        name = self.query_one("#save-name", Input).value.strip()
        if preset_stem(name):
            self.dismiss(name)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class OpenScreen(ModalScreen[str | None]):
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
                options.append(Option(f"{p.label}  [{where}]  {title}", id=p.key))
            yield OptionList(*options, id="open-list", markup=False)

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
