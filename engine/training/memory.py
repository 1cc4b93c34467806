"""Memory per GPU of the busiest pipeline stage, and the fewest layers to recompute so that a plan fits.

* States (Rajbhandari et al. 2020, ZeRO, sec. 3.1): 2 bytes of weights, 2 of gradients and 12 of Adam state
  per parameter; ZeRO-1 shards the 12 over the shard group, ZeRO-2 also the gradients, ZeRO-3 also the
  weights, and then holds two gathered layers. Expert parameters shard over their expert-data-parallel group.
* Activations per token and layer (Korthikanti et al. 2022, sec. 4.1, generalised to GQA, MLA, gated FFNs
  and MoE), on the Tc tokens of a context-parallel rank: attention 4h + 2 a d_qk + 2 x K/V elements
  (+ h dropout mask), FFN 2h + 4f (6f gated; + h mask), norms 4h; without FlashAttention 2 a s more for the
  stored softmax (+ 3 a s with dropout). Without sequence parallelism 8h (+ 2h of masks) is replicated on
  every TP rank; the rest is divided by t. With MHA, GeLU and dropout this is the paper's 34 s b h + 5 a s^2 b.
  Selective recomputation drops the softmax (unfused attention) or, with FlashAttention, the norm outputs and
  the activation function's output; a fully recomputed layer keeps only its input (2h), and one layer is
  rebuilt at a time. The backward pass of a layer also holds its activations' gradients (one layer's worth).
* In flight: the first stage of a 1F1B pipeline holds min(m, p) micro-batches, x (1 + (p-1)/(p v)) with
  interleaving (Korthikanti et al. 2022, sec. 4.2.3); the last stage adds the logits (16-bit and their fp32
  softmax, whose gradient is written in place).
* A reserve: memory_reserve_gb for the CUDA context and NCCL buffers, plus memory_fragmentation_factor on the
  counted bytes for the allocator's fragmentation and transient buffers.
"""

from __future__ import annotations

import numpy as np

from ..catalog import Catalog
from ..columns import Columns
from .shape import params_per_gpu

GIB = 2.0**30
ACT_BYTES = 2.0


def _per_token_bytes(c: Columns) -> dict[str, np.ndarray]:
    """Activation bytes one GPU stores per token of one layer: none, selective and full recomputation
    (computed once per candidate set and kept as columns)."""
    if "act_none_b" in c:
        return {"none": c.act_none_b, "selective": c.act_sel_b, "full": c.act_full_b}
    h, t = c.m_hidden, c.tp
    drop = c.dropout
    ms = c.moe_share
    f_eff = (1 - ms) * c.m_ffn + ms * (c.m_topk * c.moe_imb + c.m_shared) * c.m_expert_ffn
    ffn = 2.0 * h + drop * h + np.where(c.m_mats == 3, 6.0, 4.0) * f_eff
    attn = 4.0 * h + 2.0 * c.m_heads * c.m_qk_dim + drop * h + 2.0 * c.m_cp_kv_elems
    repl = 8.0 * h + 2.0 * drop * h
    split = attn + ffn + 4.0 * h - repl
    scores = np.where(c.flash == 1, 0.0, (2.0 + 3.0 * drop) * c.m_heads * c.seq) / t
    base = np.where(c.sp == 1, (repl + split) / t, repl + split / t)
    norm_act = np.where(c.sp == 1, 4.0 * h / t, 4.0 * h) + 2.0 * f_eff / t
    selective = np.where(c.flash == 1, base - norm_act, base)
    full = np.where(c.sp == 1, 2.0 * h / t, 2.0 * h)
    c.act_none_b, c.act_sel_b, c.act_full_b = base + scores, selective, full
    return {"none": c.act_none_b, "selective": selective, "full": full}


