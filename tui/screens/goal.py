"""The Goal view: `whatif goal`'s search (engine/goal.py) from inside the explorer.

The user states a goal (train within N days, within a budget, or serve R requests/s within p99 limits) and the
GPU types to try; the search runs on a worker thread on the current scenario, the answer and its runners-up are
listed with what limits each, and `a` hands the answer (GPU type and count) back to the app, which applies it to
the editor as one undoable edit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Input, Label, Select, SelectionList, Static
from whatif.engine import Scenario, ScenarioError, load_catalog
from whatif.engine import goal as engine_goal

from .. import goal_text, numbers
from .dialogs import Dialog

KINDS = [
    ("train within a number of days", "days"),
    ("train fastest within a budget", "budget"),
    ("serve a request rate within p99 limits", "rate"),
]
# The goal's number fields: (id, label, unit, which goal kinds show it, whether it must be given).
FIELDS = (
    ("days", "days", "d", ("days",), True),
    ("budget", "budget", "USD", ("days", "budget"), False),
    ("rate", "rate", "req/s", ("rate",), True),
    ("ttft", "TTFT p99 <=", "ms", ("rate",), False),
    ("tpot", "TPOT p99 <=", "ms", ("rate",), False),
)


@dataclass(frozen=True)
class Applied:
    """What the Goal view hands back: the answer's GPU type and count, and for serving the rate and limits
    it was sought at (so the explorer's figures show the goal met)."""

    gpu: str
    gpu_count: int
    goal: engine_goal.Goal


class GoalScreen(Dialog[Applied | None]):
    BINDINGS = [
        Binding("escape", "cancel", "Close"),
        Binding("ctrl+enter,f9", "seek", "Seek"),
        Binding("a", "apply", "Apply answer"),
    ]

    def __init__(self, scenario: Scenario) -> None:
        super().__init__()
        self.scenario = scenario
        self.answers: list[engine_goal.Answer] | None = None
        self.sought: engine_goal.Goal | None = None
        self._leaving = False

    def compose(self) -> ComposeResult:
        kind = "rate" if self.scenario.training is None and self.scenario.inference is not None else "days"
        inf = self.scenario.inference
        defaults = {
            "days": "30",
            "rate": numbers.show(inf.request_rate_per_s) if inf else "",
            "ttft": numbers.show(inf.ttft_p99_limit_ms) if inf and inf.ttft_p99_limit_ms else "",
            "tpot": numbers.show(inf.tpot_p99_limit_ms) if inf and inf.tpot_p99_limit_ms else "",
        }
        # The scenario's own device first (checked), then every GPU type of the catalog.
        own = self.scenario.cluster.gpu
        gpus = [own] + [k for k, a in load_catalog().accelerators.items() if a.kind != "cpu" and k != own]
        with Vertical(classes="dialog", id="goal-dialog"):
            yield Static(
                f"Goal seek on {escape(self.scenario.name)}: the smallest GPU count, in whole nodes, that meets "
                "the goal (as `whatif goal`)",
                classes="dialog-title",
            )
            with VerticalScroll(id="goal-body"), Vertical(id="goal-form"):
                with Horizontal(classes="goal-row"):
                    yield Label("goal", classes="goal-label")
                    yield Select(KINDS, value=kind, allow_blank=False, id="goal-kind", compact=True)
                for key, label, unit, _, _ in FIELDS:
                    with Horizontal(classes="goal-row", id=f"goal-row-{key}"):
                        yield Label(label, classes="goal-label")
                        placeholder = "" if key in ("days", "rate") else "none"
                        yield Input(defaults.get(key, ""), id=f"goal-{key}", placeholder=placeholder, compact=True)
                        yield Label(unit, classes="goal-unit")
                    yield Static("", id=f"goal-{key}-problem", classes="dialog-hint -error goal-problem", markup=False)
                yield Label("GPU types to try (space toggles)", markup=False)
                yield SelectionList[str](*[(g, g, g == self.scenario.cluster.gpu) for g in gpus], id="goal-gpus")
                yield Static("", id="goal-trying", markup=False)
                yield Static("f9 (or Enter in a field) seeks; a applies the answer", id="goal-answer", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Seek (f9)", variant="primary", id="goal-seek", compact=True)
                yield Button("Apply (a)", id="goal-apply", disabled=True, compact=True)
                yield Button("Close", id="goal-close", compact=True)

    def on_mount(self) -> None:
        self._show_fields()
        self._trying()
        self.query_one("#goal-kind", Select).focus()

    # -- the form --------------------------------------------------------------------------------

    @on(Select.Changed, "#goal-kind")
    def _show_fields(self) -> None:
        kind = self.query_one("#goal-kind", Select).value
        for key, _, _, kinds, _ in FIELDS:
            self.query_one(f"#goal-row-{key}").display = kind in kinds
            self._problem(key, "")

    def _read(self) -> tuple[engine_goal.Goal | None, list[str]]:
        """The goal the form states, or None with each field's problem shown under it."""
        kind = self.query_one("#goal-kind", Select).value
        values: dict[str, float | None] = {}
        ok = True
        for key, label, unit, kinds, required in FIELDS:
            problem = ""
            values[key] = None
            if kind in kinds:
                text = self.query_one(f"#goal-{key}", Input).value.strip()
                if not text and required:
                    problem = f"{label}: give a number (more than 0)"
                elif text:
                    try:
                        value = numbers.parse(text, unit if unit != "d" else "")
                        if not (math.isfinite(value) and value > 0):
                            raise numbers.NumberError("allowed: more than 0")
                        values[key] = value
                    except numbers.NumberError as exc:
                        problem = f"{label}: {exc}"
            self._problem(key, problem)
            ok = ok and not problem
        gpus = list(self.query_one("#goal-gpus", SelectionList).selected)
        if not gpus:
            self._say("choose at least one GPU type to try")
            ok = False
        if kind == "budget" and values["budget"] is None:
            self._problem("budget", "budget: give a number (more than 0)")
            ok = False
        if not ok:
            return None, gpus
        if kind == "rate":
            return engine_goal.Goal(
                rate_per_s=values["rate"], ttft_p99_ms=values["ttft"], tpot_p99_ms=values["tpot"]
            ), gpus
        return engine_goal.Goal(days=values["days"] if kind == "days" else None, budget_usd=values["budget"]), gpus

    @on(SelectionList.SelectedChanged, "#goal-gpus")
    def _trying(self) -> None:
        """The chosen GPU types in words (the list's marks differ only by colour)."""
        chosen = list(self.query_one("#goal-gpus", SelectionList).selected)
        self.query_one("#goal-trying", Static).update(f"trying: {', '.join(chosen) if chosen else 'none chosen'}")

    def _problem(self, key: str, text: str) -> None:
        """A field's problem under it (the line is there only while there is one)."""
        line = self.query_one(f"#goal-{key}-problem", Static)
        line.update(text)
        line.display = bool(text)

    def _say(self, text: str) -> None:
        self.query_one("#goal-answer", Static).update(text)

    # -- seeking ---------------------------------------------------------------------------------

    @on(Button.Pressed, "#goal-seek")
    @on(Input.Submitted)
    def action_seek(self) -> None:
        goal, gpus = self._read()
        if goal is None:
            return
        try:
            engine_goal.check(goal, self.scenario)
        except ScenarioError as exc:
            self._say("; ".join(issue.message for issue in exc.issues))
            return
        self.answers, self.sought = None, None
        self.query_one("#goal-apply", Button).disabled = True
        self._say(f"seeking: {goal.describe()} on {', '.join(gpus)} ...")
        self._seek(goal, gpus)

    @work(thread=True, exclusive=True, group="goal", exit_on_error=False)
    def _seek(self, goal: engine_goal.Goal, gpus: list[str]) -> None:
        try:
            answers = engine_goal.seek(self.scenario, goal, gpus)
        except ScenarioError as exc:
            self.app.call_from_thread(self._failed, "; ".join(i.message for i in exc.issues))
        except Exception as exc:  # an engine fault: say so, keep the dialog and the app running
            self.app.call_from_thread(self._failed, f"the search failed: {type(exc).__name__}: {exc}")
        else:
            self.app.call_from_thread(self._found, goal, answers)

    def _failed(self, text: str) -> None:
        if self.is_attached:
            self._say(text)

    def _found(self, goal: engine_goal.Goal, answers: list[engine_goal.Answer]) -> None:
        if not self.is_attached:
            return
        self.answers, self.sought = answers, goal
        lines = [f"goal: {goal.describe()}"]
        lines += goal_text.answer_lines(goal, answers, self.scenario.cluster.gpus_per_node)
        meets = answers and answers[0].gpu_count is not None
        if meets:
            lines.append("a applies the answer to the scenario (ctrl+z undoes)")
        else:
            lines.append(f"no GPU count up to {engine_goal.MAX_GPUS:,} meets it")
        self._say("\n".join(lines))
        self.query_one("#goal-apply", Button).disabled = not meets
        self.query_one("#goal-answer").scroll_visible(animate=False)

    # -- leaving ---------------------------------------------------------------------------------

    @on(Button.Pressed, "#goal-apply")
    def action_apply(self) -> None:
        if isinstance(self.focused, Input):
            return  # 'a' typed into a field is a letter, not the key
        best = self.answers[0] if self.answers else None
        if best is None or best.gpu_count is None or self.sought is None or self._leaving:
            return
        self._leaving = True
        self.dismiss(Applied(best.gpu, int(best.gpu_count), self.sought))

    @on(Button.Pressed, "#goal-close")
    def action_cancel(self) -> None:
        if not self._leaving:
            self._leaving = True
            self.dismiss(None)
