"""One serving replica's hardware physics: what fits in GPU memory, and how long one iteration takes.

Per GPU of a replica of TP x PP GPUs (docs/model.md, "Serving physics"). Attention is tensor-parallel over
a_tp = TP GPUs, or data-parallel (dp_attention: a_tp = 1, each GPU its own sequences); routed experts split
whole over ep groups of the TP GPUs, each expert tensor-parallel over TP / ep.

* Memory: the linear layers at the serving precision (routed experts at expert_precision), embedding and
  output projection in 16 bits, split over the replica; the KV cache of a sequence, layers/PP x kv_width x
  KV bytes per token (sliding-window layers hold at most their window), split over TP by KV heads (MLA's
  latent is never split) and, with DP attention, held by one GPU. The batch that fits: the KV room over a
  request's whole context (kv_admission = "reserve") or its mean occupancy (paged).
* Iteration with n decoding sequences (each putting 1 + drafted tokens through the model) and k prompt tokens:
    GEMMs      max(weight bytes / (HBM bandwidth x memory efficiency), FLOPs / (measured ceiling x shape
               curve s(N) s(K))) + the curve's padding d_half of the token dimension and t_fixed per kernel
               (kernels.toml): the shape curve, no 128-row padding of decode;
    attention  decode: each sequence's KV bytes read (or its FLOPs at the FlashAttention forward rate, if
               slower); prompt: the causal FLOPs at that rate x the kernel's sequence-length curve;
    communication  TP all-reduces / expert all-to-alls (NCCL's cost model, kernels.py), PP sends;
    overheads  the engine's per-iteration CPU work (fitted, catalog/fitted.toml);
    drafting   speculative decoding's draft steps (a one-layer head, or a draft model).
"""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..catalog import Catalog
from ..columns import Columns
from .queueing import StepModel

GIB = 2.0**30
ACT_BYTES = 2.0  # 16-bit activations on the wire
AUTO = -1


def _s(d, half):
    """The shape curve's factor for one GEMM dimension d (kernels.shape_factor)."""
    return d / (d + half)


def layout(c: Columns, tp: np.ndarray) -> dict[str, np.ndarray]:
    """How a replica of `tp` GPUs (per pipeline stage) splits attention and experts."""
    a_tp = np.where(c.i_dpa == 1, 1.0, tp)
    ep = np.where(c.i_ep == AUTO, tp, np.minimum(c.i_ep, tp))
    ep = np.where(c.i_experts > 0, ep, 1.0)
    return {"a_tp": a_tp, "a_dp": tp / a_tp, "ep": ep, "e_tp": tp / ep}


def accepted_tokens(c: Columns) -> np.ndarray:
    """Output tokens per decode iteration with speculative decoding: (1 - a^(d+1)) / (1 - a) for d drafted
    tokens each accepted with probability a given the one before (Leviathan et al. 2023, eq. 1)."""
    a = np.clip(c.i_spec_alpha, 0.0, 1.0)
    d = c.i_spec_tokens
    geometric = np.where(a < 1.0, (1.0 - a ** (d + 1.0)) / np.maximum(1.0 - a, 1e-12), d + 1.0)
    return np.where(c.i_spec > 0, geometric, 1.0)


def kv_bytes_per_seq(c: Columns, tokens, layers):
    """KV-cache bytes of one sequence of `tokens` over `layers` layers (sliding-window layers capped)."""
    swa = np.minimum(c.i_swa_layers / np.maximum(c.i_layers, 1.0), 1.0)
    per_token = c.i_kv_width * c.i_kv_bytes
    return per_token * layers * ((1.0 - swa) * tokens + swa * np.minimum(tokens, c.i_swa_tokens))


