"""The explorer: a Textual app in which every change recomputes the scenario, the comparisons and the scale.

The flow runs one way:

    editor fields --form.build--> validated, frozen Scenario --Explorer (the engine)--> Outcome
        --> figures, compare table, scale chart, details (only changed cells repaint)

A keystroke's own figures come first: the current scenario's rows are computed at once on the UI thread
(one or two rows), and whatever else the change needs (every comparison row and the scale sweep, after
a workload edit) follows from a thread worker once typing pauses; a request overtaken by a newer edit
stops between engine calls, and results come back with `call_from_thread`. Invalid input never reaches the
engine: the editor names the pane and field, and the figures it affects keep their last valid values,
marked stale (a serving-only problem leaves the training figures live).

`make_app()` builds the app for `whatif`, the tests and the benchmark alike.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Callable, Iterable

import polars as pl
from textual import events, work
from textual.app import App, ScreenStackError, SystemCommand
from textual.binding import Binding
from textual.command import CommandPalette
from textual.css.query import NoMatches
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.timer import Timer
from textual.widget import MountError
from whatif.engine.errors import ScenarioError, printable
from whatif.engine.report import records
from whatif.engine.scenario import Scenario

from . import config, files, form, numbers, textual_fixes
from .form import FIELDS, PANES, Built
from .screens.dialogs import (
    NAME_RULE,
    ConfirmScreen,
    OpenScreen,
    SaveScreen,
    kept_file_name,
    name_problem,
    save_target,
)
from .screens.goal import Applied, GoalScreen
from .screens.help import HelpScreen
from .screens.main import MainScreen
from .screens.palette import Palette
from .session import EvaluateFn, Explorer, Job, Outcome, Preset, comparisons_for, discover_presets
from .widgets.compare import BY_KEY, COLUMNS, CURRENT, Entry
from .widgets.editor import PANE_BINDING_KEYS, PANE_KEYS
from .widgets.figures import Figure, cost_basis

textual_fixes.apply()

PLAN_FIELD = "training.parallelism.tp"
THEMES = {
    "textual-dark": "textual-light",
    "textual-light": "textual-dark",
    "ansi-dark": "ansi-light",
    "ansi-light": "ansi-dark",
}
VIEWS = {
    "explore": "Explore: edit and see the figures",
    "compare": "Compare with presets, against a baseline row",
    "scale": "Scale: days and cost vs GPU count",
    "details": "Details: every figure of `whatif eval --json`",
}
DEFAULT_THEME = "textual-dark"
# Actions that act on the explorer behind a dialog, or open one: only from the main screen (a key pressed
# in a dialog, or twice before the first dialog is drawn, never stacks a second Save or Open).
MAIN_SCREEN_ONLY = frozenset({"open_preset", "save", "goal", "undo", "redo", "focus_pane", "reset_all", "reset_field"})


def palette_text(text: str, limit: int | None = 80) -> str:
    """User text (a preset's name or file name) as the command palette shows it: it reads its titles and
    help as markup, so every '[' is escaped (Textual's markup reads a backslash only before a bracket;
    `textual.markup.escape` is Rich's rule, and doubles backslashes Textual then shows); control characters
    are written as escapes, long text cut."""
    return printable(text, limit).replace("[", "\\[")


class WhatIfApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "whatif"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        Binding("f1", "help", "Help", id="help", tooltip="What each figure means, and every key"),
        Binding("ctrl+o", "open_preset", "Open", id="open", show=False, tooltip="Open a shipped or saved preset"),
        Binding("ctrl+s", "save", "Save", id="save", tooltip="Save the current scenario as a preset"),
        Binding("ctrl+z", "undo", "Undo", id="undo", tooltip="Undo the last edit"),
        Binding("ctrl+y", "redo", "Redo", id="redo", show=False, tooltip="Redo the edit just undone"),
        Binding("f2", "view('explore')", "Edit", id="view-explore", tooltip=VIEWS["explore"]),
        Binding("f3", "view('compare')", "Compare", id="view-compare", tooltip=VIEWS["compare"]),
        Binding("f4", "view('scale')", "Scale", id="view-scale", tooltip=VIEWS["scale"]),
        Binding("f5", "view('details')", "Details", id="view-details", tooltip=VIEWS["details"]),
        Binding("f6", "view('figures')", "Figures", id="view-figures", tooltip="The figures (narrow layout)"),
        Binding("f7", "goal", "Goal", id="goal", show=False, tooltip="Goal seek: how many GPUs, of which type"),
        Binding("ctrl+t", "toggle_theme", "Theme", id="theme", show=False, tooltip="Switch between light and dark"),
        *(
            Binding(key, f"focus_pane('{pane}')", f"Edit {pane}", show=False, id=f"pane-{pane}")
            for pane, key in PANE_BINDING_KEYS.items()
        ),
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
        origin: str | None = None,
    ) -> None:
        super().__init__()
        self.scenario = scenario  # the last valid scenario (what is saved)
        self.computed = scenario  # what the engine was last asked about (without a workload that has problems)
        self.path = path
        self.origin = origin or (os.path.basename(path) if path else "the scenario given")
        self.cursor_blink = cursor_blink
        self.explorer = explorer or (Explorer(evaluate_fn) if evaluate_fn else Explorer())
        self.presets = discover_presets() if presets is None else presets
        self.pinned: list[Preset] = []
        self.own_workload = False
        self.outcome: Outcome | None = None
        self.views_outcome: Outcome | None = None  # the last outcome with every comparison and sweep row
        self.invalid: Built | None = None
        self.last_train: dict | None = None  # the last result row whose training fits (kept while stale)
        self.last_serve: dict | None = None  # the last result row with serving figures
        self.engine_failure: str | None = None
        self.edited_key = PLAN_FIELD  # where a "no plan fits" message goes: the field edited last
        self._noted = PLAN_FIELD
        self._generation = 0
        self._shown_generation = -1
        self._engine_lock = threading.Lock()
        self._engine_wanted = None  # the newest Job waiting for the worker (or a function that prepares it)
        self._engine_busy = False
        # (key, comparison scenarios) for the workload they were built for; one tuple, so that the worker
        # can replace it while the UI thread reads it.
        self._comparisons: tuple[tuple, list] | None = None
        self._explicit_theme = theme
        self._main: MainScreen | None = None
        self.freeze_gc = freeze_gc

    # -- start ---------------------------------------------------------------------------------

    def get_default_screen(self) -> Screen:
        self._main = MainScreen(self.scenario, cursor_blink=self.cursor_blink)
        return self._main

    @property
    def main(self) -> MainScreen:
        """The explorer's screen. It is made before the first frame (`get_default_screen`), so every key,
        action and engine answer finds it; the few checks that run earlier read `_main`."""
        if self._main is None:
            raise RuntimeError("the main screen is made when the app starts")
        return self._main

    def _initial_theme(self) -> str:
        """The theme asked for, else WHATIF_THEME, else the one remembered in the settings file."""
        for name in (self._explicit_theme, os.environ.get("WHATIF_THEME"), config.load().get("theme")):
            if name and name in self.available_themes:
                return name
        return DEFAULT_THEME

    def _handle_exception(self, error: Exception) -> None:
        # Once the app is closing (ctrl+q answered, or the session ended), work still queued can find the
        # widgets it was to update never composed or the screens gone (NoMatches, ScreenStackError,
        # MountError): the app is leaving anyway and nothing is lost, so it leaves without a traceback. Any
        # other error, or one while the app runs, is Textual's usual fatal error.
        if (self._exit or not self._running) and isinstance(error, NoMatches | ScreenStackError | MountError):
            return
        super()._handle_exception(error)

    async def on_event(self, event: events.Event) -> None:
        # Keys and mouse events still queued while the app closes (ctrl+q during a paste or a held key) find
        # no screen left: Textual's handler then raises ScreenStackError on the way out. They are dropped.
        if isinstance(event, events.InputEvent) and not self._screen_stack:
            return
        if isinstance(event, events.Key | events.Paste):
            self._typed_at = time.monotonic()
        await super().on_event(event)

    def on_mount(self) -> None:
        self.theme = self._initial_theme()
        self.theme_changed_signal.subscribe(self, self._remember_theme)
        self._set_titles()

    async def run_action(self, action, default_namespace=None, namespaces=None) -> bool:
        # Every key binding, footer click and palette command comes through here: a problem the editor
        # holds back while a value is typed reaches the figures first, so that the action (save, pin, goal,
        # compare...) sees what the fields say.
        if self._main is not None and self.main.ready:
            held = self.main.editor.take_held()
            if held is not None:
                self.propose(*held)
        return await super().run_action(action, default_namespace, namespaces)

    def _remember_theme(self, theme) -> None:
        if config.load().get("theme") != theme.name:
            config.save(theme=theme.name)

    def main_ready(self) -> None:
        """The main screen is composed: compute the first outcome and put the cursor in the GPU count."""
        self.request_compute()
        self.main.editor.focus_field("cluster.gpu_count")

    def _set_titles(self) -> None:
        """'Default: Llama 3.1 70B on 1,024 H100 (default)', or once edited, what it started from and what
        changed: 'modified from default: 1,024 -> 2,048 GPUs (+1 more)'."""
        self.title = "whatif"
        if self._main is None or not self.main.ready:
            self.sub_title = f"{printable(self.scenario.name)} ({printable(self.origin)})"
            return
        editor = self.main.editor
        if not editor.modified:
            self.sub_title = f"{printable(editor.base.name)} ({printable(self.origin)})"
            return
        if self.invalid is not None:
            self.sub_title = f"modified from {printable(self.origin)} (with problems: see the status line)"
            return
        changed = form.changes(editor.base, self.scenario)
        first = changed[0] if changed else "edited"
        more = f" (+{len(changed) - 1} more)" if len(changed) > 1 else ""
        self.sub_title = f"modified from {printable(self.origin)}: {printable(first)}{more}"

    @property
    def unsaved(self) -> bool:
        return self._main is not None and self.main.ready and self.main.editor.modified

    # -- the one-way flow ----------------------------------------------------------------------

    def propose(self, built: Built, key: str | None = None) -> None:
        """The editor's latest state: a valid scenario goes to the engine; a problem confined to one workload
        sends the rest; problems mark the figures they affect stale. `key` is the field just edited (a 'no
        plan fits' message is shown under it)."""
        if key is not None:
            self.edited_key = key
        usable: Scenario | None
        if built.scenario is not None:
            self.invalid, usable = None, built.scenario
            self.scenario = built.scenario
        else:
            self.invalid, usable = built, built.usable
        self._set_titles()
        if usable is None:
            self.render_outcome()
            return
        if usable != self.computed or self.outcome is None:
            self.computed = usable
            self.request_compute()
        else:
            self.render_outcome()

    def _comparison_key(self, s: Scenario) -> tuple:
        return (
            s.training,
            s.inference,
            self.own_workload,
            tuple(p.key for p in self.presets),
            tuple(p.key for p in self.pinned),
        )

    def request_compute(self) -> None:
        """Ask for the outcome of the current scenario. Its own rows (one or two) are computed at once, on
        this thread, and painted: quicker than handing them to a thread that then competes with the screen
        for the interpreter. What else the change needs (every comparison row and the sweep, after a
        workload edit) goes to the worker thread once typing pauses, so the screen stays responsive;
        requests arriving meanwhile are coalesced."""
        self._generation += 1
        s, generation = self.computed, self._generation
        # After a hardware edit the comparison and sweep frames are the ones kept from before, and the
        # request is prepared whole (well under a millisecond). After a workload edit they must be built and
        # resolved again (41 scenarios, ~30 ms): only the current rows are prepared here, the rest by the
        # worker. `finish` re-checks the cache, so a job prepared here stays right even if the worker fills
        # the cache meanwhile.
        cached = self._comparisons
        whole = cached is not None and cached[0] == self._comparison_key(s) and self.explorer.sweep_resolved(s)
        job = self.explorer.prepare(s, cached[1] if whole and cached else None, generation)
        rest = not whole or any(i > 1 for i in job.missing.values())
        try:
            outcome = self.explorer.finish(job, current_only=rest)
        except Exception as exc:  # an engine fault: say so, keep the last figures
            self._engine_failed(f"{type(exc).__name__}: {exc}")
            return
        self._apply(outcome)
        if self._rest_timer is not None:
            self._rest_timer.stop()
            self._rest_timer = None
        if not rest:
            return
        # The rest waits until typing pauses: while keys arrive, the figures of each keystroke come first
        # and the worker does not compete with the screen for the interpreter.
        wanted = job if whole else self._whole_request(s, generation)
        self._rest_timer = self.set_timer(self.rest_delay_s, lambda: self._queue(wanted))

    def _whole_request(self, s: Scenario, generation: int) -> Callable[[], Job | None]:
        """What the worker runs to build `s`'s comparisons (for the presets and pins of now) and prepare
        the whole request; None once a newer edit has overtaken it."""
        key, sources, own = self._comparison_key(s), [*self.presets, *self.pinned], self.own_workload

        def whole_request() -> Job | None:
            if generation != self._generation:
                return None
            comparisons = comparisons_for(s, sources, own)
            self._comparisons = (key, comparisons)
            return self.explorer.prepare(s, comparisons, generation)

        return whole_request

    # Seconds without a new edit before the comparisons and the sweep are computed.
    rest_delay_s = 0.15
    # Rows per engine call in the worker. An edit arriving meanwhile waits for the chunk in progress (it holds
    # the interpreter half the time): 4 rows (~6 ms) instead of 16 (~20 ms) took the p95 of a token edit from
    # 1.71x to 1.25-1.40x the no-op engine's (benchmarks/bench_tui.py), for a few ms more in the worker.
    chunk_rows = 4
    _rest_timer: Timer | None = None
    # When the last key arrived (time.monotonic()); the worker holds back while keys keep coming.
    _typed_at = 0.0

    def _hold_while_typing(self) -> bool:
        """Wait (on the worker thread) until no key has arrived for `rest_delay_s`: an engine chunk running
        when the next key arrives competes with that keystroke's figures for the interpreter (the GIL) and
        can double their latency. Returns False, so that it can lead a `cancelled` check."""
        while (wait := self._typed_at + self.rest_delay_s - time.monotonic()) > 0:
            time.sleep(min(wait, 0.05))
        return False

    def _queue(self, job) -> None:
        self._rest_timer = None
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
                self._hold_while_typing()
                if callable(job):  # the request is prepared here (see request_compute)
                    job = job()
                    if job is None:
                        continue
                # In chunks, so that an edit made meanwhile stops work that is no longer wanted (the
                # engine call in progress cannot be interrupted; one chunk is a fraction of the job).
                outcome = self.explorer.finish(
                    job,
                    cancelled=lambda j=job: self._hold_while_typing() or j.generation != self._generation,
                    chunk_rows=self.chunk_rows,
                )
            except Exception as exc:  # an engine fault: say so, keep the last figures
                self.call_from_thread(self._engine_failed, f"{type(exc).__name__}: {exc}")
                continue
            if outcome is None:  # overtaken by a newer edit, which queues its own request
                continue
            with self._engine_lock:
                newer = self._engine_wanted is not None
            if not newer:  # a newer request is queued: skip painting this one
                self.call_from_thread(self._apply, outcome)

    def _engine_failed(self, message: str) -> None:
        self.engine_failure = message
        self.render_outcome()

    def _apply(self, outcome: Outcome | None) -> None:
        if outcome is None:  # the request stopped before its current rows (a newer edit asks again)
            return
        if outcome.generation < self._shown_generation:
            return  # an older request finished after a newer one was painted
        self._shown_generation = outcome.generation
        self.engine_failure = None
        first = self.outcome is None
        self.outcome = outcome
        if not outcome.partial:
            self.views_outcome = outcome
        self.render_outcome()
        if first and self.freeze_gc:
            # Everything alive after the first full screen (widgets, catalogs, styles) stays alive: move it
            # out of the collector's way, so that a collection during a keystroke has little to scan.
            # (Only for the one app of a `whatif` process: frozen objects are never freed.)
            gc.freeze()

    @property
    def stale(self) -> frozenset[str]:
        """The workloads whose figures are from before (their input has a problem)."""
        return self.invalid.stale if self.invalid else frozenset()

    def render_outcome(self) -> None:
        """Paint the last outcome, with the current validity (stale marks, notes under fields)."""
        if self._main is None or not self.main.ready:
            return
        outcome = self.outcome
        editor, figures = self.main.editor, self.main.figures
        if outcome is None:
            figures.show(None, None, status="computing..." if not self.invalid else self._stale_text(), stale=True)
            return
        s, row, stale = outcome.scenario, outcome.current, self.stale
        problem = self._first_problem()
        where = form.where(self.invalid.issues[0].key) if self.invalid and self.invalid.issues else ""
        # Training: live, stale (its input has a problem, or no plan fits), or absent.
        train_row, train_note, train_stale, plan_note = None, "", False, ""
        if "training" in stale:
            train_row, train_stale = self.last_train, True
            train_note = f"(stale: see {where})" if where else "(stale)"
        elif s.training is None:
            train_note = "(no training workload)"
        elif row.get("train_fits"):
            train_row = self.last_train = row
            train_note = f"{_model_name(s.training.model)}, {_tokens(s.training.train_tokens)} tokens"
        else:
            reason = row.get("train_reason") or "no plan fits"
            plan_note = f"no plan fits: {reason}"
            train_note = "(stale: no plan fits)"
            train_row, train_stale = self.last_train, True
        note_key = (
            self.edited_key if self.edited_key in FIELDS and FIELDS[self.edited_key].kind != "toggle" else PLAN_FIELD
        )
        if note_key != self._noted:
            editor.set_note(self._noted, "")
            self._noted = note_key
        editor.set_note(note_key, "" if self.invalid and "training" in stale else plan_note)
        # Serving, the same way.
        serve_row, serve_note, serve_stale = None, "", False
        if "inference" in stale:
            serve_row, serve_stale = self.last_serve, True
            serve_note = f"(stale: see {where})" if where else "(stale)"
        elif s.inference is None:
            serve_note = "(no serving workload)"
        elif "infer_ttft_ms" not in row:
            serve_note = "(not modelled yet)"
        else:
            serve_row = self.last_serve = row
            serve_note = f"{_model_name(s.inference.model)} {s.inference.precision}"
            if not row.get("infer_fits"):
                serve_note += f" (does not fit: {row.get('infer_reason') or 'no plan'})"
        if self.invalid and not self.invalid.usable:
            status, all_stale = self._stale_text(), True
        elif self.invalid:
            which = " and ".join("serving" if w == "inference" else w for w in sorted(stale))
            status, all_stale = f"○ {which} stale: {problem}", False
        elif self.engine_failure:
            status, all_stale = f"○ stale: engine error: {self.engine_failure}", True
        elif train_stale:
            status, all_stale = f"○ training: {plan_note}", False
        else:
            status, all_stale = "● live", False
        training_record = self._record(train_row, training=True)
        serving = (self.computed.inference if "inference" not in stale else self.scenario.inference) or None
        extra = {
            "band_pct": training_record.get("error_band_pct"),
            "runner_up": training_record.get("runner_up"),
            "cost_basis": cost_basis(training_record),
            "ttft_limit": serving.ttft_p99_limit_ms if serving else None,
            "tpot_limit": serving.tpot_p99_limit_ms if serving else None,
            "has_limits": bool(serving and (serving.ttft_p99_limit_ms or serving.tpot_p99_limit_ms)),
        }
        figures.show(
            train_row,
            serve_row,
            train_note=train_note,
            serve_note=serve_note,
            status=status,
            stale=all_stale,
            train_stale=train_stale,
            serve_stale=serve_stale,
            extra=extra,
        )
        self._shown_rows = (train_row, serve_row)
        self.render_views()

    @staticmethod
    def _record(row: dict | None, training: bool = False, inference: bool = False) -> dict:
        """One section of the JSON record (engine/report.py) of a result row; {} when there is none."""
        if row is None:
            return {}
        rec = records(pl.DataFrame([row]), [training], [inference])[0]
        return (rec["training"] if training else rec["inference"]) or {}

    def current_record(self) -> dict:
        """The JSON record of what the figures show (a stale workload's section from its last valid row)."""
        train_row, serve_row = getattr(self, "_shown_rows", (None, None))
        return {
            "name": self.scenario.name,
            "training": self._record(train_row, training=True) or None,
            "inference": self._record(serve_row, inference=True) or None,
        }

    def render_views(self) -> None:
        """The compare table, the scale chart or the details, if on screen; a hidden one is brought up to
        date when its tab is shown (cells nobody sees are not worth a keystroke's time)."""
        if self._main is None or self.outcome is None or not self.main.views_ready:
            return
        view = self.main.view
        if view == "compare":
            self._render_compare()
        elif view == "scale":
            outcome = self.views_outcome or self.outcome
            c = self.computed.cluster
            rows = outcome.sweep
            self.main.scale.show(rows, c.gpu_count, c.gpu, c.gpus_per_node)
        elif view == "details":
            caption = (
                f"Every figure of `whatif eval --json` for {self.sub_title or self.scenario.name}. "
                "Sections follow the JSON record; keys the engine adds appear here too."
            )
            self.main.details.show(self.current_record(), caption, self.stale)

    def compare_entries(self) -> list[Entry]:
        outcome = self.views_outcome or self.outcome
        if outcome is None:  # callers ask only once the first outcome is in (views_ready)
            return []
        current = self.outcome.current if self.outcome else {}
        name = "current" + (" (modified)" if self.unsaved else "")
        entries = [Entry(CURRENT, name, self.computed, current, _note(self.computed, current, None), current=True)]
        for comp, row in outcome.comparisons:
            entries.append(
                Entry(
                    comp.preset.key,
                    comp.preset.label,
                    comp.scenario,
                    row,
                    _note(comp.scenario, row, comp.error),
                    hardware_of=comp.preset.scenario,
                )
            )
        return entries

    def _render_compare(self) -> None:
        table = self.main.compare
        table.show(self.compare_entries())
        self._caption()
        self.main.query_one("#compare-detail", Figure).show(table.detail())

    def _stale_text(self) -> str:
        problem = self._first_problem()
        return f"○ stale: {problem}" if problem else "○ stale"

    def _first_problem(self) -> str:
        issues = self.invalid.issues if self.invalid else ()
        if not issues:
            return ""
        first = issues[0]
        more = f" (+{len(issues) - 1} more)" if len(issues) > 1 else ""
        return f"{form.where(first.key)}: {first.message}{more}"

    def _caption(self) -> None:
        if not self.main.views_ready:  # the first moments after start-up
            return
        mode = (
            "Each preset runs its own workload"
            if self.own_workload
            else "Each preset's hardware runs the current workload"
        )
        table = self.main.compare
        base = table.baseline_entry.name if table.baseline_entry else "current"
        order = f"; sorted by {BY_KEY[table.sort_key].label}" if table.sort_key else ""
        hidden = f"; {len(table.hidden)} hidden (H shows)" if table.hidden else ""
        updating = " (updating...)" if self.outcome and self.outcome.partial else ""
        text = (
            f"{mode}{updating}. Ratios against the baseline ◆ {base} (✓ better, ✗ worse){order}{hidden}.\n"
            "b baseline  h hide  s sort  p pin  w workload  m Markdown  c CSV"
        )
        self.main.query_one("#compare-caption", Figure).show(text)

    # -- actions ---------------------------------------------------------------------------------

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_command_palette(self) -> None:
        # Ours (screens/palette.py): Textual's with two races that ended the app closed.
        # is_open is typed for an App[object]; ours is an App[int] (the same at run time).
        if self.use_command_palette and not CommandPalette.is_open(self):  # type: ignore[arg-type]
            self.push_screen(Palette(id="--command-palette"))

    def say(
        self, message: str, *, title: str = "", severity: SeverityLevel = "information", timeout: float | None = None
    ) -> None:
        """A notification in plain text: names, file names and paths in it are shown as they are (never
        read as markup), with control characters written as escapes. The app's notifications go through it."""
        text = "\n".join(printable(line, None) for line in str(message).split("\n"))
        self.notify(text, title=printable(title, None), severity=severity, timeout=timeout, markup=False)

    def action_goal(self) -> None:
        """The Goal view on the current (last valid) scenario; its answer comes back as one undoable edit."""
        if self.screen is self.main:
            self.push_screen(GoalScreen(self.scenario), self._goal_applied)

    def _goal_applied(self, applied: Applied | None) -> None:
        if applied is None or self._main is None:
            return
        values = {"cluster.gpu": applied.gpu, "cluster.gpu_count": str(applied.gpu_count)}
        goal = applied.goal
        if goal.kind == "inference":
            # The search served on the whole cluster at the goal's rate and limits: show the figures it found.
            values |= {"inference.gpu_count": "", "inference.request_rate_per_s": numbers.show(goal.rate_per_s)}
            for key, value in (
                ("inference.ttft_p99_limit_ms", goal.ttft_p99_ms),
                ("inference.tpot_p99_limit_ms", goal.tpot_p99_ms),
            ):
                if value is not None:
                    values[key] = numbers.show(value)
        if self.main.editor.set_fields(values, "cluster.gpu_count"):
            self.say(f"Goal answer applied: {applied.gpu_count:,} {applied.gpu} (ctrl+z undoes)", timeout=4)
        else:
            self.say("The scenario already is the goal's answer", timeout=3)

    def action_view(self, view: str) -> None:
        if self.screen is self.main:
            self.main.show_view(view)

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action in MAIN_SCREEN_ONLY and self._main is not None and self.screen is not self.main:
            return False
        if action == "view" and parameters == ("figures",):
            # The Figures key only matters where the figures have a tab of their own.
            return self._main is not None and self.main.narrow
        return True

    def action_toggle_theme(self) -> None:
        self.theme = THEMES.get(self.theme, DEFAULT_THEME)

    def action_undo(self) -> None:
        if self.screen is self.main and not self.main.editor.undo():
            self.say("Nothing to undo", timeout=2)

    def action_redo(self) -> None:
        if self.screen is self.main and not self.main.editor.redo():
            self.say("Nothing to redo", timeout=2)

    def action_reset_all(self) -> None:
        if self.main.editor.reset_all():
            self.say(f"Every field back to {self.origin} (ctrl+z undoes)", timeout=3)

    def action_reset_field(self) -> None:
        self.main.editor.action_reset_field()

    def action_pin(self) -> None:
        n = max((int(p.key.split(":")[1]) for p in self.pinned), default=0) + 1
        changed = form.changes(self.main.editor.base, self.scenario)
        label = f"pin {n}: " + (", ".join(changed) if changed else f"as {self.origin}")
        self.pinned.append(Preset(f"pinned:{n}", label, self.scenario, None, "pinned"))
        self.say(f"Pinned the current scenario as '{label}'", timeout=3)
        self.request_compute()

    def action_unpin(self) -> None:
        if not self.main.views_ready:  # the first moments after start-up
            return
        table = self.main.compare
        if table.row_count == 0:
            return
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        if key and key.startswith("pinned:"):
            self.pinned = [p for p in self.pinned if p.key != key]
            self.request_compute()
        else:
            self.say("Only pinned rows can be removed", severity="warning", timeout=3)

    def action_unpin_all(self) -> None:
        self.pinned = []
        self.request_compute()

    def action_toggle_workload(self) -> None:
        self.own_workload = not self.own_workload
        self.request_compute()

    def action_sort(self, column: str) -> None:
        if not self.main.views_ready:  # the first moments after start-up
            return
        self.main.show_view("compare")
        self.main.compare.sort_by(column)
        self._caption()

    def action_toggle_column(self, column: str) -> None:
        if not self.main.views_ready:  # the first moments after start-up
            return
        self.main.show_view("compare")
        self.main.compare.toggle_column(column)
        self._render_compare()

    def action_export(self, kind: str) -> None:
        """The comparison (rows shown, every figure, ratios to the baseline) as Markdown or CSV: copied to
        the clipboard (OSC 52) and saved in the exports folder; the notification names the file."""
        if self.outcome is None or not self.main.views_ready:
            return
        table = self.main.compare
        table.show(self.compare_entries())
        text = table.as_markdown() if kind == "markdown" else table.as_csv()
        path = config.export_path("compare", ".md" if kind == "markdown" else ".csv")
        try:
            path.write_text(text, "utf-8")
        except OSError as exc:
            self.say(f"Could not write {path}: {exc.strerror}", severity="error", timeout=8)
            return
        self.copy_to_clipboard(text)
        what = "Markdown" if kind == "markdown" else "CSV"
        self.say(f"Comparison copied as {what} (OSC 52) and saved to {path}", title="Exported", timeout=8)

    def action_save_screenshot(self) -> None:
        # After the palette has closed, so the picture is the screen itself with its footer.
        self.set_timer(0.1, self.save_screenshot_to_exports)

    def save_screenshot_to_exports(self) -> None:
        path = config.export_path("whatif", ".svg")
        saved = self.save_screenshot(filename=path.name, path=str(path.parent))
        self.say(f"Screenshot saved to {saved}", title="Screenshot", timeout=8)

    async def action_quit(self) -> None:
        if self.unsaved:
            self.push_screen(
                ConfirmScreen("Quit without saving? The edits since the last save or open are lost.", yes="Quit"),
                lambda yes: self.exit() if yes else None,
            )
        else:
            self.exit()

    def action_open_preset(self) -> None:
        if self.unsaved:
            self.push_screen(
                ConfirmScreen("Open another preset? The edits since the last save or open are lost.", yes="Open"),
                self._open_if_confirmed,
            )
        else:
            self.push_screen(OpenScreen(self.presets), self._opened)

    def _open_if_confirmed(self, yes: bool | None) -> None:
        if yes:
            self.push_screen(OpenScreen(self.presets), self._opened)

    def _opened(self, key: str | None) -> None:
        if key:
            self.open_preset(key)

    def open_preset(self, key: str) -> bool:
        preset = next((p for p in self.presets if p.key == key), None)
        if preset is None:
            return False
        if preset.scenario is None:
            self.say(
                f"{preset.label} cannot be used: {preset.error}", title="Preset not opened", severity="error", timeout=8
            )
            return False
        path = None
        if preset.source == "user":
            path = str(files.user_presets().get(preset.label, "")) or None
        self.open_scenario(preset.scenario, path, origin=preset.label)
        return True

    def open_scenario(self, scenario: Scenario, path: str | None = None, origin: str | None = None) -> None:
        self.path = path
        self.origin = origin or (os.path.basename(path) if path else scenario.name)
        built = self.main.editor.load(scenario)
        self.main.editor.set_note(self._noted, "")
        self.edited_key = self._noted = PLAN_FIELD
        self.last_train = self.last_serve = None
        self.propose(built)
        self._set_titles()

    def action_save(self) -> None:
        if self.invalid is not None:
            first = self.invalid.issues[0]
            self.say(
                f"Fix {form.where(first.key)} first: {first.message}", title="Not saved", severity="error", timeout=6
            )
            return
        c = self.scenario.cluster
        name = self.scenario.name if self.path else f"{c.gpu}-{c.gpu_count}"
        kept = kept_file_name(self.path)
        self.push_screen(
            SaveScreen(name, files.user_presets_dir(), kept, cursor_blink=self.cursor_blink, opened=self.path),
            lambda chosen: self._save_named(chosen, name, kept),
        )

    def _save_named(self, name: str | None, initial: str = "", kept: str | None = None) -> None:
        if not name:
            return
        target = save_target(name, files.user_presets_dir(), initial, kept)
        if target.exists() and not self._is_opened_file(target):
            self.push_screen(
                ConfirmScreen(f"A preset named '{printable(target.stem)}' already exists. Replace it?"),
                lambda yes: self._write(name, target, True) if yes else self.say("Not saved", timeout=3),
            )
        else:
            self._write(name, target, target.exists())

    def _source_text(self) -> str | None:
        """The text of the file or shipped preset the scenario came from: a new file saved from it keeps its
        comments, order and sources (a file replaced keeps its own; files.save_scenario)."""
        try:
            if self.path and self.path != files.STDIN:
                return files.decode(files.read_bytes(self.path), self.path)
            shipped = files.shipped_presets().get(self.origin or "")
            return shipped.read_text(encoding="utf-8") if shipped is not None else None
        except (OSError, ScenarioError):
            return None

    def _is_opened_file(self, target) -> bool:
        """Whether `target` is the file the scenario was opened from (or last saved to): saving there again
        is what Save means, not a replacement to ask about."""
        try:
            return self.path is not None and os.path.samefile(self.path, target)
        except OSError:
            return False

    def _write(self, name: str, target, overwrite: bool) -> None:
        try:
            scenario = self.scenario if self.scenario.name == name else self.scenario.edited(None, name=name)
        except (ScenarioError, ValueError):  # pydantic's ValidationError is a ValueError; the dialog checks first
            problem = name_problem(name) or "the name cannot be used"
            self.say(f"{problem} ({NAME_RULE})", title="Not saved", severity="error", timeout=8)
            return
        changed = form.changes(self.main.editor.base, scenario)
        if changed:
            # The description follows the edits, as `whatif eval --set ... --save` makes it.
            scenario = files.with_edit_note(scenario, f"Edited from {self.origin}: {', '.join(changed)}.")
        try:
            files.save_scenario(scenario, target, overwrite=overwrite, template=self._source_text())
        except FileExistsError:
            self.say(f"'{target.stem}' appeared meanwhile; not replaced", severity="error", timeout=6)
            return
        except OSError as exc:
            self.say(f"Could not save: {exc.strerror or exc}", title="Not saved", severity="error", timeout=8)
            return
        self.path = str(target)
        self.origin = target.name
        self.main.editor.base = scenario
        self.main.editor.built = form.build(scenario, self.main.editor.raw)
        self.scenario = self.computed = scenario
        saved = Preset(f"user:{target.stem}", target.stem, scenario, None, "user")
        self.presets = [p for p in self.presets if p.key != saved.key] + [saved]
        self._set_titles()
        self.say(f"Saved as {target}", timeout=4)
        self.request_compute()

    def action_focus_pane(self, pane: str) -> None:
        self.main.show_view("explore")
        if not self.main.editor.focus_pane(pane):
            self.call_after_refresh(self.main.editor.focus_pane, pane)

    # -- command palette ---------------------------------------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for command in super().get_system_commands(screen):
            if command.title != "Screenshot":  # ours below saves to the exports folder, not the CWD
                yield command
        yield SystemCommand(
            "Help: what the figures mean", "How each figure is computed, every key (F1)", self.action_help
        )
        yield SystemCommand("Open preset...", "Pick a shipped or saved preset (ctrl+o)", self.action_open_preset)
        yield SystemCommand(
            "Save scenario as preset...", "Save with a name; asks before replacing (ctrl+s)", self.action_save
        )
        yield SystemCommand("Undo", "Undo the last edit (ctrl+z)", self.action_undo)
        yield SystemCommand("Redo", "Redo the edit just undone (ctrl+y)", self.action_redo)
        yield SystemCommand(
            "Reset field", "The focused field back to the opened preset (ctrl+r)", self.action_reset_field
        )
        yield SystemCommand(
            "Reset scenario",
            f"Every field back to the opened preset ({palette_text(self.origin)})",
            self.action_reset_all,
        )
        for view, text in VIEWS.items():
            yield SystemCommand(f"Show {view}", text, lambda v=view: self.action_view(v))
        yield SystemCommand(
            "Goal seek...",
            "The smallest GPU count (and cheapest GPU type) for a time, budget or serving goal (F7)",
            self.action_goal,
        )
        yield SystemCommand("Toggle light/dark theme", "Remembered for next time (ctrl+t)", self.action_toggle_theme)
        yield SystemCommand(
            "Use terminal colours",
            "ANSI theme (for 16-colour terminals and SSH)",
            lambda: setattr(self, "theme", "ansi-dark"),
        )
        yield SystemCommand(
            "Save screenshot (SVG)",
            f"Writes an SVG of the screen to {palette_text(str(config.exports_dir()), None)}",
            self.action_save_screenshot,
        )
        yield SystemCommand(
            "Pin current scenario", "Add it as a comparison row, named by what differs", self.action_pin
        )
        if self.pinned:
            yield SystemCommand("Remove all pinned rows", "Clear the pinned comparison rows", self.action_unpin_all)
        yield SystemCommand(
            "Compare: toggle preset workload",
            "Presets run the current workload, or each its own",
            self.action_toggle_workload,
        )
        yield SystemCommand(
            "Compare: export Markdown",
            "Copy to the clipboard and save in the exports folder",
            lambda: self.action_export("markdown"),
        )
        yield SystemCommand(
            "Compare: export CSV",
            "Copy to the clipboard and save in the exports folder",
            lambda: self.action_export("csv"),
        )
        yield SystemCommand(
            "Compare: fit columns to the width", "Show the columns that fit", lambda: self._fit_columns()
        )
        for col in COLUMNS:
            yield SystemCommand(
                f"Compare: sort by {col.label}",
                "Sort the comparison table (the baseline stays on top)",
                lambda c=col.key: self.action_sort(c),
                discover=False,
            )
            if col.key != "name":
                yield SystemCommand(
                    f"Compare: show/hide column {col.label}",
                    "Choose the comparison's columns",
                    lambda c=col.key: self.action_toggle_column(c),
                    discover=False,
                )
        for pane in PANES:
            yield SystemCommand(
                f"Edit {pane.title}",
                f"Jump to the pane's first field ({PANE_KEYS[pane.id]})",
                lambda p=pane.id: self.action_focus_pane(p),
                discover=False,
            )
        for p in self.presets:
            title = p.scenario.name if p.scenario else f"cannot be used: {p.error}"
            yield SystemCommand(
                f"Open preset: {palette_text(p.label)}", palette_text(title, 200), lambda k=p.key: self._open_guarded(k)
            )

    def _fit_columns(self) -> None:
        if not self.main.views_ready:  # the first moments after start-up
            return
        self.main.show_view("compare")
        self.main.compare.fit_to_width()
        self._render_compare()

    def _open_guarded(self, key: str) -> None:
        if self.unsaved:
            self.push_screen(
                ConfirmScreen("Open another preset? The edits since the last save or open are lost.", yes="Open"),
                lambda yes: self._open_preset_if(yes, key),
            )
        else:
            self.open_preset(key)

    def _open_preset_if(self, yes: bool | None, key: str) -> None:
        if yes:
            self.open_preset(key)


def _model_name(model) -> str:
    return model if isinstance(model, str) else model.name


def _tokens(n: float) -> str:
    from . import numbers

    return numbers.show(n)


def _note(scenario: Scenario | None, row: dict | None, error: str | None) -> str:
    if error:
        return error
    if row is None or scenario is None:
        return ""
    if scenario.training is not None and not row.get("train_fits"):
        return f"training does not fit: {row.get('train_reason') or 'no plan'}"
    return ""


def make_app(scenario: Scenario | None = None, path: str | None = None, **options) -> WhatIfApp:
    """The explorer on `scenario` (default: the built-in default preset); options as WhatIfApp takes."""
    if scenario is None:
        scenario = files.load_scenario(files.shipped_presets()["default"])
        options.setdefault("origin", "default")
    return WhatIfApp(scenario, path, **options)


def run_app(scenario: Scenario, path: str | None = None) -> int:
    """Run the explorer on a terminal; the exit status for `whatif`."""
    app = make_app(scenario, path, freeze_gc=True)
    result = app.run()
    return result if isinstance(result, int) else (app.return_code or 0)


__all__ = ["WhatIfApp", "make_app", "run_app"]
