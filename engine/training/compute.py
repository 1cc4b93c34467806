"""Compute time of one micro-batch on one pipeline stage (vectorized; docs/model.md, "Compute").

* Linear layers: each GEMM at its precision's measured ceiling x the shape curve s(M) s(N) s(K) + a fixed
  launch cost (engine/kernels.py); the backward pass runs two GEMMs of the forward's size (data and weight
  gradients), which share its rate because s() is symmetric in M, N, K. The logits stay in BF16.
* Attention core: its causal FLOPs (forward + backward = 3 x forward) at the generation's FlashAttention
  rate measured inside a training step, moved along the sequence-length curve; sliding-window layers
  compute their band (shape.window_keys_share) at the rate of a sequence as long as the window; unfused
  attention computes the full square as batched GEMMs and writes the scores to memory.
* Memory-bound work at HBM bandwidth x memory_efficiency: norms, residual adds, the activation function
  (read and written once forward, twice backward), FP8/FP4 casts of every linear's input and output
  gradient (constants fp8_cast_bytes_per_element), and the MoE token permutation.
* Recomputation: selective recomputes the attention core (unfused attention, Korthikanti et al. 2022) or the
  norms and activation function (with FlashAttention, whose scores are never stored), with TorchTitan's
  per-op policy (selective_recompute = "op") also every second matmul; full recomputation of
  r layers per stage runs their forward again.
"""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..catalog import Catalog
from ..columns import Columns
from .shape import layer_flops

ACT_BYTES = 2.0  # 16-bit activations


def _precision_pick(c: Columns, bf16, fp8, fp4):
    return np.where(c.prec == 2, fp4, np.where(c.prec == 1, fp8, bf16))


