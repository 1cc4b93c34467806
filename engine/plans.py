"""Candidate parallel plans as rows, and choosing the best one per scenario as a group-by.

A scenario whose plan is fully explicit is one row. Each key left to the search ("auto") multiplies its
row by that key's options. Structurally impossible combinations (the GPU count not a product of
TP x PP x DP, heads not divisible by TP, the global batch not a whole number of micro-batches per replica,
ZeRO-2/3 under pipeline parallelism, which Megatron-LM and DeepSpeed do not support) are dropped from a
search; for a fully explicit plan they are kept and reported as the reason the plan is infeasible.
"""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl

from .columns import Columns

AUTO = -1
OPTIONS = {
    "tp": (1, 2, 4, 8, 16, 32, 64),
    "pp": (1, 2, 4, 8, 16, 32, 64, 128),
    "mb": (1, 2, 4, 8, 16, 32),
    "zero": (0, 1, 2, 3),
    "v": (1, 2, 4),
    "rc": (0, 1, 2),
    "ep": (1, 2, 4, 8, 16, 32, 64),
}
DIMS = tuple(OPTIONS)

# Reason codes for a plan that cannot run (0 = runs). Text in REASONS; memory overflow is code 9 and
# gets its figures attached in the result stage.
REASONS = {
    1: "GPU count is not TP x PP x DP",
    2: "attention heads are not divisible by TP",
    3: "more pipeline stages than layers",
    4: "global batch is not a whole number of micro-batches per data-parallel replica",
    5: "interleaving needs PP > 1, enough layers per stage and micro-batches a multiple of PP",
    6: "ZeRO-2/3 cannot be combined with pipeline parallelism",
    7: "expert parallelism must divide the data-parallel size and the expert count",
    8: "no training workload",
    9: "does not fit in GPU memory",
}


def expand(scen: Columns) -> Columns:
    """Candidate rows for every scenario: explicit keys fixed, auto keys over OPTIONS (a loop over the
    distinct auto-key patterns, never over scenarios)."""
    fixed = {d: getattr(scen, f"p_{d}") for d in DIMS}
    moe = scen.m_experts > 0
    # Dense models have no expert parallelism to search.
    fixed["ep"] = np.where((fixed["ep"] == AUTO) & ~moe, 1, fixed["ep"])
    # With flash attention nothing of the attention core is stored, so selective recompute only adds work.
    auto_mask = np.stack([fixed[d] == AUTO for d in DIMS], axis=1)
    patterns, pattern_of = np.unique(auto_mask, axis=0, return_inverse=True)
    pattern_of = pattern_of.reshape(-1)

    parts_index, parts_cols = [], {d: [] for d in DIMS}
    for p_idx, pattern in enumerate(patterns):
        members = np.flatnonzero(pattern_of == p_idx)
        auto_dims = [d for d, is_auto in zip(DIMS, pattern) if is_auto]
        grid = list(itertools.product(*(OPTIONS[d] for d in auto_dims))) or [()]
        grid = np.array(grid, dtype=np.int64).reshape(len(grid), len(auto_dims))
        index = np.repeat(members, len(grid))
        parts_index.append(index)
        for d in DIMS:
            if d in auto_dims:
                parts_cols[d].append(np.tile(grid[:, auto_dims.index(d)], len(members)))
            else:
                parts_cols[d].append(fixed[d][index])
    index = np.concatenate(parts_index)
    cand = scen.take(index)
    for d in DIMS:
        setattr(cand, d, np.concatenate(parts_cols[d]).astype(np.float64))
    cand.scenario_row = index
    cand.searched = auto_mask.any(axis=1)[index]

    reason = _structure(cand)
    # Drop impossible rows from searches, but keep every row of a scenario that has no possible plan
    # (so its result can say why) and every explicit plan.
    has_valid = np.bincount(index, weights=(reason == 0), minlength=scen.n) > 0
    keep = (reason == 0) | ~has_valid[index] | ~cand.searched
    flash_selective = (cand.rc == 1) & (cand.flash == 1) & (getattr(scen, "p_rc")[index] == AUTO)
    keep &= ~flash_selective
    rows = np.flatnonzero(keep)
    if len(rows) == cand.n:
        cand.reason = reason
        return cand
    out = scen.take(index[rows])
    for d in (*DIMS, "dp", "m"):
        setattr(out, d, getattr(cand, d)[rows])
    out.scenario_row = index[rows]
    out.searched = cand.searched[rows]
    out.reason = reason[rows]
    return out


def _structure(c: Columns) -> np.ndarray:
    n = c.n_gpus
    dp = n / (c.tp * c.pp)
    dp_int = np.floor(dp)
    c.dp = np.maximum(dp_int, 1.0)
    micro = c.gbs / np.maximum(c.dp * c.mb, 1)
    c.m = np.maximum(np.floor(micro), 1.0)
    layers_per_stage = np.ceil(c.m_layers / c.pp)
    checks = [
        (1, (dp != dp_int) | (dp < 1) | ((c.p_dp != AUTO) & (c.p_dp != dp))),
        (2, np.mod(c.m_heads, c.tp) != 0),
        (3, c.pp > c.m_layers),
        (4, (micro != np.floor(micro)) | (micro < 1)),
        (5, (c.v > 1) & ((c.pp == 1) | (layers_per_stage < c.v) | (np.mod(c.m, c.pp) != 0))),
        (6, (c.zero >= 2) & (c.pp > 1)),
        (7, (c.ep > 1) & ((np.mod(c.dp, c.ep) != 0) | (np.mod(np.maximum(c.m_experts, 1), c.ep) != 0))),
        (8, c.has_train == 0),
    ]
    reason = np.zeros(c.n, dtype=np.int64)
    for code, bad in reversed(checks):
        reason = np.where(bad, code, reason)
    return reason


def select(cand: Columns, n_scenarios: int) -> np.ndarray:
    """Row index of the chosen plan per scenario: the fastest plan that runs; where none runs, the one
    closest to fitting (least memory over) so its reason can be shown. Ties prefer simpler plans."""
    runs = cand.reason == 0
    order_key = np.where(runs, cand.step_time_s, np.inf)
    over = np.where(cand.reason == 9, cand.mem_over_gb, np.inf)
    frame = pl.DataFrame({
        "scenario": cand.scenario_row,
        "row": np.arange(cand.n),
        "bad": ~runs,
        "key": order_key,
        "over": over,
        "simplicity": cand.pp * 4096 + cand.tp * 64 + cand.zero * 8 + cand.rc,
    })
    best = (frame.sort(["scenario", "bad", "key", "over", "simplicity"])
            .unique("scenario", keep="first", maintain_order=True))
    rows = np.full(n_scenarios, -1, dtype=np.int64)
    rows[best["scenario"].to_numpy()] = best["row"].to_numpy()
    return rows
