"""What users do in the explorer (Pilot): every figure checked against the engine run on the same scenario."""

from __future__ import annotations

import pytest
from conftest import running, settle
from textual.widgets import Input
from whatif.engine import evaluate, resolve
from whatif.engine.catalog import load_catalog
from whatif.tui import files
from whatif.tui import format as fmt
from whatif.tui.app import make_app
from whatif.tui.screens.dialogs import ConfirmScreen, OpenScreen, SaveScreen
from whatif.tui.screens.help import HelpScreen
from whatif.tui.session import Explorer, with_workload
from whatif.tui.widgets.compare import CURRENT
from whatif.tui.widgets.editor import control_id
from whatif.tui.widgets.figures import TRAINING

SIZE = (100, 34)


# Each drives the real app (seconds): the quick tier (pytest -m "not slow") leaves them out.
pytestmark = pytest.mark.slow


def engine_row(scenario) -> dict:
    return evaluate(resolve([scenario])).row(0, named=True)


def headline(app) -> dict[str, str]:
    return {fid: app.main.figures.figures[fid].text for fid, _, _ in TRAINING}


def expected_headline(row: dict) -> dict[str, str]:
    # The time carries the error band of its regime (catalog/error_bands.toml) when the engine gives one.
    return {fid: read(row, {"band_pct": row.get("train_error_band_pct")}) for fid, _, read in TRAINING}


def field(app, key: str):
    return app.main.query_one(f"#{control_id(key)}")


async def replace_text(pilot, key: str, text: str) -> None:
    """Focus a field, delete what it holds with the keyboard, type `text`."""
    box = field(pilot.app, key)
    box.focus()
    await pilot.pause()
    box.cursor_position = len(box.value)
    await pilot.press(*(["backspace"] * len(box.value)))
    if text:
        await pilot.press(*text)
    await settle(pilot)


# Results are a pure function of the resolved input row, so the tests' apps share one result cache
# (each app still counts its own engine calls); this keeps the suite fast without skipping the engine.
SHARED_CACHE: dict = {}


async def put(pilot, key: str, text: str) -> None:
    """Set a field's text in one change (as a paste would) and wait for the figures."""
    field(pilot.app, key).value = text
    await settle(pilot)


def app_for(scenario=None, **kw):
    from collections import OrderedDict

    cache = SHARED_CACHE.setdefault("rows", OrderedDict())
    kw.setdefault("explorer", Explorer(_cache=cache))
    return make_app(scenario, cursor_blink=False, **kw)


def explorer(scenario=None, **kw):
    """app_for's explorer at SIZE, settled: `async with explorer() as (app, pilot)`."""
    return running(app_for(scenario, **kw), SIZE)


async def test_opens_on_the_default_with_the_engines_figures():
    async with explorer() as (app, pilot):
        assert app.scenario == files.load_scenario(files.shipped_presets()["default"])
        assert headline(app) == expected_headline(engine_row(app.scenario))
        assert app.main.query_one("#status").render().plain.startswith("● live")
        assert app.focused is field(app, "cluster.gpu_count")


async def test_typing_a_gpu_count_changes_the_headline_to_the_engines_figures():
    async with explorer() as (app, pilot):
        before = headline(app)
        await replace_text(pilot, "cluster.gpu_count", "2048")
        expected = app.scenario.edited("cluster", gpu_count=2048)
        assert app.scenario == expected
        assert headline(app) == expected_headline(engine_row(expected))
        assert headline(app) != before


async def test_switching_gpu_type_fills_its_catalog_values_and_recomputes():
    async with explorer() as (app, pilot):
        select = field(app, "cluster.gpu")
        select.focus()
        await pilot.press("enter")
        await pilot.pause()
        keys = [value for _, value in select._options]
        steps = keys.index("b200") - keys.index("h100-sxm")
        await pilot.press(*(["down"] * steps), "enter")
        await settle(pilot)
        b200 = load_catalog().accelerators["b200"]
        assert select.value == "b200"
        assert field(app, "cluster.hbm_gb").value == f"{b200.hbm_gb:g}"
        assert field(app, "cluster.bf16_tflops").value == f"{b200.bf16_tflops:g}"
        assert field(app, "cluster.fp8_tflops").value == f"{b200.fp8_tflops:g}"
        assert app.scenario.cluster.gpu == "b200" and app.scenario.cluster.hbm_gb is None
        assert headline(app) == expected_headline(engine_row(app.scenario))


