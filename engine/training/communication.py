"""Communication of a training step and how much of it the computation hides (vectorized).

Rank order (Megatron-Core): tensor parallel innermost, then context parallel, data parallel, pipeline stages
outermost; experts fold over the tensor x context x data ranks of a stage (expert tensor parallel innermost).
A group of n ranks at stride `stride` has min(n, domain / stride) of them in one scale-up domain. Every
collective is priced by engine/kernels.py (NCCL's cost model: ring or tree/PAT, LL or Simple); a group that
spans more GPUs than a non-blocking pod gets 1 / oversubscription of its NIC bandwidth.

* Tensor parallel: per layer 4 all-gathers + reduce-scatters forward and 4 backward (sequence parallelism;
  all-reduces of the same volume without), of Tc h 2 bytes; hidden (tp_overlap_fraction) only inside one
  NVLink domain, where Transformer Engine's userbuffers / async TP can overlap them with GEMMs.
* Context parallel (ring attention): each rank receives cp - 1 K/V chunks forward and twice that backward,
  overlapped with the attention of the chunk in hand.
* Expert parallel: dispatch and combine all-to-alls forward and backward per MoE layer; node-limited
  routing sends a token once per remote node (of at most moe_max_nodes nodes); exposed unless moe_a2a_overlap.
* Pipeline: 2 v sends of Tc h 2 / t bytes per micro-batch; the bubble is (p - 1) / v micro-batch times.
* Data parallel over d x cp ranks (experts over their expert-data-parallel group): ZeRO 0/1 reduce-scatter
  (+ all-gather) once per step behind the last micro-batch's backward (and the first's forward); ZeRO-2
  reduce-scatters every micro-batch; ZeRO-3 / FSDP gathers each layer's weights before its forward and
  backward and reduce-scatters its gradients, every micro-batch, each overlapped with the neighbouring
  layer's compute, the first gather and last reduce-scatter exposed; HSDP all-reduces the shards across
  replicas once per step. NCCL kernels take SMs: a hidden collective slows the compute it overlaps by
  comm_sm_share.
* The NICs carry all scale-out traffic at once: a step is never shorter than its NIC busy time.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from .. import kernels
from ..catalog import Catalog
from ..columns import Columns
from .shape import params_per_gpu

ACT_BYTES = 2.0


def _placement(n, stride, domain):
    """(ranks per scale-up domain, domains spanned) of a group of n ranks placed every `stride` ranks."""
    per_domain = np.maximum(np.floor(domain / stride), 1.0)
    n_in = np.minimum(n, per_domain)
    return n_in, np.maximum(np.ceil(n / n_in), 1.0)


def _by_zero_stage(z: np.ndarray, *stages: Callable[[], np.ndarray]) -> np.ndarray:
    """stages[0]() where ZeRO stage z is 0, stages[1]() where 1, stages[2]() where 2, stages[3]() elsewhere
    (ZeRO-3), as nested wheres (np.select costs more for a few hundred rows); a stage no row has is never
    computed (a frame of one ZeRO stage computes one)."""
    z0, z1, z2 = z == 0, z == 1, z == 2
    present = [bool(mask.any()) for mask in (z0, z1, z2, ~(z0 | z1 | z2))]
    if sum(present) == 1:
        return stages[present.index(True)]()
    zero = np.zeros(len(z))
    v0, v1, v2, v3 = (stage() if has else zero for stage, has in zip(stages, present, strict=True))
    return np.where(z0, v0, np.where(z1, v1, np.where(z2, v2, v3)))


def step_communication(c: Columns, cat: Catalog) -> None:
    """Adds exposed and total communication per micro-batch and per step, the bubble and NIC busy time."""
    t, cp, ep, etp, pp, v, m = c.tp, c.cp, c.ep, c.etp, c.pp, c.v, c.m
    h, Tc, L = c.m_hidden, c.Tc, c.layers_stage
    dom = c.su_domain
    su_bw = c.su_gb_s * c.su_eff
    nic = c.nics * c.nic_gb_s * c.so_eff / c.gpn

    def nic_for(span):
        return np.where(span > c.pod_gpus, nic / c.oversub, nic)

    # --- tensor parallel -------------------------------------------------------------------------------
    tp_in, tp_out = _placement(t, 1.0, dom)
    kind = "ag"  # all-gather or reduce-scatter halves (sequence parallelism); all-reduce = two halves
    half = kernels.collective_s(cat, kind, Tc * h * ACT_BYTES, tp_in, tp_out, su_bw, nic_for(t))
    if bool((c.sp == 0).any()):
        ar = kernels.collective_s(
            cat,
            "ar",
            Tc * h * ACT_BYTES,
            tp_in,
            tp_out,
            su_bw,
            nic_for(t),
            np.where(tp_in >= c.su_nvls_min, c.su_nvls, 1.0),
        )
        half = np.where(c.sp == 1, half, ar / 2.0)
    ms = c.moe_share
    mlp_tp = (1 - ms) + ms * (etp > 1)
    halves_fwd = 2.0 + 2.0 * mlp_tp
    rcl = np.minimum(c.rcl, L)
    # + 2: the embedding's output scattered to the sequence-parallel ranks and gathered again before the logits.
    # TorchTitan's per-op selective recomputation saves reduce-scatter outputs but gathers the inputs of the
    # matmuls it reruns again: the all-gather before attention and the one before the FFN.
    sac_halves = np.where((c.sac_op == 1) & (c.rc == 1) & (c.sp == 1), 1.0 + mlp_tp, 0.0) * (L - rcl)
    tp_mb = np.where(t > 1, (L * 2.0 * halves_fwd + rcl * halves_fwd + sac_halves + 2.0) * half, 0.0)
    inside = tp_out <= 1
    hidden = np.where((c.tp_overlap == 1) & inside, c.k_tp_overlap_fraction, 0.0)
    c.tp_exposed_mb_s = tp_mb * (1 - hidden)
    c.tp_total_mb_s = tp_mb

    # --- context parallel (ring attention) ------------------------------------------------------------------
    cp_in, cp_out = _placement(cp, t, dom)
    if bool((cp > 1).any()):
        chunk = Tc * c.m_cp_kv_elems / np.minimum(t, c.m_cp_heads) * ACT_BYTES
        cp_bw = np.where(cp_out > 1, nic_for(t * cp), su_bw)
        send = kernels.p2p_s(cat, chunk, cp_bw, cp_out > 1)
        ring_fb = 3.0 * (cp - 1) * send
        ring_fwd = (cp - 1) * send
        attn_fwd = c.t_attn_fb_s / 3.0
        cp_layer = np.maximum(ring_fb - c.t_attn_fb_s, 0.0)
        c.cp_exposed_mb_s = np.where(cp > 1, L * cp_layer + rcl * np.maximum(ring_fwd - attn_fwd, 0.0), 0.0)
        c.cp_total_mb_s = np.where(cp > 1, (L * 3.0 + rcl) * (cp - 1) * send, 0.0)
    else:
        c.cp_exposed_mb_s = c.cp_total_mb_s = np.zeros(c.n)

    # --- expert parallel (all-to-all) --------------------------------------------------------------------
    ms_any = bool(((ep > 1) & (ms > 0)).any())
    ep_nodes = np.ones(c.n)
    if ms_any:
        n_loc = np.minimum(ep, np.maximum(np.floor(dom / etp), 1.0))
        ep_nodes = np.ceil(ep / n_loc)
        k = c.m_topk
        off = k * (ep - n_loc) / np.maximum(ep, 1.0)
        hit = (ep_nodes - 1) * (1 - (1 - 1 / ep_nodes) ** k)
        # DeepEP-style dispatch sends a token once per remote node it needs; node-limited routing caps those nodes.
        # Node-limited routing picks at most M nodes per token (DeepSeek-V3: M = 4), its own among them with
        # probability 1 / nodes: at most M (1 - 1 / nodes) remote nodes on average.
        finite = np.isfinite(c.moe_max_nodes)
        limit = np.where(finite, np.where(finite, c.moe_max_nodes, 0.0) * (1 - 1 / ep_nodes), np.inf)
        dedup = np.minimum(off, np.minimum(hit, limit))
        off = np.where((c.moe_dedup == 1) | np.isfinite(c.moe_max_nodes), dedup, off)
        tokens = Tc / t
        inside_copies = k * n_loc / np.maximum(ep, 1.0)
        ep_nic = nic_for(ep * etp)

        def a2a(bytes_per_elem):
            return kernels.all_to_all_s(
                cat,
                tokens * inside_copies * h * bytes_per_elem,
                tokens * off * h * bytes_per_elem,
                su_bw,
                ep_nic,
                ep,
                ep_nodes > 1,
            )

        a2a_layer = a2a(np.where(c.moe_fp8 == 1, 1.0, 2.0)) + 3.0 * a2a(2.0)
        ep_exposed_layer = np.where(c.moe_overlap == 1, np.maximum(a2a_layer - c.t_layer_fb_s, 0.0), a2a_layer)
        moe_layers = L * ms
        active = (ep > 1) & (ms > 0)
        c.ep_exposed_mb_s = np.where(active, moe_layers * ep_exposed_layer, 0.0)
        c.ep_total_mb_s = np.where(active, moe_layers * a2a_layer, 0.0)
    else:
        c.ep_exposed_mb_s = c.ep_total_mb_s = np.zeros(c.n)

    # --- pipeline sends and bubble --------------------------------------------------------------------------
    stride = t * cp * c.dp
    pp_across = stride >= dom
    act = Tc * h * ACT_BYTES / np.where(c.sp == 1, t, 1.0)
    pp_bw = np.where(pp_across, nic_for(c.n_gpus), su_bw)
    send_s = kernels.p2p_s(cat, act, pp_bw, pp_across)
    send_lat = kernels.p2p_s(cat, 0.0, pp_bw, pp_across)
    sends = 2.0 * v
    # Interleaved schedules overlap the transfers with the next chunk's compute (only their latency shows).
    pp_mb = np.where(
        v > 1, sends * send_lat + np.maximum(sends * (send_s - send_lat) - c.t_stage_mb_s, 0.0), sends * send_s
    )
    c.pp_exposed_mb_s = np.where(pp > 1, pp_mb, 0.0)
    c.pp_total_mb_s = np.where(pp > 1, sends * send_s, 0.0)
    t_mb = c.t_stage_mb_s + c.tp_exposed_mb_s + c.cp_exposed_mb_s + c.ep_exposed_mb_s + c.pp_exposed_mb_s
    c.t_mb_s = t_mb
    c.t_bubble_s = (pp - 1) / v * t_mb

    # --- data parallel and ZeRO -------------------------------------------------------------------------
    dense, expert = params_per_gpu(c)
    c.params_dense_local, c.params_expert_local = dense, expert
    R = c.dp * cp
    g = c.shard
    rep = np.maximum(R / g, 1.0)
    edp = np.maximum(t * cp * c.dp / (ep * etp), 1.0)
    g_in, g_out = _placement(g, t, dom)
    e_in, e_out = _placement(edp, ep * etp, dom)
    r_in, r_out = _placement(rep, t * g, dom)
    dp_nic = nic_for(t * cp * c.dp)
    grad_bytes = cat.constant("bytes_grads_per_param")
    dense_b, expert_b = dense * grad_bytes, expert * grad_bytes

    bucket_bytes = (
        cat.constant("dp_bucket_params") * np.maximum(1.0, c.dp / 40.0) * cat.constant("bytes_grads_per_param")
    )

    def coll(kind, nbytes, n_in, n_out):
        # Gradients move in buckets as the backward pass fills them: each bucket pays the collective's latency.
        buckets = np.maximum(np.ceil(nbytes / bucket_bytes), 1.0)
        return buckets * kernels.collective_s(cat, kind, nbytes / buckets, n_in, n_out, su_bw, dp_nic)

    # A reduce-scatter and an all-gather of the same buffer cost the same (same bytes, same steps); collectives
    # no row needs are not priced at all.
    moe = bool((expert > 0).any())
    z = c.zero

    def both(kind, div=1.0):
        out = coll(kind, dense_b / div, g_in, g_out)
        return out + coll(kind, expert_b / div, e_in, e_out) if moe else out

    zeros = np.zeros(c.n)
    rs = both("rs")
    ag = rs
    ar = both("ar") if bool((z == 0).any()) else zeros
    rep_ar = np.where(rep > 1, coll("ar", dense_b / g, r_in, r_out), 0.0) if bool((rep > 1).any()) else zeros
    units = np.maximum(L, 1.0)
    rs_u = both("rs", units) if bool((z == 3).any()) else zeros
    ag_u = rs_u
    bucket = np.minimum(1.0, bucket_bytes / np.maximum(dense_b + expert_b, 1.0))
    wb, wf = c.t_bwd_mb_s, c.t_fwd_mb_s
    lf = c.t_layer_fwd_s
    lb = c.t_layer_fb_s - c.t_layer_fwd_s
    over = c.dp_overlap == 1
    gather_bwd = np.where(pp > 1, 0.0, 1.0)  # FSDP with PP keeps a stage's weights gathered for backward

    def z3_mb_exposed():
        return (
            ag_u
            + (L - 1) * np.maximum(ag_u - lf, 0.0)
            + gather_bwd * ag_u
            + rs_u
            + (L - 1) * np.maximum(gather_bwd * ag_u + rs_u - lb, 0.0)
        )

    @functools.cache
    def z3_total():
        return m * L * ((1 + gather_bwd) * ag_u + rs_u) + rep_ar

    # By ZeRO stage (0, 1, 2, else 3): exposed (with and without overlap) and total; a stage no row has is not
    # computed.
    exposed = _by_zero_stage(
        z,
        lambda: np.where(over, np.maximum(ar - wb, 0.0) + bucket * ar, ar),
        lambda: np.where(
            over, np.maximum(rs + rep_ar - wb, 0.0) + bucket * rs + np.maximum(ag - wf, 0.0), rs + ag + rep_ar
        ),
        lambda: np.where(
            over, m * (np.maximum(rs - wb, 0.0) + bucket * rs) + np.maximum(ag - wf, 0.0) + rep_ar, m * rs + ag + rep_ar
        ),
        lambda: np.where(over, m * z3_mb_exposed() + np.maximum(rep_ar - wb, 0.0), z3_total()),
    )
    total = _by_zero_stage(z, lambda: ar, lambda: rs + ag + rep_ar, lambda: m * rs + ag + rep_ar, z3_total)
    c.t_dp_s = np.where(R > 1, exposed, 0.0)
    c.t_dp_total_s = np.where(R > 1, total, 0.0)
    c.dp_across = (g_out > 1) | (e_out > 1) | (r_out > 1)

    # --- NCCL's SMs and the shared NICs -----------------------------------------------------------------------
    hidden_s = (
        m
        * (
            c.tp_total_mb_s
            - c.tp_exposed_mb_s
            + c.cp_total_mb_s
            - c.cp_exposed_mb_s
            + c.ep_total_mb_s
            - c.ep_exposed_mb_s
        )
        + c.t_dp_total_s
        - c.t_dp_s
    )
    c.t_contention_s = c.k_comm_sm_share * np.maximum(hidden_s, 0.0)
    nic_bytes_s = (
        np.where(tp_out > 1, m * c.tp_total_mb_s, 0.0)
        + np.where(cp_out > 1, m * c.cp_total_mb_s, 0.0)
        + np.where(ep_nodes > 1, m * c.ep_total_mb_s, 0.0)
        + np.where(pp_across & (pp > 1), m * c.pp_total_mb_s, 0.0)
        + np.where(c.dp_across, c.t_dp_total_s, 0.0)
    )
    c.t_nic_busy_s = nic_bytes_s
    c.tp_across, c.cp_across, c.ep_across, c.pp_across = tp_out > 1, cp_out > 1, ep_nodes > 1, pp_across
