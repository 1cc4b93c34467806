"""Serving: time to first token, time per output token, throughput, tail latency, power and energy by phase.

    serve(scenario columns) = select(physics(expand TP candidates)) -> load and latency -> power and energy

Candidate tensor-parallel sizes are rows (like training's plans, engine/training/plans.py); `tp = "auto"` searches
TP_OPTIONS and keeps, per scenario: with latency limits, the plan that serves the most tokens/s within them;
offline (rate 0), the most tokens/s; otherwise the lowest mean end-to-end latency among plans that keep up
with the offered rate (the most capacity if none does). A disaggregated scenario has two pools per candidate:
prefill replicas (prompts only) and decode replicas (decode only), the KV cache sent between them over the
fabric. Formulas: physics.py, queueing.py; docs/model.md ("Serving").
"""

from __future__ import annotations

import numpy as np
import polars as pl

from .. import cost, energy
from ..catalog import Catalog
from ..columns import Columns
from . import physics
from .queueing import Load, Preemption, latency, max_rate_within, mean_point, saturation

AUTO = -1
TP_OPTIONS = (1, 2, 4, 8, 16, 32, 64)
# The share of capacity at which an overloaded fleet's iterations are taken (the limit from below: the
# figures settle to within 1e-6 of it by here, and stay finite up to 1 - 1e-15).
SATURATED = 1.0 - 1e-9
# Up to this many candidate plans are searched for their rate within the latency limits in one pass; more
# (large sweeps) search each scenario's highest-capacity plan first.
SEARCH_ALL_AT_ONCE = 32

# Reason codes for a serving plan that cannot run (0 = runs); 9 gets its figures in evaluate.py.
REASONS = {
    1: "no serving workload",
    2: "attention heads are not divisible by TP",
    3: "TP x PP is more than the serving GPUs",
    4: "more pipeline stages than layers",
    5: "ep does not divide TP",
    6: "the prefill pool's TP x PP is more than its GPUs",
    9: "does not fit in GPU memory",
}
# Bottleneck codes: physics.PARTS (0-6), then these.
BOTTLENECKS = (*physics.PARTS, "memory capacity", "request rate above capacity")
MEMORY_CODE, OVERLOAD_CODE = len(physics.PARTS), len(physics.PARTS) + 1


def expand(scen: Columns) -> Columns:
    """One row per scenario and candidate TP (every TP_OPTIONS entry where tp is auto)."""
    auto = scen.i_tp == AUTO
    n_opt = len(TP_OPTIONS)
    reps = np.where(auto, n_opt, 1)
    index = np.repeat(np.arange(scen.n), reps)
    offset = np.arange(len(index)) - np.repeat(np.cumsum(reps) - reps, reps)
    options = np.asarray(TP_OPTIONS, dtype=np.float64)
    tp = np.where(auto[index], options[np.minimum(offset, n_opt - 1)], scen.i_tp[index]).astype(np.float64)
    cand = scen.take(index)
    pp = cand.i_pp.astype(np.float64)
    tp_p = np.where(cand.i_prefill_tp == AUTO, tp, cand.i_prefill_tp)
    disagg = cand.i_disagg == 1
    decode_gpus = np.where(disagg, cand.i_gpus - cand.i_prefill_gpus, cand.i_gpus)
    heads_split = np.where(cand.i_dpa == 1, 1.0, tp)
    checks = [
        (1, cand.has_infer == 0),
        (2, np.mod(cand.i_heads, heads_split) != 0),
        (3, tp * pp > decode_gpus),
        (4, pp > cand.i_layers),
        (5, (cand.i_ep > 0) & (np.mod(tp, np.maximum(cand.i_ep, 1.0)) != 0) & (cand.i_experts > 0)),
        (6, disagg & (tp_p * pp > cand.i_prefill_gpus)),
    ]
    reason = np.zeros(cand.n, dtype=np.int64)
    for code, bad in reversed(checks):
        reason = np.where(bad, code, reason)
    valid = np.bincount(index, weights=(reason == 0), minlength=scen.n) > 0
    keep = np.flatnonzero((reason == 0) | ~valid[index] | ~auto[index])
    out = scen.take(index[keep])
    out.tp, out.pp, out.tp_p = tp[keep], pp[keep], tp_p[keep]
    out.scenario_row, out.searched, out.reason = index[keep], auto[index][keep], reason[keep]
    out.decode_gpus = decode_gpus[keep]
    return out


def _load(c: Columns, lam, limit, role: str) -> Load:
    """A pool's load per replica. role "prefill": prompts only (one output token); "decode": the KV arrives,
    no prompt to compute; "both": a colocated replica. Prefix-cache hits are not recomputed."""
    prompt = c.i_prompt * (1.0 - c.i_hit)
    output = c.i_output
    if role == "prefill":
        output = 0.0 * output + 1.0
    elif role == "decode":
        prompt = 0.0 * prompt + 1.0
    return Load(
        lam,
        prompt,
        output,
        c.i_chunk,
        np.maximum(limit, 1.0),
        physics.accepted_tokens(c) if role != "prefill" else 1.0 + 0.0 * lam,
        c.i_prompt_m2,
        c.i_output_m2,
    )


def _preemption(c: Columns, mem: dict, step, role: str) -> Preemption | None:
    """A paged KV cache overflows when the requests in the system hold more than it has (docs/model.md,
    "Preemption"); a preempted request rebuilds its KV: recomputed (its context as a prompt) or, with
    kv_offload = "host", copied out and back over the host link."""
    if role == "prefill" or not (c.i_paged == 1).any():
        return None
    occ = mem["occupancy_tokens"]
    per_token = mem["kv_seq_mean"] / np.maximum(occ, 1.0)  # bytes per token per GPU
    capacity = np.where(c.i_paged == 1, mem["room_bytes"] / np.maximum(per_token, 1e-300), np.inf)
    # Variance of one request's occupancy: its prompt's spread, and its age uniform over its output (a
    # lognormal output of E[O^2] = o_m2 E[O]^2: E[(U O)^2] = o_m2 E[O]^2 / 3).
    var = (c.i_prompt**2) * (c.i_prompt_m2 - 1.0) + c.i_output**2 * (c.i_output_m2 / 3.0 - 0.25 * c.i_output_m2**2)
    recompute = occ * (step.g_k + step.a_k)
    swap = 2.0 * occ * per_token * c.tp * c.pp / (c.host_link_gb_s * 1e9)
    rebuild = np.where(c.i_offload == 1, swap, recompute)
    return Preemption(capacity, occ, np.maximum(var, 0.0) + occ**2, rebuild)