def memory(c: Columns, cat: Catalog, tp: np.ndarray, pp: np.ndarray, prefix: str = "") -> dict[str, np.ndarray]:
    """Weights, KV-cache capacity and the batch that fits, per GPU of a replica (one pool)."""
    lay = layout(c, tp)
    g = tp * pp
    pb, eb = c.i_precision_bytes, c.i_expert_bytes
    attn = c.i_layers * c.i_attn_layer_params
    experts = c.i_moe_layers * c.i_experts * c.i_expert_params
    # Attention weights are replicated over DP-attention ranks; everything else is split over the replica.
    w = (
        attn * pb / (lay["a_tp"] * pp)
        + (c.i_dense_ffn_params + c.i_shared_params) * pb / g
        + experts * eb / g
        + c.i_embed * cat.constant("embedding_bytes_per_param") / g
    )
    # A one-layer draft head (MTP / EAGLE) holds about one layer; a draft model its own weights.
    w = w + np.where(c.i_spec == 2, (c.i_params - c.i_embed) / c.i_layers * pb / g, 0.0)
    w = w + np.where(c.i_spec == 1, c.i_draft_params * pb / g, 0.0)
    reserve = cat.constant("memory_reserve_gb") * GIB
    usable = c.hbm_gb * GIB - reserve
    # TensorRT-LLM gives the KV cache a share of what is free after the weights; vLLM and SGLang cap the
    # engine's whole footprint at a share of the GPU (gpu_memory_fraction: i_kv_fraction is then 1).
    room = np.maximum(np.minimum(usable, c.hbm_gb * GIB * c.i_engine_fraction - reserve) - w, 0.0) * c.i_kv_fraction
    layers_stage = np.ceil(c.i_layers / pp)
    split = np.minimum(lay["a_tp"], c.i_kv_shards)
    # A replica's KV room in sequence-bytes: each GPU holds 1/split of its DP rank's sequences.
    room_replica = room * split * lay["a_dp"]
    prompt, output = c.i_prompt, c.i_output
    full_ctx = prompt + output
    # Paged: a decoding request holds its prompt and what it has generated, on average half its output,
    # length-biased (E[O^2] / 2E[O]: long answers are in the batch longer), rounded up to whole blocks.
    mean_ctx = prompt + 0.5 * output * c.i_output_m2 + 0.5 * cat.constant("kv_block_tokens")
    draft_kv = np.where(c.i_spec == 1, c.i_draft_kv_width * c.i_kv_bytes * c.i_draft_layers / pp, 0.0)
    seq_full = kv_bytes_per_seq(c, full_ctx, layers_stage) + draft_kv * full_ctx
    seq_mean = kv_bytes_per_seq(c, mean_ctx, layers_stage) + draft_kv * mean_ctx
    per_seq = np.where(c.i_paged == 1, seq_mean, seq_full)
    max_batch = np.maximum(np.floor(room_replica / np.maximum(per_seq, 1e-300)), 0.0)
    out = {
        "w_bytes_gpu": w,
        "usable_bytes": usable,
        "room_bytes": room,
        "room_replica": room_replica,
        "kv_seq_full": seq_full / (split * lay["a_dp"]),  # per GPU, averaged over the replica
        "kv_seq_mean": seq_mean / (split * lay["a_dp"]),
        "max_batch": max_batch,
        "fits_memory": (max_batch >= 1.0) & (seq_full <= room_replica),
        # The smallest footprint that runs at all: the weights and one sequence's KV cache.
        "mem_needed_gb": (w + seq_full / split) / GIB,
        # Never negative: a GPU smaller than the runtime's reserve has nothing usable (the reason says so).
        "mem_usable_gb": np.maximum(usable, 0.0) / GIB,
        "occupancy_tokens": mean_ctx,
    }
    return out


def _rate(c: Columns, tflops, gemm: bool = True):
    """A compute rate (FLOP/s) at the sustained clock and under any power cap (compute-bound kernels slow with
    the cap, memory-bound ones do not: reference power.csv P010, P011); GEMMs at the share of their measured
    ceiling a serving engine sustains (fitted, catalog/fitted.toml serving_gemm_fraction)."""
    share = c.k_serving_gemm_fraction if gemm else 1.0
    return tflops * 1e12 * c.clock * c.power_clock * share


