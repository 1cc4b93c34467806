"""Training step time of a transformer under a parallel plan, from first principles (vectorized).

Every formula and its source is in docs/model.md ("Training"); the short form:

* FLOPs per layer per micro-batch of b sequences of s tokens (T = b*s), forward (Narayanan et al. 2021,
  SC21, sec. 5.1; GQA and gated-FFN generalisation): QKV 2*T*h*(h + 2*kv*dh), attention core 4*T*s*h,
  output projection 2*T*h^2, FFN 2*T*h*f*n_mats (MoE: experts_per_token + shared experts of width f_e),
  logits 2*T*h*V. Backward = 2x forward. Recompute adds one forward (full) or the attention core (selective).
* GEMM time = FLOPs / (peak x eta_gemm(generation) x size factor x sustained clock). The size factor
  d/(d + d_half) for the per-GPU matrix dimensions d = h/TP and T is the fitted curve of docs/model.md.
* Memory-bound time = bytes of element-wise traffic (norms, residuals, activation functions, and without
  FlashAttention the s x s score matrices) / (HBM bandwidth x eta_mem).
* Tensor parallel: 4 all-reduces (or reduce-scatter + all-gather pairs with sequence parallelism) of
  T*h*2 bytes per layer per micro-batch, 2 more with full recompute; exposed unless overlapped.
* Pipeline: 1F1B with v interleaved chunks, step = (m + (p-1)/v) x per-micro-batch stage time
  (Narayanan et al. 2021, eq. for the interleaved bubble (p-1)/(m*v)); activation sends between stages.
* Data parallel / ZeRO: gradient reduce-scatter + parameter all-gather per step (ZeRO 0/1), gradients
  reduce-scattered every micro-batch (ZeRO-2), parameters gathered for every forward and backward
  (ZeRO-3/FSDP); hierarchical over scale-up then scale-out; hidden behind the backward pass it overlaps.
* Memory: weights, gradients, optimizer states by ZeRO stage (Rajbhandari et al. 2020) and activations by
  TP, sequence parallelism and recompute (Korthikanti et al. 2022, eq. 1-2 and sec. 4), a fixed reserve.
"""

from __future__ import annotations

import numpy as np

from .. import comms
from ..catalog import Catalog
from ..columns import Columns

GIB = 2.0**30
ACT_BYTES = 2.0  # 16-bit activations


def _size_factor(dim: np.ndarray, half: float) -> np.ndarray:
    return dim / (dim + half)


def derive_shape(c: Columns) -> None:
    """Per-layer quantities of the model under the candidate's plan (tokens per micro-batch T, etc.)."""
    c.T = c.mb * c.seq
    c.dh = c.m_hidden / c.m_heads
    c.kvd = c.m_kv_heads * c.dh
    moe_share = c.m_moe_layers / c.m_layers
    # FFN width actually computed per token: dense layers f, MoE layers (top-k + shared) x f_e.
    c.f_eff = (1 - moe_share) * c.m_ffn + moe_share * (c.m_topk + c.m_shared) * c.m_expert_ffn
    c.layers_stage = np.ceil(c.m_layers / c.pp)


def layer_flops(c: Columns) -> dict[str, np.ndarray]:
    """Forward FLOPs of one layer for one micro-batch, whole layer (before any TP split)."""
    T, h, s = c.T, c.m_hidden, c.seq
    moe_share = c.m_moe_layers / c.m_layers
    return {
        "linear": 2 * T * h * (h + 2 * c.kvd) + 2 * T * h * h + 2 * T * h * c.f_eff * c.m_mats,
        # The routed-expert part of the FFN (averaged over layers); its GEMMs see fewer tokens each.
        "routed": moe_share * 2 * T * h * c.m_topk * c.m_expert_ffn * c.m_mats,
        "attn": 4 * T * s * h,
        "logits": 2 * T * h * c.m_vocab,
    }


def model_flops_per_token(c: Columns) -> np.ndarray:
    """Model FLOPs per trained token, the MFU numerator: 6 x active parameters + 12 x layers x seq x hidden
    (PaLM appendix B; llm-foundry and Megatron-LM count the same attention term)."""
    return 6.0 * c.m_params_active + 12.0 * c.m_layers * c.seq * c.m_hidden


