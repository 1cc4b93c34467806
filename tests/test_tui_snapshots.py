"""What users see (pytest-textual-snapshot). Deterministic: no clock, no timings, no host name, no cursor
blink; user presets and settings in a temporary folder (conftest). Update deliberately:
pytest tests/test_tui_snapshots.py --snapshot-update, then look at every changed SVG."""

from __future__ import annotations

from collections import OrderedDict

import pytest
from conftest import settle
from whatif.tui.app import make_app
from whatif.tui.session import Explorer

_CACHE: OrderedDict = OrderedDict()


# Each drives the real app (seconds): the quick tier (pytest -m "not slow") leaves them out.
pytestmark = pytest.mark.slow


def app(**kw):
    return make_app(cursor_blink=False, explorer=Explorer(_cache=_CACHE), **kw)


def keys(*pressed, setup=None):
    """Wait for the first figures, run `setup(app)` (values set as a paste would), press the keys."""

    async def run_before(pilot):
        await settle(pilot)
        if setup is not None:
            setup(pilot.app)
            await settle(pilot)
        for key in pressed:
            await pilot.press(key)
            await settle(pilot)

    return run_before


def _set(key: str, value):
    def setup(app):
        app.main.query_one(f"#in-{key.replace('.', '-')}").value = value

    return setup


CLEAR = ("backspace",) * 4


# -- every size: nothing cut without a way to see it ---------------------------------------------


def test_main_screen_64x20_edit_tab(snap_compare):
    assert snap_compare(app(), terminal_size=(64, 20), run_before=keys())


def test_main_screen_64x20_figures_tab(snap_compare):
    assert snap_compare(app(), terminal_size=(64, 20), run_before=keys("f6"))


def test_main_screen_80x24(snap_compare):
    assert snap_compare(app(), terminal_size=(80, 24), run_before=keys())


def test_main_screen_120x40(snap_compare):
    assert snap_compare(app(), terminal_size=(120, 40), run_before=keys())


def test_main_screen_200x50(snap_compare):
    assert snap_compare(app(), terminal_size=(200, 50), run_before=keys())


# -- editing -----------------------------------------------------------------------------------


def test_after_typing_a_gpu_count(snap_compare):
    # The cursor starts in the GPU count field: 1024 -> 2k. The title says what changed.
    assert snap_compare(app(), terminal_size=(80, 24), run_before=keys(*CLEAR, "2", "k"))


def test_error_state_keeps_the_last_figures_marked_stale(snap_compare):
    assert snap_compare(app(), terminal_size=(80, 24), run_before=keys(*CLEAR, "0"))


def test_unreadable_number_is_named_under_its_field(snap_compare):
    assert snap_compare(app(), terminal_size=(80, 24), run_before=keys("x"))


def test_serving_only_problem_marks_only_serving_stale(snap_compare):
    # An A100 has no FP8: the serving precision is wrong, training stays live (and its own fabric shows).
    assert snap_compare(app(), terminal_size=(120, 40), run_before=keys(setup=_set("cluster.gpu", "a100-sxm-80gb")))


def test_plan_that_does_not_fit(snap_compare):
    # 8 GPUs: Llama 3.1 70B does not fit one node's memory with any plan.
    assert snap_compare(app(), terminal_size=(80, 24), run_before=keys(*CLEAR, "8"))


def test_serving_pane_with_latency_limits(snap_compare):
    def setup(app):
        _set("inference.ttft_p99_limit_ms", "300")(app)
        _set("inference.tpot_p99_limit_ms", "50")(app)

    assert snap_compare(app(), terminal_size=(120, 40), run_before=keys("alt+6", setup=setup))


# -- views -------------------------------------------------------------------------------------


def test_compare_view_80x24(snap_compare):
    assert snap_compare(app(), terminal_size=(80, 24), run_before=keys("f3"))


def test_compare_view_sorted_120x40(snap_compare):
    assert snap_compare(app(), terminal_size=(120, 40), run_before=keys("f3", "right", "right", "s"))


def test_compare_with_another_baseline_and_a_hidden_row_120x40(snap_compare):
    assert snap_compare(app(), terminal_size=(120, 40), run_before=keys("f3", "down", "down", "b", "down", "h"))


def test_scale_view_80x24_with_a_target(snap_compare):
    assert snap_compare(app(), terminal_size=(80, 24), run_before=keys("f4", "tab", "6", "0"))


def test_scale_view_120x40(snap_compare):
    assert snap_compare(app(), terminal_size=(120, 40), run_before=keys("f4"))


def test_details_view_120x40(snap_compare):
    assert snap_compare(app(), terminal_size=(120, 40), run_before=keys("f5"))


# -- dialogs, help, themes ---------------------------------------------------------------------


def test_save_dialog(snap_compare):
    assert snap_compare(app(), terminal_size=(80, 24), run_before=keys("ctrl+s"))


def test_quit_with_unsaved_edits_asks(snap_compare):
    assert snap_compare(app(), terminal_size=(80, 24), run_before=keys(*CLEAR, "2", "k", "ctrl+q"))


def test_help_screen(snap_compare):
    assert snap_compare(app(), terminal_size=(80, 24), run_before=keys("f1"))


def test_light_theme(snap_compare):
    assert snap_compare(app(theme="textual-light"), terminal_size=(80, 24), run_before=keys())


def test_terminal_colours_theme(snap_compare):
    assert snap_compare(app(theme="ansi-dark"), terminal_size=(80, 24), run_before=keys("f3"))


def test_no_color_focus_and_marks(snap_compare, monkeypatch):
    # NO_COLOR: focus (reverse video), checkboxes ([X]) and better/worse (✓ ✗) still read.
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(app(), terminal_size=(120, 40), run_before=keys("alt+5"))