def step_compute(c: Columns, cat: Catalog) -> None:
    """Adds t_layer_fwd_s, t_layer_fb_s (one average layer, forward / forward + backward), t_attn_fb_s,
    t_logits_fb_s, t_recompute_mb_s, t_stage_mb_s (the busiest stage, one micro-batch), the weight-cast time
    per step and the FLOPs that recomputation adds."""
    k = cat.constant
    g = cat.kernels.gemm
    F = layer_flops(c)
    clock = c.clock * c.power_clock
    instep = c.k_gemm_instep_fraction
    h, t, Tc = c.m_hidden, c.tp, c.Tc
    ms = c.moe_share

    lin_rate = _precision_pick(c, c.gemm_bf16_tflops, c.gemm_fp8_tflops, c.gemm_fp4_tflops) * 1e12 * clock * instep
    bf16_rate = c.gemm_bf16_tflops * 1e12 * clock * instep
    # CPU devices take no shape curve (efficiency gemm_shape_curve = false): their d_half is scaled to 0.
    curve = c.gemm_d_half_scale
    d_half = _precision_pick(c, g["bf16"].d_half, g["fp8"].d_half, g["fp4"].d_half) * curve
    d_half_16 = g["bf16"].d_half * curve
    t0 = _precision_pick(c, g["bf16"].t_fixed_us, g["fp8"].t_fixed_us, g["fp4"].t_fixed_us) * 1e-6
    hbm = c.hbm_tb_s * 1e12 * c.mem_eff

    def gemm(flops, m, n, kk, rate=lin_rate, dh=d_half, fixed=t0, share=1.0):
        return kernels.gemm_s(flops, m, n, kk, rate, dh, fixed * share)

    # Per-GPU GEMM widths (N of the projection out of h, K of the projection back into h).
    qkv_n = c.m_attn_in_params / h / t
    proj_k = c.m_attn_out_params / h / t
    up_n, down_k = (c.m_mats - 1) * c.m_ffn / t, c.m_ffn / t
    t_lin = (
        gemm(F["qkv"], Tc, qkv_n, h)
        + gemm(F["proj"], Tc, h, proj_k)
        + gemm(F["mlp"] * (c.m_mats - 1) / c.m_mats, Tc, up_n, h, share=1 - ms)
        + gemm(F["mlp"] / c.m_mats, Tc, h, down_k, share=1 - ms)
    )
    # MoE layers: shared and routed experts, the router. On a dense row (ms = 0) each of these GEMMs is exactly
    # 0 s (no FLOPs, no bytes, no fixed cost), so a frame without MoE rows skips them.
    if bool((ms != 0).any()):
        e_up_n = (c.m_mats - 1) * c.m_expert_ffn / c.etp
        e_down_k = c.m_expert_ffn / c.etp
        Me = c.expert_tokens
        t_lin = (
            t_lin
            + gemm(F["shared"], Tc, (c.m_mats - 1) * c.m_expert_ffn / t, h, share=ms * (c.m_shared > 0))
            + gemm(F["routed"] * c.moe_imb * (c.m_mats - 1) / c.m_mats, Me, e_up_n, h, share=ms)
            + gemm(F["routed"] * c.moe_imb / c.m_mats, Me, h, e_down_k, share=ms)
            + gemm(F["router"], Tc, np.maximum(c.m_experts, 1.0), h, rate=bf16_rate, dh=d_half_16, share=ms)
        )

    # Attention core. FlashAttention: causal FLOPs at the in-step rate along the curve (a CP rank's kernel
    # sees chunks of s / cp keys); a sliding-window layer's band runs at the rate of a sequence of its
    # window, no shorter than the curve's shortest measurement. Unfused: the full square as batched GEMMs
    # of width d_qk (a window only masks it).
    seq_rank = c.seq / c.cp
    peak_rate = np.where(c.attn_kernel == 2, c.attn2_tflops, c.attn_tflops) * 1e12 * clock
    flash_rate = peak_rate * kernels.attention_relative(seq_rank, cat)
    if bool((c.m_swa_layers > 0).any()):
        band_seq = np.maximum(np.minimum(seq_rank, c.m_swa_tokens), cat.kernels.attention.seq_tokens[0])
        band_rate = peak_rate * kernels.attention_relative(band_seq, cat)
    else:  # no banded layer in the frame: attn_band is 0 everywhere
        band_rate = flash_rate
    unfused_fwd = kernels.gemm_s(
        F["attn_square"], Tc, c.seq, c.m_qk_dim, bf16_rate, d_half_16, 2 * g["bf16"].t_fixed_us * 1e-6
    )
    flash = c.attn_kernel > 0
    flash_fwd = (F["attn"] - F["attn_band"]) / flash_rate + F["attn_band"] / band_rate
    t_attn_fwd = np.where(flash, flash_fwd, unfused_fwd)
    c.t_attn_fb_s = 3.0 * t_attn_fwd

    # Memory-bound work per token and layer (elements of 16 bits), forward: two norms (read and write h
    # each), two residual adds (read 2h, write h each), the activation function (read n_mats - 1 widths of
    # f, write one). Norms and residuals split over TP only with sequence parallelism.
    # A routed copy reaches e_t GPUs, each holding f_e / e_t of its width: k f_e elements per token per GPU.
    f_eff = (1 - ms) * c.m_ffn + ms * (c.m_topk + c.m_shared) * c.m_expert_ffn
    ew_repl, ew_split = 10.0 * h, c.m_mats * f_eff
    ew = np.where(c.sp == 1, (ew_repl + ew_split) / t, ew_repl + ew_split / t)
    # Without FlashAttention the a x s scores per token are written by QK^T, read and written by the fused
    # scale-mask-softmax and read by the context GEMM (4 passes); attention dropout adds 2.5.
    scores = np.where(flash, 0.0, (4.0 + 2.5 * c.dropout) * c.m_heads * c.seq / t)
    t_ew_fwd = Tc * ACT_BYTES * (ew + scores) / hbm
    # Casts of every linear's input (forward) and output gradient (backward) to FP8/FP4.
    cast_bytes = np.where(
        c.prec == 2, k("fp4_cast_bytes_per_element"), np.where(c.prec == 1, k("fp8_cast_bytes_per_element"), 0.0)
    )
    e_in_out = 2 * h + c.m_mats * c.m_expert_ffn / c.etp
    cast_elems = (
        2 * h
        + qkv_n
        + proj_k
        + (1 - ms) * (2 * h + c.m_mats * c.m_ffn / t)
        + ms * (c.m_shared * (2 * h + c.m_mats * c.m_expert_ffn / t) + c.m_topk * c.etp / t * e_in_out)
    )
    t_cast_fb = Tc * cast_elems * cast_bytes / hbm
    # MoE: each token's k copies permuted before the experts and back after (read and write, both ways).
    t_perm_fwd = ms * Tc * c.m_topk * c.etp / t * h * ACT_BYTES * 4.0 / hbm

    # Routing, sorting and per-expert kernel fragmentation: a fitted time per routed token copy.
    t_route_fb = ms * Tc * c.m_topk * c.etp / t * c.k_moe_copy_overhead_ns * 1e-9
    c.t_layer_fwd_s = t_lin + t_attn_fwd + t_ew_fwd + t_cast_fb / 3.0 + t_perm_fwd + t_route_fb / 3.0
    c.t_layer_fb_s = 3.0 * t_lin + c.t_attn_fb_s + 3.0 * t_ew_fwd + t_cast_fb + 3.0 * t_perm_fwd + t_route_fb
    logits_fwd = kernels.gemm_s(F["logits"], Tc, c.m_vocab / t, h, bf16_rate, d_half_16, g["bf16"].t_fixed_us * 1e-6)
    # Loss: the logits read and softmax written and read in fp32 (Megatron's fused cross entropy).
    loss = Tc * c.m_vocab / t * (ACT_BYTES + 8.0) / hbm
    c.t_logits_fb_s = 3.0 * logits_fwd + loss

    # Recomputation in the backward pass: selective on the layers not recomputed in full, full on rcl.
    norm_act = Tc * ACT_BYTES * np.where(c.sp == 1, (4.0 * h + ew_split) / t, 4.0 * h + ew_split / t) / hbm
    selective = np.where(flash, norm_act, unfused_fwd + Tc * ACT_BYTES * scores / hbm)
    # TorchTitan's per-op policy (sac_op) also reruns every second matmul of the block in its order q, k, v,
    # o, gate, up, down: the K projection, the output projection and the dense FFN's up projection.
    # (Timed only where a row asks for it: a frame without sac_op rows skips the three GEMMs.)
    sac_op = bool((c.sac_op == 1).any())
    k_n = np.maximum(qkv_n - c.m_heads * c.m_qk_dim / t, 0.0) / 2.0
    rec_mm = F["qkv"] * k_n / np.maximum(qkv_n, 1.0)
    if sac_op:
        t_rec_mm = (
            gemm(rec_mm, Tc, k_n, h)
            + gemm(F["proj"], Tc, h, proj_k)
            + gemm(F["mlp"] / c.m_mats, Tc, up_n / np.maximum(c.m_mats - 1, 1.0), h, share=1 - ms)
        )
        selective = selective + np.where(c.sac_op == 1, t_rec_mm, 0.0)
    rcl = np.minimum(c.rcl, c.layers_stage)
    c.t_recompute_mb_s = np.where(c.rc == 1, (c.layers_stage - rcl) * selective, 0.0) + rcl * c.t_layer_fwd_s
    c.t_stage_mb_s = c.layers_stage * c.t_layer_fb_s + c.t_logits_fb_s + c.t_recompute_mb_s
    c.t_fwd_mb_s = c.layers_stage * c.t_layer_fwd_s + logits_fwd
    c.t_bwd_mb_s = c.t_stage_mb_s - c.t_fwd_mb_s
    # FLOPs the recomputation adds per token (HFU numerator): the attention core again (unfused selective)
    # or whole layers' forward.
    attn_per_token = np.where(flash, F["attn"], F["attn_square"]) * t / Tc
    layer_per_token = sum(F[key] for key in ("qkv", "proj", "mlp", "shared", "routed", "router")) * t / Tc
    sac_per_token = np.where(c.sac_op == 1, (rec_mm + F["proj"] + F["mlp"] / c.m_mats) * t / Tc, 0.0) if sac_op else 0.0
    sel_flops = np.where(c.rc == 1, np.where(flash, 0.0, attn_per_token) + sac_per_token, 0.0) * (c.layers_stage - rcl)
    full_flops = (layer_per_token + attn_per_token) * rcl
    c.recompute_flops_per_token = (sel_flops + full_flops) * c.m_layers / np.maximum(c.layers_stage, 1.0)
