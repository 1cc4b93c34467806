"""Input stalls and checkpoint costs, by hand (engine/storage.py). Every expected figure is worked out
below from catalog facts, never read back from the engine."""

import math

import pytest
from goodput_helpers import QUIET, RESNET_16, merge, row, rows, scenario

# ResNet-50 in MLPerf Storage (mlcommons/storage resnet50_h100.yaml): 400 samples of 114,660.07 bytes per
# batch, 0.224 s of compute per batch on an H100.
SAMPLE_B = 114_660.07
BATCH = 400
H100_BATCH_S = 0.224


def test_shared_fs_stall_by_hand():
    # 16 GPUs x 400 samples per step; the whole job reads 6,400 x 114,660.07 B = 0.7338 GB per step.
    # From a 2 GB/s file system that takes 0.3669 s, while the GPUs compute a step in 0.224 s:
    # every step waits 0.3669 - 0.224 = 0.1429 s for its input.
    s = scenario(merge(RESNET_16, QUIET), storage={"shared_fs_read_gb_s": 2.0, "checkpoint_mode": "none"})
    r = row(s)
    step_bytes = 16 * BATCH * SAMPLE_B
    t_io = step_bytes / 2e9
    stall = t_io - H100_BATCH_S
    assert r["train_t_io_s"] == pytest.approx(t_io, rel=1e-9)
    assert r["train_t_storage_stall_s"] == pytest.approx(stall, rel=1e-9)
    assert r["train_step_time_s"] == pytest.approx(t_io, rel=1e-9)
    # Idle share of GPU-hours = stall / step (no other cause: one node-pair, no TP/PP, no failures).
    assert r["train_idle_storage_stall_pct"] == pytest.approx(100 * stall / t_io, rel=1e-9)
    assert r["train_idle_gpu_pct"] == pytest.approx(100 * stall / t_io, rel=1e-9)
    assert r["train_bottleneck"] == "storage"
    # Full-speed demand per GPU: 400 x 114,660.07 B / 0.224 s = 204.75 MB/s; a 2 GB/s supply keeps
    # 2e9 / (0.9 x 204.75e6) = 10.85 GPUs at >= 90% utilisation.
    demand = BATCH * SAMPLE_B / H100_BATCH_S
    assert r["train_data_demand_gb_s_per_gpu"] == pytest.approx(demand / 1e9, rel=1e-9)
    assert r["train_storage_bound_gpus"] == pytest.approx(2e9 / (0.9 * demand), rel=1e-9)


def test_node_storage_network_caps_the_shared_fs():
    # A 100 GB/s file system behind 8 Gb/s (1 GB/s) storage links on each of 2 nodes delivers 2 GB/s:
    # the same stall as the 2 GB/s file system above.
    s = scenario(merge(RESNET_16, QUIET), storage={"shared_fs_read_gb_s": 100.0, "node_network_gbps": 8.0})
    r = row(s)
    assert r["train_data_supply_gb_s"] == pytest.approx(2.0)
    assert r["train_t_storage_stall_s"] == pytest.approx(16 * BATCH * SAMPLE_B / 2e9 - H100_BATCH_S, rel=1e-9)


def test_local_nvme_feeds_the_gpus():
    # One Micron 9400 per node (7.0 GB/s read) on 2 nodes = 14 GB/s: 0.7338 GB in 0.0524 s < 0.224 s.
    s = scenario(
        merge(RESNET_16, QUIET),
        storage={"shared_fs_read_gb_s": 2.0, "nvme_drives_per_node": 1},
        data={"source": "local-nvme"},
    )
    r = row(s)
    assert r["train_data_supply_gb_s"] == pytest.approx(14.0)
    assert r["train_t_io_s"] == pytest.approx(16 * BATCH * SAMPLE_B / 14e9, rel=1e-9)
    assert r["train_t_storage_stall_s"] == 0.0
    assert r["train_step_time_s"] == pytest.approx(H100_BATCH_S, rel=1e-9)