def step_model(c: Columns, cat: Catalog, tp: np.ndarray, pp: np.ndarray, batch_ref: np.ndarray):
    """The iteration-time coefficients of each row (see queueing.StepModel) for a replica of tp x pp GPUs, and
    the per-part coefficients step_parts reads; batch_ref: the decode batch at which collectives are
    linearised (their cost is concave in bytes)."""
    lay = layout(c, tp)
    a_tp, ep, e_tp = lay["a_tp"], lay["ep"], lay["e_tp"]
    L, h = c.i_layers, c.i_hidden
    q = pp
    hbm = c.hbm_tb_s * 1e12 * c.mem_eff
    pb, eb = c.i_precision_bytes, c.i_expert_bytes
    emb_b = cat.constant("embedding_bytes_per_param")
    v_tok = 1.0 + c.i_spec_tokens  # tokens a decoding sequence puts through the target per iteration
    rate = _rate(c, c.i_gemm_tflops)
    rate_e = _rate(c, c.i_expert_gemm_tflops)
    rate_16 = _rate(c, c.i_bf16_gemm_tflops)
    d_half, d_half_e, d_half_16 = c.i_gemm_d_half, c.i_expert_d_half, c.i_bf16_d_half
    # Weight-only formats (experts stored narrower than they are multiplied, e.g. MXFP4 on Hopper): dequantising
    # kernels stream the packed weights and size their tiles to the batch, so the curve's padding of the token
    # dimension, measured on native GEMMs, shrinks with the bytes per weight (an assumption: the reference has no
    # small-M measurement of such kernels).
    d_half_e = d_half_e * np.minimum(c.i_expert_bytes / c.i_expert_compute_bytes, 1.0)

    # --- GEMMs: per-GPU weights, FLOPs per replica token, shape factors of the per-GPU N and K ----------------
    attn_w = c.i_attn_layer_params * L / a_tp  # per GPU, all layers (each stage holds L/q of them)
    ffn_w = (c.i_dense_ffn_params + c.i_shared_params) / tp
    dense_ffn_layer = c.i_ffn * (L - c.i_moe_layers) / np.maximum(L, 1.0)
    s_attn = _s(h, d_half) * _s(h / a_tp, d_half)
    s_ffn = _s(h, d_half) * _s(np.maximum(dense_ffn_layer, c.i_expert_ffn) / tp, d_half)
    s_exp = _s(h, d_half_e) * _s(np.maximum(c.i_expert_ffn, 1.0) / e_tp, d_half_e)
    s_head = _s(h, d_half_16) * _s(c.i_vocab / tp, d_half_16)
    lm_head = c.i_lm_head / tp
    # Seconds per replica token: attention projections (each GPU its 1/a_dp of the tokens with 1/a_tp of the
    # weights: 1/tp of the work), dense FFN and shared experts, routed experts (top-k of them, the busiest GPU
    # moe_imbalance above the mean), each stage's L/q layers on every token (1/q).
    g_tok = (2.0 * c.i_attn_layer_params * L / tp / s_attn + 2.0 * ffn_w / s_ffn) / (q * rate)
    expert_tok = 2.0 * c.i_topk * c.i_expert_params * c.i_moe_layers * c.moe_imb_serving / (tp * q * rate_e * s_exp)
    g_tok = g_tok + np.where(c.i_experts > 0, expert_tok, 0.0)
    head_tok = 2.0 * lm_head / (rate_16 * s_head)
    # The curve's padding of the token dimension: d_half tokens' worth per GEMM kernel, every layer, every
    # micro-batch (q micro-batches x L/q layers = L per iteration); per touched local expert for MoE.
    g0 = d_half * (2.0 * attn_w / s_attn + 2.0 * ffn_w / s_ffn) / rate + d_half_16 * head_tok * q
    local_experts = np.where(c.i_experts > 0, c.i_experts / ep, 0.0)
    g_e = np.where(
        c.i_experts > 0,
        d_half_e * 2.0 * local_experts * c.i_expert_params / e_tp * c.i_moe_layers / (rate_e * s_exp),
        0.0,
    )
    # Weights streamed per iteration: every stage once per micro-batch, q x L/q layers: the whole model / TP.
    w_dense = (attn_w * pb + ffn_w * pb + lm_head * emb_b) / hbm
    w_expert = np.where(c.i_experts > 0, local_experts * c.i_expert_params / e_tp * c.i_moe_layers * eb / hbm, 0.0)
    topk_frac = np.where(c.i_experts > 0, c.i_topk / np.maximum(c.i_experts, 1.0), 1.0)
    # The curve's fixed cost per GEMM kernel (launch, prologue, tail wave): every kernel of every layer once
    # per iteration, the output projection once per micro-batch.
    t_fixed = (
        c.i_gemms_main * c.i_gemm_fixed_us + c.i_gemms_expert * c.i_expert_fixed_us + q * c.i_bf16_fixed_us
    ) * 1e-6

    # --- attention ------------------------------------------------------------------------------------------
    layers_stage = L / q
    split = np.minimum(a_tp, c.i_kv_shards)
    ctx_decode = c.i_prompt + 0.5 * c.i_output * c.i_output_m2  # mean context a decode iteration reads
    kv_read = kv_bytes_per_seq(c, ctx_decode, layers_stage) / (split * lay["a_dp"]) / hbm
    attn_rate = _rate(c, c.i_attn_fwd_tflops, gemm=False)
    swa = np.minimum(c.i_swa_layers / L, 1.0)
    ctx_eff = (1.0 - swa) * ctx_decode + swa * np.minimum(ctx_decode, c.i_swa_tokens)
    attn_dec = 2.0 * v_tok * ctx_eff * c.i_attn_width_decode * layers_stage / tp / attn_rate
    a_n_attn = np.maximum(kv_read, attn_dec)
    # Prompt tokens attend to the cached prefix and, causally, to each other: mean context hit*P + (1-hit)*P/2
    # per new token, length-biased (E[P^2]/E[P]); at the FlashAttention forward rate for that length.
    p_len = c.i_prompt * c.i_prompt_m2
    ctx_prompt = c.i_hit * p_len + (1.0 - c.i_hit) * p_len * cat.constant("attention_flops_causal_fraction")
    ctx_prompt = (1.0 - swa) * ctx_prompt + swa * np.minimum(ctx_prompt, c.i_swa_tokens)
    rel = kernels.attention_relative(np.maximum(p_len, 1.0), cat)
    kv_write = kv_bytes_per_seq(c, 1.0, layers_stage) / (split * lay["a_dp"]) / hbm
    a_k_attn = 2.0 * ctx_prompt * c.i_attn_width_prefill * layers_stage / tp / (attn_rate * rel) + kv_write

    # --- communication: NCCL's cost model, linearised between 0 bytes and the reference batch ---------------
    su_bw = c.su_gb_s * c.su_eff
    nic_bw = c.nics * c.nic_gb_s * c.so_eff / c.gpn
    n_in = np.minimum(tp, c.su_domain)
    n_out = np.ceil(tp / n_in)
    nvls = np.where(tp >= c.su_nvls_min, c.su_nvls, 1.0)
    # Linearised at the decode batch (its verified draft tokens extrapolated: concave costs never undercounted).
    t_ref = np.maximum(batch_ref / q, 1.0)

    def allreduce_affine(tokens_factor):
        ref_bytes = t_ref * h * ACT_BYTES * tokens_factor
        zero = kernels.collective_s(cat, "ar", 0.0 * ref_bytes, n_in, n_out, su_bw, nic_bw, nvls)
        at_ref = kernels.collective_s(cat, "ar", ref_bytes, n_in, n_out, su_bw, nic_bw, nvls)
        return zero, (at_ref - zero) / t_ref  # seconds, seconds per token

    ar0, ar1 = allreduce_affine(1.0)
    # Dense layers: two all-reduces per layer (Megatron-LM) over TP; with DP attention the attention output
    # needs none, but tokens are gathered for the FFN and scattered after (the same volume as one).
    n_ar = np.where(c.i_dpa == 1, 1.0, 2.0) * L
    moe_ep = (c.i_experts > 0) & (ep > 1)
    # Expert parallelism replaces the MoE layers' all-reduce by an all-to-all: each GPU sends its 1/TP of the
    # tokens' top-k copies out (dispatch, 1 byte in FP8 / FP4 serving) and back (combine, 16-bit).
    n_ar = n_ar - np.where(moe_ep, c.i_moe_layers, 0.0)
    dispatch_b = np.where(pb < 2.0, 1.0, 2.0) + ACT_BYTES
    a2a_tok_bytes = c.i_topk * h * dispatch_b * (ep - 1.0) / np.maximum(ep, 1.0) / tp
    across = tp > c.su_domain
    inside_share = np.where(across, n_in / tp, 1.0)
    a2a0 = kernels.all_to_all_s(cat, 0.0, 0.0, su_bw, nic_bw, ep, across)
    a2a_ref = kernels.all_to_all_s(
        cat,
        t_ref * a2a_tok_bytes * inside_share,
        t_ref * a2a_tok_bytes * (1.0 - inside_share),
        su_bw,
        nic_bw,
        ep,
        across,
    )
    a2a1 = (a2a_ref - a2a0) / t_ref
    hide = np.where(c.i_a2a_overlap == 1, 0.0, 1.0)
    comm_fixed = np.where(tp > 1, n_ar * ar0, 0.0) + np.where(moe_ep, c.i_moe_layers * a2a0, 0.0)
    comm_tok = (np.where(tp > 1, n_ar * ar1, 0.0) + np.where(moe_ep, c.i_moe_layers * a2a1 * hide, 0.0)) / q
    # Pipeline: q sends per iteration of a micro-batch's activations (1/TP each, scattered).
    cross = tp * q > c.su_domain
    p2p_bw = np.where(cross, nic_bw, su_bw)
    pp_fixed = np.where(q > 1, q * kernels.p2p_s(cat, 0.0, p2p_bw, cross), 0.0)
    pp_tok = np.where(q > 1, h * ACT_BYTES / tp / (p2p_bw * 1e9), 0.0)

    overhead = c.k_serving_iteration_overhead_ms * 1e-3 * q

    # --- speculative decoding: draft steps per iteration -------------------------------------------------------
    d = c.i_spec_tokens
    # A one-layer head (MTP, EAGLE): per step one average layer's weights and work plus the output projection.
    mtp_w = (w_dense - lm_head * emb_b / hbm) / L + lm_head * emb_b / hbm + w_expert / L
    mtp_tok = g_tok / L + head_tok
    mtp_seq = kv_read / np.maximum(layers_stage, 1.0)
    mtp_fixed = ((c.i_gemms_main + c.i_gemms_expert) / L + 1.0) * c.i_gemm_fixed_us * 1e-6
    # A draft model: its whole stack per step, at the serving precision, split over the same TP.
    dm_w = c.i_draft_params * pb / tp / hbm
    dm_tok = 2.0 * c.i_draft_active / (tp * rate * _s(h, d_half))
    dm_seq = (
        c.i_draft_kv_width * c.i_kv_bytes * c.i_draft_layers * ctx_decode / np.minimum(tp, c.i_draft_kv_shards) / hbm
    )
    dm_fixed = c.i_draft_gemms * c.i_gemm_fixed_us * 1e-6
    draft_fixed = np.where(c.i_spec == 2, d * (mtp_w + mtp_fixed), np.where(c.i_spec == 1, d * (dm_w + dm_fixed), 0.0))
    draft_seq = np.where(c.i_spec == 2, d * (mtp_tok + mtp_seq), np.where(c.i_spec == 1, d * (dm_tok + dm_seq), 0.0))

    parts = {
        "kv_seq": a_n_attn,
        "prompt_token": a_k_attn,
        "comm_fixed": comm_fixed + pp_fixed,
        "comm_token": comm_tok + pp_tok,
        "overhead": overhead + t_fixed,
        "draft_fixed": draft_fixed,
        "draft_seq": draft_seq,
    }
    step = StepModel(
        w_dense=w_dense,
        w_expert=w_expert,
        topk_frac=topk_frac,
        micro=q.astype(float),
        tok_n=v_tok.astype(float),
        g_n=v_tok * (g_tok + head_tok),
        g_k=g_tok,
        g0=g0,
        g_e=g_e,
        a_n=a_n_attn + v_tok * comm_tok + v_tok * pp_tok + draft_seq,
        a_k=a_k_attn + comm_tok + pp_tok,
        c0=comm_fixed + pp_fixed + overhead + t_fixed + draft_fixed,
    )
    return step, parts


