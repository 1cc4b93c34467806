"""One training step of a transformer under a parallel plan, assembled from its parts (vectorized).

    step = m x (stage compute + exposed TP + CP + EP + PP per micro-batch) + bubble
           + exposed data-parallel communication + optimizer update + NCCL's share of the SMs,
    never shorter than the time the NICs need for all scale-out traffic, then
    x (1 + cv x sqrt(2 ln N)) for waiting on the slowest of N GPUs at every synchronisation.

compute.py (GEMMs by shape, attention, memory-bound work, recomputation), communication.py (collectives and
overlap), memory.py (what fits); formulas and sources in docs/model.md ("Training step").
"""

from __future__ import annotations

import numpy as np

from ..catalog import Catalog
from ..columns import Columns
from .communication import step_communication
from .compute import step_compute
from .memory import fewest_recomputed_layers, memory
from .shape import derive, model_flops_per_token

GIB = 2.0**30
AUTO = -1


def settle_recompute(c: Columns, cat: Catalog) -> None:
    """rcl (layers per stage recomputed in full) where the scenario leaves it open: all layers for
    recompute = "full", the fewest that fit for "auto", none for "none" / "selective"."""
    derive(c)
    open_rcl = c.rcl == AUTO
    if not open_rcl.any():
        return
    fewest = fewest_recomputed_layers(c, cat)
    all_layers = c.layers_stage
    c.rcl = np.where(open_rcl, np.where(c.rc_full == 1, all_layers, np.minimum(fewest, all_layers)), c.rcl)


def step(c: Columns, cat: Catalog) -> None:
    """Adds step_time_s and its breakdown, FLOP counts, memory per GPU and feasibility to candidate rows."""
    derive(c)
    memory(c, cat)
    step_compute(c, cat)
    step_communication(c, cat)
    m = c.m
    optimizer_params = np.where(
        c.zero >= 1,
        c.params_dense_local / c.shard + c.params_expert_local / np.maximum(c.tp * c.cp * c.dp / (c.ep * c.etp), 1.0),
        c.params_dense_local + c.params_expert_local,
    )
    hbm = c.hbm_tb_s * 1e12 * c.mem_eff
    # Adam streams the fp32 master weight and two moments (read and write) and the 16-bit gradient and weight;
    # FP8/FP4 training casts the weights once per step (read 2, write 1 and its transpose 1 byte).
    local = c.params_dense_local + c.params_expert_local
    c.t_optimizer_s = (
        optimizer_params * (2 * cat.constant("bytes_optimizer_per_param") + 4.0)
        + np.where(c.prec > 0, 4.0 * local, 0.0)
    ) / hbm
    c.t_compute_s = m * c.t_stage_mb_s + c.t_contention_s
    c.t_tp_s = m * c.tp_exposed_mb_s
    c.t_cp_s = m * c.cp_exposed_mb_s
    c.t_ep_s = m * c.ep_exposed_mb_s
    c.t_pp_s = m * c.pp_exposed_mb_s
    modelled = c.t_compute_s + c.t_tp_s + c.t_cp_s + c.t_ep_s + c.t_pp_s + c.t_bubble_s + c.t_dp_s + c.t_optimizer_s
    # The NICs serve every scale-out collective at once: what they cannot fit behind the step shows.
    c.t_nic_wait_s = np.maximum(c.t_nic_busy_s - modelled, 0.0)
    synced = modelled + c.t_nic_wait_s
    n = np.maximum(c.n_used, 2.0)
    c.t_sync_s = synced * c.k_sync_jitter_cv * np.sqrt(2.0 * np.log(n))
    c.step_time_s = synced + c.t_sync_s
    # Forward-only evaluation inside the timed run (MLPerf counts it): the same pipeline, no backward.
    fwd_mb = c.t_fwd_mb_s + (c.tp_exposed_mb_s + c.cp_exposed_mb_s + c.ep_exposed_mb_s + c.pp_exposed_mb_s) / 2
    tokens_per_step = c.gbs * c.seq
    c.tokens_per_step = tokens_per_step
    c.eval_time_s = c.eval_tokens / tokens_per_step * (m + (c.pp - 1) / c.v) * fwd_mb
    c.model_flops_per_token = model_flops_per_token(c)
    c.hw_flops_per_token = c.model_flops_per_token + c.recompute_flops_per_token