async def test_overriding_a_catalog_value_is_marked_and_used():
    async with explorer() as (app, pilot):
        await put(pilot, "cluster.bf16_tflops", "800")
        assert app.scenario.cluster.bf16_tflops == 800
        row = app.main.query_one("#field-cluster-bf16_tflops")
        assert row.has_class("-override")
        assert headline(app) == expected_headline(engine_row(app.scenario))


BAD_VALUES = [
    ({}, "cluster.gpu_count", "", "empty"),
    ({}, "cluster.gpu_count", "0", "at least 1"),
    ({"cluster.gpu_count": "8"}, "cluster.gpus_per_node", "16", "more than gpu_count 8"),
    ({}, "cluster.gpus_per_node", "128", "at most 72"),
    ({}, "cluster.gpu_count", "12", "multiple of gpus_per_node"),
    ({}, "training.train_tokens", "1e", "not a number"),
    ({}, "training.train_tokens", "15x", "unknown suffix 'x'"),
    ({}, "cluster.hbm_gb", "-5", "more than 0"),
    ({}, "facility.grid_gco2_per_kwh", "", "empty"),
    ({}, "training.parallelism.zero", "5", "from 0 to 3"),
]


async def test_a_bad_value_never_changes_the_results():
    async with explorer() as (app, pilot):
        for setup, key, text, words in BAD_VALUES:
            app.open_scenario(files.load_scenario(files.shipped_presets()["default"]))
            for other, value in setup.items():
                field(app, other).value = value
            await settle(pilot)
            before, scenario, calls = headline(app), app.scenario, app.explorer.calls
            field(app, key).value = text  # as if pasted: one change, straight to the bad value
            await settle(pilot)
            assert app.scenario == scenario, key
            assert headline(app) == before
            row = app.main.query_one(f"#field-{key.replace('.', '-')}")
            assert row.has_class("-error") and words in str(row.query_one(".field-error").render()), (key, text)
            if key.startswith("training."):
                # Only the training figures are stale: the rest of the scenario is still computed.
                assert app.main.figures.stale_parts == {"training"}
                assert "training stale" in app.main.query_one("#status").render().plain
            else:
                assert app.explorer.calls == calls, key
                assert app.main.figures.stale_parts == {"training", "serving"}
                assert "stale" in app.main.query_one("#status").render().plain
        app.open_scenario(files.load_scenario(files.shipped_presets()["default"]))
        await settle(pilot)
        assert not app.main.figures.stale_parts
        assert not app.main.query(".field-row.-error")


async def test_what_cannot_be_read_is_named_under_the_field_never_dropped():
    async with explorer() as (app, pilot):
        before, scenario = headline(app), app.scenario
        await pilot.press("x", "y", "z")
        await settle(pilot)
        # The letters stay where the user can see them, and the field says why they cannot be used.
        assert field(app, "cluster.gpu_count").value == "1024xyz"
        note = str(app.main.query_one("#field-cluster-gpu_count .field-error").render())
        assert "Cluster > GPU count" in note and "not a number" in note
        assert (
            app.scenario == scenario
            and headline(app) == before
            and app.main.figures.stale_parts == {"training", "serving"}
        )


async def test_engineering_notation_is_typed_into_a_workload_field():
    async with explorer() as (app, pilot):
        await replace_text(pilot, "training.train_tokens", "20T")
        assert app.scenario.training.train_tokens == 20e12
        assert headline(app) == expected_headline(engine_row(app.scenario))
        await replace_text(pilot, "training.train_tokens", "15 T")
        assert app.scenario.training.train_tokens == 15e12


async def test_fixing_a_bad_value_brings_the_figures_back_live():
    async with explorer() as (app, pilot):
        await put(pilot, "cluster.gpu_count", "0")
        assert app.main.figures.stale_parts == {"training", "serving"}
        # The last figures stay, drawn in italics (and the status line says stale, in words).
        days = app.main.figures.figures["days"]
        assert all(seg.style.italic for seg in days.render_line(0) if seg.text.strip())
        await put(pilot, "cluster.gpu_count", "512")
        assert not app.main.figures.stale_parts
        assert not any(seg.style.italic for seg in days.render_line(0) if seg.text.strip())
        assert headline(app) == expected_headline(engine_row(app.scenario.edited("cluster", gpu_count=512)))