def step(c: Columns, cat: Catalog) -> None:
    """Adds step_time_s and its breakdown, FLOP counts, memory per GPU and feasibility to candidate rows."""
    k = cat.constant
    derive_shape(c)
    T, h, t, pp, v, m = c.T, c.m_hidden, c.tp, c.pp, c.v, c.m
    F = layer_flops(c)

    # --- compute -----------------------------------------------------------------------------------
    half = k("gemm_half_size")
    size = _size_factor(h / t, half) * _size_factor(T, half)
    bf16_rate = c.bf16_tflops * 1e12 * c.gemm_eff * c.clock
    fp8_rate = np.where(c.fp8 == 1, c.fp8_tflops * 1e12 * c.fp8_gemm_eff * c.clock, bf16_rate)
    linear_rate = np.where(c.fp8 == 1, fp8_rate, bf16_rate) * size
    # A routed expert's GEMM sees T x top-k x EP / experts tokens (each GPU gathers its experts' tokens from
    # the EP group), so expert parallelism makes expert GEMMs larger as well as spreading their weights.
    expert_tokens = T * c.m_topk * c.ep / np.maximum(c.m_experts, 1.0)
    routed_rate = linear_rate / _size_factor(T, half) * _size_factor(np.maximum(expert_tokens, 1.0), half)
    t_linear = (F["linear"] - F["routed"]) / t / linear_rate + F["routed"] / t / routed_rate
    t_attn = F["attn"] / t / (bf16_rate * size)
    hbm = c.hbm_tb_s * 1e12 * c.mem_eff
    # Element-wise traffic per token per layer, forward (elements): two norms (read+write h each), two fused
    # bias-dropout-residual adds (read 2h, write h each), the activation function (read n_mats-1 widths of
    # f, write one). Norms and residuals are split over TP only with sequence parallelism.
    ew_repl = 10.0 * h
    ew_split = c.m_mats * c.f_eff
    ew_elems = np.where(c.sp == 1, (ew_repl + ew_split) / t, ew_repl + ew_split / t)
    # Without FlashAttention the a*s scores per token are written by the QK^T GEMM, read and written by
    # the fused scale-mask-softmax and read by the context GEMM (4 passes); attention dropout adds a read,
    # a write and a one-byte mask (2.5 passes).
    score_passes = 4.0 + 2.5 * c.dropout
    score_elems = np.where(c.flash == 1, 0.0, score_passes * c.m_heads * c.seq / t)
    t_ew = T * ACT_BYTES * ew_elems / hbm
    t_scores = T * ACT_BYTES * score_elems / hbm
    t_layer_fwd = t_linear + t_attn + t_ew + t_scores
    t_logits = F["logits"] / t / (bf16_rate * size)
    recompute = np.where(c.rc == 2, t_layer_fwd, np.where(c.rc == 1, t_attn + t_scores, 0.0))
    c.t_fwd_mb_s = c.layers_stage * t_layer_fwd + t_logits
    c.t_bwd_mb_s = 2.0 * c.t_fwd_mb_s
    c.t_compute_mb_s = c.t_fwd_mb_s + c.t_bwd_mb_s + c.layers_stage * recompute

    # --- tensor parallel -----------------------------------------------------------------------------
    su_bw = c.su_gb_s * c.su_eff
    nic_bw = c.nics * c.nic_gb_s * c.so_eff / c.gpn  # each GPU's share of its node's NICs
    tp_in, tp_out = comms.split_group(t, 1.0, c.su_domain)
    ar_bytes = T * h * ACT_BYTES
    t_ar = comms.all_reduce_s(ar_bytes, tp_in, tp_out, su_bw, nic_bw, c.su_lat_us, c.so_lat_us)
    n_ar = 4.0 + np.where(c.rc == 2, 2.0, 0.0)
    hidden_frac = np.where(c.tp_overlap == 1, c.k_tp_overlap_fraction, 0.0)
    c.t_tp_mb_s = c.layers_stage * n_ar * t_ar * (1 - hidden_frac)

    # --- expert parallel (MoE all-to-all: dispatch and combine, forward and backward) -------------------
    ep = c.ep
    ep_in_domain = ep * t <= c.su_domain
    a2a_bw = np.where(ep_in_domain, su_bw, nic_bw)
    a2a_lat = np.where(ep_in_domain, c.su_lat_us, c.so_lat_us)
    a2a_bytes = T / np.where(c.sp == 1, t, 1.0) * c.m_topk * h * ACT_BYTES
    moe_layers_stage = c.layers_stage * c.m_moe_layers / c.m_layers
    c.t_ep_mb_s = moe_layers_stage * 4.0 * comms.all_to_all_s(a2a_bytes, ep, a2a_bw, a2a_lat)

    # --- pipeline ------------------------------------------------------------------------------------
    stages_cross_nodes = t * c.dp >= c.gpn
    p2p_bw = np.where(stages_cross_nodes, nic_bw, su_bw)
    p2p_lat = np.where(stages_cross_nodes, c.so_lat_us, c.su_lat_us)
    p2p = comms.p2p_s(T * h * ACT_BYTES / t, p2p_bw, p2p_lat)  # Megatron scatter/gather: 1/TP per rank
    c.t_pp_mb_s = np.where(pp > 1, 2.0 * p2p, 0.0)

    t_mb = c.t_compute_mb_s + c.t_tp_mb_s + c.t_ep_mb_s + c.t_pp_mb_s
    c.t_bubble_s = (pp - 1) / v * t_mb
    t_pipeline = m * t_mb + c.t_bubble_s

    # --- data parallel and ZeRO ----------------------------------------------------------------------
    params_local = _params_per_gpu(c)
    grad_bytes = params_local * k("bytes_grads_per_param")
    dp_in, dp_out = comms.split_group(c.dp, t, c.su_domain)
    half_coll = comms.half_collective_s(grad_bytes, dp_in, dp_out, su_bw, nic_bw, c.su_lat_us, c.so_lat_us)
    bwd_window = c.t_bwd_mb_s  # gradients of the last micro-batch stream out while its backward runs
    z = c.zero
    exposed_z01 = np.maximum(2.0 * half_coll - bwd_window, 0.0)
    exposed_z2 = m * np.maximum(half_coll - bwd_window, 0.0) + half_coll
    exposed_z3 = m * (np.maximum(half_coll - c.t_fwd_mb_s, 0.0) + np.maximum(2.0 * half_coll - bwd_window, 0.0))
    c.t_dp_s = np.where(c.dp > 1, np.where(z <= 1, exposed_z01, np.where(z == 2, exposed_z2, exposed_z3)), 0.0)
    c.t_dp_total_s = np.where(c.dp > 1, np.where(z <= 1, 2.0, np.where(z == 2, m + 1.0, 3.0 * m)) * half_coll, 0.0)

    # Optimizer update streams master weights, two moments (read and write, fp32) and 16-bit grads/weights.
    opt_params = np.where(z >= 1, params_local / c.dp, params_local)
    c.t_optimizer_s = opt_params * (2 * k("bytes_optimizer_per_param") + 4.0) / hbm

    c.step_time_s = t_pipeline + c.t_dp_s + c.t_optimizer_s
    c.t_compute_s = m * c.t_compute_mb_s
    c.t_tp_s = m * c.t_tp_mb_s
    c.t_ep_s = m * c.t_ep_mb_s
    c.t_pp_s = m * c.t_pp_mb_s
    # Forward-only evaluation passes inside the timed run (MLPerf counts them): same pipeline, no backward.
    fwd_mb = c.t_fwd_mb_s + (c.t_tp_mb_s + c.t_ep_mb_s + c.t_pp_mb_s) / 2
    tokens_per_step = c.gbs * c.seq
    c.eval_time_s = c.eval_tokens / tokens_per_step * (m + (pp - 1) / v) * fwd_mb

    # --- FLOPs, utilisation --------------------------------------------------------------------------
    c.tokens_per_step = tokens_per_step
    c.model_flops_per_token = model_flops_per_token(c)
    rc_extra = np.where(c.rc == 2, 1.0, 0.0) * (F["linear"] + F["attn"]) + np.where(c.rc == 1, F["attn"], 0.0)
    c.hw_flops_per_token = c.model_flops_per_token + c.m_layers * rc_extra / T

    _memory(c, cat, params_local)


