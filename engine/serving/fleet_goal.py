"""The fleet question: how many GPUs, of which type, with which plan, serve R requests/s within p99 TTFT and TPOT
limits, at what cost per 1M tokens; and the reverse, the rate a scenario's own fleet holds within them.

    fleet_goal(scenario, rate_rps, ttft_p99_ms=None, tpot_p99_ms=None, gpus=None, gpu_hour_usd=None,
               catalog=None) -> FleetAnswer(candidates, per_gpu, best)
    fleet_rate(scenario, ttft_p99_ms=None, tpot_p99_ms=None, catalog=None) -> pl.DataFrame

Sizing (docs/model.md, "The fleet question"): replicas share the load evenly and their latency depends only on
their own load, so a candidate plan (GPU type, TP, PP, its prefill pool's TP) is searched once, for one replica:
lam* = the highest rate per replica whose p99 TTFT and TPOT meet the limits (queueing.max_rate_within); the fleet
then needs ceil(R / lam*) replicas (disaggregated: ceil(R / lam*_prefill) prefill and ceil(R / lam*_decode) decode
replicas, a pair placed in one scale-up domain where it fits). Every candidate of every goal is one row of one
vectorised pass; the figures at the sized fleet (latency, power, cost) are serving's own (fleet._results).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
from pydantic import ValidationError

from ..catalog import Catalog, close_matches, load_catalog
from ..columns import Columns
from ..errors import FieldIssue, ScenarioError, from_validation_error
from ..resolve import resolve
from ..scenario import Inference, Scenario
from . import fleet

# A switched GPU type drops the cluster's per-part overrides (they described the old part).
PART_OVERRIDES = ("hbm_gb", "bf16_tflops", "fp8_tflops")
# An unsized candidate's figures are taken at this share of its saturation rate: "unloaded".
UNLOADED_SHARE = 1e-6
# A replica sized at this share of its saturation rate or more is limited by its capacity, not its latency.
CAPACITY_SHARE = 0.98
# Candidate rows searched per goal stay under this many (goals x GPU types x TP options).
MAX_CANDIDATES = 200_000


@dataclass(frozen=True)
class FleetAnswer:
    """`candidates`: one row per goal, GPU type and plan (`meets` says whether it can meet the goal at all;
    `why_not` why not); `per_gpu`: each goal's best plan per GPU type (fewest GPUs, then cheapest);
    `best`: one row per goal, the cheapest per 1M output tokens of those (then fewest GPUs), with nulls where no
    candidate meets the goal."""

    candidates: pl.DataFrame
    per_gpu: pl.DataFrame
    best: pl.DataFrame


def _per_goal(name: str, value, n: int | None = None) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(np.nan if value is None else value, dtype=np.float64))
    if arr.ndim != 1 or (n is not None and len(arr) not in (1, n)):
        raise ScenarioError([FieldIssue(name, value, f"not one value per goal; allowed: one number or {n} numbers")])
    return arr


def _scenarios(scenario) -> list[Scenario]:
    items = [scenario] if isinstance(scenario, Scenario) else list(scenario)
    if not items or not all(isinstance(s, Scenario) for s in items):
        raise ScenarioError([FieldIssue("scenario", scenario, "not a scenario; allowed: one or more Scenario")])
    for s in items:
        if s.inference is None:
            raise ScenarioError([FieldIssue("inference", None, f"{s.name!r} has no [inference] section to size")])
    return items


def _serving(s: Scenario) -> Inference:
    assert s.inference is not None  # _scenarios refuses a scenario without one
    return s.inference


def _limits(items: list[Scenario], which: np.ndarray, ttft, tpot, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Each goal's p99 limits in ms (NaN: none): as given, else its scenario's own."""
    own_t = np.array([_serving(s).ttft_p99_limit_ms for s in items], dtype=float)  # None -> NaN
    own_p = np.array([_serving(s).tpot_p99_limit_ms for s in items], dtype=float)
    t = own_t[which] if ttft is None else np.broadcast_to(_per_goal("ttft_p99_ms", ttft, n), (n,)).copy()
    p = own_p[which] if tpot is None else np.broadcast_to(_per_goal("tpot_p99_ms", tpot, n), (n,)).copy()
    for name, v in (("ttft_p99_ms", t), ("tpot_p99_ms", p)):
        bad = ~np.isnan(v) & ~(v > 0)
        if bad.any():
            raise ScenarioError(
                [FieldIssue(name, float(v[bad][0]), "not a latency limit; allowed: milliseconds above 0")]
            )
    return t, p