def test_cached_dataset_waits_only_in_its_first_epoch():
    # A 100 GB dataset fits in 2,048 GB of host memory. Training on 10 times its samples reads storage in
    # the first epoch only, so the average stall per step is a tenth of the uncached 0.1429 s.
    dataset_gb = 100.0
    samples = 10 * dataset_gb * 1e9 / SAMPLE_B
    s = scenario(
        merge(RESNET_16, QUIET),
        storage={"shared_fs_read_gb_s": 2.0},
        data={"dataset_gb": dataset_gb},
        training={"train_samples": samples},
    )
    r = row(s)
    stall = 16 * BATCH * SAMPLE_B / 2e9 - H100_BATCH_S
    assert r["train_t_storage_stall_s"] == pytest.approx(stall / 10, rel=1e-9)


def test_text_reads_two_or_four_bytes_per_token():
    # Megatron-LM stores token ids as uint16 below a 65,500 vocabulary, else int32: Llama 2 (32,000) reads
    # 2 bytes per token, Llama 3.1 (128,256) reads 4. Llama 2 7B, 1,024 sequences of 4,096 tokens per step
    # on 8 GPUs: 8.39 MB per step from a 1 GB/s file system = 8.4 ms.
    base = {
        "cluster": {"gpu": "h100-sxm", "gpu_count": 8},
        "storage": {"shared_fs_read_gb_s": 1.0},
        "training": {"model": "llama-2-7b", "seq_len_tokens": 4096, "global_batch_seqs": 1024, "train_tokens": 1e9},
    }
    r2, r4 = rows(scenario(base), scenario(base, training={"model": "llama-3.1-8b"}))
    assert r2["train_t_io_s"] == pytest.approx(1024 * 4096 * 2 / 1e9, rel=1e-9)
    assert r4["train_t_io_s"] == pytest.approx(1024 * 4096 * 4 / 1e9, rel=1e-9)
    assert r2["train_t_storage_stall_s"] == 0.0


def test_video_tokens_stall_on_nfs():
    # 768 bytes per token (a 16 x 16 RGB patch) x 4,096 x 1,024 tokens = 3.22 GB per step over 2 GB/s NFS:
    # 1.61 s of reading per step, far more than the step's compute on 512 H100.
    s = scenario(
        {},
        cluster={"gpu": "h100-sxm", "gpu_count": 512},
        storage={"shared_fs": "nfs-tcp"},
        data={"bytes_per_token": 768.0},
        training={"model": "llama-2-7b", "seq_len_tokens": 4096, "global_batch_seqs": 1024, "train_tokens": 1e11},
    )
    r = row(s)
    assert r["train_t_io_s"] == pytest.approx(768 * 4096 * 1024 / 2e9, rel=1e-9)
    assert r["train_step_time_s"] == pytest.approx(r["train_t_io_s"], rel=1e-9)
    assert r["train_bottleneck"] == "storage"


def test_unmeasured_architecture_scales_by_hbm_bandwidth():
    # B200 is not in the MLPerf Storage emulation: its ResNet-50 time per batch is the H100's 0.224 s x
    # 3.35 / 8.0 TB/s (HBM bandwidth ratio, catalog) = 0.0938 s, so its full-speed demand is
    # 400 x 114,660.07 / 0.0938 = 489 MB/s.
    s = scenario(merge(RESNET_16, QUIET), cluster={"gpu": "b200", "gpu_count": 16})
    r = row(s)
    batch_s = H100_BATCH_S * 3.35 / 8.0
    assert r["train_data_demand_gb_s_per_gpu"] == pytest.approx(BATCH * SAMPLE_B / batch_s / 1e9, rel=1e-6)


# --- checkpoints ----------------------------------------------------------------------------------------

MODEL_70B = {
    "name": "70B",
    "layers": 80,
    "hidden": 8192,
    "heads": 64,
    "kv_heads": 8,
    "ffn_hidden": 28672,
    "vocab": 128256,
    "ffn_kind": "swiglu",
    "tied_embeddings": False,
    "params_total_b": 70.0,
}


