"""One serving replica's hardware physics: what fits in GPU memory, and how long one iteration takes.

All per GPU of a replica of TP x PP GPUs (docs/model.md ("Serving"), "Serving physics"):

* Memory: weights (linear layers at the serving precision, embedding and output projection in 16 bits)
  split over TP x PP; the KV cache of a sequence, layers/PP x kv_width x kv_bytes per token, split over TP
  by KV heads (replicated when TP exceeds them; MLA's latent is never split). Max batch = KV room / KV of
  one sequence at its full context (P + O), as engines that reserve a request's whole context do
  (TensorRT-LLM's default scheduler). The KV cache gets kv_cache_memory_fraction of what the weights and
  the runtime reserve (memory_reserve_gb: CUDA context, communication buffers, activations) leave.
* Iteration with n decoding sequences and k prompt tokens (T = n + k tokens), the larger of
    weight streaming  = streamed bytes / (HBM bandwidth x eta_mem)  (MoE: the experts the T tokens touch,
                        1 - (1 - topk/E)^T of them)
    GEMM compute      = 2 x active linear parameters x T / (TP x PP) / (peak x eta_gemm x size factors),
  with training's size factors d/(d + d_half) on hidden/TP and on T (docs/model.md), plus
    KV-cache reads    = n x mean context x KV bytes per token / (HBM bandwidth x eta_mem) (or the
                        attention FLOPs, when larger),
    prompt attention  = causal share x 2 x P x attention width x layers FLOPs per prompt token,
    TP all-reduces    = 2 per layer on T x hidden x 2 bytes (Megatron-LM), ring cost over the scale-up
                        fabric (comms.py), and PP sends between stages,
    per-iteration overhead.
"""

from __future__ import annotations

import numpy as np

from .. import comms
from ..catalog import Catalog
from ..columns import Columns
from .queueing import StepModel

GIB = 2.0**30
ACT_BYTES = 2.0  # 16-bit activations on the wire


def _size_factor(dim, half):
    return dim / (dim + half)


def memory(c: Columns, cat: Catalog) -> None:
    """Weights, KV cache per token and the batch that fits, per GPU of each candidate row."""
    t, q = c.tp, c.pp
    body = c.i_params - c.i_params_embed
    embed_bytes = c.i_params_embed * cat.constant("embedding_bytes_per_param")
    c.w_bytes_gpu = (body * c.i_precision_bytes + embed_bytes) / (t * q)
    layers_stage = np.ceil(c.i_layers / q)
    c.kv_token_gpu = layers_stage * c.i_kv_width * c.i_kv_bytes / np.minimum(t, c.i_kv_shards)
    c.kv_seq_gpu = c.kv_token_gpu * (c.i_prompt + c.i_output)
    reserve = cat.constant("memory_reserve_gb") * GIB
    c.usable_bytes = c.hbm_gb * GIB - reserve
    room = np.maximum(c.usable_bytes - c.w_bytes_gpu, 0.0) * c.i_kv_fraction
    c.max_batch = np.maximum(np.floor(room / c.kv_seq_gpu), 0.0)
    c.fits_memory = c.max_batch >= 1.0
    # The smallest footprint that runs at all: the weights and one sequence's KV cache.
    c.mem_needed_gb = (c.w_bytes_gpu + c.kv_seq_gpu) / GIB
    c.mem_usable_gb = c.usable_bytes / GIB


