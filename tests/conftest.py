"""Shared fixtures: the user's preset folder in a temporary directory for every test, and helpers for
driving the explorer (no cursor blink, the engine's thread waited for)."""

import os

import pytest
from hypothesis import settings

# Property tests draw the same examples on every run, so CI never fails on a chance draw; run with
# HYPOTHESIS_PROFILE=explore to search new examples.
settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv("WHATIF_HOME", str(tmp_path / "whatif-home"))
    monkeypatch.delenv("WHATIF_THEME", raising=False)
    yield


async def settle(pilot) -> None:
    """Wait until the engine's worker has answered and the screen has taken the answer (including work
    the explorer holds back until typing pauses)."""
    await pilot.pause()
    for _ in range(100):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        if getattr(pilot.app, "_rest_timer", None) is None and not pilot.app.workers:
            break
        await pilot.pause(0.05)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