def fleet_goal(
    scenario: Scenario | Sequence[Scenario],
    rate_rps: float | Sequence[float],
    ttft_p99_ms: float | Sequence[float] | None = None,
    tpot_p99_ms: float | Sequence[float] | None = None,
    gpus: Sequence[str] | None = None,
    gpu_hour_usd: Mapping[str, float] | None = None,
    catalog: Catalog | None = None,
) -> FleetAnswer:
    """Size the serving fleet for each goal: `rate_rps` requests/s (Poisson arrivals) of `scenario`'s workload
    within p99 TTFT <= `ttft_p99_ms` and p99 TPOT <= `tpot_p99_ms` (None: the scenario's own
    inference.ttft_p99_limit_ms / tpot_p99_limit_ms; at least one limit per goal).

    Goals broadcast: `scenario` (one or a list), `rate_rps`, `ttft_p99_ms`, `tpot_p99_ms` each hold one value or
    one per goal. `gpus`: accelerator keys to try (default: each scenario's own); the scenario's other settings
    are kept, its per-part overrides (cluster.hbm_gb, bf16_tflops, fp8_tflops) dropped for another part. Plans:
    every TP where inference.tp = "auto" (else the scenario's), its PP, EP and prefill pool as set.
    `gpu_hour_usd`: a rental price per GPU-hour by accelerator key, in place of each type's own (the
    scenario's facility.usd_per_gpu_hour or rental_price, else the catalog's default rental, prices.toml); cost
    per 1M output tokens = the fleet's cost per hour on the scenario's basis (engine/cost.py) / output tokens
    per hour. Raises ScenarioError (each issue naming its argument) for input it cannot use."""
    cat = catalog or load_catalog()
    items = _scenarios(scenario)
    rate = _per_goal("rate_rps", rate_rps)
    n = max(len(items), len(rate))
    for name, v in (("ttft_p99_ms", ttft_p99_ms), ("tpot_p99_ms", tpot_p99_ms)):
        if v is not None:
            n = max(n, len(_per_goal(name, v)))
    if len(items) not in (1, n):
        raise ScenarioError([FieldIssue("scenario", len(items), f"not one scenario per goal; allowed: 1 or {n}")])
    rate = np.broadcast_to(_per_goal("rate_rps", rate_rps, n), (n,)).copy()
    if not np.all(np.isfinite(rate) & (rate > 0)):
        bad = float(rate[~(np.isfinite(rate) & (rate > 0))][0])
        raise ScenarioError([FieldIssue("rate_rps", bad, "not a request rate; allowed: requests/s above 0")])
    which = np.zeros(n, dtype=np.int64) if len(items) == 1 else np.arange(n)
    ttft, tpot = _limits(items, which, ttft_p99_ms, tpot_p99_ms, n)
    if (np.isnan(ttft) & np.isnan(tpot)).any():
        raise ScenarioError(
            [FieldIssue("ttft_p99_ms", None, "no latency limit to size for; allowed: a p99 TTFT or TPOT limit in ms")]
        )
    names = list(dict.fromkeys(gpus)) if gpus is not None else None
    if names is not None:
        if not names:
            raise ScenarioError([FieldIssue("gpus", [], "no GPU types; allowed: accelerator keys (`whatif catalog`)")])
        for g in names:
            if g not in cat.accelerators:
                near = close_matches(g, cat.accelerators)
                hint = f"close matches: {', '.join(near)}" if near else "see `whatif catalog`"
                raise ScenarioError([FieldIssue("gpus", g, f"unknown accelerator; {hint}")])
    prices = dict(gpu_hour_usd or {})
    for g, v in prices.items():
        if g not in cat.accelerators or not (np.isfinite(v) and v >= 0):
            raise ScenarioError([FieldIssue(f"gpu_hour_usd.{g}", v, "allowed: an accelerator key and USD >= 0")])

    # One variant per scenario and GPU type; a type the workload cannot use (no FP4 tensor cores...) is a
    # candidate that does not meet the goal, with the validation's own message.
    variants: list[Scenario] = []
    variant_of: dict[tuple[int, str], int] = {}
    broken: dict[tuple[int, str], str] = {}
    for si, s in enumerate(items):
        for g in names or [s.cluster.gpu]:
            key = (si, g)
            if g == s.cluster.gpu:
                variant = s
            else:
                cluster = s.cluster.model_dump(exclude_none=True, exclude=set(PART_OVERRIDES)) | {"gpu": g}
                try:
                    variant = s.edited(None, cluster=cluster)
                except ValidationError as exc:
                    broken[key] = "; ".join(str(i) for i in from_validation_error(exc, Scenario).issues)
                    continue
            variant_of[key] = len(variants)
            variants.append(variant)
    per_goal_gpus = [names or [items[which[i]].cluster.gpu] for i in range(n)]
    goal_idx = np.array([i for i in range(n) for _ in per_goal_gpus[i]], dtype=np.int64)
    goal_gpu = [g for i in range(n) for g in per_goal_gpus[i]]
    keys = [(int(which[i]), g) for i, g in zip(goal_idx, goal_gpu, strict=True)]
    ok = np.array([k in variant_of for k in keys])

    if variants:
        frame = resolve(variants, cat)
        scen = Columns.from_frame(frame)
        rows = np.flatnonzero(ok)
        sub = scen.take(np.array([variant_of[keys[r]] for r in rows], dtype=np.int64))
        # Plans that cannot run carry inf/NaN through the arithmetic before they are masked; no warnings.
        with np.errstate(all="ignore"):
            cand, plans, lam, lam_p = _candidates(
                sub, rate[goal_idx[rows]], ttft[goal_idx[rows]], tpot[goal_idx[rows]], cat
            )
            for g, price in prices.items():
                cand.usd_per_gpu_hour = np.where(cand.gpu_key == g, price, cand.usd_per_gpu_hour)
            figures = _sized(cand, plans, lam, lam_p, cat)
        cand_goal = goal_idx[rows][cand.scenario_row]
        cand_gpu = cand.gpu_key
    else:
        cand, figures, cand_goal, cand_gpu = None, {}, np.empty(0, dtype=np.int64), np.empty(0, dtype=object)

    table = _table(
        cand, figures, cand_goal, cand_gpu, [(goal_idx[r], goal_gpu[r], broken[keys[r]]) for r in np.flatnonzero(~ok)]
    )
    goal_of = table["goal"].to_numpy()
    table = table.with_columns(
        rate_rps=pl.Series(rate[goal_of]),
        ttft_limit_ms=pl.Series(ttft[goal_of]).fill_nan(None),
        tpot_limit_ms=pl.Series(tpot[goal_of]).fill_nan(None),
    )
    ranked = table.filter(pl.col("meets")).sort(["goal", "cost_usd_per_1m_tokens", "gpus", "tp"])
    per_gpu = table.filter(pl.col("meets")).sort(["goal", "gpu", "gpus", "cost_usd_per_1m_tokens", "tp"])
    per_gpu = per_gpu.unique(["goal", "gpu"], keep="first", maintain_order=True)
    best = per_gpu.sort(["goal", "cost_usd_per_1m_tokens", "gpus"]).unique("goal", keep="first", maintain_order=True)
    goals = pl.DataFrame(
        {"goal": np.arange(n), "rate_rps": rate, "ttft_limit_ms": ttft, "tpot_limit_ms": tpot}, nan_to_null=True
    )
    best = goals.join(best.drop("rate_rps", "ttft_limit_ms", "tpot_limit_ms"), on="goal", how="left")
    best = best.with_columns(met=pl.col("gpus").is_not_null())
    rank = ranked.select("goal", "gpu", "tp", "pp", "prefill_tp").with_columns(
        rank=pl.int_range(1, pl.len() + 1).over("goal")
    )
    table = table.join(rank, on=["goal", "gpu", "tp", "pp", "prefill_tp"], how="left", nulls_equal=True)
    return FleetAnswer(table.sort(["goal", "rank", "gpu", "tp"], nulls_last=True), per_gpu, best)


