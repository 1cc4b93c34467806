"""The scenario editor: panes of fields with units and catalog choices, and inline messages.

The editor owns only text. On every change it asks `form.build` for a validated scenario and posts
`ScenarioEditor.Edited` with the outcome; it never talks to the engine. Problems are shown under the field
they name, in full (the message wraps); a field whose catalog default depends on another (GPU memory on
the GPU type) is re-filled when that other field changes, and marked with `*` when the user overrides it.
The editor keeps the history of its fields for undo and redo, and the opened preset's fields for reset.
"""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.geometry import Size
from textual.keys import _character_to_key
from textual.message import Message
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Checkbox, Input, Label, Select, Static
from whatif.engine.errors import FieldIssue
from whatif.engine.scenario import Scenario

from .. import form
from ..form import FIELDS, PANES, Built, FieldSpec
from .sizing import update_static

# Keys that jump to a pane (alt+1 ... alt+6), in PANES order; shown in each pane's title and in the help.
PANE_KEYS = {pane.id: f"alt+{i}" for i, pane in enumerate(PANES, start=1)}
# What a terminal without the kitty keyboard protocol delivers for alt+1 ... alt+6: Textual reads ESC 1 ...
# ESC 6 as the characters macOS types for option+1 ... option+6 (¡ ™ £ ¢ ∞ §), so those are bound too.
ALT_DIGIT_CHARACTERS = "¡™£¢∞§"
PANE_BINDING_KEYS = {
    pane.id: f"alt+{i},{_character_to_key(ALT_DIGIT_CHARACTERS[i - 1])}" for i, pane in enumerate(PANES, start=1)
}
# Room a Select needs beyond its text (the arrow and padding), and the widest control the editor allows:
# longer values are still there in full (the field scrolls, the choice list is as wide as it needs).
SELECT_EXTRA = 3
# Seconds without a keystroke before the problem of a value being typed is shown (see _changed).
PROBLEM_DELAY_S = 0.3
CONTROL_MAX = 22
CONTROL_MIN = 10