async def test_a_plan_that_does_not_fit_keeps_the_last_figures_and_says_why():
    async with explorer() as (app, pilot):
        before = headline(app)
        # Llama 3.1 70B on one 8-GPU node: no plan fits in 80 GB.
        await put(pilot, "cluster.gpu_count", "8")
        reason = engine_row(app.scenario)["train_reason"]
        assert app.scenario.cluster.gpu_count == 8 and reason.startswith("needs ")
        assert headline(app) == before
        assert "training" in app.main.figures.stale_parts
        # The message sits under the field just edited.
        note = str(app.main.query_one("#field-cluster-gpu_count .field-error").render())
        assert "no plan fits" in note and reason[:20] in note
        await put(pilot, "cluster.gpu_count", "2048")
        assert not app.main.query_one("#field-cluster-gpu_count").has_class("-error")
        assert "training" not in app.main.figures.stale_parts


async def test_an_explicit_plan_that_cannot_run_is_named_under_its_field():
    async with explorer() as (app, pilot):
        before = headline(app)
        await put(pilot, "training.parallelism.tp", "3")
        assert app.scenario.training.parallelism.tp == 3
        reason = engine_row(app.scenario)["train_reason"]
        note = str(app.main.query_one("#field-training-parallelism-tp .field-error").render())
        assert reason and reason[:20] in note
        assert headline(app) == before


async def test_compare_rows_are_each_presets_hardware_running_the_current_workload():
    async with explorer() as (app, pilot):
        await pilot.press("f3")
        table = app.main.compare
        presets = [p for p in app.presets if p.scenario is not None]
        assert table.row_count == 1 + len(app.presets)
        for preset in presets[:3]:
            try:
                scenario = with_workload(preset.scenario, app.scenario)
            except Exception:
                continue
            row = engine_row(scenario)
            cell = table.get_cell(preset.key, "days")
            assert cell.plain.startswith(fmt.duration_days(row["train_wall_clock_days"]))
        await pilot.press("w")
        await settle(pilot)
        assert app.own_workload
        for preset in presets[:3]:
            row = engine_row(preset.scenario)
            assert table.get_cell(preset.key, "days").plain.startswith(fmt.duration_days(row["train_wall_clock_days"]))


async def test_compare_puts_the_cpu_only_cluster_beside_the_gpus_days_against_hours():
    # Opened on the DGX H100 half of the CPU-only pair, the Compare view runs the same fine-tune on every
    # preset's hardware: the 10 Xeon 6980P sockets take days where the current scenario takes hours.
    gpu = files.load_scenario(files.shipped_presets()["llama8b-finetune-dgx-h100"])
    async with explorer(gpu) as (app, pilot):
        await pilot.press("f3")
        await settle(pilot)
        table = app.main.compare
        cpu_preset = next(p for p in app.presets if p.key.endswith(":llama8b-finetune-cpu-xeon6"))
        on_cpus = engine_row(with_workload(cpu_preset.scenario, app.scenario))
        here = engine_row(app.scenario)
        cpu_cell = table.get_cell(cpu_preset.key, "days").plain
        assert cpu_cell.startswith(fmt.duration_days(on_cpus["train_wall_clock_days"]))
        assert cpu_cell.split()[1] == "d" and on_cpus["train_wall_clock_days"] > 2
        own = table.get_cell(CURRENT, "days").plain
        assert own.startswith(fmt.duration_days(here["train_wall_clock_days"])) and own.split()[1] == "h"