class Pool:
    """One pool's physics for candidate rows: memory, iteration model (and its parts), replicas, the load at
    rate 0 and the saturation rate per replica."""

    def __init__(self, c: Columns, cat: Catalog, role: str, tp, gpus):
        self.role = role
        self.tp = tp
        self.mem = physics.memory(c, cat, tp, c.pp)
        self.replicas = np.floor(gpus / (tp * c.pp))
        self.limit = np.minimum(c.i_concurrency, self.mem["max_batch"])
        self.step, self.parts = physics.step_model(c, cat, tp, c.pp, np.maximum(self.limit, 1.0))
        self.load0 = _load(c, np.zeros(c.n), self.limit, role)
        self.lam_sat = saturation(self.step, self.load0)["lam"]
        self.preempt = _preemption(c, self.mem, self.step, role)

    def rows(self, index) -> Pool:
        out = object.__new__(Pool)
        out.role = self.role
        out.tp = self.tp[index]
        out.mem = {k: v[index] for k, v in self.mem.items()}
        out.replicas, out.limit, out.lam_sat = self.replicas[index], self.limit[index], self.lam_sat[index]
        out.step, out.parts, out.load0 = self.step.rows(index), physics.rows(self.parts, index), self.load0.rows(index)
        out.preempt = None if self.preempt is None else self.preempt.rows(index)
        return out


class Plans:
    """Every candidate's pools: `main` (colocated replicas, or the decode pool where disaggregated) and
    `prefill` (the prefill pool of disaggregated rows, computed for those rows only; `pre_rows` indexes them)."""

    prefill: Pool | None

    def __init__(self, c: Columns, cat: Catalog):
        self.disagg = c.i_disagg == 1
        both = Pool(c, cat, "both", c.tp, c.decode_gpus)
        self.pre_rows = np.flatnonzero(self.disagg)
        if len(self.pre_rows):
            dec = Pool(c, cat, "decode", c.tp, c.decode_gpus)
            sub = c.take(self.pre_rows)
            self.prefill = Pool(sub, cat, "prefill", sub.tp_p, sub.i_prefill_gpus)
            self.main = _merge(both, dec, self.disagg)
        else:
            self.main, self.prefill = both, None

    def rows(self, index) -> Plans:
        out = object.__new__(Plans)
        out.disagg = self.disagg[index]
        out.main = self.main.rows(index)
        if self.prefill is not None:
            where = np.full(len(self.disagg), -1)
            where[self.pre_rows] = np.arange(len(self.pre_rows))
            picked = where[index]
            out.pre_rows = np.flatnonzero(picked >= 0)
            out.prefill = self.prefill.rows(picked[picked >= 0]) if len(out.pre_rows) else None
        else:
            out.pre_rows, out.prefill = np.empty(0, dtype=np.int64), None
        return out


def _merge(a: Pool, b: Pool, use_b: np.ndarray) -> Pool:
    """Pool a's figures, b's where use_b (both computed for every row)."""
    out = object.__new__(Pool)
    out.role = "mixed"

    def pick(x, y) -> np.ndarray:
        return np.where(use_b, y, x)

    out.tp = a.tp
    out.mem = {k: pick(a.mem[k], b.mem[k]) for k in a.mem}
    out.replicas, out.limit, out.lam_sat = (
        pick(a.replicas, b.replicas),
        pick(a.limit, b.limit),
        pick(a.lam_sat, b.lam_sat),
    )
    out.step = type(a.step)(**{f: pick(getattr(a.step, f), getattr(b.step, f)) for f in a.step.__dataclass_fields__})
    out.parts = {k: pick(a.parts[k], b.parts[k]) for k in a.parts}
    fields = a.load0.__dataclass_fields__
    out.load0 = Load(*(pick(np.asarray(getattr(a.load0, f)), np.asarray(getattr(b.load0, f))) for f in fields))
    if a.preempt is None and b.preempt is None:
        out.preempt = None
    else:
        base = a.preempt if a.preempt is not None else b.preempt
        other = b.preempt if b.preempt is not None else a.preempt
        assert base is not None  # one of the two has preemption (the branch above)
        out.preempt = Preemption(*(pick(getattr(base, f), getattr(other, f)) for f in base.__dataclass_fields__))
    return out


def _kv_transfer_s(c: Columns) -> np.ndarray:
    """Seconds from a prompt's last prefill iteration to the decode replica holding its KV cache: every layer's
    KV of the prompt, each prefill GPU sending its share, over the scale-up fabric when a prefill and a decode
    replica fit in one scale-up domain (placed side by side), else over the GPUs' NICs; plus the handshake's
    fixed cost (fitted, serving_pd_handshake_ms)."""
    kv_bytes = physics.kv_bytes_per_seq(c, c.i_prompt, c.i_layers)
    inside = (c.tp_p + c.tp) * c.pp <= c.su_domain
    per_gpu = np.where(inside, c.su_gb_s * c.su_eff, c.nics * c.nic_gb_s * c.so_eff / c.gpn)
    return kv_bytes / (c.tp_p * c.pp * per_gpu * 1e9) + c.k_serving_pd_handshake_ms * 1e-3


def _host_load_s(c: Columns) -> np.ndarray:
    """Seconds to read a request's prefix-cache hits held in host memory back over the host link."""
    hits = c.i_prompt * c.i_hit * c.i_host_hit
    kv_bytes = physics.kv_bytes_per_seq(c, hits, c.i_layers)
    return kv_bytes / (c.tp * c.pp * c.host_link_gb_s * 1e9)


