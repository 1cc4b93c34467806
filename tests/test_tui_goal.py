"""The Goal view (F7): `whatif goal`'s search from inside the explorer, its answer applied with one key."""

from __future__ import annotations

import pytest
from conftest import settle
from test_tui_app import explorer
from textual.widgets import Input, Select, SelectionList, Static
from whatif.engine import goal as engine_goal
from whatif.tui.screens.goal import GoalScreen
from whatif.tui.widgets.editor import control_id

pytestmark = pytest.mark.slow  # drives the real app and runs goal searches


def answer_text(screen) -> str:
    return str(screen.query_one("#goal-answer", Static).render())


async def open_goal(pilot) -> GoalScreen:
    """F7 on the settled explorer: the Goal view in front."""
    await pilot.press("f7")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, GoalScreen)
    return screen


async def seek(pilot) -> None:
    await pilot.press("f9")
    await settle(pilot)


async def test_training_goal_is_sought_shown_and_applied_as_one_undoable_edit():
    async with explorer() as (app, pilot):
        screen = await open_goal(pilot)
        start = app.scenario
        screen.query_one("#goal-days", Input).value = "30"
        await seek(pilot)
        expected = engine_goal.seek(start, engine_goal.Goal(days=30), ["h100-sxm"])[0]
        assert expected.gpu_count is not None
        text = answer_text(screen)
        assert f"answer: {expected.gpu_count:,} h100-sxm" in text and "limit:" in text
        screen.query_one("#goal-kind", Select).focus()
        await pilot.press("a")
        await settle(pilot)
        assert app.screen is app.main
        assert app.scenario.cluster.gpu_count == expected.gpu_count
        assert app.main.query_one(f"#{control_id('cluster.gpu_count')}", Input).value == f"{expected.gpu_count}"
        # The goal holds on the applied scenario as the explorer computes it: within 30 days.
        assert app.outcome.current["train_wall_clock_days"] <= 30
        await pilot.press("ctrl+z")
        await settle(pilot)
        assert app.scenario == start


async def test_bad_goal_input_is_named_under_its_field_and_the_app_keeps_running():
    async with explorer() as (app, pilot):
        screen = await open_goal(pilot)
        screen.query_one("#goal-days", Input).value = "thirty"
        await seek(pilot)
        problem = str(screen.query_one("#goal-days-problem", Static).render())
        assert problem.startswith("days:") and "not a number" in problem
        screen.query_one("#goal-days", Input).value = "-3"
        await seek(pilot)
        assert "more than 0" in str(screen.query_one("#goal-days-problem", Static).render())
        screen.query_one("#goal-gpus", SelectionList).deselect_all()
        screen.query_one("#goal-days", Input).value = "30"
        await seek(pilot)
        assert "at least one GPU type" in answer_text(screen)
        # 'a' with no answer does nothing; escape closes without touching the scenario.
        start = app.scenario
        screen.query_one("#goal-kind", Select).focus()
        await pilot.press("a", "escape")
        await settle(pilot)
        assert app.screen is app.main and app.scenario == start and app.is_running


async def test_serving_goal_over_two_gpu_types_applies_the_cheapest_with_its_rate_and_limits():
    from whatif.tui import files

    scenario = files.load_scenario(files.shipped_presets()["serve-llama70b-8xh100"])
    async with explorer(scenario) as (app, pilot):
        screen = await open_goal(pilot)
        screen.query_one("#goal-kind", Select).value = "rate"
        await pilot.pause()
        screen.query_one("#goal-rate", Input).value = "20"
        screen.query_one("#goal-ttft", Input).value = "2000"
        screen.query_one("#goal-tpot", Input).value = "50"
        screen.query_one("#goal-gpus", SelectionList).select("h200-sxm")
        await seek(pilot)
        goal = engine_goal.Goal(rate_per_s=20, ttft_p99_ms=2000, tpot_p99_ms=50)
        answers = engine_goal.seek(scenario, goal, ["h100-sxm", "h200-sxm"])
        text = answer_text(screen)
        assert f"answer: {answers[0].gpu_count:,} {answers[0].gpu}" in text
        assert f"runner-up: {answers[1].gpu_count:,} {answers[1].gpu}" in text
        screen.query_one("#goal-kind", Select).focus()
        await pilot.press("a")
        await settle(pilot)
        inf = app.scenario.inference
        assert app.scenario.cluster.gpu == answers[0].gpu
        assert app.scenario.cluster.gpu_count == answers[0].gpu_count
        assert (inf.request_rate_per_s, inf.ttft_p99_limit_ms, inf.tpot_p99_limit_ms) == (20, 2000, 50)
        # Within the limits on the applied scenario: the rate held within them is at least the goal's.
        assert app.outcome.current["infer_slo_rps"] >= 20
