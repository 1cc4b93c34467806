"""Physics the goodput, storage and energy stages must obey for any scenario (hypothesis)."""

import math

import pytest
from goodput_helpers import merge, rows, scenario
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiers import examples
from whatif.engine.evaluate import IDLE_CAUSES

SETTINGS = settings(
    max_examples=examples(int(__import__("os").environ.get("WHATIF_HYPOTHESIS_EXAMPLES", "30"))),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# An explicit plan keeps each example to one candidate row (the plan search is tested elsewhere).
PLAN = {"tp": 2, "pp": 1, "microbatch": 1, "zero": 1}
WORKLOADS = {
    "resnet50": {"training": {"model": "resnet50", "train_samples": 2e7}},
    "unet3d": {"training": {"model": "unet3d", "train_samples": 2e5}},
    "cosmoflow": {"training": {"model": "cosmoflow", "train_samples": 2e7}},
    "text": {
        "training": {
            "model": "llama-3.1-8b",
            "train_tokens": 2e10,
            "seq_len_tokens": 4096,
            "global_batch_seqs": 512,
            "recompute": "selective",
            "parallelism": PLAN,
        }
    },
    "video": {
        "training": {
            "model": "llama-2-7b",
            "train_tokens": 2e10,
            "seq_len_tokens": 4096,
            "global_batch_seqs": 512,
            "recompute": "selective",
            "parallelism": PLAN,
        },
        "data": {"bytes_per_token": 768.0},
    },
}

gpus = st.sampled_from(["h100-sxm", "a100-sxm-80gb", "b200", "h200-sxm"])
nodes = st.sampled_from([1, 2, 4, 8, 16, 32, 64])  # powers of two: the text batch of 512 always divides
workload = st.sampled_from(sorted(WORKLOADS))
ckpt = st.sampled_from(["none", "sync", "async"])
interval = st.one_of(st.just("auto"), st.floats(min_value=1.0, max_value=600.0))


def base(gpu, n_nodes, kind, mode="async", every="auto", dataset_gb=50_000.0):
    return merge(
        WORKLOADS[kind],
        {
            "name": f"{kind} on {n_nodes} x 8 {gpu}",
            "cluster": {"gpu": gpu, "gpu_count": 8 * n_nodes, "gpus_per_node": 8},
            "storage": {"checkpoint_mode": mode, "checkpoint_interval_min": every},
            "data": {"dataset_gb": dataset_gb},
        },
    )


@SETTINGS
@given(gpus, nodes, workload, st.floats(min_value=0.2, max_value=400.0), st.floats(min_value=1.0, max_value=20.0))
def test_more_shared_fs_bandwidth_never_raises_storage_stall(gpu, n_nodes, kind, read_gb_s, factor):
    b = base(gpu, n_nodes, kind)
    slow, fast = rows(
        scenario(b, storage={"shared_fs_read_gb_s": read_gb_s}),
        scenario(b, storage={"shared_fs_read_gb_s": read_gb_s * factor}),
    )
    assert slow["train_fits"] and fast["train_fits"]
    assert fast["train_t_storage_stall_s"] <= slow["train_t_storage_stall_s"] * (1 + 1e-12)
    # GPU-hours lost to storage (its share of the run can still grow a little: a faster run also loses
    # a different share to failures, so only the hours are monotone).
    stalled = lambda r: r["train_idle_storage_stall_pct"] * r["train_gpu_hours"]  # noqa: E731
    assert stalled(fast) <= stalled(slow) * (1 + 1e-9)
    assert fast["train_storage_bound_gpus"] >= slow["train_storage_bound_gpus"]


@SETTINGS
@given(
    gpus,
    nodes,
    workload,
    st.integers(min_value=1, max_value=16),
    st.integers(min_value=0, max_value=16),
    st.sampled_from(["micron-9400", "samsung-pm1743", "micron-9550", "micron-9650"]),
)
def test_more_nvme_never_raises_storage_stall(gpu, n_nodes, kind, drives, extra, drive):
    b = merge(base(gpu, n_nodes, kind), {"data": {"source": "local-nvme"}, "storage": {"nvme": drive}})
    few, more = rows(
        scenario(b, storage={"nvme_drives_per_node": drives}),
        scenario(b, storage={"nvme_drives_per_node": drives + extra}),
    )
    assert few["train_fits"] and more["train_fits"]
    assert more["train_t_storage_stall_s"] <= few["train_t_storage_stall_s"] * (1 + 1e-12)


@SETTINGS
@given(
    gpus,
    nodes,
    workload,
    ckpt,
    interval,
    st.floats(min_value=10.0, max_value=1e6),
    st.floats(min_value=1.0, max_value=100.0),
    st.floats(min_value=0.0, max_value=120.0),
)
def test_longer_mtbf_never_lowers_goodput(gpu, n_nodes, kind, mode, every, mtbf_h, factor, restart_min):
    b = base(gpu, n_nodes, kind, mode, every)
    rel = {"restart_min": restart_min}
    short, long_ = rows(
        scenario(b, reliability=rel | {"gpu_mtbf_hours": mtbf_h, "node_mtbf_hours": mtbf_h / 2}),
        scenario(b, reliability=rel | {"gpu_mtbf_hours": mtbf_h * factor, "node_mtbf_hours": mtbf_h * factor / 2}),
    )
    assert short["train_fits"] and long_["train_fits"]
    assert long_["train_goodput"] >= short["train_goodput"] * (1 - 1e-9)
    assert long_["train_gpu_hours"] <= short["train_gpu_hours"] * (1 + 1e-9)


@SETTINGS
@given(gpus, nodes, workload, ckpt, st.sampled_from(["direct-liquid", "immersion"]))
def test_liquid_cooling_never_uses_more_facility_energy_than_air(gpu, n_nodes, kind, mode, liquid):
    s = scenario(base(gpu, n_nodes, kind, mode))
    air, wet = rows(s.edited("cooling", kind="air"), s.edited("cooling", kind=liquid))
    assert air["train_fits"] and wet["train_fits"]
    assert wet["train_energy_mwh"] <= air["train_energy_mwh"] * (1 + 1e-12)


@SETTINGS
@given(
    gpus,
    nodes,
    workload,
    ckpt,
    interval,
    st.booleans(),
    st.floats(min_value=0.5, max_value=200.0),
    st.floats(min_value=100.0, max_value=1e6),
)
def test_idle_breakdown_and_useful_work_fill_the_gpu_hours(gpu, n_nodes, kind, mode, every, failures, read, mtbf_h):
    s = scenario(
        base(gpu, n_nodes, kind, mode, every),
        storage={"shared_fs_read_gb_s": read},
        reliability={"interruptions": failures, "gpu_mtbf_hours": mtbf_h, "node_mtbf_hours": mtbf_h},
    )
    (r,) = rows(s)
    if not r["train_fits"] or r["train_wall_clock_days"] is None:
        return
    parts = [r[f"train_idle_{c}_pct"] for c in IDLE_CAUSES]
    assert all(p >= -1e-9 for p in parts)
    assert math.fsum(parts) == pytest.approx(r["train_idle_gpu_pct"], abs=1e-9)
    assert r["train_idle_gpu_pct"] + r["train_useful_gpu_pct"] == pytest.approx(100.0, abs=1e-6)


def test_batch_evaluation_equals_one_by_one():
    # The engine is vectorized over scenarios: evaluating them together must give what each gives alone.
    scenarios = [
        scenario(base(g, n, k, m))
        for g, n, k, m in [
            ("h100-sxm", 2, "resnet50", "async"),
            ("a100-sxm-80gb", 16, "text", "sync"),
            ("b200", 4, "video", "none"),
            ("h200-sxm", 8, "unet3d", "sync"),
        ]
    ]
    together = rows(*scenarios)
    for s, r in zip(scenarios, together, strict=True):
        (alone,) = rows(s)
        for key in (
            "train_wall_clock_days",
            "train_idle_gpu_pct",
            "train_energy_mwh",
            "train_goodput",
            "train_t_storage_stall_s",
            "train_peak_power_mw",
        ):
            assert alone[key] == r[key], key
