"""The engine's single entry point: a frame of resolved scenarios in, a frame of results out.

    evaluate(frame) = select(training(expand(frame))) -> input stalls -> goodput (checkpoints, failures)
                      -> energy -> serving (serving/) -> result frame

No stage loops over scenarios in Python; `plans.expand` loops over the few distinct patterns of
auto-searched plan keys. Text columns (reasons, bottlenecks) are built by polars expressions.
"""

from __future__ import annotations

import concurrent.futures
import functools
import os

import numpy as np
import polars as pl

from . import cost, energy, goodput, host, serving, storage, workloads
from .catalog import Catalog, load_catalog
from .columns import Columns
from .training import plans

RECOMPUTE_NAMES = {0: "none", 1: "selective", 2: "full", 3: "partial", 4: "selective + partial"}
BOTTLENECKS = (
    "compute",
    "scale-up network",
    "scale-out network",
    "pipeline bubble",
    "memory capacity",
    "storage",
    "stragglers",
    "host preprocessing",
)
# The cost basis of every row (resolve._prices), carried into the results beside the figures it prices.
BASIS_COLUMNS = (
    "cost_model",
    "usd_per_gpu_hour",
    "price_key",
    "price_provider",
    "price_term",
    "price_date",
    "price_source",
    "price_via",
    "server_usd_per_gpu",
    "purchase_key",
    "purchase_what",
    "purchase_date",
    "purchase_source",
    "purchase_via",
    "network_capex_share",
    "storage_capex_share",
    "depreciation_years",
    "usd_per_kw_month",
    "usd_per_kwh",
)
# A storage stall above this share of the step names storage as the bottleneck (below it: rounding noise);
# the same for the host's preprocessing stall (the larger of the two input stalls names the bottleneck).
STORAGE_PACING_SHARE = 0.01
IDLE_CAUSES = (
    "communication",
    "pipeline_bubble",
    "stragglers",
    "storage_stall",
    "host_preprocessing",
    "checkpoint_stall",
    "failure_downtime",
    "lost_work",
    "unused_gpus",
)
# The parts of a step a runner-up plan can lose on (per token), in the order of train_runner_up_why_code.
STEP_PARTS = (
    "t_compute_s",
    "t_tp_s",
    "t_cp_s",
    "t_ep_s",
    "t_pp_s",
    "t_bubble_s",
    "t_dp_s",
    "t_optimizer_s",
    "t_nic_wait_s",
    "t_sync_s",
)
STEP_PART_NAMES = (
    "compute (incl. recomputation)",
    "tensor-parallel communication",
    "context-parallel ring",
    "expert all-to-all",
    "pipeline sends",
    "pipeline bubble",
    "data-parallel communication",
    "optimizer step",
    "NIC contention",
    "stragglers",
)