def _plan_figures(c: Columns, cat: Catalog) -> Plans:
    """Memory, capacity and a cheap latency estimate for every candidate (enough to choose among them)."""
    plans = Plans(c, cat)
    main = plans.main
    fits = main.mem["fits_memory"]
    cap_rps = main.lam_sat * main.replicas
    if plans.prefill is not None:
        rows, pre = plans.pre_rows, plans.prefill
        fits[rows] &= pre.mem["fits_memory"]
        cap_rps[rows] = np.minimum(cap_rps[rows], pre.lam_sat * pre.replicas)
    c.reason = np.where((c.reason == 0) & ~fits, 9, c.reason)
    c.mem_needed_gb, c.mem_usable_gb = main.mem["mem_needed_gb"], main.mem["mem_usable_gb"]
    c.capacity_rps = cap_rps
    c.capacity_tps = cap_rps * c.i_output
    online = c.i_rate > 0
    c.stable = online & (c.i_rate < cap_rps)
    lam = np.where(c.stable, c.i_rate / np.maximum(main.replicas, 1.0), 0.0)
    tau = mean_point(main.step, main.load0.at(lam))["tau"]
    c.e2e_estimate = np.where(c.stable, (c.i_output + 1.0) * tau, np.inf)
    return plans


def _mean_e2e(c: Columns, plans: Plans) -> None:
    """The mean end-to-end latency, TTFT + (O - 1) TPOT, of every searched candidate that keeps up with the
    offered rate, computed as the results report it (queueing.latency at the offered rate; disaggregated: the
    prefill pool's TTFT, the KV transfer and the decode pool's wait). The plan search ranks on it: the
    iteration-length estimate of `_plan_figures` alone (no queueing) chose TP4 at 4.5 s over TP8 at 4.3 s.
    Explicit plans keep the estimate (one candidate: nothing to rank)."""
    rows = np.flatnonzero(c.searched & c.stable & (c.reason == 0))
    if not len(rows):
        return
    sub, p = c.take(rows), plans.rows(rows)
    lam = sub.i_rate / np.maximum(p.main.replicas, 1.0)
    lat = latency(p.main.step, p.main.load0.at(lam), p.main.preempt)
    ttft = lat.ttft_mean() + _host_load_s(sub)
    if p.prefill is not None and len(p.pre_rows):
        pr = p.pre_rows
        pre = latency(p.prefill.step, p.prefill.load0.at(sub.i_rate[pr] / np.maximum(p.prefill.replicas, 1.0)))
        ttft[pr] = pre.ttft_mean() + _kv_transfer_s(sub.take(pr)) + lat.queue_mean()[pr] + _host_load_s(sub)[pr]
    e2e = ttft + np.maximum(sub.i_output - 1.0, 0.0) * lat.tpot_mean_all()
    c.e2e_estimate[rows] = np.where(np.isfinite(e2e), e2e, np.inf)


