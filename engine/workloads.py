"""Sample-based (non-LLM) training: step time from a measured per-sample compute time (vectorized).

    step = (global batch / GPUs) x max(seconds per sample, FLOPs per sample / large-GEMM ceiling)

The seconds per sample come from catalog/workloads.toml (the MLPerf Storage emulation times, measured on the
real accelerators; other architectures scaled by HBM bandwidth, see resolve.py) or the scenario's
data.samples_per_gpu_s, plus each sample's GPU-side decode where data.preprocess = "gpu-decode". These
workloads run pure data parallel; their gradient all-reduce (25.6M parameters
for ResNet-50) is taken as hidden behind the backward pass, as the MLPerf Storage emulation also assumes.
"""

from __future__ import annotations

import numpy as np

from .columns import Columns


def sample_step(c: Columns) -> None:
    """Replace the transformer stand-in's step of sample-workload rows (is_samples == 1) in place."""
    rows = c.is_samples == 1
    if not rows.any():
        c.t_gpu_decode_s = 0.0
        return
    per_gpu = c.gbs / np.maximum(c.n_gpus, 1)
    # GPU-side JPEG decoding (data.preprocess = "gpu-decode", engine/host.py) runs on the GPU before compute.
    decode = per_gpu * c.gpu_decode_s
    # No GPU computes a sample faster than its FLOPs at the part's large-GEMM ceiling: a peak override below
    # the measured part's (cluster.bf16_tflops) slows the measured time down to that bound (NaN: no FLOPs
    # published, the measured time alone).
    floor = c.sample_flops / (c.gemm_bf16_tflops * 1e12)
    step = per_gpu * np.fmax(c.sample_s, floor) + decode

    def put(name: str, value) -> None:
        setattr(c, name, np.where(rows, value, getattr(c, name)))

    put("step_time_s", step)
    put("t_compute_s", step)
    c.t_gpu_decode_s = np.where(rows, decode, 0.0)
    put("n_used", c.n_gpus)
    for name in (
        "t_tp_s",
        "t_cp_s",
        "t_ep_s",
        "t_pp_s",
        "t_dp_s",
        "t_bubble_s",
        "t_optimizer_s",
        "eval_time_s",
        "t_sync_s",
        "t_nic_wait_s",
    ):
        put(name, 0.0)
    # One "token" of a sample workload is one sample (seq = 1): FLOPs per sample where published.
    put("model_flops_per_token", c.sample_flops)
    put("hw_flops_per_token", c.sample_flops)
