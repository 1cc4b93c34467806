"""What users expect of the explorer (Pilot): undo, reset, guards, scoped problems, honest labels, the
Details view, exports, a remembered theme, the narrow layout. Figures are checked against the engine run
on the same scenario, never against the app's own output."""

from __future__ import annotations

import csv
import io
from collections import OrderedDict

import pytest
from conftest import running, settle
from whatif.engine import evaluate, resolve
from whatif.engine.catalog import load_catalog
from whatif.engine.report import records
from whatif.engine.scenario import Scenario
from whatif.tui import config, files
from whatif.tui import format as fmt
from whatif.tui.app import make_app
from whatif.tui.screens.dialogs import ConfirmScreen
from whatif.tui.session import Explorer
from whatif.tui.widgets.compare import CURRENT
from whatif.tui.widgets.details import flatten
from whatif.tui.widgets.editor import control_id, row_id
from whatif.tui.widgets.figures import duration, with_band

pytestmark = pytest.mark.slow

SIZE = (120, 40)
CACHE: OrderedDict = OrderedDict()


def _days(scenario) -> str:
    """The time figure as the explorer shows it: days and the regime's error band."""
    row = engine_row(scenario)
    return with_band(duration(row["train_wall_clock_days"]), row.get("train_error_band_pct"))


def app_for(**kw):
    kw.setdefault("explorer", Explorer(_cache=CACHE))
    return make_app(cursor_blink=False, **kw)


def explorer(**kw):
    """app_for's explorer at SIZE, settled: `async with explorer() as (app, pilot)`."""
    return running(app_for(**kw), SIZE)


def default():
    return files.load_scenario(files.shipped_presets()["default"])


def engine_row(scenario) -> dict:
    return evaluate(resolve([scenario])).row(0, named=True)


def field(app, key: str):
    return app.main.query_one(f"#{control_id(key)}")


def figure(app, fid: str) -> str:
    return app.main.figures.figures[fid].text


async def put(pilot, key: str, value) -> None:
    field(pilot.app, key).value = value
    await settle(pilot)


async def type_into(pilot, key: str, text: str) -> None:
    box = field(pilot.app, key)
    box.focus()
    await pilot.pause()
    await pilot.press("ctrl+a", *text)
    await settle(pilot)


async def test_undo_and_redo_walk_the_edits_back_and_forth():
    async with explorer() as (app, pilot):
        await type_into(pilot, "cluster.gpu_count", "2048")
        await put(pilot, "cluster.gpu", "b200")
        assert app.scenario.cluster.gpu == "b200" and app.scenario.cluster.gpu_count == 2048
        await pilot.press("ctrl+z")
        await settle(pilot)
        # Typing 2048 was one edit; the GPU type another: one undo takes back the GPU type only.
        assert app.scenario == default().edited("cluster", gpu_count=2048)
        await pilot.press("ctrl+z")
        await settle(pilot)
        assert app.scenario == default()
        assert figure(app, "days") == _days(default())
        await pilot.press("ctrl+y", "ctrl+y")
        await settle(pilot)
        assert app.scenario.cluster.gpu == "b200" and app.scenario.cluster.gpu_count == 2048


async def test_reset_a_field_and_the_whole_scenario_to_the_opened_preset():
    async with explorer() as (app, pilot):
        await type_into(pilot, "cluster.gpu_count", "512")
        await put(pilot, "facility.electricity_usd_per_kwh", "0.2")
        field(app, "cluster.gpu_count").focus()
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert app.scenario == default().edited("facility", electricity_usd_per_kwh=0.2)
        app.action_reset_all()
        await settle(pilot)
        assert app.scenario == default() and not app.unsaved


async def test_ctrl_a_selects_the_field_text():
    async with explorer() as (app, pilot):
        assert app.focused is field(app, "cluster.gpu_count")
        await pilot.press("ctrl+a", "5", "1", "2")
        await settle(pilot)
        assert field(app, "cluster.gpu_count").value == "512" and app.scenario.cluster.gpu_count == 512


async def test_quit_asks_only_when_there_are_unsaved_edits():
    async with explorer() as (app, pilot):
        await type_into(pilot, "cluster.gpu_count", "2048")
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.main and app.is_running
        await pilot.press("ctrl+z")
        await settle(pilot)
        assert not app.unsaved
        await pilot.press("ctrl+q")
        await pilot.pause()
    assert not app.is_running