def states_bytes(c: Columns, cat: Catalog) -> dict[str, np.ndarray]:
    """Weights, gradients and optimizer states on one GPU, by ZeRO stage and shard group (kept as columns)."""
    if "mem_states_w" in c:
        return {
            "weights": c.mem_states_w,
            "grads": c.mem_states_g,
            "optimizer": c.mem_states_o,
            "gathered": c.mem_states_x,
        }
    k = cat.constant
    dense, expert = params_per_gpu(c)
    z = c.zero
    edp = np.maximum(c.tp * c.cp * c.dp / (c.ep * c.etp), 1.0)
    g = c.shard

    def sharded(stage_from):
        return np.where(z >= stage_from, dense / g + expert / edp, dense + expert)

    units = np.maximum(c.layers_stage, 1.0)
    c.mem_states_w = sharded(3) * k("bytes_weights_per_param")
    c.mem_states_g = sharded(2) * k("bytes_grads_per_param")
    c.mem_states_o = sharded(1) * k("bytes_optimizer_per_param")
    c.mem_states_x = np.where(z == 3, 2.0 * (dense + expert) / units * k("bytes_weights_per_param"), 0.0)
    return states_bytes(c, cat)


def _inflight(c: Columns) -> np.ndarray:
    pp, v = c.pp, c.v
    return np.where(pp > 1, np.minimum(c.m, pp) * np.where(v > 1, 1 + (pp - 1) / (pp * v), 1.0), 1.0)


def activations_bytes(c: Columns, rcl: np.ndarray) -> np.ndarray:
    """Activation bytes of the busiest stage with `rcl` layers per stage recomputed in full."""
    per = _per_token_bytes(c)
    base = np.where(c.rc == 1, per["selective"], per["none"])
    L = c.layers_stage
    rcl = np.minimum(rcl, L)
    stored = (L - rcl) * base + rcl * per["full"]
    # The backward pass of a layer holds its activations' gradients (and a recomputed layer its activations).
    working = per["none"] * np.where(rcl > 0, 2.0, 1.0)
    inflight = _inflight(c)
    act_first = c.Tc * (stored * inflight + working)
    # 16-bit logits and their fp32 softmax (its gradient is written in place) for the loss.
    logits = c.Tc * c.m_vocab * (ACT_BYTES + 4.0) / c.tp
    act_last = c.Tc * (stored + working) + logits
    return np.where(c.pp > 1, np.maximum(act_first, act_last), act_first + logits)


def fewest_recomputed_layers(c: Columns, cat: Catalog) -> np.ndarray:
    """The smallest number of layers per stage to recompute in full so that the plan fits (0 if it fits
    without, layers_stage + 1 if even full recomputation does not fit): the stored activations fall by
    (base - full) bytes per token for each recomputed layer."""
    frag = cat.constant("memory_fragmentation_factor")
    states = sum(states_bytes(c, cat).values())
    budget = (c.hbm_gb * GIB - cat.constant("memory_reserve_gb") * GIB) / frag - states
    none = activations_bytes(c, np.zeros(c.n))
    per = _per_token_bytes(c)
    base = np.where(c.rc == 1, per["selective"], per["none"])
    saving = np.maximum(c.Tc * (base - per["full"]) * _inflight(c), 1e-9)
    # With any layer recomputed, one layer's full activations are rebuilt at a time.
    need = np.ceil(np.maximum(none + c.Tc * per["none"] - budget, 0.0) / saving)
    need = np.where(none <= budget, 0.0, np.maximum(need, 1.0))
    L = c.layers_stage
    fits_at = activations_bytes(c, np.minimum(need, L)) <= budget
    return np.where(need <= L, np.where(fits_at, need, np.minimum(need + 1, L + 1)), L + 1)


def memory(c: Columns, cat: Catalog) -> None:
    """Adds the memory breakdown (GB per GPU) and marks plans over the GPU's memory (reason 9)."""
    s = states_bytes(c, cat)
    activations = activations_bytes(c, c.rcl)
    c.mem_weights_gb = (s["weights"] + s["gathered"]) / GIB
    c.mem_grads_gb = s["grads"] / GIB
    c.mem_optimizer_gb = s["optimizer"] / GIB
    c.mem_activations_gb = activations / GIB
    frag = cat.constant("memory_fragmentation_factor")
    counted = sum(s.values()) + activations
    c.mem_reserve_gb = np.full(c.n, cat.constant("memory_reserve_gb")) + (frag - 1.0) * counted / GIB
    c.mem_gb = counted / GIB + c.mem_reserve_gb
    c.mem_over_gb = c.mem_gb - c.hbm_gb
    c.reason = np.where((c.reason == 0) & (c.mem_over_gb > 1e-9), 9, c.reason)
