"""Serving: time to first token, time per output token, throughput, tail latency, idle share and energy.

    serve(scenario columns) = select(physics(expand TP candidates)) -> load and latency -> energy

Candidate tensor-parallel sizes are rows (like training's plans, engine/training/plans.py); `tp = "auto"` searches
TP_OPTIONS and keeps, per scenario: with latency limits, the plan that serves the most tokens/s within them;
offline (rate 0), the most tokens/s; otherwise the lowest mean end-to-end latency among plans that keep up
with the offered rate (the most capacity if none does). Formulas: physics.py (physics) and
queueing.py (load); docs/model.md ("Serving").
"""

from __future__ import annotations

import numpy as np
import polars as pl

from .. import cost, energy
from ..catalog import Catalog
from ..columns import Columns
from . import physics
from .queueing import Load, latency, max_rate_within, mean_point, saturation

AUTO = -1
TP_OPTIONS = (1, 2, 4, 8, 16, 32, 64)

# Reason codes for a serving plan that cannot run (0 = runs); 9 gets its figures in evaluate.py.
REASONS = {
    1: "no serving workload",
    2: "attention heads are not divisible by TP",
    3: "TP x PP is more than the serving GPUs",
    4: "more pipeline stages than layers",
    9: "does not fit in GPU memory",
}
# Bottleneck codes: physics.PARTS (0-5), then these.
BOTTLENECKS = (*physics.PARTS, "memory capacity", "request rate above capacity")


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
    cand.tp = tp
    cand.pp = cand.i_pp.astype(np.float64)
    cand.scenario_row = index
    cand.searched = auto[index]
    checks = [
        (1, cand.has_infer == 0),
        (2, np.mod(cand.i_heads, tp) != 0),
        (3, tp * cand.pp > cand.i_gpus),
        (4, cand.pp > cand.i_layers),
    ]
    reason = np.zeros(cand.n, dtype=np.int64)
    for code, bad in reversed(checks):
        reason = np.where(bad, code, reason)
    valid = np.bincount(index, weights=(reason == 0), minlength=scen.n) > 0
    keep = np.flatnonzero((reason == 0) | ~valid[index] | ~cand.searched)
    out = scen.take(index[keep])
    out.tp, out.pp, out.scenario_row, out.searched = tp[keep], cand.pp[keep], index[keep], cand.searched[keep]
    out.reason = reason[keep]
    return out


def _load(c: Columns, lam: np.ndarray) -> Load:
    return Load(
        lam, c.i_prompt.astype(float), c.i_output.astype(float), c.i_chunk.astype(float), np.maximum(c.batch_limit, 1.0)
    )


def _plan_figures(c: Columns, cat: Catalog):
    """Memory, capacity and a cheap latency estimate for every candidate (enough to choose among them)."""
    physics.memory(c, cat)
    step = physics.step_model(c, cat)
    c.reason = np.where((c.reason == 0) & ~c.fits_memory, 9, c.reason)
    c.replicas = np.floor(c.i_gpus / (c.tp * c.pp))
    c.batch_limit = np.minimum(c.i_concurrency, c.max_batch)
    c.lam = np.where(c.replicas > 0, c.i_rate / np.maximum(c.replicas, 1.0), 0.0)
    sat = saturation(step, _load(c, c.lam))
    c.lam_sat = sat["lam"]
    c.tau_sat, c.n_sat, c.k_sat = sat["tau"], sat["n"], sat["k"]
    c.capacity_tps = c.lam_sat * c.i_output * c.replicas
    online = c.lam > 0
    c.stable = online & (c.lam < c.lam_sat)
    tau = mean_point(step, _load(c, np.where(c.stable, c.lam, 0.0)))["tau"]
    c.e2e_estimate = np.where(c.stable, (c.i_output + 1.0) * tau, np.inf)
    return step


