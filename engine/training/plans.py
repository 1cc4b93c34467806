"""Candidate parallel plans as rows, and choosing the best one per scenario as a group-by.

A scenario whose plan is fully explicit is one row. Each key left to the search ("auto") multiplies its
row by that key's options. Structurally impossible combinations (the GPU count not a product of
TP x PP x DP, heads not divisible by TP, the global batch not a whole number of micro-batches per replica,
ZeRO-2/3 under pipeline parallelism, which Megatron-LM and DeepSpeed do not support) are dropped from a
search; for a fully explicit plan they are kept and reported as the reason the plan is infeasible.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np

from ..columns import Columns

AUTO = -1
# How far the global batch may move to become a whole number of micro-batches per replica (rounded).
BATCH_TOLERANCE = 0.10
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
    4: "global batch is not within 10% of a whole number of micro-batches per data-parallel replica",
    5: "interleaving needs PP > 1, enough layers per stage and micro-batches a multiple of PP",
    6: "ZeRO-2/3 cannot be combined with pipeline parallelism",
    7: "expert parallelism must divide the data-parallel size and the expert count",
    8: "no training workload",
    9: "does not fit in GPU memory",
}


def auto_pattern(scen: Columns) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Each scenario's plan keys (AUTO where searched) and its set of searched keys as a bit pattern."""
    fixed = {d: getattr(scen, f"p_{d}") for d in DIMS}
    # Dense models have no expert parallelism to search.
    fixed["ep"] = np.where((fixed["ep"] == AUTO) & (scen.m_experts <= 0), 1, fixed["ep"])
    pattern_of = np.zeros(scen.n, dtype=np.int64)
    for bit, d in enumerate(DIMS):
        pattern_of |= (fixed[d] == AUTO).astype(np.int64) << bit
    return fixed, pattern_of


def expand(scen: Columns) -> Columns:
    """Candidate rows for every scenario: explicit keys fixed, auto keys over OPTIONS (a loop over the
    distinct auto-key patterns, never over scenarios)."""
    fixed, pattern_of = auto_pattern(scen)
    if not pattern_of.any():
        # Every plan explicit: the scenario rows are the candidate rows (no copy, no gather).
        for d in DIMS:
            setattr(scen, d, fixed[d].astype(np.float64))
        scen.scenario_row = np.arange(scen.n)
        scen.searched = np.zeros(scen.n, dtype=bool)
        scen.reason = _structure(scen)
        return scen

    parts_index, parts_cols = [], {d: [] for d in DIMS}
    for pattern in np.unique(pattern_of):
        members = np.flatnonzero(pattern_of == pattern)
        auto_dims = [d for bit, d in enumerate(DIMS) if pattern >> bit & 1]
        grid = _grid(tuple(auto_dims))
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
    cand.searched = (pattern_of != 0)[index]

    reason = _structure(cand)
    # Drop impossible rows from searches, but keep every row of a scenario that has no possible plan
    # (so its result can say why) and every explicit plan.
    has_valid = np.bincount(index, weights=(reason == 0), minlength=scen.n) > 0
    keep = (reason == 0) | ~has_valid[index] | ~cand.searched
    flash_selective = (cand.rc == 1) & (cand.flash == 1) & (scen.p_rc[index] == AUTO)
    keep &= ~flash_selective
    rows = np.flatnonzero(keep)
    if len(rows) == cand.n:
        cand.reason = reason
        return cand
    out = scen.take(index[rows])
    for d in (*DIMS, "dp", "m", "gbs", "gbs_requested"):
        setattr(out, d, getattr(cand, d)[rows])
    out.scenario_row = index[rows]
    out.searched = cand.searched[rows]
    out.reason = reason[rows]
    return out


@functools.cache
def _grid(auto_dims: tuple[str, ...]) -> np.ndarray:
    """Every combination of the options of `auto_dims`, one row each (cached: a handful of patterns)."""
    grid = list(itertools.product(*(OPTIONS[d] for d in auto_dims))) or [()]
    grid = np.array(grid, dtype=np.int64).reshape(len(grid), len(auto_dims))
    # Combinations impossible whatever the scenario (rules 5 and 6 when PP is searched too) never become rows.
    col = {d: grid[:, i] for i, d in enumerate(auto_dims)}
    if "pp" in col:
        ok = np.ones(len(grid), dtype=bool)
        if "zero" in col:
            ok &= ~((col["zero"] >= 2) & (col["pp"] > 1))
        if "v" in col:
            ok &= ~((col["v"] > 1) & (col["pp"] == 1))
        grid = grid[ok]
    grid.setflags(write=False)
    return grid


def _structure(c: Columns) -> np.ndarray:
    i64 = np.int64
    n, tp, pp, mb, v, ep = (x.astype(i64) for x in (c.n_gpus, c.tp, c.pp, c.mb, c.v, c.ep))
    gbs, heads, layers = c.gbs.astype(i64), c.m_heads.astype(i64), c.m_layers.astype(i64)
    model_ranks = tp * pp
    dp = np.maximum(n // model_ranks, 1)
    c.dp = dp.astype(np.float64)
    replica_batch = dp * mb
    # A global batch that is not a whole number of micro-batches per replica is rounded to the nearest one
    # that is (as one would set it for that cluster), if that changes it by at most BATCH_TOLERANCE.
    m = np.maximum(np.rint(gbs / replica_batch).astype(i64), 1)
    c.m = m.astype(np.float64)
    c.gbs_requested = c.gbs
    c.gbs = (m * replica_batch).astype(np.float64)
    layers_per_stage = -(-layers // pp)
    experts = np.maximum(c.m_experts.astype(i64), 1)
    checks = [
        (1, (n % model_ranks != 0) | (n < model_ranks) | ((c.p_dp != AUTO) & (c.p_dp != dp))),
        (2, heads % tp != 0),
        (3, pp > layers),
        (4, np.abs(m * replica_batch - gbs) > BATCH_TOLERANCE * gbs),
        (5, (v > 1) & ((pp == 1) | (layers_per_stage < v) | (m % pp != 0))),
        (6, (c.zero >= 2) & (pp > 1)),
        (7, (ep > 1) & ((dp % ep != 0) | (experts % ep != 0))),
        (8, c.has_train == 0),
    ]
    reason = np.zeros(c.n, dtype=np.int64)
    for code, bad in reversed(checks):
        reason = np.where(bad, code, reason)
    return reason


def select(cand: Columns, n_scenarios: int) -> np.ndarray:
    """Row index of the chosen plan per scenario: the fastest plan (per token) that runs; where none runs, the one
    closest to fitting (least memory over) so its reason can be shown. Ties prefer simpler plans.

    A group-by done as one sort: order rows by (scenario, cannot run, step time, memory over, complexity)
    and keep the first row of each scenario."""
    if cand.n == n_scenarios and np.array_equal(cand.scenario_row, np.arange(n_scenarios)):
        return np.arange(n_scenarios)  # one candidate per scenario: nothing to choose
    runs = cand.reason == 0
    # Time per token: plans may round the global batch differently.
    key = np.where(runs, cand.step_time_s / cand.tokens_per_step, np.inf)
    over = np.where(cand.reason == 9, cand.mem_over_gb, np.inf)
    simplicity = cand.pp * 4096 + cand.tp * 64 + cand.zero * 8 + cand.rc
    order = np.lexsort((simplicity, over, key, ~runs, cand.scenario_row))
    group = cand.scenario_row[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = group[1:] != group[:-1]
    rows = np.full(n_scenarios, -1, dtype=np.int64)
    rows[group[first]] = order[first]
    return rows
