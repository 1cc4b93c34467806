"""The shipped storage-bound presets evaluate, and storage (not compute) sets their pace."""

import pytest
from whatif.engine import evaluate, resolve
from whatif.tui.cli import main
from whatif.tui.files import load_scenario, shipped_presets

STORAGE_BOUND = ["vision-resnet50-undersized-fs", "medical-unet3d-shared-fs", "video-transformer-nfs"]


@pytest.mark.parametrize("name", STORAGE_BOUND)
def test_storage_bound_preset(name):
    s = load_scenario(shipped_presets()[name])
    (r,) = evaluate(resolve([s])).iter_rows(named=True)
    assert r["train_fits"]
    assert r["train_bottleneck"] == "storage"
    # Storage is the largest single cause of idle GPU-hours, and it idles a large share of them.
    causes = ["communication", "pipeline_bubble", "storage_stall", "checkpoint_stall", "failure_downtime", "lost_work"]
    assert max(causes, key=lambda c: r[f"train_idle_{c}_pct"]) == "storage_stall"
    assert r["train_idle_storage_stall_pct"] > 30.0
    # The storage cannot keep all the job's GPUs at 90% utilisation.
    assert r["train_storage_bound_gpus"] < r["n_gpus"]


def test_every_shipped_preset_evaluates(capsys):
    presets = list(shipped_presets().values())
    training = [p for p in presets if load_scenario(p).training is not None]
    assert main(["eval", "--json", *map(str, presets)]) == 0
    # Every preset with a training workload reports where its GPU-hours go.
    assert capsys.readouterr().out.count('"idle_breakdown_pct"') == len(training) >= 4
