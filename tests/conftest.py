"""Shared fixtures: the user's preset folder in a temporary directory for every test, and helpers for
driving the explorer (no cursor blink, the engine's thread waited for)."""

import contextlib
import itertools
import os

import pytest
import tiers
from hypothesis import settings

# Property tests draw the same examples on every run, so CI never fails on a chance draw; run with
# HYPOTHESIS_PROFILE=explore to search new examples.
settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_configure(config):
    # The quick tier (`-m "not slow"`) draws fewer property examples (tests/tiers.py).
    expr = " ".join((config.getoption("markexpr") or "").split())
    tiers.QUICK = "not slow" in expr


_HOMES = itertools.count()


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    # A home of its own for every test, under the session's temporary folder and made only when the test
    # writes there (most never do: a tmp_path for each of 1,400 tests cost two seconds of the quick tier).
    home = tmp_path_factory.getbasetemp() / "homes" / f"{next(_HOMES)}" / "whatif-home"
    monkeypatch.setenv("WHATIF_HOME", str(home))
    monkeypatch.delenv("WHATIF_THEME", raising=False)
    yield


@contextlib.asynccontextmanager
async def running(app, size):
    """`app` under Pilot at `size`, settled on its first figures: `async with running(...) as (app, pilot)`."""
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        yield app, pilot


async def settle(pilot) -> None:
    """Wait until the engine's worker has answered and the screen has taken the answer (including work
    the explorer holds back until typing pauses, and a typed value's problem, shown once typing pauses)."""
    await pilot.pause()
    for _ in range(100):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        held = _problem_held(pilot.app)
        if getattr(pilot.app, "_rest_timer", None) is None and not pilot.app.workers and not held:
            break
        await pilot.pause(0.05)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def _problem_held(app) -> bool:
    """Whether the explorer's editor holds back a typed value's problem (ScenarioEditor.take_held)."""
    main = getattr(app, "_main", None)
    try:
        return main is not None and main.editor._held is not None
    except Exception:  # the screen not composed yet, or gone
        return False
