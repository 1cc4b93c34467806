"""Candidate parallel plans as rows, and choosing the best one per scenario as a group-by.

A plan is a structure (TP, CP, PP, EP, expert TP) and a schedule (micro-batch, interleaving, ZeRO stage and
shard group, recomputation). Keys the scenario fixes are fixed; the others are searched in two passes, both
vectorized over all scenarios (loops only over the few distinct patterns of searched keys):

1. every structure with a coarse schedule (micro-batch 1, the deepest interleaving, ZeRO-1 and ZeRO-3,
   no selective recomputation); a structure whose states and activations cannot fit even with every layer
   recomputed is dropped before it is timed;
2. the best few structures of each scenario with every schedule.

Recomputation is not searched layer by layer: each candidate recomputes the fewest layers that make it fit
(memory.fewest_recomputed_layers). Structurally impossible rows are dropped from a search; a fully explicit
plan is kept and reported with its reason. A plan may leave GPUs idle (its DP x TP x CP x PP below the
cluster's count) and says so.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np

from ..catalog import Catalog
from ..columns import Columns
from .step import settle_recompute, step

AUTO = -1
FULL_SHARD, DOMAIN_SHARD = 0, -2  # shard group: all of DP x CP, or the DP ranks inside one scale-up domain
SAME_AS_TP = 0  # expert TP option: the attention TP size
BATCH_TOLERANCE = 0.10
STRUCTURE = ("tp", "cp", "pp", "ep", "etp", "dpv")
SCHEDULE = ("mb", "v", "zero", "shard", "rc")
DIMS = STRUCTURE + SCHEDULE
OPTIONS = {
    "tp": (1, 2, 4, 8, 16, 32, 64),
    "cp": (1, 2, 4, 8, 16, 32),
    "pp": (1, 2, 4, 8, 16, 32, 64),
    "ep": (1, 2, 4, 8, 16, 32, 64, 128, 256),
    "etp": (1, SAME_AS_TP),
    "mb": (1, 2, 4, 8, 16),
    # Interleaving: none, 2, 4, or the deepest that divides a stage's layers (at most 16).
    "v": (1, 2, 4, AUTO),
    "zero": (1, 2, 3),
    "shard": (FULL_SHARD, DOMAIN_SHARD),
    "rc": (0, 1),
    # 0: DP over every GPU the model ranks leave (the batch rounded to whole micro-batches per replica);
    # 1: the largest power-of-two DP that divides the batch exactly, leaving the other GPUs idle.
    "dpv": (0, 1),
}
COARSE = {"mb": (1,), "v": (AUTO,), "zero": (1, 3), "shard": (FULL_SHARD,), "rc": (0, 1)}
TOP_STRUCTURES = 4
DEEPEST_V = (1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16)
# Sequences shorter than this per CP rank are never split further by the search.
CP_MIN_TOKENS = 2048

# Reason codes for a plan that cannot run (0 = runs); memory overflow (9) gets its figures in evaluate.py.
REASONS = {
    1: "TP x CP x PP x DP is more than the GPU count",
    2: "attention heads (or key/value heads) are not divisible by TP",
    3: "more pipeline stages than layers",
    4: "global batch is not within 10% of a whole number of micro-batches per data-parallel replica",
    5: "interleaving needs PP > 1, at least one layer per chunk and micro-batches a multiple of PP",
    6: "the ZeRO shard group must divide the data-parallel ranks (DP x CP)",
    7: "EP x expert TP must divide TP x CP x DP, and EP the expert count",
    8: "no training workload",
    9: "does not fit in GPU memory",
    10: "the sequence does not split into 2 x CP equal chunks",
    11: "the same plan as another candidate",
    # Set after the plan is chosen (evaluate.py): the run itself cannot be had.
    12: "no storage to read the training input from: no shared file system and no local NVMe drives",
    13: "no storage to write checkpoints to: no shared file system and no local NVMe drives "
    '(storage.checkpoint_mode = "none" runs without)',
    14: "the run never finishes: interruptions come faster than it can checkpoint and restart",
    15: "a figure is beyond what the model computes (an extreme input: see the overrides)",
}


def _fixed(scen: Columns) -> dict[str, np.ndarray]:
    f = {d: getattr(scen, f"p_{d}") for d in ("tp", "cp", "pp", "ep", "etp", "mb", "v", "zero", "shard")}
    # Dense models have no experts to place.
    dense = scen.m_experts <= 0
    f["ep"] = np.where(dense, 1, f["ep"])
    f["etp"] = np.where(dense, 1, f["etp"])
    # recompute: auto searches none / selective with the fewest full layers; "full" = none + all layers.
    p_rc = scen.p_rc
    f["rc"] = np.where(p_rc == AUTO, AUTO, np.where(p_rc == 1, 1, 0))
    # The idle-GPU variant is searched only with the structure (a given layout uses all the GPUs it can).
    searched_structure = np.zeros(len(p_rc), dtype=bool)
    for d in ("tp", "cp", "pp", "ep", "etp"):
        searched_structure |= f[d] == AUTO
    f["dpv"] = np.where((scen.p_dp == AUTO) & searched_structure, AUTO, 0)
    return f


def _pattern(fixed: dict[str, np.ndarray], dims) -> np.ndarray:
    bits = np.zeros(len(next(iter(fixed.values()))), dtype=np.int64)
    for bit, d in enumerate(dims):
        bits |= (fixed[d] == AUTO).astype(np.int64) << bit
    return bits


def auto_pattern(scen: Columns) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Each scenario's plan keys (AUTO where searched) and the bit pattern of its searched keys."""
    fixed = _fixed(scen)
    return fixed, _pattern(fixed, DIMS)