def _select(c: Columns, n_scenarios: int, slo_tps: np.ndarray) -> np.ndarray:
    """Per scenario, the first candidate in the order: runs, keeps up (online without limits), key (most
    tokens/s within the limits; offline or overloaded, the most capacity; else the lowest mean end-to-end
    latency), with limits then keeps up and the lowest mean end-to-end latency, closest to fitting, smaller
    TP. One lexicographic sort (numpy; no Python loop)."""
    runs = c.reason == 0
    has_slo = np.isfinite(c.i_ttft_limit_ms) | np.isfinite(c.i_tpot_limit_ms)
    offline = c.i_rate <= 0
    unstable = ~has_slo & ~offline & ~c.stable
    key = np.where(has_slo, -slo_tps, np.where(offline | unstable, -c.capacity_tps, c.e2e_estimate))
    key = np.nan_to_num(key, nan=np.inf)
    # Among plans equal within the limits (all of them where none meets a limit), the one that keeps up with
    # the offered rate, then the lowest mean end-to-end latency.
    slo_unstable = has_slo & ~offline & ~c.stable
    slo_e2e = np.where(has_slo & ~offline, np.nan_to_num(c.e2e_estimate, nan=np.inf), 0.0)
    over = np.nan_to_num(c.mem_needed_gb - c.mem_usable_gb, nan=np.inf)
    order = np.lexsort((c.tp, over, slo_e2e, slo_unstable, key, unstable, ~runs, c.scenario_row))
    sorted_rows = c.scenario_row[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = sorted_rows[1:] != sorted_rows[:-1]
    rows = np.full(n_scenarios, -1, dtype=np.int64)
    rows[sorted_rows[first]] = order[first]
    return rows


_COLUMNS: dict[str, np.dtype] = {}


def serve(scen: Columns, cat: Catalog) -> dict[str, np.ndarray]:
    """Serving results per scenario (NaN where a figure does not apply). Only scenarios with a serving
    workload are computed; the others get the empty values (NaN, False, -1)."""
    rows = np.flatnonzero(scen.has_infer == 1)
    # Rows that do not run carry inf/NaN through the arithmetic before they are masked; no warnings.
    with np.errstate(all="ignore"):
        if len(rows):
            part = _serve(scen.take(rows), cat)
            _COLUMNS.update((k, v.dtype) for k, v in part.items())
        else:
            if not _COLUMNS:  # the result's columns, learnt once from any one row
                _COLUMNS.update((k, v.dtype) for k, v in _serve(scen.take(np.arange(1)), cat).items())
            part = {k: np.empty(0, dtype=dtype) for k, dtype in _COLUMNS.items()}
    if len(rows) == scen.n:
        return part
    out = {}
    for key, values in part.items():
        kind = values.dtype.kind
        empty = False if kind == "b" else (-1 if kind in "iu" else (None if kind == "O" else np.nan))
        full = np.full(scen.n, empty, dtype=values.dtype if kind in "biuO" else np.float64)
        if len(rows):
            full[rows] = values
        out[key] = full
    return out


def _serve(scen: Columns, cat: Catalog) -> dict[str, np.ndarray]:
    cand = expand(scen)
    plans = _plan_figures(cand, cat)
    _mean_e2e(cand, plans)
    counts = np.bincount(cand.scenario_row, minlength=scen.n)
    slo_rps = rates_within_limits(cand, plans, scen.n)
    slo_tps = slo_rps * cand.i_output
    best = _select(cand, scen.n, np.nan_to_num(slo_tps, nan=-1.0))
    return _results(cand.take(best), plans.rows(best), counts, slo_rps[best], slo_tps[best], cat)


def rates_within_limits(cand: Columns, plans: Plans, n_scenarios: int) -> np.ndarray:
    """Highest request rate within the latency limits, per candidate plan (NaN: no limits, or not searched).

    A plan's rate within limits is at most its capacity, so each scenario's highest-capacity plan is searched
    first and then only the plans whose capacity could beat what that one reached."""
    out = np.full(cand.n, np.nan)
    limits = np.isfinite(cand.i_ttft_limit_ms) | np.isfinite(cand.i_tpot_limit_ms)
    runs = limits & (cand.reason == 0)
    if not runs.any():
        return out
    todo = np.flatnonzero(runs)
    if len(todo) <= SEARCH_ALL_AT_ONCE:
        # Few plans: one search over all of them costs less than two (a search's cost is its calls).
        out[todo] = fleet_rate_within(cand.take(todo), plans.rows(todo))
        return out
    lead = (
        pl.DataFrame({"scenario": cand.scenario_row, "row": np.arange(cand.n), "runs": runs, "cap": cand.capacity_tps})
        .filter(pl.col("runs"))
        .sort(["scenario", "cap"], descending=[False, True])
        .unique("scenario", keep="first")["row"]
        .to_numpy()
    )
    out[lead] = fleet_rate_within(cand.take(lead), plans.rows(lead))
    reached = np.full(n_scenarios, np.inf)
    reached[cand.scenario_row[lead]] = out[lead] * cand.i_output[lead]
    rest = np.flatnonzero(runs & np.isnan(out) & (cand.capacity_tps > reached[cand.scenario_row]))
    if len(rest):
        out[rest] = fleet_rate_within(cand.take(rest), plans.rows(rest))
    return out


def fleet_rate_within(c: Columns, plans: Plans, ttft_limit_ms=None, tpot_limit_ms=None) -> np.ndarray:
    """The fleet's highest request rate whose p99 TTFT and TPOT meet the limits (default: each row's own) for
    the candidate plans in `c`. Colocated: replicas x the per-replica rate; disaggregated: the smaller of the
    prefill pool's rate within the TTFT limit (less the KV transfer) and the decode pool's within the TPOT
    limit."""
    lam, lam_p = pool_rates_within(c, plans, ttft_limit_ms, tpot_limit_ms)
    rate = lam * plans.main.replicas
    if plans.prefill is not None:
        rows = plans.pre_rows
        rate[rows] = np.minimum(lam_p[rows] * plans.prefill.replicas, rate[rows])
    return rate


def pool_rates_within(c: Columns, plans: Plans, ttft_limit_ms=None, tpot_limit_ms=None):
    """Per replica, the highest request rate within the p99 limits (default: each row's own): (the main
    pool's, the prefill pool's (NaN where not disaggregated)); 0 where even a lone request misses a limit.
    Colocated replicas meet both limits. Disaggregated, the TTFT is the prefill pool's, the KV transfer and the
    decode pool's wait for a slot: the decode replica meets the TPOT limit and keeps its own p99 wait within
    the TTFT limit less the transfer and a lone prompt's prefill; the prefill replica then meets the TTFT limit
    less the transfer and the decode pool's mean wait at its rate (so the two together stay within it)."""
    ttft = (c.i_ttft_limit_ms if ttft_limit_ms is None else ttft_limit_ms) * 1e-3
    tpot = (c.i_tpot_limit_ms if tpot_limit_ms is None else tpot_limit_ms) * 1e-3
    ttft, tpot = np.broadcast_to(ttft, (c.n,)), np.broadcast_to(tpot, (c.n,))
    main = plans.main
    budget = ttft - _host_load_s(c)
    lam_p = np.full(c.n, np.nan)
    if plans.prefill is None:
        return max_rate_within(main.step, main.load0, budget, tpot, main.preempt), lam_p
    rows, pre = plans.pre_rows, plans.prefill
    after = budget[rows] - _kv_transfer_s(c.take(rows))
    lone = latency(pre.step, pre.load0, None).ttft_quantile(0.99)
    decode_budget = budget.copy()
    decode_budget[rows] = after - lone
    lam = max_rate_within(main.step, main.load0, decode_budget, tpot, main.preempt)
    wait = latency(main.step.rows(rows), main.load0.rows(rows).at(lam[rows]), None).queue_mean()
    lam_p[rows] = max_rate_within(pre.step, pre.load0, after - np.nan_to_num(wait), np.full(len(rows), np.nan))
    return lam, lam_p


def _pool_state(pool: Pool, c: Columns, live: np.ndarray, closed_rate: np.ndarray):
    """A pool at its operating point: the offered rate where it keeps up, else (offline or overloaded) the
    closed loop's rate (`closed_rate`, the fleet's). Returns the latency, the iteration's parts, its power
    while running, and the share of time it runs."""
    lam = np.where(live, c.i_rate, closed_rate) / np.maximum(pool.replicas, 1.0)
    lat = latency(pool.step, pool.load0.at(lam), pool.preempt, closed_loop=~live)
    k_op = np.sum(lat.iteration_weight * lat.iteration_k, axis=1)
    parts = physics.step_parts(pool.parts, pool.step, lat.n, k_op)
    run_w = physics.power_w(c, parts)
    busy = np.where(live, lat.busy, 1.0)
    return lat, parts, run_w, busy


# The closed loop's rate is found to within this share of capacity (bisection, for many rows, in 10 passes; 8
# rates a pass, for a row or two, in 4). Before, 2 to 7 rates a pass stopped after 3 passes: 1.6-3.7%.
CLOSED_LOOP_RESOLUTION = 1e-3


def _closed_loop_rate(r: Columns, plans: Plans, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rate at which a closed loop's requests see the fleet (offline: every replica holding its batch limit
    of B requests, a new one admitted as one leaves). By the arrival theorem of closed queueing networks
    (Lavenberg & Reiser 1980) a request arriving to a loop of B sees it as it is with B - 1 others: the open
    system whose population R x (TTFT + (O - 1) TPOT) is (B - 1) x replicas, found by a k-ary search below
    capacity (mean latencies from `latency` without slot waiting). NaN outside `rows`."""
    out = np.full(r.n, np.nan)
    loop_rate = np.full(r.n, np.nan)
    if not len(rows):
        return out, loop_rate
    sub, p = r.take(rows), plans.rows(rows)
    cap = sub.capacity_rps * 0.999
    population = np.maximum(p.main.limit - 1.0, 0.0) * p.main.replicas
    points = int(np.clip(64 // len(rows), 1, 8))
    frac = np.arange(1, points + 1) / (points + 1.0)
    idx = np.repeat(np.arange(len(rows)), points)
    main = p.main.rows(idx)
    pre = p.prefill.rows(np.repeat(np.arange(len(p.pre_rows)), points)) if p.prefill is not None else None
    pre_at = np.flatnonzero(np.repeat(p.disagg, points))
    transfer = _kv_transfer_s(sub.take(p.pre_rows)) if len(p.pre_rows) else None
    output = np.repeat(sub.i_output, points)
    lo, hi = np.zeros(len(rows)), cap.copy()
    # Until every bracket is within CLOSED_LOOP_RESOLUTION of capacity, however many rows share the search:
    # near capacity the latencies rise steeply, so a coarse bracket would move them (and a row's figures
    # would depend on the rows evaluated with it).
    for _ in range(64):
        if not np.any(hi - lo > CLOSED_LOOP_RESOLUTION * cap):
            break
        rate = (lo[:, None] + (hi - lo)[:, None] * frac[None, :]).ravel()
        lat = latency(main.step, main.load0.at(rate / np.maximum(main.replicas, 1.0)), main.preempt, closed_loop=True)
        ttft = lat.ttft_mean()
        if pre is not None and transfer is not None:
            lp = latency(pre.step, pre.load0.at(rate[pre_at] / np.maximum(pre.replicas, 1.0)), None, closed_loop=True)
            ttft[pre_at] = lp.ttft_mean() + np.repeat(transfer, points)
        e2e = np.nan_to_num(ttft + np.maximum(output - 1.0, 0.0) * lat.tpot_mean_all(), nan=np.inf)
        below = (rate * e2e <= np.repeat(population, points)).reshape(len(rows), points)
        count = below.sum(axis=1)  # the population rises with the rate
        grid = rate.reshape(len(rows), points)
        at = np.arange(len(rows))
        new_lo = np.where(count > 0, grid[at, np.maximum(count - 1, 0)], lo)
        hi = np.where(count < points, grid[at, np.minimum(count, points - 1)], hi)
        lo = new_lo
    out[rows] = np.where(population > 0, 0.5 * (lo + hi), 0.0)
    # The loop's own rate: its B requests each take TTFT + (O - 1) TPOT (Little's law), at most capacity.
    lat0 = latency(p.main.step, p.main.load0.at(np.zeros(len(rows))), None, closed_loop=True)
    e2e0 = lat0.ttft_mean() + np.maximum(sub.i_output - 1.0, 0.0) * lat0.tpot_mean_all()
    if p.prefill is not None:
        lp0 = latency(p.prefill.step, p.prefill.load0.at(np.zeros(len(p.pre_rows))), None, closed_loop=True)
        e2e0[p.pre_rows] += lp0.ttft_mean() + transfer - lat0.ttft_mean()[p.pre_rows]
    limit = p.main.limit
    single = p.main.replicas / np.maximum(e2e0, 1e-300)
    loop = np.where(limit > 1, out[rows] * limit / np.maximum(limit - 1.0, 1.0), single)
    loop_rate[rows] = np.minimum(np.where(np.isfinite(loop), loop, cap), cap)
    return out, loop_rate


# Shares of capacity on the way to it, where an overloaded fleet's TPOT is also taken (see below): denser
# towards capacity, where the TPOT spread peaks, then on to the limit (1 - 1e-4 ... SATURATED), where the
# figures settle; then REFINE passes around each figure's highest point.
APPROACH = tuple(1.0 - 0.5 * (0.002 ** (k / 15.0)) for k in range(16)) + tuple(1.0 - 10.0**-k for k in range(4, 10))
REFINE = 3


def _tpot_past_capacity(main: Pool, r: Columns, rows: np.ndarray, p50, p99, mean):
    """An overloaded fleet's TPOT (mean, p50, p99): the highest of the saturation point's and those on the way
    to capacity. The approximation's TPOT spread peaks just below saturation (batches fluctuate less once
    every slot stays taken), and offering more requests than the fleet can serve must never make its tokens
    come faster than at any load it keeps up with. The peak is found on a grid of loads (APPROACH), then
    refined around the grid's best point, for each figure on its own."""
    p50, p99, mean = p50.copy(), p99.copy(), mean.copy()
    n = len(rows)
    pre = main.preempt

    def at(shares: np.ndarray) -> tuple[np.ndarray, ...]:
        k = shares.shape[1]
        idx = np.repeat(rows, k)
        lam = shares.ravel() * r.capacity_rps[idx] / np.maximum(main.replicas[idx], 1.0)
        lat = latency(main.step.rows(idx), main.load0.rows(idx).at(lam), None if pre is None else pre.rows(idx),
                      closed_loop=True)  # fmt: skip
        return tuple(
            np.nan_to_num(v, nan=-np.inf).reshape(n, k) for v in (*lat.tpot_quantiles((0.5, 0.99)), lat.tpot_mean_all())
        )

    grid = np.broadcast_to(np.asarray(APPROACH), (n, len(APPROACH)))
    values = at(grid)
    best = [v.max(axis=1) for v in values]
    rows_n = np.arange(n)
    # Each figure's own peak, bracketed by the grid points beside its highest; the three brackets are
    # refined together (one latency call a pass, each figure read at its own points).
    top = [v.argmax(axis=1) for v in values]
    lo = [grid[rows_n, np.maximum(t - 1, 0)] for t in top]
    hi = [grid[rows_n, np.minimum(t + 1, grid.shape[1] - 1)] for t in top]
    inner = np.arange(1, 8) / 8.0
    for _ in range(REFINE):
        points = [lo[q][:, None] + (hi[q] - lo[q])[:, None] * inner[None, :] for q in range(3)]
        found_all = at(np.concatenate(points, axis=1))
        for q in range(3):
            found = found_all[q][:, 7 * q : 7 * (q + 1)]
            best[q] = np.maximum(best[q], found.max(axis=1))
            centre = points[q][rows_n, found.argmax(axis=1)]
            step = (hi[q] - lo[q]) / 8.0
            lo[q], hi[q] = np.maximum(centre - step, 0.0), np.minimum(centre + step, SATURATED)
    for out, highest in ((p50, best[0]), (p99, best[1]), (mean, best[2])):
        out[rows] = np.fmax(out[rows], np.where(np.isfinite(highest), highest, np.nan))
    # Each figure's peak is found to the grid's resolution on its own: where the spread is nil (a few output
    # tokens) the p99's can land a hair below the median's.
    p99[rows] = np.fmax(p99[rows], p50[rows])
    return p50, p99, mean


