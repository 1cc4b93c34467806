"""Collective communication costs (vectorized; seconds).

Bandwidth-optimal ring algorithms (Patarasuk & Yuan 2009; Thakur et al. 2005, "Optimization of collective
communication operations in MPICH"): on n ranks, a reduce-scatter or all-gather of S bytes moves
(n-1)/n * S bytes through each rank's link, an all-reduce twice that. `bw_gb_s` is the effective
per-direction bandwidth per GPU (line rate x measured NCCL bus-bandwidth efficiency). Latency is one base
latency per collective on one level, times ceil(log2 n) for the tree/ring depth across nodes.

Hierarchical collectives (NCCL's two-level scheme for groups that span scale-up domains): ranks first
reduce-scatter inside the domain over the scale-up fabric, then each rank exchanges its 1/n_in share with
its peers in other domains over its share of the node's NICs, then all-gather inside the domain.
"""

from __future__ import annotations

import numpy as np

GB = 1e9


def _frac(n: np.ndarray) -> np.ndarray:
    return np.where(n > 1, (n - 1) / np.maximum(n, 1), 0.0)


def _depth(n: np.ndarray) -> np.ndarray:
    return np.ceil(np.log2(np.maximum(n, 1.0)))


def half_collective_s(nbytes, n_in, n_out, su_bw_gb_s, nic_bw_gb_s, su_lat_us, so_lat_us):
    """One reduce-scatter or all-gather of `nbytes` per rank over n_in x n_out ranks (two levels)."""
    inner = _frac(n_in) * nbytes / (su_bw_gb_s * GB) + np.where(n_in > 1, su_lat_us * 1e-6, 0.0)
    outer = _frac(n_out) * (nbytes / np.maximum(n_in, 1)) / (nic_bw_gb_s * GB) + _depth(n_out) * so_lat_us * 1e-6
    return inner + outer


def all_reduce_s(nbytes, n_in, n_out, su_bw_gb_s, nic_bw_gb_s, su_lat_us, so_lat_us):
    """All-reduce = reduce-scatter + all-gather."""
    return 2.0 * half_collective_s(nbytes, n_in, n_out, su_bw_gb_s, nic_bw_gb_s, su_lat_us, so_lat_us)


def all_to_all_s(nbytes, n, bw_gb_s, lat_us):
    """All-to-all where each rank sends `nbytes` in total, (n-1)/n of it to other ranks."""
    return _frac(n) * nbytes / (bw_gb_s * GB) + np.where(n > 1, lat_us * 1e-6, 0.0)


def p2p_s(nbytes, bw_gb_s, lat_us):
    """A point-to-point send of `nbytes`."""
    return nbytes / (bw_gb_s * GB) + lat_us * 1e-6


def split_group(group: np.ndarray, inner_stride: np.ndarray, domain: np.ndarray):
    """Split a group of `group` ranks, placed every `inner_stride` ranks, into (ranks per scale-up domain,
    domains spanned). Megatron's rank order places tensor-parallel ranks innermost, then data-parallel,
    then pipeline stages, so a data-parallel group has stride tp."""
    per_domain = np.maximum(np.floor(domain / inner_stride), 1.0)
    n_in = np.minimum(group, per_domain)
    n_out = np.maximum(np.floor(group / n_in), 1.0)
    return n_in, n_out
