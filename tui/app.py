"""The explorer: a Textual app in which every change recomputes the scenario, the comparisons and the scale.

The flow runs one way:

    editor fields --form.build--> validated, frozen Scenario --Explorer.run (one engine call)--> Outcome
        --> figures, compare table, scale chart (only changed cells repaint)

The engine runs in a thread worker so that typing never waits on it; requests that arrive while it runs
are coalesced (only the newest is computed next), and results come back with `call_from_thread`.
Invalid input never reaches the engine: the editor names the field, and the figures keep the last valid
values, marked stale.

`make_app()` builds the app for `whatif`, the tests and the benchmark alike.
"""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Iterable

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from whatif.engine.scenario import Scenario

from . import files
from . import format as fmt
from .form import FIELDS, Built, field_for_issue, label_for
from .screens.dialogs import ConfirmScreen, OpenScreen, SaveScreen, preset_stem
from .screens.help import HelpScreen
from .screens.main import MainScreen
from .session import EvaluateFn, Explorer, Outcome, Preset, comparisons_for, discover_presets
from .widgets.compare import BY_KEY, COLUMNS
from .widgets.figures import Figure

PLAN_FIELD = "training.parallelism.tp"
THEMES = {
    "textual-dark": "textual-light",
    "textual-light": "textual-dark",
    "ansi-dark": "ansi-light",
    "ansi-light": "ansi-dark",
}
VIEWS = {
    "explore": "Explore: edit and see the figures",
    "compare": "Compare with presets",
    "scale": "Scale: days and cost vs GPU count",
}


class WhatIfApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "whatif"
    ENABLE_COMMAND_PALETTE = True
    # Requests needing the engine for at most this many rows run on the UI thread (see request_compute).
    inline_rows = 2
    BINDINGS = [
        Binding("f1", "help", "Help", id="help", tooltip="What each figure means and how it is computed"),
        Binding("ctrl+o", "open_preset", "Open", id="open", tooltip="Open a shipped or saved preset"),
        Binding("ctrl+s", "save", "Save", id="save", tooltip="Save the current scenario as a preset"),
        Binding("f2", "view('explore')", "Edit", id="view-explore", tooltip=VIEWS["explore"]),
        Binding("f3", "view('compare')", "Compare", id="view-compare", tooltip=VIEWS["compare"]),
        Binding("f4", "view('scale')", "Scale", id="view-scale", tooltip=VIEWS["scale"]),
        Binding("ctrl+t", "toggle_theme", "Theme", id="theme", tooltip="Switch between light and dark"),
    ]

    def __init__(
        self,
        scenario: Scenario,
        path: str | None = None,
        *,
        evaluate_fn: EvaluateFn | None = None,
        presets: list[Preset] | None = None,
        cursor_blink: bool = True,
        theme: str | None = None,
        explorer: Explorer | None = None,
        freeze_gc: bool = False,
    ) -> None:
        super().__init__()
        self.scenario = scenario  # the current valid scenario (what the figures describe)
        self.path = path
        self.cursor_blink = cursor_blink
        self.explorer = explorer or (Explorer(evaluate_fn) if evaluate_fn else Explorer())
        self.presets = discover_presets() if presets is None else presets
        self.pinned: list[Preset] = []
        self.own_workload = False
        self.outcome: Outcome | None = None
        self.invalid: Built | None = None
        self.last_fit: dict | None = None  # the last result row whose training fits (kept when a plan fails)
        self.engine_failure: str | None = None
        self.edited_key = PLAN_FIELD  # where a "no plan fits" message goes: the field edited last
        self._noted = PLAN_FIELD
        self._generation = 0
        self._engine_lock = threading.Lock()
        self._engine_wanted = None  # the newest Job waiting for the worker
        self._engine_busy = False
        self._comparisons_key: tuple | None = None
        self._comparisons: list = []
        self._initial_theme = theme or os.environ.get("WHATIF_THEME") or "textual-dark"
        self.main: MainScreen | None = None
        self.freeze_gc = freeze_gc

    # -- start ---------------------------------------------------------------------------------

    def get_default_screen(self) -> Screen:
        self.main = MainScreen(self.scenario, cursor_blink=self.cursor_blink)
        return self.main

    def on_mount(self) -> None:
        if self._initial_theme in self.available_themes:
            self.theme = self._initial_theme
        self._set_titles()

    def main_ready(self) -> None:
        """The main screen is composed: compute the first outcome and put the cursor in the GPU count.

        The first screen needs only the current row: it is computed at once, here; the comparisons and the
        scale sweep follow in one engine call on the worker thread."""
        job = self.explorer.prepare(self.scenario, self.comparison_rows(), self._generation)
        if len(job.missing) > self.inline_rows:
            try:
                self._apply(self.explorer.finish(job, current_only=True))
            except Exception as exc:
                self._engine_failed(f"{type(exc).__name__}: {exc}")
        self.request_compute()
        self.main.editor.focus_field("cluster.gpu_count")

    def _set_titles(self) -> None:
        self.title = "whatif"
        self.sub_title = self.scenario.name + (f"  ({os.path.basename(self.path)})" if self.path else "")

    # -- the one-way flow ----------------------------------------------------------------------

    def propose(self, built: Built, key: str | None = None) -> None:
        """The editor's latest state: a valid scenario goes to the engine; problems mark the figures stale.
        `key` is the field just edited (a 'no plan fits' message is shown under it)."""
        if key is not None:
            self.edited_key = key
        if not built.ok:
            self.invalid = built
            self.render_outcome()
            return
        self.invalid = None
        if built.scenario != self.scenario or self.outcome is None:
            self.scenario = built.scenario
            self._set_titles()
            self.request_compute()
        else:
            self.render_outcome()

    def comparison_rows(self) -> list:
        """Comparison scenarios for the current workload; rebuilt only when the workload or the list changes."""
        s = self.scenario
        key = (
            s.training,
            s.inference,
            self.own_workload,
            tuple(p.key for p in self.presets),
            tuple(p.key for p in self.pinned),
        )
        if key != self._comparisons_key:
            self._comparisons_key = key
            self._comparisons = comparisons_for(s, [*self.presets, *self.pinned], self.own_workload)
        return self._comparisons

    def request_compute(self) -> None:
        """Ask for the outcome of the current scenario. A request that needs the engine for only a few
        rows (a GPU count typed: the current row) is computed at once, on this thread: that is quicker
        than handing it to a thread which then competes with the screen for the interpreter. Bigger
        ones (a workload edit recomputes every comparison and the sweep) go to the worker thread, so
        the screen stays responsive; requests arriving meanwhile are coalesced."""
        self._generation += 1
        # Resolving and hashing the rows takes well under a millisecond (the comparison and sweep frames
        # are kept between keystrokes); `finish` re-checks the cache, so a job prepared here stays right
        # even if the worker fills the cache meanwhile.
        job = self.explorer.prepare(self.scenario, self.comparison_rows(), self._generation)
        with self._engine_lock:
            busy = self._engine_busy
        if not busy and len(job.missing) <= self.inline_rows:
            try:
                outcome = self.explorer.finish(job)
            except Exception as exc:  # an engine fault: say so, keep the last figures
                self._engine_failed(f"{type(exc).__name__}: {exc}")
            else:
                self._apply(outcome)
            return
        with self._engine_lock:
            self._engine_wanted = job
            start = not self._engine_busy
            self._engine_busy = True
        if start:
            self._engine_worker()

    @work(thread=True, group="engine", exit_on_error=False)
    def _engine_worker(self) -> None:
        while True:
            with self._engine_lock:
                job, self._engine_wanted = self._engine_wanted, None
                if job is None:
                    self._engine_busy = False
                    return
            try:
                outcome = self.explorer.finish(job)
            except Exception as exc:  # an engine fault: say so, keep the last figures
                self.call_from_thread(self._engine_failed, f"{type(exc).__name__}: {exc}")
                continue
            with self._engine_lock:
                newer = self._engine_wanted is not None
            if not newer:  # a newer request is queued: skip painting this one
                self.call_from_thread(self._apply, outcome)

    def _engine_failed(self, message: str) -> None:
        self.engine_failure = message
        self.render_outcome()

    def _apply(self, outcome: Outcome) -> None:
        self.engine_failure = None
        first = self.outcome is None
        self.outcome = outcome
        self.render_outcome()
        if first and self.freeze_gc:
            # Everything alive after the first full screen (widgets, catalogs, styles) stays alive: move it
            # out of the collector's way, so that a collection during a keystroke has little to scan.
            # (Only for the one app of a `whatif` process: frozen objects are never freed.)
            gc.freeze()

    def render_outcome(self) -> None:
        """Paint the last outcome, with the current validity (stale marks, notes under fields)."""
        if self.main is None or not self.main.ready:
            return
        outcome = self.outcome
        editor, figures = self.main.editor, self.main.figures
        if outcome is None:
            figures.show(
                None, None, status="computing..." if not self.invalid else self._stale_text(), stale=bool(self.invalid)
            )
            return
        s, row = outcome.scenario, outcome.current
        train_row, train_note, train_stale, plan_note = None, "", False, ""
        if s.training is None:
            train_note = "(no training workload)"
        elif row.get("train_fits"):
            train_row = self.last_fit = row
            train_note = f"{_model_name(s.training.model)}, {fmt.si(s.training.train_tokens)} tokens"
        else:
            reason = row.get("train_reason") or "no plan fits"
            plan_note = f"no plan fits: {reason}"
            train_note = "(stale: no plan fits)"
            train_row, train_stale = self.last_fit, True
        note_key = (
            self.edited_key if self.edited_key in FIELDS and FIELDS[self.edited_key].kind != "toggle" else PLAN_FIELD
        )
        if note_key != self._noted:
            editor.set_note(self._noted, "")
            self._noted = note_key
        editor.set_note(note_key, "" if self.invalid else plan_note)
        serve_row, serve_note = (row, "") if s.inference is not None else (None, "(no serving workload)")
        if serve_row is not None:
            serve_note = f"{_model_name(s.inference.model)} {s.inference.precision}"
        if serve_row is not None and "infer_ttft_ms" not in serve_row:
            serve_note = "(not modelled yet)"
        if self.invalid:
            status, stale = self._stale_text(), True
        elif self.engine_failure:
            status, stale = f"○ stale: engine error: {self.engine_failure}", True
        elif train_stale:
            status, stale = f"○ training: {plan_note}", False
        else:
            status, stale = "● live", False
        figures.show(
            train_row,
            serve_row,
            train_note=train_note,
            serve_note=serve_note,
            status=status,
            stale=stale,
            train_stale=train_stale,
        )
        self.render_views()

    def render_views(self) -> None:
        """The compare table and the scale chart, if on screen; a hidden one is brought up to date when
        its tab is shown (cells nobody sees are not worth a keystroke's time)."""
        outcome, view = self.outcome, self.main.query_one("#views").active
        if outcome is None:
            return
        s = outcome.scenario
        if view == "compare":
            self.main.compare.show(s, outcome.current, outcome.comparisons)
            self._caption()
        elif view == "scale":
            self.main.scale.show(outcome.sweep, s.cluster.gpu_count, s.cluster.gpu, s.cluster.gpus_per_node)

    def _stale_text(self) -> str:
        issues = self.invalid.issues if self.invalid else ()
        if not issues:
            return "○ stale"
        first = issues[0]
        more = f" (+{len(issues) - 1} more)" if len(issues) > 1 else ""
        where = label_for(field_for_issue(first.key) or first.key)
        return f"○ stale: {where}: {first.message}{more}"

    def _caption(self) -> None:
        mode = (
            "each preset runs its own workload"
            if self.own_workload
            else "each preset's hardware runs the current workload"
        )
        table = self.main.compare
        order = f"; sorted by {BY_KEY[table.sort_key].label}" if table.sort_key else ""
        text = f"{mode}{order}. s sort, w workload, p pin, del unpin"
        self.main.query_one("#compare-caption", Figure).show(text)

    # -- actions ---------------------------------------------------------------------------------

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_view(self, view: str) -> None:
        if self.screen is self.main:
            self.main.show_view(view)

    def action_toggle_theme(self) -> None:
        self.theme = THEMES.get(self.theme, "textual-dark")

    def action_pin(self) -> None:
        n = max((int(p.key.split(":")[1]) for p in self.pinned), default=0) + 1
        label = f"pin {n}: {self.scenario.name}"
        self.pinned.append(Preset(f"pinned:{n}", label, self.scenario, None, "pinned"))
        self.notify(f"Pinned the current scenario as '{label}'", timeout=3)
        self.request_compute()

    def action_unpin(self) -> None:
        table = self.main.compare
        if table.row_count == 0:
            return
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        if key and key.startswith("pinned:"):
            self.pinned = [p for p in self.pinned if p.key != key]
            self.request_compute()
        else:
            self.notify("Only pinned rows can be removed", severity="warning", timeout=3)

    def action_unpin_all(self) -> None:
        self.pinned = []
        self.request_compute()

    def action_toggle_workload(self) -> None:
        self.own_workload = not self.own_workload
        self.request_compute()

    def action_sort(self, column: str) -> None:
        self.main.show_view("compare")
        self.main.compare.sort_by(column)
        self._caption()

    def action_open_preset(self) -> None:
        self.push_screen(OpenScreen(self.presets), self._opened)

    def _opened(self, key: str | None) -> None:
        if key:
            self.open_preset(key)

    def open_preset(self, key: str) -> bool:
        preset = next((p for p in self.presets if p.key == key), None)
        if preset is None:
            return False
        if preset.scenario is None:
            self.notify(
                f"{preset.label} cannot be used: {preset.error}", title="Preset not opened", severity="error", timeout=8
            )
            return False
        path = None
        if preset.source == "user":
            path = str(files.user_presets().get(preset.label, "")) or None
        self.open_scenario(preset.scenario, path)
        return True

    def open_scenario(self, scenario: Scenario, path: str | None = None) -> None:
        self.path = path
        built = self.main.editor.load(scenario)
        self.main.editor.set_note(self._noted, "")
        self.edited_key = self._noted = PLAN_FIELD
        self.last_fit = None
        self.propose(built)
        self._set_titles()

    def action_save(self) -> None:
        if self.invalid is not None:
            first = self.invalid.issues[0]
            self.notify(f"Fix {first.key} first: {first.message}", title="Not saved", severity="error", timeout=6)
            return
        c = self.scenario.cluster
        name = self.scenario.name if self.path else f"{c.gpu}-{c.gpu_count}"
        self.push_screen(SaveScreen(name, cursor_blink=self.cursor_blink), self._save_named)

    def _save_named(self, name: str | None) -> None:
        if not name:
            return
        target = files.user_presets_dir() / f"{preset_stem(name)}.toml"
        if target.exists():
            self.push_screen(
                ConfirmScreen(f"A preset named '{target.stem}' already exists. Replace it?"),
                lambda yes: self._write(name, target, True) if yes else self.notify("Not saved", timeout=3),
            )
        else:
            self._write(name, target, False)

    def _write(self, name: str, target, overwrite: bool) -> None:
        scenario = self.scenario if self.scenario.name == name else self.scenario.edited(None, name=name)
        try:
            files.save_scenario(scenario, target, overwrite=overwrite)
        except FileExistsError:
            self.notify(f"'{target.stem}' appeared meanwhile; not replaced", severity="error", timeout=6)
            return
        except OSError as exc:
            self.notify(f"Could not save: {exc.strerror or exc}", title="Not saved", severity="error", timeout=8)
            return
        self.path = str(target)
        self.main.editor.base = scenario
        self.scenario = scenario
        saved = Preset(f"user:{target.stem}", target.stem, scenario, None, "user")
        self.presets = [p for p in self.presets if p.key != saved.key] + [saved]
        self._set_titles()
        self.notify(f"Saved as {target.stem}.toml", timeout=3)
        self.request_compute()

    def action_focus_pane(self, pane: str) -> None:
        self.main.show_view("explore")
        self.main.editor.focus_pane(pane)

    def action_screenshot_file(self) -> None:
        path = self.save_screenshot()
        self.notify(f"Screenshot saved: {path}", timeout=5)

    # -- command palette ---------------------------------------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Help: what the figures mean", "How each figure is computed (F1)", self.action_help)
        yield SystemCommand("Open preset...", "Pick a shipped or saved preset (ctrl+o)", self.action_open_preset)
        yield SystemCommand(
            "Save scenario as preset...", "Save with a name; asks before replacing (ctrl+s)", self.action_save
        )
        for view, text in VIEWS.items():
            yield SystemCommand(f"Show {view}", text, lambda v=view: self.action_view(v))
        yield SystemCommand("Toggle light/dark theme", "ctrl+t", self.action_toggle_theme)
        yield SystemCommand(
            "Use terminal colours",
            "ANSI theme (for 16-colour terminals and SSH)",
            lambda: setattr(self, "theme", "ansi-dark"),
        )
        yield SystemCommand("Pin current scenario", "Add it as a comparison row", self.action_pin)
        if self.pinned:
            yield SystemCommand("Remove all pinned rows", "Clear the pinned comparison rows", self.action_unpin_all)
        yield SystemCommand(
            "Compare: toggle preset workload",
            "Presets run the current workload, or each its own",
            self.action_toggle_workload,
        )
        for col in COLUMNS:
            yield SystemCommand(
                f"Compare: sort by {col.label}",
                "Sort the comparison table",
                lambda c=col.key: self.action_sort(c),
                discover=False,
            )
        from .form import PANES

        for pane in PANES:
            yield SystemCommand(
                f"Edit {pane.title}",
                "Jump to the pane's first field",
                lambda p=pane.id: self.action_focus_pane(p),
                discover=False,
            )
        for p in self.presets:
            title = p.scenario.name if p.scenario else f"cannot be used: {p.error}"
            yield SystemCommand(f"Open preset: {p.label}", title, lambda k=p.key: self.open_preset(k))
        yield SystemCommand(
            "Save screenshot (SVG)",
            "Writes an SVG of the screen to the current folder",
            self.action_screenshot_file,
            discover=False,
        )


def _model_name(model) -> str:
    return model if isinstance(model, str) else model.name


def make_app(scenario: Scenario | None = None, path: str | None = None, **options) -> WhatIfApp:
    """The explorer on `scenario` (default: the built-in default preset); options as WhatIfApp takes."""
    if scenario is None:
        scenario = files.load_scenario(files.shipped_presets()["default"])
    return WhatIfApp(scenario, path, **options)


def run_app(scenario: Scenario, path: str | None = None) -> int:
    """Run the explorer on a terminal; the exit status for `whatif`."""
    app = make_app(scenario, path, freeze_gc=True)
    result = app.run()
    return result if isinstance(result, int) else (app.return_code or 0)


__all__ = ["WhatIfApp", "make_app", "run_app"]