def _ttft_quantiles(lat, medians: bool):
    """p50 and p99 TTFT in one pass (p50 NaN where not wanted: the fleet search needs only the p99)."""
    if medians:
        return lat.ttft_quantiles((0.5, 0.99))
    (p99,) = lat.ttft_quantiles((0.99,))
    return np.full_like(p99, np.nan), p99


LATENCY_BAND = ("ttft", "ttft_p99", "tpot", "tpot_p99")


def latency_band(
    pool: Pool,
    r: Columns,
    rows: np.ndarray,
    points: dict[str, np.ndarray],
    overloaded: np.ndarray,
    prefill: tuple[Pool, np.ndarray, np.ndarray] | None = None,
) -> dict:
    """The latencies if the replica's capacity were off by its regime's error band b (infer_band_pct, the
    cross-validated throughput error): the same replica at rate lam/(1 + b) (capacity b higher: the low end)
    and lam/(1 - b) (b lower: the high end), both in one latency call. Near saturation a small capacity error
    moves a tail by any factor (docs/model.md, "Latency bands"); this says by how much. Where an end's rate
    reaches saturation the queue has no bound: its TTFT is NaN (beside a finite low end: "unbounded"; at both
    ends: no band) and its TPOT the saturation point's. Each end is clamped to hold the point estimate
    (`points`: ttft, ttft_p99, tpot, tpot_p99 at the offered rate, seconds; `overloaded`: the offered rate
    is past capacity, per row of `r`): at light load the TPOT wobbles by a few percent either way with the
    rate. Seconds; NaN outside `rows` (online rows with a band, overloaded ones included).

    Disaggregated rows pass `prefill` (the prefill pool, each row's position in it, the KV transfer time): both
    pools' capacity is off by the same b, so the TTFT is the prefill pool's at the shifted rate, the transfer
    and the decode pool's wait for a slot at its shifted rate, as for the point estimate; past either pool's
    saturation it is unbounded."""
    out = {f"{name}_{end}": np.full(r.n, np.nan) for name in LATENCY_BAND for end in ("low", "high")}
    b = r.infer_band_pct[rows] / 100.0
    has = np.isfinite(b) & (b > 0.0) & (b < 1.0)
    rows, b = rows[has], b[has]
    if not len(rows):
        return out
    both = np.concatenate([rows, rows])
    sub = pool.rows(both)
    lam = r.i_rate[both] / np.maximum(sub.replicas, 1.0)
    rate = lam / np.concatenate([1.0 + b, 1.0 - b])
    past = rate >= SATURATED * sub.lam_sat
    lat = latency(sub.step, sub.load0.at(np.where(past, SATURATED * sub.lam_sat, rate)), sub.preempt)
    # The figures' own three grid passes: where a rare long wait stretches the bracket, two passes leave the
    # median a seventeenth of it wide (a 5.6 ms TTFT read as 95 ms).
    ttft50, ttft99 = lat.ttft_quantiles((0.5, 0.99))
    band50, band99 = lat.tpot_quantiles((0.5, 0.99))
    if prefill is not None:
        pool_p, where, transfer = prefill
        pre = pool_p.rows(where[both])
        rate_p = r.i_rate[both] / np.maximum(pre.replicas, 1.0) / np.concatenate([1.0 + b, 1.0 - b])
        past_p = rate_p >= SATURATED * pre.lam_sat
        lat_p = latency(pre.step, pre.load0.at(np.where(past_p, SATURATED * pre.lam_sat, rate_p)), pre.preempt)
        p50, p99 = lat_p.ttft_quantiles((0.5, 0.99))
        wait_d = lat.queue_mean()
        ttft50, ttft99 = p50 + transfer[both] + wait_d, p99 + transfer[both] + wait_d
        ttft_past = past | past_p
    else:
        ttft_past = past
    # Past saturation: where the offered rate overloads the fleet already, the end is the point itself (NaN
    # here, filled by the clamps below: the overloaded fleet's TPOT); where only the high end's rate does, it
    # is the saturation point's TPOT. The point estimate of an overloaded fleet searches the approach to
    # capacity for its highest TPOT (up to ~10% more); a band end does not, which keeps a frame of rows near
    # saturation as fast as one far from it (a search costs ~1.5 ms a row).
    band50[past & overloaded[both]], band99[past & overloaded[both]] = np.nan, np.nan
    extra = _host_load_s(r.take(both))
    figures = {
        "ttft": np.where(ttft_past, np.nan, ttft50 + extra),
        "ttft_p99": np.where(ttft_past, np.nan, ttft99 + extra),
        "tpot": band50,
        "tpot_p99": band99,
    }
    n = len(rows)
    for name, values in figures.items():
        point = points[name][rows]
        # fmin / fmax keep the end where the point is missing (an overloaded fleet has no TTFT) and the point
        # where the end is (a TPOT past saturation); a TTFT's missing high end stays missing: unbounded.
        out[f"{name}_low"][rows] = np.fmin(values[:n], point)
        high = values[n:]
        unbounded = np.isnan(high) if name.startswith("ttft") else np.zeros(n, dtype=bool)
        out[f"{name}_high"][rows] = np.where(unbounded, np.nan, np.fmax(high, point))
    return out