async def test_a_serving_only_problem_leaves_training_live():
    async with explorer() as (app, pilot):
        serving_before = figure(app, "ttft")
        await put(pilot, "cluster.gpu", "a100-sxm-80gb")
        # The A100 has no FP8: serving (fp8) is wrong; training (bf16) is computed on the A100.
        data = default().model_dump(exclude_none=True)
        data.pop("inference")
        data["cluster"]["gpu"] = "a100-sxm-80gb"
        a100 = Scenario.model_validate(data)
        assert figure(app, "days") == _days(a100)
        assert "training" not in app.main.figures.stale_parts
        assert "serving" in app.main.figures.stale_parts
        assert figure(app, "ttft") == serving_before
        status = app.main.query_one("#status").render().plain
        assert "serving stale" in status and "Serving workload > precision" in status and "allowed: bf16" in status
        note = str(app.main.query_one("#field-inference-precision .field-error").render())
        assert note.startswith("Serving workload > precision:")
        await put(pilot, "inference.precision", "bf16")
        assert "serving" not in app.main.figures.stale_parts


async def test_the_scale_up_choice_names_the_gpus_own_fabric_from_the_catalog():
    async with explorer() as (app, pilot):
        for gpu in ("a100-sxm-80gb", "b200", "mi300x"):
            await put(pilot, "cluster.gpu", gpu)
            shown = field(app, "network.scale_up").query_one("SelectCurrent").query_one("#label").render()
            assert str(shown) == f"own: {load_catalog().accelerators[gpu].scale_up}"


async def test_a_cpu_as_the_compute_device_is_counted_in_sockets():
    async with explorer() as (app, pilot):
        unit = app.main.query_one(f"#{row_id('cluster.gpu_count')} .field-unit")
        assert str(unit.render()) == "GPUs"
        await put(pilot, "cluster.gpu", "xeon-6980p")
        assert str(unit.render()) == "sockets"
        await pilot.press("ctrl+z")
        await settle(pilot)
        assert str(unit.render()) == "GPUs"


async def test_the_title_and_pins_say_what_differs_from_the_opened_preset():
    async with explorer() as (app, pilot):
        assert app.sub_title == f"{default().name} (default)"
        await type_into(pilot, "cluster.gpu_count", "2048")
        await put(pilot, "cluster.gpu", "a100-sxm-80gb")
        await put(pilot, "inference.precision", "bf16")
        assert app.sub_title == "modified from default: GPU type h100-sxm -> a100-sxm-80gb (+2 more)"
        await pilot.press("f3", "p")
        await settle(pilot)
        assert app.pinned[0].label == (
            "pin 1: GPU type h100-sxm -> a100-sxm-80gb, 1,024 -> 2,048 GPUs, serving precision fp8 -> bf16"
        )


async def test_latency_limits_are_fields_with_pass_and_fail_shown():
    async with explorer() as (app, pilot):
        await put(pilot, "inference.ttft_p99_limit_ms", "1")
        await put(pilot, "inference.tpot_p99_limit_ms", "1k")
        limited = default().edited("inference", ttft_p99_limit_ms=1, tpot_p99_limit_ms=1000)
        assert app.scenario == limited
        row = engine_row(limited)
        assert row["infer_ttft_p99_ms"] > 1 and row["infer_tpot_p99_ms"] <= 1000
        assert figure(app, "ttft").endswith("✗ >1") and figure(app, "tpot").endswith("✓ ≤1000")
        await put(pilot, "inference.gpu_count", "16")
        assert app.scenario.inference.gpu_count == 16


async def test_details_shows_every_figure_of_the_json_record():
    async with explorer() as (app, pilot):
        await pilot.press("f5")
        await settle(pilot)
        scenario = default()
        (record,) = records(evaluate(resolve([scenario])), [True], [True])
        shown = app.main.details.lines
        expected = sum(1 for _, rows in flatten(record) for *_, heading in rows if not heading)
        assert len(shown) == expected
        assert (
            "Training > step breakdown > compute: " + fmt.seconds(record["training"]["step_breakdown_s"]["compute"])
            in shown
        )
        assert any(line.startswith("Serving > within latency limits > tokens per s") for line in shown)