async def test_compare_sorts_by_any_column_and_pins_the_current_scenario():
    async with explorer() as (app, pilot):
        await pilot.press("f3")
        table = app.main.compare
        assert app.focused is table
        await pilot.press("right", "right", "s")
        assert table.sort_key == "days"
        # The baseline (the current scenario) stays on top; the others follow in order.
        assert table.get_row_at(0)[0].is_baseline
        order = [table.get_row_at(i)[2].sort_value for i in range(1, table.row_count)]
        known = [v for v in order if v is not None]
        assert known == sorted(known)
        await pilot.press("s")
        assert table.get_row_at(0)[0].is_baseline
        order = [table.get_row_at(i)[2].sort_value for i in range(1, table.row_count)]
        assert [v for v in order if v is not None] == sorted(known, reverse=True)
        rows = table.row_count
        await pilot.press("p")
        await settle(pilot)
        assert table.row_count == rows + 1 and app.pinned
        pinned = app.pinned[0].key
        first_line = lambda key: table.get_cell(key, "days").plain.splitlines()[0]  # noqa: E731
        assert first_line(pinned) == first_line(CURRENT)
        # Named by what differs from the opened preset: nothing yet.
        assert app.pinned[0].label == "pin 1: as default"


async def test_editing_runs_one_engine_call_that_covers_every_row():
    async with explorer() as (app, pilot):
        calls = app.explorer.calls
        field(app, "training.train_tokens").value = "2e12"  # one change (typing would make several)
        await settle(pilot)
        # The workload changed: the current rows first (its figures at once), then every comparison and
        # the whole sweep, handed to the engine a chunk at a time (an edit meanwhile stops the rest).
        chunks = -(-(app.outcome.evaluated) // app.chunk_rows)
        assert app.explorer.calls <= calls + 1 + chunks
        outcome = app.outcome
        # Every sweep point is new (the workload changed); identical input rows are computed once (the
        # default preset is the current scenario here), so at most every row once.
        rows = len(outcome.sweep) + len([c for c, r in outcome.comparisons if r]) + 2
        assert len({p["n_gpus"] for p in outcome.sweep}) <= outcome.evaluated <= rows
        for comparison, row in outcome.comparisons:
            if row is not None:
                ref = engine_row(comparison.scenario)
                if comparison.scenario.training is None:  # a serving-only preset runs no training
                    assert comparison.error and row["train_gpu_hours"] is None
                    continue
                assert comparison.scenario.training.train_tokens == 2e12
                assert row["train_gpu_hours"] == ref["train_gpu_hours"]
        for point in outcome.sweep[::4]:
            ref = engine_row(app.scenario.edited("cluster", gpu_count=point["n_gpus"]))
            assert (
                point["train_wall_clock_days"] == pytest.approx(ref["train_wall_clock_days"], rel=1e-9, abs=0)
                if ref["train_wall_clock_days"] is not None
                else point["train_wall_clock_days"] is None
            )


async def test_saving_then_reopening_a_preset_restores_every_field():
    async with explorer() as (app, pilot):
        await put(pilot, "cluster.gpu_count", "512")
        await put(pilot, "cluster.hbm_gb", "96")
        await put(pilot, "training.parallelism.tp", "8")
        await put(pilot, "facility.electricity_usd_per_kwh", "0.12")
        field(app, "storage.checkpoint_mode").value = "sync"
        await settle(pilot)
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, SaveScreen)
        name_box = app.screen.query_one("#save-name", Input)
        name_box.value = ""
        await pilot.press(*"my plan", "enter")
        await settle(pilot)
        saved = files.user_presets_dir() / "my-plan.toml"
        assert saved.exists()
        edited = dict(app.main.editor.raw)
        scenario = app.scenario
        assert files.load_scenario(saved) == scenario
        await put(pilot, "cluster.gpu_count", "64")
        await put(pilot, "cluster.hbm_gb", "")
        await pilot.press("ctrl+o")
        await pilot.pause()
        # Edits since the save: opening asks first.
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await pilot.pause()
        assert isinstance(app.screen, OpenScreen)
        options = app.screen.query_one("#open-list")
        index = next(i for i in range(options.option_count) if options.get_option_at_index(i).id == "user:my-plan")
        options.highlighted = index
        await pilot.press("enter")
        await settle(pilot)
        assert app.main.editor.raw == edited
        assert app.scenario == scenario
        assert headline(app) == expected_headline(engine_row(scenario))


