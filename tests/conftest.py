"""Shared fixtures: the user's preset folder in a temporary directory for every test."""

import pytest


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv("WHATIF_HOME", str(tmp_path / "whatif-home"))
    yield