def _candidates(sub: Columns, rate, ttft_ms, tpot_ms, cat: Catalog):
    """Every goal row's candidate plans, each pool one replica, and their per-replica rates within the limits."""
    sub.i_rate, sub.i_ttft_limit_ms, sub.i_tpot_limit_ms = rate, ttft_ms, tpot_ms
    # Room for the largest TP in the plan checks; the pools are then sized to one replica each.
    most = float(max(fleet.TP_OPTIONS)) * sub.i_pp
    disagg = sub.i_disagg == 1
    sub.i_prefill_gpus = np.where(disagg, np.maximum(most, sub.i_prefill_gpus), sub.i_prefill_gpus)
    sub.i_gpus = np.where(disagg, sub.i_prefill_gpus + most, np.maximum(most, sub.i_gpus))
    cand = fleet.expand(sub)
    if len(cand.reason) > MAX_CANDIDATES:
        raise ScenarioError(
            [FieldIssue("rate_rps", len(cand.reason), f"too many goals; allowed: {MAX_CANDIDATES} plans")]
        )
    cand.decode_gpus = cand.tp * cand.pp
    cand.i_prefill_gpus = np.where(cand.i_disagg == 1, cand.tp_p * cand.pp, 0.0)
    cand.i_gpus = cand.decode_gpus + cand.i_prefill_gpus
    plans = fleet._plan_figures(cand, cat)
    lam = np.zeros(cand.n)
    lam_p = np.full(cand.n, np.nan)
    runs = np.flatnonzero(cand.reason == 0)
    if len(runs):
        a, b = fleet.pool_rates_within(cand.take(runs), plans.rows(runs))
        lam[runs], lam_p[runs] = a, b
    return cand, plans, lam, lam_p