def _params_per_gpu(c: Columns) -> np.ndarray:
    """Parameters held by one GPU of the busiest stage: its share of the layers plus the embedding."""
    body = c.m_params - c.m_params_embed
    dense_body = body - c.m_params_expert
    stage_share = np.where(c.pp > 1, c.layers_stage / c.m_layers, 1.0)
    embed_on_stage = np.where(c.pp > 1, c.m_vocab * c.m_hidden, c.m_params_embed)
    return (dense_body * stage_share + embed_on_stage) / c.tp + c.m_params_expert * stage_share / (c.tp * c.ep)


def _memory(c: Columns, cat: Catalog, params_local: np.ndarray) -> None:
    k = cat.constant
    z, dp = c.zero, c.dp
    weights = params_local * k("bytes_weights_per_param") / np.where(z == 3, dp, 1.0)
    grads = params_local * k("bytes_grads_per_param") / np.where(z >= 2, dp, 1.0)
    optim = params_local * k("bytes_optimizer_per_param") / np.where(z >= 1, dp, 1.0)
    # ZeRO-3 gathers the full weights of the layer being computed (and prefetches the next).
    layer_params = (c.m_params - c.m_params_embed) / c.m_layers / c.tp
    gathered = np.where(z == 3, 2.0 * layer_params * k("bytes_weights_per_param"), 0.0)

    h, t, T = c.m_hidden, c.tp, c.T
    # Activation bytes per token per layer (Korthikanti et al. 2022 sec. 4.1, generalised to GQA and
    # gated FFNs): attention 7h + 4*kv*dh (+5*a*s without FlashAttention), FFN 3h + 4f (6f gated),
    # norms 4h; without sequence parallelism 10h of it is replicated on every TP rank.
    # Dropout masks (one byte per element) exist only with dropout: h after attention, h after the FFN,
    # a*s on the attention probabilities (with their dropped-out copy, 2*a*s more).
    drop = c.dropout
    ffn_bytes = 2.0 * h + drop * h + np.where(c.m_mats == 3, 6.0, 4.0) * c.f_eff
    attn_bytes = 6.0 * h + drop * h + 4.0 * c.kvd
    repl = 8.0 * h + 2.0 * drop * h  # norm inputs, QKV and FFN inputs, dropout masks
    split = attn_bytes + ffn_bytes + 4.0 * h - repl
    scores = np.where(c.flash == 1, 0.0, (2.0 + 3.0 * drop) * c.m_heads * c.seq)
    per_token = np.where(c.sp == 1, (repl + split) / t, repl + split / t)
    per_token_scores = scores / t
    full_layer = per_token + per_token_scores
    stored = np.where(c.rc == 2, np.where(c.sp == 1, 2.0 * h / t, 2.0 * h), np.where(c.rc == 1, per_token, full_layer))
    inflight = np.where(c.pp > 1, np.minimum(c.m, c.pp) * np.where(c.v > 1, 1 + (c.pp - 1) / (c.pp * c.v), 1.0), 1.0)
    # Full recompute rebuilds one layer's activations at a time during the backward pass.
    working = np.where(c.rc == 2, T * full_layer, 0.0)
    act_first = T * stored * c.layers_stage * inflight + working
    logits = T * c.m_vocab * (ACT_BYTES + 4.0) / t  # 16-bit logits and fp32 softmax for the loss
    act_last = T * stored * c.layers_stage + working + logits
    activations = np.where(c.pp > 1, np.maximum(act_first, act_last), act_first + logits)

    states = weights + grads + optim + gathered
    c.mem_weights_gb = weights / GIB
    c.mem_grads_gb = grads / GIB
    c.mem_optimizer_gb = optim / GIB
    c.mem_activations_gb = activations / GIB
    c.mem_reserve_gb = np.full(c.n, k("memory_reserve_gb"))
    c.mem_gb = (states + activations) / GIB + c.mem_reserve_gb
    c.mem_over_gb = c.mem_gb - c.hbm_gb
    c.reason = np.where((c.reason == 0) & (c.mem_over_gb > 0), 9, c.reason)