def _select(c: Columns, n_scenarios: int, slo_tps: np.ndarray) -> np.ndarray:
    runs = c.reason == 0
    has_slo = np.isfinite(c.i_ttft_limit_ms) | np.isfinite(c.i_tpot_limit_ms)
    offline = c.i_rate <= 0
    unstable = ~has_slo & ~offline & ~c.stable
    key = np.where(has_slo, -slo_tps, np.where(offline | unstable, -c.capacity_tps, c.e2e_estimate))
    frame = pl.DataFrame(
        {
            "scenario": c.scenario_row,
            "row": np.arange(c.n),
            "bad": ~runs,
            "unstable": unstable,
            "key": np.nan_to_num(key, nan=np.inf),
            "over": c.mem_needed_gb - c.mem_usable_gb,
            "tp": c.tp,
        }
    )
    best = frame.sort(["scenario", "bad", "unstable", "key", "over", "tp"]).unique(
        "scenario", keep="first", maintain_order=True
    )
    rows = np.full(n_scenarios, -1, dtype=np.int64)
    rows[best["scenario"].to_numpy()] = best["row"].to_numpy()
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
    step_all = _plan_figures(cand, cat)
    counts = np.bincount(cand.scenario_row, minlength=scen.n)

    slo_rps = _rates_within_limits(cand, step_all, scen.n)
    slo_tps = slo_rps * cand.i_output

    best = _select(cand, scen.n, np.nan_to_num(slo_tps, nan=-1.0))
    r = cand.take(best)
    step = _rows(step_all, best)
    return _results(r, step, cat, counts, slo_rps[best], slo_tps[best])


def _rates_within_limits(cand: Columns, step, n_scenarios: int) -> np.ndarray:
    """Highest request rate within the latency limits, per candidate plan (NaN: no limits, or not searched).

    A plan's rate within limits is at most its capacity, so each scenario's highest-capacity plan is
    searched first and then only the plans whose capacity could beat what that one reached."""
    out = np.full(cand.n, np.nan)
    limits = np.isfinite(cand.i_ttft_limit_ms) | np.isfinite(cand.i_tpot_limit_ms)
    runs = limits & (cand.reason == 0)
    if not runs.any():
        return out
    lead = (
        pl.DataFrame({"scenario": cand.scenario_row, "row": np.arange(cand.n), "runs": runs, "cap": cand.capacity_tps})
        .filter(pl.col("runs"))
        .sort(["scenario", "cap"], descending=[False, True])
        .unique("scenario", keep="first")["row"]
        .to_numpy()
    )

    def search(rows):
        sub = cand.take(rows)
        lam = max_rate_within(
            _rows(step, rows), _load(sub, np.zeros(len(rows))), sub.i_ttft_limit_ms * 1e-3, sub.i_tpot_limit_ms * 1e-3
        )
        out[rows] = lam * cand.replicas[rows]

    search(lead)
    reached = np.full(n_scenarios, np.inf)
    reached[cand.scenario_row[lead]] = out[lead] * cand.i_output[lead]
    rest = np.flatnonzero(runs & np.isnan(out) & (cand.capacity_tps > reached[cand.scenario_row]))
    if len(rest):
        search(rest)
    return out


def _rows(step, index):
    return type(step)(**{f: getattr(step, f)[index] for f in step.__dataclass_fields__})