def _results(
    r: Columns, plans: Plans, counts, slo_rps, slo_tps, cat: Catalog, medians: bool = True
) -> dict[str, np.ndarray]:
    runs = (r.reason == 0) & (r.has_infer == 1)
    online = r.i_rate > 0
    disagg = plans.disagg
    main = plans.main
    live = runs & r.stable
    closed_rate, loop_rate = _closed_loop_rate(r, plans, np.flatnonzero(runs & ~live & ~online))
    # An overloaded online fleet runs at its capacity with every slot taken and a queue that only grows: its
    # iterations are those at the saturation point (just below it, where the approximation holds), so the
    # TPOT never falls as the offered rate passes capacity.
    overloaded_rows = runs & online & ~r.stable
    closed_rate = np.where(overloaded_rows, SATURATED * r.capacity_rps, closed_rate)
    lat, parts, run_w, busy = _pool_state(main, r, live, closed_rate)
    extra = _host_load_s(r)
    ttft50, ttft99 = (x + extra for x in _ttft_quantiles(lat, medians))
    ttft_mean, queue = lat.ttft_mean() + extra, lat.queue_mean()
    g_main = main.replicas * main.tp * r.pp
    gpus = r.i_gpus.astype(float)
    gpu_w = g_main * (busy * run_w + (1.0 - busy) * r.idle_w)
    in_replicas = g_main.copy()
    busy_gpus = busy * g_main
    kv_transfer = np.full(r.n, np.nan)
    prefill_w = np.full(r.n, np.nan)
    prefill_replicas = np.full(r.n, np.nan)
    if plans.prefill is not None:
        rows, pre = plans.pre_rows, plans.prefill
        sub = r.take(rows)
        lat_p, _, run_p, busy_p = _pool_state(pre, sub, live[rows], closed_rate[rows])
        transfer = _kv_transfer_s(sub)
        kv_transfer[rows] = transfer
        # TTFT: the prefill pool's, the KV transfer, and the decode pool's mean wait for a slot.
        wait_d = lat.queue_mean()[rows]
        p50, p99 = _ttft_quantiles(lat_p, medians)
        ttft50[rows] = p50 + transfer + wait_d + extra[rows]
        ttft99[rows] = p99 + transfer + wait_d + extra[rows]
        ttft_mean[rows] = lat_p.ttft_mean() + transfer + wait_d + extra[rows]
        queue[rows] = lat_p.queue_mean() + wait_d
        g_p = pre.replicas * pre.tp * sub.pp
        gpu_w[rows] += g_p * (busy_p * run_p + (1.0 - busy_p) * sub.idle_w)
        in_replicas[rows] += g_p
        busy_gpus[rows] += busy_p * g_p
        prefill_w[rows] = run_p
        prefill_replicas[rows] = pre.replicas
    (tpot50, tpot99), tpot_mean = lat.tpot_quantiles((0.5, 0.99)), lat.tpot_mean_all()
    # An overloaded online fleet's queue grows without bound: no TTFT figure.
    overloaded = runs & online & ~r.stable
    if overloaded.any():
        tpot50, tpot99, tpot_mean = _tpot_past_capacity(main, r, np.flatnonzero(overloaded), tpot50, tpot99, tpot_mean)
    for x in (ttft50, ttft99, ttft_mean, queue):
        x[overloaded] = np.nan
    points = {"ttft": ttft50, "ttft_p99": ttft99, "tpot": tpot50, "tpot_p99": tpot99}
    band = latency_band(main, r, np.flatnonzero(runs & online & ~disagg), points, overloaded) if medians else {}
    disagg_rows = np.flatnonzero(runs & online & disagg)
    if medians and len(disagg_rows) and plans.prefill is not None:
        where = np.full(r.n, -1, dtype=np.int64)
        where[plans.pre_rows] = np.arange(len(plans.pre_rows))
        split = latency_band(main, r, disagg_rows, points, overloaded, (plans.prefill, where, kv_transfer))
        band = {k: np.where(disagg, split[k], v) for k, v in band.items()}
    # Online: the offered rate; offline: the closed loop's; overloaded: capacity.
    served_rps = np.where(live, r.i_rate, np.where(online, r.capacity_rps, np.nan_to_num(loop_rate, nan=0.0)))
    tokens_per_s = served_rps * r.i_output

    share = parts / np.maximum(parts.sum(axis=0), 1e-300)
    kind = np.argmax(parts, axis=0)
    kind = np.where(r.reason == 9, MEMORY_CODE, np.where(overloaded, OVERLOAD_CODE, kind))

    # Power and energy by phase: a serving GPU draws its iteration's power while its replica runs (physics.
    # power_w: decode-heavy iterations well below TDP, prompt-heavy ones near it) and idle power otherwise;
    # GPUs outside every replica idle; host parts per node (energy.host_node_w), fans and supplies
    # (energy.wall_factor); facility = IT x PUE.
    gpu_w = gpu_w + (gpus - in_replicas) * r.idle_w
    host_w = sum(energy.host_node_w(r, cat).values()) / r.gpn
    wall = energy.wall_factor(r, cat)
    facility_w = (gpu_w + gpus * host_w) * wall * r.pue
    peak_it_kw = gpus * (r.power_cap_w_eff + host_w) * wall / 1000.0
    per_token_s = 1.0 / np.maximum(tokens_per_s, 1e-300)
    wh_per_1k = facility_w * per_token_s * 1000.0 / 3600.0
    # The same basis as training (engine/cost.py): rental GPU-hours, or owned capex, facility and electricity.
    usd_per_hour = cost.serving_usd_per_hour(r, gpus, facility_w, peak_it_kw)
    usd_per_1m = usd_per_hour * per_token_s * 1e6 / 3600.0
    electricity_per_1m = facility_w / 1000.0 * r.usd_per_kwh * per_token_s * 1e6 / 3600.0
    ms = 1e3

    def keep(x):
        return np.where(runs, x, np.nan)

    has = r.has_infer == 1
    mem = main.mem
    # Pass/fail against the latency limits at the offered rate (None where no limit is set).
    lim_t, lim_p = r.i_ttft_limit_ms, r.i_tpot_limit_ms
    limited = runs & (np.isfinite(lim_t) | np.isfinite(lim_p))
    ok_t = ~np.isfinite(lim_t) | (ttft99 * ms <= lim_t)
    ok_p = ~np.isfinite(lim_p) | (tpot99 * ms <= lim_p)
    meets = np.where(limited, (ok_t & ok_p & ~overloaded).astype(float), np.nan)
    return {
        "infer_fits": runs,
        "infer_reason_code": np.where(has, r.reason, 1),
        "infer_tp": np.where(has, r.tp, np.nan),
        "infer_pp": np.where(has, r.pp, np.nan),
        "infer_ep": np.where(has, physics.layout(r, r.tp)["ep"], np.nan),
        "infer_replicas": np.where(has, main.replicas, np.nan),
        "infer_prefill_tp": np.where(has & disagg, r.tp_p, np.nan),
        "infer_prefill_replicas": np.where(has & disagg, prefill_replicas, np.nan),
        "infer_plans_searched": np.where(has, counts, 0),
        "infer_max_batch": np.where(has, mem["max_batch"], np.nan),
        "infer_batch_limit": keep(main.limit),
        "infer_batch_mean": keep(lat.n),
        "infer_paged": has & (r.i_paged == 1),
        "infer_mem_weights_gb": np.where(has, mem["w_bytes_gpu"] / physics.GIB, np.nan),
        "infer_mem_kv_gb": keep(
            np.where(r.i_paged == 1, mem["kv_seq_mean"], mem["kv_seq_full"]) * main.limit / physics.GIB
        ),
        "infer_mem_needed_gb": np.where(has, mem["mem_needed_gb"], np.nan),
        "infer_mem_usable_gb": np.where(has, mem["mem_usable_gb"], np.nan),
        "infer_hbm_gb": r.hbm_gb,
        "infer_ttft_ms": keep(ttft50) * ms,
        "infer_ttft_p99_ms": keep(ttft99) * ms,
        "infer_ttft_mean_ms": keep(ttft_mean) * ms,
        "infer_queue_ms": keep(queue) * ms,
        "infer_tpot_ms": keep(tpot50) * ms,
        "infer_tpot_p99_ms": keep(tpot99) * ms,
        "infer_tpot_mean_ms": keep(tpot_mean) * ms,
        **{f"infer_{k}_ms": v * ms for k, v in band.items()},
        "infer_accepted_tokens": keep(physics.accepted_tokens(r)),
        "infer_preempted_pct": keep(100.0 * lat.p_preempt),
        "infer_kv_transfer_ms": np.where(runs & disagg, kv_transfer * ms, np.nan),
        "infer_tokens_per_s": keep(tokens_per_s),
        # +/- % of the throughput figures: the cross-validated error of the regime (catalog/error_bands.toml).
        "infer_error_band_pct": keep(r.infer_band_pct),
        "infer_requests_per_s": keep(served_rps),
        "infer_capacity_tokens_per_s": keep(r.capacity_tps),
        "infer_capacity_rps": keep(r.capacity_rps),
        "infer_input_tokens_per_s_per_gpu": keep(served_rps * r.i_prompt / np.maximum(in_replicas, 1.0)),
        "infer_output_tokens_per_s_per_gpu": keep(tokens_per_s / np.maximum(in_replicas, 1.0)),
        "infer_decode_output_tokens_per_s_per_gpu": keep(tokens_per_s / np.maximum(g_main, 1.0)),
        "infer_offered_rps": np.where(has, r.i_rate, np.nan),
        "infer_utilization": keep(np.where(online, r.i_rate / np.maximum(r.capacity_rps, 1e-300), 1.0)),
        "infer_overloaded": overloaded,
        "infer_busy_pct": keep(100.0 * busy_gpus / np.maximum(in_replicas, 1.0)),
        "infer_idle_gpu_pct": keep(100.0 * (1.0 - busy_gpus / np.maximum(gpus, 1.0))),
        "infer_gpu_power_w": keep(gpu_w / np.maximum(gpus, 1.0)),
        "infer_gpu_run_power_w": keep(run_w),
        "infer_prefill_gpu_run_power_w": np.where(runs & disagg, prefill_w, np.nan),
        "infer_power_kw": keep(facility_w / 1000.0),
        "infer_energy_wh_per_1k_tokens": keep(wh_per_1k),
        "infer_cost_usd_per_1m_tokens": keep(usd_per_1m),
        "infer_ttft_limit_ms": np.where(has, lim_t, np.nan),
        "infer_tpot_limit_ms": np.where(has, lim_p, np.nan),
        "infer_meets_limits": meets,
        "infer_electricity_usd_per_1m_tokens": keep(electricity_per_1m),
        "infer_cost_usd_per_gpu_hour": keep(usd_per_hour / np.maximum(gpus, 1.0)),
        "infer_slo_rps": keep(slo_rps),
        "infer_slo_tokens_per_s": keep(slo_tps),
        "infer_bottleneck_code": np.where(has & (runs | (r.reason == 9)), kind, -1),
        "infer_bottleneck_share": keep(
            np.where(kind < len(physics.PARTS), share[np.minimum(kind, len(physics.PARTS) - 1), np.arange(r.n)], np.nan)
        ),
    }