def _sized(cand: Columns, plans, lam, lam_p, cat: Catalog) -> dict[str, np.ndarray]:
    """Replicas per pool for each runnable candidate (one, at an unloaded rate, where the limits cannot be met
    at all) and serving's figures at that fleet."""
    runs = cand.reason == 0
    disagg = cand.i_disagg == 1
    meets = runs & (lam > 0) & (~disagg | (lam_p > 0))
    rate = cand.i_rate
    rep = np.where(meets, np.ceil(rate / np.where(lam > 0, lam, 1.0)), 1.0)
    rep_p = np.where(disagg, np.where(meets, np.ceil(rate / np.where(lam_p > 0, lam_p, 1.0)), 1.0), 0.0)
    rows = np.flatnonzero(runs)
    out = {
        "meets": meets,
        "replicas": np.where(runs, rep, np.nan),
        "prefill_replicas": np.where(runs & disagg, rep_p, np.nan),
        "rate_per_replica_rps": np.where(runs, lam, np.nan),
        "saturation_per_replica_rps": np.where(runs, plans.main.lam_sat, np.nan),
        "prefill_rate_per_replica_rps": np.where(runs & disagg, lam_p, np.nan),
    }
    if not len(rows):
        return out
    r, p = cand.take(rows), plans.rows(rows)
    p.main.replicas = rep[rows]
    if p.prefill is not None:
        p.prefill.replicas = rep_p[rows][p.pre_rows]
    cap = p.main.lam_sat * p.main.replicas
    if p.prefill is not None:
        cap[p.pre_rows] = np.minimum(cap[p.pre_rows], p.prefill.lam_sat * p.prefill.replicas)
    r.decode_gpus = p.main.replicas * r.tp * r.pp
    r.i_prefill_gpus = np.where(r.i_disagg == 1, rep_p[rows] * r.tp_p * r.pp, 0.0)
    r.i_gpus = r.decode_gpus + r.i_prefill_gpus
    # Unsized rows: their figures unloaded (a lone request's latency), to say how far off the limits are.
    r.i_rate = np.where(meets[rows], r.i_rate, UNLOADED_SHARE * cap)
    r.capacity_rps, r.capacity_tps = cap, cap * r.i_output
    r.stable = r.i_rate < cap
    slo = np.minimum(lam[rows] * p.main.replicas, np.where(r.i_disagg == 1, lam_p[rows] * rep_p[rows], np.inf))
    res = fleet._results(r, p, np.ones(r.n), slo, slo * r.i_output, cat, medians=False)
    for k, v in res.items():
        full = np.full(cand.n, np.nan) if v.dtype.kind == "f" else np.zeros(cand.n, dtype=v.dtype)
        full[rows] = v
        out[k] = full
    out["gpus"] = np.full(cand.n, np.nan)
    out["gpus"][rows] = r.i_gpus
    return out


