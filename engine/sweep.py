"""Sweeps: a grid of scenarios built as columns, not as a million pydantic objects.

    grid = resolve(distinct combinations of the keys only resolution can apply) x (numeric keys as columns)

A varied key either maps onto frame columns (`COLUMN_KEYS`: what resolve.py would write for it, read off
`_row`) or is resolved: every distinct combination of the resolved keys (GPU type, model, fabric, precision...)
becomes one validated Scenario and one `resolve` row. Each distinct value of each column key is validated once
as a Scenario with that one change; the rules that join two keys (whole nodes, serving GPUs within the
cluster) are checked on the whole grid at once (`cross_rule_issues`). Pure: no printing, no files.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from pydantic import BaseModel, ValidationError

from . import serving, workloads
from .catalog import close_matches, load_catalog
from .columns import Columns, _FrameSource
from .errors import FieldIssue, Problem, ScenarioError, _model_class, from_validation_error, printable
from .evaluate import add_text, evaluate
from .plan_memo import PLAN_INPUTS, plan_picks, searched_only
from .presets_merge import toml_value, with_settings
from .resolve import AUTO, RECOMPUTE_CODES, resolve
from .scenario import Scenario, repriced
from .training import plans

# A grid beyond this is refused rather than left to exhaust memory (~130 result columns of 8 bytes a point:
# 5M points hold ~5 GB).
MAX_POINTS = 5_000_000
# Distinct combinations of resolved keys are resolved one by one (~0.1 ms each).
MAX_RESOLVED = 20_000
# Rows built and evaluated at once: bounds the memory of the input frame (~200 float columns).
CHUNK_ROWS = 131_072
AUTO_CHUNK_ROWS = 1_024
# Validation failures that join two keys: checked on the whole grid instead (`cross_rule_issues`).
CROSS_RULES = {"partial_node", "too_many_per_node", "too_many_serving_gpus"}
NOT_VARIED = {"schema_version", "name", "description"}
# Columns `frame` adds for the mapping and the cross-field checks; evaluate never sees them.
HELPERS = ["_i_gpus_follow", "_gbs_per_gpu", "_pod_follow", "_market_follows"]


@dataclass(frozen=True)
class Axis:
    """One varied key and its values, in the order given."""

    key: str
    values: tuple


# Parsing `--vary` ------------------------------------------------------------------------------------------


def parse_axis(text: str, flag: str = "--vary") -> Axis:
    """`key=v1,v2,...` (TOML literals, bare words as text), `key=a:b:xF` (a, a*F, ... up to b; rounded to whole
    numbers where a and b are whole), `key=a:b:S` or
    `key=a:b:+S` (a, a+S, ... up to b) or `key=a:b` (step 1)."""
    key, sep, spec = text.partition("=")
    key, spec = key.strip(), spec.strip()
    if not sep or not key or not spec:
        raise _bad(flag, text, "expected key=values, e.g. cluster.gpu_count=8:1024:x2 or cluster.gpu=h100-sxm,b200")
    if ":" in spec and "," not in spec:
        values = _range(spec, key, flag)
    else:
        values = tuple(toml_value(v.strip()) for v in spec.split(","))
        if any(v == "" for v in values):
            raise _bad(flag, text, "an empty value in the list; allowed: values separated by single commas")
        if any(isinstance(v, list | dict) for v in values):
            raise _bad(flag, spec, "a value is an array or a table; allowed: numbers, true / false or words", key)
    return Axis(key, tuple(dict.fromkeys(values)))


def _bad(flag: str, value: Any, message: str, key: str = "") -> ScenarioError:
    return ScenarioError([FieldIssue(key, value, message)], flag)


def _range(spec: str, key: str, flag: str) -> tuple:
    parts = spec.split(":")
    if len(parts) not in (2, 3):
        raise _bad(flag, spec, "a range is start:stop, start:stop:step or start:stop:xFACTOR", key)
    start, stop = (toml_value(p.strip()) for p in parts[:2])
    step_text = parts[2].strip() if len(parts) == 3 else "1"
    geometric = step_text.startswith("x")
    step = toml_value(step_text.lstrip("x+"))
    for name, v in (("start", start), ("stop", stop), ("step", step)):
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise _bad(flag, spec, f"the range's {name} {v!r} is not a number", key)
    if stop < start:
        raise _bad(flag, spec, f"the range runs down ({start} to {stop}); allowed: start <= stop", key)
    if geometric and (step <= 1 or start <= 0):
        raise _bad(flag, spec, "a geometric range needs a factor above 1 and a start above 0", key)
    if not geometric and step <= 0:
        raise _bad(flag, spec, "the step must be above 0", key)
    count = math.log(stop / start, step) + 1 if geometric else (stop - start) / step + 1
    if count > MAX_POINTS:
        raise _bad(flag, spec, f"{count:,.0f} values; allowed: at most {MAX_POINTS:,}", key)
    # Whole-number ends keep whole-number values, also with a fractional factor (8:64:x1.5: 8, 12, 18, ...).
    whole = all(isinstance(v, int) for v in (start, stop)) and (geometric or isinstance(step, int))
    values, v, i = [], start, 0
    # Computed from the index (not by repeated adding) so 0.1 steps do not drift; a small tolerance keeps
    # the stop value when it is meant to be included.
    while True:
        v = start * step**i if geometric else start + i * step
        if v > stop * (1 + 1e-12):
            break
        values.append(round(v) if whole else v)
        i += 1
    return tuple(values)


# Which scenario keys feed which columns -------------------------------------------------------------------

V = pl.col("__value")
SAMPLES = pl.col("is_samples") == 1


def _direct(column: str, scale: float = 1.0) -> Callable[[pl.Expr], dict[str, pl.Expr]]:
    return lambda v: {column: v * scale if scale != 1.0 else v}


def _when(cond: pl.Expr, column: str, scale: float = 1.0):
    return lambda v: {column: pl.when(cond).then(v * scale if scale != 1.0 else v).otherwise(pl.col(column))}


def _plan_key(column: str):
    # Sample workloads run pure data parallelism whatever the plan says (resolve._sample_columns).
    return lambda v: {column: pl.when(SAMPLES).then(pl.col(column)).otherwise(v)}


# Defaults of an explicit parallelism table (resolve._plan): a key set on an "auto" plan makes it a table.
TABLE_DEFAULTS = {"p_cp": 1.0, "p_etp": 1.0, "p_shard": 0.0}


def _table_key(column: str):
    def write(v):
        out = {
            other: pl.when(~SAMPLES & (pl.col(other) == AUTO)).then(default).otherwise(pl.col(other))
            for other, default in TABLE_DEFAULTS.items()
            if other != column
        }
        return out | {column: pl.when(SAMPLES).then(pl.col(column)).otherwise(v)}

    return write


# key -> value expression -> {frame column: expression}. Read off resolve._row: a key is here only if the
# columns it writes depend on nothing else that a sweep may vary (or the dependence is written out below,
# through the helper columns `_row_helpers` adds). Order matters where two keys write one column: the more
# specific key comes later and wins (inference.gpu_count after cluster.gpu_count).
COLUMN_KEYS: dict[str, Callable[[pl.Expr], dict[str, pl.Expr]]] = {
    "cluster.gpu_count": lambda v: {
        "n_gpus": v.cast(pl.Int64),
        "i_gpus": pl.when(pl.col("_i_gpus_follow")).then(v).otherwise(pl.col("i_gpus")),
        "gbs": pl.when(pl.col("_gbs_per_gpu").is_not_null()).then(pl.col("_gbs_per_gpu") * v).otherwise(pl.col("gbs")),
        "pod_gpus": pl.when(pl.col("_pod_follow")).then(v).otherwise(pl.col("pod_gpus")),
    },
    "cluster.gpus_per_node": _direct("gpn"),
    "cluster.nodes_per_rack": _direct("nodes_per_rack"),
    "cluster.host_memory_gb": _direct("host_mem_gb"),
    "cluster.hbm_gb": _direct("hbm_gb"),
    "network.nics_per_node": _direct("nics"),
    "network.nic_gbps": _direct("nic_gb_s", 1 / 8),
    "network.scale_up_gb_s": _direct("su_gb_s"),
    "network.scale_up_latency_us": _direct("su_lat_us"),
    "network.scale_out_latency_us": _direct("so_lat_us"),
    "network.oversubscription": _direct("oversub"),
    "network.pod_gpus": _direct("pod_gpus"),
    "storage.nvme_drives_per_node": _direct("nvme_drives"),
    "storage.shared_fs_read_gb_s": _direct("fs_read_gb_s"),
    "storage.shared_fs_write_gb_s": _direct("fs_write_gb_s"),
    "storage.checkpoint_interval_min": _direct("ckpt_interval_min"),
    "storage.node_network_gbps": _direct("node_storage_gb_s", 1 / 8),
    "data.dataset_gb": _direct("dataset_gb"),
    "data.bytes_per_token": _when(~SAMPLES, "unit_bytes"),
    "data.samples_per_gpu_s": lambda v: {"sample_s": pl.when(SAMPLES).then(1.0 / v).otherwise(pl.col("sample_s"))},
    "reliability.gpu_mtbf_hours": _direct("gpu_mtbf_h"),
    "reliability.node_mtbf_hours": _direct("node_mtbf_h"),
    "reliability.restart_min": _direct("restart_s", 60.0),
    "storage.checkpoint_blocking_s": _direct("ckpt_blocking_s"),
    "storage.checkpoint_write_share": _direct("ckpt_write_share"),
    "cooling.rack_limit_kw": _direct("rack_limit_kw"),
    "facility.pue": lambda v: {"site_pue": v, "pue": v * pl.col("pue_factor")},
    "facility.wue_l_per_kwh": _direct("wue_l_per_kwh"),
    "facility.electricity_usd_per_kwh": _direct("usd_per_kwh"),
    "facility.grid_gco2_per_kwh": lambda v: {
        "gco2_per_kwh": v,
        "gco2_market_per_kwh": pl.when(pl.col("_market_follows")).then(v).otherwise(pl.col("gco2_market_per_kwh")),
    },
    "facility.market_gco2_per_kwh": _direct("gco2_market_per_kwh"),
    # A price of one's own replaces the catalog price and its basis (resolve._prices).
    "facility.usd_per_gpu_hour": lambda v: {
        "usd_per_gpu_hour": v,
        "price_key": pl.lit("facility.usd_per_gpu_hour"),
        "price_provider": pl.lit("set by the scenario"),
        "price_term": pl.lit(""),
        "price_date": pl.lit(""),
        "price_source": pl.lit("facility.usd_per_gpu_hour"),
        "price_via": pl.lit(""),
    },
    "facility.server_usd_per_gpu": lambda v: {
        "server_usd_per_gpu": v,
        "purchase_key": pl.lit("facility.server_usd_per_gpu"),
        "purchase_what": pl.lit("set by the scenario"),
        "purchase_date": pl.lit(""),
        "purchase_source": pl.lit("facility.server_usd_per_gpu"),
        "purchase_via": pl.lit(""),
    },
    "facility.network_capex_share": _direct("network_capex_share"),
    "facility.storage_capex_share": _direct("storage_capex_share"),
    "facility.depreciation_years": _direct("depreciation_years"),
    "facility.facility_usd_per_kw_month": _direct("usd_per_kw_month"),
    "training.train_tokens": _when(~SAMPLES, "tokens"),
    "training.seq_len_tokens": _when(~SAMPLES, "seq"),
    "training.global_batch_seqs": _when(~SAMPLES, "gbs"),
    "training.eval_tokens": _direct("eval_tokens"),
    "training.train_samples": _when(SAMPLES, "tokens"),
    "training.global_batch_samples": _when(SAMPLES, "gbs"),
    "training.recompute": _plan_key("p_rc"),
    "training.parallelism.tp": _table_key("p_tp"),
    "training.parallelism.pp": _table_key("p_pp"),
    "training.parallelism.dp": _table_key("p_dp"),
    "training.parallelism.microbatch": _table_key("p_mb"),
    "training.parallelism.zero": _table_key("p_zero"),
    "training.parallelism.interleave": _table_key("p_v"),
    "training.parallelism.ep": _table_key("p_ep"),
    "training.parallelism.cp": _table_key("p_cp"),
    "training.parallelism.etp": _table_key("p_etp"),
    "training.parallelism.dp_shard": _table_key("p_shard"),
    "training.recompute_layers": _plan_key("p_rcl"),
    "inference.prompt_tokens": _direct("i_prompt"),
    "inference.output_tokens": _direct("i_output"),
    "inference.concurrency": _direct("i_concurrency"),
    "inference.request_rate_per_s": _direct("i_rate"),
    "inference.gpu_count": _direct("i_gpus"),
    "inference.tp": _direct("i_tp"),
    "inference.pp": _direct("i_pp"),
    "inference.kv_cache_memory_fraction": _direct("i_kv_fraction"),
    # Chunking switched off is an infinite chunk (resolve._serving); the size only matters when it is on.
    "inference.prefill_chunk_tokens": _when(pl.col("i_chunk").is_finite(), "i_chunk"),
    "inference.ttft_p99_limit_ms": _direct("i_ttft_limit_ms"),
    "inference.tpot_p99_limit_ms": _direct("i_tpot_limit_ms"),
}
# Words a column key may take instead of a number, as resolve.py encodes them.
WORDS: dict[str, Mapping[str, float]] = {
    "training.recompute": RECOMPUTE_CODES,
    "storage.checkpoint_interval_min": {"auto": math.nan},
    "inference.tp": {"auto": AUTO},
    **{f"training.parallelism.{k}": {"auto": AUTO} for k in ("tp", "pp", "dp", "microbatch", "zero", "interleave")},
    "training.parallelism.ep": {"auto": AUTO},
    # Left out of a table these take their defaults (resolve._plan), not the search.
    "training.parallelism.cp": {"auto": 1.0},
    "training.parallelism.etp": {"auto": 1.0},
    "training.parallelism.dp_shard": {"auto": 0.0},
}


def key_kind(key: str) -> str:
    """'column' (a fast, vectorised key), 'resolved' (each distinct combination resolved), or raise."""
    if key in COLUMN_KEYS:
        return "column"
    _check_schema_key(key)
    return "resolved"


def _check_schema_key(key: str) -> None:
    parts = key.split(".")
    if parts[0] in NOT_VARIED:
        raise _bad_key(key, "is a label, not a figure to vary")
    model: type[BaseModel] | None = Scenario
    for i, part in enumerate(parts):
        fields = list(model.model_fields) if model is not None else []
        if part not in fields:
            where = ".".join(parts[:i]) or "the top level"
            near = close_matches(part, fields, n=3)
            hint = f"did you mean {' or '.join(near)}? " if near else ""
            raise _bad_key(key, f"unknown key; {hint}keys in {where}: {', '.join(fields)}")
        assert model is not None  # a part was found among its fields
        nxt = _model_class(model.model_fields[part].annotation)
        if nxt is None and i < len(parts) - 1:
            raise _bad_key(key, f"{'.'.join(parts[: i + 1])} holds a value, not a table of keys")
        model = nxt
    if model is not None and parts[-1] not in ("model", "parallelism"):
        raise _bad_key(key, "is a whole section; vary one of its keys (section.key)")


def _bad_key(key: str, message: str) -> ScenarioError:
    """A problem with the key itself (no value to show): `--vary: cluster.nokey: unknown key; ...`."""
    return ScenarioError([Problem(key, key, f"{printable(key)}: {message}")], "--vary")


# Building the grid -----------------------------------------------------------------------------------------


@dataclass
class Grid:
    """The resolved combinations, the axes in the order given, and how many points they make."""

    base: Scenario
    axes: list[Axis]
    combos: pl.DataFrame  # one resolved row per combination of the resolved axes, with helper columns
    resolved_axes: list[int]  # indices into axes
    column_axes: list[int]
    points: int


def build(base: Scenario, axes: Sequence[Axis]) -> Grid:
    """Validate every axis and resolve the combinations of the resolved ones (raises ScenarioError)."""
    axes = list(axes)
    seen = set()
    for axis in axes:
        if axis.key in seen:
            raise _bad("--vary", axis.key, "varied twice; give all its values in one --vary", axis.key)
        seen.add(axis.key)
        if not axis.values:
            raise _bad("--vary", axis.key, "no values to vary over", axis.key)
        _needs_section(base, axis.key)
    points = math.prod(len(a.values) for a in axes) if axes else 1
    if points > MAX_POINTS:
        raise _bad("--vary", f"{points:,} points", f"too many; allowed: at most {MAX_POINTS:,} in one sweep")
    kinds = [key_kind(a.key) for a in axes]
    data = base.model_dump(exclude_none=True)
    column_axes = [i for i, k in enumerate(kinds) if k == "column"]
    resolved_axes = [i for i, k in enumerate(kinds) if k == "resolved"]
    for i in column_axes:
        for value in axes[i].values:
            _validate_one(data, axes[i].key, value)
    n_combos = math.prod(len(axes[i].values) for i in resolved_axes) if resolved_axes else 1
    if n_combos > MAX_RESOLVED:
        keys = ", ".join(axes[i].key for i in resolved_axes)
        raise _bad(
            "--vary",
            f"{n_combos:,} combinations",
            f"of {keys}: each is resolved on its own; allowed: at most {MAX_RESOLVED:,} (vary fewer values)",
        )
    scenarios = []
    for values in itertools.product(*(axes[i].values for i in resolved_axes)):
        settings = [(axes[i].key, v) for i, v in zip(resolved_axes, values, strict=True)]
        scenarios.append(_validate(with_settings(data, settings), settings, _gpu(data)))
    combos = resolve(scenarios).with_columns(**_row_helpers(scenarios))
    return Grid(base, axes, combos, resolved_axes, column_axes, points)


def _needs_section(base: Scenario, key: str) -> None:
    section = key.split(".")[0]
    if section in ("training", "inference") and getattr(base, section) is None:
        hint = "--set training.model=..." if section == "training" else "--set inference.model=..."
        raise _bad("--vary", key, f"the scenario has no [{section}] workload to vary; add one first ({hint})", key)


def _validate_one(data: dict, key: str, value: Any) -> None:
    """One value of a column key, checked as the base scenario with that one change. Rules that join two
    keys are left to `cross_rule_issues`, since the other key may be varied too."""
    if key.startswith("training.parallelism.") and value == "auto":
        return  # left to the plan search, as a key missing from the table is
    try:
        Scenario.model_validate(repriced(with_settings(data, [(key, value)]), _gpu(data)))
    except ValidationError as exc:
        if all(e["type"] in CROSS_RULES for e in exc.errors(include_url=False)):
            return
        raise _relabel(from_validation_error(exc, Scenario, "--vary")) from None


def _gpu(data: dict) -> str | None:
    return (data.get("cluster") or {}).get("gpu")


def _validate(data: dict, settings: list[tuple[str, Any]], old_gpu: str | None = None) -> Scenario:
    try:
        return Scenario.model_validate(repriced(data, old_gpu))
    except ValidationError as exc:
        shown = ", ".join(f"{k}={v}" for k, v in settings)
        err = from_validation_error(exc, Scenario, "--vary")
        err.issues[:] = [
            FieldIssue(i.key, i.value, f"{i.message} (in the combination {shown})") if shown else i for i in err.issues
        ]
        raise _relabel(err) from None


def _relabel(err: ScenarioError) -> ScenarioError:
    return ScenarioError(err.issues, "--vary")


def _row_helpers(scenarios: list[Scenario]) -> dict[str, pl.Series]:
    """Per combination: whether the serving GPUs and the network pod follow the cluster's count (no
    inference.gpu_count, no network.pod_gpus), and the per-GPU batch of a sample workload whose global batch
    follows the GPU count (resolve._sample_columns)."""
    cat = load_catalog()
    follow, per_gpu, pod, market = [], [], [], []
    for s in scenarios:
        follow.append(s.inference is None or s.inference.gpu_count is None)
        pod.append(s.network.pod_gpus is None)
        market.append(s.facility.market_gco2_per_kwh is None)
        t = s.training
        model = t.model if t is not None else None
        workload = cat.workloads.get(model) if t is not None and isinstance(model, str) else None
        samples = workload is not None and t is not None and t.global_batch_samples is None
        per_gpu.append(float(workload.batch_samples) if workload is not None and samples else None)
    return {
        "_i_gpus_follow": pl.Series(follow, dtype=pl.Boolean),
        "_gbs_per_gpu": pl.Series(per_gpu, dtype=pl.Float64),
        "_pod_follow": pl.Series(pod, dtype=pl.Boolean),
        "_market_follows": pl.Series(market, dtype=pl.Boolean),
    }


def _numeric(axis: Axis) -> np.ndarray:
    words = WORDS.get(axis.key, {})
    out = []
    for v in axis.values:
        if isinstance(v, str) and v in words:
            out.append(float(words[v]))
        elif isinstance(v, bool) or not isinstance(v, int | float):
            raise _bad("--vary", v, "not a number; allowed: numbers" + (f" or {', '.join(words)}" if words else ""))
        else:
            out.append(float(v))
    return np.asarray(out, dtype=np.float64)


def _indices(sizes: list[int], start: int, stop: int) -> list[np.ndarray]:
    """The index into each axis of grid points start..stop-1 (the first axis varies slowest)."""
    flat = np.arange(start, stop, dtype=np.int64)
    out = []
    for size in reversed(sizes):
        out.append(flat % size)
        flat //= size
    return out[::-1]


def labels(grid: Grid, start: int = 0, stop: int | None = None) -> pl.DataFrame:
    """The varied values of grid points start..stop-1, one column per axis named by its key."""
    stop = grid.points if stop is None else stop
    idx, _ = _axis_indices(grid, start, stop)
    return pl.DataFrame([_shown_values(axis)[idx[i]] for i, axis in enumerate(grid.axes)])


def frame(grid: Grid, start: int = 0, stop: int | None = None) -> pl.DataFrame:
    """Grid points start..stop-1 as the engine's input frame (resolve's columns, plus two helper columns
    `_i_gpus_follow` and `_gbs_per_gpu` that evaluate ignores)."""
    stop = grid.points if stop is None else stop
    idx, combo = _axis_indices(grid, start, stop)
    rows = grid.combos[combo]
    column_keys = {grid.axes[i].key: i for i in grid.column_axes}
    for key in COLUMN_KEYS:  # in COLUMN_KEYS order: a later key wins a column two keys write
        if key in column_keys:
            values = _numeric(grid.axes[column_keys[key]])[idx[column_keys[key]]]
            rows = rows.with_columns(__value=pl.Series(values)).with_columns(**COLUMN_KEYS[key](V))
    if "inference.gpu_count" in column_keys:
        rows = rows.with_columns(_i_gpus_follow=pl.lit(False))
    if "network.pod_gpus" in column_keys:
        rows = rows.with_columns(_pod_follow=pl.lit(False))
    if "facility.market_gco2_per_kwh" in column_keys:
        rows = rows.with_columns(_market_follows=pl.lit(False))
    return rows.with_columns(scenario=pl.arange(start, stop, dtype=pl.Int64)).drop("__value", strict=False)


def _shown_values(axis: Axis) -> pl.Series:
    """An axis's values as the output shows them: whole numbers as integers, numbers as floats, anything
    else (words, or words mixed with numbers) as text."""
    vals = axis.values
    if all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
        return pl.Series(axis.key, vals, dtype=pl.Int64)
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in vals):
        return pl.Series(axis.key, vals, dtype=pl.Float64)
    return pl.Series(axis.key, [str(v).lower() if isinstance(v, bool) else str(v) for v in vals], dtype=pl.Utf8)


def _axis_indices(grid: Grid, start: int, stop: int) -> tuple[list[np.ndarray], np.ndarray]:
    sizes = [len(a.values) for a in grid.axes]
    idx = _indices(sizes, start, stop) if grid.axes else []
    combo = np.zeros(stop - start, dtype=np.int64)
    for i in grid.resolved_axes:
        combo = combo * sizes[i] + idx[i]
    return idx, combo


def cross_rule_issues(grid: Grid, start: int, stop: int) -> tuple[np.ndarray, list[tuple[str, FieldIssue]]]:
    """Points start..stop-1 that break a rule joining two keys (whole nodes; serving GPUs within the
    cluster): (mask of bad points, (short reason, issue naming the first such point) per rule broken).
    Reads only the few columns involved."""
    idx, combo = _axis_indices(grid, start, stop)
    columns = {grid.axes[i].key: _numeric(grid.axes[i])[idx[i]] for i in grid.column_axes}

    def value(column: str, key: str) -> np.ndarray:
        return columns[key] if key in columns else grid.combos[column].to_numpy()[combo].astype(np.float64)

    n, gpn = value("n_gpus", "cluster.gpu_count"), value("gpn", "cluster.gpus_per_node")
    follow = grid.combos["_i_gpus_follow"].to_numpy()[combo]
    if "inference.gpu_count" in columns:
        serving_gpus, named = columns["inference.gpu_count"], np.ones(len(n), dtype=bool)
    else:
        serving_gpus, named = np.where(follow, n, grid.combos["i_gpus"].to_numpy()[combo]), ~follow
    serves = grid.combos["has_infer"].to_numpy()[combo] == 1
    rules = [
        (gpn > n, "gpus_per_node more than gpu_count", "cluster.gpus_per_node", gpn,
         lambda i: f"is more than gpu_count {n[i]:.0f}; allowed: 1 to gpu_count"),
        ((gpn <= n) & (np.mod(n, gpn) != 0), "gpu_count not a whole number of nodes", "cluster.gpu_count", n,
         lambda i: f"not a whole number of {gpn[i]:.0f}-GPU nodes; allowed: a multiple of gpus_per_node"),
        (serves & named & (serving_gpus > n), "serving GPUs more than the cluster's", "inference.gpu_count",
         serving_gpus, lambda i: f"is more than the cluster's gpu_count {n[i]:.0f}; allowed: 1 to gpu_count"),
    ]  # fmt: skip
    bad = np.zeros(len(n), dtype=bool)
    found = []
    for mask, reason, key, values, text in rules:
        if mask.any():
            first = int(np.flatnonzero(mask)[0])
            count = f" ({int(mask.sum()):,} of {len(n):,} points; --skip-invalid leaves them out)"
            found.append((reason, FieldIssue(key, int(values[first]), text(first) + count)))
        bad |= mask
    return bad, found


def searches_plans(grid: Grid) -> bool:
    """Whether some point leaves part of its training plan to the search (hundreds of candidates each)."""
    plan = [c for c in grid.combos.columns if c.startswith("p_")]
    trains = grid.combos["has_train"] == 1
    combos_search = grid.combos.filter(trains).select(pl.any_horizontal(pl.col(c) == AUTO for c in plan)).to_series()
    axes_search = any(
        AUTO in _numeric(grid.axes[i]) for i in grid.column_axes if grid.axes[i].key.startswith("training.")
    )
    return bool(combos_search.any()) or axes_search


# Evaluating ----------------------------------------------------------------------------------------------


class _Recorder(_FrameSource):
    """A frame source that notes every column a stage reads."""

    def __init__(self, frame: pl.DataFrame):
        super().__init__(frame)
        self.read: set[str] = set()

    def __getattr__(self, name: str) -> np.ndarray:
        self.read.add(name)
        return super().__getattr__(name)


def serving_reads(combos: pl.DataFrame) -> set[str]:
    """The frame columns the serving stage reads, found by running it on (up to 64 of) the combinations:
    no list to keep in step with engine/serving by hand."""
    rows = combos.filter(pl.col("has_infer") == 1).head(64)
    if rows.height == 0:
        return set()
    source = _Recorder(rows)
    with np.errstate(all="ignore"):
        serving.serve(Columns({}, rows.height, base=source), load_catalog())
    return source.read


def _writes(key: str, combos: pl.DataFrame) -> set[str]:
    """The columns a key writes; the cluster's GPU count reaches the serving GPUs only where the scenario
    names no inference.gpu_count of its own."""
    written = set(COLUMN_KEYS[key](V))
    if key == "cluster.gpu_count" and not combos["_i_gpus_follow"].any():
        written.discard("i_gpus")
    return written


@dataclass
class _Half:
    """A sub-grid that evaluates one workload, with the axes the other workload alone reads collapsed to
    their first value, and the result columns taken from it."""

    grid: Grid
    columns: Callable[[str], bool]


def _halves(grid: Grid) -> list[_Half] | None:
    """Training and serving evaluated apart, each on only the axes it reads, when that makes fewer rows:
    a sweep of training keys then computes each serving answer once, not once per training point. None:
    evaluate the grid whole."""
    trains = bool((grid.combos["has_train"] == 1).any())
    serves = bool((grid.combos["has_infer"] == 1).any())
    if not (trains and serves) or not grid.column_axes:
        return None
    read = serving_reads(grid.combos)
    training_only = {i for i in grid.column_axes if not (_writes(grid.axes[i].key, grid.combos) & read)}
    # resolve.py's i_ prefix: columns only the serving stage reads.
    serving_only = {
        i for i in grid.column_axes if all(c.startswith("i_") for c in _writes(grid.axes[i].key, grid.combos))
    }
    if not training_only and not serving_only:
        return None

    def collapsed(drop: set[int], combos: pl.DataFrame) -> Grid:
        axes = [Axis(a.key, a.values[:1]) if i in drop else a for i, a in enumerate(grid.axes)]
        points = math.prod(len(a.values) for a in axes)
        return Grid(grid.base, axes, combos, grid.resolved_axes, grid.column_axes, points)

    train = collapsed(serving_only, grid.combos.with_columns(has_infer=pl.lit(0.0)))
    serve = collapsed(training_only, grid.combos.with_columns(has_train=pl.lit(0.0)))
    return [
        _Half(train, lambda c: not c.startswith("infer_")),
        _Half(serve, lambda c: c.startswith("infer_")),
    ]


def _sub_index(full: Grid, sub: Grid, start: int, stop: int) -> np.ndarray:
    """Row of `sub` (same axes, some collapsed to one value) for each full-grid point start..stop-1."""
    idx, _ = _axis_indices(full, start, stop)
    out = np.zeros(stop - start, dtype=np.int64)
    for i, axis in enumerate(sub.axes):
        out = out * len(axis.values) + (idx[i] if len(axis.values) > 1 else 0)
    return out


def _evaluate_all(grid: Grid, step: int, text: bool, tick: Callable[[int], None]) -> pl.DataFrame:
    parts = []
    for start in range(0, grid.points, step):
        stop = min(start + step, grid.points)
        rows = frame(grid, start, stop)
        parts.append(evaluate(rows.drop(HELPERS), text=text))
        tick(stop - start)
    return pl.concat(parts, how="diagonal_relaxed") if len(parts) > 1 else parts[0]


def plan_reads(combos: pl.DataFrame) -> set[str]:
    """The frame columns the plan search reads (candidates, their step times, the choice), found by running
    it on (up to 16 of) the combinations, as evaluate() runs it."""
    rows = combos.filter(pl.col("has_train") == 1).head(16)
    if rows.height == 0:
        return set()
    source = _Recorder(rows)
    scen = Columns({}, rows.height, base=source)
    with np.errstate(all="ignore"):
        cand, _, _ = plans.search(scen, load_catalog())
        workloads.sample_step(cand)
    return source.read


def _plan_grid(grid: Grid) -> Grid | None:
    """The grid the plan search needs: axes that no plan-search column depends on collapsed to their first
    value (a sweep of token counts or prices then searches each plan once). None: nothing to save."""
    if not searches_plans(grid):
        return None
    read = plan_reads(grid.combos)
    neutral = {
        i
        for i in grid.column_axes
        if len(grid.axes[i].values) > 1 and not (_writes(grid.axes[i].key, grid.combos) & read)
    }
    if not neutral:
        return None
    axes = [Axis(a.key, a.values[:1]) if i in neutral else a for i, a in enumerate(grid.axes)]
    combos = grid.combos.with_columns(has_infer=pl.lit(0.0))
    return Grid(grid.base, axes, combos, grid.resolved_axes, grid.column_axes, math.prod(len(a.values) for a in axes))


def _evaluate_reusing_plans(grid: Grid, plan_grid: Grid, text: bool, tick: Callable[[int], None]) -> pl.DataFrame:
    """Search each plan once on `plan_grid`, then evaluate every point of `grid` with its plan given: the
    same figures as searching at every point, since the search reads nothing the collapsed axes change."""
    chosen = _evaluate_all(plan_grid, AUTO_CHUNK_ROWS, False, tick)
    only = searched_only(chosen.columns)
    picks = plan_picks(chosen)
    parts = []
    for start in range(0, grid.points, CHUNK_ROWS):
        stop = min(start + CHUNK_ROWS, grid.points)
        rows = frame(grid, start, stop)
        pick = picks[_sub_index(grid, plan_grid, start, stop)]
        trains = pl.col("has_train") == 1
        rows = rows.with_columns(
            pl.when(trains).then(pick[key].cast(pl.Float64)).otherwise(pl.col(key)).alias(key) for key in PLAN_INPUTS
        )
        # What only the search knows (candidates counted, the runner-up) comes from the search itself.
        out = evaluate(rows.drop(HELPERS), text=False).with_columns(pick[c] for c in only)
        parts.append(add_text(out) if text else out)
        tick(stop - start)
    return pl.concat(parts, how="diagonal_relaxed") if len(parts) > 1 else parts[0]


def _evaluate_grid(grid: Grid, step: int, text: bool, tick: Callable[[int], None]) -> pl.DataFrame:
    plan_grid = _plan_grid(grid) if step == AUTO_CHUNK_ROWS else None
    if plan_grid is None:
        return _evaluate_all(grid, step, text, tick)
    return _evaluate_reusing_plans(grid, plan_grid, text, tick)


@dataclass
class SweepResult:
    results: pl.DataFrame  # varied keys first, then every result column; one row per grid point kept
    points: int
    skipped: int
    skipped_reasons: list[str]
    rows_evaluated: int  # engine rows computed (fewer than points when training and serving split)


def run(
    grid: Grid,
    skip_invalid: bool = False,
    progress: Callable[[int, int], None] | None = None,
    text: bool = True,
) -> SweepResult:
    """Evaluate every point of `grid`, in chunks. A point that breaks a rule joining two keys raises a
    ScenarioError naming the rule, unless `skip_invalid` (then it is left out and counted)."""
    total = grid.points
    keep = np.ones(total, dtype=bool)
    reasons: list[str] = []
    for start in range(0, total, CHUNK_ROWS):
        stop = min(start + CHUNK_ROWS, total)
        bad, found = cross_rule_issues(grid, start, stop)
        if bad.any() and not skip_invalid:
            raise ScenarioError([issue for _, issue in found], "--vary")
        keep[start:stop] = ~bad
        reasons += [reason for reason, _ in found]
    reasons = list(dict.fromkeys(reasons))
    if not keep.any():
        raise ScenarioError(
            [Problem("", None, f"every point breaks a rule ({'; '.join(reasons)}); nothing to evaluate")], "--vary"
        )

    step = AUTO_CHUNK_ROWS if searches_plans(grid) else CHUNK_ROWS
    halves = _halves(grid)
    work = sum(h.grid.points for h in halves) if halves else total
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, work)

    parts = []
    if halves is None:
        whole = _evaluate_grid(grid, step, text, tick)
        for start in range(0, total, CHUNK_ROWS):
            stop = min(start + CHUNK_ROWS, total)
            varied = labels(grid, start, stop)
            parts.append(pl.concat([varied, whole.slice(start, stop - start)], how="horizontal"))
    else:
        answers = [_evaluate_grid(h.grid, step if i == 0 else CHUNK_ROWS, text, tick) for i, h in enumerate(halves)]
        answers = [a.select([c for c in a.columns if h.columns(c)]) for a, h in zip(answers, halves, strict=True)]
        for start in range(0, total, CHUNK_ROWS):
            stop = min(start + CHUNK_ROWS, total)
            varied = labels(grid, start, stop)
            pieces = [a[_sub_index(grid, h.grid, start, stop)] for a, h in zip(answers, halves, strict=True)]
            joined = pl.concat([varied, *pieces], how="horizontal")
            parts.append(joined.with_columns(scenario=pl.arange(start, stop, dtype=pl.Int64)))
    results = pl.concat(parts) if len(parts) > 1 else parts[0]
    if not keep.all():
        results = results.filter(pl.Series(keep))
    return SweepResult(results, total, int((~keep).sum()), reasons, work)
