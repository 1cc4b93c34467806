"""Kernel-level rates, vectorized: a GEMM by its shape, FlashAttention by sequence length, a collective by its
size and the ranks it spans. The curves and constants are data (catalog/kernels.toml, efficiency.toml), each
anchored to the measurements in ../shared/reference/kernels/; docs/model.md ("Efficiency") has the formulas.

* GEMM: time = FLOPs / (ceiling x s(M) s(N) s(K)) + t_fixed, s(d) = d / (d + d_half), never below the
  bytes of its operands at HBM bandwidth (small-M GEMMs are memory-bound: reference G028-G033).
* Attention: peak x fraction(generation) x relative(s) x c(s) / c(8192), c(s) = s / (s + s_c).
* Collectives: NCCL's cost model (src/graph/tuning.cc): base + steps x step latency + bus bytes / (bus
  bandwidth x protocol share), the cheapest protocol (LL or Simple) and algorithm (ring, or tree / PAT
  with log2(nodes) network levels at a lower bandwidth share).
"""

from __future__ import annotations

import numpy as np

from .catalog import Catalog

GB = 1e9
LL, SIMPLE = 0, 2  # protocol indices in kernels.toml (LL, LL128, Simple)


def shape_factor(m, n, k, d_half):
    """s(M) s(N) s(K): the share of a GEMM's ceiling its shape reaches (tiles and waves left unfilled)."""
    return (m / (m + d_half)) * (n / (n + d_half)) * (k / (k + d_half))


def gemm_s(flops, m, n, k, rate_flops, d_half, t_fixed_s, nbytes=0.0, mem_bytes_s=np.inf):
    """Seconds for one GEMM of `flops` with shape (m, n, k): the larger of its compute time at the
    shape-reduced ceiling and its operand traffic at memory bandwidth, plus the fixed launch/tail cost."""
    compute = flops / (rate_flops * shape_factor(m, n, k, d_half))
    return np.maximum(compute, nbytes / mem_bytes_s) + t_fixed_s


def attention_relative(seq, cat: Catalog):
    """relative(s) x c(s) / c(8192): the attention rate at `seq` tokens against the 8k causal anchor."""
    curve = cat.kernels.attention
    log_s = np.log(np.asarray(curve.seq_tokens))
    rel = np.interp(np.log(np.maximum(seq, 1.0)), log_s, np.asarray(curve.relative_rate))
    half = curve.causal_half_tokens
    causal = (seq / (seq + half)) / (8192.0 / (8192.0 + half))
    return rel * causal


def _protocols(cat: Catalog):
    n = cat.kernels.nccl
    return n.base_us, n.nvlink_step_us, n.net_step_us, n.protocol_bandwidth_share


def collective_s(cat: Catalog, kind: str, nbytes, n_in, n_out, bw_in, bw_out, nvls_gain=1.0):
    """Seconds for one collective on a group of n_in ranks per scale-up domain x n_out domains.

    kind: "rs" (reduce-scatter) or "ag" (all-gather) of a buffer of `nbytes` per rank (the full, unsharded
    size), "ar" (all-reduce) of `nbytes`. bw_in: a rank's scale-up bus bandwidth (GB/s, efficiency applied);
    bw_out: a rank's share of its node's NICs (GB/s). A ring across domains runs n_in channels, one per NIC,
    so its bus bandwidth is min(bw_in, n_in x bw_out). NVLink SHARP (`nvls_gain`) speeds an all-reduce that
    stays inside one domain."""
    base, nvl, net, share = _protocols(cat)
    tree_share = cat.kernels.nccl.tree_bandwidth_share
    n = n_in * n_out
    passes = 2.0 if kind == "ar" else 1.0
    frac = np.where(n > 1, (n - 1) / np.maximum(n, 1), 0.0)
    bus_bytes = passes * frac * nbytes
    inside = n_out <= 1
    ring_bw = np.where(inside, bw_in * np.where(kind == "ar", nvls_gain, 1.0), np.minimum(bw_in, n_in * bw_out))
    # Steps of one pass: (n-1) in all, (n_out-1) of them across the network; tree / PAT: log2(n_out) levels.
    ring_net = np.maximum(n_out - 1, 0)
    ring_nvl = np.maximum(n - 1 - ring_net, 0)
    tree_net = np.ceil(np.log2(np.maximum(n_out, 1)))
    tree_nvl = np.maximum(n_in - 1, 0)
    best = np.full(np.shape(bus_bytes), np.inf)
    for p in (LL, SIMPLE):
        bw = ring_bw * share[p] * GB
        ring = base[p] * 1e-6 + passes * (ring_nvl * nvl[p] + ring_net * net[p]) * 1e-6 + bus_bytes / bw
        tree = (
            base[p] * 1e-6
            + passes * (tree_nvl * nvl[p] + tree_net * net[p]) * 1e-6
            + bus_bytes / (bw * np.where(inside, 1.0, tree_share))
        )
        best = np.minimum(best, np.minimum(ring, tree))
    return np.where(n > 1, best, 0.0)


def p2p_s(cat: Catalog, nbytes, bw_gb_s, across_nodes):
    """One point-to-point send: NCCL's base latency and one step, plus the bytes at `bw_gb_s`."""
    base, nvl, net, _ = _protocols(cat)
    step = np.where(across_nodes, net[SIMPLE], nvl[SIMPLE])
    return (base[SIMPLE] + step) * 1e-6 + nbytes / (bw_gb_s * GB)


def all_to_all_s(cat: Catalog, bytes_inside, bytes_across, bw_in, bw_out, n, across_nodes):
    """An all-to-all where each rank sends `bytes_inside` to peers in its domain and `bytes_across` to
    peers on other nodes (both leave over their own links at once): the slower of the two, plus one step."""
    base, nvl, net, _ = _protocols(cat)
    step = np.where(across_nodes, net[SIMPLE], nvl[SIMPLE])
    move = np.maximum(bytes_inside / (bw_in * GB), bytes_across / (bw_out * GB))
    return np.where(n > 1, (base[SIMPLE] + step) * 1e-6 + move, 0.0)
