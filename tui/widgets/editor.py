"""The scenario editor: panes of fields with units and catalog choices, and inline messages.

The editor owns only text. On every change it asks `form.build` for a validated scenario and posts
`ScenarioEditor.Edited` with the outcome; it never talks to the engine. Problems are shown under the field
they name; a field whose catalog default depends on another (GPU memory on the GPU type) is re-filled
when that other field changes, and marked with `*` when the user overrides it.
"""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Checkbox, Input, Label, Select, Static
from whatif.engine.errors import FieldIssue
from whatif.engine.scenario import Scenario

from .. import form
from ..form import FIELDS, PANES, Built, FieldSpec

_INPUT_TYPE = {"int": "integer", "auto_int": "integer", "float": "number", "override": "number", "auto_float": "number"}


class FieldInput(Input):
    """An Input whose editing keys act in the order they were typed.

    Textual runs Input's key bindings (backspace, delete, arrows) only after the key has bubbled back up to
    the app, while a printable key is inserted as soon as the Input sees it. When keys arrive together (a
    fast typist, or a busy moment), "backspace, 3" then becomes "3, backspace" and the 3 is lost (seen in
    a pseudo-terminal, see benchmarks/bench_tui.py). Handling these keys here keeps them in order."""

    _EDITING = {
        "backspace": "delete_left",
        "delete": "delete_right",
        "left": "cursor_left",
        "right": "cursor_right",
        "home": "home",
        "end": "end",
    }

    async def _on_key(self, event) -> None:
        action = self._EDITING.get(event.key)
        if action is not None:
            event.stop()
            event.prevent_default()
            self._restart_blink()
            getattr(self, f"action_{action}")()
            return
        await super()._on_key(event)


def control_id(key: str) -> str:
    return "in-" + key.replace(".", "-")


def row_id(key: str) -> str:
    return "field-" + key.replace(".", "-")


class FieldRow(Widget):
    """One field: label, control, unit on a grid row; a message line under them when something is wrong
    (mounted on first use: the editor has some fifty fields and every widget costs start-up time)."""

    def __init__(self, spec: FieldSpec, raw: form.Raw, cursor_blink: bool = True) -> None:
        super().__init__(id=row_id(spec.key), classes=f"field-row -{spec.kind}")
        self.spec = spec
        self._raw = raw
        self._cursor_blink = cursor_blink
        self._message = ""
        self._error: Label | None = None
        if spec.help:
            self.tooltip = spec.help

    def compose(self) -> ComposeResult:
        spec, raw = self.spec, self._raw
        if spec.kind == "toggle":
            yield Checkbox(
                spec.label,
                value=bool(raw.get(spec.key)),
                id=control_id(spec.key),
                name=spec.key,
                compact=True,
                classes="field-control -toggle",
            )
            return
        yield Label(spec.label, classes="field-label")
        if spec.kind == "choice":
            options = spec.choices(raw)
            value = raw.get(spec.key)
            if value not in {v for _, v in options}:
                options = [(str(value), value)] + options
            yield Select(
                options,
                value=value,
                allow_blank=False,
                compact=True,
                id=control_id(spec.key),
                name=spec.key,
                classes="field-control",
            )
        else:
            placeholder = "auto" if spec.kind.startswith("auto") else ("none" if spec.kind == "override" else "")
            box = FieldInput(
                str(raw.get(spec.key, "")),
                placeholder=placeholder,
                type=_INPUT_TYPE[spec.kind],
                compact=True,
                validate_on=[],
                id=control_id(spec.key),
                name=spec.key,
                classes="field-control",
                select_on_focus=False,
            )
            box.cursor_blink = self._cursor_blink
            yield box
        if spec.unit:
            yield Label(spec.unit, classes="field-unit")

    def set_message(self, text: str) -> None:
        if text == self._message:
            return
        self._message = text
        if self._error is None:
            if not text:
                return
            self._error = Label(text, classes="field-error", markup=False)
            self.mount(self._error)
        else:
            self._error.update(text)
        self.set_class(bool(text), "-error")

    def set_override(self, on: bool) -> None:
        if self.spec.kind == "override":
            self.set_class(on, "-override")
            label = self.query_one(".field-label", Label)
            label.update(self.spec.label + ("*" if on else ""))

    def set_value(self, value: Any, raw: form.Raw) -> None:
        """Show `value` without posting a change (the caller already knows)."""
        control = self.query_one(".field-control")
        with control.prevent(Input.Changed, Select.Changed, Checkbox.Changed):
            if isinstance(control, Select):
                options = self.spec.choices(raw)
                if value not in {v for _, v in options}:
                    options = [(str(value), value)] + options
                control.set_options(options)
                control.value = value
            elif isinstance(control, Checkbox):
                control.value = bool(value)
            else:
                control.value = str(value)