async def test_saving_over_an_existing_preset_asks_first():
    existing = files.user_presets_dir() / "mine.toml"
    default = files.load_scenario(files.shipped_presets()["default"])
    files.save_scenario(default.edited(None, name="mine"), existing)
    original = existing.read_text()
    async with explorer() as (app, pilot):
        await put(pilot, "cluster.gpu_count", "256")
        for answer in ("escape", "y"):
            await pilot.press("ctrl+s")
            await pilot.pause()
            app.screen.query_one("#save-name", Input).value = "mine"
            await pilot.press("enter")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press(answer)
            await settle(pilot)
            if answer == "escape":
                assert existing.read_text() == original
        assert files.load_scenario(existing).cluster.gpu_count == 256


async def test_saving_is_refused_while_a_field_is_wrong():
    async with explorer() as (app, pilot):
        await put(pilot, "cluster.gpu_count", "0")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert not isinstance(app.screen, SaveScreen)
        assert not files.user_presets()


async def test_a_malformed_preset_is_named_and_never_opened():
    folder = files.user_presets_dir()
    folder.mkdir(parents=True)
    (folder / "broken.toml").write_text("[cluster]\ngpu = 'h10'\n")
    async with explorer() as (app, pilot):
        scenario = app.scenario
        broken = next(p for p in app.presets if p.key == "user:broken")
        assert broken.scenario is None and "cluster.gpu" in broken.error
        assert not app.open_preset("user:broken")
        await settle(pilot)
        assert app.scenario == scenario
        await pilot.press("f3")
        assert "cluster.gpu" in app.main.compare.entries["user:broken"].note


async def test_switching_training_off_and_on():
    async with explorer() as (app, pilot):
        field(app, "training").value = False
        await settle(pilot)
        assert app.scenario.training is None
        assert headline(app)["days"] == fmt.DASH
        field(app, "training").value = True
        await settle(pilot)
        assert headline(app) == expected_headline(engine_row(app.scenario))


async def test_help_and_views_are_a_key_away():
    async with explorer() as (app, pilot):
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert app.screen is app.main
        for key, view in (("f3", "compare"), ("f4", "scale"), ("f2", "explore")):
            await pilot.press(key)
            assert app.main.query_one("#views").active == view
        theme = app.theme
        await pilot.press("ctrl+t")
        assert app.theme != theme


async def test_the_command_palette_lists_every_preset_and_action():
    async with explorer() as (app, pilot):
        titles = [c.title for c in app.get_system_commands(app.main)]
        for preset in app.presets:
            assert f"Open preset: {preset.label}" in titles
        for wanted in (
            "Help: what the figures mean",
            "Open preset...",
            "Save scenario as preset...",
            "Show compare",
            "Show scale",
            "Pin current scenario",
            "Toggle light/dark theme",
        ):
            assert wanted in titles
        bound = {b.action for _, b in app._bindings}
        for action in ("help", "open_preset", "save", "toggle_theme"):
            assert action in bound


async def test_opening_a_shipped_preset_from_the_palette_callback():
    async with explorer() as (app, pilot):
        command = next(c for c in app.get_system_commands(app.main) if c.title == "Open preset: h200-512")
        command.callback()
        await settle(pilot)
        h200 = files.load_scenario(files.shipped_presets()["h200-512"])
        assert app.scenario == h200
        assert field(app, "cluster.gpu").value == "h200-sxm"
        assert headline(app) == expected_headline(engine_row(h200))


def test_whatif_preset_toml_opens_that_scenario(tmp_path, monkeypatch):
    """`whatif FILE.toml` on a terminal builds the explorer (through make_app) on that file's scenario."""
    import asyncio
    import sys

    from whatif.tui import app as app_module
    from whatif.tui import cli

    preset = tmp_path / "mine.toml"
    scenario = files.load_scenario(files.shipped_presets()["b200-512"]).edited("cluster", gpu_count=256)
    files.save_scenario(scenario, preset)
    built = []

    def fake_run(self, *args, **kwargs):
        built.append(self)
        return 0

    monkeypatch.setattr(app_module.WhatIfApp, "run", fake_run)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    assert cli.main([str(preset)]) == 0
    (app,) = built
    assert app.scenario == scenario and app.path == str(preset)

    async def check():
        app.cursor_blink = False
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert field(app, "cluster.gpu_count").value == "256"
            assert field(app, "cluster.gpu").value == "b200"
            assert headline(app) == expected_headline(engine_row(scenario))

    asyncio.run(check())