PARTS = (
    "weight streaming (HBM)",
    "compute (GEMMs)",
    "KV-cache reads (HBM)",
    "prompt attention",
    "tensor/expert/pipeline communication",
    "per-iteration overhead",
    "speculative drafting",
)


def step_parts(parts: dict, step: StepModel, n: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Where an iteration's time goes (seconds, one row per PARTS entry), for the bottleneck line and power."""
    mem, cmp = step.mem(n, k), step.compute(n, k)
    comm = parts["comm_fixed"] + parts["comm_token"] * (step.tok_n * n + k)
    return np.stack(
        [
            np.where(mem >= cmp, mem, 0.0),
            np.where(mem >= cmp, 0.0, cmp),
            parts["kv_seq"] * n,
            parts["prompt_token"] * k,
            comm,
            parts["overhead"] + 0.0 * n,
            parts["draft_fixed"] + parts["draft_seq"] * n,
        ]
    )


def rows(parts: dict, index) -> dict:
    return {k: v[index] for k, v in parts.items()}


def power_w(c: Columns, parts: np.ndarray) -> np.ndarray:
    """GPU board power while an iteration runs: its compute-bound time (GEMMs, prompt attention) at the power
    limit P_max = min(TDP, cluster.power_cap_w), the rest (streaming, KV reads, communication, waiting on the
    host, drafting) at min(serving_decode_power_fraction x TDP, P_max) (reference power.csv P003-P006):

        P_run = (compute x P_max + rest x min(f x TDP, P_max)) / iteration time

    Without a cap this is TDP x (f + (1 - f) x compute share). Each part is capped on its own, so a cap below
    TDP lowers the compute part's power, not the whole iteration's after the fact."""
    total = np.maximum(parts.sum(axis=0), 1e-300)
    compute = parts[1] + parts[3]
    p_max = c.power_cap_w_eff
    p_rest = np.minimum(c.serving_decode_power_fraction * c.tdp_w, p_max)
    return (compute * p_max + (total - compute) * p_rest) / total
