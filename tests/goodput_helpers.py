"""Small helpers shared by the goodput, storage and energy tests: build scenarios from nested dicts and
evaluate them in one vectorized call."""

from __future__ import annotations

import copy

from whatif.engine import Scenario, evaluate, resolve


def merge(base: dict, change: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def scenario(base: dict, **sections) -> Scenario:
    return Scenario.model_validate(merge(base, sections))


def rows(*scenarios: Scenario) -> list[dict]:
    return list(evaluate(resolve(list(scenarios))).iter_rows(named=True))


def row(s: Scenario) -> dict:
    return rows(s)[0]


# No failures and no checkpoints: the wall-clock is the steady-state work alone.
QUIET = {"reliability": {"interruptions": False}, "storage": {"checkpoint_mode": "none"}}

# ResNet-50 (MLPerf Storage emulation) on two 8-GPU H100 nodes. The emulation reads its samples and decodes
# nothing, so the input is taken as stored ready to use: the host CPUs run at the framework's load alone (the
# host preprocessing cases are in tests/test_host_cpu.py).
RESNET_16 = {
    "name": "resnet50 on 16 H100",
    "cluster": {"gpu": "h100-sxm", "gpu_count": 16, "gpus_per_node": 8},
    "training": {"model": "resnet50", "train_samples": 6_400_000.0, "global_batch_samples": 6400},
    "data": {"dataset_gb": 100_000.0, "preprocess": "none"},
}