class ScenarioEditor(VerticalScroll):
    """Every pane of fields, in one scrollable column."""

    class Edited(Message):
        """The fields changed: `built` holds the validated scenario or the problems."""

        def __init__(self, built: Built, key: str) -> None:
            super().__init__()
            self.built = built
            self.key = key

    def __init__(self, scenario: Scenario, cursor_blink: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.base = scenario
        self.raw: form.Raw = form.form_values(scenario)
        self._cursor_blink = cursor_blink
        self._rows: dict[str, FieldRow] = {}
        self._notes: dict[str, str] = {}
        self.built: Built = form.build(scenario, self.raw)

    # Panes composed before the first screen; the others are mounted right after it (they start below
    # the fold at 80x24, and fifty fields' worth of widgets is a good part of the start-up time).
    FIRST_PANES = 3

    def compose(self) -> ComposeResult:
        for pane in PANES[: self.FIRST_PANES]:
            yield from self._pane(pane)

    def _pane(self, pane) -> list:
        widgets = [Static(pane.title, classes="pane-title", id=f"pane-{pane.id}")]
        for spec in pane.fields:
            row = FieldRow(spec, self.raw, self._cursor_blink)
            self._rows[spec.key] = row
            widgets.append(row)
        return widgets

    def on_mount(self) -> None:
        self._refresh_marks()
        self.call_after_refresh(self._mount_rest)

    async def _mount_rest(self) -> None:
        rest = [w for pane in PANES[self.FIRST_PANES :] for w in self._pane(pane)]
        await self.mount_all(rest)  # made from the current fields, so they show the current state
        self._refresh_marks()

    # -- loading -------------------------------------------------------------------------------

    def load(self, scenario: Scenario) -> Built:
        """Show `scenario` in every field (no change events) and return its build."""
        self.base = scenario
        self.raw = form.form_values(scenario)
        for key, row in self._rows.items():
            row.set_value(self.raw.get(key), self.raw)
        self._notes.clear()
        self.built = form.build(scenario, self.raw)
        self._refresh_marks()
        return self.built

    # -- changes -------------------------------------------------------------------------------

    @on(Input.Changed)
    @on(Select.Changed)
    @on(Checkbox.Changed)
    def _changed(self, event: Input.Changed | Select.Changed | Checkbox.Changed) -> None:
        event.stop()
        key = event.control.name
        if key not in FIELDS:
            return
        value = event.value
        if self.raw.get(key) == value:
            return
        self.raw = self.raw | {key: value}
        refilled = [spec.key for spec in FIELDS.values() if spec.follows == key]
        if refilled:
            self.raw = form.refill_followers(self.raw, key)
            for follower in refilled:
                if follower in self._rows:
                    self._rows[follower].set_value(self.raw[follower], self.raw)
            if key == "cluster.gpu":  # the scale-up choice names the GPU's own fabric
                self._rows["network.scale_up"].set_value(self.raw["network.scale_up"], self.raw)
        self.built = form.build(self.base, self.raw)
        self._refresh_marks()
        self.post_message(self.Edited(self.built, key))

    # -- messages ------------------------------------------------------------------------------

    def set_note(self, key: str, text: str) -> None:
        """A message from outside validation (e.g. 'no plan fits') under field `key`; '' clears it."""
        if self._notes.get(key, "") == text:
            return
        if text:
            self._notes[key] = text
        else:
            self._notes.pop(key, None)
        self._refresh_marks()

    def _refresh_marks(self) -> None:
        messages: dict[str, list[str]] = {}
        for issue in self.built.issues:
            target = form.field_for_issue(issue.key)
            if target in self._rows:
                messages.setdefault(target, []).append(_message(issue))
        for key, text in self._notes.items():
            messages.setdefault(key, []).append(text)
        for key, row in self._rows.items():
            row.set_message("; ".join(messages.get(key, [])))
            row.set_override(form.is_override(row.spec, self.raw))
            if row.spec.workload:
                on = bool(self.raw.get(row.spec.workload))
                if row.spec.kind != "toggle":
                    row.set_class(not on, "-off")

    def focus_field(self, key: str) -> None:
        control = self._rows[key].query_one(".field-control")
        control.focus()
        self.scroll_to_widget(self._rows[key], animate=False)

    def focus_pane(self, pane_id: str) -> None:
        pane = next(p for p in PANES if p.id == pane_id)
        self.scroll_to_widget(self.query_one(f"#pane-{pane_id}"), animate=False, top=True)
        self._rows[pane.fields[0].key].query_one(".field-control").focus(scroll_visible=False)


def _message(issue: FieldIssue) -> str:
    text = issue.message
    spec = FIELDS.get(form.field_for_issue(issue.key) or "")
    label = spec.label if spec else issue.key
    if issue.key != (spec.key if spec else None):
        label = issue.key
    return f"{label}: {text}"
