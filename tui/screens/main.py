"""The main screen: Explore (editor and live figures), Compare, Scale and Details, one tab each.

The screen only arranges widgets and forwards the editor's validated scenario to the app; the app runs
the engine and hands the outcome back. The layout follows the terminal's width: the editor takes the
width its labels, values and units need, the figures the rest (in more columns when there is room);
below 80 columns the editor and the figures become two tabs of their own ("Edit" and "Figures").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, TabbedContent, TabPane, Tabs
from textual.widgets._tabs import Tab
from whatif.engine.scenario import Scenario

from ..widgets.compare import CompareTable
from ..widgets.details import DetailsView
from ..widgets.editor import ScenarioEditor
from ..widgets.figures import Figure, FiguresPanel
from ..widgets.header import TitleHeader
from ..widgets.scale import ScaleView

if TYPE_CHECKING:
    from ..app import WhatIfApp

# Below this many columns, the editor and the figures share the screen as two tabs.
NARROW_BELOW = 80
# The figures keep at least this many columns beside the editor.
FIGURES_MIN = 34

COMPARE_ACTIONS = ("pin", "toggle_workload", "unpin", "export_markdown", "export_csv")


class MainScreen(Screen):
    BINDINGS = [
        # Listed in the Compare caption (the footer keeps the keys that work everywhere).
        Binding("p", "pin", "Pin", show=False, tooltip="Pin the current scenario as a comparison row"),
        Binding("w", "toggle_workload", "Workload", show=False, tooltip="Presets run the current / their own workload"),
        Binding("delete", "unpin", "Unpin", show=False, tooltip="Remove the pinned row under the cursor"),
        Binding("m", "export_markdown", "Markdown", show=False, tooltip="Copy the comparison as Markdown and save it"),
        Binding("c", "export_csv", "CSV", show=False, tooltip="Copy the comparison as CSV and save it"),
    ]

    def __init__(self, scenario: Scenario, cursor_blink: bool = True) -> None:
        super().__init__()
        self._scenario = scenario
        self._cursor_blink = cursor_blink
        self.narrow = False
        self.show_figures = False  # narrow layout: the Figures tab instead of the editor

    def compose(self) -> ComposeResult:
        yield TitleHeader(icon="")
        with TabbedContent(initial="explore", id="views"):
            with TabPane("Explore", id="explore"):
                yield Tabs(Tab("Edit", id="sub-edit"), Tab("Figures", id="sub-figures"), id="explore-tabs")
                with Horizontal(id="explore-body"):
                    yield ScenarioEditor(self._scenario, cursor_blink=self._cursor_blink, id="editor")
                    yield FiguresPanel(id="figures")
            # Filled right after the first screen (mount_views): the first figures do not wait for them.
            yield TabPane("Compare", id="compare")
            yield TabPane("Scale", id="scale")
            yield TabPane("Details", id="details")
        yield Footer(compact=True)

    @property
    def whatif(self) -> WhatIfApp:
        """The app this screen belongs to (it runs in the explorer only), with the explorer's own methods."""
        return cast("WhatIfApp", self.app)

    ready = False  # set once its widgets exist (is_mounted is still False inside on_mount)
    views_ready = False  # the Compare, Scale and Details views are mounted

    def on_mount(self) -> None:
        self.ready = True
        self._layout(self.size.width)
        self.whatif.main_ready()
        self.call_after_refresh(self.mount_views)

    async def mount_views(self) -> None:
        """The Compare, Scale and Details views, mounted once the first screen is on the terminal."""
        if self.views_ready:
            return
        scale = ScaleView(id="scale-view")
        await self.query_one("#compare", TabPane).mount(
            Vertical(
                Figure("compare-caption", "", classes=""),
                CompareTable(id="compare-table"),
                Figure("compare-detail", "", classes=""),
            )
        )
        await self.query_one("#scale", TabPane).mount(scale)
        await self.query_one("#details", TabPane).mount(DetailsView(id="details-view"))
        scale.set_cursor_blink(self._cursor_blink)
        self.views_ready = True
        self.whatif.render_views()

    def on_resize(self, event) -> None:
        self._layout(event.size.width)

    def _layout(self, width: int) -> None:
        """Wide: the editor as wide as its content needs (at most half the screen), figures beside it.
        Narrow: one column, the editor or the figures, switched by the Edit / Figures tabs."""
        narrow = width < NARROW_BELOW
        changed = narrow != self.narrow
        self.narrow = narrow
        self.set_class(narrow, "-narrow")
        editor = self.editor
        if narrow:
            editor.styles.width = "1fr"
        else:
            editor.styles.width = max(30, min(editor.preferred_width(), width - FIGURES_MIN))
        label, control, unit = editor.column_widths(editor.raw)
        columns = f"{label} 1fr {unit + 1}" if narrow else f"{label} {control} {unit + 1}"
        editor.set_grid_columns(columns)
        self._apply_sub_tab()
        if changed:
            self.refresh_bindings()

    def _apply_sub_tab(self) -> None:
        self.set_class(self.narrow and self.show_figures, "-show-figures")

    def show_sub(self, figures: bool, again: bool = True) -> None:
        """Narrow layout: show the figures (True) or the editor."""
        self.show_figures = figures
        tabs = self.query_one("#explore-tabs", Tabs)
        target = "sub-figures" if figures else "sub-edit"
        if tabs.query(f"#tabs-list > #{target}"):
            with tabs.prevent(Tabs.TabActivated):
                tabs.active = target
        elif again:  # a pane key pressed before Tabs has mounted its tabs (it does so after itself)
            self.call_after_refresh(self.show_sub, figures, False)
        self._apply_sub_tab()

    @on(Tabs.TabActivated, "#explore-tabs")
    def _sub_tab(self, event: Tabs.TabActivated) -> None:
        event.stop()
        self.show_figures = event.tab.id == "sub-figures"
        self._apply_sub_tab()
        if not self.show_figures:
            self.editor.focus_field(self.editor.focused_key() or "cluster.gpu_count")

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        # Compare-only keys are live (and in the footer) only on the Compare tab, so they never eat a
        # letter typed into a field.
        if action in COMPARE_ACTIONS:
            return self.query_one(TabbedContent).active == "compare"
        return True

    def action_pin(self) -> None:
        self.whatif.action_pin()

    def action_toggle_workload(self) -> None:
        self.whatif.action_toggle_workload()

    def action_unpin(self) -> None:
        self.whatif.action_unpin()

    def action_export_markdown(self) -> None:
        self.whatif.action_export("markdown")

    def action_export_csv(self) -> None:
        self.whatif.action_export("csv")

    @on(TabbedContent.TabActivated, "#views")
    def _tab(self, event: TabbedContent.TabActivated) -> None:
        self.refresh_bindings()
        self.whatif.render_views()
        if event.pane.id == "compare" and self.views_ready:
            self.query_one(CompareTable).focus()

    @on(ScenarioEditor.Edited)
    def _edited(self, event: ScenarioEditor.Edited) -> None:
        self.whatif.propose(event.built, event.key)

    @on(CompareTable.CellHighlighted)
    def _compare_cursor(self) -> None:
        self.query_one("#compare-detail", Figure).show(self.compare.detail())

    @on(CompareTable.Arranged)
    def _compare_arranged(self) -> None:
        self.whatif._caption()
        self._compare_cursor()

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

    @property
    def details(self) -> DetailsView:
        return self.query_one(DetailsView)

    @property
    def view(self) -> str:
        return self.query_one(TabbedContent).active

    def show_view(self, view: str) -> None:
        if view in ("compare", "scale", "details") and not self.views_ready:
            self.call_after_refresh(self.show_view, view)  # mounted in a moment
            return
        if view == "figures":
            self.query_one(TabbedContent).active = "explore"
            self.show_sub(True)
            self.whatif.render_views()
            return
        self.query_one(TabbedContent).active = view
        self.whatif.render_views()
        if view == "compare":
            self.compare.focus()
        elif view == "scale":
            self.scale.focus()
        elif view == "details":
            self.details.focus()
        elif view == "explore":
            self.show_sub(False)
            if not self.editor.has_focus_within:
                self.editor.focus_field("cluster.gpu_count")