@functools.cache
def _grid(dims: tuple[str, ...], coarse: frozenset[str]) -> np.ndarray:
    """Every combination of the options of `dims` (the COARSE values for dims in `coarse`), one row each."""
    if not dims:
        return np.zeros((1, 0), dtype=np.int64)
    values = [COARSE[d] if d in coarse else OPTIONS[d] for d in dims]
    grid = np.array(list(itertools.product(*values)), dtype=np.int64).reshape(-1, len(dims))
    col = {d: grid[:, i] for i, d in enumerate(dims)}
    ok = np.ones(len(grid), dtype=bool)
    if "v" in col and "pp" in col:
        ok &= ~((col["v"] > 1) & (col["pp"] == 1))
    if "shard" in col and "zero" in col:
        # HSDP (a domain-sized shard group) is searched with ZeRO-3, where it saves the most communication.
        ok &= ~((col["shard"] == DOMAIN_SHARD) & (col["zero"] != 3))
    grid = grid[ok]
    grid.setflags(write=False)
    return grid


# A searched micro-batch never holds more tokens than this (beyond it GEMMs gain nothing and memory grows).
MAX_SEARCHED_MB_TOKENS = 32768


def _rows(
    scen: Columns,
    fixed: dict[str, np.ndarray],
    groups,
    coarse: frozenset[str] = frozenset(),
    scen_rows: np.ndarray | None = None,
):
    """Candidate rows: per pattern of searched keys, the structures (TP, CP, PP, EP...) that can run at all
    (_structure_ok), each times the options of its searched schedule keys (coarse where asked), less the
    schedules a search never needs (_schedule_ok). `scen_rows` maps the rows of `fixed` to scenario rows
    (identity by default). Returns the index of each candidate into `fixed`, its plan columns and which keys
    were searched."""
    scen_rows = np.arange(scen.n) if scen_rows is None else scen_rows
    index_parts: list[np.ndarray] = []
    col_parts: dict[str, list[np.ndarray]] = {d: [] for d in DIMS}
    auto_parts: dict[str, list[np.ndarray]] = {d: [] for d in DIMS}
    for pattern, members in groups:
        auto = tuple(d for bit, d in enumerate(DIMS) if pattern >> bit & 1)
        s_auto = tuple(d for d in auto if d in STRUCTURE)
        k_auto = tuple(d for d in auto if d in SCHEDULE)
        s_coarse = frozenset(coarse & set(s_auto))
        s_grid = _grid(s_auto, s_coarse)
        k_grid = _grid(k_auto, frozenset(coarse & set(k_auto)))
        # Structures first: what cannot run is dropped before its schedules are multiplied in.
        idx = np.repeat(members, len(s_grid))
        cols = {
            d: (np.tile(s_grid[:, s_auto.index(d)], len(members)) if d in s_auto else fixed[d][idx]).astype(np.float64)
            for d in STRUCTURE
        }
        ok = _keep_some(_structure_ok(scen, scen_rows[members], s_auto, s_coarse, cols), scen_rows[idx], scen.n)
        idx = idx[ok]
        reps = len(k_grid)
        index = np.repeat(idx, reps)
        for d in STRUCTURE:
            col_parts[d].append(np.repeat(cols[d][ok], reps))
        for d in SCHEDULE:
            col_parts[d].append(
                (np.tile(k_grid[:, k_auto.index(d)], len(idx)) if d in k_auto else fixed[d][index]).astype(np.float64)
            )
        for d in DIMS:
            auto_parts[d].append(np.full(len(index), d in auto))
        index_parts.append(index)
    cols = {d: _joined(v) for d, v in col_parts.items()}
    searched = {d: _joined(v) for d, v in auto_parts.items()}
    index = _joined(index_parts)
    # Interleaving only with PP; a shard group only with ZeRO (also where PP or ZeRO was fixed).
    ok = ~((cols["v"] > 1) & (cols["pp"] == 1)) & ~((cols["shard"] == DOMAIN_SHARD) & (cols["zero"] == 0))
    ok &= _schedule_ok(scen, scen_rows[index], cols, searched)
    ok = _keep_some(ok, scen_rows[index], scen.n)
    if ok.all():
        return index, cols, searched
    return index[ok], {d: v[ok] for d, v in cols.items()}, {d: v[ok] for d, v in searched.items()}


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _structure_ok(
    scen: Columns, member_rows: np.ndarray, s_auto: tuple[str, ...], s_coarse: frozenset[str], cols: dict
) -> np.ndarray:
    """Searched structures dropped before anything is computed for them: more model ranks than GPUs, heads
    not divisible by TP, TP beyond two scale-up domains, more stages than layers, CP that cuts sequences below
    CP_MIN_TOKENS or not into 2 x CP chunks, experts not divisible by EP. The candidates are every scenario of
    `member_rows` (scenario rows) times every row of _grid(s_auto, s_coarse) (the options of the searched keys),
    with their structure columns `cols`; a rule of one key is tested once per scenario and option of that key."""

    def col(name):  # per scenario, against the options along the second axis
        return getattr(scen, name)[member_rows][:, None]

    def options(d):
        values, each = _grid_options(s_auto, s_coarse, d)
        return values[None, :], each

    rows = np.repeat(member_rows, len(_grid(s_auto, s_coarse)))
    bad = (cols["tp"] * cols["cp"] * cols["pp"] > scen.n_gpus[rows]).reshape(len(member_rows), -1)
    if "tp" in s_auto:
        tp, each = options("tp")
        kv = col("m_kv_heads")
        bad |= ((col("m_heads") % tp != 0) | ((kv % tp != 0) & (tp % kv != 0)) | (tp > 2 * col("su_domain")))[:, each]
    if "pp" in s_auto:
        pp, each = options("pp")
        bad |= (pp > col("m_layers"))[:, each]
    if "cp" in s_auto:
        cp, each = options("cp")
        seq = col("seq")
        bad |= ((cp > 1) & ((seq / cp < CP_MIN_TOKENS) | (seq % (2 * cp) != 0)))[:, each]
    if "ep" in s_auto:
        ep, each = options("ep")
        bad |= ((ep > 1) & (np.maximum(col("m_experts"), 1.0) % ep != 0))[:, each]
    return ~bad.ravel()


