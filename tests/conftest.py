"""Shared fixtures: the user's preset folder in a temporary directory for every test, and helpers for
driving the explorer (no cursor blink, the engine's thread waited for)."""

import pytest


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv("WHATIF_HOME", str(tmp_path / "whatif-home"))
    monkeypatch.delenv("WHATIF_THEME", raising=False)
    yield


async def settle(pilot) -> None:
    """Wait until the engine's worker has answered and the screen has taken the answer."""
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
