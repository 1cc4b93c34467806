"""What users see (pytest-textual-snapshot). Deterministic: no clock, no timings, no host name, no cursor
blink; user presets in a temporary folder (conftest). Update deliberately: pytest --snapshot-update."""

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


def keys(*pressed):
    async def run_before(pilot):
        await settle(pilot)
        for key in pressed:
            await pilot.press(key)
            await settle(pilot)

    return run_before


def test_main_screen_80x24(snap_compare):
    assert snap_compare(app(), terminal_size=(80, 24), run_before=keys())


def test_main_screen_120x40(snap_compare):
    assert snap_compare(app(), terminal_size=(120, 40), run_before=keys())


def test_after_typing_a_gpu_count(snap_compare):
    # The cursor starts in the GPU count field: 1024 -> 2048.
    assert snap_compare(
        app(),
        terminal_size=(80, 24),
        run_before=keys("backspace", "backspace", "backspace", "backspace", "2", "0", "4", "8"),
    )


def test_error_state_keeps_the_last_figures_marked_stale(snap_compare):
    assert snap_compare(
        app(), terminal_size=(80, 24), run_before=keys("backspace", "backspace", "backspace", "backspace", "0")
    )


def test_plan_that_does_not_fit(snap_compare):
    # 8 GPUs: Llama 3.1 70B does not fit one node's memory with any plan.
    assert snap_compare(
        app(), terminal_size=(80, 24), run_before=keys("backspace", "backspace", "backspace", "backspace", "8")
    )


def test_compare_view_80x24(snap_compare):
    assert snap_compare(app(), terminal_size=(80, 24), run_before=keys("f3"))


def test_compare_view_sorted_120x40(snap_compare):
    assert snap_compare(app(), terminal_size=(120, 40), run_before=keys("f3", "right", "right", "s"))


def test_scale_view_80x24(snap_compare):
    assert snap_compare(app(), terminal_size=(80, 24), run_before=keys("f4"))


def test_save_dialog(snap_compare):
    assert snap_compare(app(), terminal_size=(80, 24), run_before=keys("ctrl+s"))


def test_help_screen(snap_compare):
    assert snap_compare(app(), terminal_size=(80, 24), run_before=keys("f1"))


def test_light_theme(snap_compare):
    assert snap_compare(app(theme="textual-light"), terminal_size=(80, 24), run_before=keys())


def test_terminal_colours_theme(snap_compare):
    assert snap_compare(app(theme="ansi-dark"), terminal_size=(80, 24), run_before=keys("f3"))