@functools.cache
def _grid_options(dims: tuple[str, ...], coarse: frozenset[str], d: str) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of key `d` in _grid(dims, coarse), as floats, and the index of each grid row's value
    among them."""
    values, each = np.unique(_grid(dims, coarse)[:, dims.index(d)], return_inverse=True)
    values, each = values.astype(np.float64), each.ravel()
    values.setflags(write=False)
    each.setflags(write=False)
    return values, each


def _schedule_ok(scen: Columns, rows: np.ndarray, cols: dict, searched: dict) -> np.ndarray:
    """Searched schedules that cannot help: interleaving deeper than a stage's layers or not dividing them,
    micro-batches of more than MAX_SEARCHED_MB_TOKENS, a domain-sized shard group where the data-parallel
    group fits in one domain."""

    # Each rule is tested only on the rows it can apply to (a coarse pass has none).
    def col(name, at):
        return getattr(scen, name)[rows[at]]

    tp, cp, pp, v, mb = cols["tp"], cols["cp"], cols["pp"], cols["v"], cols["mb"]
    bad = np.zeros(len(rows), dtype=bool)
    at = np.flatnonzero(searched["v"] & (v > 1))
    if len(at):
        lst = np.ceil(col("m_layers", at) / pp[at])
        bad[at] = (lst % v[at] != 0) | (v[at] > lst)
    at = np.flatnonzero(searched["mb"] & (mb > 1))
    if len(at):
        bad[at] |= mb[at] * col("seq", at) > MAX_SEARCHED_MB_TOKENS
    at = np.flatnonzero(searched["shard"] & (cols["shard"] == DOMAIN_SHARD))
    if len(at):
        dp_full = np.floor(col("n_gpus", at) / np.maximum(tp[at] * cp[at] * pp[at], 1.0))
        per_domain = np.maximum(np.floor(col("su_domain", at) / np.maximum(tp[at] * cp[at], 1.0)), 1.0)
        bad[at] |= dp_full <= per_domain
    return ~bad


def _prepare(scen: Columns, index: np.ndarray, cols: dict[str, np.ndarray]) -> Columns:
    """Candidate rows with derived plan columns (DP, micro-batches, rounded batch) and structural reasons."""
    c = scen.take(index)
    for d, v in cols.items():
        setattr(c, d, v)
    c.scenario_row = index
    c.etp = np.where(c.etp == SAME_AS_TP, c.tp, c.etp)
    i64 = np.int64
    n = c.n_gpus.astype(i64)
    tp, cp, pp, mb, ep, etp = (x.astype(i64) for x in (c.tp, c.cp, c.pp, c.mb, c.ep, c.etp))
    model_ranks = tp * cp * pp
    p_dp = c.p_dp.astype(i64)
    dp = np.where(p_dp == AUTO, np.maximum(n // model_ranks, 1), np.maximum(p_dp, 1))
    gbs = (c.gbs_requested if "gbs_requested" in c else c.gbs).astype(i64)
    dp, duplicate = _idle_gpu_variant(dp, gbs, mb, c.dpv.astype(i64) == 1)
    c.dp = dp.astype(np.float64)
    c.n_used = (dp * model_ranks).astype(np.float64)
    c.gbs_requested = gbs.astype(np.float64)
    replica_batch = dp * mb
    m = np.maximum(np.rint(gbs / replica_batch).astype(i64), 1)
    c.m = m.astype(np.float64)
    c.gbs = (m * replica_batch).astype(np.float64)
    layers = c.m_layers.astype(i64)
    lst = -(-layers // pp)
    # Interleaving left to the search in the coarse pass: the deepest that divides the stage (at most 8).
    v = c.v.astype(i64)
    auto_v = v == AUTO
    deepest = _deepest_v(lst, pp, m, auto_v)
    # The "deepest" option duplicates 1, 2 or 4 where that is the deepest: such rows are dropped (v_searched
    # is 1 where those options are in the grid too).
    same_v = auto_v & (c.v_searched == 1) & ((deepest == 1) | (deepest == 2) | (deepest == 4))
    v = np.where(auto_v, deepest, v)
    c.v = v.astype(np.float64)
    R = dp * cp
    per_domain = np.maximum(c.su_domain.astype(i64) // np.maximum(tp * cp, 1), 1)
    shard = c.shard.astype(i64)
    shard = np.where(shard == FULL_SHARD, R, np.where(shard == DOMAIN_SHARD, np.minimum(per_domain * cp, R), shard))
    c.shard = np.where(c.zero == 0, R, shard).astype(np.float64)
    c.rc_full = (c.p_rc == 2).astype(np.float64)
    p_rcl = c.p_rcl
    c.rcl = np.where(c.p_rc == 0, 0.0, np.where(c.p_rc == 1, np.where(p_rcl == AUTO, 0.0, p_rcl), p_rcl))
    heads, kv = c.m_heads.astype(i64), c.m_kv_heads.astype(i64)
    seq = c.seq.astype(i64)
    checks = [
        (1, (model_ranks * dp > n) | (model_ranks > n)),
        (2, (heads % tp != 0) | ((kv % tp != 0) & (tp % np.maximum(kv, 1) != 0))),
        (3, pp > layers),
        (4, np.abs(m * replica_batch - gbs) > BATCH_TOLERANCE * gbs),
        (5, (v > 1) & ((pp == 1) | (v > lst) | (m % pp != 0))),
        (6, R % np.maximum(c.shard.astype(i64), 1) != 0),
        (7, _experts_misplaced(c, tp * cp * dp, ep, etp)),
        (8, c.has_train == 0),
        (10, (cp > 1) & (seq % (2 * cp) != 0)),
        (11, duplicate | same_v),
    ]
    reason = np.zeros(c.n, dtype=i64)
    for code, bad in reversed(checks):
        np.copyto(reason, code, where=bad)
    c.reason = reason
    return c


def _experts_misplaced(c: Columns, ranks: np.ndarray, ep: np.ndarray, etp: np.ndarray) -> np.ndarray:
    """Reason 7: EP x expert TP above 1 that does not divide the `ranks` (TP x CP x DP), or EP that does not
    divide the expert count. The remainders are taken on those rows only (none in a dense model)."""
    placed = ep * etp
    bad = placed > 1
    rows = np.flatnonzero(bad)
    if len(rows):
        experts = np.maximum(c.m_experts[rows].astype(np.int64), 1)
        bad[rows] = (ranks[rows] % placed[rows] != 0) | (experts % ep[rows] != 0)
    return bad


def _idle_gpu_variant(dp: np.ndarray, gbs: np.ndarray, mb: np.ndarray, variant: np.ndarray):
    """DP where `variant` (the idle-GPU variant): the largest power of two not above DP that divides the batch
    in micro-batches, gcd(max(gbs // mb, 1), 2^floor(log2 DP)); unchanged elsewhere. Also where that variant
    is no smaller than DP (the same plan as the variant 0 row). Computed on the variant rows only (explicit
    plans have none)."""
    duplicate = np.zeros(len(dp), dtype=bool)
    rows = np.flatnonzero(variant)
    if len(rows):
        dp_v = dp[rows]
        pow2 = 2 ** np.floor(np.log2(np.maximum(dp_v, 1))).astype(dp.dtype)
        exact = np.gcd(np.maximum(gbs[rows] // np.maximum(mb[rows], 1), 1), pow2)
        duplicate[rows] = exact >= dp_v
        dp = dp.copy()
        dp[rows] = exact
    return dp, duplicate


def _deepest_v(lst: np.ndarray, pp: np.ndarray, m: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Where `wanted`, the largest option of DEEPEST_V (ascending) that divides the stage's `lst` layers, with
    PP > 1 and the m micro-batches a multiple of PP; 1 otherwise (and where not wanted: not computed)."""
    deepest = np.ones_like(lst)
    rows = np.flatnonzero(wanted)
    if len(rows):
        lst, pp, m = lst[rows], pp[rows], m[rows]
        deepest[rows] = np.where((pp > 1) & (m % pp == 0), _deepest_dividing(lst), 1)
    return deepest


def _deepest_dividing(lst: np.ndarray) -> np.ndarray:
    """The largest option of DEEPEST_V that divides `lst` and is not above it (1 if none), per element: read
    from a table over 0..max(lst) (stage layer counts are small; a few hundred rows at most), not found by
    testing every option on every row."""
    options = np.asarray(DEEPEST_V, dtype=lst.dtype)
    top = int(lst.max(initial=0))
    small = lst.min(initial=0) >= 0 and top <= max(len(lst), 1024)
    values = np.arange(top + 1, dtype=lst.dtype) if small else lst
    divides = (values[:, None] % options == 0) & (options <= values[:, None])
    deepest = np.where(divides, options, 1).max(axis=1)
    return deepest[lst] if small else deepest


# The keys whose searched flags _searchable reads.
SEARCHABLE_KEYS = ("cp", "tp", "etp", "shard")


def _searchable(c: Columns, fixed_index_auto: dict[str, np.ndarray]) -> np.ndarray:
    """Rows a search keeps: beyond the structural rules, no CP that cuts sequences below CP_MIN_TOKENS, no
    TP beyond two scale-up domains."""
    keep = np.ones(c.n, dtype=bool)
    searched = fixed_index_auto
    keep &= ~(searched["cp"] & (c.cp > 1) & (c.seq / c.cp < CP_MIN_TOKENS))
    keep &= ~(searched["tp"] & (c.tp > 2 * c.su_domain))
    keep &= ~(searched["etp"] & (c.etp > 1) & (c.ep == 1))
    keep &= ~(searched["shard"] & (c.zero == 0))
    keep &= c.reason != 11
    return keep


def _keep_some(ok: np.ndarray, index: np.ndarray, n_scenarios: int) -> np.ndarray:
    """`ok`, plus every row of a scenario that `ok` would leave with none (so its result can say why)."""
    has = np.bincount(index, weights=ok, minlength=n_scenarios) > 0
    return ok | ~has[index]


def _filter(c: Columns, keep: np.ndarray, n_scenarios: int) -> Columns:
    """Keep `keep` rows, but every row of a scenario that has no possible plan (so its result says why)."""
    runs = keep & (c.reason == 0)
    has = np.bincount(c.scenario_row, weights=runs, minlength=n_scenarios) > 0
    rows = np.flatnonzero(runs | (~has[c.scenario_row] & keep) | ~has[c.scenario_row])
    if len(rows) == c.n:
        return c
    out = c.take(rows)
    return out


def _dominated(c: Columns, free: np.ndarray | None = None) -> np.ndarray:
    """Rows no faster than a sibling that fits: where ZeRO-1 without recomputation fits a layout (same
    scenario, structure, micro-batch and interleaving), ZeRO-2/3 and selective recomputation of that layout
    only add communication or compute (ZeRO-2/3 move at least ZeRO-1's bytes; recomputation adds work).
    `free`: those fitting ZeRO-1 rows (_leads, rcl == 0), where the caller has them."""
    if free is None:
        free = _leads(c) & (c.rcl == 0)
    if not free.any():
        return np.zeros(c.n, dtype=bool)
    # One integer per layout: TP, CP, PP, EP, expert TP and micro-batch are powers of two (3-4 bits of log2
    # each), interleaving below 32, DP given by the rest and the idle-GPU variant bit.
    code = c.scenario_row.astype(np.int64)
    for x, bits in ((c.tp, 3), (c.cp, 3), (c.pp, 3), (c.ep, 4), (c.etp, 3), (c.mb, 3)):
        code = (code << bits) | np.log2(x).astype(np.int64)
    code = (((code << 5) | c.v.astype(np.int64)) << 1) | c.dpv.astype(np.int64)
    _, group = np.unique(code, return_inverse=True)
    has_free = np.bincount(group, weights=free, minlength=group.max() + 1) > 0
    return has_free[group] & ~free


def _leads(c: Columns) -> np.ndarray:
    """Rows that dominate their layout where they fit without recomputation (_dominated): ZeRO-1, no selective
    recomputation, recomputation left to the search, no structural reason."""
    return (c.zero == 1) & (c.rc == 0) & (c.reason == 0) & (c.p_rc == AUTO)


# From this many candidates on, the rows that could dominate a layout (_leads, about a quarter) find their
# recomputed layers first, and the rows they dominate are dropped before theirs are found: the same rows
# are kept (a dominated row is dropped whatever it needs), a quarter fewer rows settled (the pass-1 batch of
# a sweep); below it the extra view costs more than it saves.
LEADS_FIRST_ROWS = 4096


def _timed(c: Columns, cat: Catalog, n_scenarios: int) -> Columns:
    lead = _leads(c)
    dropped = False
    if c.n >= LEADS_FIRST_ROWS and lead.any():
        rows = np.flatnonzero(lead)
        leads = c.take(rows)
        settle_recompute(leads, cat)
        free = np.zeros(c.n, dtype=bool)
        free[rows] = leads.rcl == 0
        dominated = _dominated(c, free)
        if dominated.any():
            c = c.take(np.flatnonzero(~dominated))
        dropped = True
    settle_recompute(c, cat)
    # A plan that does not fit with every layer recomputed is not worth timing (kept only to say why).
    c.reason = np.where((c.reason == 0) & (c.rcl > c.layers_stage), 9, c.reason)
    c.rcl = np.minimum(c.rcl, c.layers_stage)
    # Dominated rows (none left where they were dropped above: a scenario with one has a row that runs). A
    # lead keeps reason 0 where it needs no recomputed layer, so the fitting leads are `lead` with rcl 0.
    keep = np.ones(c.n, dtype=bool) if dropped else ~_dominated(c, lead & (c.rcl == 0))
    c = _filter(c, keep, n_scenarios)
    step(c, cat)
    return c


def _per_token(c: Columns) -> np.ndarray:
    return np.where(c.reason == 0, c.step_time_s / c.tokens_per_step, np.inf)


def search(
    scen: Columns, cat: Catalog, keys: tuple[dict[str, np.ndarray], np.ndarray] | None = None
) -> tuple[Columns, np.ndarray, np.ndarray]:
    """Candidates of every scenario, timed, with the chosen row and the runner-up row per scenario
    (the best plan of another structure or ZeRO stage; -1 where there is none). `keys`: auto_pattern(scen)
    where the caller has it already."""
    fixed, pattern = keys or auto_pattern(scen)
    n = scen.n
    if not pattern.any():
        plan = {d: fixed[d].astype(np.float64, copy=False) for d in DIMS}
        c = _prepare(scen, np.arange(n), plan | {"v_searched": np.zeros(n)})
        c.searched = np.zeros(n, dtype=bool)
        c = _timed(c, cat, n)
        return c, np.arange(n), np.full(n, -1)

    structure_auto = _pattern(fixed, STRUCTURE) != 0
    # Pass 1: structures with a coarse schedule (only for scenarios that search their structure).
    shortlist_rows = [np.flatnonzero(~structure_auto)]
    shortlist = {d: [fixed[d][~structure_auto]] for d in STRUCTURE}
    if structure_auto.any():
        members = np.flatnonzero(structure_auto)
        groups = [(p, members[pattern[members] == p]) for p in np.unique(pattern[members])]
        index, cols, searched = _rows(scen, fixed, groups, frozenset(COARSE))
        # In this pass "deepest" is the only interleaving tried, so it never duplicates another row.
        cols["v_searched"] = np.zeros(len(index))
        c = _prepare(scen, index, cols)
        auto_of = {d: (fixed[d] == AUTO)[index] for d in SEARCHABLE_KEYS}
        c = _filter(c, _searchable(c, auto_of), n)
        c = _timed(c, cat, n)
        key = _per_token(c)
        # Best time per structure, then the TOP_STRUCTURES best structures of each scenario.
        keep = _best_structures(c, key)
        shortlist_rows.append(c.scenario_row[keep])
        for d in STRUCTURE:
            shortlist[d].append(getattr(c, d)[keep])
    # Pass 2: each shortlisted structure with every schedule.
    rows = np.concatenate(shortlist_rows)
    fixed2 = {d: (np.concatenate(shortlist[d]) if d in STRUCTURE else fixed[d][rows]) for d in DIMS}
    sub_pattern = _pattern(fixed2, DIMS)
    groups = [(p, np.flatnonzero(sub_pattern == p)) for p in np.unique(sub_pattern)]
    local_index, cols, searched = _rows(scen, fixed2, groups, scen_rows=rows)
    index = rows[local_index]
    cols["v_searched"] = searched["v"].astype(np.float64)
    c = _prepare(scen, index, cols)
    auto_of = {d: (fixed[d] == AUTO)[index] for d in SEARCHABLE_KEYS}
    c = _filter(c, _searchable(c, auto_of), n)
    c = _timed(c, cat, n)
    c.searched = (pattern != 0)[c.scenario_row]
    best = select(c, n)
    return c, best, runner_up(c, best, n)


def _best_structures(c: Columns, key: np.ndarray) -> np.ndarray:
    """Rows of the TOP_STRUCTURES best structures (STRUCTURE's columns) of each scenario, one row each: by
    scenario, then the structure's best `key` (NaN last; ties: the structure's columns compared in turn)."""
    row = c.scenario_row
    struct = [getattr(c, d) for d in STRUCTURE]
    code = _ordered_code(row, struct)
    if code is not None and len(code) and bool(np.all(code[1:] >= code[:-1])):
        # Each structure's rows together and in order already (as _rows makes them): one run of equal codes
        # each, its best time the smallest that is not NaN (fmin), as a sort that puts NaN last finds it.
        best = np.flatnonzero(np.concatenate(([True], code[1:] != code[:-1])))
        best_key = np.fmin.reduceat(key, best)
    else:
        # By (scenario, structure, time): the first row of each (scenario, structure) is its fastest.
        order = np.lexsort((key, *reversed(struct), row) if code is None else (key, code))
        first = np.zeros(len(order), dtype=bool)
        first[0] = True
        for x in (row, *struct) if code is None else (code,):
            xs = x[order]
            first[1:] |= xs[1:] != xs[:-1]
        best = order[first]
        best_key = key[best]
    # The structures of each scenario by their best time (ties: in the order of their columns).
    cand = best[np.lexsort((best_key, row[best]))]
    crow = row[cand]
    rank = np.arange(len(crow)) - np.searchsorted(crow, crow, side="left")
    return cand[rank < TOP_STRUCTURES]


def _ordered_code(first: np.ndarray, columns: list[np.ndarray]) -> np.ndarray | None:
    """One int64 per row that orders the rows as (first, *columns) compared in turn do (mixed radix over the
    columns' values): None unless every value is a whole number from 0 to 2^20 and the code fits."""
    code = first.astype(np.int64)
    span = int(code.max(initial=0)) + 1
    for x in columns:
        top = x.max(initial=0)
        if not (x.min(initial=0) >= 0 and top < 2**20 and np.array_equal(x, np.floor(x))):
            return None
        base = int(top) + 1
        span *= base
        if span >= 2**62:
            return None
        code = code * base + x.astype(np.int64)
    return code


def _complexity(c: Columns) -> np.ndarray:
    return c.pp * 2**16 + c.cp * 2**12 + c.tp * 2**6 + c.zero * 8 + c.rcl / 1e3 + c.rc + c.v / 1e4


def select(c: Columns, n_scenarios: int) -> np.ndarray:
    """Row of the chosen plan per scenario: the fastest per token that runs (plans may round the batch
    differently); where none runs, the closest to fitting, so its reason can be shown. Ties prefer simpler
    plans. A group-by done as one sort."""
    if c.n == n_scenarios and np.array_equal(c.scenario_row, np.arange(n_scenarios)):
        return np.arange(n_scenarios)
    runs = c.reason == 0
    key = _per_token(c)
    over = np.where(c.reason == 9, c.mem_over_gb, np.inf)
    order = np.lexsort((_complexity(c), over, key, ~runs, c.scenario_row))
    group = c.scenario_row[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = group[1:] != group[:-1]
    rows = np.full(n_scenarios, -1, dtype=np.int64)
    rows[group[first]] = order[first]
    return rows


def runner_up(c: Columns, best: np.ndarray, n_scenarios: int) -> np.ndarray:
    """Per scenario, the fastest running plan whose structure (TP, CP, PP, EP) or ZeRO stage differs from the
    chosen one; -1 where no other plan runs."""
    rows = np.full(n_scenarios, -1, dtype=np.int64)
    if c.n == n_scenarios:
        return rows
    chosen = best[c.scenario_row]
    differs = np.zeros(c.n, dtype=bool)
    for d in ("tp", "cp", "pp", "ep", "zero"):
        col = getattr(c, d)
        differs |= col != col[chosen]
    key = np.where(differs & (c.reason == 0), _per_token(c), np.inf)
    order = np.lexsort((_complexity(c), key, c.scenario_row))
    group = c.scenario_row[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = group[1:] != group[:-1]
    pick = order[first]
    ok = np.isfinite(key[pick])
    rows[group[first][ok]] = pick[ok]
    return rows