def _table(cand, f: dict, goal, gpu, broken: list) -> pl.DataFrame:
    """The candidates as a frame (plus the GPU types a scenario could not switch to)."""
    if cand is not None and cand.n:
        meets = f["meets"]
        reason = np.array([fleet.REASONS.get(int(c), "") for c in cand.reason], dtype=object)
        t99, p99 = f["infer_ttft_p99_ms"], f["infer_tpot_p99_ms"]
        tl, pl_ = cand.i_ttft_limit_ms, cand.i_tpot_limit_ms
        over_t = np.isfinite(tl) & ~(t99 <= tl)
        over_p = np.isfinite(pl_) & ~(p99 <= pl_)
        unmet = np.where(
            over_t & over_p,
            "p99 TTFT and TPOT above their limits even unloaded",
            np.where(over_t, "p99 TTFT above the limit even unloaded", "p99 TPOT above the limit even unloaded"),
        )
        # None makes an object column (numpy's stubs leave None out of np.where's overloads).
        why = np.where(cand.reason != 0, reason, np.where(meets, None, unmet))  # type: ignore[call-overload]
        # The limit that sized the fleet: the one its p99 comes closest to.
        share_t = np.where(np.isfinite(tl), t99 / tl, -np.inf)
        share_p = np.where(np.isfinite(pl_), p99 / pl_, -np.inf)
        # A rate per replica at its saturation: the batch limit (slots or KV memory), not a latency limit.
        at_capacity = f["rate_per_replica_rps"] >= CAPACITY_SHARE * f["saturation_per_replica_rps"]
        latency_limit = np.where(share_t >= share_p, "ttft p99", "tpot p99")
        limit = np.where(meets, np.where(at_capacity, "capacity", latency_limit), None)  # type: ignore[call-overload]
        bottleneck = np.array(
            [fleet.BOTTLENECKS[int(b)] if b >= 0 else None for b in np.nan_to_num(f["infer_bottleneck_code"], nan=-1)],
            dtype=object,
        )
        dis = cand.i_disagg == 1
        data = {
            "goal": goal,
            "gpu": pl.Series(list(gpu), dtype=pl.String),
            "tp": cand.tp,
            "pp": cand.pp,
            "ep": f.get("infer_ep", np.full(cand.n, np.nan)),
            "prefill_tp": np.where(dis, cand.tp_p, np.nan),
            "meets": meets,
            "why_not": pl.Series(why.tolist(), dtype=pl.String),
            "limited_by": pl.Series(limit.tolist(), dtype=pl.String),
            "replicas": f["replicas"],
            "prefill_replicas": f["prefill_replicas"],
            "gpus": np.where(meets, f.get("gpus", np.nan), np.nan),
            "rate_per_replica_rps": f["rate_per_replica_rps"],
            "prefill_rate_per_replica_rps": f["prefill_rate_per_replica_rps"],
            "ttft_p99_ms": t99,
            "tpot_p99_ms": p99,
            "utilization": np.where(meets, f["infer_utilization"], np.nan),
            "output_tokens_per_s": np.where(meets, f["infer_tokens_per_s"], np.nan),
            "cost_usd_per_1m_tokens": np.where(meets, f["infer_cost_usd_per_1m_tokens"], np.nan),
            "energy_wh_per_1k_tokens": np.where(meets, f["infer_energy_wh_per_1k_tokens"], np.nan),
            "power_kw": np.where(meets, f["infer_power_kw"], np.nan),
            "gpu_power_w": np.where(meets, f["infer_gpu_power_w"], np.nan),
            "bottleneck": pl.Series(bottleneck.tolist(), dtype=pl.String),
        }
    else:
        data = {"goal": np.empty(0, dtype=np.int64), "gpu": np.empty(0, dtype=object)}
    frame = pl.DataFrame(data, nan_to_null=True, strict=False)
    if broken:
        extra = pl.DataFrame(
            {
                "goal": np.array([b[0] for b in broken], dtype=np.int64),
                "gpu": [b[1] for b in broken],
                "meets": [False] * len(broken),
                "why_not": [b[2] for b in broken],
            }
        )
        frame = pl.concat([frame, extra], how="diagonal_relaxed")
    return frame


