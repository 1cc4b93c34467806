"""The main screen: Explore (editor and live figures), Compare and Scale, one tab each.

The screen only arranges widgets and forwards the editor's validated scenario to the app; the app runs
the engine and hands the outcome back through `show_outcome`.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, TabbedContent, TabPane
from whatif.engine.scenario import Scenario

from ..widgets.compare import CompareTable
from ..widgets.editor import ScenarioEditor
from ..widgets.figures import Figure, FiguresPanel
from ..widgets.scale import ScaleView


class MainScreen(Screen):
    BINDINGS = [
        Binding("p", "pin", "Pin", tooltip="Pin the current scenario as a comparison row"),
        Binding("w", "toggle_workload", "Workload", tooltip="Presets run the current / their own workload"),
        Binding("delete", "unpin", "Unpin", tooltip="Remove the pinned row under the cursor"),
    ]

    def __init__(self, scenario: Scenario, cursor_blink: bool = True) -> None:
        super().__init__()
        self._scenario = scenario
        self._cursor_blink = cursor_blink

    def compose(self) -> ComposeResult:
        yield Header(icon="")
        with TabbedContent(initial="explore", id="views"):
            with TabPane("Explore", id="explore"):
                with Horizontal(id="explore-body"):
                    yield ScenarioEditor(self._scenario, cursor_blink=self._cursor_blink, id="editor")
                    yield FiguresPanel(id="figures")
            with TabPane("Compare", id="compare"):
                with Vertical():
                    yield Figure("compare-caption", "", classes="")
                    yield CompareTable(id="compare-table")
            with TabPane("Scale", id="scale"):
                yield ScaleView(id="scale-view")
        yield Footer()

    ready = False  # set once its widgets exist (is_mounted is still False inside on_mount)

    def on_mount(self) -> None:
        self.ready = True
        self.app.main_ready()

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        # Compare-only keys are live (and in the footer) only on the Compare tab, so they never eat a
        # letter typed into a field.
        if action in ("pin", "toggle_workload", "unpin"):
            return self.query_one(TabbedContent).active == "compare"
        return True

    def action_pin(self) -> None:
        self.app.action_pin()

    def action_toggle_workload(self) -> None:
        self.app.action_toggle_workload()

    def action_unpin(self) -> None:
        self.app.action_unpin()

    @on(TabbedContent.TabActivated)
    def _tab(self, event: TabbedContent.TabActivated) -> None:
        self.refresh_bindings()
        self.app.render_views()
        if event.pane.id == "compare":
            self.query_one(CompareTable).focus()

    @on(ScenarioEditor.Edited)
    def _edited(self, event: ScenarioEditor.Edited) -> None:
        self.app.propose(event.built, event.key)

    @property
    def editor(self) -> ScenarioEditor:
        return self.query_one(ScenarioEditor)

    @property
    def figures(self) -> FiguresPanel:
        return self.query_one(FiguresPanel)

    @property
    def compare(self) -> CompareTable:
        return self.query_one(CompareTable)

    @property
    def scale(self) -> ScaleView:
        return self.query_one(ScaleView)

    def show_view(self, view: str) -> None:
        self.query_one(TabbedContent).active = view
        self.app.render_views()
        if view == "compare":
            self.compare.focus()
        elif view == "scale":
            self.scale.focus()
        elif view == "explore" and not self.editor.has_focus_within:
            self.editor.focus_field("cluster.gpu_count")
