"""The engine's single entry point: a frame of resolved scenarios in, a frame of results out.

    evaluate(frame) = select(training(expand(frame))) -> run totals -> energy -> inference -> result frame

No stage loops over scenarios in Python; `plans.expand` loops over the few distinct patterns of
auto-searched plan keys. Text columns (reasons, bottlenecks) are built by polars expressions.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from . import energy, inference, plans, training
from .catalog import Catalog, load_catalog
from .columns import Columns

RECOMPUTE_NAMES = {0: "none", 1: "selective", 2: "full"}
BOTTLENECKS = ("compute", "scale-up network", "scale-out network", "pipeline bubble", "memory capacity")


def evaluate(frame: pl.DataFrame, catalog: Catalog | None = None) -> pl.DataFrame:
    """Results for every row of `frame` (from `resolve.resolve`), in the same order."""
    cat = catalog or load_catalog()
    scen = Columns.from_frame(frame)
    cand = plans.expand(scen)
    training.step(cand, cat)
    best_rows = plans.select(cand, scen.n)
    counts = np.bincount(cand.scenario_row, minlength=scen.n)
    best = cand.take(best_rows)
    out = _training_results(best, cat)
    out["train_plans_searched"] = counts
    out |= inference.serve(scen, cat)
    result = pl.DataFrame({"scenario": scen.scenario, "name": scen.name, "n_gpus": scen.n_gpus} | out)
    return _with_serving_text(_with_text(result))


def _training_results(r: Columns, cat: Catalog) -> dict[str, np.ndarray]:
    runs = (r.reason == 0) & (r.has_train == 1)
    step = r.step_time_s
    r.tokens_per_s = r.tokens_per_step / step
    r.train_tokens_total = r.tokens
    r.train_time_s = r.tokens / r.tokens_per_s + r.eval_time_s * r.tokens / np.maximum(r.tokens, 1)
    r.gpu_hours = r.n_gpus * r.train_time_s / 3600.0
    peak = np.where(r.fp8 == 1, r.fp8_tflops, r.bf16_tflops) * 1e12
    mfu = r.model_flops_per_token * r.tokens_per_s / (r.n_gpus * peak)
    hfu = r.hw_flops_per_token * r.tokens_per_s / (r.n_gpus * peak)

    comm = r.t_tp_s + r.t_ep_s + r.t_pp_s + r.t_dp_s
    busy = r.t_compute_s + r.t_optimizer_s
    r.busy_share = busy / step
    energy.training_energy(r, cat)

    # Attribute exposed communication to the fabric it crosses.
    tp_scale_out = r.tp > r.su_domain
    ep_scale_out = r.ep * r.tp > r.su_domain
    pp_scale_out = r.tp * r.dp >= r.gpn
    dp_scale_out = r.dp > np.maximum(r.su_domain // np.maximum(r.tp, 1), 1)
    parts = {
        "tp": (r.t_tp_s, tp_scale_out), "ep": (r.t_ep_s, ep_scale_out),
        "pp": (r.t_pp_s, pp_scale_out), "dp": (r.t_dp_s, dp_scale_out),
    }
    scale_up = sum(np.where(out, 0.0, t) for t, out in parts.values())
    scale_out = sum(np.where(out, t, 0.0) for t, out in parts.values())
    shares = np.stack([busy, scale_up, scale_out, r.t_bubble_s]) / step
    kind = np.argmax(shares, axis=0)
    kind = np.where(r.reason == 9, 4, kind)
    # The largest single overhead, for the "why" line: which collective, and how much of the step.
    overheads = np.stack([r.t_tp_s, r.t_ep_s, r.t_pp_s, r.t_dp_s, r.t_bubble_s]) / step

    def keep(x):
        return np.where(runs, x, np.nan)

    return {
        "train_fits": runs,
        "train_reason_code": np.where(r.has_train == 1, r.reason, 8),
        "train_tp": r.tp.astype(np.int64), "train_pp": r.pp.astype(np.int64), "train_dp": r.dp.astype(np.int64),
        "train_microbatch": r.mb.astype(np.int64), "train_zero": r.zero.astype(np.int64),
        "train_interleave": r.v.astype(np.int64), "train_ep": r.ep.astype(np.int64),
        "train_recompute_code": r.rc.astype(np.int64),
        "train_micro_batches": r.m.astype(np.int64),
        "train_step_time_s": keep(step),
        "train_tokens_per_s": keep(r.tokens_per_s),
        "train_wall_clock_days": keep(r.train_time_s / 86400.0),
        "train_gpu_hours": keep(r.gpu_hours),
        "train_mfu": keep(mfu),
        "train_hfu": keep(hfu),
        "train_tflops_per_gpu": keep(hfu * peak / 1e12),
        "train_idle_gpu_pct": keep(100.0 * (comm + r.t_bubble_s) / step),
        "train_idle_comm_pct": keep(100.0 * comm / step),
        "train_idle_bubble_pct": keep(100.0 * r.t_bubble_s / step),
        "train_t_compute_s": keep(r.t_compute_s), "train_t_tp_s": keep(r.t_tp_s),
        "train_t_ep_s": keep(r.t_ep_s), "train_t_pp_s": keep(r.t_pp_s), "train_t_dp_s": keep(r.t_dp_s),
        "train_t_bubble_s": keep(r.t_bubble_s), "train_t_optimizer_s": keep(r.t_optimizer_s),
        "train_mem_gb": np.where(r.has_train == 1, r.mem_gb, np.nan),
        "train_mem_weights_gb": np.where(r.has_train == 1, r.mem_weights_gb, np.nan),
        "train_mem_grads_gb": np.where(r.has_train == 1, r.mem_grads_gb, np.nan),
        "train_mem_optimizer_gb": np.where(r.has_train == 1, r.mem_optimizer_gb, np.nan),
        "train_mem_activations_gb": np.where(r.has_train == 1, r.mem_activations_gb, np.nan),
        "train_hbm_gb": r.hbm_gb,
        "train_energy_mwh": keep(r.energy_mwh),
        "train_it_energy_mwh": keep(r.it_energy_mwh),
        "train_cost_usd": keep(r.cost_usd),
        "train_co2_t": keep(r.co2_t),
        "train_avg_power_mw": keep(r.facility_power_mw),
        "train_tokens_per_kwh": keep(r.tokens_per_kwh),
        "train_bottleneck_code": np.where(runs | (r.reason == 9), kind, -1),
        "train_bottleneck_share": np.where(runs, shares[np.minimum(kind, 3), np.arange(r.n)], np.nan),
        "train_overhead_code": np.argmax(overheads, axis=0),
        "train_overhead_share": np.max(overheads, axis=0),
    }


def _with_text(result: pl.DataFrame) -> pl.DataFrame:
    reasons = {k: v for k, v in plans.REASONS.items()}
    overhead_names = ["tensor-parallel communication", "expert all-to-all", "pipeline sends",
                      "data-parallel gradient sync", "pipeline bubble"]
    pct = lambda col: (pl.col(col) * 100).round(0).cast(pl.Int64).cast(pl.Utf8)  # noqa: E731
    gb = lambda col: pl.col(col).round(1).cast(pl.Utf8)  # noqa: E731
    reason = (
        pl.when(pl.col("train_fits")).then(None)
        .when(pl.col("train_reason_code") == 9)
        .then(pl.format("needs {} GB per GPU, has {} GB", gb("train_mem_gb"), gb("train_hbm_gb")))
        .otherwise(pl.col("train_reason_code").replace_strict(reasons, default="no plan", return_dtype=pl.Utf8))
    )
    bottleneck = pl.col("train_bottleneck_code").replace_strict(
        dict(enumerate(BOTTLENECKS)), default=None, return_dtype=pl.Utf8)
    overhead = pl.col("train_overhead_code").replace_strict(dict(enumerate(overhead_names)), return_dtype=pl.Utf8)
    detail = (
        pl.when(pl.col("train_bottleneck_code") == 4).then(pl.format("memory capacity: {}", reason))
        .when(pl.col("train_fits").not_()).then(None)
        .when(pl.col("train_bottleneck_code") == 0)
        .then(pl.format("compute: {}% of step time; largest overhead: {} {}%", pct("train_bottleneck_share"),
                        overhead, pct("train_overhead_share")))
        .otherwise(pl.format("{}: {}% of step time exposed {}", bottleneck, pct("train_bottleneck_share"), overhead))
    )
    return result.with_columns(
        train_reason=reason,
        train_recompute=pl.col("train_recompute_code").replace_strict(RECOMPUTE_NAMES, return_dtype=pl.Utf8),
        train_bottleneck=bottleneck,
        train_bottleneck_detail=detail,
    ).fill_nan(None)


def _with_serving_text(result: pl.DataFrame) -> pl.DataFrame:
    """Why a serving plan cannot run, and what limits it when it can (docs/model-inference.md)."""
    gb = lambda col: pl.col(col).round(1).cast(pl.Utf8)  # noqa: E731
    pct = lambda col: (pl.col(col) * 100).round(0).cast(pl.Int64).cast(pl.Utf8)  # noqa: E731
    num = lambda col, d=1: pl.col(col).round(d).cast(pl.Utf8)  # noqa: E731
    reason = (
        pl.when(pl.col("infer_fits")).then(None)
        .when(pl.col("infer_reason_code") == 9)
        .then(pl.format("needs {} GB per GPU (weights {} GB and one sequence's KV cache), has {} GB usable of {} GB",
                        gb("infer_mem_needed_gb"), gb("infer_mem_weights_gb"), gb("infer_mem_usable_gb"),
                        gb("infer_hbm_gb")))
        .otherwise(pl.col("infer_reason_code").replace_strict(inference.REASONS, default="no plan",
                                                              return_dtype=pl.Utf8))
    )
    bottleneck = pl.col("infer_bottleneck_code").replace_strict(
        dict(enumerate(inference.BOTTLENECKS)), default=None, return_dtype=pl.Utf8)
    whole = lambda col: pl.col(col).round(0).cast(pl.Int64).cast(pl.Utf8)  # noqa: E731
    cap = (pl.when(pl.col("infer_batch_limit") < pl.col("infer_max_batch")).then(pl.lit(" (concurrency cap)"))
           .otherwise(pl.lit(" (KV-cache memory)")))
    batch = pl.format("batch {} of {} per replica{}", num("infer_batch_mean", 1), whole("infer_batch_limit"), cap)
    detail = (
        pl.when(pl.col("infer_bottleneck_code") == 6).then(pl.format("memory capacity: {}", reason))
        .when(pl.col("infer_fits").not_()).then(None)
        .when(pl.col("infer_bottleneck_code") == 7)
        .then(pl.format("request rate above capacity: {} req/s offered, {} req/s served at full batch",
                        num("infer_offered_rps", 2), num("infer_capacity_rps", 2)))
        .otherwise(pl.format("{}: {}% of each iteration; {}", bottleneck, pct("infer_bottleneck_share"), batch))
    )
    return result.with_columns(
        infer_reason=reason, infer_bottleneck=bottleneck, infer_bottleneck_detail=detail,
    ).fill_nan(None)