def evaluate(frame: pl.DataFrame, catalog: Catalog | None = None, text: bool = True) -> pl.DataFrame:
    """Results for every row of `frame` (from `resolve.resolve`), in the same order.

    With text=False the sentence columns (train_reason, train_bottleneck_detail...) are left out: sweeps
    that only plot numbers skip their formatting cost. The infer_* columns are there when any row has a
    serving workload (rows without one hold nulls)."""
    cat = catalog or load_catalog()
    cores = _cores()
    if cores > 1 and _work_rows(frame) >= PARALLEL_MIN_ROWS:
        # A large training frame in one slice per core, each on its own thread: numpy's array loops and
        # polars run without the interpreter lock, so the slices overlap. Training rows are independent:
        # the same figures. (Serving frames stay whole: the latency-limit searches try more rates per pass
        # for fewer rows, so a slice's figures would move within the search's resolution.)
        size = -(-frame.height // cores)
        slices = [frame.slice(i, size) for i in range(0, frame.height, size)]
        parts = list(_pool().map(lambda part: _evaluate_quietly(part, cat), slices))
        result = pl.concat(parts, how="diagonal_relaxed")
        return add_text(result) if text else result
    return add_text(_evaluate_quietly(frame, cat)) if text else _evaluate_quietly(frame, cat)


# Rows of work (a searched plan counts as its candidates) from which a training frame is evaluated in
# slices on a thread per core: below it the threads cost more than they save (the explorer's frames are far
# smaller).
PARALLEL_MIN_ROWS = 65_536
SEARCHED_ROW_WORK = 100


def _work_rows(frame: pl.DataFrame) -> int:
    """Explicit rows, plus SEARCHED_ROW_WORK for each row whose plan is searched (a hundred-odd candidates);
    0 for a frame with a serving row (evaluated whole, see evaluate)."""
    if frame.height * SEARCHED_ROW_WORK < PARALLEL_MIN_ROWS or bool((frame["has_infer"] == 1).any()):
        return 0
    if frame.height >= PARALLEL_MIN_ROWS:
        return frame.height  # enough either way: no need to find the searched rows (the chunks do that)
    searched = int((plans.auto_pattern(Columns.from_frame(frame))[1] != 0).sum())
    return frame.height - searched + SEARCHED_ROW_WORK * searched


@functools.cache
def _pool() -> concurrent.futures.ThreadPoolExecutor:
    return concurrent.futures.ThreadPoolExecutor(max_workers=_cores(), thread_name_prefix="whatif-engine")


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _evaluate_quietly(frame: pl.DataFrame, cat: Catalog) -> pl.DataFrame:
    # Rows that cannot run carry inf/NaN through the arithmetic until they are blanked: no warnings (numpy's
    # error state is per thread, so each slice sets its own).
    with np.errstate(all="ignore"):
        return _evaluate(frame, cat)


def _evaluate(frame: pl.DataFrame, cat: Catalog) -> pl.DataFrame:
    scen = Columns.from_frame(frame)
    blank = _BLANK_TRAINING.get(id(cat))
    if blank is not None and not (scen.has_train == 1).any():
        # Serving only: no plan to search or time; every row gets the training columns of "no training".
        out = {k: np.full(scen.n, v, dtype=d) for k, (d, v) in blank.items()}
    else:
        out = _training(scen, cat)
    # Serving columns exist when some scenario serves (a frame of training-only sweeps carries none).
    serves = bool((scen.has_infer == 1).any())
    if serves:
        out |= serving.serve(scen, cat)
    return _result_frame(frame, out)


# Frames of up to this many rows are built row by row from Python values (0.3 ms for one row, against 1.4 ms
# for a frame of 150 one-element columns put beside the ids); larger ones column by column.
ROW_BUILT_MAX_ROWS = 4
_POLARS_TYPES = {np.dtype(np.float64): pl.Float64, np.dtype(np.int64): pl.Int64, np.dtype(bool): pl.Boolean}


def _result_frame(frame: pl.DataFrame, out: dict[str, np.ndarray]) -> pl.DataFrame:
    """The ids (scenario, name, GPU count, cost basis) of every row of `frame`, then the result columns `out`;
    NaN is null (a missing figure), in the ids too (a device without a catalog price has none)."""
    columns = set(frame.columns)
    basis = [name for name in ("host_cpu", *BASIS_COLUMNS) if name in columns]
    # What n_gpus counts: GPUs (and other accelerators), or CPU sockets where a CPU is the compute device.
    # Series operations, not a select: no query plan for a few columns.
    get = frame.get_column
    is_cpu = (
        (get("is_cpu") == 1).fill_null(False) if "is_cpu" in columns else pl.repeat(False, frame.height, eager=True)
    )
    ids = [
        get("scenario").cast(pl.Int64),
        get("name"),
        get("n_gpus").cast(pl.Int64),
        _DEVICE_KINDS.gather(is_cpu.cast(pl.UInt32)).alias("device_kind"),
        *(get(name) for name in basis),
    ]
    types = [_POLARS_TYPES.get(v.dtype) for v in out.values()]
    if frame.height <= ROW_BUILT_MAX_ROWS and None not in types:
        # The same frame from Python values: one construction instead of one Series per column and a concat.
        # Polars infers these types from the values (int, float, bool, str); a column of other types, or one
        # holding a null (all null: no type to infer), is typed explicitly (a schema of every column costs
        # ~0.3 ms of dtype comparisons).
        names = [s.name for s in ids] + list(out)
        dtypes: list = [s.dtype for s in ids] + types
        values = [s.to_list() for s in ids] + [v.tolist() for v in out.values()]
        rows = [[None if x != x else x for x in row] for row in zip(*values, strict=True)]
        # out's types (_POLARS_TYPES) are all inferred ones; the ids' are checked.
        given = [i < len(ids) and dtype not in _INFERRED for i, dtype in enumerate(dtypes)]
        typed = {names[i]: dtypes[i] for i, col in enumerate(zip(*rows, strict=True)) if given[i] or None in col}
        return pl.DataFrame(rows, schema=names, schema_overrides=typed or None, orient="row")
    # NaN -> null only in the float columns that hold a NaN (most hold none): one pass per column costs less
    # than nan_to_null's masked copy of every column (the minimum is NaN exactly where some element is).
    with_nan = [k for k, v in out.items() if v.dtype.kind == "f" and v.size and np.isnan(v.min())]
    result = pl.DataFrame(out)
    if with_nan:
        result = result.with_columns(pl.col(with_nan).fill_nan(None))
    id_frame = pl.DataFrame(ids).with_columns(pl.col(pl.Float64).fill_nan(None))
    return pl.concat([id_frame, result], how="horizontal")


# device_kind by is_cpu (false, true).
_DEVICE_KINDS = pl.Series("device_kind", ["gpu", "cpu"], dtype=pl.Utf8)
# The column types polars infers from Python values of a row-built frame (the others are given).
_INFERRED = (pl.Float64, pl.Int64, pl.Boolean, pl.Utf8)


# Per catalog: the training columns of a row without training (float figures NaN), kept from the first frame
# that had one, so that serving-only frames skip the training stages.
_BLANK_TRAINING: dict[int, dict[str, tuple[np.dtype, object]]] = {}


def _training(scen: Columns, cat: Catalog) -> dict[str, np.ndarray]:
    """The training columns of every row (plans searched in chunks)."""
    parts, order = [], []
    fixed, pattern = plans.auto_pattern(scen)
    for rows in _chunks(pattern):
        part = scen.take(rows)
        keys = (fixed, pattern) if part is scen else ({d: v[rows] for d, v in fixed.items()}, pattern[rows])
        cand, chosen, second = plans.search(part, cat, keys)
        workloads.sample_step(cand)
        best = cand.take(chosen)
        out = _training_results(best, cat)
        out |= _runner_up(cand, chosen, second)
        out["train_plans_searched"] = np.bincount(cand.scenario_row, minlength=part.n)
        parts.append(out)
        order.append(rows)
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if len(parts) > 1 else parts[0]
    if len(parts) > 1:
        inverse = np.empty(scen.n, dtype=np.int64)
        inverse[np.concatenate(order)] = np.arange(scen.n)
        out = {k: v[inverse] for k, v in out.items()}
    without = np.flatnonzero(scen.has_train != 1)
    if len(without) and id(cat) not in _BLANK_TRAINING:
        i = int(without[0])
        _BLANK_TRAINING[id(cat)] = {k: (v.dtype, np.nan if v.dtype.kind == "f" else v[i]) for k, v in out.items()}
    return out


def add_text(result: pl.DataFrame) -> pl.DataFrame:
    """The sentence columns (reasons, bottlenecks, plan notes) of a result frame made with text=False."""
    result = _with_text(result)
    return _with_serving_text(result) if "infer_fits" in result.columns else result


# Rows per chunk: small enough that a chunk's columns stay in cache and a sweep of searched plans never
# holds millions of candidate rows at once; large enough that numpy's per-call overhead is amortised.
EXPLICIT_CHUNK = 131_072
SEARCHED_CHUNK = 64


def _chunks(pattern: np.ndarray) -> list[np.ndarray]:
    """Scenario rows in chunks, from each row's pattern of searched plan keys (plans.auto_pattern): explicit
    plans many at a time, searched plans (hundreds of candidate rows each) a few at a time. A loop over
    chunks, not over scenarios."""
    searched = pattern != 0
    explicit_rows, searched_rows = np.flatnonzero(~searched), np.flatnonzero(searched)
    chunks = [explicit_rows[i : i + EXPLICIT_CHUNK] for i in range(0, len(explicit_rows), EXPLICIT_CHUNK)]
    chunks += [searched_rows[i : i + SEARCHED_CHUNK] for i in range(0, len(searched_rows), SEARCHED_CHUNK)]
    return chunks or [np.arange(len(pattern))]


def _training_results(r: Columns, cat: Catalog) -> dict[str, np.ndarray]:
    runs = (r.reason == 0) & (r.has_train == 1)
    # Steady state: the step waits for its input where storage, or the host CPUs preparing it, cannot keep up
    # (storage.py, host.py).
    storage.data_loading(r, cat)
    r.step_time_s = r.step_time_s + r.t_storage_stall_s + r.t_host_stall_s
    step = r.step_time_s
    r.tokens_per_s = r.tokens_per_step / step
    r.steps = r.tokens / r.tokens_per_step
    r.work_s = r.steps * step + r.eval_time_s
    # Whole run: checkpoints, failures and restarts stretch the work into the wall-clock (goodput.py).
    goodput.run(r, cat)
    r.gpu_hours = r.n_gpus * r.train_time_s / 3600.0
    peak = np.where(r.prec == 2, r.fp4_peak_tflops, np.where(r.prec == 1, r.fp8_tflops, r.bf16_tflops)) * 1e12
    # Throughput figures (MFU, HFU, TFLOP/s) are steady-state: they exclude checkpoint and failure losses.
    mfu = r.model_flops_per_token * r.tokens_per_s / (r.n_gpus * peak)
    hfu = r.hw_flops_per_token * r.tokens_per_s / (r.n_gpus * peak)

    busy = r.t_compute_s + r.t_optimizer_s
    energy.training_energy(r, cat)
    cost.training_cost(r)
    idle = goodput.idle_breakdown(r)
    # A chosen plan whose run cannot be had gets a reason, never infinite or negative figures.
    r.reason = _unrunnable(r, runs, mfu)
    runs = (r.reason == 0) & (r.has_train == 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        idle_pct = {k: 100.0 * v / r.train_time_s for k, v in idle.items()}
    samples = r.is_samples == 1
    used_share = np.where(samples, 1.0, r.n_used / np.maximum(r.n_gpus, 1))

    # Attribute exposed communication to the fabric it crosses.
    parts = {
        "tp": (r.t_tp_s, r.tp_across),
        "cp": (r.t_cp_s, r.cp_across),
        "ep": (r.t_ep_s, r.ep_across),
        "pp": (r.t_pp_s, r.pp_across),
        "dp": (r.t_dp_s, r.dp_across),
        "nic": (r.t_nic_wait_s, np.ones(r.n, dtype=bool)),
    }
    scale_up = sum(np.where(out, 0.0, t) for t, out in parts.values())
    scale_out = sum(np.where(out, t, 0.0) for t, out in parts.values())
    # Each part as a share of the step (each divided once: the bottleneck and the overhead read the same).
    of_step = {
        name: x / step
        for name, x in (
            ("busy", busy),
            ("scale_up", scale_up),
            ("scale_out", scale_out),
            *((k, getattr(r, k)) for k in OVERHEAD_PARTS),
        )
    }
    kind, share = _largest([of_step[k] for k in ("busy", "scale_up", "scale_out", "t_bubble_s", "t_sync_s")])
    # Input is prefetched, so a step waits on storage (or on the host CPUs preparing it) only when that takes
    # longer than everything else: then it alone sets the pace (more compute or network would not help).
    storage_share, host_share = of_step["t_storage_stall_s"], of_step["t_host_stall_s"]
    host_waits = host_share > storage_share
    paced = np.maximum(storage_share, host_share) > STORAGE_PACING_SHARE
    kind = np.where(paced, np.where(host_waits, 6, 5), kind)
    share = np.where(paced, np.where(host_waits, host_share, storage_share), share)
    # Code 4 is memory capacity, which no share measures; 6 stragglers, 7 host preprocessing.
    kind = BOTTLENECK_OF_PART[kind]
    kind = np.where(r.reason == 9, 4, kind)
    # The largest single overhead, for the "why" line: which collective, and how much of the step.
    overhead_code, overhead_share = _largest([of_step[k] for k in OVERHEAD_PARTS])
    rcl_all = r.rcl >= r.layers_stage
    recompute_code = np.where(r.rcl <= 0, r.rc, np.where(rcl_all, 2, np.where(r.rc == 1, 4, 3)))
    note = (r.gbs != r.gbs_requested) * 1 + (r.n_used < r.n_gpus) * 2

    # Figures of plans that cannot run are blank (NaN, null in the frame); a sweep where all run skips it.
    if runs.all():

        def keep(x):
            return x
    else:
        blank = np.where(runs, 1.0, np.nan)

        def keep(x):
            return x * blank

    trains = (r.has_train == 1).all()

    def if_training(x):
        return x if trains else np.where(r.has_train == 1, x, np.nan)

    return {
        "train_fits": runs,
        "train_reason_code": np.where(r.has_train == 1, r.reason, 8),
        "train_tp": r.tp.astype(np.int64),
        "train_cp": r.cp.astype(np.int64),
        "train_pp": r.pp.astype(np.int64),
        "train_dp": r.dp.astype(np.int64),
        "train_microbatch": r.mb.astype(np.int64),
        "train_zero": r.zero.astype(np.int64),
        "train_dp_shard": r.shard.astype(np.int64),
        "train_interleave": r.v.astype(np.int64),
        "train_ep": r.ep.astype(np.int64),
        "train_etp": r.etp.astype(np.int64),
        "train_recompute_code": recompute_code.astype(np.int64),
        "train_recompute_layers": r.rcl.astype(np.int64),
        "train_layers_per_stage": r.layers_stage.astype(np.int64),
        "train_gpus_used": r.n_used.astype(np.int64),
        "train_plan_note_code": note.astype(np.int64),
        "train_micro_batches": r.m.astype(np.int64),
        "train_global_batch_seqs": r.gbs.astype(np.int64),
        "train_global_batch_requested": r.gbs_requested.astype(np.int64),
        "train_global_batch_adjusted": r.gbs != r.gbs_requested,
        "train_step_time_s": keep(step),
        "train_error_band_pct": keep(r.train_band_pct),
        "train_tokens_per_s": keep(np.where(samples, np.nan, r.tokens_per_s)),
        "train_samples_per_s": keep(r.gbs / step),
        "train_wall_clock_days": keep(r.train_time_s / 86400.0),
        "train_gpu_hours": keep(r.gpu_hours),
        "train_goodput": keep(r.goodput),
        "train_mfu": keep(mfu),
        "train_hfu": keep(hfu),
        "train_tflops_per_gpu": keep(hfu * peak / 1e12),
        "train_idle_gpu_pct": keep(sum(idle_pct.values())),
        "train_useful_gpu_pct": keep(100.0 * (r.steps * busy + r.eval_time_s) / r.train_time_s * used_share),
        **{f"train_idle_{k}_pct": keep(v) for k, v in idle_pct.items()},
        "train_t_storage_stall_s": keep(r.t_storage_stall_s),
        "train_t_io_s": keep(r.t_io_s),
        "train_data_demand_gb_s_per_gpu": keep(r.data_demand_gb_s_per_gpu),
        "train_data_supply_gb_s": keep(r.data_supply_gb_s),
        "train_storage_bound_gpus": keep(r.storage_bound_gpus),
        "train_t_host_prep_s": keep(r.t_host_prep_s),
        "train_t_host_stall_s": keep(r.t_host_stall_s),
        "train_t_gpu_decode_s": keep(r.t_gpu_decode_s),
        "train_host_core_us_per_unit": keep(r.host_core_s_per_unit * 1e6),
        "train_host_cores_needed_per_gpu": keep(r.host_cores_needed_per_gpu),
        "train_host_cores_free_per_gpu": keep(r.host_cores_free_per_gpu),
        "train_host_sockets_per_node": keep(host.sockets_per_node(r)),
        "train_host_load": keep(r.host_load),
        "train_host_cpu_w_per_node": keep(r.host_cpu_w),
        "train_checkpoint_gb": keep(r.ckpt_gb),
        # (Infinite only without storage for checkpoints, which a run with checkpoints has as its reason.)
        "train_checkpoint_write_s": keep(np.where(np.isfinite(r.ckpt_write_s), r.ckpt_write_s, np.nan)),
        "train_checkpoint_stall_s": keep(r.ckpt_stall_s),
        # No storage to write to is a reason where checkpoints are taken; without checkpoints: no figure.
        "train_checkpoint_background_write_s": keep(
            np.where(np.isfinite(r.ckpt_bg_write_s), r.ckpt_bg_write_s, np.nan)
        ),
        "train_checkpoint_interval_min": keep(r.ckpt_interval_s / 60.0),
        "train_restart_min": keep(r.restart_total_s / 60.0),
        # No interruptions modelled: no MTBF figure (null), not an infinite one.
        "train_mtbf_h": keep(np.where(np.isfinite(r.mtbf_h), r.mtbf_h, np.nan)),
        "train_interruptions": keep(r.interruptions),
        "train_t_compute_s": keep(r.t_compute_s),
        "train_t_tp_s": keep(r.t_tp_s),
        "train_t_cp_s": keep(r.t_cp_s),
        "train_t_nic_wait_s": keep(r.t_nic_wait_s),
        "train_t_sync_s": keep(r.t_sync_s),
        "train_t_ep_s": keep(r.t_ep_s),
        "train_t_pp_s": keep(r.t_pp_s),
        "train_t_dp_s": keep(r.t_dp_s),
        "train_t_bubble_s": keep(r.t_bubble_s),
        "train_t_optimizer_s": keep(r.t_optimizer_s),
        "train_mem_gb": if_training(r.mem_gb),
        "train_mem_weights_gb": if_training(r.mem_weights_gb),
        "train_mem_grads_gb": if_training(r.mem_grads_gb),
        "train_mem_optimizer_gb": if_training(r.mem_optimizer_gb),
        "train_mem_activations_gb": if_training(r.mem_activations_gb),
        "train_hbm_gb": r.hbm_gb,
        "train_energy_mwh": keep(r.energy_mwh),
        "train_it_energy_mwh": keep(r.it_energy_mwh),
        "train_gpu_energy_mwh": keep(r.gpu_energy_mwh),
        "train_host_energy_mwh": keep(r.host_energy_mwh),
        "train_switch_energy_mwh": keep(r.switch_energy_mwh),
        "train_fan_energy_mwh": keep(r.fan_energy_mwh),
        "train_psu_loss_energy_mwh": keep(r.psu_loss_energy_mwh),
        "train_storage_energy_mwh": keep(r.storage_energy_mwh),
        "train_cost_usd": keep(r.cost_usd),
        "train_cost_compute_usd": keep(r.cost_compute_usd),
        "train_cost_network_usd": keep(r.cost_network_usd),
        "train_cost_storage_usd": keep(r.cost_storage_usd),
        "train_cost_facility_usd": keep(r.cost_facility_usd),
        "train_cost_electricity_usd": keep(r.cost_electricity_usd),
        "train_cost_usd_per_gpu_hour": keep(r.cost_usd_per_gpu_hour),
        "train_electricity_usd": keep(r.electricity_usd),
        "train_co2_t": keep(r.co2_t),
        "train_co2_market_t": keep(r.co2_market_t),
        "train_co2_embodied_t": keep(r.co2_embodied_t),
        "train_water_m3": keep(r.water_m3),
        "train_avg_power_mw": keep(r.facility_power_mw),
        "train_peak_power_mw": keep(r.peak_facility_power_mw),
        "train_gpu_avg_w": keep(r.gpu_avg_w),
        "train_gpu_compute_w": keep(r.gpu_compute_w),
        "train_gpu_wait_w": keep(r.gpu_wait_w),
        "train_gpu_step_w": keep(r.gpu_step_w),
        "train_gpu_utilisation": keep(r.gpu_utilisation),
        "train_host_w_per_gpu": keep(r.host_w_per_gpu),
        "train_peak_it_kw": keep(r.peak_it_kw),
        "train_tokens_per_kwh": keep(r.tokens_per_kwh),
        "train_node_peak_kw": keep(r.node_peak_kw),
        "train_rack_kw": keep(r.rack_kw),
        "train_rack_limit_kw": r.rack_limit_kw,
        "train_rack_over_limit": np.where(runs, r.rack_over_limit, False),
        "train_racks": keep(r.racks),
        "train_floor_m2": keep(r.floor_m2),
        "train_pue": r.pue,
        "train_bottleneck_code": np.where(runs | (r.reason == 9), kind, -1),
        "train_bottleneck_share": np.where(runs, share, np.nan),
        "train_overhead_code": overhead_code,
        "train_overhead_share": overhead_share,
    }


# The overheads of a step in the order of train_overhead_code (the names in _training_text).
OVERHEAD_PARTS = (
    "t_tp_s",
    "t_ep_s",
    "t_pp_s",
    "t_dp_s",
    "t_bubble_s",
    "t_storage_stall_s",
    "t_cp_s",
    "t_nic_wait_s",
    "t_sync_s",
    "t_host_stall_s",
)
# The bottleneck code (BOTTLENECKS) of each step part _training_results compares: busy, scale-up, scale-out,
# bubble, stragglers (4 -> 6), then storage (5) and host preprocessing (6 -> 7).
BOTTLENECK_OF_PART = np.array([0, 1, 2, 3, 6, 5, 7])


def _largest(parts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the index of the largest of `parts` and its value, as np.argmax over the parts stacked as
    columns gives them: the first of equal largest values, or the first NaN (NaN counts as the largest).
    A running comparison, without the stacked copy."""
    best = parts[0].copy()
    index = np.zeros(len(best), dtype=np.int64)
    for i, x in enumerate(parts[1:], start=1):
        # Strictly larger (an equal later part loses), or the first NaN (nothing compares larger than it after).
        take = (x > best) | (np.isnan(x) & ~np.isnan(best))
        np.copyto(best, x, where=take)
        np.copyto(index, i, where=take)
    return index, best


# Reason codes (plans.REASONS) for a run that cannot be had although its plan fits.
NO_INPUT, NO_CHECKPOINT_STORAGE, NEVER_FINISHES, OUT_OF_RANGE = 12, 13, 14, 15


def _unrunnable(r: Columns, runs: np.ndarray, mfu: np.ndarray) -> np.ndarray:
    """The reason code of each row: unchanged, or where a plan fits but its run cannot be had: no storage to
    read the input from (no supply: it would wait forever), none to write checkpoints to, interruptions
    faster than it can make progress (an infinite wall-clock), or any headline figure not finite and
    non-negative (an override far outside what hardware has)."""
    samples = r.is_samples == 1
    with np.errstate(invalid="ignore"):
        figures = [r.step_time_s, r.train_time_s, r.gpu_hours, r.mem_gb, r.energy_mwh, r.goodput]
        bad = np.zeros(r.n, dtype=bool)
        for x in figures:
            bad |= ~np.isfinite(x) | (x < 0)
        # A device without a catalog price (a CPU socket) has no cost (NaN, shown as '-'), which is no fault.
        bad |= np.isinf(r.cost_usd) | (r.cost_usd < 0)
        bad |= ~samples & ~(np.isfinite(r.tokens_per_s) & (r.tokens_per_s > 0))
        bad |= ~samples & ~(np.isfinite(mfu) & (mfu >= 0) & (mfu <= 1))
        checks = [
            (NO_INPUT, ~(r.data_supply_gb_s > 0)),
            (NO_CHECKPOINT_STORAGE, (r.ckpt_mode > 0) & ~np.isfinite(r.ckpt_write_s)),
            (NEVER_FINISHES, ~np.isfinite(r.train_time_s) & np.isfinite(r.step_time_s)),
            (OUT_OF_RANGE, bad),
        ]
    reason = r.reason.copy()
    for code, hit in reversed(checks):
        reason = np.where(runs & hit, code, reason)
    return reason


# The runner-up's plan columns (train_runner_up_<name>) and the candidate columns they come from.
RUNNER_UP_PLAN = (
    ("tp", "tp"),
    ("cp", "cp"),
    ("pp", "pp"),
    ("dp", "dp"),
    ("ep", "ep"),
    ("microbatch", "mb"),
    ("zero", "zero"),
    ("interleave", "v"),
    ("recompute_layers", "rcl"),
)


def _runner_up(cand: Columns, chosen: np.ndarray, second: np.ndarray) -> dict[str, np.ndarray]:
    """The runner-up plan of each scenario, how much slower it is per token, and the part of the step it loses
    most on (an index into STEP_PARTS); -1 / NaN where no other plan runs."""
    has = second >= 0
    n = len(has)
    if not has.any():  # explicit plans: no runner-up anywhere (-1 and NaN throughout, nothing to compare)
        return {f"train_runner_up_{k}": np.full(n, -1, dtype=np.int64) for k, _ in RUNNER_UP_PLAN} | {
            "train_runner_up_step_time_s": np.full(n, np.nan),
            "train_runner_up_slower_pct": np.full(n, np.nan),
            "train_runner_up_why_code": np.full(n, -1, dtype=np.int64),
        }
    pick = np.where(has, second, chosen)
    b, s = cand.take(chosen), cand.take(pick)
    per_b, per_s = b.tokens_per_step, s.tokens_per_step
    deltas = np.stack([getattr(s, k) / per_s - getattr(b, k) / per_b for k in STEP_PARTS], axis=1)
    why = np.where(has, np.argmax(deltas, axis=1), -1)
    slower = 100.0 * ((s.step_time_s / per_s) / (b.step_time_s / per_b) - 1.0)
    nan = np.where(has, 1.0, np.nan)

    def plan(d):
        return np.where(has, getattr(s, d), -1).astype(np.int64)

    return {f"train_runner_up_{k}": plan(d) for k, d in RUNNER_UP_PLAN} | {
        "train_runner_up_step_time_s": s.step_time_s * nan,
        "train_runner_up_slower_pct": slower * nan,
        "train_runner_up_why_code": why.astype(np.int64),
    }


def _whole(x: pl.Expr) -> pl.Expr:
    """A number as whole-number text; beyond any real figure (an extreme override) it is clipped, never a
    failed f64 -> i64 cast."""
    return x.round(0).clip(-1e15, 1e15).cast(pl.Int64, strict=False).cast(pl.Utf8)


def _with_text(result: pl.DataFrame) -> pl.DataFrame:
    return result.with_columns(**_training_text())


@functools.cache
def _training_text() -> dict[str, pl.Expr]:
    """The training sentence columns as polars expressions (built once: building them costs more than running)."""
    reasons = {k: v for k, v in plans.REASONS.items()}
    overhead_names = [
        "tensor-parallel communication",
        "expert all-to-all",
        "pipeline sends",
        "data-parallel communication",
        "pipeline bubble",
        "storage stall",
        "context-parallel ring",
        "NIC contention",
        "waiting for stragglers",
        "host preprocessing",
    ]
    pct = lambda col: _whole(pl.col(col) * 100)  # noqa: E731
    gb = lambda col: pl.col(col).round(1).cast(pl.Utf8)  # noqa: E731
    mb = lambda col: (pl.col(col) * 1000).round(1).cast(pl.Utf8)  # noqa: E731
    reason = (
        pl.when(pl.col("train_fits"))
        .then(None)
        .when(pl.col("train_reason_code") == 9)
        .then(pl.format("needs {} GB per GPU, has {} GB", gb("train_mem_gb"), gb("train_hbm_gb")))
        .otherwise(pl.col("train_reason_code").replace_strict(reasons, default="no plan", return_dtype=pl.Utf8))
    )
    bottleneck = pl.col("train_bottleneck_code").replace_strict(
        dict(enumerate(BOTTLENECKS)), default=None, return_dtype=pl.Utf8
    )
    overhead = pl.col("train_overhead_code").replace_strict(dict(enumerate(overhead_names)), return_dtype=pl.Utf8)
    detail = (
        pl.when(pl.col("train_bottleneck_code") == BOTTLENECKS.index("memory capacity"))
        .then(pl.format("memory capacity: {}", reason))
        .when(pl.col("train_fits").not_())
        .then(None)
        .when(pl.col("train_bottleneck_code") == BOTTLENECKS.index("compute"))
        .then(
            pl.format(
                "compute: {}% of step time; largest overhead: {} {}%",
                pct("train_bottleneck_share"),
                overhead,
                pct("train_overhead_share"),
            )
        )
        .when(pl.col("train_bottleneck_code") == BOTTLENECKS.index("storage"))
        .then(
            pl.format(
                "storage: {}% of step time waiting for input ({} MB/s per GPU needed, {} GB/s supplied to the job)",
                pct("train_bottleneck_share"),
                mb("train_data_demand_gb_s_per_gpu"),
                gb("train_data_supply_gb_s"),
            )
        )
        .when(pl.col("train_bottleneck_code") == BOTTLENECKS.index("stragglers"))
        .then(pl.format("stragglers: {}% of step time waiting for the slowest GPU", pct("train_bottleneck_share")))
        .when(pl.col("train_bottleneck_code") == BOTTLENECKS.index("host preprocessing"))
        .then(
            pl.format(
                "host preprocessing: {}% of step time waiting for the host CPUs ({} cores per GPU needed, {} free)",
                pct("train_bottleneck_share"),
                pl.col("train_host_cores_needed_per_gpu").round(1).cast(pl.Utf8),
                pl.col("train_host_cores_free_per_gpu").round(1).cast(pl.Utf8),
            )
        )
        .otherwise(pl.format("{}: {}% of step time exposed {}", bottleneck, pct("train_bottleneck_share"), overhead))
    )
    whole = lambda col: pl.col(col).cast(pl.Utf8)  # noqa: E731
    recompute = pl.col("train_recompute_code").replace_strict(RECOMPUTE_NAMES, return_dtype=pl.Utf8)
    recompute = (
        pl.when(pl.col("train_recompute_code").is_in([3, 4]))
        .then(
            pl.format(
                "{} ({} of {} layers per stage in full)",
                recompute,
                whole("train_recompute_layers"),
                whole("train_layers_per_stage"),
            )
        )
        .otherwise(recompute)
    )
    note = (
        pl.when(pl.col("train_plan_note_code") == 0)
        .then(None)
        .when(pl.col("train_plan_note_code") == 1)
        .then(
            pl.format(
                "global batch {} sequences (asked: {}) to be whole micro-batches per replica",
                whole("train_global_batch_seqs"),
                pl.col("train_global_batch_requested").cast(pl.Utf8),
            )
        )
        .when(pl.col("train_plan_note_code") == 2)
        .then(
            pl.format(
                "uses {} of {} GPUs: no plan on all of them divides the global batch faster",
                whole("train_gpus_used"),
                whole("n_gpus"),
            )
        )
        .otherwise(
            pl.format(
                "uses {} of {} GPUs, global batch {} sequences",
                whole("train_gpus_used"),
                whole("n_gpus"),
                whole("train_global_batch_seqs"),
            )
        )
    )
    why = pl.col("train_runner_up_why_code").replace_strict(
        dict(enumerate(STEP_PART_NAMES)), default=None, return_dtype=pl.Utf8
    )
    runner = (
        pl.when(pl.col("train_runner_up_why_code") < 0)
        .then(None)
        .otherwise(
            pl.format(
                "TP{} CP{} PP{} DP{} EP{}, {}% slower per token: more {}",
                whole("train_runner_up_tp"),
                whole("train_runner_up_cp"),
                whole("train_runner_up_pp"),
                whole("train_runner_up_dp"),
                whole("train_runner_up_ep"),
                pl.col("train_runner_up_slower_pct").round(1).cast(pl.Utf8),
                why,
            )
        )
    )
    return dict(
        train_reason=reason,
        train_recompute=recompute,
        train_bottleneck=bottleneck,
        train_bottleneck_detail=detail,
        train_plan_note=note,
        train_runner_up_why=why,
        train_runner_up=runner,
    )


def _with_serving_text(result: pl.DataFrame) -> pl.DataFrame:
    return result.with_columns(**_serving_text("device_kind" in result.columns))


@functools.cache
def _serving_text(kinds: bool = False) -> dict[str, pl.Expr]:
    """Why a serving plan cannot run, and what limits it when it can (docs/model.md ("Serving"))."""
    gb = lambda col: pl.col(col).round(1).cast(pl.Utf8)  # noqa: E731
    pct = lambda col: _whole(pl.col(col) * 100)  # noqa: E731
    num = lambda col, d=1: pl.col(col).round(d).cast(pl.Utf8)  # noqa: E731
    reason = (
        pl.when(pl.col("infer_fits"))
        .then(None)
        .when((pl.col("infer_reason_code") == 9) & (pl.col("infer_mem_usable_gb") <= 0))
        .then(
            pl.format(
                "needs {} GB per GPU (weights {} GB and one sequence's KV cache), has none usable: the runtime's "
                "reserve takes all of its {} GB",
                gb("infer_mem_needed_gb"),
                gb("infer_mem_weights_gb"),
                gb("infer_hbm_gb"),
            )
        )
        .when(pl.col("infer_reason_code") == 9)
        .then(
            pl.format(
                "needs {} GB per GPU (weights {} GB and one sequence's KV cache), has {} GB usable of {} GB",
                gb("infer_mem_needed_gb"),
                gb("infer_mem_weights_gb"),
                gb("infer_mem_usable_gb"),
                gb("infer_hbm_gb"),
            )
        )
        .otherwise(pl.col("infer_reason_code").replace_strict(serving.REASONS, default="no plan", return_dtype=pl.Utf8))
    )
    bottleneck = pl.col("infer_bottleneck_code").replace_strict(
        dict(enumerate(serving.BOTTLENECKS)), default=None, return_dtype=pl.Utf8
    )
    if kinds:
        # A CPU socket streams its weights and KV cache from DRAM (DDR5 / MRDIMM), not HBM.
        bottleneck = (
            pl.when(pl.col("device_kind") == "cpu")
            .then(bottleneck.str.replace("(HBM)", "(DRAM)", literal=True))
            .otherwise(bottleneck)
        )
    whole = lambda col: _whole(pl.col(col))  # noqa: E731
    # Requests per second: whole numbers from 100 up, two decimals below.
    rate = lambda col: pl.when(pl.col(col) >= 100).then(whole(col)).otherwise(num(col, 2))  # noqa: E731
    cap = (
        pl.when(pl.col("infer_batch_limit") < pl.col("infer_max_batch"))
        .then(pl.lit(" (concurrency cap)"))
        .otherwise(pl.lit(" (KV-cache memory)"))
    )
    batch = pl.format("batch {} of {} per replica{}", num("infer_batch_mean", 1), whole("infer_batch_limit"), cap)
    detail = (
        pl.when(pl.col("infer_bottleneck_code") == serving.MEMORY_CODE)
        .then(pl.format("memory capacity: {}", reason))
        .when(pl.col("infer_fits").not_())
        .then(None)
        .when(pl.col("infer_bottleneck_code") == serving.OVERLOAD_CODE)
        .then(
            pl.format(
                "request rate above capacity: {} req/s offered, {} req/s served at full batch",
                rate("infer_offered_rps"),
                rate("infer_capacity_rps"),
            )
        )
        .otherwise(pl.format("{}: {}% of each iteration; {}", bottleneck, pct("infer_bottleneck_share"), batch))
    )
    return dict(
        infer_reason=reason,
        infer_bottleneck=bottleneck,
        infer_bottleneck_detail=detail,
    )