class FieldInput(Input):
    """An Input whose editing keys act in the order they were typed, and where ctrl+a selects the text.

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
        # Select-all as in every other text box (Input's own ctrl+a goes to the start of the line).
        "ctrl+a": "select_all",
    }

    def _watch_value(self, value: str) -> None:
        # Input sets its virtual width (the text's) to its box width here, and the next layout sets it back to
        # the text's: each keystroke asked for a layout pass of the whole screen (15-25 ms at 80x24). Setting
        # it without watchers leaves Input's own assignment nothing to change; scrolling reads the same size.
        self.set_reactive(Widget.virtual_size, Size(self.content_width, 1))
        super()._watch_value(value)

    async def _on_key(self, event) -> None:
        if event.character and event.character in ALT_DIGIT_CHARACTERS:
            # A pane key (see ALT_DIGIT_CHARACTERS), never typed: an Input takes printable keys before any
            # binding sees them, so it is handed to the app here.
            event.stop()
            event.prevent_default()
            pane = PANES[ALT_DIGIT_CHARACTERS.index(event.character)].id
            await self.app.run_action(f"focus_pane('{pane}')")
            return
        action = self._EDITING.get(event.key)
        if action is not None:
            event.stop()
            event.prevent_default()
            self._restart_blink()
            getattr(self, f"action_{action}")()
            return
        await super()._on_key(event)


class FieldCheckbox(Checkbox):
    """A checkbox whose mark is a character only when it is on ([X] / [ ]), so it reads without colour."""

    def watch_value(self) -> None:
        self._mark()
        super().watch_value()  # posts Changed

    def _mark(self) -> None:
        self.BUTTON_INNER = "X" if self.value else " "
        self.refresh()

    def on_mount(self) -> None:
        self._mark()


def control_id(key: str) -> str:
    return "in-" + key.replace(".", "-")


def row_id(key: str) -> str:
    return "field-" + key.replace(".", "-")


def _choice_label(spec: FieldSpec, raw: form.Raw) -> str:
    value = raw.get(spec.key)
    for label, v in spec.options(raw):
        if v == value:
            return str(label)
    return str(value)


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
            yield FieldCheckbox(
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
            options: list[tuple[str, Any]] = list(spec.options(raw))
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
            placeholder = {"auto_int": "auto", "auto_float": "auto", "override": "none"}.get(spec.kind, "")
            if spec.kind.startswith("optional"):
                named = {"inference.gpu_count": "all", "cluster.host_cpus_per_node": "node's"}
                placeholder = named.get(spec.key, "none")
            # Plain text, not type="number": "15T" must reach the parser whole (a number-only box would drop
            # the T and leave 15, a silently different number).
            box = FieldInput(
                str(raw.get(spec.key, "")),
                placeholder=placeholder,
                compact=True,
                validate_on=[],
                id=control_id(spec.key),
                name=spec.key,
                classes="field-control",
                select_on_focus=False,
            )
            box.cursor_blink = self._cursor_blink
            yield box
        yield Label(form.unit_of(spec, raw), classes="field-unit")

    def set_unit(self, raw: form.Raw) -> None:
        """Re-read the unit (the GPU count's is 'sockets' on a CPU) after the GPU type changed."""
        if self.spec.kind != "toggle":
            update_static(self.query_one(".field-unit", Label), form.unit_of(self.spec, raw))

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
            update_static(self._error, text)
        self.set_class(bool(text), "-error")

    @property
    def message(self) -> str:
        return self._message

    _override: bool | None = None

    def set_override(self, on: bool) -> None:
        # Only on a change: even without a layout pass, the class restyles the row.
        if self.spec.kind == "override" and on != self._override:
            self._override = on
            self.set_class(on, "-override")
            label = self.query_one(".field-label", Label)
            update_static(label, self.spec.label + ("*" if on else ""))

    def set_value(self, value: Any, raw: form.Raw) -> None:
        """Show `value` without posting a change (the caller already knows)."""
        control = self.query_one(".field-control")
        with control.prevent(Input.Changed, Select.Changed, Checkbox.Changed):
            if isinstance(control, Select):
                options = self.spec.options(raw)
                if value not in {v for _, v in options}:
                    options = [(str(value), value)] + options
                if options != control._options:
                    control.set_options(options)
                control.value = value
                # set_options keeps an unchanged value's old text on screen (the label of 'own: nvlink4'
                # when the GPU changed to one with nvlink3): repaint it from the new options.
                control._watch_value(value)
            elif isinstance(control, Checkbox):
                control.value = bool(value)
            elif isinstance(control, Input):
                control.value = str(value)


class ScenarioEditor(VerticalScroll):
    """Every pane of fields, in one scrollable column."""

    BINDINGS = [
        Binding(
            "ctrl+r", "reset_field", "Reset field", show=False, tooltip="Back to the opened preset's value", id="reset"
        ),
        Binding("pagedown", "next_pane(1)", "Next pane", show=False, tooltip="The next pane's first field"),
        Binding("pageup", "next_pane(-1)", "Previous pane", show=False, tooltip="The previous pane's first field"),
    ]

    class Edited(Message):
        """The fields changed: `built` holds the validated scenario or the problems."""

        def __init__(self, built: Built, key: str) -> None:
            super().__init__()
            self.built = built
            self.key = key

    def __init__(self, scenario: Scenario, cursor_blink: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.base = scenario  # the opened (or last saved) scenario: reset goes back to it
        self.raw: form.Raw = form.form_values(scenario)
        self._cursor_blink = cursor_blink
        self._rows: dict[str, FieldRow] = {}
        self._notes: dict[str, str] = {}
        self.built: Built = form.build(scenario, self.raw)
        # Undo history: (field key, fields before the change). Consecutive edits of one text field are one
        # step, as in a text editor (typing 2048 is undone at once, not digit by digit).
        self._undo: list[tuple[str, form.Raw]] = []
        self._redo: list[tuple[str, form.Raw]] = []
        self._last_key: str | None = None

    # Panes composed before the first screen; the others are mounted right after it (they start below
    # the fold at 80x24, and fifty fields' worth of widgets is a good part of the start-up time).
    FIRST_PANES = 3

    def compose(self) -> ComposeResult:
        for pane in PANES[: self.FIRST_PANES]:
            yield from self._pane(pane)

    def _pane(self, pane) -> list:
        title = Static(f"{pane.title}  {PANE_KEYS[pane.id]}", classes="pane-title", id=f"pane-{pane.id}", markup=False)
        widgets: list[Widget] = [title]
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
        if not self.is_attached or any(not row.children for row in self._rows.values()):
            return  # the app closed (ctrl+q at start-up) before the rows were composed
        self.set_grid_columns(self._grid_columns)
        self._refresh_marks()

    _grid_columns = ""

    def set_grid_columns(self, columns: str) -> None:
        """The label / control / unit widths of every field row (rows mounted later get them too)."""
        self._grid_columns = columns
        if not columns:
            return
        for row in self._rows.values():
            if row.spec.kind != "toggle" and row.is_attached:
                row.styles.grid_columns = columns

    # -- widths ----------------------------------------------------------------------------------

    @staticmethod
    def column_widths(raw: form.Raw) -> tuple[int, int, int]:
        """(label, control, unit) widths that show every label and unit whole, and values up to
        CONTROL_MAX cells (a longer one scrolls in its box; its full text is in the tooltip)."""
        specs = [s for s in FIELDS.values() if s.kind != "toggle"]
        label = max(cell_len(s.label) for s in specs) + 2  # room for the override mark
        unit = max(cell_len(s.unit) for s in specs)
        values = []
        for s in specs:
            if s.kind == "choice":
                values.append(cell_len(_choice_label(s, raw)) + SELECT_EXTRA)
            else:
                values.append(cell_len(str(raw.get(s.key, ""))) + 2)
        control = max(CONTROL_MIN, min(CONTROL_MAX, max(values)))
        return label, control, unit

    def preferred_width(self) -> int:
        """The editor's width at which nothing in it is cut: columns, gaps, padding and scroll bar."""
        label, control, unit = self.column_widths(self.raw)
        return label + control + 1 + unit + 3

    # -- loading -------------------------------------------------------------------------------

    def load(self, scenario: Scenario) -> Built:
        """Show `scenario` in every field (no change events) and return its build; the history restarts."""
        self.base = scenario
        self._undo.clear()
        self._redo.clear()
        self._last_key = None
        self._notes.clear()
        return self._show_raw(form.form_values(scenario))

    def _show_raw(self, raw: form.Raw) -> Built:
        self._drop_held()  # replaced by the values shown now
        self.raw = raw
        for key, row in self._rows.items():
            row.set_value(self.raw.get(key), self.raw)
        if "cluster.gpu_count" in self._rows:
            self._rows["cluster.gpu_count"].set_unit(self.raw)
        self.built = form.build(self.base, self.raw)
        self._refresh_marks()
        return self.built

    @property
    def modified(self) -> bool:
        """Whether the fields say something other than the opened (or last saved) scenario."""
        if self.built.ok:
            return self.built.scenario != self.base
        return True

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
        if not (key == self._last_key and isinstance(event.control, Input)):
            self._undo.append((key, self.raw))
            del self._undo[:-200]
        self._redo.clear()
        self._last_key = key
        self.raw = self.raw | {key: value}
        refilled = [spec.key for spec in FIELDS.values() if spec.follows == key]
        if refilled:
            self.raw = form.refill_followers(self.raw, key)
            for follower in refilled:
                if follower in self._rows:
                    self._rows[follower].set_value(self.raw[follower], self.raw)
        for named in ("network.scale_up", "cluster.host_cpu"):
            if key == "cluster.gpu" and named in self._rows:
                # The scale-up and host choices name the GPU's own fabric and node type's CPU.
                self._rows[named].set_value(self.raw[named], self.raw)
        if key == "cluster.gpu" and "cluster.gpu_count" in self._rows:
            self._rows["cluster.gpu_count"].set_unit(self.raw)
        self.built = form.build(self.base, self.raw)
        self._drop_held()
        if self.built.issues and isinstance(event.control, Input):
            # A number on its way to a valid value is often invalid (3 and 38 on the way to 384): its problem
            # is shown once typing pauses, not at every key (the message and the stale status line each
            # change the screen's layout). Any action before then takes it at once (take_held).
            self._held = self.set_timer(PROBLEM_DELAY_S, self._show_held)
            self._held_key = key
            return
        self._refresh_marks()
        self.post_message(self.Edited(self.built, key))

    _held: Timer | None = None
    _held_key = ""

    def _show_held(self) -> None:
        held = self.take_held()
        if held is not None:
            self.post_message(self.Edited(*held))

    def take_held(self) -> tuple[Built, str] | None:
        """The change whose problem waits for typing to pause, with its messages now shown; None if none."""
        if not self._drop_held():
            return None
        self._refresh_marks()
        return self.built, self._held_key

    def _drop_held(self) -> bool:
        """Stop waiting to show a typed value's problem; whether one was waiting."""
        if self._held is None:
            return False
        self._held.stop()
        self._held = None
        return True

    def _apply(self, raw: form.Raw, key: str) -> None:
        self._last_key = None
        built = self._show_raw(raw)
        self.post_message(self.Edited(built, key))
        if key in self._rows:
            self.scroll_to_widget(self._rows[key], animate=False)

    def undo(self) -> bool:
        """Back one edit; False when there is none."""
        if not self._undo:
            return False
        key, raw = self._undo.pop()
        self._redo.append((key, self.raw))
        self._apply(raw, key)
        return True

    def redo(self) -> bool:
        if not self._redo:
            return False
        key, raw = self._redo.pop()
        self._undo.append((key, self.raw))
        self._apply(raw, key)
        return True

    def reset_field(self, key: str) -> bool:
        """The field `key` back to the opened preset's value (one undoable step); False if it already is."""
        opened = form.form_values(self.base)
        if key not in FIELDS or self.raw.get(key) == opened.get(key):
            return False
        self._undo.append((key, self.raw))
        self._redo.clear()
        raw = self.raw | {key: opened.get(key)}
        if any(spec.follows == key for spec in FIELDS.values()):
            raw = form.refill_followers(raw, key)
        self._apply(raw, key)
        return True

    def set_fields(self, values: form.Raw, key: str) -> bool:
        """Several fields at once (a goal's answer: GPU type and count), as one undoable step; the fields that
        follow a changed one (a GPU's memory and peaks) are refilled. False when nothing changes."""
        raw = self.raw | {k: v for k, v in values.items() if k in FIELDS}
        if raw == self.raw:
            return False
        for changed in [k for k in values if k in FIELDS and values[k] != self.raw.get(k)]:
            if any(spec.follows == changed for spec in FIELDS.values()):
                raw = form.refill_followers(raw, changed)
        self._undo.append((key, self.raw))
        self._redo.clear()
        self._apply(raw, key)
        return True

    def reset_all(self) -> bool:
        """Every field back to the opened preset (one undoable step)."""
        opened = form.form_values(self.base)
        if opened == self.raw:
            return False
        self._undo.append(("cluster.gpu_count", self.raw))
        self._redo.clear()
        self._notes.clear()
        self._apply(opened, "cluster.gpu_count")
        return True

    def focused_key(self) -> str | None:
        focused = self.app.focused
        name = getattr(focused, "name", None)
        return name if name in FIELDS else None

    def action_reset_field(self) -> None:
        key = self.focused_key()
        if key is None:
            return
        if self.reset_field(key):
            self.notify(f"{form.where(key)} back to the opened preset's value", timeout=3)

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

    def message_of(self, key: str) -> str:
        row = self._rows.get(key)
        return row.message if row else ""

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

    def action_next_pane(self, step: int) -> None:
        """Page down / up: the first field of the next / previous pane (any pane is a few keys away)."""
        key = self.focused_key()
        here = form.PANE_OF[key].id if key else PANES[0].id
        ids = [p.id for p in PANES]
        self.focus_pane(ids[(ids.index(here) + step) % len(ids)])

    def focus_pane(self, pane_id: str) -> bool:
        """Focus the pane's first field; False when its fields are not mounted yet."""
        pane = next(p for p in PANES if p.id == pane_id)
        first = pane.fields[0].key
        if first not in self._rows or not self._rows[first].is_mounted:
            return False
        self.scroll_to_widget(self.query_one(f"#pane-{pane_id}"), animate=False, top=True)
        self._rows[first].query_one(".field-control").focus(scroll_visible=False)
        return True


def _message(issue: FieldIssue) -> str:
    """The message under a field: the pane and field it is about, then what is wrong and what is allowed."""
    where = form.where(issue.key)
    if form.field_for_issue(issue.key) != issue.key:
        where = f"{where} ({issue.key})"
    return f"{where}: {issue.message}"