def fleet_rate(
    scenario: Scenario | Sequence[Scenario],
    ttft_p99_ms: float | Sequence[float] | None = None,
    tpot_p99_ms: float | Sequence[float] | None = None,
    catalog: Catalog | None = None,
) -> pl.DataFrame:
    """The reverse question, per scenario: the highest request rate its own serving fleet (inference.gpu_count
    GPUs of cluster.gpu) holds with p99 TTFT and TPOT within the limits (None: the scenario's own; at least one
    limit), with the plan that holds it (serving's TP search) and the figures at that rate: one row per
    scenario (rate_rps 0 where even a lone request misses a limit)."""
    cat = catalog or load_catalog()
    items = _scenarios(scenario)
    n = len(items)
    ttft, tpot = _limits(items, np.arange(n), ttft_p99_ms, tpot_p99_ms, n)
    if (np.isnan(ttft) & np.isnan(tpot)).any():
        raise ScenarioError(
            [FieldIssue("ttft_p99_ms", None, "no latency limit to hold; allowed: a p99 TTFT or TPOT limit in ms")]
        )
    frame = resolve(items, cat)
    scen = Columns.from_frame(frame)
    scen.i_ttft_limit_ms, scen.i_tpot_limit_ms = ttft, tpot
    with np.errstate(all="ignore"):
        held = fleet.serve(scen, cat)["infer_slo_rps"]
        rate = np.nan_to_num(held, nan=0.0)
        # The figures at the held rate (the same plan: the search does not depend on the offered rate).
        at = Columns.from_frame(frame)
        at.i_ttft_limit_ms, at.i_tpot_limit_ms = ttft, tpot
        at.i_rate = np.where(rate > 0, rate, 0.0)
        res = fleet.serve(at, cat)
    live = rate > 0

    def shown(x):
        return np.where(live, x, np.nan)

    bottleneck = [
        fleet.BOTTLENECKS[int(b)] if live[i] and b >= 0 else None for i, b in enumerate(res["infer_bottleneck_code"])
    ]
    return pl.DataFrame(
        {
            "scenario": np.arange(n),
            "name": [s.name for s in items],
            "gpu": [s.cluster.gpu for s in items],
            "gpus": frame["i_gpus"].to_numpy(),
            "ttft_limit_ms": ttft,
            "tpot_limit_ms": tpot,
            "rate_rps": rate,
            "output_tokens_per_s": rate * frame["i_output"].to_numpy(),
            "tp": res["infer_tp"],
            "pp": res["infer_pp"],
            "replicas": res["infer_replicas"],
            "ttft_p99_ms": shown(res["infer_ttft_p99_ms"]),
            "tpot_p99_ms": shown(res["infer_tpot_p99_ms"]),
            "cost_usd_per_1m_tokens": shown(res["infer_cost_usd_per_1m_tokens"]),
            "energy_wh_per_1k_tokens": shown(res["infer_energy_wh_per_1k_tokens"]),
            "bottleneck": pl.Series(bottleneck, dtype=pl.String),
        },
        nan_to_null=True,
        strict=False,
    )
