"""What one GPU does for one micro-batch under a plan: tokens, layers, GEMM shapes and FLOPs (vectorized).

Notation (docs/model.md, "Training step"): a micro-batch of b sequences of s tokens, T = b s tokens per
replica, Tc = T / cp on each context-parallel rank; hidden h, a query heads with query/key width d_qk and
value width d_v, FFN width f with n_mats matrices (2 GeLU, 3 SwiGLU), L layers of which L_moe are MoE
layers (E experts of width f_e, k routed per token, shared experts), vocabulary V. Plan: tensor parallel
t, context parallel cp, pipeline parallel p with v chunks per stage, data parallel d, expert parallel e with
expert tensor parallel e_t.

Forward FLOPs of one layer for one micro-batch on one GPU (Narayanan et al. 2021, SC21, sec. 5.1;
generalised to GQA, MLA and MoE): projections 2 Tc P_attn / t; attention core, causal, Tc s a (d_qk + d_v)
/ t (half of the full square, which FlashAttention skips), x band_share(w, s) on the L_w layers with a
sliding window of w tokens (window_keys_share); FFN 2 Tc n_mats h f / t (MoE: k x f_e routed plus
the shared experts); logits 2 Tc h V / t on the last stage; the input embedding is a lookup, no FLOPs.
"""

from __future__ import annotations

import numpy as np

from ..columns import Columns


def derive(c: Columns) -> None:
    """Adds the per-GPU shapes of the candidate's plan (once: the plan columns do not change after, so a
    view of candidates already derived reads them from its base)."""
    if "Tc" in c:
        return
    c.T = c.mb * c.seq
    c.Tc = c.T / c.cp
    # With v chunks per stage a stage holds v x ceil(L / (p v)) layers (uneven splits round up).
    c.layers_stage = c.v * np.ceil(c.m_layers / (c.pp * c.v))
    c.moe_share = np.where(c.m_experts > 0, c.m_moe_layers / c.m_layers, 0.0)
    # Tokens each local expert sees per micro-batch: a GPU holds E / e experts (each split e_t ways) and
    # receives the k routed copies of its expert group's tokens.
    c.expert_tokens = np.maximum(
        c.Tc * c.m_topk * c.ep * c.etp / np.maximum(c.tp * np.maximum(c.m_experts, 1.0), 1.0), 1.0
    )


def window_keys_share(window, seq):
    """Keys a query of a banded (sliding-window) layer attends to, over the causal layer's: a query at
    position i sees min(i, w) keys, so over a sequence of s tokens the mean is w - w^2 / (2 s) against s / 2
    (continuous counts), a share of 2 w / s - (w / s)^2; 1 where there is no window (w = 0) or w >= s."""
    r = np.where(window > 0, np.minimum(window / np.maximum(seq, 1.0), 1.0), 1.0)
    return 2.0 * r - r * r


def layer_flops(c: Columns) -> dict[str, np.ndarray]:
    """Forward FLOPs of one (average) layer for one micro-batch on one GPU, by GEMM group. attn is what
    FlashAttention computes (causal, windows applied): attn_band on the windowed layers' share, the rest
    on full-context layers; attn_square is the full s x s square an unfused kernel computes."""
    Tc, h, t = c.Tc, c.m_hidden, c.tp
    ms = c.moe_share
    mats_h = c.m_mats * h
    causal = Tc * c.seq * c.m_heads * (c.m_qk_dim + c.m_v_dim) / t
    if bool((c.m_swa_layers > 0).any()):
        band_layers = c.m_swa_layers / np.maximum(c.m_layers, 1.0)
        band = band_layers * window_keys_share(c.m_swa_tokens, c.seq) * causal
    else:  # no banded layer in the frame
        band_layers, band = 0.0, np.zeros_like(causal)
    return {
        "qkv": 2 * Tc * c.m_attn_in_params / t,
        "proj": 2 * Tc * c.m_attn_out_params / t,
        "mlp": (1 - ms) * 2 * Tc * mats_h * c.m_ffn / t,
        "shared": ms * 2 * Tc * mats_h * c.m_expert_ffn * c.m_shared / t,
        "routed": ms * 2 * Tc * mats_h * c.m_expert_ffn * c.m_topk / t,
        "router": ms * 2 * Tc * h * c.m_experts / t,
        "attn": (1.0 - band_layers) * causal + band,
        "attn_band": band,
        "attn_square": 2.0 * causal,
        "logits": 2 * Tc * h * c.m_vocab / t,
    }


def model_flops_per_token(c: Columns) -> np.ndarray:
    """MFU numerator (PaLM, Chowdhery et al. 2022, appendix B): 6 x the parameters each token multiplies
    (active parameters less the input embedding table, a lookup; a tied table counts once, as the output
    projection) + the attention core counted in full, 6 L s a (d_qk + d_v) (= 12 L s h for MHA); a layer
    with a sliding window of w tokens counts its full band, min(w, s) keys per query instead of s."""
    input_table = np.where(c.m_tied == 1, 0.0, c.m_vocab * c.m_hidden)
    matmul_params = c.m_params_active - input_table
    window = np.where(c.m_swa_tokens > 0, np.minimum(c.m_swa_tokens, c.seq), c.seq)
    keys = (c.m_layers - c.m_swa_layers) * c.seq + c.m_swa_layers * window
    return 6.0 * matmul_params + 6.0 * keys * c.m_heads * (c.m_qk_dim + c.m_v_dim)


def params_per_gpu(c: Columns) -> tuple[np.ndarray, np.ndarray]:
    """(dense, expert) parameters one GPU of the busiest stage holds: its share of the layers split over
    TP (experts over e x e_t), plus the embedding and output tables (first and last stage under PP)."""
    body = c.m_params - c.m_params_embed
    dense_body = body - c.m_params_expert
    stage_share = np.where(c.pp > 1, c.layers_stage / c.m_layers, 1.0)
    embed_on_stage = np.where(c.pp > 1, c.m_vocab * c.m_hidden, c.m_params_embed)
    dense = (dense_body * stage_share + embed_on_stage) / c.tp
    expert = c.m_params_expert * stage_share / (c.ep * c.etp)
    return dense, expert