def _results(r: Columns, step, cat: Catalog, counts, slo_rps, slo_tps) -> dict[str, np.ndarray]:
    runs = (r.reason == 0) & (r.has_infer == 1)
    online = r.lam > 0
    lat = latency(step, _load(r, np.where(r.stable, r.lam, 0.0)))
    live = runs & r.stable
    ms = 1e3

    def online_only(x):
        return np.where(live, x, np.nan)

    # Offline and overloaded replicas run a steady full batch, admitting as slots free: TPOT is that
    # iteration; TTFT grows without bound when overloaded (no figure).
    tpot_sat = step.time(r.n_sat + 1.0, r.k_sat)
    tpot50 = np.where(live, lat.tpot_quantile(0.5), tpot_sat)
    tpot99 = np.where(live, lat.tpot_quantile(0.99), tpot_sat)
    tpot_mean = np.where(live, lat.tpot_mean, tpot_sat)
    served_rps = np.where(live, r.lam, r.lam_sat) * r.replicas
    tokens_per_s = served_rps * r.i_output
    busy = np.where(live, 1.0 - lat.p_idle, 1.0)

    n_op = np.where(live, lat.n, r.n_sat)
    k_op = np.where(live, np.minimum(r.lam * r.i_prompt * lat.tau, r.i_chunk), r.k_sat)
    parts = physics.step_parts(r, step, n_op, k_op)
    share = parts / np.maximum(parts.sum(axis=0), 1e-300)
    kind = np.argmax(parts, axis=0)
    overloaded = runs & online & ~r.stable
    kind = np.where(r.reason == 9, 6, np.where(overloaded, 7, kind))

    # Power and energy by phase: a serving GPU draws its iteration's power while its replica runs
    # (energy.serving_run_w: compute-bound parts at the power limit, memory-bound ones at the decode share,
    # communication at the wait power) and idle power otherwise; GPUs outside every replica idle; host parts
    # per node (energy.host_node_w), fans and supplies (energy.wall_factor); facility = IT x PUE.
    gpus = r.i_gpus.astype(float)
    in_replicas = r.replicas * r.tp * r.pp
    run_w = energy.serving_run_w(r, cat, parts)
    gpu_w = in_replicas * (busy * run_w + (1.0 - busy) * r.idle_w) + (gpus - in_replicas) * r.idle_w
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

    def keep(x):
        return np.where(runs, x, np.nan)

    has = r.has_infer == 1
    return {
        "infer_fits": runs,
        "infer_reason_code": np.where(has, r.reason, 1),
        "infer_tp": np.where(has, r.tp, np.nan),
        "infer_pp": np.where(has, r.pp, np.nan),
        "infer_replicas": np.where(has, r.replicas, np.nan),
        "infer_plans_searched": np.where(has, counts, 0),
        "infer_max_batch": np.where(has, r.max_batch, np.nan),
        "infer_batch_limit": keep(r.batch_limit),
        "infer_batch_mean": keep(n_op),
        "infer_mem_weights_gb": np.where(has, r.w_bytes_gpu / physics.GIB, np.nan),
        "infer_mem_kv_gb": keep(r.kv_seq_gpu * r.batch_limit / physics.GIB),
        "infer_mem_needed_gb": np.where(has, r.mem_needed_gb, np.nan),
        "infer_mem_usable_gb": np.where(has, r.mem_usable_gb, np.nan),
        "infer_hbm_gb": r.hbm_gb,
        "infer_ttft_ms": online_only(lat.ttft_quantile(0.5)) * ms,
        "infer_ttft_p99_ms": online_only(lat.ttft_quantile(0.99)) * ms,
        "infer_ttft_mean_ms": online_only(lat.ttft_mean()) * ms,
        "infer_queue_ms": online_only(lat.queue_mean()) * ms,
        "infer_tpot_ms": keep(tpot50) * ms,
        "infer_tpot_p99_ms": keep(tpot99) * ms,
        "infer_tpot_mean_ms": keep(tpot_mean) * ms,
        "infer_tokens_per_s": keep(tokens_per_s),
        "infer_requests_per_s": keep(served_rps),
        "infer_capacity_tokens_per_s": keep(r.capacity_tps),
        "infer_capacity_rps": keep(r.lam_sat * r.replicas),
        "infer_offered_rps": np.where(has, r.i_rate, np.nan),
        "infer_utilization": keep(np.where(online, r.lam / np.maximum(r.lam_sat, 1e-300), 1.0)),
        "infer_overloaded": overloaded,
        "infer_busy_pct": keep(100.0 * busy),
        "infer_idle_gpu_pct": keep(100.0 * (1.0 - busy * in_replicas / np.maximum(gpus, 1.0))),
        "infer_power_kw": keep(facility_w / 1000.0),
        "infer_energy_wh_per_1k_tokens": keep(wh_per_1k),
        "infer_cost_usd_per_1m_tokens": keep(usd_per_1m),
        "infer_electricity_usd_per_1m_tokens": keep(electricity_per_1m),
        "infer_cost_usd_per_gpu_hour": keep(usd_per_hour / np.maximum(gpus, 1.0)),
        "infer_gpu_run_power_w": keep(run_w),
        "infer_gpu_power_w": keep(gpu_w / np.maximum(gpus, 1.0)),
        "infer_slo_rps": keep(slo_rps),
        "infer_slo_tokens_per_s": keep(slo_tps),
        "infer_bottleneck_code": np.where(has & (runs | (r.reason == 9)), kind, -1),
        "infer_bottleneck_share": keep(
            np.where(kind < len(physics.PARTS), share[np.minimum(kind, len(physics.PARTS) - 1), np.arange(r.n)], np.nan)
        ),
    }
