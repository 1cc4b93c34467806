"""Preset files: every shipped preset loads and evaluates; saving is lossless and safe."""

import os

import pytest
import tiers
from whatif.engine import Scenario, evaluate, resolve
from whatif.tui import files

SHIPPED = files.shipped_presets()


@pytest.mark.parametrize("name", list(SHIPPED))
def test_shipped_preset_round_trips(name, tmp_path):
    scenario = files.load_scenario(SHIPPED[name])
    saved = files.save_scenario(scenario, tmp_path / f"{name}.toml")
    assert files.load_scenario(saved) == scenario


# The quick tier evaluates a third of them one by one (test_storage_presets.py evaluates them all at once).
@pytest.mark.parametrize("name", tiers.share(list(SHIPPED), 3))
def test_shipped_preset_evaluates_without_nan(name):
    scenario = files.load_scenario(SHIPPED[name])
    row = evaluate(resolve([scenario])).row(0, named=True)
    # A CPU socket has no catalog price (the reference holds none): its two price columns are blank.
    unpriced = {"usd_per_gpu_hour", "server_usd_per_gpu"} if row["price_key"] == "none" else set()
    for key, value in row.items():
        assert key in unpriced or not (isinstance(value, float) and value != value), (name, key)


def test_default_preset_exists_and_trains():
    scenario = files.load_scenario(SHIPPED["default"])
    assert scenario.training is not None and scenario.cluster.gpu == "h100-sxm"


def test_explicit_shape_and_plan_round_trip(tmp_path):
    scenario = Scenario.model_validate(
        {
            "name": "custom",
            "cluster": {"gpu": "h100-sxm", "gpu_count": 64},
            "training": {
                "model": {"name": "tiny", "layers": 4, "hidden": 512, "heads": 8},
                "parallelism": {"tp": 2, "zero": 1},
                "recompute": "selective",
            },
        }
    )
    path = files.save_scenario(scenario, tmp_path / "custom.toml")
    assert files.load_scenario(path) == scenario


def test_save_refuses_to_overwrite_unless_told(tmp_path):
    target = tmp_path / "mine.toml"
    first = Scenario(name="first")
    files.save_scenario(first, target)
    with pytest.raises(FileExistsError):
        files.save_scenario(Scenario(name="second"), target)
    assert files.load_scenario(target).name == "first"
    files.save_scenario(Scenario(name="second"), target, overwrite=True)
    assert files.load_scenario(target).name == "second"


def test_failed_save_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "mine.toml"
    files.save_scenario(Scenario(name="kept"), target)

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        files.save_scenario(Scenario(name="lost"), target, overwrite=True)
    assert files.load_scenario(target).name == "kept"
    assert [p.name for p in tmp_path.iterdir()] == ["mine.toml"]


def test_user_presets_live_under_whatif_home(tmp_path, monkeypatch):
    monkeypatch.setenv("WHATIF_HOME", str(tmp_path))
    files.save_scenario(Scenario(name="saved"), files.user_presets_dir() / "saved.toml")
    assert list(files.user_presets()) == ["saved"]