def test_checkpoint_size_and_costs_by_hand():
    # 70e9 parameters x 14 bytes (bf16 weights 2 + fp32 master, momentum, variance 12) = 980 GB.
    # Sync: 980 GB / 100 GB/s (DDN AI400X2-Turbo) = 9.8 s. Async: each of 1,024 GPUs copies 980/1,024 GB over
    # PCIe Gen5 x16 (64 GB/s): 14.95 ms, on top of PyTorch DCP's measured 6.3 s of blocking (reference
    # hardware_catalog.md 7c: 148.8 s -> 6.3 s with async DCP); the write drains in the background at 2/7 of
    # the bandwidth (Tectonic's sustained / peak, reference IO-LLAMA3-TECTONIC): 9.8 x 7 / 2 = 34.3 s.
    # Read back at restart: 9.8 s.
    base = {
        "cluster": {"gpu": "h100-sxm", "gpu_count": 1024},
        "training": {
            "model": MODEL_70B,
            "train_tokens": 1e11,
            "seq_len_tokens": 8192,
            "global_batch_seqs": 2048,
            "parallelism": {"tp": 8, "pp": 1},
        },
    }
    sync, asyn = rows(
        scenario(base, storage={"checkpoint_mode": "sync"}), scenario(base, storage={"checkpoint_mode": "async"})
    )
    assert sync["train_checkpoint_gb"] == pytest.approx(980.0)
    assert sync["train_checkpoint_write_s"] == pytest.approx(9.8)
    assert sync["train_checkpoint_stall_s"] == pytest.approx(9.8)
    assert asyn["train_checkpoint_stall_s"] == pytest.approx(6.3 + 980e9 / 1024 / 64e9, rel=1e-6)
    assert asyn["train_checkpoint_background_write_s"] == pytest.approx(980e9 / (100e9 * 0.286), rel=1e-6)
    # Restart = 5 min (detection, rescheduling) + 0.02 s x 1,024 GPUs (start-up) + reading the checkpoint
    # back (9.8 s).
    assert sync["train_restart_min"] == pytest.approx(5.0 + (0.02 * 1024 + 9.8) / 60)


def test_bloom_checkpoint_size_matches_its_published_size():
    # BLOOM-176B (bigscience tr11-176B-ml README): "each checkpoint with fp32 optim states and bf16+fp32
    # weights is 2.3TB", saved in 40 s on Jean Zay's GPFS (57.5 GB/s). The engine's size is 176.2e9 x 14 B
    # = 2.47 TB (+7%); at that write rate the save takes 42.9 s against the published 40 s.
    from whatif.tui.files import calibration_cases

    bloom = next(s for c, s in calibration_cases() if c.id == "PAPER-BLOOM-176B")
    r = row(bloom.edited("storage", shared_fs_write_gb_s=2300 / 40, checkpoint_mode="sync"))
    assert r["train_checkpoint_gb"] / 2300.0 == pytest.approx(1.0, abs=0.10)
    assert r["train_checkpoint_write_s"] / 40.0 == pytest.approx(1.0, abs=0.10)


def test_without_a_shared_fs_checkpoints_go_to_local_nvme():
    # No shared file system: 2 nodes x 8 Micron 9400 x 7.0 GB/s write = 112 GB/s for a 980 GB checkpoint.
    s = scenario(
        {},
        cluster={"gpu": "h100-sxm", "gpu_count": 16},
        storage={"shared_fs": "none", "checkpoint_mode": "sync"},
        data={"source": "local-nvme"},
        training={"model": MODEL_70B, "train_tokens": 1e9, "seq_len_tokens": 4096, "global_batch_seqs": 64},
    )
    r = row(s)
    assert r["train_checkpoint_write_s"] == pytest.approx(980.0 / 112.0, rel=1e-9)
    assert math.isfinite(r["train_wall_clock_days"])
