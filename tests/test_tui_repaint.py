"""The keystroke path: a keystroke repaints without laying out the whole screen when nothing changes size
(tui/widgets/sizing.py), a number on its way to a valid value says its problem only once typing pauses,
and a workload edit leaves its comparison and sweep rows to the worker thread.

At 80x24 one layout pass of the explorer's ~380 widgets costs 15-25 ms, and it used to run two or three
times a keystroke: Input's virtual width, the header's sub-title and every figure's text each asked for
one. The engine here is a stand-in that returns one prepared row (the default scenario's, evaluated
once) with the GPU count copied in, so that every figure except the GPU count keeps its text and size:
a layout pass could only come from the widgets themselves."""

from __future__ import annotations

import threading

import polars as pl
import pytest
from conftest import running, settle
from textual.screen import Screen
from whatif.engine import evaluate, resolve
from whatif.tui import app as app_module
from whatif.tui import files
from whatif.tui.app import make_app
from whatif.tui.session import Explorer
from whatif.tui.widgets import editor
from whatif.tui.widgets.figures import duration

pytestmark = pytest.mark.slow


def _same_row(scenario):
    template = evaluate(resolve([scenario]))

    def stand_in(frame: pl.DataFrame) -> pl.DataFrame:
        out = pl.concat([template] * frame.height)
        return out.with_columns(
            scenario=frame["scenario"], name=frame["name"], n_gpus=frame["n_gpus"].cast(out.schema["n_gpus"])
        )

    return stand_in


async def test_typing_a_digit_that_changes_no_size_asks_for_no_layout_pass(monkeypatch):
    scenario = files.load_scenario(files.shipped_presets()["default"])
    app = make_app(scenario, None, cursor_blink=False, explorer=Explorer(evaluate_fn=_same_row(scenario)))
    passes = []
    original = Screen._refresh_layout

    def counted(self, *args, **kwargs):
        passes.append(self)
        return original(self, *args, **kwargs)

    async with running(app, (80, 24)) as (app, pilot):
        await pilot.press("ctrl+a", "6", "4")  # 64 GPUs: valid, the figures live
        await settle(pilot)
        assert app.scenario.cluster.gpu_count == 64 and not app.main.figures.stale_parts
        monkeypatch.setattr(Screen, "_refresh_layout", counted)
        for key in ("0", "backspace", "0"):  # 640, 64, 640: each a valid scenario
            await pilot.press(key)
            await settle(pilot)
        assert app.scenario.cluster.gpu_count == 640
        # The engine's row for 640 GPUs reached the screen, and nothing was laid out again.
        assert app.outcome.current["n_gpus"] == 640 and "640" in app.sub_title
        assert passes == []
        # A change of height still gets its layout pass: a problem message appears under the field.
        await pilot.press("ctrl+a", "0")  # no GPUs
        await settle(pilot)
        assert app.main.query_one("#field-cluster-gpu_count").has_class("-error")
        assert passes


async def test_a_value_longer_than_its_box_still_scrolls_to_the_cursor():
    # The virtual width is set without a layout pass (FieldInput._watch_value): the box still scrolls.
    async with running(make_app(cursor_blink=False), (80, 24)) as (app, pilot):
        box = app.main.query_one("#in-cluster-gpu_count")
        await pilot.press("ctrl+a", *("1" * 40))
        await settle(pilot)
        assert box.value == "1" * 40 and box.virtual_size.width == 41
        assert box.scroll_x == 41 - box.content_size.width
        await pilot.press("home")
        await settle(pilot)
        assert box.scroll_x == 0


async def test_a_workload_edit_paints_its_figures_before_the_comparisons_are_built(monkeypatch):
    # 29 comparison scenarios and 12 sweep points with the new workload are built and resolved (~30 ms) on
    # the worker thread, once typing pauses; the keystroke itself only resolves the current rows.
    built_on = []
    original = app_module.comparisons_for

    def recorded(*args, **kwargs):
        built_on.append(threading.current_thread() is threading.main_thread())
        return original(*args, **kwargs)

    monkeypatch.setattr(app_module, "comparisons_for", recorded)
    async with running(make_app(cursor_blink=False), (80, 24)) as (app, pilot):
        built_on.clear()
        painted = []
        apply = app._apply

        def recorded_apply(outcome):  # what each outcome put on screen, in order
            apply(outcome)
            if outcome is not None:
                painted.append((outcome.partial, app.main.figures.figures["days"].text))

        app._apply = recorded_apply
        app.main.query_one("#in-training-train_tokens").value = "2e12"
        await settle(pilot)
        # First the current figures, the new workload's, with the comparisons still to come; then the rest.
        expected = duration(evaluate(resolve([app.scenario])).row(0, named=True)["train_wall_clock_days"])
        assert app.scenario.training.train_tokens == 2e12
        assert painted[0][0] and painted[0][1].startswith(expected)
        assert not painted[-1][0] and painted[-1][1].startswith(expected)
        assert built_on == [False] and not app.outcome.partial
        comparisons = [c.scenario for c, _ in app.outcome.comparisons if c.scenario is not None]
        assert comparisons and all(c.training.train_tokens == 2e12 for c in comparisons if c.training)


def _stand_in_app():
    scenario = files.load_scenario(files.shipped_presets()["default"])
    return make_app(scenario, None, cursor_blink=False, explorer=Explorer(evaluate_fn=_same_row(scenario)))


@pytest.fixture
def slow_typist(monkeypatch):
    # A pause of a second before a problem shows: the keys of these tests always come faster, however busy
    # the machine (the app's own pause is 0.3 s).
    monkeypatch.setattr(editor, "PROBLEM_DELAY_S", 1.0)


async def test_a_count_typed_through_invalid_values_shows_no_problem_on_the_way(monkeypatch, slow_typist):
    # 3 GPUs are fewer than a node, 38 not whole 8-GPU nodes; 384 are. Typed without a pause, nothing on
    # the way is said (no message, no stale mark, no layout pass): the figures go from 1,024 GPUs' to 384's.
    async with running(_stand_in_app(), (80, 24)) as (app, pilot):
        passes = []
        original = Screen._refresh_layout
        monkeypatch.setattr(
            Screen, "_refresh_layout", lambda self, *a, **k: (passes.append(1), original(self, *a, **k))
        )
        row = app.main.query_one("#field-cluster-gpu_count")
        await pilot.press("ctrl+a", "3", "8")
        assert not row.has_class("-error") and not app.main.figures.stale_parts and app.invalid is None
        await pilot.press("4")
        await settle(pilot)
        assert app.scenario.cluster.gpu_count == 384 and not row.has_class("-error") and passes == []


async def test_a_problem_is_shown_once_typing_pauses_or_at_once_for_an_action(slow_typist):
    async with running(_stand_in_app(), (80, 24)) as (app, pilot):
        row = app.main.query_one("#field-cluster-gpu_count")
        await pilot.press("ctrl+a", "3", "8")
        assert not row.has_class("-error")
        await settle(pilot)  # waits out the pause
        assert row.has_class("-error") and "not a whole number of 8-GPU nodes" in row.message
        assert app.main.figures.stale_parts == {"training", "serving"} and app.invalid is not None
        await pilot.press("ctrl+a", "6", "4")
        await settle(pilot)
        assert not row.has_class("-error") and app.invalid is None
        # An action right after a bad key (here: the Compare view) acts on what the field says.
        await pilot.press("ctrl+a", "0", "f3")
        assert app.invalid is not None and row.has_class("-error")
        assert app.main.figures.stale_parts == {"training", "serving"}