async def test_keys_the_engine_adds_later_are_shown_when_present(monkeypatch):
    """An error band, a runner-up plan and a cost breakdown in the record appear in the figures and in
    Details without any change to the UI (the engine's record is the contract)."""
    import whatif.tui.app as app_module

    def with_new_keys(results, has_training, has_inference):
        out = records(results, has_training, has_inference)
        for rec in out:
            if rec["training"] is not None:
                rec["training"] |= {
                    "error_band_pct": 12.0,
                    "runner_up": {
                        "plan": {"tp": 8, "pp": 2, "dp": 64},
                        "step_time_s": 19.5,
                        "slower_pct": 6.8,
                        "why": "more bubble",
                    },
                    "cost_breakdown_usd": {"electricity": 1.0, "gpu_rental": 2.0},
                }
        return out

    monkeypatch.setattr(app_module, "records", with_new_keys)
    async with explorer() as (app, pilot):
        days = duration(engine_row(default())["train_wall_clock_days"])
        assert figure(app, "days") == f"{days} ±12%"
        runner = app.main.query_one("#runner-up").render().plain
        assert runner == "Runner-up  TP8 PP2 DP64, 6.8% slower (19.50 s a step): more bubble"
        # The cost line comes from the engine's price basis (AWS on-demand H100, 2026-01, in prices.toml).
        assert app.main.query_one("#cost-basis").render().plain == (
            "cost, rental at $6.88/GPU-h (2026-01); electricity in the price"
        )
        await pilot.press("f5")
        await settle(pilot)
        assert "Training > error band: ±12%" in app.main.details.lines
        assert "Training > runner up > why: more bubble" in app.main.details.lines


async def test_exports_go_to_the_exports_folder_and_the_clipboard():
    async with explorer() as (app, pilot):
        await pilot.press("f3", "c")
        await settle(pilot)
        (saved,) = config.exports_dir().glob("compare-*.csv")
        assert saved.parent == config.exports_dir() and "whatif-home" in str(saved)
        text = saved.read_text()
        assert app.clipboard == text
        rows = list(csv.DictReader(io.StringIO(text)))
        assert rows[0]["scenario"].startswith("current") and rows[0]["baseline"] == "yes"
        b200 = next(r for r in rows if r["scenario"] == "b200-512")
        preset = files.load_scenario(files.shipped_presets()["b200-512"])
        from whatif.tui.session import with_workload

        ref = engine_row(with_workload(preset, default()))
        base = engine_row(default())
        assert float(b200["days (days)"]) == pytest.approx(ref["train_wall_clock_days"], rel=1e-12)
        assert float(b200["days vs baseline"]) == pytest.approx(
            ref["train_wall_clock_days"] / base["train_wall_clock_days"], rel=1e-12
        )
        await pilot.press("m")
        await settle(pilot)
        (markdown,) = config.exports_dir().glob("compare-*.md")
        assert markdown.read_text().startswith("| scenario | hardware | fabric | plan |")


async def test_the_screenshot_goes_to_the_exports_folder_and_the_palette_has_one():
    async with explorer() as (app, pilot):
        titles = [c.title for c in app.get_system_commands(app.main)]
        assert sum("creenshot" in t for t in titles) == 1
        app.save_screenshot_to_exports()
        (shot,) = config.exports_dir().glob("whatif-*.svg")
        assert "f1" in shot.read_text()  # the footer is in the picture


async def test_the_theme_is_remembered_in_the_settings_file():
    async with explorer() as (app, pilot):
        await pilot.press("ctrl+t")
        await pilot.pause()
        chosen = app.theme
    assert config.load()["theme"] == chosen
    again = app_for()
    async with again.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert again.theme == chosen


async def test_a_compare_row_becomes_the_baseline_and_ratios_follow_it():
    async with explorer() as (app, pilot):
        await pilot.press("f3")
        table = app.main.compare
        table.set_baseline("shipped:b200-512")
        await settle(pilot)
        assert table.get_row_at(0)[0].is_baseline
        base = table.entries["shipped:b200-512"].row["train_wall_clock_days"]
        mine = table.entries[CURRENT].row["train_wall_clock_days"]
        assert base == pytest.approx(engine_row(table.entries["shipped:b200-512"].scenario)["train_wall_clock_days"])
        assert table.get_cell(CURRENT, "days").plain.splitlines()[1].startswith(fmt.ratio(mine, base))
        before = table.row_count
        table.move_cursor(row=1)
        await pilot.press("h")
        await settle(pilot)
        assert table.row_count == before - 1
        await pilot.press("H")
        await settle(pilot)
        assert table.row_count == before


async def test_narrow_terminals_get_edit_and_figures_tabs_and_pane_keys_work():
    app = app_for()
    async with app.run_test(size=(64, 20)) as pilot:
        await settle(pilot)
        assert app.main.narrow and app.main.editor.display and not app.main.figures.display
        await pilot.press("f6")
        await settle(pilot)
        assert app.main.figures.display and not app.main.editor.display
        assert app.main.figures.figures["days"].text == _days(default())
        await pilot.press("alt+6")
        await settle(pilot)
        assert app.main.editor.display and app.focused is field(app, "inference")