def step_model(c: Columns, cat: Catalog) -> StepModel:
    """The iteration-time coefficients of each candidate row (see queueing.StepModel)."""
    t, q = c.tp, c.pp
    half = cat.constant("gemm_half_size")
    hbm = c.hbm_tb_s * 1e12 * c.mem_eff
    eff = np.where(c.i_precision_bytes >= 2.0, c.gemm_eff, c.fp8_gemm_eff)
    rate = c.i_peak_tflops * 1e12 * eff * c.clock * _size_factor(c.i_hidden / t, half)
    attn_rate = c.bf16_tflops * 1e12 * c.gemm_eff * c.clock

    # Weights streamed once per micro-batch: the dense layers, the output projection (16-bit), and the
    # experts' share that the batch touches. Each GPU streams its stage q times per token cycle.
    lm_head = c.i_vocab * c.i_hidden
    dense = c.i_params - c.i_params_embed - c.i_params_expert
    w_dense = (dense * c.i_precision_bytes + lm_head * cat.constant("embedding_bytes_per_param")) / t / hbm
    w_expert = c.i_params_expert * c.i_precision_bytes / t / hbm
    topk_frac = np.where(c.i_experts > 0, c.i_topk / np.maximum(c.i_experts, 1), 1.0)

    # GEMM FLOPs per token per GPU; the token-count size factor T/(T + half) per micro-batch becomes an
    # additive half x PP tokens' worth of time.
    lin_prompt = 2.0 * (c.i_params_active - c.i_params_embed) / (t * q)
    lin_decode = 2.0 * (c.i_params_active - c.i_params_embed + lm_head) / (t * q)
    g_n, g_k, g0 = lin_decode / rate, lin_prompt / rate, lin_prompt * half * q / rate

    # Attention. Decode: each sequence reads its KV cache over the mean context P + O/2 (memory-bound unless
    # the attention FLOPs take longer). Prompt: causal FLOPs, and writing its KV entries.
    layers_stage = c.i_layers / q
    ctx = c.i_prompt + c.i_output / 2.0
    attn_width = c.i_attn_width
    kv_read = ctx * c.kv_token_gpu / hbm
    kv_flops = 2.0 * ctx * attn_width * layers_stage / t / attn_rate
    a_n = np.maximum(kv_read, kv_flops)
    causal = cat.constant("attention_flops_causal_fraction")
    # Full attention over P tokens is 2 x P^2 x width FLOPs per layer (QK^T and AV), 2 x P x width per token.
    a_k = causal * 2.0 * c.i_prompt * attn_width * layers_stage / t / attn_rate + c.kv_token_gpu / hbm

    # Tensor parallel: 2 all-reduces per layer per micro-batch of T/q tokens; all_reduce_s is affine in the
    # bytes, so its value at 0 and its slope give the per-iteration and per-token parts.
    su_bw = c.su_gb_s * c.su_eff
    nic_bw = c.nics * c.nic_gb_s * c.so_eff / c.gpn
    tp_in, tp_out = comms.split_group(t, np.ones_like(t), c.su_domain)
    per_token = c.i_hidden * ACT_BYTES / q
    ar0 = comms.all_reduce_s(0.0, tp_in, tp_out, su_bw, nic_bw, c.su_lat_us, c.so_lat_us)
    ar1 = comms.all_reduce_s(per_token, tp_in, tp_out, su_bw, nic_bw, c.su_lat_us, c.so_lat_us) - ar0
    n_ar = 2.0 * c.i_layers  # per token cycle: q micro-batches x layers/q x 2
    tp_fixed = np.where(t > 1, n_ar * ar0, 0.0)
    tp_token = np.where(t > 1, n_ar * ar1, 0.0)

    # Pipeline: q sends per token cycle of the micro-batch's activations (1/TP each, scattered).
    cross = t * q > c.su_domain
    p2p_bw = np.where(cross, nic_bw, su_bw)
    p2p_lat = np.where(cross, c.so_lat_us, c.su_lat_us) * 1e-6
    pp_fixed = np.where(q > 1, q * p2p_lat, 0.0)
    pp_token = np.where(q > 1, c.i_hidden * ACT_BYTES / t / (p2p_bw * comms.GB), 0.0)

    overhead = cat.constant("serving_step_overhead_ms") * 1e-3 * q
    c.t_tp_fixed, c.t_tp_token, c.t_pp_fixed, c.t_pp_token = tp_fixed, tp_token, pp_fixed, pp_token
    c.t_kv_seq, c.t_prompt_token, c.t_overhead = a_n, a_k, overhead
    return StepModel(
        w_dense=w_dense,
        w_expert=w_expert,
        topk_frac=topk_frac,
        micro=q.astype(float),
        g_n=g_n,
        g_k=g_k,
        g0=g0,
        a_n=a_n + tp_token + pp_token,
        a_k=a_k + tp_token + pp_token,
        c0=tp_fixed + pp_fixed + overhead,
    )


PARTS = (
    "weight streaming (HBM)",
    "compute (GEMMs)",
    "KV-cache reads (HBM)",
    "prompt attention",
    "tensor/pipeline communication",
    "per-iteration overhead",
)


def step_parts(c: Columns, step: StepModel, n: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Where an iteration's time goes (seconds, one row per PARTS entry), for the bottleneck line."""
    mem, cmp = step.mem(n, k), step.compute(n, k)
    comm = c.t_tp_fixed + c.t_pp_fixed + (c.t_tp_token + c.t_pp_token) * (n + k)
    return np.stack(
        [
            np.where(mem >= cmp, mem, 0.0),
            np.where(mem >= cmp, 0.0, cmp),
            c.t_kv_seq * n,
            c.t_prompt_token * k,
            comm,
            c.t_overhead + 0.0 * n,
        ]
    )
